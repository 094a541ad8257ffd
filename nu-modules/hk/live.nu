# Commands in an app's release on its hosts, in the context of the app's unit: the same dynamic
# user, env file, working folder and storage as the instance (through `hk exec --sandbox`, which
# runs `systemd-run --pipe --wait`), temporary files of their own. Migrations, `hk rpc` and
# `hk app exec` run this way; `hk app exec --reuse` runs inside the running instance instead
# (`hk exec --within`: its namespaces, user, environment and cgroup).

use config.nu [fail facts unit]
use phases.nu [template-unit]
use roles.nu [role-ctx roles-of proxied]
use mix.nu [is-mix]

# The context of the primary host's first role (a proxied one when it runs one).
export def primary-ctx [ctx: record]: nothing -> record {
  let roles = roles-of $ctx $ctx.primary
  let role = $roles | where {|r| proxied $ctx $r } | append $roles | first
  role-ctx $ctx $role
}

# The unit properties of a one-off command beside the role's instance on `port`.
export def sandbox [rctx: record, port: int]: nothing -> record {
  let base = unit $rctx | str replace '@.service' ''
  let s = (template-unit $rctx).Service
  let fill = {|v| $v | str replace -a "%i" ($port | into string) }
  let own = $"($base)-once-(random chars -l 8 | str lowercase)"
  # A Mix release's temporary files go to the command's own runtime folder, not the instance's.
  let tmp = if (is-mix $rctx) { [$"RELEASE_TMP=/run/($own)" $"ERL_CRASH_DUMP=/run/($own)/erl_crash.dump"] } else { [] }
  {
    # The template's instances all run as this user (systemd names it after the template).
    User: $base
    DynamicUser: yes
    WorkingDirectory: (do $fill $s.WorkingDirectory)
    EnvironmentFile: (do $fill $s.EnvironmentFile)
    Environment: ($s.Environment | each $fill | append $tmp)
    RuntimeDirectory: $own
  } | merge (if ($s.StateDirectory? | default null) == null { {} } else { {StateDirectory: $s.StateDirectory} })
}

# Run `command` (a shell line, or words each quoted) in the release pinned to `port` on `hosts`, as
# the role's unit runs it (or, with `--reuse`, inside that running instance): rows {host, role,
# exit_code, stdout, stderr}.
export def in-release [rctx: record, hosts: list<string>, port: int, command: any, --reuse]: nothing -> table {
  let reach = {hosts: $rctx.hosts, instances: $rctx.instances}
  if $reuse {
    $reach | hk exec $command $hosts --within (unit $rctx $port)
  } else {
    $reach | hk exec $command $hosts --sandbox (sandbox $rctx $port)
  }
  | insert role $rctx.role | move role --after host
}

# Run `command` in the live release of every host and role of the context (hosts alike share one
# exec); a host where the app is not live is an error naming it. Rows as `in-release`, by host.
export def on-live [ctx: record, command: any, --reuse]: nothing -> table {
  let state = facts $ctx
  let down = $state | where active_port == null | get host
  if ($down | is-not-empty) {
    fail $"($ctx.app) is not live on ($down | str join ', ')" $ctx.span "deploy it first: hk deploy"
  }
  $ctx.roles | transpose role hosts | each {|r|
    let rctx = role-ctx $ctx $r.role
    $state | where host in $r.hosts | group-by --to-table active_port | each {|g|
      in-release $rctx ($g.items | get host) ($g.items.0.active_port) $command --reuse=$reuse
    } | flatten
  } | flatten | sort-by host role
}
