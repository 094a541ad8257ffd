# Deploys under load on a real systemd host with Caddy: a guest of this file's own (`hk-load`), so
# no other test reloads its Caddy while the clients count every answer. Port 80 is forwarded here;
# the load clients on this machine go through Caddy for the whole of each deploy.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use ../nu-modules/hk

export def "test guest load: v1 to v2, a rollback, a failed deploy and 5 deploys in a row under load with zero failed requests" [] {
  let p = project $"load-(random chars -l 6 | str lowercase)" 5000 --instance $guest.load_instance
  cd $p.dir
  let setup = hk setup --version v1 --quiet
  assert equal ($setup | where status == failed | length) 0
  assert equal (answer $p) v1
  # Caddy's main file: the untouched default was replaced, with the import and a grace period.
  let main = guest sh --on $p.instance "cat /etc/caddy/Caddyfile"
  has $main "import /opt/hk/*/Caddyfile"
  has $main "grace_period"

  let load = start-load $p --at-least 2000
  sleep 2sec
  let deployed = hk deploy --version v2 --quiet
  let done = now-ms
  sleep 2sec
  let seen = stop-load $load
  no-failures $seen 2000 "deploy v1 to v2"
  assert ("v1" in ($seen.versions | columns)) "v1 was never seen"
  assert ("v2" in ($seen.versions | columns)) "v2 was never seen"
  let after = $seen.records | where start > $done
  assert ($after | is-not-empty) "no request after the deploy"
  assert equal ($after | get version | uniq) [v2]
  assert equal ($deployed | get phase | uniq) [build prepare switch retire prune]
  # The old instance is stopped, the new one runs; current and active_port moved.
  let units = guest sh --on $p.instance $"systemctl is-active hk-($p.service)@5000 hk-($p.service)@5001 || true" | lines
  assert equal $units [inactive active]
  let live = hk versions | where current
  assert equal $live.version [v2]
  assert equal $live.active_port [5001]

  # Rollback without a version, under load: back to v1, the release that was live before.
  let load = start-load $p --at-least 500
  hk rollback --quiet | ignore
  sleep 1sec
  no-failures (stop-load $load) 500 "rollback v2 to v1"
  assert equal (answer $p) v1
  assert equal (hk versions | where current | get version) [v1]
  assert equal (hk audit | first | select action version result) {action: rollback, version: v1, result: ok}

  # A release whose health check fails, under load: the live one keeps answering every request.
  let broken = $p.dir | path join broken
  mkdir ($broken | path join bin)
  "#!/bin/sh\necho 'hello: broken on purpose' >&2\nexit 1\n" | save ($broken | path join bin/hello)
  chmod +x ($broken | path join bin/hello)
  let broken_config = $p.dir | path join config/broken.nuon
  open $p.config | update release.path broken | update health_check.timeout 5sec | save $broken_config
  let load = start-load $p --at-least 500
  has (error-of { hk deploy -c $broken_config --version v9 --quiet }) "nothing was switched"
  sleep 1sec
  no-failures (stop-load $load) 500 "failed deploy (health check)"
  assert equal (answer $p) v1

  # Hooks that fail, under load: a pre-deploy (nothing touched) and a post-app-boot (the new
  # instance started, then stopped again): nothing switched, every request answered by v1.
  mkdir .hk/hooks
  "#!/bin/sh\necho 'not today' >&2\nexit 2\n" | save .hk/hooks/pre-deploy
  "#!/bin/sh\necho 'smoke test failed' >&2\nexit 5\n" | save .hk/hooks/post-app-boot
  chmod +x .hk/hooks/post-app-boot
  chmod +x .hk/hooks/pre-deploy
  let load = start-load $p --at-least 500
  has (error-of { hk deploy --version v7 --quiet }) "Hook `pre-deploy` failed (exit 2): not today"
  rm .hk/hooks/pre-deploy
  let err = error-of { hk deploy --version v8 --quiet }
  has $err "nothing was switched"
  has $err "Hook `post-app-boot` failed (exit 5): smoke test failed"
  sleep 1sec
  no-failures (stop-load $load) 500 "failing hooks"
  assert equal (answer $p) v1
  rm .hk/hooks/post-app-boot

  # Five deploys in a row, alternating versions, under load: still nothing fails.
  let load = start-load $p --at-least 2000
  for v in [v2 v1 v2 v1 v2] {
    hk deploy --version $v --quiet | ignore
  }
  sleep 1sec
  let seen = stop-load $load
  no-failures $seen 2000 "5 deploys in a row"
  assert equal (answer $p) v2
  let log = hk audit
  assert equal ($log | where action == deploy and result == ok | length) 6
  assert equal ($log | where result != ok | select action version result) [[action version result]; [deploy v8 failed] [deploy v7 failed] [deploy v9 failed]]
  # Nothing stale: three releases (v1, v2) are within `retain`; the lock is free.
  assert equal (hk stale-releases | length) 0
  assert equal (hk lock status | get locked) false
}
