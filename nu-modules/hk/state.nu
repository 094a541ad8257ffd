# An app's steady state as an ordinary hk config: what its hosts hold once a deploy of the live
# release went through — folders, the release as `current`, the live port's env file (secrets by
# reference), its units, the Caddy site, storage — without the deploy's checks and steps. Several
# apps' states and hand-written configs compose with `hk merge` into one plan of a host.

use config.nu [load fail facts app-path]
use phases.nu [stage start switch boot-role]
use roles.nu [role-ctx proxied roles-of groups]
use secrets.nu [every-wanted secret-var]
use merge.nu [combine]

# A phase's resources as steady state: no readiness checks (they read, they do not hold), no
# ordering on them, and env file secrets read from the app's own variables.
def steady [ctx: record]: list -> list {
  $in | where type != ready | each {|r|
    let r = if ($r.after? | default null) == null { $r } else {
      let kept = $r.after | where {|a| not ($a | str starts-with "ready:") }
      if ($kept | is-empty) { $r | reject after } else { $r | update after $kept }
    }
    if $r.type != env_file { $r } else {
      $r | update entries {|e|
        $e.entries | transpose key value | reduce --fold {} {|x, acc|
          let v = if ($x.value | describe) =~ '^record' and ($x.value.env? != null) { {env: (secret-var $ctx.app $x.value.env)} } else { $x.value }
          $acc | insert $x.key $v
        }
      }
    }
  }
}

# What one role of the context holds on a host where `version` is live on `port`.
def role-state [rctx: record, port: int, version: string]: nothing -> list {
  if (proxied $rctx $rctx.role) {
    stage $rctx $port $version null | append (start $rctx $port) | append (switch $rctx $port $version)
  } else {
    stage $rctx $port $version null | append (boot-role $rctx $port null $version)
  } | steady $rctx
}

# The app's steady state: `{hosts, instances, resources, deploy}`, each resource for the hosts
# (`hosts`) that hold it, as the live release left them; ready for `hk merge` and `hk plan`.
#
# The hosts are read once (which release and port are live). Env files refer to their secrets as
# `<APP>__<NAME>` variables: `with-env (hk secrets env) { … | hk plan }` gives them to the plan.
# `deploy` names the app, so `hk merge` can say where a conflicting resource came from.
@example "Is the host still what the last deploy left?" { with-env (hk secrets env) { hk deploy state | hk plan web1 | where action != noop } }
@example "Two apps and the host's own config in one plan" { [(hk deploy state -c a/config/deploy.nu) (hk deploy state -c b/config/deploy.nu) (open infra/hk.nuon)] | hk merge | hk plan web1 }
export def "deploy state" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> record<hosts: record, instances: record, resources: list, deploy: record> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let live = facts $ctx
  let missing = $live | where active_port == null or current == null | get host
  if ($missing | is-not-empty) {
    fail $"($ctx.app) is not live on ($missing | str join ', '): it has no steady state there" $ctx.span "deploy it first (hk deploy), or leave those hosts out with --hosts"
  }
  # Hosts alike (roles, live port and release) share their resources; what several groups hold
  # (the app's folders, say) is one resource for all of them.
  let groups = $live | group-by --to-table {|h| $"((roles-of $ctx $h.host) | str join ',')\t($h.active_port)\t($h.current)" } | each {|g|
    let hosts = $g.items | get host
    let first = $g.items | first
    let resources = roles-of $ctx $first.host | each {|role| role-state (role-ctx $ctx $role) $first.active_port $first.current } | flatten | uniq
    {name: $"app ($ctx.app) on ($hosts | str join ', ')", resources: ($resources | each {|r| $r | insert hosts $hosts })}
  }
  let resources = combine $groups $ctx.span
  {
    hosts: ($ctx.hosts | select ...$ctx.servers)
    instances: $ctx.instances
    resources: $resources
    deploy: {app: $ctx.app, secrets: (every-wanted $ctx | each {|s| secret-var $ctx.app $s.from } | uniq)}
  }
}
