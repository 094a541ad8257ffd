# Helpers of the deploy tests: a scratch project deploying the example app `hello` to a test guest,
# and a load client sending requests through the guest's Caddy for the whole of a deploy.
use std/assert
use helpers.nu *
use guest.nu

const root = path self | path dirname | path dirname | path dirname

# A scratch project for `service`: config/deploy.nuon (the host `guest` on `instance`, a site
# `http://<service>.test`, the app on `port`/`port + 1`) and dist/bin/hello; the build writes the
# version into dist/VERSION, which the app answers with. `extra` is merged over the config.
export def project [service: string, port: int, --instance: string = "hk-deploy", --extra: record = {}]: nothing -> record {
  let dir = scratch
  mkdir ($dir | path join config) ($dir | path join dist/bin)
  cp ($root | path join target/debug/hello) ($dir | path join dist/bin/hello)
  let config = {
    service: $service
    instances: {($instance): (guest spec)}
    hosts: {guest: {instance: $instance, ssh: {timeout: 10min}}}
    servers: [guest]
    release: {path: dist, cmd: "bin/hello", build: "printf '%s\\n' \"$HK_VERSION\" > dist/VERSION"}
    proxy: {host: $"http://($service).test", app_port: $port}
    health_check: {path: /up, interval: 300ms, timeout: 30sec}
    drain_timeout: 10sec
    retain: 3
  } | merge deep --strategy overwrite $extra
  $config | save ($dir | path join config/deploy.nuon)
  {dir: $dir, config: ($dir | path join config/deploy.nuon), service: $service, instance: $instance, site: $"($service).test"}
}

# What the app answers through the guest's Caddy for `site` (the body, trimmed).
export def answer [p: record, --site: string, --path: string = "/"]: nothing -> string {
  let site = $site | default $p.site
  guest sh --on $p.instance $"curl -s -H 'Host: ($site)' http://127.0.0.1($path)" | str trim
}

# The forwarded port of the guest's Caddy on this machine.
export def caddy-port [instance: string]: nothing -> int {
  guest config $instance | hk instance status $instance | get ports | get "80"
}

# Start clients sending requests to `site` through the guest's Caddy (keep-alive, new connection,
# POST and slow; each pausing `pause_ms` between requests); `stop-load` ends them (once they made
# `at_least` requests) and returns what they saw.
export def start-load [p: record, --at-least: int = 0, --pause-ms: int = 2]: nothing -> record {
  let dir = scratch
  let stop = $dir | path join stop
  let out = $dir | path join load.json
  let port = caddy-port $p.instance
  let bin = $root | path join target/debug/hello-load
  let args = [--target $"127.0.0.1:($port)" --host $p.site --stop-file $stop --out $out --slow-ms 300 --pause-ms $pause_ms --keepalive 3 --fresh 2 --post 2 --slow 1 --min-requests $at_least]
  job spawn { ^$bin ...$args } | ignore
  {stop: $stop, out: $out}
}

# Stop the load clients: `{requests, failed, retried, statuses, versions, errors, records}` with
# records as a table `start end kind status version failed` (times in ms since the epoch).
export def stop-load [load: record]: nothing -> record {
  touch $load.stop
  let deadline = (date now) + 180sec
  while not ($load.out | path exists) {
    if (date now) > $deadline { error make {msg: "the load clients did not stop within 180 s"} }
    sleep 200ms
  }
  let result = open $load.out
  let columns = $result.columns
  $result | update records {|r| $r.records | each {|row| $columns | zip $row | into record } }
}

# No request of `load` failed, and it sent at least `at_least`. The figures of `what` are kept in
# load.log of the test scratch folder, for the record of a passing run too.
export def no-failures [load: record, at_least: int, what: string = "load"]: nothing -> nothing {
  $"($what): ($load.requests) requests, ($load.failed) failed, ($load.retried) retried\n" | save --append ($env.HK_TEST_SCRATCH | path join load.log)
  assert equal $load.failed 0 $"failed requests: ($load.errors | to nuon)"
  assert ($load.requests >= $at_least) $"only ($load.requests) requests were sent"
}

# Milliseconds since the epoch, as the load client records times.
export def now-ms []: nothing -> int {
  (date now | into int) // 1_000_000
}
