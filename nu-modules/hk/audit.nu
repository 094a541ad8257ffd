# The audit log of an app: one JSON line per deploy, redeploy, rollback, prune or setup on every host
# of the app, read back as one table.

use config.nu [load hk-config]

# Who does it: this user on this machine.
export def performer []: nothing -> string {
  $"(whoami)@(sys host | get hostname)"
}

# The audit entry `{time, action, version, result, performer, app, destination, hosts}` of now
# (with `error` saying why, when it failed).
export def entry [ctx: record, action: string, result: string, version: oneof<string, nothing>, error?: string]: nothing -> record {
  let entry = {
    time: (date now | format date "%+")
    action: $action
    version: $version
    result: $result
    performer: (performer)
    app: $ctx.app
    destination: $ctx.destination
    hosts: $ctx.servers
  }
  if $error == null { $entry } else { $entry | insert error ($error | lines | first 12 | str join "\n") }
}

# Append an `entry` on every host.
export def write [ctx: record, action: string, result: string, version: oneof<string, nothing>, error?: string]: nothing -> nothing {
  hk-config $ctx | hk deployment audit-add $ctx.servers --app $ctx.app --root $ctx.root --entry (entry $ctx $action $result $version $error) | ignore
}

# Every entry of the app's audit log, from all its hosts, newest first; what happened first, so an
# 80-column terminal shows it (lines written before that order are read the same way).
export def entries [ctx: record]: nothing -> table {
  let log = hk-config $ctx | hk deployment audit $ctx.servers --app $ctx.app --root $ctx.root
  if ($log | is-empty) { $log } else { $log | move action version result --after time }
}

# The app's audit log, merged from every host, newest first.
#
# Who set up, deployed, rolled back or pruned which version, when, on which hosts, and how it ended:
# {time, action, version, result, performer, app, destination, hosts}, and `error` when it
# failed (a failing hook's last lines). See `hk docs hooks`.
@example "The last five deploys" { hk audit | where action == deploy | first 5 }
@example "Who rolled production back" { hk audit -d production | where action == rollback | select time performer version }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let log = entries $ctx
  if ($log | is-empty) {
    print -e $"hk audit: ($ctx.app) has no audit log on ($ctx.servers | str join ', ') yet: its first hk setup or hk deploy starts one"
  }
  $log
}
