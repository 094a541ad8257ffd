# Deploys on a real systemd host with Caddy: the shared guest `hk-deploy`. Each test has its own app
# (service, site address, ports), so they run side by side on the one guest. (Deploys under load
# have a guest of their own: test_guest_load.nu.)
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use ../nu-modules/hk

# A random service name for one test.
def service [prefix: string]: nothing -> string {
  $"($prefix)-(random chars -l 6 | str lowercase)"
}

export def "test guest deploy: a release whose health check fails leaves the old one serving" [] {
  let p = project (service broken) 5100
  cd $p.dir
  # Before the first deploy: empty tables that say why.
  let module = $env.HK_TEST_ROOT | path join nu-modules/hk
  let before = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($module)'#; [\(hk versions | length\) \(hk audit | length\)] | to nuon" | complete
  assert equal ($before.stdout | str trim) "[0, 0]" $before.stderr
  has $before.stderr $"hk versions: no release of ($p.service) on guest yet"
  has $before.stderr $"hk audit: ($p.service) has no audit log on guest yet"
  hk setup --version v1 --quiet | ignore
  # The same service from another folder whose app exits at once.
  let broken = $p.dir | path join broken
  mkdir ($broken | path join bin)
  "#!/bin/sh\necho 'hello: broken on purpose' >&2\nexit 1\n" | save ($broken | path join bin/hello)
  chmod +x ($broken | path join bin/hello)
  let config = $p.dir | path join config/broken.nuon
  open $p.config | update release.path broken | update health_check.timeout 6sec | save $config
  let err = error-of { hk deploy -c $config --version v2 --quiet }
  has $err "nothing was switched"
  has $err "v1 still serves"
  has $err "broken on purpose"
  assert equal (answer $p) v1
  assert equal (hk lock status | get locked) false
  assert equal (hk audit | first | select action version result) {action: deploy, version: v2, result: failed}
  # The failed instance is stopped; the live one still runs.
  # The failed instance is not running (systemd may still say `failed`: it gave up restarting it).
  let units = guest sh --on $p.instance $"systemctl is-active hk-($p.service)@5100 hk-($p.service)@5101 || true" | lines
  assert equal $units.0 active
  assert ($units.1 in [inactive failed]) $"the failed instance is ($units.1)"
}

export def "test guest deploy: of two deploys at once exactly one proceeds, the other names the holder" [] {
  let p = project (service lock) 5200
  cd $p.dir
  hk setup --version v1 --quiet | ignore
  let nu_bin = $nu.current-exe
  let plugin = $env.HK_PLUGIN
  let module = $env.HK_TEST_ROOT | path join nu-modules/hk
  let runs = [v2 v3] | par-each {|v|
    let run = do { cd $p.dir; ^$nu_bin -n --plugins $plugin -c $"use r#'($module)'#; hk deploy --version ($v) --quiet | length" } | complete
    {version: $v, ok: ($run.exit_code == 0), stderr: ($run.stderr | ansi strip)}
  }
  assert equal ($runs | where ok | length) 1 $"runs: ($runs | to nuon)"
  let lost = $runs | where not ok | first
  has $lost.stderr $"app ($p.service) is locked on host guest by"
  has $lost.stderr "pid"
  let won = $runs | where ok | first
  assert equal (answer $p) $won.version
  assert equal (hk lock status | get locked) false
}

