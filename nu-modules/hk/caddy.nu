# Caddy in front of every app on a host. The main file imports each app's own site file
# (`<root>/<app>/Caddyfile`); an app's site proxies to the port its live instance listens on. Every
# change to a site is validated with the whole configuration in place and rolled back when that
# fails, then applied with a reload (never a restart: requests in flight finish on the old config).

use config.nu [app-path]

export const MAIN = "/etc/caddy/Caddyfile"

# What every site change must pass: the whole configuration, every app's site in place.
export const VALIDATE = "caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile"

# The request header that asks a site which release answers, and the answer's header.
const CHECK_HEADER = "X-Hk-Check"
const UPSTREAM_HEADER = "X-Hk-Upstream"

# Seconds, as Caddy writes durations.
def caddy-duration [d: duration]: nothing -> string {
  $"(($d / 1sec) | math ceil)s"
}

# The import line that brings in every app's site.
export def import-line [root: string]: nothing -> string {
  $"import ($root)/*/Caddyfile"
}

# The main file hk writes where the distribution's untouched default (or nothing) was: global
# options (a grace period for reloads, HTTP/1.1 and 2 only — HTTP/3 and websockets are cut on
# reload) and the import of every app's site.
export def main-file [root: string, grace: duration]: nothing -> string {
  [
    "# Written by hk in place of the distribution's default. Each app hk deploys has its site in"
    $"# ($root)/<app>/Caddyfile, imported below; add your own sites after the import."
    "{"
    $"\tgrace_period (caddy-duration $grace)"
    "\tservers {"
    "\t\tprotocols h1 h2"
    "\t}"
    "}"
    ""
    (import-line $root)
    ""
  ] | str join "\n"
}

# The app's site: proxy to the live instance's port, retrying dials for a moment (a safety net),
# closing idle upstream connections after 2 s (so an old instance drains visibly), and naming the
# release that answers to requests that ask with the check header.
export def site [ctx: record, port: int, version: string]: nothing -> string {
  [
    $"# hk: app ($ctx.app), release ($version) on 127.0.0.1:($port). Written by hk at every deploy."
    $"($ctx.proxy.host) {"
    $"\t@hk_check header ($CHECK_HEADER) ($ctx.app)"
    $"\theader @hk_check ($UPSTREAM_HEADER) \"($version) 127.0.0.1:($port)\""
    $"\treverse_proxy 127.0.0.1:($port) {"
    "\t\tlb_try_duration 5s"
    "\t\tlb_try_interval 100ms"
    "\t\ttransport http {"
    "\t\t\tkeepalive 2s"
    "\t\t}"
    "\t}"
    "}"
    ""
  ] | str join "\n"
}

# An http check of the app through Caddy on the host itself: the site's address, reached on
# 127.0.0.1, must answer the health path from `version` on `port`.
export def check-through [ctx: record, port: int, version: string]: nothing -> record {
  let host = $ctx.proxy.host
  let path = $ctx.health_check.path
  let base = if ($host | str starts-with ":") {
    {url: $"http://127.0.0.1($host)($path)"}
  } else if ($host | str starts-with "http://") {
    {url: $"($host)($path)", connect_to: "127.0.0.1"}
  } else {
    # A bare name is served over HTTPS; its certificate may not be issued yet.
    {url: $"https://($host)($path)", connect_to: "127.0.0.1", insecure: true}
  }
  $base | merge {
    status: 200
    headers: {($CHECK_HEADER): $ctx.app}
    expect_header: $"($UPSTREAM_HEADER): ($version) 127.0.0.1:($port)"
  }
}

# The resources that point the app's site at `port` (running `version`) and reload Caddy, validated
# with the whole configuration first; `null` port: the site is removed.
export def site-resources [ctx: record, port: any, version: any]: nothing -> list {
  let file = app-path $ctx Caddyfile
  let site_file = if $port == null {
    {type: file, path: $file, state: absent}
  } else {
    {type: file, path: $file, content: (site $ctx $port $version), mode: "0644", check: $VALIDATE}
  }
  [
    $site_file
    {type: service, name: caddy.service, state: running, reload_on: [$"file:($file)"]}
  ]
}
