# System resources on a real systemd host (the shared qemu guest): users, groups, packages,
# services, env files with secrets, commands and readiness checks.
use std/assert
use lib/helpers.nu *
use lib/guest.nu

def plan-of [
  resources: list
  --out: string
  --package-lock: string
  --write-package-lock: string
  --repology-cache: string
  --repology-cache-ttl: int
]: nothing -> table {
  guest config | insert resources $resources | (hk plan guest --out=$out --package-lock=$package_lock
    --write-package-lock=$write_package_lock --repology-cache=$repology_cache
    --repology-cache-ttl=$repology_cache_ttl)
}


export def "test guest system: groups and users are created, updated, left alone and undone" [] {
  let roots = guest roots
  let suffix = random chars -l 5 | str lowercase
  let team = $"team($suffix)"
  let user = $"svc($suffix)"
  let resources = [
    {type: user, name: $user, shell: /bin/bash, groups: [$team], home: $"/home/($user)", rollback: remove}
    {type: group, name: $team, gid: (4000 + (random int 0..900)), rollback: remove}
    {type: dir, path: $"/srv/($user)", owner: $user, group: $team, mode: "0750"}
  ]
  let plan = plan-of $resources
  # Groups before users before the paths they own, whatever the declaration order.
  assert equal $plan.id [$"group:($team)" $"user:($user)" $"dir:/srv/($user)"]
  assert equal ($plan.action | uniq) [create]
  let events = guest apply $resources $roots
  assert equal ($events.status | uniq) [ok] ($events | to nuon)
  assert equal ((plan-of $resources).action | uniq) [noop]
  has (guest sh $"id ($user)") $"\(($team)\)"
  assert equal (guest sh $"getent passwd ($user) | cut -d: -f7" | str trim) /bin/bash
  # Update: shell and groups change in place.
  let changed = $resources | update 0.shell /bin/sh | update 0.groups [$team users]
  let update = plan-of $changed | where action != noop
  assert equal $update.id [$"user:($user)"]
  assert equal ($update.0.changes.field | sort) [groups shell]
  guest apply $changed $roots | ignore
  assert equal (guest sh $"getent passwd ($user) | cut -d: -f7" | str trim) /bin/sh
  has (guest sh $"id -Gn ($user)") users
  # The way back: the update is undone first (newest run), then what the first run created.
  let back = guest down-plan $roots
  assert equal ($back | where action != noop | get id) [$"user:($user)"]
  $back | hk apply --confirm | ignore
  assert equal (guest sh $"getent passwd ($user) | cut -d: -f7" | str trim) /bin/bash
  let first = guest runs $roots | where n_changes == 3 | first
  let undo = guest down-plan $roots --run $first.id
  assert equal ($undo | where action == delete | get id) [$"dir:/srv/($user)" $"user:($user)" $"group:($team)"]
  $undo | hk apply --confirm | ignore
  assert equal (guest sh $"getent passwd ($user) >/dev/null || echo gone; getent group ($team) >/dev/null || echo gone") "gone\ngone\n"
  # Without `rollback: remove`, hk keeps accounts it created and says so.
  let kept = [{type: group, name: $"keep($suffix)"}]
  guest apply $kept $roots | ignore
  let keep_back = guest down-plan $roots
  assert equal $keep_back.0.reversible false
  has $keep_back.0.note "rollback: remove"
}

