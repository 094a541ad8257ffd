# `hk status`: one row per host and role saying whether what runs is what was last deployed —
# the live release and port, both port units, the port Caddy really proxies to (asked through
# Caddy), the site file, the lock, maintenance and the last deploy — with `drift` and its reasons.

use config.nu [load facts unit app-path hk-config]
use roles.nu [role-ctx proxied]
use caddy.nu [site check-through ports-of CHECK_HEADER UPSTREAM_HEADER]
use audit.nu [entries]

# The audit actions after which the live release is the one they name.
const SETTING = [setup deploy redeploy rollback "app boot"]

# Run `command` (words) on `hosts`: {host: stdout} (stdout trimmed; a failed command gives "").
def ask [ctx: record, hosts: list<string>, command: list<string>]: nothing -> record {
  if ($hosts | is-empty) { return {} }
  hk-config $ctx | hk exec $command $hosts
  | each {|r| {$r.host: (if $r.exit_code == 0 { $r.stdout | into string | str trim } else { "" })} }
  | into record
}

# Which port Caddy routes the app's requests to on each host, asked through Caddy itself with hk's
# check header (its answer names the upstream).
def proxied-ports [ctx: record, hosts: list<string>]: nothing -> record {
  if ($hosts | is-empty) { return {} }
  let check = check-through $ctx (ports-of $ctx | first)
  let connect = if $check.connect_to? == null { [] } else {
    let host_port = $check.url | parse --regex '^https?://(?<name>[^/:]+)' | get 0.name
    [--connect-to $"($host_port)::($check.connect_to):"]
  }
  let words = [curl -s -o /dev/null --max-time "5" -H $"($CHECK_HEADER): ($ctx.app)" -w $"%header{($UPSTREAM_HEADER)}"]
    | append (if ($check.insecure? | default false) { [-k] } else { [] })
    | append $connect
    | append [$check.url]
  ask $ctx $hosts $words | transpose host said | each {|r|
    {$r.host: ($r.said | parse --regex ':(?<port>\d+)$' | get -o 0.port | default null | if $in == null { null } else { $in | into int })}
  } | into record
}

