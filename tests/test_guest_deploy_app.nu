# `hk app …` on the shared deploy guest (`hk-deploy`): a command in the live release's context
# (its user, env file and storage; stdout byte for byte; secrets in no process list), versions,
# what systemd says of each instance, and the journal as rows.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use lib/terminal.nu
use ../nu-modules/hk

export def "test guest deploy app: exec in the release context, version, details and logs as tables" [] {
  let service = $"app-(random chars -l 6 | str lowercase)"
  let p = project $service 6800 --extra {env: {secret: [APP_SECRET]}, storage: {data: data}}
  cd $p.dir
  mkdir .hk
  "APP_SECRET=s3cret-value-42\n" | save .hk/secrets
  hk setup --version v1 --quiet | ignore

  # The release's folder, the env file's values, the storage folder, the instance's own user.
  let out = hk app exec 'pwd -P; echo "secret=$APP_SECRET"; echo "$HK_STORAGE_DATA"; echo "$USER"; id -u; stat -c %u "$HK_STORAGE_DATA/"' | first
  assert equal [$out.host $out.role $out.exit_code] [guest web 0] $out.stderr
  let said = $out.stdout | lines
  assert equal ($said | first 4) [$"/opt/hk/($service)/releases/v1" "secret=s3cret-value-42" $"/var/lib/hk/($service)/data" $"hk-($service)"]
  # The instance's own dynamic user: the one its storage belongs to.
  assert equal ($said | get 4) ($said | get 5)
  assert (($said | get 4 | into int) >= 60000) $"uid ($said | get 4)"
  # Bytes that are not text come back as they are.
  let bytes = hk app exec 'head -c 512 /dev/urandom | tee "$HK_STORAGE_DATA/random"' | first
  assert equal ($bytes.stdout | describe) binary
  assert equal ($bytes.stdout | bytes length) 512
  let there = hk app exec 'sha256sum "$HK_STORAGE_DATA/random" | cut -d" " -f1' | first
  assert equal ($there.stdout | str trim) ($bytes.stdout | hash sha256)
  # A failing command is its row; no command at all is an error that says so.
  assert equal (hk app exec 'exit 3' | first | get exit_code) 3
  has (error-of { hk app exec "  " }) "no command"
  # The secret reaches the command through the env file, never a command line: look while it runs.
  let seen = hk app exec 'sleep 2 & ps -eo args; wait' | first
  assert not ($seen.stdout | into string | str contains "s3cret-value-42") "a secret is in the process list"

  # --reuse: inside the running instance itself — its cgroup, mount namespace, user, folder and
  # the environment systemd gave it, read from its process on the host.
  let unit = $"hk-($service)@6800.service"
  let pid = guest sh --on $p.instance $"systemctl show --property=MainPID --value ($unit)" | str trim
  let own = guest sh --on $p.instance $"cat /proc/($pid)/cgroup; readlink /proc/($pid)/ns/mnt /proc/1/ns/mnt; stat -c %u /proc/($pid)" | lines
  let inside = hk app exec --reuse 'cat /proc/self/cgroup; readlink /proc/self/ns/mnt; id -u; echo "secret=$APP_SECRET"; pwd -P' | first
  assert equal [$inside.host $inside.role $inside.exit_code] [guest web 0] $inside.stderr
  let there = $inside.stdout | lines
  assert equal ($there | get 0) ($own | get 0) "not in the instance's cgroup"
  has ($there | get 0) $unit
  assert equal ($there | get 1) ($own | get 1) "not in the instance's mount namespace"
  assert not equal ($own | get 1) ($own | get 2) "the instance has no mount namespace of its own"
  assert equal ($there | get 2) ($own | get 3) "not the instance's user"
  assert equal ($there | skip 3) ["secret=s3cret-value-42" $"/opt/hk/($service)/releases/v1"]
  let seen = hk app exec --reuse 'sleep 2 & ps -eo args; wait' | first
  assert equal $seen.exit_code 0 $seen.stderr
  has ($seen.stdout | into string) "sleep 2"
  assert not ($seen.stdout | into string | str contains "s3cret-value-42") "a secret is in the process list"

  # With a terminal: the same context, a real tty, typed input read.
  let session = terminal start $p.dir ("hk app exec -i r#'echo \"in=$(pwd -P) tty=$(test -t 0 && echo yes)\"; read line; echo \"got=$line\"'#" | str replace -a '\"' '"')
  let shown = terminal wait-for $session "tty=yes"
  has $shown $"in=/opt/hk/($service)/releases/v1"
  terminal keys $session "typed-here" Enter
  terminal wait-for $session "got=typed-here" | ignore
  terminal stop $session
  # And inside the running instance, with a terminal.
  let session = terminal start $p.dir ("hk app exec -i --reuse r#'echo \"ns=$(readlink /proc/self/ns/mnt) tty=$(test -t 0 && echo yes)\"'#" | str replace -a '\"' '"')
  has (terminal wait-for $session "tty=yes") $"ns=($own | get 1)"
  terminal stop $session

  assert equal (hk app version) [{host: guest, role: web, version: v1, port: 6800}]
  let d = hk app details | first
  assert equal [$d.host $d.role $d.version $d.port $d.state] [guest web v1 6800 running]
  assert ($d.pid > 1) $"pid ($d.pid)"
  assert ($d.uptime >= 0sec) $"uptime ($d.uptime)"
  assert ($d.memory > 0b) $"memory ($d.memory)"

  let logs = hk app logs -n 50
  assert ($logs | is-not-empty) "no journal lines"
  assert equal ($logs | columns) [time host role unit message]
  assert ($logs | all {|l| $l.host == guest and $l.role == web }) ($logs | to nuon)
  has ($logs | get message | str join "\n") "listening on"
  let started = hk app logs --grep "listening on" | first
  assert equal $started.unit $"hk-($service)@6800.service"
  assert equal (hk app logs --grep "no-such-line-anywhere" | length) 0
}