export def "test guest system: packages install in one batch, pin versions, lock names, resolve through a Repology cache" [] {
  let roots = guest roots
  let dir = scratch
  let debs = [(guest deb hk-hello 1.0 $dir) (guest deb hk-hello 2.0 $dir) (guest deb hk-bye 1.0 $dir)]
  let repo = [
    {type: dir, path: /srv/hk-repo, mode: "0755"}
    ...($debs | each {|d| {type: file, path: $"/srv/hk-repo/($d.path | path basename)", source: $d.path} })
    {type: file, path: /srv/hk-repo/Packages, content: (guest packages-index $debs)}
    {type: file, path: /etc/apt/sources.list.d/hk-test.list, content: "deb [trusted=yes] file:/srv/hk-repo ./\n"}
    # The guest has no network: only the local repository may be asked.
    {type: command, name: offline-apt, run: "mv /etc/apt/sources.list /etc/apt/sources.list.hk-off && apt-get update -q", creates: /etc/apt/sources.list.hk-off}
  ]
  guest apply $repo $roots | ignore
  let wanted = [{type: package, name: hk-hello, version: "1.0"} {type: package, name: hk-bye}]
  let plan = plan-of $wanted
  assert equal $plan.action [create create]
  let events = guest apply $wanted $roots
  assert equal ($events.status | uniq) [ok]
  # Consecutive installs are one apt-get command.
  let history = guest sh "grep '^Commandline' /var/log/apt/history.log | tail -1"
  has $history "hk-hello=1.0"
  has $history "hk-bye"
  assert equal ((plan-of $wanted).action | uniq) [noop]
  assert equal (guest sh "dpkg-query -W -f '${Version}' hk-hello") "1.0"
  # A pinned version change is an update.
  let upgrade = [{type: package, name: hk-hello, version: "2.0"}]
  let up = plan-of $upgrade
  assert equal $up.0.action update
  assert equal $up.0.changes.0 {field: version, from: "1.0", to: "2.0"}
  guest apply $upgrade $roots | ignore
  assert equal (guest sh "dpkg-query -W -f '${Version}' hk-hello") "2.0"
  # Undo the upgrade: back to 1.0.
  guest down-plan $roots | hk apply --confirm | ignore
  assert equal (guest sh "dpkg-query -W -f '${Version}' hk-hello") "1.0"
  # A lock records the names for this release; plans with it are deterministic.
  let lock = $dir | path join packages.lock.json
  let projects = [{type: package, name: hello-project} {type: package, name: hk-bye}]
  # Repology, from recorded answers only: hello-project is packaged as hk-hello in debian_12.
  let cache = $dir | path join repology
  mkdir $cache
  [{repo: debian_11, srcname: old-hello, binname: old-hello, version: "0.9", status: outdated}
   {repo: debian_12, srcname: hk-hello-src, binname: hk-hello, version: "1.0", status: newest}
   {repo: ubuntu_24_04, srcname: hk-hello, binname: hk-hello-ubuntu, version: "1.0", status: newest}]
  | to json | save -f ($cache | path join hello-project.json)
  [] | to json | save -f ($cache | path join hk-bye.json)
  # The cache is old and the API unreachable: the stale answer is used.
  ^touch -d "2020-01-01" ($cache | path join hello-project.json) ($cache | path join hk-bye.json)
  let resolved = with-env {HK_REPOLOGY_URL: "http://127.0.0.1:9/api/v1"} {
    plan-of $projects --repology-cache $cache --repology-cache-ttl 60 --write-package-lock $lock
  }
  assert equal $resolved.action [noop noop]
  let written = open $lock
  assert equal $written {version: 1, target: debian_12, packages: {hello-project: hk-hello, hk-bye: hk-bye}}
  assert equal ((plan-of $projects --package-lock $lock).action) [noop noop]
  # A package missing from the lock, and a lock for another release, are refused.
  let err = error-of { plan-of [{type: package, name: curl}] --package-lock $lock }
  has $err "not in the package lock"
  $written | update target ubuntu_24 | to json | save -f $lock
  let err = error-of { plan-of $projects --package-lock $lock }
  has $err "made for ubuntu_24"
  has $err debian_12
  # Removal.
  let gone = [{type: package, name: hk-bye, state: absent}]
  assert equal (plan-of $gone).0.action delete
  guest apply $gone $roots | ignore
  assert equal (guest sh "dpkg-query -W -f '${Status}' hk-bye 2>/dev/null | grep -c installed || true" | str trim) "0"
}

def unit-text [name: string, env_file: string]: nothing -> string {
  [
    "[Unit]" $"Description=hk test service ($name)"
    "" "[Service]" $"EnvironmentFile=($env_file)" "ExecStart=/bin/sh -c 'echo \"$GREETING\" > /run/hk-greeting; exec sleep infinity'"
    "" "[Install]" "WantedBy=multi-user.target"
  ] | str join "\n" | $in + "\n"
}

