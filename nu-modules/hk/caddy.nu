# Caddy in front of every app on a host. The main file imports each app's own site file
# (`<root>/<app>/Caddyfile`); an app's site proxies to the port its live instance listens on. Every
# change to a site is validated with the whole configuration in place and rolled back when that
# fails, then applied with a reload (never a restart: requests in flight finish on the old config).

use config.nu [app-path]

export const MAIN = "/etc/caddy/Caddyfile"

# What every site change must pass: the whole configuration, every app's site in place.
export const VALIDATE = "caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile"

# The request header that asks a site which release answers, and the answer's header.
export const CHECK_HEADER = "X-Hk-Check"
export const UPSTREAM_HEADER = "X-Hk-Upstream"

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

# The ports an app's instances take turns on.
export def ports-of [ctx: record]: nothing -> list<int> {
  [$ctx.proxy.app_port ($ctx.proxy.app_port + 1)]
}

# The app's site. It routes each request to the port whose marker the `upstream` link reaches
# (`upstream` → `upstreams/<port>`, holding the file `<port>`): hk switches traffic by flipping that
# link, atomically and without reloading Caddy (a reload closes connections Caddy has just accepted).
# The first port is asked again after the second, so a request that meets a switch between the two
# checks still finds the live one. Upstream connections idle for 2 s close, so an old instance drains
# visibly; dials are retried for a moment (a safety net); requests that ask with the check header are
# told which port answered.
export def site [ctx: record]: nothing -> string {
  let live = app-path $ctx upstream
  let ports = ports-of $ctx
  let marker = {|port, indent| [
    $"($indent)file {"
    $"($indent)\troot ($live)"
    $"($indent)\ttry_files /($port)"
    $"($indent)}"
  ] }
  let proxy = {|port| [
    $"\t\treverse_proxy @hk_($port) 127.0.0.1:($port) {"
    "\t\t\tlb_try_duration 5s"
    "\t\t\tlb_try_interval 100ms"
    "\t\t\ttransport http {"
    "\t\t\t\tkeepalive 2s"
    "\t\t\t}"
    "\t\t}"
  ] }
  let per_port = $ports | each {|port|
    [
      $"\t@hk_check_($port) {"
      $"\t\theader ($CHECK_HEADER) ($ctx.app)"
    ]
    | append (do $marker $port "\t\t")
    | append [
      "\t}"
      $"\theader @hk_check_($port) ($UPSTREAM_HEADER) \"127.0.0.1:($port)\""
      $"\t@hk_($port) {"
    ]
    | append (do $marker $port "\t\t")
    | append ["\t}"]
  } | flatten
  [
    $"# hk: app ($ctx.app). Traffic goes to the port `($live)` points at; hk switches it without a reload."
    "# Written by hk; do not edit."
    $"($ctx.proxy.host) {"
  ]
  | append $per_port
  | append (pages $ctx)
  | append ["\troute {"]
  | append (do $proxy ($ports | first))
  | append (do $proxy ($ports | last))
  | append (do $proxy ($ports | first))
  | append [
    $"\t\trespond \"no release of ($ctx.app) is live\" 503"
    "\t}"
    "}"
    ""
  ]
  | str join "\n"
}

# The pages that answer in place of the app while their file is there (checked on every request,
# so turning one on or off needs no reload): maintenance first, then stopped; both 503. hk's own
# check through Caddy (its header) passes by them, so a deploy still checks the new release.
export const PAGES = [maintenance stopped]

def pages [ctx: record]: nothing -> list<string> {
  let dir = app-path $ctx
  $PAGES | each {|page| [
    $"\t@hk_($page) {"
    "\t\tfile {"
    $"\t\t\troot ($dir)"
    $"\t\t\ttry_files /($page).html"
    "\t\t}"
    $"\t\tnot header ($CHECK_HEADER) ($ctx.app)"
    "\t}"
    # A page removed between the matcher and the file server (`hk app live` as the request
    # arrives) passes the request on to the app, as it was, instead of a 404.
    $"\thandle @hk_($page) {"
    "\t\troute {"
    $"\t\t\troot * ($dir)"
    $"\t\t\trewrite * /($page).html"
    "\t\t\tfile_server {"
    "\t\t\t\tstatus 503"
    "\t\t\t\tpass_thru"
    "\t\t\t}"
    "\t\t\trewrite * {http.request.orig_uri}"
    "\t\t}"
    "\t}"
  ] } | flatten
}

# An http check of the app through Caddy on the host itself: the site's address, reached on
# 127.0.0.1, must answer the health path from the instance on `port`.
export def check-through [ctx: record, port: int]: nothing -> record {
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
    expect_header: $"($UPSTREAM_HEADER): 127.0.0.1:($port)"
  }
}

# The app's site in place (validated with the whole configuration first, Caddy reloaded when it
# changed — on the first deploy, or when the site's address or ports change) with the marker each
# port is routed by; then the switch itself: `upstream` to `port`.
export def site-resources [ctx: record, port: int]: nothing -> list {
  let file = app-path $ctx Caddyfile
  let markers = ports-of $ctx | each {|p|
    let dir = app-path $ctx $"upstreams/($p)"
    [{type: dir, path: $dir, mode: "0755"} {type: file, path: $"($dir)/($p)", content: "", mode: "0644"}]
  } | flatten
  [
    {type: dir, path: (app-path $ctx upstreams), mode: "0755"}
  ]
  | append $markers
  | append [
    {type: file, path: $file, content: (site $ctx), mode: "0644", check: $VALIDATE}
    {type: service, name: caddy.service, state: running, reload_on: [$"file:($file)"]}
    {type: link, path: (app-path $ctx upstream), target: $"upstreams/($port)", after: [service:caddy.service]}
  ]
}
