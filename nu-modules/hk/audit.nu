# The audit log of an app: one JSON line per deploy, redeploy, rollback, prune or setup on every host
# of the app, read back as one table.

use config.nu [load hk-config]

# Who does it: this user on this machine.
export def performer []: nothing -> string {
  $"(whoami)@(sys host | get hostname)"
}

# Append an entry `{time, performer, app, destination, version, action, result, hosts}` on every host.
export def write [ctx: record, action: string, result: string, version: any]: nothing -> nothing {
  let entry = {
    time: (date now | format date "%+")
    performer: (performer)
    app: $ctx.app
    destination: $ctx.destination
    version: $version
    action: $action
    result: $result
    hosts: $ctx.servers
  }
  hk-config $ctx | hk app audit-add $ctx.servers --app $ctx.app --root $ctx.root --entry $entry | ignore
}

# Every entry of the app's audit log, from all its hosts, newest first.
export def entries [ctx: record]: nothing -> table {
  hk-config $ctx | hk app audit $ctx.servers --app $ctx.app --root $ctx.root
}

# The app's audit log, merged from every host, newest first.
#
# Who set up, deployed, rolled back or pruned which version, when, on which hosts, and how it ended:
# {time, performer, app, destination, version, action, result, hosts}.
@example "The last five deploys" { hk audit | where action == deploy | first 5 }
@example "Who rolled production back" { hk audit -d production | where action == rollback | select time performer version }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span
  entries $ctx
}
