# `hk app …`: the day-to-day commands of a deployed app, as tables across its hosts and roles —
# a command in the release's context (`exec`), which version runs where (`version`), what systemd
# says of each instance (`details`), the app's journal (`logs`), a zero-downtime restart (`boot`),
# `stop`/`start`, and `maintenance`/`live` (pages Caddy answers with by their files, no reload).

use listing.nu [commands-matching]
use config.nu [load fail why facts unit app-path hk-config]
use journal.nu
use live.nu [on-live primary-ctx sandbox]
use roles.nu [role-ctx proxied]
use lock.nu [under-lock take]
use secrets.nu [with-secrets]
use phases.nu [apply-by-roles apply-phase abandon start by-phase]
use deploy.nu [deploying running roll ports facts-at-start]

# The app's day-to-day commands, each with what it is for.
@example "The app commands" { hk app | get command } --result ["hk app boot" "hk app details" "hk app exec" "hk app live" "hk app logs" "hk app maintenance" "hk app remove" "hk app start" "hk app stop" "hk app version"]
export def main []: nothing -> table<command: string, description: string> {
  commands-matching '^hk app (exec|version|details|logs|boot|stop|start|maintenance|live|remove)$'
}

# Run a command on every host in the live release's context: one row per host and role.
#
# The command runs as the app's own instance would (`systemd-run --pipe --wait` with its unit's
# dynamic user, env file, release folder and storage), so it sees the same environment and writes
# files as the same user; the env file's secrets reach it without passing any command line. Rows
# {host, role, exit_code, stdout, stderr}; stdout is kept byte for byte (binary when it is not
# UTF-8). A non-zero exit is in its row. With `--reuse`, the command runs inside the running
# instance itself, as `docker exec` would: its namespaces (private `/tmp`), user, environment as
# systemd gave it, working folder and cgroup (stopping the unit ends the command too); the
# environment is read on the host from the instance's process, never put on a command line. With
# `-i`, the command runs on one host with a terminal (OpenSSH `ssh -t`, and `systemd-run --pty`
# for the release's context) and returns nothing.
@example "The release's files on every host" { hk app exec "ls" | select host stdout }
@example "A one-off task on the worker hosts" { hk app exec -r worker "bin/tasks cleanup" }
@example "What the running instance's own environment holds" { hk app exec --reuse "env | cut -d= -f1" }
@example "A shell with a terminal in the live release of web1" { hk app exec -i --hosts web1 "bash" }
export def "app exec" [
  command: string             # a shell command line
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --reuse                     # inside the running instance (its namespaces, user, env), not beside it
  --interactive (-i)          # with a terminal, on one host (the primary, or the first of --hosts)
]: nothing -> oneof<table<host: string, role: string, exit_code: int, stdout: any, stderr: string>, nothing> {
  let span = (metadata $command).span
  if ($command | str trim | is-empty) {
    fail "hk app exec: no command to run" $span "give one, e.g. hk app exec \"ls\""
  }
  let ctx = load $config $destination "-" $span --roles=$roles --hosts=$hosts
  if not $interactive { return (on-live $ctx $command --reuse=$reuse) }
  let host = if $ctx.primary in $ctx.servers { $ctx.primary } else { $ctx.servers | first }
  let rctx = primary-ctx ($ctx | update primary $host)
  let live = facts ($ctx | update servers [$host]) | first
  if $live.active_port == null { fail $"($ctx.app) is not live on ($host)" $span "deploy it first: hk deploy" }
  let reach = if $reuse {
    hk-config $ctx | hk target $host --terminal --run [sh -c $command] --within (unit $rctx $live.active_port)
  } else {
    hk-config $ctx | hk target $host --terminal --run [sh -c $command] --sandbox (sandbox $rctx $live.active_port)
  } | first
  if $reach.kind != ssh { fail $"($host) is this machine: run the command here" $span }
  ^ssh ...$reach.ssh
}