export def "test guest deploy: staging and production of one service on one host do not collide, and secrets stay secret" [] {
  let secret = $"s3cret-(random chars -l 24)"
  let name = service pair
  let p = project $name 5300 --extra {env: {clear: {GREETING: hi}, secret: [HK_TEST_SECRET]}}
  cd $p.dir
  {proxy: {host: $"http://staging.($name).test", app_port: 5400}} | save config/deploy.staging.nuon
  {proxy: {app_port: 5300}} | save config/deploy.clash.nuon
  # The guest's process list is sampled during the deploys (the secret is sent in halves, so the
  # sampling and checking commands never hold it whole).
  let half = ($secret | str length) // 2
  let parts = $"a='($secret | str substring 0..<$half)'; b='($secret | str substring $half..)'; s=\"$a$b\""
  guest sh --on $p.instance $"nohup sh -c 'while [ ! -e /tmp/ps-($name).stop ]; do ps -eo args; sleep 0.1; done; touch /tmp/ps-($name).done' > /tmp/ps-($name).txt 2>&1 < /dev/null &" | ignore
  with-env {HK_TEST_SECRET: $secret} {
    let plan = hk deploy --plan-only --version v1
    let prod = hk setup --version v1 --quiet
    let staging = hk setup -d staging --version v2 --quiet
    # Each answers on its own site with its own release.
    assert equal (answer $p) v1
    assert equal (answer $p --site $"staging.($name).test") v2
    # Their own folders, units, ports, locks, audit logs.
    let paths = guest sh --on $p.instance $"readlink /opt/hk/($name)/current /opt/hk/($name)-staging/current; cat /opt/hk/($name)/active_port /opt/hk/($name)-staging/active_port" | lines
    assert equal $paths [releases/v1 releases/v2 "5300" "5400"]
    let units = guest sh --on $p.instance $"systemctl is-active hk-($name)@5300 hk-($name)-staging@5400" | lines
    assert equal $units [active active]
    assert equal (hk audit | get version | uniq) [v1]
    assert equal (hk audit -d staging | get version | uniq) [v2]
    hk lock acquire -d staging -m "maintenance" | ignore
    assert equal (hk lock status | get locked) false
    assert equal (hk lock status -d staging | get locked) true
    hk lock release -d staging | ignore
    # A destination whose ports another app uses is refused before anything changes.
    let err = error-of { hk deploy -d clash --plan-only --version v3 }
    has $err $"port 5300 on host guest belongs to app ($name)"
    # The secret reached the app's environment file (0600), and nothing else.
    let env_file = guest sh --on $p.instance $"($parts); stat -c %a /opt/hk/($name)/env/web.5300.env; grep -cF -- \"$s\" /opt/hk/($name)/env/web.5300.env" | lines
    assert equal $env_file ["600" "1"]
    for where in [($plan | to json) ($prod | to json) ($staging | to json) (hk audit | to json) (hk versions | to json)] {
      assert not ($where | str contains $secret) "the secret is in a plan, an event or the audit log"
    }
    let leaks = guest sh --on $p.instance $"($parts); touch /tmp/ps-($name).stop; while [ ! -e /tmp/ps-($name).done ]; do sleep 0.1; done; grep -rlF -- \"$s\" /opt/hk/($name)/runs /opt/hk/($name)/audit.log /opt/hk/($name)-staging /etc/systemd/system /var/log 2>/dev/null | grep -v '/env/web.[0-9]*.env$' || true; echo journal=$\(journalctl --no-pager | grep -cF -- \"$s\"\); echo ps=$\(grep -cF -- \"$s\" /tmp/ps-($name).txt\); echo samples=$\(grep -c '^COMMAND' /tmp/ps-($name).txt\)"
    let lines = $leaks | lines
    assert equal ($lines | first 2) [journal=0 ps=0] $"the secret leaked: ($leaks)"
    assert (($lines | get 2 | str replace samples= '' | into int) > 10) $"the process list was hardly sampled: ($leaks)"
  }
}