export def "test guest system: a service restarts exactly when its env file changes, and secrets never leak" [] {
  let name = $"hk-svc-(random chars -l 5 | str lowercase)"
  let env_path = $"/etc/($name).env"
  let secret = $"s3cret-(random chars -l 16)"
  let resources = {|token: string| [
    {type: env_file, path: $env_path, entries: {GREETING: hello, API_TOKEN: {env: HK_TEST_TOKEN}, DB_PASSWORD: {command: "printf '%s-%s' db-pass from-command"}}}
    {type: service, name: $name, unit: (unit-text $name $env_path), restart_on: [$"env_file:($env_path)"]}
    {type: ready, name: $"($name)-up", checks: [{systemd: {unit: $name}}], timeout: 60sec}
  ]}
  let roots = guest roots
  let dir = scratch
  let artifact = $dir | path join plan.json
  let invocation = {|| guest sh $"systemctl show -p InvocationID --value ($name).service" | str trim }
  with-env {HK_TEST_TOKEN: $secret} {
    let plan = plan-of (do $resources $secret) --out $artifact
    assert equal $plan.action [create create read]
    let env_row = $plan | where type == env_file | first
    assert equal ($env_row.changes | where field == content | get 0.to) "(secret)"
    let events = $plan | hk apply --confirm --track --runs-root $roots.runs --backups-root $roots.backups
    assert equal ($events.status | uniq) [ok] ($events | to nuon)
    assert not (($events | to json) + ($plan | to json) | str contains $secret) "a secret is in the plan or its events"
    assert equal (guest sh $"systemctl is-active ($name); systemctl is-enabled ($name); stat -c %a ($env_path)") "active\nenabled\n600\n"
    assert equal (guest sh "cat /run/hk-greeting") "hello\n"
    has (guest sh $"cat ($env_path)") $"API_TOKEN=($secret)"
    has (guest sh $"cat ($env_path)") "DB_PASSWORD=db-pass-from-command"
    # In sync: nothing to do but the check, and no restart.
    let first_run = do $invocation
    let again = plan-of (do $resources $secret)
    assert equal $again.action [noop noop read]
    $again | hk apply --confirm | ignore
    assert equal (do $invocation) $first_run
  }
  # A changed secret: the env file is an update (without showing it) and the service restarts.
  let rotated = $"rotated-(random chars -l 16)"
  with-env {HK_TEST_TOKEN: $rotated} {
    let plan = plan-of (do $resources $rotated)
    assert equal $plan.action [update update read]
    assert equal ($plan | where type == service | get 0.changes | where field == restart | length) 1
    $plan | hk apply --confirm --track --runs-root $roots.runs --backups-root $roots.backups | ignore
    has (guest sh $"cat ($env_path)") $"API_TOKEN=($rotated)"
    assert not equal (do $invocation) ""
  }
  # The secrets appear in no plan, artifact, record, backup or event.
  let runs = guest runs $roots
  assert equal ($runs | length) 2
  let records = $runs | each {|r| guest runs $roots --id $r.id | to json } | str join "\n"
  let on_host = guest sh $"find ($roots.runs) ($roots.backups) -type f -exec cat {} + 2>/dev/null; true"
  for text in [(open --raw $artifact) $records $on_host] {
    assert not ($text | str contains $secret) "the first secret leaked"
    assert not ($text | str contains $rotated) "the rotated secret leaked"
    assert not ($text | str contains db-pass-from-command) "the command secret leaked"
  }
  # Down of the first run: the service hk created is stopped, disabled and removed, the env file deleted.
  let first = $runs | sort-by started_at | first
  let back = guest down-plan $roots --run $first.id
  $back | hk apply --confirm | ignore
  assert equal (guest sh $"systemctl is-active ($name) || true; test -e /etc/systemd/system/($name).service || echo no-unit; test -e ($env_path) || echo no-env") "inactive\nno-unit\nno-env\n"
}

