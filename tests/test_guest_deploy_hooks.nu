# Deploys, part 2, on the shared deploy guest (`hk-deploy`): hooks in order with their variables, roles,
# a failing hook stopping a deploy with nothing switched, secrets from the project files reaching
# the app byte for byte through systemd's EnvironmentFile, and storage that outlives releases.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use ../nu-modules/hk
use ../nu-modules/hk/hooks.nu [NAMES]

def service [prefix: string]: nothing -> string {
  $"($prefix)-(random chars -l 6 | str lowercase)"
}

# Every hook of `dir` as a shell script appending its name and HK_* variables to `log`.
def write-hooks [dir: string, log: string]: nothing -> nothing {
  let hooks = $dir | path join .hk/hooks
  mkdir $hooks
  for name in $NAMES {
    let file = $hooks | path join $name
    $"#!/bin/sh\n{ echo \"== ($name)\"; env | grep '^HK_' | sort; [ -n \"${HK_TEST_HOOK_SECRET:-}\" ] && echo SECRET_SEEN=yes; true; } >> '($log)'\necho \"($name) says hi\"\n" | save -f $file
    chmod +x $file
  }
}

# The hook calls a log holds: [{hook, vars: {HK_…: value}, secret}].
def calls [log: string]: nothing -> table {
  open $log | split row "== " | where {|b| $b | is-not-empty } | each {|b|
    let lines = $b | lines
    let vars = $lines | skip 1 | where {|l| $l =~ '^HK_' } | parse "{key}={value}" | reduce --fold {} {|v, acc| $acc | upsert $v.key $v.value }
    {hook: ($lines | first), vars: $vars, secret: ("SECRET_SEEN=yes" in $lines)}
  }
}

