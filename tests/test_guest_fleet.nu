# Deploys to two real systemd hosts at once (two qemu guests of this test's own): a host failing to
# prepare switches nothing anywhere; a host failing to switch brings the host that switched back;
# in boot batches of one host, a second batch failing brings the first back, under load.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use lib/terminal.nu
use ../nu-modules/hk

const hosts = {web1: hk-fleet-1, web2: hk-fleet-2}

# How many journalctl processes run on each host.
def followers []: nothing -> record {
  $hosts | items {|host, instance| {$host: (guest sh --on $instance "pgrep -cx journalctl || true" | str trim | into int)} } | into record
}

# Wait (up to a minute) until `done` holds.
def eventually [what: string, done: closure] {
  let deadline = (date now) + 60sec
  while not (do $done) {
    if (date now) > $deadline { error make {msg: $"still not so after a minute: ($what)"} }
    sleep 500ms
  }
}

# `hk app logs -f` in a terminal: both hosts' lines in one stream while an `hk app boot` restarts
# them; Ctrl-C ends it, and the journalctl it started on each host.
def follow-test [p: record] {
  let followed = $p.dir | path join followed.jsonl
  let code = r#'
try {
  hk app logs -f -n 0 | each {|r| $"($r | select host role unit message | to json -r)\n" | save -a FOLLOWED } | ignore
} catch {|e| print $"stopped: ($e.msg)" }
print "follow ended"
'# | str replace FOLLOWED $followed
  assert equal (followers) {web1: 0, web2: 0}
  let session = terminal start $p.dir $code
  eventually "a follower on each host" { (followers) == {web1: 1, web2: 1} }
  hk app boot --quiet | ignore
  let lines = {|| if ($followed | path exists) { open --raw $followed | lines | each { from json } } else { [] } }
  eventually "both hosts' new instance in the stream" {
    (do $lines | where message =~ "listening on" | get host | uniq | sort) == [web1 web2]
  }
  terminal keys $session C-c
  terminal wait-for $session "follow ended" --timeout 30sec | ignore
  eventually "no follower left on any host" { (followers) == {web1: 0, web2: 0} }
  terminal stop $session
  let seen = do $lines
  assert equal ($seen | get role | uniq) [web]
  assert ($seen | all {|l| $l.unit starts-with $"hk-($p.service)@" }) "every line is of the app's units"
}

# What each host's Caddy answers for the app's site.
def answers [p: record]: nothing -> record {
  $hosts | items {|host, instance| {$host: (answer ($p | update instance $instance))} } | into record
}

def fleet-test [p: record] {
  cd $p.dir
  let setup = hk setup --version v1 --quiet
  assert equal ($setup | where phase == prepare | get host | uniq | sort) [web1 web2]
  assert equal (answers $p) {web1: v1, web2: v1}
  # The distribution's default Caddyfile was replaced on both.
  for instance in ($hosts | values) {
    has (guest sh --on $instance "cat /etc/caddy/Caddyfile") "import /opt/hk/*/Caddyfile"
  }
  let app = $p.service

  # web2 cannot prepare: a directory sits where its new port's link goes.
  guest sh --on $hosts.web2 $"mkdir -p /opt/hk/($app)/ports/4001/in-the-way" | ignore
  let err = error-of { hk deploy --version v2 --quiet }
  has $err "nothing was switched"
  has $err "web2"
  assert equal (answers $p) {web1: v1, web2: v1}
  let new_on_web1 = guest sh --on $hosts.web1 $"systemctl is-active hk-($app)@4001 || true" | str trim
  assert equal $new_on_web1 inactive
  assert equal (hk audit | first | select action version result) {action: deploy, version: v2, result: failed}
  assert equal (hk lock status | get locked) false
  guest sh --on $hosts.web2 $"rm -r /opt/hk/($app)/ports/4001" | ignore

  # web2 cannot switch: a file sits where the new port's marker folder goes.
  guest sh --on $hosts.web2 $"touch /opt/hk/($app)/upstreams/4001.x && rm -r /opt/hk/($app)/upstreams/4001 && mv /opt/hk/($app)/upstreams/4001.x /opt/hk/($app)/upstreams/4001" | ignore
  let err = error-of { hk deploy --version v2 --quiet }
  has $err "failed while switching"
  has $err "every host is back on v1"
  assert equal (answers $p) {web1: v1, web2: v1}
  for instance in ($hosts | values) {
    let state = guest sh --on $instance $"readlink /opt/hk/($app)/upstream /opt/hk/($app)/current; cat /opt/hk/($app)/active_port; systemctl is-active hk-($app)@4000 hk-($app)@4001 || true" | lines
    assert equal $state [upstreams/4000 releases/v1 "4000" active inactive] $"on ($instance)"
  }
  assert equal (hk audit | first | get result) failed
  guest sh --on $hosts.web2 $"rm /opt/hk/($app)/upstreams/4001" | ignore

  # Nothing in the way: both switch.
  let deployed = hk deploy --version v2 --quiet
  assert equal ($deployed | where phase == switch | get host | uniq | sort) [web1 web2]
  assert equal (answers $p) {web1: v2, web2: v2}
  assert equal (hk versions | where current | get version | uniq) [v2]

  # One host at a time (boot.limit 1), the second batch failing to switch, under load through
  # web1: web1 switched first and goes back; every request is answered.
  open $p.config | insert boot {limit: 1} | save ($p.dir | path join config/batched.nuon)
  guest sh --on $hosts.web2 $"touch /opt/hk/($app)/upstreams/4000.x && rm -r /opt/hk/($app)/upstreams/4000 && mv /opt/hk/($app)/upstreams/4000.x /opt/hk/($app)/upstreams/4000" | ignore
  let load = start-load $p --at-least 300
  let err = error-of { hk deploy -c config/batched.nuon --version v3 }
  sleep 1sec
  no-failures (stop-load $load) 300 "batches, the second failing"
  has $err "failed in batch 2 of 2 (web2) while switching; every host is back on v2"
  assert equal (answers $p) {web1: v2, web2: v2}
  let entry = hk audit | first
  assert equal ($entry | select action version result) {action: deploy, version: v3, result: failed}
  has $entry.error "switch failed in batch 2 of 2 (web2)"
  guest sh --on $hosts.web2 $"rm /opt/hk/($app)/upstreams/4000" | ignore
  # Nothing in the way: batch by batch, both switch.
  let batched = hk deploy -c config/batched.nuon --version v3 --quiet
  assert equal ($batched | where phase == switch | get host) [web1 web2]
  assert equal (answers $p) {web1: v3, web2: v3}
  follow-test $p
}

export def "test guest fleet: a host failing to prepare switches nothing, one failing to switch brings the others back, and so does a failing batch, and logs follow both" [] {
  let spec = guest spec
  let p = project fleet 4000 --instance $hosts.web1 --extra {
    instances: ($hosts | values | each {|n| {$n: $spec} } | into record)
    hosts: ($hosts | items {|host, instance| {$host: {instance: $instance, ssh: {timeout: 10min}}} } | into record)
    servers: [web1 web2]
  }
  try {
    fleet-test $p
  } catch {|e|
    $hosts | values | each {|n| guest down $n } | ignore
    $e.raw
  }
  $hosts | values | each {|n| guest down $n } | ignore
}