# Which version each host and role runs, and on which port.
#
# Rows {host, role, version, port}; a host where nothing is live has null for both.
@example "Where is v2 live?" { hk app version | where version == v2 }
export def "app version" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> table<host: string, role: string, version: any, port: any> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let state = facts $ctx
  $ctx.roles | transpose role hosts | each {|r|
    $state | where host in $r.hosts | each {|h| {host: $h.host, role: $r.role, version: $h.current, port: $h.active_port} }
  } | flatten | sort-by host role
}

# The systemd properties `details` reads of each unit.
const PROPERTIES = [Id ActiveState SubState MainPID ActiveEnterTimestampMonotonic MemoryCurrent]

# What systemd says of the live instance of each host and role: version, port, pid, state, uptime
# and memory.
#
# One exec per host reads every role's unit (`systemctl show`). Rows {host, role, version, port,
# pid, state, uptime, memory}.
@example "Instances that are not running" { hk app details | where state != running }
export def "app details" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> table<host: string, role: string, version: any, port: any, pid: any, state: string, uptime: any, memory: any> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let state = facts $ctx
  $state | par-each {|h|
    let roles = $ctx.roles | transpose role hosts | where {|r| $h.host in $r.hosts } | get role
    if $h.active_port == null {
      return ($roles | each {|role| {host: $h.host, role: $role, version: null, port: null, pid: null, state: "not deployed", uptime: null, memory: null} })
    }
    let units = $roles | each {|role| unit (role-ctx $ctx $role) $h.active_port }
    # The host's uptime clock and each unit's properties, in one exec.
    let line = $"cat /proc/uptime; systemctl show --property=($PROPERTIES | str join ',') ($units | str join ' ')"
    let out = {hosts: $ctx.hosts, instances: $ctx.instances} | hk exec $line $h.host | first
    if $out.exit_code != 0 { fail $"reading systemd on ($h.host) failed: ($out.stderr | str trim)" $ctx.span }
    let text = $out.stdout | into string
    let now_us = ($text | lines | first | split row " " | first | into float) * 1_000_000
    let shown = $text | lines | skip 1 | str join "\n" | split row "\n\n" | each {|block|
      $block | lines | parse "{key}={value}" | reduce --fold {} {|kv, acc| $acc | upsert $kv.key $kv.value }
    }
    $roles | each {|role|
      let u = unit (role-ctx $ctx $role) $h.active_port
      let p = $shown | where {|s| ($s.Id? | default "") == $u } | get -o 0 | default {}
      let running = ($p.ActiveState? | default "") == active
      let since = $p.ActiveEnterTimestampMonotonic? | default "0" | into int
      let memory = $p.MemoryCurrent? | default "" | if ($in =~ '^\d+$') { $in | into int | into filesize } else { null }
      {
        host: $h.host
        role: $role
        version: $h.current
        port: $h.active_port
        pid: (if $running { $p.MainPID | into int } else { null })
        state: (if $running { $p.SubState } else { $p.ActiveState? | default unknown })
        uptime: (if $running and $since > 0 { (($now_us - $since) | math round | into int) * 1us | $in / 1sec | math floor | $in * 1sec } else { null })
        memory: $memory
      }
    }
  } | flatten | sort-by host role
}

# The app's journal on every host: the newest lines of every instance of every role, merged.
#
# `journalctl` of the app's units (`hk-<app>@*`, `hk-<app>-<role>@*`) on each host at once, as rows
# {time, host, role, unit, message}, oldest first: the last `-n` lines of each host, optionally
# `--since` a time and matching `--grep` (a journalctl pattern). With `-f`, those and then every new
# line of every host as one stream, as it arrives; Ctrl-C ends it on every host.
@example "The last lines of every host" { hk app logs -n 20 }
@example "Errors of the last hour" { hk app logs --since "1 hour ago" --grep error }
@example "Follow every host, only the worker's lines" { hk app logs -f -n 0 | where role == worker }
export def "app logs" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --lines (-n): int = 100     # lines per host
  --since: string             # a time journalctl understands ("1 hour ago", "2026-12-01 10:00")
  --grep: string              # only lines matching this pattern
  --follow (-f)               # then every new line of every host, until Ctrl-C
]: nothing -> table<time: datetime, host: string, role: string, unit: string, message: string> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let patterns = $ctx.roles | columns | each {|role| unit (role-ctx $ctx $role) | str replace '@.service' '@*' }
  # The longest prefix first: `hk-app-worker@` must not be taken for `hk-app@`'s.
  let prefixes = $ctx.roles | columns
    | each {|role| {role: $role, prefix: (unit (role-ctx $ctx $role) | str replace '.service' '')} }
    | sort-by {|r| $r.prefix | str length } --reverse
  let role_of = {|name| $prefixes | where {|r| $name | str starts-with $r.prefix } | get -o 0.role | default "" }
  journal read (hk-config $ctx) $ctx.servers $patterns $role_of $lines $since $grep $ctx.span --follow=$follow
}

