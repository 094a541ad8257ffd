# The phases of a deploy, each an hk plan of the app's hosts applied as a tracked run of the app:
# prepare (the new release beside the live one, started on the free port, healthy), switch (Caddy to
# the new port, `current`, `active_port`), retire (drain the old instance, stop it). Deploy and
# rollback compose them; nothing here talks to a host but through the plugin.

use config.nu [app-path unit hk-config runs-root why made-by]
use caddy.nu [site-resources check-through]
use secrets.nu [wanted]
use storage.nu [state-directories storage-env storage-resources]
use roles.nu [role-ctx proxied groups]
use mix.nu

# The systemd template every instance of the context's role runs from: the port is the instance
# name (a role not behind Caddy still gets it as PORT), and an instance runs the release its
# `ports/<port>` link points at (never `current`: a crash-restart of the old instance during a
# deploy must not boot the new release).
export def template-unit [ctx: record]: nothing -> record {
  let role = $ctx.role? | default web
  let dir = app-path $ctx
  let cmd = $ctx.release.cmd
  let program = $cmd | split row " " | first
  # A relative program is the release's own; an absolute one or a bare name is the host's.
  let exec = if ($program | str contains "/") and not ($program | str starts-with "/") {
    $"($dir)/ports/%i/($cmd)"
  } else {
    $cmd
  }
  let stop = ($ctx.drain_timeout / 1sec | math ceil) + 10
  let base = unit $ctx | str replace '@.service' ''
  let mix = if (mix is-mix $ctx) { mix unit-additions $ctx $base } else { {environment: [], service: {}, unit: {}} }
  let service = {
      Type: exec
      Environment: (["PORT=%i" $"HK_APP=($ctx.app)" $"HK_ROLE=($role)"] | append (storage-env $ctx) | append $mix.environment)
      # Each port's own file: an instance restarted mid-deploy keeps the environment it started with.
      EnvironmentFile: $"-($dir)/env/($role).%i.env"
      WorkingDirectory: $"($dir)/ports/%i"
      ExecStart: $exec
      DynamicUser: yes
      KillMode: mixed
      TimeoutStopSec: $stop
      SuccessExitStatus: 143
      Restart: on-failure
      RestartSec: 1
  } | merge (state-directories $ctx) | merge $mix.service
  {
    Unit: ({Description: (if $role == web { $"hk app ($ctx.app) on port %i" } else { $"hk app ($ctx.app), role ($role), slot %i" }), After: network.target} | merge $mix.unit)
    Service: $service
    Install: {WantedBy: multi-user.target}
  }
}

# The app's environment file: clear values as they are, secrets by reference (`{env: NAME}`, resolved
# from the secrets a deploy loaded at plan and apply time, never written anywhere but the host's file).
# HK_VERSION is the version the instance runs.
def env-entries [ctx: record, version: string]: nothing -> record {
  wanted $ctx | reduce --fold ($ctx.env.clear | upsert HK_VERSION $version) {|s, acc| $acc | upsert $s.key {env: $s.from} }
}

# The environment file of the context's role's instance on `port` (`env/<role>.<port>.env`).
export def env-file [ctx: record, port: int]: nothing -> string {
  app-path $ctx $"env/($ctx.role? | default web).($port).env"
}

# The free port's instance of the context's role running `version`, healthy on 127.0.0.1.
# `artifact`: the release to upload and unpack (null: it is already on the hosts, as for a rollback).
export def prepare [ctx: record, port: int, version: string, artifact: oneof<string, nothing>]: nothing -> list {
  stage $ctx $port $version $artifact | append (start $ctx $port)
}

# Everything the new instance on `port` needs, without starting it: folders, the release (unless
# `artifact` is null), storage, its env file, the role's template unit, the `ports/<port>` pin.
export def stage [ctx: record, port: int, version: string, artifact: oneof<string, nothing>]: nothing -> list {
  let dir = app-path $ctx
  let release = if $artifact == null { [] } else {
    [{type: release, name: $ctx.app, version: $version, artifact: $artifact, root: $ctx.root, current: false, keep: $ctx.retain}]
  }
  [
    {type: dir, path: $ctx.root, mode: "0755"}
    {type: dir, path: $dir, mode: "0755"}
    {type: dir, path: $"($dir)/ports", mode: "0755"}
    {type: dir, path: $"($dir)/env", mode: "0700"}
  ]
  | append $release
  | append (storage-resources $ctx)
  | append [
    {type: env_file, path: (env-file $ctx $port), entries: (env-entries $ctx $version), mode: "0600"}
  ]
  | append (if (mix is-mix $ctx) { [(mix epmd-resource $ctx.root)] } else { [] })
  | append [
    {type: service, name: (unit $ctx), unit: (template-unit $ctx)}
    {type: link, path: (app-path $ctx $"ports/($port)"), target: $"($dir)/releases/($version)"}
  ]
}