export def "test guest deploy app: build deliver in CI, deploy --skip-build later" [] {
  let p = project $"ci-(random chars -l 6 | str lowercase)" 6900
  cd $p.dir
  hk setup --version v1 --quiet | ignore
  let details = hk build details --version b1
  assert equal [$details.kind $details.version $details.built] [folder b1 false]
  has $details.command "dist/VERSION"
  # A version built nowhere cannot be deployed without a build.
  has (error-of { hk deploy --version nowhere --skip-build --quiet }) "neither built here nor on guest"
  has (error-of { hk deploy --skip-build --quiet }) "name it with --version"
  let delivered = hk build deliver --version b1 --quiet
  assert equal ($delivered | get phase) [build upload]
  assert equal (hk build details --version b1 | get built) true
  # On the host, nothing started: b1 is there, v1 still serves.
  assert equal (guest sh --on $p.instance $"test -d /opt/hk/($p.service)/releases/b1 && echo there" | str trim) there
  assert equal (answer $p) v1
  # Later: the deploy builds nothing (the build command would write another VERSION file).
  rm -rf dist/VERSION
  let rows = hk deploy --version b1 --skip-build --quiet
  assert equal ($rows | where phase == build | first | get steps | first | get message) "built before (--skip-build)"
  assert not ("dist/VERSION" | path exists) "the deploy built"
  assert equal (answer $p) b1
}