# A page of the app's (`maintenance`, `stopped`): the project's `.hk/<page>.html` when there is
# one, else a plain page; `{{message}}` in it becomes `message`, HTML-escaped.
def page-text [ctx: record, page: string, message: string]: nothing -> string {
  let own = $ctx.project | path join .hk $"($page).html"
  let escaped = $message | str replace -a "&" "&amp;" | str replace -a "<" "&lt;" | str replace -a ">" "&gt;" | str replace -a '"' "&quot;"
  let template = if ($own | path exists) { open --raw $own | decode utf-8 } else {
    $"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>($ctx.app)</title></head>\n<body><h1>($ctx.app)</h1><p>{{message}}</p></body></html>\n"
  }
  $template | str replace -a "{{message}}" $escaped
}

# The page file `page` on every proxied host: present with `text`, or absent (null).
def page-resource [ctx: record, page: string, text: oneof<string, nothing>]: nothing -> record {
  let path = app-path $ctx $"($page).html"
  if $text == null { {type: file, path: $path, state: absent} } else { {type: file, path: $path, content: $text, mode: "0644"} }
}

# The live version of the app on its primary host (an error when nothing is live).
def live-version [ctx: record, state: table]: nothing -> string {
  let primary = $state | where host == $ctx.primary | get -o 0
  if $primary == null or $primary.current? == null {
    fail $"($ctx.app) is not live on ($ctx.primary)" $ctx.span "deploy it first: hk deploy"
  }
  $primary.current
}

# Restart the live release with zero downtime: a new instance beside the live one on every host,
# traffic switched once all are healthy, the old one retired — a deploy of what runs, without a
# build or a migration.
#
# One row per phase and host, as `hk deploy`.
@example "Restart production without a failed request" { hk app boot -d production }
export def "app boot" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --lock-wait: duration       # wait this long for a deploy lock someone else holds
  --quiet (-q)                # no progress on stderr
  --skip-hooks (-H)           # run none of the project's hooks (.hk/hooks)
  --allow-empty-secrets       # accept secrets whose value is empty
]: nothing -> table {
  let ctx = running (load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts) boot --quiet=$quiet --skip-hooks=$skip_hooks
  let ctx = with-secrets $ctx --allow-empty=$allow_empty_secrets
  deploying $ctx "app boot" $lock_wait {|ctx|
    let version = live-version $ctx (facts-at-start $ctx)
    roll ($ctx | upsert version $version) $version null boot
  } | by-phase
}

# Stop the app's live instances; Caddy answers 503 with a "stopped" page for this app alone.
#
# The page goes up first (its file, which the site checks on every request: no reload, other apps
# untouched), then the instances stop and are no longer started at boot. `hk app start` undoes it.
@example "Stop the app" { hk app stop }
export def "app stop" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --message (-m): string      # what the stopped page says (default: "<app> is stopped")
  --quiet (-q)                # no progress on stderr
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span | upsert quiet $quiet
  under-lock $ctx stop null {|ctx|
    let p = ports $ctx (facts $ctx)
    if $p.old == null { fail $"($ctx.app) is not live: nothing to stop" $ctx.span "deploy it first: hk deploy" }
    let page = page-resource $ctx stopped (page-text $ctx stopped ($message | default $"($ctx.app) is stopped"))
    apply-by-roles $ctx stop $ctx.servers {|rc|
      let down = abandon $rc $p.old | each {|r| if $r.type == service and (proxied $rc $rc.role) { $r | insert after [$"file:($page.path)"] } else { $r } }
      if (proxied $rc $rc.role) { [$page] | append $down } else { $down }
    }
  }
}