# The instance on `port` started (and enabled) and checked: through its health check over HTTP for
# a role behind Caddy or one that has a check, else by systemd saying it is active.
export def start [ctx: record, port: int]: nothing -> list {
  let port_link = app-path $ctx $"ports/($port)"
  let env_file = env-file $ctx $port
  let check = $ctx.health_check
  let checks = if $check == null { [{systemd: {unit: (unit $ctx $port)}}] } else {
    [{http: {url: $"http://127.0.0.1:($port)($check.path)", status: 200}}]
  }
  let timing = if $check == null { {timeout: 30sec, interval: 500ms} } else {
    {delay: $check.delay, interval: $check.interval, timeout: $check.timeout}
  }
  [
    # Enabled (started at boot) through its wants link, which is what `systemctl enable` makes, but
    # without the daemon reload that costs seconds on every deploy.
    {type: link, path: (wants $ctx $port), target: $"/etc/systemd/system/(unit $ctx)"}
    {type: service, name: (unit $ctx $port), state: running,
      restart_on: [$"link:($port_link)" $"env_file:($env_file)" $"service:(unit $ctx)"]}
    ({type: ready, name: (ready-name $ctx $port), journal: [(unit $ctx $port)], checks: $checks} | merge $timing)
  ]
}

# The name of the readiness check of the context's role's instance on `port`.
def ready-name [ctx: record, port: int]: nothing -> string {
  let role = $ctx.role? | default web
  if $role == web { $"($ctx.app) on ($port)" } else { $"($ctx.app) ($role) on ($port)" }
}

# A role not behind Caddy moves to `port` running `version`: its new instance started and up, then
# the old one (on `old`, when there is one) stopped; `current` and `active_port` follow on hosts
# that run no proxied role.
export def boot-role [ctx: record, port: int, old: oneof<int, nothing>, version: string]: nothing -> list {
  let up = $"ready:(ready-name $ctx $port)"
  let retire_old = if $old == null or $old == $port { [] } else {
    [
      {type: service, name: (unit $ctx $old), state: stopped, after: [$up]}
      {type: link, path: (wants $ctx $old), target: "-", state: absent, after: [$up]}
    ]
  }
  let current = app-path $ctx current
  start $ctx $port
  | append $retire_old
  | append [
    {type: link, path: $current, target: $"releases/($version)", after: [$up]}
    {type: file, path: (app-path $ctx active_port), content: $"($port)\n", mode: "0644", after: [$"link:($current)"]}
  ]
}

# Traffic to `port` (running `version`): the site in place, the `upstream` link flipped to the port
# (atomic, no reload), the answer through Caddy checked, then `current` and `active_port`. A null port
# takes traffic away (a first deploy whose switch failed has nothing older to go back to): the site
# then answers 503.
export def switch [ctx: record, port: oneof<int, nothing>, version: oneof<string, nothing>]: nothing -> list {
  if $port == null {
    return [
      {type: link, path: (app-path $ctx upstream), target: "-", state: absent}
      {type: link, path: (app-path $ctx current), target: "-", state: absent}
      {type: file, path: (app-path $ctx active_port), state: absent}
    ]
  }
  site-resources $ctx $port | append (flip-checked $ctx $port $version)
}

# Traffic back to `port` (running `version`), which was live before a switch failed: only the
# `upstream` link, the check through Caddy, `current` and `active_port` — the site and the port's
# marker are in place from when it went live. A null port takes traffic away.
export def switch-back [ctx: record, port: oneof<int, nothing>, version: oneof<string, nothing>]: nothing -> list {
  if $port == null { return (switch $ctx null null) }
  [{type: link, path: (app-path $ctx upstream), target: $"upstreams/($port)"}] | append (flip-checked $ctx $port $version)
}