export def "test guest deploy: the example project deploys and rolls back, and every workflow example runs in it" [] {
  cd ($env.HK_TEST_ROOT | path join examples/deploy)
  let module = $env.HK_TEST_ROOT | path join nu-modules/hk
  with-env {HK_DEMO_INSTANCE: $guest.deploy_instance, HELLO_TOKEN: (random chars -l 32)} {
    hk setup --version v1 --quiet | ignore
    hk deploy --version v2 --quiet | ignore
    let here = {|| guest sh --on $guest.deploy_instance "curl -s http://127.0.0.1/" | str trim }
    assert equal (do $here) v2
    # The app's runs say which deploy and phase made them, and belong to this project.
    let made = hk config | hk runs demo --runs-root /opt/hk/hello/runs | get made_by
    assert ("deploy v2: prepare" in $made) $"runs made by: ($made | to nuon)"
    assert ("deploy v2: switch" in $made) $"runs made by: ($made | to nuon)"
    assert ("setup" in $made) $"runs made by: ($made | to nuon)"
    # Two releases, three retained: nothing is stale, and an empty table says why.
    let stale = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($module)'#; hk stale-releases | length" | complete
    assert equal ($stale.stdout | str trim) "0" $stale.stderr
    has $stale.stderr "hk stale-releases: nothing to remove on demo: hello keeps its newest 3 releases"
    # Every example of the workflow commands that needs no other destination or instance, in an
    # order that makes sense (the lock taken before it is released, a rollback last).
    let examples = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($module)'#; scope commands | where name =~ '^hk ' and type == custom | select name examples | to nuon" | from nuon
    let order = [
      "hk setup" "hk deploy" "hk versions" "hk audit" "hk config" "hk lock" "hk lock status" "hk lock acquire"
      "hk lock release" "hk stale-releases" "hk docs" "hk secrets" "hk secrets print" "hk secrets extract"
      "hk secrets fetch" "hk secrets env" "hk init" "hk app" "hk app version" "hk app details" "hk app logs"
      "hk app exec" "hk app maintenance" "hk app live" "hk app stop" "hk app start" "hk app boot"
      "hk deploy state" "hk merge" "hk build" "hk build details" "hk build upload" "hk build deliver"
      "hk server" "hk server exec" "hk server logs" "hk server bootstrap" "hk app remove" "hk status"
      "hk monitor" "hk monitor gatus" "hk monitor check"
      "hk migrate" "hk rpc" "hk iex" "hk prune" "hk redeploy" "hk rollback"
    ]
    assert equal ($order | sort) ($examples.name | sort)
    let ran = $order | each {|name|
      $examples | where name == $name | get examples | flatten | where {|e| $e.example !~ 'production|demo|3f2a9c1|secrets fetch|DB_PASSWORD|hk init|worker|web1|a/config|hk migrate|hk rpc|hk iex|logs -f|remove' } | each {|e|
        let run = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($module)'#; ($e.example) | to nuon" | complete
        assert equal $run.exit_code 0 $"`($e.example)` failed: ($run.stderr | ansi strip)"
        $e.example
      }
    } | flatten
    assert (($ran | length) >= 26) $"only ($ran | length) examples ran"
    # The examples deployed this project's own version (git); the rollback went back to the one
    # live before it, and that is what answers.
    let log = hk audit
    assert equal ($log.0 | select action result) {action: rollback, result: ok}
    assert ($log.0.version != $log.1.version) "the rollback did not go back"
    assert equal (do $here) $log.0.version
    # A prune keeps the runs of about the last `retain` (3) deploys, and only their backups.
    let before = hk config | hk runs demo --runs-root /opt/hk/hello/runs --all-projects | length
    assert ($before > 12) $"only ($before) runs: nothing for the prune to do"
    hk prune --quiet | ignore
    let runs = hk config | hk runs demo --runs-root /opt/hk/hello/runs --all-projects
    assert equal ($runs | length) 12
    let backups = guest sh --on $guest.deploy_instance "ls /opt/hk/hello/runs/backups" | lines
    assert (($backups | where {|b| $b not-in $runs.id }) | is-empty) $"backups of pruned runs: ($backups | to nuon)"
  }
}

export def "test guest deploy: Ctrl-C during a deploy releases the lock and leaves the app serving" [] {
  # The health check waits 8 s before its first try: time enough to interrupt the prepare.
  let p = project (service sigint) 5500 --extra {health_check: {delay: 8sec}}
  cd $p.dir
  hk setup --version v1 --quiet | ignore
  let module = $env.HK_TEST_ROOT | path join nu-modules/hk
  let log = $p.dir | path join deploy.log
  let script = $"use r#'($module)'#; hk deploy --version v2"
  # In the background: its own process (the pid is the nu's), its output in the log.
  let pid = ^bash -c $"\(cd '($p.dir)' && exec '($nu.current-exe)' -n --plugins '($env.HK_PLUGIN)' -c \"($script)\"\) > '($log)' 2>&1 < /dev/null & echo $!" | str trim | into int
  # Interrupt while the prepare's script runs on the host: the new instance has started and its
  # health check waits.
  let deadline = (date now) + 60sec
  while (guest sh --on $p.instance $"systemctl is-active hk-($p.service)@5501 || true" | str trim) != active {
    if (date now) > $deadline { error make {msg: $"the new instance never started: (open $log)"} }
    sleep 100ms
  }
  assert (hk lock status | get locked) "the deploy does not hold the lock"
  ^kill -INT $pid
  let deadline = (date now) + 120sec
  while ($"/proc/($pid)" | path exists) {
    if (date now) > $deadline { error make {msg: "the interrupted deploy did not end"} }
    sleep 200ms
  }
  let said = open $log | ansi strip
  has $said "interrupted"
  # The build said what it ran before its own output.
  has $said "running `printf"
  # The way back waited for that script to end, then stopped what it had started.
  has $said "waiting for the script an earlier apply started there to end"
  assert equal (hk lock status | get locked) false $"the lock is still held: ($said)"
  assert ((answer $p) in [v1 v2]) "the app does not answer"
  # Nothing half-done is left running, and the next deploy goes through.
  let units = guest sh --on $p.instance $"systemctl is-active hk-($p.service)@5500 hk-($p.service)@5501 || true" | lines
  assert equal $units [active inactive]
  hk deploy --version v3 --quiet | ignore
  assert equal (answer $p) v3
}