# Start the app's live instances again; once every one is healthy, the stopped page goes.
@example "Start the app again" { hk app start }
export def "app start" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --quiet (-q)                # no progress on stderr
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span | upsert quiet $quiet
  under-lock $ctx start null {|ctx|
    let p = ports $ctx (facts $ctx)
    if $p.old == null { fail $"($ctx.app) is not deployed: nothing to start" $ctx.span "deploy it: hk deploy" }
    let started = apply-by-roles $ctx start $ctx.servers {|rc| start $rc $p.old }
    $started | append (apply-phase ($ctx | update servers $ctx.web) start [(page-resource $ctx stopped null)])
  }
}

# Put the app in maintenance: Caddy answers 503 with a page for this app alone, without a reload.
#
# The page is the project's `.hk/maintenance.html` (`{{message}}` in it becomes the message) or a
# plain one. It is a file the site checks on every request, so other apps see no reload and no
# failed request; it stays through deploys (which still check the new release through Caddy) until
# `hk app live`.
@example "Maintenance with a message" { hk app maintenance --message "Back at 10:00 UTC" }
export def "app maintenance" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --message (-m): string      # what the page says (default: "<app> is down for maintenance")
  --quiet (-q)                # no progress on stderr
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span | upsert quiet $quiet
  let text = page-text $ctx maintenance ($message | default $"($ctx.app) is down for maintenance")
  under-lock $ctx maintenance null {|ctx|
    apply-phase ($ctx | update servers $ctx.web) maintenance [(page-resource $ctx maintenance $text)]
  }
}

# End maintenance: the app answers again (the page's file removed, no reload).
@example "Back from maintenance" { hk app live }
export def "app live" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --quiet (-q)                # no progress on stderr
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span | upsert quiet $quiet
  under-lock $ctx live null {|ctx|
    apply-phase ($ctx | update servers $ctx.web) live [(page-resource $ctx maintenance null)]
  }
}

# Remove the app from its hosts: its instances stopped and disabled, its unit templates, folder
# (releases, env files, site, audit log) removed, and Caddy reloaded where it served the site.
#
# Asks first unless `--yes` (type the app's name). Other apps on the hosts keep serving; removing
# an app that is gone changes nothing. Its storage (/var/lib/private/hk-<app>) stays: that is data.
# Rows {host, units, templates, folder, reloaded} say what each host still had.
@example "Remove the staging app without asking" { hk app remove -d staging --yes }
export def "app remove" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --hosts: string             # only these hosts (comma list, * wildcards)
  --yes (-y)                  # do not ask
]: nothing -> table<host: string, units: list<string>, templates: list<string>, folder: bool, reloaded: bool> {
  let ctx = load $config $destination "-" (metadata $config).span --hosts=$hosts
  if not $yes {
    if not (is-terminal --stdin) {
      fail $"hk app remove: not removing ($ctx.app) without a yes" $ctx.span "give --yes to remove it without asking"
    }
    let answer = input $"Remove ($ctx.app) from ($ctx.servers | str join ', ')? Its units, releases, env files and site go \(storage stays\). Type ($ctx.app) to confirm: "
    if ($answer | str trim) != $ctx.app {
      fail $"hk app remove: ($ctx.app) not removed \(the answer was not its name\)" $ctx.span
    }
  }
  let templates = $ctx.roles | columns | each {|role| unit (role-ctx $ctx $role) }
  let remove = {|| hk-config $ctx | hk deployment remove $ctx.servers --app $ctx.app --root $ctx.root --templates $templates }
  # Under the lock, so no deploy runs meanwhile (the lock goes with the folder); an app that left
  # no trace on its primary host has no lock to take.
  let primary = facts $ctx | where host == $ctx.primary | first
  let there = $primary.template or ($primary.releases | is-not-empty) or $primary.current != null or $primary.lock != null
  let removed = if $there {
    let held = take $ctx remove null
    do $remove
  } else { do $remove }
  $removed | sort-by host
}

# `hk remove`: the same as `hk app remove`.
export alias remove = app remove