# After the `upstream` link: the answer through Caddy checked, then `current` and `active_port`.
def flip-checked [ctx: record, port: int, version: string]: nothing -> list {
  let current = app-path $ctx current
  let through = $"($ctx.app) through caddy"
  [
    {type: ready, name: $through, timeout: 30sec, interval: 250ms, after: [$"link:(app-path $ctx upstream)"],
      checks: [{http: (check-through $ctx $port)}]}
    {type: link, path: $current, target: $"releases/($version)", after: [$"ready:($through)"]}
    {type: file, path: (app-path $ctx active_port), content: $"($port)\n", mode: "0644", after: [$"link:($current)"]}
  ]
}

# The old instance drained (no connection left from Caddy, at most drain_timeout) and stopped.
export def retire [ctx: record, port: int]: nothing -> list {
  let drain = $"drain ($port)"
  [
    {type: ready, name: $drain, timeout: $ctx.drain_timeout, interval: 200ms, checks: [{drain: {port: $port}}]}
    {type: service, name: (unit $ctx $port), state: stopped, after: [$"ready:($drain)"]}
    {type: link, path: (wants $ctx $port), target: "-", state: absent}
  ]
}

# The new instance stopped again (a prepare that failed somewhere).
export def abandon [ctx: record, port: int]: nothing -> list {
  [
    {type: service, name: (unit $ctx $port), state: stopped}
    {type: link, path: (wants $ctx $port), target: "-", state: absent}
  ]
}

# The link that starts the app's instance on `port` at boot.
def wants [ctx: record, port: int]: nothing -> string {
  $"/etc/systemd/system/multi-user.target.wants/(unit $ctx $port)"
}

# A row of a deploy's progress, also printed on stderr as it happens (unless quiet).
export def progress [phase: string, host: string, step: string, status: string, duration: duration, message: string, --quiet]: nothing -> record {
  # What matters first, so an 80-column terminal shows whether each step went through.
  let duration = ($duration / 1ms | math round) * 1ms
  let row = {phase: $phase, host: $host, status: $status, step: $step, duration: $duration, message: $message, time: (date now)}
  if not $quiet {
    let took = $duration | format duration ms | str replace -r '\.\d+ ms' ' ms'
    let text = progress-line $status $phase $host $took $step
    print -e (if $message == "" { $text } else { $"($text): ($message | lines | first)" })
  }
  $row
}

# One line of progress on stderr, in columns: status, phase, host, time taken, step.
export def progress-line [status: string, phase: string, host: string, took: string, step: string]: nothing -> string {
  let status_text = $status | fill -w 7
  # Colour for a person at a terminal; a log file or CI gets plain text.
  let status_text = if (is-terminal --stderr) and $status != "" {
    let color = match $status { "ok" => "green", "failed" => "red", _ => "yellow" }
    $"(ansi $color)($status_text)(ansi reset)"
  } else { $status_text }
  $"($status_text) ($phase | fill -w 8) ($host | fill -w 10) ($took | fill -a r -w 9)  ($step)"
}

# The resources of a phase on hosts running `roles`: `per_role` (given the role's context) for each,
# the same resource once.
def role-resources [ctx: record, roles: list<string>, per_role: closure]: nothing -> list {
  $roles | each {|r| do $per_role (role-ctx $ctx $r) } | flatten | uniq
}

# The plans of a phase whose resources depend on each host's roles: hosts running the same roles
# share one, `per_role` giving a role's resources from its context (nothing for a role the phase
# does not touch). Rows {hosts, resources}.
def role-plans [ctx: record, hosts: list<string>, per_role: closure]: nothing -> table {
  groups $ctx $hosts
  | each {|g| {hosts: $g.hosts, resources: (role-resources $ctx $g.roles $per_role)} }
  | where {|g| $g.resources | is-not-empty }
}