# The app's state on every host and role against its last successful deploy.
#
# Rows {host, role, current, expected, active_port, units, proxied_port, site, lock, maintenance,
# last_deploy, drift, drift_reasons}: `units` is the state of both port instances; `proxied_port`
# the port Caddy answered from (proxied roles); `site` whether the Caddy site file is the one hk
# writes; `expected` the version of the last successful setup, deploy, redeploy, rollback or boot.
# `hk status | where drift` is the whole health view. `--all-apps` adds every other app under the
# apps' root on these hosts, read from what it left there (its facts and audit log; no config, so
# no role names, Caddy check or site comparison: `role` is empty, `site` "unknown").
@example "Everything that is not as deployed" { hk status | where drift | select host app role drift_reasons }
@example "Every app on the hosts" { hk status --all-apps | select host app current drift }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --all-apps                  # also every other app under the apps' root on these hosts
]: nothing -> table<host: string, app: string, role: string, current: any, expected: any, active_port: any, units: record, proxied_port: any, site: string, lock: any, maintenance: bool, last_deploy: any, drift: bool, drift_reasons: list<string>> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let state = facts $ctx
  let log = entries $ctx
  let last = $log | where action in $SETTING | get -o 0
  let last_ok = $log | where action in $SETTING and result == ok | get -o 0
  let ports = ports-of $ctx
  let units = $ctx.roles | columns | each {|role| $ports | each {|p| unit (role-ctx $ctx $role) $p } } | flatten
  let active = ask $ctx $ctx.servers ([sh -c 'systemctl is-active "$@" || true' sh] | append $units)
  let maintained = ask $ctx $ctx.web [sh -c 'for f in "$@"; do test -e "$f" && echo "$f"; done; true' sh (app-path $ctx maintenance.html)]
  let site_sums = ask $ctx $ctx.web [sh -c 'sha256sum "$1" 2>/dev/null | cut -d" " -f1' sh (app-path $ctx Caddyfile)]
  let want_site = site $ctx | hash sha256
  let through = proxied-ports $ctx $ctx.web
  $ctx.roles | transpose role hosts | each {|r|
    let rctx = role-ctx $ctx $r.role
    let is_proxied = proxied $ctx $r.role
    $state | where host in $r.hosts | each {|h|
      let states = $active | get -o $h.host | default "" | lines
      let role_units = $ports | each {|p| unit $rctx $p }
      let unit_states = $units | zip $states | where {|u| $u.0 in $role_units } | each {|u| {($u.0 | parse --regex '@(?<p>\d+)\.service$' | get 0.p): $u.1} } | into record
      let live_state = if $h.active_port == null { null } else { $unit_states | get -o ($h.active_port | into string) }
      let others = $unit_states | transpose port st | where port != ($h.active_port | default 0 | into string) and st == active
      let proxied_port = if $is_proxied { $through | get -o $h.host } else { null }
      let site_state = if not $is_proxied { "n/a" } else {
        match ($site_sums | get -o $h.host | default "") { "" => "missing", $s if $s == $want_site => "hk", _ => "changed" }
      }
      let expected = $last_ok.version? | default null
      let reasons = [
        (if $expected != null and $h.current != $expected { $"current is ($h.current | default none), the last deploy was ($expected)" })
        (if $h.active_port != null and $live_state != active { $"the live instance on ($h.active_port) is ($live_state | default unknown)" })
        (if ($others | is-not-empty) and $h.lock == null { $"an instance on ($others | get port | str join ', ') runs beside the live one" })
        (if $is_proxied and $h.active_port != null and $proxied_port != $h.active_port { $"Caddy proxies to ($proxied_port | default nothing), the live port is ($h.active_port)" })
        (if $site_state == changed { "the Caddy site was changed outside hk" })
        (if $site_state == missing and $h.active_port != null { "the Caddy site is missing" })
      ] | compact
      {
        host: $h.host
        app: $ctx.app
        role: $r.role
        current: $h.current
        expected: $expected
        active_port: $h.active_port
        units: $unit_states
        proxied_port: $proxied_port
        site: $site_state
        lock: ($h.lock.who? | default null)
        maintenance: (($maintained | get -o $h.host | default "") != "")
        last_deploy: (if $last == null { null } else { $last | select action version time result })
        drift: ($reasons | is-not-empty)
        drift_reasons: $reasons
      }
    }
  } | flatten | append (if $all_apps { others $ctx } else { [] }) | sort-by host app role
}

# Every other app on the context's hosts, from its facts and audit log alone.
def others [ctx: record]: nothing -> list {
  let listed = ask $ctx $ctx.servers [sh -c 'for d in "$1"/*/; do [ -d "$d/releases" ] && basename "$d"; done; true' sh $ctx.root]
  $listed | transpose host apps | each {|h|
    $h.apps | lines | where $it != $ctx.app | each {|app|
      let one = hk-config $ctx
      let f = $one | hk deployment facts [$h.host] --app $app --root $ctx.root | first
      let log = $one | hk deployment audit [$h.host] --app $app --root $ctx.root
      let last = $log | where action in $SETTING | get -o 0
      let expected = $log | where action in $SETTING and result == ok | get -o 0.version
      # The live unit's state and whether the maintenance page is up, in one exec.
      let unit_name = if $f.active_port == null { "" } else { $"hk-($app)@($f.active_port).service" }
      let said = ask $ctx [$h.host] [sh -c 'if [ -n "$1" ]; then systemctl is-active "$1" || true; fi; if [ -e "$2" ]; then echo maintenance; fi' sh $unit_name $"($ctx.root)/($app)/maintenance.html"] | get -o $h.host | default "" | lines
      let live_state = if $f.active_port == null { null } else { $said | get -o 0 | default unknown }
      let reasons = [
        (if $expected != null and $f.current != $expected { $"current is ($f.current | default none), the last deploy was ($expected)" })
        (if $live_state != null and $live_state != active { $"the live instance on ($f.active_port) is ($live_state)" })
      ] | compact
      {
        host: $h.host, app: $app, role: "", current: $f.current, expected: $expected, active_port: $f.active_port
        units: (if $live_state == null { {} } else { {($f.active_port | into string): $live_state} })
        proxied_port: null, site: "unknown", lock: ($f.lock.who? | default null)
        maintenance: ("maintenance" in $said)
        last_deploy: (if $last == null { null } else { $last | select action version time result })
        drift: ($reasons | is-not-empty), drift_reasons: $reasons
      }
    }
  } | flatten
}
