# `hk app` operations that Caddy answers for, on the load guest (`hk-load`; its tests run one at a
# time, so no other test reloads the Caddy whose answers are counted): maintenance and stopped
# pages by their files without a reload, live and start, a zero-downtime boot; a second app on the
# same host under load sees no failed request throughout.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use ../nu-modules/hk
# Requests to `site` through the guest's Caddy, one after another until `stop` exists: rows
# {status, body} in `out` (nuon), written when it ends.
def poll-site [port: int, site: string, stop: string, out: string]: nothing -> int {
  job spawn {
    mut seen = []
    while not ($stop | path exists) {
      let r = try { http get --full --allow-errors --max-time 10sec --headers {Host: $site} $"http://127.0.0.1:($port)/" } catch {|e| {status: 0, body: $e.msg} }
      $seen = ($seen | append {status: $r.status, body: ($r.body | into string | str trim)})
      sleep 20ms
    }
    # Whole or not at all: the reader waits for the file.
    $seen | to nuon | save -f $"($out).part"
    mv -f $"($out).part" $out
  }
}

def poll-results [stop: string, out: string]: nothing -> table {
  touch $stop
  let deadline = (date now) + 60sec
  while not ($out | path exists) and (date now) < $deadline { sleep 100ms }
  open --raw $out | from nuon
}

export def "test guest load app: maintenance and stop answer 503 for one app without a reload, live and start bring it back, boot restarts with zero downtime" [] {
  let a = project $"ops-(random chars -l 6 | str lowercase)" 6850 --instance $guest.load_instance
  let b = project $"other-(random chars -l 6 | str lowercase)" 6870 --instance $guest.load_instance
  for p in [$a $b] { do { cd $p.dir; hk setup --version v1 --quiet | ignore } }
  cd $a.dir
  let port = caddy-port $a.instance
  let scratch_dir = scratch
  # The other app on the same host is under load the whole time: it must see no failure.
  let load = start-load $b --at-least 100
  let stop = $scratch_dir | path join stop
  let out = $scratch_dir | path join seen.nuon
  poll-site $port $a.site $stop $out | ignore
  sleep 1sec
  hk app maintenance --message "Back at <10:00> UTC" --quiet | ignore
  sleep 1sec
  assert equal (answer $a | str contains "Back at &lt;10:00&gt; UTC") true
  hk app live --quiet | ignore
  sleep 1sec
  let seen = poll-results $stop $out
  let statuses = $seen | get status | uniq
  assert equal ($statuses | sort) [200 503] $"statuses: ($seen | to nuon)"
  # 200, then 503 with the message, then 200 again: nothing else.
  let runs = $seen | window 2 | where {|w| $w.0.status != $w.1.status } | length
  assert equal $runs 2 $"the answers changed ($runs) times"
  assert ($seen | where status == 503 | all {|r| $r.body | str contains "Back at &lt;10:00&gt; UTC" }) "a 503 without the message"
  # A custom page of the project's.
  mkdir .hk
  "<html><body>custom: {{message}}</body></html>\n" | save -f .hk/maintenance.html
  hk app maintenance -m "soon" --quiet | ignore
  assert equal (answer $a) "<html><body>custom: soon</body></html>"
  # It survives a deploy, which still checks the new release through Caddy.
  hk deploy --version v2 --quiet | ignore
  assert equal (answer $a) "<html><body>custom: soon</body></html>"
  hk app live --quiet | ignore
  assert equal (answer $a) v2

  # Stop: 503 "stopped" for this app alone; start: 200 again, without a deploy.
  hk app stop --quiet | ignore
  has (answer $a) "is stopped"
  let state = guest sh --on $a.instance $"systemctl is-active hk-($a.service)@6851 || true" | str trim
  assert equal $state inactive
  hk app start --quiet | ignore
  assert equal (answer $a) v2

  # boot: a new instance of the live release beside the old, traffic switched, the old retired.
  let before = hk app version | first
  let booted = hk app boot --quiet
  assert equal ($booted | get phase | uniq) [prepare switch retire]
  let after = hk app version | first
  assert equal $after.version v2
  assert ($after.port != $before.port) $"still on ($after.port)"
  assert equal (answer $a) v2
  let seen_b = stop-load $load
  no-failures $seen_b 100 "another app during maintenance, stop, start and boot"
  let audit = hk audit | get action | first 7
  for want in [boot start stop live maintenance] { assert ($want in $audit) $"($want) not in the audit log: ($audit)" }
}