# Apply such a phase on `hosts`: one plan per group of hosts alike, the groups at once.
# `read_ahead`: the resources of the phase that follows on these hosts (see `apply-phase`).
# `then_finish`: the end of the deploy on each host, run at the end of its apply (see `apply-phase`).
export def apply-by-roles [ctx: record, phase: string, hosts: list<string>, per_role: closure, --read-ahead: list, --then-finish: record]: nothing -> table {
  let plans = role-plans $ctx $hosts $per_role
  # One group (the usual case) runs here: its error stays as it is.
  if ($plans | length) == 1 {
    apply-phase ($ctx | update servers $plans.0.hosts) $phase $plans.0.resources --read-ahead=$read_ahead --then-finish=$then_finish
  } else {
    $plans | par-each {|g| apply-phase ($ctx | update servers $g.hosts) $phase $g.resources --then-finish=$then_finish } | flatten
  }
}

# The resources of such a phase when every one of `hosts` takes the same (one plan), else null:
# what the phase before it can read ahead for it.
export def one-plan [ctx: record, hosts: list<string>, per_role: closure]: nothing -> oneof<list, nothing> {
  let plans = role-plans $ctx $hosts $per_role
  if ($plans | length) == 1 and ($plans.0.hosts | sort) == ($hosts | sort) { $plans.0.resources } else { null }
}

# The plan rows of such a phase, nothing applied.
export def plan-by-roles [ctx: record, phase: string, hosts: list<string>, per_role: closure]: nothing -> table {
  role-plans $ctx $hosts $per_role | each {|g| plan-phase ($ctx | update servers $g.hosts) $phase $g.resources } | flatten
}

# The plan of one phase on the app's hosts, as rows with the phase.
export def plan-phase [ctx: record, phase: string, resources: list]: nothing -> table {
  with-env ($ctx.secret_values? | default {}) {
    hk-config $ctx | insert resources $resources | hk plan $ctx.servers --quiet | insert phase $phase | move phase --first
  }
}

# Plan `resources` on the app's hosts and apply what changes as a tracked run of the app, printing
# each change as it is done; the progress rows. A failure raises an error naming the phase.
# `read_ahead`: the resources of the phase that follows on the same hosts, when nothing runs on
# them in between (no hook): their reading rides at the end of this apply, so that phase reads
# nothing of its own (`hk apply --read-ahead`). `then_finish`: the end of the deploy (what
# `finish-request` makes), run at the end of each host's apply where it went through, so that
# `finish` runs nothing more there (`hk apply --then-finish`).
export def apply-phase [ctx: record, phase: string, resources: list, --read-ahead: list, --then-finish: record]: nothing -> table {
  let quiet = $ctx.quiet? | default false
  let started = date now
  let rows = try {
    let made_by = made-by $ctx $phase
    # Planned and applied in one command: each host is read once, and only what changes is done.
    # --verbose streams the rows in sync too (action noop), so hk apply never reports an empty
    # table on stderr: this phase says "nothing to change" itself.
    # The env files' secrets are resolved from this environment, for this command only.
    let done = with-env ($ctx.secret_values? | default {}) {
      hk-config $ctx | insert resources $resources
      | hk apply $ctx.servers --confirm --verbose --track --runs-root (runs-root $ctx) --backups-root (app-path $ctx runs/backups) --made-by $made_by --read-ahead (if $read_ahead != null { hk-config $ctx | insert resources $read_ahead }) --then-finish $then_finish
      | where action != noop
      | each {|e| progress $phase $e.host $e.id $e.status $e.duration $e.message --quiet=$quiet }
      | collect
    }
    if ($done | is-empty) {
      [(progress $phase ($ctx.servers | str join ",") "nothing to change" ok ((date now) - $started) "" --quiet=$quiet)]
    } else {
      $done
    }
  } catch {|e|
    error make {msg: $"($phase) failed: (why $e)"}
  }
  $rows
}

# A command's progress rows as one row per phase and host, in the order they ran, each with its
# steps nested: what an 80-column terminal can show. `| get steps | flatten` reaches every step.
export def by-phase []: table -> table<phase: string, host: string, status: string, steps: table, duration: duration> {
  let rows = $in
  if ($rows | is-empty) { return [] }
  $rows | group-by --to-table {|r| $"($r.phase)\t($r.host)" } | each {|g|
    let steps = $g.items
    let statuses = $steps | get status | uniq
    let status = if "failed" in $statuses { "failed" } else if $statuses == [ok] { "ok" } else { $statuses | where $it != ok | first }
    {phase: $steps.0.phase, host: $steps.0.host, status: $status, steps: ($steps | reject phase host), duration: ($steps | get duration | math sum)}
  }
}
