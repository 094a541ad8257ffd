# `hk server …`: the app's hosts themselves — prepared for deploys (`bootstrap`), a command on each
# (`exec`), and Caddy's journal (`logs`, followed with `-f`).

use listing.nu [commands-matching]
use config.nu [load hk-config]
use setup.nu [ensure-instances bootstrap]
use lock.nu [under-lock]
use roles.nu [roles-of]
use journal.nu

# The server commands, each with what it is for.
@example "The server commands" { hk server | get command } --result ["hk server bootstrap" "hk server exec" "hk server logs"]
export def main []: nothing -> table<command: string, description: string> {
  commands-matching '^hk server (bootstrap|exec|logs)$'
}

# Prepare the app's hosts for deploys, and deploy nothing: what `hk setup` does first.
#
# Brings up the instances hk runs itself, installs Caddy and curl, makes Caddy's main file import
# every app's site, and creates the app's folders and systemd template — under the deploy lock,
# written to the audit log. Running it again changes nothing. One row per phase and host.
@example "Prepare production's hosts" { hk server bootstrap -d production }
export def "server bootstrap" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --quiet (-q)                # no progress on stderr
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts | upsert quiet $quiet
  ensure-instances $ctx
  under-lock $ctx bootstrap null {|ctx| bootstrap $ctx }
}

# Run a shell command on every host of the app, as hk's own connection does (root, or its user
# under sudo): one row per host.
#
# Rows {host, role, exit_code, stdout, stderr}: `role` lists the roles the host runs (comma-joined);
# stdout is kept byte for byte (binary when it is not UTF-8). A non-zero exit is in its row. For a
# command in the app's own context, see `hk app exec`.
@example "Disk space on every host" { hk server exec "df -h /" | select host stdout }
@example "Only the worker hosts" { hk server exec -r worker "uptime" }
export def "server exec" [
  command: string             # a shell command line
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> table<host: string, role: string, exit_code: int, stdout: any, stderr: string> {
  let span = (metadata $command).span
  if ($command | str trim | is-empty) {
    error make {msg: "hk server exec: no command to run", label: {text: "an empty command", span: $span}, help: "give one, e.g. hk server exec \"uptime\""}
  }
  let ctx = load $config $destination "-" $span --roles=$roles --hosts=$hosts
  hk-config $ctx | hk exec $command $ctx.servers
  | each {|r| $r | insert role (roles-of $ctx $r.host | str join ",") | move role --after host }
  | sort-by host
}

# Caddy's journal on every host behind it, as rows {time, host, role, unit, message} like
# `hk app logs` (`role` is empty: Caddy serves every role and app of the host).
#
# The last `-n` lines of each host, optionally `--since` a time and matching `--grep`; with `-f`,
# then every new line of every host as one stream, until Ctrl-C.
@example "Caddy's last lines on every host" { hk server logs -n 20 }
@example "Follow Caddy's errors" { hk server logs -f --grep error }
export def "server logs" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --hosts: string             # only these hosts (comma list, * wildcards)
  --lines (-n): int = 100     # lines per host
  --since: string             # a time journalctl understands ("1 hour ago", "2026-12-01 10:00")
  --grep: string              # only lines matching this pattern
  --follow (-f)               # then every new line of every host, until Ctrl-C
]: nothing -> table<time: datetime, host: string, role: string, unit: string, message: string> {
  let ctx = load $config $destination "-" (metadata $config).span --hosts=$hosts
  journal read (hk-config $ctx) $ctx.web [caddy.service] {|_| "" } $lines $since $grep $ctx.span --follow=$follow
}
