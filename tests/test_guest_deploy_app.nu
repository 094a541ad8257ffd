# `hk app …` on the shared deploy guest (`hk-deploy`): a command in the live release's context
# (its user, env file and storage; stdout byte for byte; secrets in no process list), versions,
# what systemd says of each instance, and the journal as rows.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
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