export def "test guest deploy hooks: every hook in order with its variables, a .nu hook, a failing pre-deploy, -H" [] {
  let p = project (service hooks) 5700 --extra {env: {secret: [HK_TEST_HOOK_SECRET]}}
  cd $p.dir
  # The secret comes from the project's file, so only the hooks hk gives it to can see it.
  mkdir .hk
  "HK_TEST_HOOK_SECRET=hook-secret-value\n" | save .hk/secrets
  do {
    hk setup --version v1 --quiet -H | ignore
    let log = $p.dir | path join hooks.log
    write-hooks $p.dir $log
    # A .nu hook in place of the shell one: it reads its record and runs an hk command that takes
    # the lock its parent holds (without HK_LOCK it would be refused at once).
    rm ($p.dir | path join .hk/hooks/post-app-boot)
    let record_file = $p.dir | path join record.json
    $"$in | to json | save -f '($record_file)'\nhk prune --quiet | ignore\n" | save ($p.dir | path join .hk/hooks/post-app-boot.nu)
    chmod +x ($p.dir | path join .hk/hooks/post-app-boot.nu)
    # A sample that is not executable never runs.
    "#!/bin/sh\nexit 1\n" | save ($p.dir | path join .hk/hooks/pre-build.sample)
    let deploy = do { ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($env.HK_TEST_ROOT)/nu-modules/hk'#; hk deploy --version v2 | length" } | complete
    assert equal $deploy.exit_code 0 $deploy.stderr
    # Their output shows as they run.
    has $deploy.stderr "pre-deploy> pre-deploy says hi"
    assert equal (answer $p) v2
    let seen = calls $log
    assert equal $seen.hook ($NAMES | where $it != post-app-boot)
    for c in $seen {
      let v = $c.vars
      for key in [HK_SERVICE HK_APP HK_VERSION HK_SERVICE_VERSION HK_HOSTS HK_ROLES HK_RECORDED_AT HK_PERFORMER HK_LOCK HK_COMMAND HK_SUBCOMMAND] {
        assert (($v | get -o $key | default "") != "") $"($c.hook): ($key) is empty: ($v | to nuon)"
      }
      assert equal $v.HK_APP $p.service
      assert equal $v.HK_VERSION v2
      assert equal $v.HK_SERVICE_VERSION $"($p.service)@v2"
      assert equal $v.HK_HOSTS guest
      assert equal $v.HK_ROLES web
      assert equal $v.HK_COMMAND deploy
      assert ($v.HK_RECORDED_AT =~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$') $v.HK_RECORDED_AT
      assert equal ($v | get -o HK_DESTINATION | default "") "" $"($c.hook): HK_DESTINATION is set"
      assert equal $v.HK_LOCK (if $c.hook == pre-connect { "false" } else { "true" })
      # Only pre-connect, pre-deploy and post-deploy get the secrets.
      assert equal $c.secret ($c.hook in [pre-connect pre-deploy post-deploy]) $"($c.hook): secret seen = ($c.secret)"
    }
    assert (($seen | where hook == post-deploy | first | get vars.HK_RUNTIME | into int) >= 1) "no runtime"
    let record = open $record_file
    assert equal ($record | select hook app version hosts lock) {hook: post-app-boot, app: $p.service, version: v2, hosts: [guest], lock: true}
    assert not ($record | to json | str contains "hook-secret-value") "a secret is in a hook's record"

    # A failing pre-deploy: nothing switched, its last lines in the error and the audit log.
    "#!/bin/sh\necho 'checking migrations'\necho 'migrations pending' >&2\nexit 3\n" | save -f ($p.dir | path join .hk/hooks/pre-deploy)
    rm $log
    let err = error-of { hk deploy --version v3 --quiet }
    has $err "Hook `pre-deploy` failed (exit 3): checking migrations\nmigrations pending"
    has $err "stopped before anything changed on the hosts"
    assert equal (answer $p) v2
    assert equal (hk lock status | get locked) false
    let entry = hk audit | first
    assert equal ($entry | select action version result) {action: deploy, version: v3, result: failed}
    has $entry.error "Hook `pre-deploy` failed"
    assert equal (calls $log | get hook) [pre-connect pre-build post-build]
    # -H: no hook runs, and the deploy goes through.
    rm $log
    hk deploy --version v3 --quiet -H | ignore
    assert equal (answer $p) v3
    assert not ($log | path exists) "a hook ran with -H"
    # A failing build, with no hook around it, runs while the lock is taken: nothing changes on
    # the host, the lock is free again, and the audit log has the failure.
    rm dist/VERSION
    mkdir dist/VERSION
    let err = error-of { hk deploy --version v4 --quiet -H }
    has $err "the build of"
    has $err "stopped before anything changed on the hosts"
    rm -r dist/VERSION
    assert equal (answer $p) v3
    assert equal (hk lock status | get locked) false
    assert equal (hk audit | first | select action version result) {action: deploy, version: v4, result: failed}
  }
}

export def "test guest deploy hooks: secrets from the project files reach the app byte for byte, and storage outlives releases" [] {
  let name = service vault
  let tricky = 'sp ace "dq" $HOME #hash \back ünï'
  let p = project $name 5800 --extra {
    env: {secret: [TOKEN TRICKY "DATABASE_URL:DB"]}
    storage: {uploads: uploads}
    release: {path: dist, cmd: "bin/start"}
  }
  cd $p.dir
  mkdir .hk
  "TOKEN=from-common\nCOMMON=c0mm0n\n" | save .hk/secrets-common
  $"TOKEN=$\(printf 'pa$1wor$D'\)\nDB=\"postgres://app:${COMMON}@db/app\"\nTRICKY='($tricky)'\n" | save .hk/secrets
  # The app's start script writes into its storage, then runs the app.
  "#!/bin/sh\necho \"boot $PORT\" >> \"$HK_STORAGE_UPLOADS/boots\"\nexec \"$(dirname \"$0\")/hello\"\n" | save dist/bin/start
  chmod +x dist/bin/start
  hk setup --version v1 --quiet | ignore
  assert equal (answer $p) v1
  # What the running instance's environment holds, read from /proc.
  let environ = {|port|
    guest sh --on $p.instance $"tr '\\0' '\\n' < /proc/$\(systemctl show -p MainPID --value hk-($name)@($port)\)/environ"
    | lines | parse --regex '^(?<key>[A-Z_]+)=(?<value>.*)$' | reduce --fold {} {|v, acc| $acc | upsert $v.key $v.value }
  }
  let seen = do $environ 5800
  assert equal $seen.TOKEN 'pa$1wor$D'
  assert equal $seen.TRICKY $tricky
  assert equal $seen.DATABASE_URL "postgres://app:c0mm0n@db/app"
  assert equal $seen.HK_STORAGE_UPLOADS $"/var/lib/hk/($name)/uploads"
  # Each port has its own env file, 0600.
  assert equal (guest sh --on $p.instance $"stat -c %a /opt/hk/($name)/env/web.5800.env" | str trim) "600"
  # Deploy, rollback and prune: the storage stays, and each boot wrote to it.
  hk deploy --version v2 --quiet | ignore
  hk rollback --quiet | ignore
  hk prune --quiet | ignore
  assert equal (answer $p) v1
  let boots = guest sh --on $p.instance $"cat /var/lib/hk/($name)/uploads/boots" | lines
  assert equal $boots ["boot 5800" "boot 5801" "boot 5800"]
  # The plan of the storage is in sync after systemd gave the folder to the app's user.
  let again = hk deploy --plan-only --version v1 | where phase == prepare and action != noop and id =~ "/var/lib"
  assert equal ($again | length) 0 $"storage drifts: ($again | select id action summary | to nuon)"
  # The values are in no run record, plan artifact or audit line on the host.
  let leaks = guest sh --on $p.instance $"grep -rlF -e 'pa$1wor' -e 'c0mm0n' /opt/hk/($name)/runs /opt/hk/($name)/audit.log /etc/systemd/system 2>/dev/null || true"
  assert equal ($leaks | str trim) "" $"secrets leaked into ($leaks)"
}

export def "test guest deploy hooks: what hk init writes deploys the example app, and so does a Kamal project it imported" [] {
  let name = service init
  let dir = scratch | path join $name
  mkdir ($dir | path join dist/bin)
  cp ($env.HK_TEST_ROOT | path join target/debug/hello) ($dir | path join dist/bin $name)
  cd $dir
  hk init --host $"http://($name).test" --app-port 5900 | ignore
  with-env {HK_DEMO_INSTANCE: $guest.deploy_instance} {
    let done = hk setup --version v1 --quiet
    # One row per phase and host, every step nested.
    assert equal ($done | columns) [phase host status steps duration]
    assert equal ($done | where phase == prepare | get host) [demo]
    assert (($done | get steps | flatten | length) > ($done | length)) "the steps are not nested"
  }
  let here = guest sh --on $guest.deploy_instance $"curl -s -H 'Host: ($name).test' http://127.0.0.1/" | str trim
  assert equal $here v1

  # A Kamal project (web role, a destination, secrets, a hook) imported and deployed; only how the
  # guest is reached (its instance) is added to what the importer wrote.
  let kname = service kamal
  let kdir = scratch
  mkdir ($kdir | path join config) ($kdir | path join .kamal/hooks) ($kdir | path join dist/bin)
  cp ($env.HK_TEST_ROOT | path join target/debug/hello) ($kdir | path join $"dist/bin/($kname)")
  {
    service: $kname, image: $"acme/($kname)", servers: ["127.0.0.1"]
    proxy: {host: $"($kname).test", ssl: false, app_port: 5950, healthcheck: {path: /up, interval: 1, timeout: 30}}
    env: {clear: {GREETING: hi}, secret: [KAMAL_TOKEN]}
  } | to yaml | save ($kdir | path join config/deploy.yml)
  "KAMAL_TOKEN=k-token\n" | save ($kdir | path join .kamal/secrets)
  $"#!/bin/sh\necho \"$KAMAL_SERVICE_VERSION\" > '($kdir)/hook.out'\n" | save ($kdir | path join .kamal/hooks/post-deploy)
  chmod +x ($kdir | path join .kamal/hooks/post-deploy)
  cd $kdir
  hk init --from kamal | ignore
  let imported = open config/deploy.nu | from nuon
  $imported
  | upsert instances {($guest.deploy_instance): (guest spec)}
  | upsert hosts {"127.0.0.1": {instance: $guest.deploy_instance}}
  | save config/guest.nuon
  hk setup -c config/guest.nuon --version k1 --quiet | ignore
  let here = guest sh --on $guest.deploy_instance $"curl -s -H 'Host: ($kname).test' http://127.0.0.1/" | str trim
  assert equal $here k1
  assert equal (open ($kdir | path join hook.out) | str trim) $"($kname)@k1"
  let token = guest sh --on $guest.deploy_instance $"grep -c '^KAMAL_TOKEN=k-token$' /opt/hk/($kname)/env/web.5950.env" | str trim
  assert equal $token "1"
}

export def "test guest deploy hooks: a worker role with its own command and env starts after the switch, and stays when web fails" [] {
  let name = service roles
  let p = project $name 6000 --extra {
    servers: {web: [guest], worker: {hosts: [guest], cmd: "bin/worker", env: {clear: {QUEUE: mail}}}}
  }
  cd $p.dir
  # The worker says which release and queue it serves, then waits to be stopped.
  "#!/bin/sh\necho \"worker $(cat VERSION) queue=$QUEUE slot=$PORT\"\nexec sleep 100000\n" | save dist/bin/worker
  chmod +x dist/bin/worker
  let unit = {|port| $"hk-($name)-worker@($port)" }
  let states = {||
    guest sh --on $p.instance $"systemctl is-active (do $unit 6000) (do $unit 6001) hk-($name)@6000 hk-($name)@6001 || true" | lines
  }
  let setup = hk setup --version v1 --quiet
  assert equal ($setup | where phase == boot | get host) [guest]
  assert equal (do $states) [active inactive active inactive]
  let environ = guest sh --on $p.instance $"tr '\\0' '\\n' < /proc/$\(systemctl show -p MainPID --value (do $unit 6000)\)/environ" | lines
  assert ("QUEUE=mail" in $environ) $"the worker's environment: ($environ | to nuon)"
  has (guest sh --on $p.instance $"journalctl -u (do $unit 6000) --no-pager -o cat") "worker v1 queue=mail slot=6000"
  # v2: web switches, then the worker moves to the new slot and the old one stops.
  hk deploy --version v2 --quiet | ignore
  assert equal (answer $p) v2
  assert equal (do $states) [inactive active inactive active]
  has (guest sh --on $p.instance $"journalctl -u (do $unit 6001) --no-pager -o cat") "worker v2 queue=mail slot=6001"
  # A web release that never gets healthy: the old worker keeps running, no new one starts.
  let broken = $p.dir | path join broken
  mkdir ($broken | path join bin)
  "#!/bin/sh\nexit 1\n" | save ($broken | path join bin/hello)
  cp dist/bin/worker ($broken | path join bin/worker)
  chmod +x ($broken | path join bin/hello)
  open $p.config | update release.path broken | update health_check.timeout 5sec | save config/broken.nuon
  has (error-of { hk deploy -c config/broken.nuon --version v3 --quiet }) "nothing was switched"
  assert equal (answer $p) v2
  let after = do $states
  assert equal ($after | select 0 1) [inactive active] $"workers: ($after | to nuon)"
  # -r worker restricts the command to the worker's hosts and units.
  assert equal (hk versions -r worker | where current | get version) [v2]
}