export def "test guest system: the file helper of a session reads units from systemd as systemctl does" [] {
  let missing = $"hk-missing-(random chars -l 6 | str lowercase).service"
  let units = [
    {type: service, name: caddy.service, state: running}
    {type: service, name: ssh.service, state: stopped}
    {type: service, name: $missing, state: stopped}
    {type: service, name: "getty@tty9.service", state: running}
  ]
  # This process's first plan of the guest: its session has no file helper yet, so systemctl reads.
  let by_systemctl = plan-of $units | select id action fingerprint changes
  # A nu of its own whose apply starts the session's helper; its plan after that reads through it.
  let dir = $"/tmp/hk-helper-(random chars -l 6 | str lowercase)"
  let script = $"use r#'($env.HK_TEST_ROOT)/tests/lib/guest.nu'#
guest config | insert resources [{type: dir, path: ($dir), mode: '0755'}] | hk apply guest --confirm | ignore
guest config | insert resources (($units | to nuon)) | hk plan guest | select id action fingerprint changes | to nuon"
  let run = with-env {HK_TRACE: "1"} { ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $script | complete }
  assert equal $run.exit_code 0 $run.stderr
  has $run.stderr $"units read by the session's file helper: caddy.service ssh.service ($missing) getty@tty9.service"
  assert equal ($run.stdout | from nuon) $by_systemctl
  assert equal ($by_systemctl | get action) [noop update update update]
  guest sh $"rmdir ($dir)" | ignore
}

export def "test guest system: commands run unless guarded, and run their down" [] {
  let roots = guest roots
  let mark = $"/tmp/hk-cmd-(random chars -l 6)"
  let resources = [
    {type: command, name: make-mark, run: $"echo made > ($mark)", creates: $mark, down: $"rm -f ($mark)"}
    {type: command, name: guarded, run: "false", unless: "true"}
    {type: command, name: as-user, run: $"id -un > ($mark).user", user: hk, cwd: /tmp, env: {GREETING: hi}, unless: $"test -e ($mark).user"}
  ]
  let plan = plan-of $resources
  assert equal ($plan | select id action | where action == create | get id) ["command:make-mark" "command:as-user"]
  assert equal ($plan | where id == "command:guarded" | get 0.action) noop
  guest apply $resources $roots | ignore
  assert equal (guest sh $"cat ($mark) ($mark).user") "made\nhk\n"
  assert equal ((plan-of $resources).action | uniq) [noop]
  let back = guest down-plan $roots
  assert equal ($back | where action != noop | get id) ["command:make-mark (down)"]
  assert equal ($back | where id == "command:as-user" | get 0.reversible) false
  $back | hk apply --confirm | ignore
  assert equal (guest sh $"test -e ($mark) || echo removed") "removed\n"
  # A failing command fails the apply with its output.
  let err = error-of { guest apply [{type: command, name: broken, run: "echo oops-output; exit 3"}] $roots }
  has $err "oops-output"
}

export def "test guest system: readiness checks pass on a healthy host and fail the apply with the last answer" [] {
  let ok = [{type: ready, name: web, checks: [{http: {url: "http://127.0.0.1/", status: 200}} {tcp: {port: 22}} {systemd: {unit: caddy}}], timeout: 30sec}]
  let roots = guest roots
  let events = guest apply $ok $roots
  assert equal ($events | select id status) [{id: "ready:web", status: ok}]
  let name = $"hk-broken-(random chars -l 5 | str lowercase)"
  let failing = [
    # Starts (a simple service starts at once) and exits with an error right after: the check
    # waits a second first, so that it never sees the moment the service was up.
    {type: service, name: $name, unit: "[Service]\nExecStart=/bin/sh -c 'echo broken-on-purpose; exit 1'\n", enabled: false}
    {type: ready, name: broken, checks: [{systemd: {unit: $name}}], delay: 1sec, timeout: 3sec, interval: 500ms}
  ]
  let err = error-of { guest apply $failing $roots }
  has $err "ready:broken failed after 3 s"
  has $err "broken-on-purpose"
  let run = guest runs $roots | first
  assert equal $run.status failed
  let record = guest runs $roots --id $run.id
  assert equal ($record.changes | where id == "ready:broken" | get 0.status) failed
  # An HTTP check that gives up says the last status and the start of the body it was answered.
  let unexpected = [{type: ready, name: page, checks: [{http: {url: "http://127.0.0.1/", status: 404}}], timeout: 2sec, interval: 500ms}]
  let err = error-of { guest apply $unexpected $roots }
  has $err "ready:page failed after 2 s"
  # What answers at / depends on what earlier tests left on the guest: compare with what it answers now.
  let body_start = guest sh "curl -s http://127.0.0.1/ | head -n 1 | head -c 12"
  assert (($body_start | str length) > 0) "something answers at / on the guest"
  has $err $"GET http://127.0.0.1/: 200 ($body_start)"
}
