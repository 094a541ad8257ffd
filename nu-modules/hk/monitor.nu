# `hk monitor …`: the app's health as a monitor sees it, from outside — its health path through
# Caddy on every host behind it. `gatus` writes those checks for Gatus; `check` runs them now.

use listing.nu [commands-matching]
use config.nu [load hk-config fail]
use errors.nu [count]

# One check per host behind Caddy: the host's own address (or, for an instance hk runs, the port
# its Caddy is forwarded to here) with the site's name as the Host header, so each host is checked
# even where DNS points at only one of them.
def checks [ctx: record]: nothing -> table<app: string, host: string, url: string, headers: record, insecure: bool> {
  let site = $ctx.proxy.host
  let https = not (($site | str starts-with "http://") or ($site | str starts-with ":"))
  let name = $site | str replace -r '^https?://' '' | str replace -r ':\d+$' ''
  let path = $ctx.health_check.path
  $ctx.web | each {|host|
    let h = $ctx.hosts | get $host
    let base = if $h.instance? != null {
      let status = hk-config $ctx | hk instance status $h.instance
      let port = $status.ports? | default {} | get -o "80"
      if $port == null { fail $"($host): instance ($h.instance) forwards no port 80 here" $ctx.span $"bring it up: hk instance ensure ($h.instance)" }
      $"http://127.0.0.1:($port)"
    } else if ($h.local? | default false) {
      "http://127.0.0.1"
    } else if $https { $"https://($h.address)" } else { $"http://($h.address)" }
    let port_suffix = if ($site | str starts-with ":") { $site } else { "" }
    {
      app: $ctx.app
      host: $host
      url: $"($base)($port_suffix)($path)"
      headers: (if ($site | str starts-with ":") { {} } else { {Host: $name} })
      insecure: ($https and $h.instance? == null)
    }
  }
}

# A Gatus configuration (YAML) with one endpoint per host behind Caddy: the health path through
# Caddy, status 200 expected, every `interval`.
#
# Endpoints are named `<app> on <host>` in the group `<app>`; merge several apps' files (or pipe
# them through `from yaml`) for one Gatus.
@example "Write the app's Gatus endpoints" { hk monitor gatus | save -f gatus.yaml }
@example "Every minute" { hk monitor gatus --interval 1min }
export def "monitor gatus" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --interval: duration = 30sec  # how often Gatus checks
]: nothing -> string {
  let ctx = load $config $destination "-" (metadata $config).span
  let every = $"($interval / 1sec | math round)s"
  {
    endpoints: (checks $ctx | each {|c|
      {name: $"($c.app) on ($c.host)", group: $c.app, url: $c.url, interval: $every, conditions: ["[STATUS] == 200"]}
      | if ($c.headers | is-empty) { $in } else { $in | insert headers $c.headers }
      | if $c.insecure { $in | insert client {insecure: true} } else { $in }
    })
  } | to yaml
}

# Run the monitor's checks now, from here: one row per host behind Caddy.
#
# Rows {app, host, url, status, ok, duration}: `status` is the HTTP status (null when nothing
# answered), `ok` whether it is 200.
@example "Which hosts fail their check?" { hk monitor check | where not ok }
export def "monitor check" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --timeout: duration = 10sec # how long one check may take
]: nothing -> table<app: string, host: string, url: string, status: any, ok: bool, duration: duration> {
  let ctx = load $config $destination "-" (metadata $config).span
  checks $ctx | par-each {|c|
    let started = date now
    let status = try {
      http get --full --allow-errors --insecure=$c.insecure --max-time $timeout --headers $c.headers $c.url | get status
    } catch { null }
    {app: $c.app, host: $c.host, url: $c.url, status: $status, ok: ($status == 200), duration: ((date now) - $started)}
  } | sort-by host
}

# The monitoring commands.
@example "The monitor commands" { hk monitor | get command } --result ["hk monitor check" "hk monitor gatus"]
export def main []: nothing -> table<command: string, description: string> {
  commands-matching '^hk monitor (gatus|check)$'
}