export def "test guest deploy: a deploy prunes in its retire phase, keeps the live release and the one before, and ends in one script" [] {
  let name = $"prune-(random chars -l 6 | str lowercase)"
  let p = project $name 6400 --extra {retain: 2}
  cd $p.dir
  hk setup --version v1 --quiet | ignore
  let on_host = {|| guest sh --on $p.instance $"ls /opt/hk/($name)/releases; echo; ls /opt/hk/($name)/artifacts" | split row "\n\n" | each { lines } }
  for v in [v2 v3 v4] {
    hk deploy --version $v --quiet | ignore
  }
  # v4 live, v3 the one before it: v1 and v2 went, folders and artifacts alike.
  let left = do $on_host
  assert equal ($left.0 | sort) [v3 v4]
  assert equal ($left.1 | sort) [$"($name)-v3.tar.gz" $"($name)-v4.tar.gz"]
  assert equal (answer $p) v4
  # The removal rode in the retire phase (after the old instance stopped), no prune plan of its
  # own; the end (audit, runs, lock) is one script.
  let deployed = hk deploy --version v5 --quiet
  let retire = $deployed | where phase == retire | get steps | flatten | get step
  assert ($"release_unpack:/opt/hk/($name)/releases/v3" in $retire) $"retire steps: ($retire | to nuon)"
  assert ($"service:hk-($name)@6400.service" in $retire or $"service:hk-($name)@6401.service" in $retire) $"retire steps: ($retire | to nuon)"
  assert equal ($deployed | where phase == prune | get steps | flatten | get step | where $it =~ release | length) 0
  assert equal ((do $on_host).0 | sort) [v4 v5]
  assert equal (hk lock status | get locked) false
  assert equal (hk audit | where action == deploy and result == ok | get version) [v5 v4 v3 v2]
  # Runs beyond about the last `retain` deploys went too (four per deploy at most).
  let runs = hk config | hk runs guest --runs-root $"/opt/hk/($name)/runs" --all-projects
  assert (($runs | length) <= 8) $"($runs | length) runs kept"
  # A rollback goes to the one before, which the prune kept.
  hk rollback --quiet | ignore
  assert equal (answer $p) v4
}

# A deploy of a new release reads ahead: the lock's script reads the prepare's state, prepare's
# apply reads the switch's, the switch's the retire's, and the retire's apply ends the deploy
# (audit, runs, lock). Counted from hk's trace, in a nu of its own as a user's deploy runs.
export def "test guest deploy: a deploy reads each phase ahead and costs five round trips on its host" [] {
  let name = service "ahead"
  let p = project $name 6420
  cd $p.dir
  hk setup --version v1 --quiet | ignore
  let plugin = $env.HK_TEST_ROOT | path join target/debug/nu_plugin_hk
  let module = $env.HK_TEST_ROOT | path join nu-modules/hk
  let run = with-env {HK_TRACE: "1"} {
    ^$env.HK_NU -n --plugins $plugin -c $"use r#'($module)'#; hk deploy --version v2 --quiet | to nuon" | complete
  }
  assert equal $run.exit_code 0 $run.stderr
  assert equal (answer $p) v2
  let trace = $run.stderr | lines | where $it starts-with "hk trace:"
  # Every phase after the lock planned from what the script before it read.
  assert equal ($trace | where $it =~ "planned from the reading taken ahead" | length) 3 ($trace | str join "\n")
  assert equal ($trace | where $it =~ "the end of the deploy ran with the apply before it" | length) 1
  # Scripts and execs on the guest: lock + facts + prepare's reading, the upload, prepare's apply,
  # switch's apply, retire's apply with the end.
  let legs = $trace | where $it =~ 'hk trace: ssh (exec|continue) ' | length
  assert equal $legs 5 ($trace | where $it =~ 'hk trace: ssh ' | str join "\n")
  # What the folded end did is done: audited, lock released, runs kept.
  assert equal (hk lock status | get locked) false
  assert equal (hk audit | where action == deploy and result == ok | get version | first) v2
  let done = $run.stdout | from nuon
  assert equal ($done | where status != ok | length) 0 ($done | to nuon)
}