export def "test guest deploy app: server bootstrap, exec and logs, status drift, and remove twice with another app still serving" [] {
  let stays = project $"stay-(random chars -l 6 | str lowercase)" 6840
  let goes = project $"gone-(random chars -l 6 | str lowercase)" 6850
  cd $stays.dir
  hk setup --version v1 --quiet | ignore
  cd $goes.dir
  # Bootstrap alone: the folders and template, no release; again, nothing to change.
  let first = hk server bootstrap --quiet
  assert ($first | where phase == setup | is-not-empty)
  let app = $goes.service
  assert equal (guest sh --on $goes.instance $"test -d /opt/hk/($app)/env && test -e /etc/systemd/system/hk-($app)@.service && ls /opt/hk/($app)/releases 2>/dev/null | wc -l" | str trim) "0"
  let again = hk server bootstrap --quiet | get steps | flatten
  assert equal ($again | get step | uniq) ["nothing to change"]
  assert equal (hk audit | first | select action result) {action: bootstrap, result: ok}
  hk deploy --version v1 --quiet | ignore
  assert equal (answer $goes) v1

  # A command on every host: the host's own view, one row per host with its roles.
  let ran = hk server exec "id -u; hostname"
  assert equal ($ran | select host role exit_code) [{host: guest, role: web, exit_code: 0}]
  assert equal ($ran.0.stdout | lines | first) "0"
  has (error-of { hk server exec "" }) "no command"
  # Caddy's journal as rows like the app's.
  let caddy = hk server logs -n 5
  assert ($caddy | is-not-empty) "Caddy's journal has lines"
  assert equal ($caddy | columns) [time host role unit message]
  assert equal ($caddy | get unit | uniq) [caddy.service]

  # Status: as deployed, no drift; then each out-of-band change is drift with its reason.
  let fine = hk status
  assert equal ($fine | select host app role current expected active_port proxied_port site maintenance drift) [{host: guest, app: $app, role: web, current: v1, expected: v1, active_port: 6850, proxied_port: 6850, site: hk, maintenance: false, drift: false}]
  assert equal $fine.0.units {"6850": active, "6851": inactive}
  assert equal ($fine.0.last_deploy | select action version result) {action: deploy, version: v1, result: ok}
  hk deploy --version v2 --quiet | ignore
  assert equal (hk status | select current active_port proxied_port drift) [{current: v2, active_port: 6851, proxied_port: 6851, drift: false}]
  let dir = $"/opt/hk/($app)"
  guest sh --on $goes.instance $"ln -sfn releases/v1 ($dir)/current" | ignore
  let moved = hk status | first
  assert equal [$moved.drift $moved.current] [true v1]
  has ($moved.drift_reasons | str join "; ") "current is v1, the last deploy was v2"
  guest sh --on $goes.instance $"ln -sfn releases/v2 ($dir)/current && echo '# edited' >> ($dir)/Caddyfile" | ignore
  let edited = hk status | first
  assert equal [$edited.drift $edited.site] [true changed]
  has ($edited.drift_reasons | str join "; ") "Caddy site was changed"
  guest sh --on $goes.instance $"sed -i '/^# edited$/d' ($dir)/Caddyfile && systemctl stop hk-($app)@6851" | ignore
  let stopped = hk status | first
  assert equal [$stopped.drift $stopped.units."6851"] [true inactive]
  has ($stopped.drift_reasons | str join "; ") "the live instance on 6851 is inactive"
  hk deploy --version v3 --quiet | ignore
  assert equal (hk status | select current drift drift_reasons) [{current: v3, drift: false, drift_reasons: []}]
  # Every app on the host: the other one too, read from what it left there.
  let every = hk status --all-apps | where app in [$app $stays.service]
  assert equal ($every | select app current drift | sort-by app) ([{app: $app, current: v3, drift: false} {app: $stays.service, current: v1, drift: false}] | sort-by app)
  assert equal ($every | where app == $stays.service | get 0 | select units maintenance) {units: {"6840": active}, maintenance: false}

  # Monitoring: a Gatus endpoint per app and host, and the same check run now (a maintenance page
  # is a failed check: monitors do not pass by it).
  let gatus = hk monitor gatus --interval 1min | from yaml
  assert equal ($gatus.endpoints | select name group interval conditions headers) [{name: $"($app) on guest", group: $app, interval: 60s, conditions: ["[STATUS] == 200"], headers: {Host: $goes.site}}]
  has $gatus.endpoints.0.url "/up"
  let both = [$gatus (do { cd $stays.dir; hk monitor gatus | from yaml })] | get endpoints | flatten
  assert equal ($both | get name | sort) ([$"($app) on guest" $"($stays.service) on guest"] | sort)
  assert equal (hk monitor check | select app host status ok) [{app: $app, host: guest, status: 200, ok: true}]
  hk app maintenance --quiet | ignore
  assert equal (hk monitor check | select status ok) [{status: 503, ok: false}]
  hk app live --quiet | ignore

  # No terminal to ask on and no --yes: nothing removed.
  has (error-of { hk app remove }) "--yes"
  assert equal (answer $goes) v3
  let removed = hk app remove --yes | first
  assert equal ($removed | select host folder reloaded) {host: guest, folder: true, reloaded: true}
  assert ($removed.units | any {|u| $u == $"hk-($app)@6850.service" }) $"units: ($removed.units)"
  assert equal $removed.templates [$"hk-($app)@.service"]
  let left = guest sh --on $goes.instance $"ls -d /opt/hk/($app) /etc/systemd/system/hk-($app)@.service 2>/dev/null | wc -l; systemctl list-units --all --plain --no-legend 'hk-($app)@*' | wc -l" | lines
  assert equal $left ["0" "0"]
  assert ((answer $goes) != v3) "the removed app's site still answers"
  assert equal (answer $stays) v1
  # Twice in a row: nothing left to remove, no error (`hk remove` is the same command).
  assert equal (hk remove --yes | first | select folder reloaded units templates) {folder: false, reloaded: false, units: [], templates: []}
  assert equal (answer $stays) v1
  cd $stays.dir
  hk app remove --yes | ignore
}
