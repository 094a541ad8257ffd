# On a real systemd host: the shared qemu guest (tests/lib/guest.nu), reached as the host `guest`.
use std/assert
use lib/helpers.nu *
use lib/guest.nu

export def "test guest: systemd runs as PID 1 and hk exec reads its state" [] {
  let rows = guest config | hk exec "systemctl is-system-running; readlink /proc/1/exe" guest
  assert equal ($rows | length) 1
  assert equal $rows.0.host guest
  assert equal $rows.0.exit_code 0
  let lines = $rows.0.stdout | lines
  assert ($lines.0 in [running degraded]) $"systemd says ($lines.0)"
  has $lines.1 systemd
  # The guest's clock was set on resume: within a minute of ours.
  let guest_now = guest sh "date +%s" | str trim | into int
  let drift = ((date now | format date '%s' | into int) - $guest_now) | math abs
  assert ($drift < 60) $"guest clock is ($drift) s off"
  assert equal (guest sh hostname | str trim) $guest.instance
}

export def "test guest: files, dirs and links over ssh, then noop" [] {
  let root = $"/srv/hk-guest-(random chars -l 8)"
  let resources = [
    {type: dir, path: $root, mode: "0750", owner: hk, group: hk}
    {type: file, path: $"($root)/app.conf", content: "port = 9001\n", mode: "0640", owner: hk}
    {type: file, path: $"($root)/blob.bin", content: 0x[00 ff 10 00]}
    {type: link, path: $"($root)/current", target: app.conf}
  ]
  let config = guest config | insert resources $resources
  let plan = $config | hk plan guest
  assert equal ($plan.action | uniq) [create]
  assert equal ($plan.host | uniq) [guest]
  let events = $plan | hk apply --confirm
  assert equal ($events | where status != ok | length) 0 $"events: ($events | to nuon)"
  assert equal (($config | hk plan guest).action | uniq) [noop]
  let seen = guest sh $"stat -c '%n %a %U %G' ($root) ($root)/app.conf; cat ($root)/app.conf; readlink ($root)/current; od -An -tx1 ($root)/blob.bin"
  let lines = $seen | lines
  assert equal $lines.0 $"($root) 750 hk hk"
  assert equal $lines.1 $"($root)/app.conf 640 hk root"
  assert equal $lines.2 "port = 9001"
  assert equal $lines.3 app.conf
  assert equal ($lines.4 | str trim) "00 ff 10 00"
  # Drift on the host shows up as one update.
  guest sh $"echo 'port = 1' > ($root)/app.conf" | ignore
  let drift = $config | hk plan guest | where action != noop
  assert equal $drift.id [$"file:($root)/app.conf"]
  assert equal $drift.action [update]
}

export def "test guest: a tracked run is undone by hk down" [] {
  let root = $"/srv/hk-down-(random chars -l 8)"
  guest sh $"mkdir -p ($root) && printf 'before\\n' > ($root)/motd" | ignore
  let config = guest config | insert resources [
    {type: file, path: $"($root)/motd", content: "after\n"}
    {type: file, path: $"($root)/new.txt", content: "new\n"}
  ]
  let roots = guest roots
  guest apply $config.resources $roots | ignore
  assert equal (guest sh $"cat ($root)/motd") "after\n"
  assert equal (guest runs $roots | length) 1
  let down = guest down-plan $roots
  assert equal ($down | where action != noop | length) 2
  $down | hk apply --confirm | ignore
  assert equal (guest sh $"cat ($root)/motd; test -e ($root)/new.txt || echo gone") "before\ngone\n"
}

export def "test guest: a second instance resumes, is idempotent, survives a stale pid file, is destroyed" [] {
  let config = {instances: {hk-test-2: (guest spec)}}
  let dir = $env.HK_INSTANCES_DIR | path join hk-test-2
  # A crash left a pid file naming a process that is gone.
  mkdir $dir
  let dead = ^sh -c 'echo $$' | str trim
  $dead | save -f ($dir | path join qemu.pid)
  let before = $config | hk instance status hk-test-2
  assert equal $before.state stopped
  has $before.note "stale pid file"
  let up = $config | hk instance ensure hk-test-2
  assert equal $up.state running
  assert ($up.port > 0)
  assert ($up.pid != ($dead | into int))
  assert equal ($config | hk instance ensure hk-test-2 | get pid) $up.pid
  let gone = $config | hk instance destroy hk-test-2
  assert equal $gone.state absent
  assert not ($dir | path exists)
  # The shared image cache stays for the next instance.
  assert ($up.image | is-not-empty)
}

export def "test guest: the staging example deploys the app behind caddy and is ready" [] {
  let config = $env.HK_TEST_ROOT | path join examples/staging/hk.nu
  with-env {HK_STAGING_INSTANCE: $guest.instance, APP_TOKEN: (random chars -l 24)} {
    let plan = hk plan demo $config
    assert equal ($plan | where action == noop | length) 0 ($plan | select id action | to nuon)
    # The new Caddyfile restarts caddy.
    assert equal ($plan | where id == "service:caddy.service" | get 0.changes.field) [restart]
    let events = $plan | hk apply --confirm
    assert equal ($events | where status != ok | length) 0 ($events | to nuon)
    assert equal ($events | where id == "ready:site" | get 0.status) ok
    has (hk exec "curl -s http://127.0.0.1/" demo $config | get 0.stdout) "hk example app"
    let again = hk plan demo $config
    assert equal ($again | where action != noop | get id) ["ready:site"]
  }
}

export def "test guest: a persistent instance keeps its disk when qemu dies and boots from it again" [] {
  let config = {
    instances: {hk-test-p: (guest spec | update lifecycle persistent)}
    hosts: {p: {instance: hk-test-p, ssh: {timeout: 10min}}}
  }
  assert equal ($config | hk instance ensure hk-test-p | get state) running
  assert equal ($config | hk exec "echo kept > /root/marker && sync" p | get 0.exit_code) 0
  ^kill -9 ($config | hk instance status hk-test-p | get pid)
  sleep 500ms
  let crashed = $config | hk instance status hk-test-p
  assert equal $crashed.state stopped
  has $crashed.note "stale pid file"
  assert equal ($config | hk instance ensure hk-test-p | get state) running
  let out = $config | hk exec "cat /root/marker; systemctl is-system-running" p | get 0.stdout | lines
  assert equal $out.0 kept
  assert ($out.1 in [running degraded]) $"systemd says ($out.1)"
  assert equal ($config | hk instance destroy hk-test-p | get state) absent
}
