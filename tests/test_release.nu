# Part 4: releases — build, the release resource, hk clean.
use std/assert
use lib/helpers.nu *
use lib/sshd.nu

# An app folder with a file that says which version it is.
def app [dir: string, version: string] {
  let src = $dir | path join $"src-($version)"
  mkdir ($src | path join bin)
  $"#!/bin/sh\necho ($version)\n" | save ($src | path join bin/run)
  ^chmod 0755 ($src | path join bin/run)
  $"version ($version)\n" | save ($src | path join VERSION)
  ^ln -s VERSION ($src | path join ALIAS)
  hk release build $src --name demo --version $version --out-dir ($dir | path join dist)
}

# git in `dir`, with an author of its own (machines differ in their global config).
def --wrapped git-in [dir: string, ...args: string] {
  ^git -C $dir -c user.name=hk -c user.email=hk@example.invalid ...$args | complete
}

def release [dir: string, version: string, root: string] {
  {type: release, name: demo, version: $version, artifact: ($dir | path join dist $"demo-($version).json"), root: $root}
}

export def "test release: build is reproducible and describes itself" [] {
  let dir = scratch
  let a = app $dir 1.0.0
  let first = open --raw $a.tarball | hash sha256
  sleep 1100ms
  ^touch ($dir | path join src-1.0.0/VERSION)
  let b = hk release build ($dir | path join src-1.0.0) --name demo --version 1.0.0 --out-dir ($dir | path join dist)
  assert equal $a.sha256 $b.sha256
  assert equal $first $a.sha256
  assert equal (open ($dir | path join dist/demo-1.0.0.json) | get format) hk-release
  assert equal $a.release_version 1.0.0
  assert equal ($a.files.path | sort) [VERSION bin/run]
  assert equal ($a.files | where path == bin/run | get 0.mode) "0755"
  assert equal ($a.built_at | describe) datetime
  assert ($a.source | columns | all {|c| $c in [git_commit dirty] })
  # Name from package.json, version required outside git.
  # Outside any git checkout, so `git describe` has nothing to say.
  let pkg = mktemp -d -t hk-pkg.XXXXXXXX
  '{"name": "from-package"}' | save ($pkg | path join package.json)
  assert equal (hk release build $pkg --version 2 --out-dir ($dir | path join dist)).name from-package
  let err = error-of { hk release build $pkg --out-dir ($dir | path join dist) }
  has $err "pass --version"
  rm -rf $pkg
}

export def "test release: build leaves out what .gitignore ignores and its own output, and marks a dirty tree" [] {
  let src = scratch | path join app
  mkdir ($src | path join node_modules/dep) ($src | path join logs)
  "*.log\nnode_modules/\n" | save ($src | path join .gitignore)
  "v1\n" | save ($src | path join app.txt)
  "secret noise\n" | save ($src | path join logs/debug.log)
  "module\n" | save ($src | path join node_modules/dep/index.js)
  "keep me\n" | save ($src | path join .env.example)
  git-in $src init -q | ignore
  git-in $src add -A | ignore
  git-in $src commit -qm one | ignore
  let sha = (git-in $src rev-parse --short HEAD).stdout | str trim
  let built = hk release build $src --name app --out-dir ($src | path join dist)
  assert equal $built.release_version $sha
  assert equal ($built.files.path | sort) [.env.example .gitignore app.txt]
  assert equal $built.source.dirty false
  "v2\n" | save -f ($src | path join app.txt)
  let dirty = hk release build $src --name app --out-dir ($src | path join dist)
  assert equal $dirty.release_version $"($sha)-dirty"
  assert equal $dirty.source.dirty true
  # Outside a git checkout, a .gitignore still leaves its files out.
  rm -rf ($src | path join .git)
  let plain = hk release build $src --name app --version 3 --out-dir ($src | path join dist)
  assert equal ($plain.files.path | sort) [.env.example .gitignore app.txt]
}

export def "test release: deploy, flip, down --last, clean keeps N" [] {
  let dir = scratch
  let root = $dir | path join opt
  let roots = {runs: ($dir | path join runs), backups: ($dir | path join backups)}
  for v in [1.0.0 2.0.0 9.0.0 10.0.0] { app $dir $v | ignore }
  let deploy = {|v|
    {resources: [(release $dir $v $root)]} | hk plan local | hk apply --confirm --track --runs-root $roots.runs --backups-root $roots.backups | ignore
  }
  let plan = {resources: [(release $dir 1.0.0 $root)]} | hk plan local
  # The folders the release goes into are rows of their own, before it.
  assert equal ($plan | where reason == parent | get name | each { path relative-to $root }) ["" demo demo/artifacts demo/releases]
  assert equal ($plan | where reason != parent | get type) [release_artifact release_unpack link]
  assert equal ($plan.action | uniq) [create]
  assert equal ($plan | first 3 | get reason | uniq) [parent]
  do $deploy 1.0.0
  assert equal (^($root | path join demo/current/bin/run)) "1.0.0"
  assert equal (^readlink ($root | path join demo/current)) releases/1.0.0
  assert equal (open --raw ($root | path join demo/current/ALIAS)) "version 1.0.0\n"
  # Same artifact again: nothing to upload, nothing to do.
  assert equal (({resources: [(release $dir 1.0.0 $root)]} | hk plan local).action | uniq) [noop]
  do $deploy 2.0.0
  assert equal (^($root | path join demo/current/bin/run)) "2.0.0"
  # The way back flips current to the previous version.
  let down = hk down --local --last --runs-root $roots.runs
  assert ($down | where type == link | get 0.changes.0.to | str ends-with releases/1.0.0)
  $down | hk apply --confirm | ignore
  assert equal (^($root | path join demo/current/bin/run)) "1.0.0"
  for v in [2.0.0 9.0.0 10.0.0] { do $deploy $v }
  assert equal (ls ($root | path join demo/releases) | length) 4
  # Keep 2: 10.0.0 (active) and 9.0.0 stay; semantic order, not string order.
  let clean = {resources: [(release $dir 10.0.0 $root)]} | hk clean --local --keep 2
  assert equal ($clean.name | each {|n| $n | path basename } | sort) [1.0.0 2.0.0 demo-1.0.0.tar.gz demo-2.0.0.tar.gz]
  assert equal ($clean.action | uniq) [delete]
  $clean | hk apply --confirm | ignore
  assert equal (ls ($root | path join demo/releases) | get name | path basename | sort) [10.0.0 9.0.0]
  assert equal (ls ($root | path join demo/artifacts) | length) 2
  # Never the active one nor the one before it, whatever keep says.
  let again = {resources: [(release $dir 10.0.0 $root)]} | hk clean --local --keep 1
  assert equal ($again | where action != noop | length) 0
}

export def "test release: a release directory is in sync only while it holds what its artifact unpacks to" [] {
  let dir = scratch
  let root = $dir | path join opt
  app $dir 1.0.0 | ignore
  let release_dir = $root | path join demo/releases/1.0.0
  let plan = {|| {resources: [(release $dir 1.0.0 $root)]} | hk plan local --quiet }
  let apply = {|| do $plan | hk apply --confirm | ignore }
  do $apply
  assert equal ((do $plan).action | uniq) [noop]
  # Where the bytes came from is noted beside the release, not inside it.
  has (open --raw ($root | path join demo/releases/.1.0.0.unpacked)) "sha256="
  # A file gone by hand: the release is drift, and the apply unpacks it again.
  rm ($release_dir | path join VERSION)
  let row = do $plan | where type == release_unpack | first
  assert equal [$row.action $row.reason] [update drift]
  has $row.changes.0.from "1 file, not what it unpacks to"
  has $row.changes.0.to "2 files from sha256:"
  do $apply
  assert equal (open --raw ($release_dir | path join VERSION)) "version 1.0.0\n"
  assert equal ((do $plan).action | uniq) [noop]
  # An emptied directory, or one with a file of its own added, is drift too.
  ^sh -c $"rm -rf '($release_dir)'/*"
  assert equal (do $plan | where type == release_unpack | get 0.changes.0.from) "0 files, not what it unpacks to"
  do $apply
  "x" | save ($release_dir | path join stray.txt)
  assert equal (do $plan | where action != noop | get type) [release_unpack]
  do $apply
  assert not (($release_dir | path join stray.txt) | path exists)
  assert equal (^($root | path join demo/current/bin/run)) "1.0.0"
  # The same version built again from other bytes replaces what was unpacked.
  "#!/bin/sh\necho rebuilt\n" | save -f ($dir | path join src-1.0.0/bin/run)
  hk release build ($dir | path join src-1.0.0) --name demo --version 1.0.0 --out-dir ($dir | path join dist) | ignore
  assert equal (do $plan | where action != noop | get type) [release_artifact release_unpack]
  do $apply
  assert equal (^($root | path join demo/current/bin/run)) "rebuilt"
  assert equal ((do $plan).action | uniq) [noop]
  assert equal (ls -a ($root | path join demo/releases) | get name | path basename | sort) [.1.0.0.unpacked 1.0.0]
}

export def "test release: the way back from hk clean puts releases back whole" [] {
  let dir = scratch
  let root = $dir | path join opt
  let runs = $dir | path join runs
  let backups = $dir | path join backups
  for v in [1.0.0 2.0.0 3.0.0] { app $dir $v | ignore }
  for v in [1.0.0 2.0.0 3.0.0] {
    {resources: [(release $dir $v $root)]} | hk plan local --quiet | hk apply --confirm | ignore
  }
  let clean = {resources: [(release $dir 3.0.0 $root)]} | hk clean --local --keep 2
  assert equal ($clean.name | path basename) [demo-1.0.0.tar.gz 1.0.0]
  $clean | hk apply --confirm --track --runs-root $runs --backups-root $backups | ignore
  assert not (($root | path join demo/releases/1.0.0) | path exists)
  assert not (($root | path join demo/releases/.1.0.0.unpacked) | path exists)
  let down = hk down --local --last --runs-root $runs
  # The artifact comes back from its backup first, then the release is unpacked from it.
  assert equal ($down | each {|r| [$r.type $r.action] }) [[file create] [release_unpack create]]
  has ($down | get 1.changes.0.to) "2 files from sha256:"
  $down | hk apply --confirm | ignore
  assert equal (^($root | path join demo/releases/1.0.0/bin/run)) "1.0.0"
  assert equal (open --raw ($root | path join demo/releases/1.0.0/ALIAS)) "version 1.0.0\n"
  # What came back is what the release is: planning it again changes nothing but current.
  let again = {resources: [(release $dir 1.0.0 $root)]} | hk plan local --quiet
  assert equal ($again | where action != noop | get type) [link]
}

export def "test release: a host without openssl or a gzip-reading zstd falls back to sha256sum and gzip" [] {
  let dir = scratch
  let root = $dir | path join opt
  app $dir 1.0.0 | ignore
  # Every command of this machine but openssl and pigz, and a zstd that reads no gzip (as when built
  # without zlib); the local host's scripts get the PATH of the process that started the plugin, so
  # the deploy runs in a nu started with it.
  let bin = $dir | path join bin
  mkdir $bin
  for tool in (["/usr/local/bin" "/usr/bin" "/bin" "/usr/sbin" "/sbin"] | where {|d| $d | path exists } | each {|d| ls $d | get name } | flatten) {
    let link = $bin | path join ($tool | path basename)
    if ($tool | path basename) not-in [openssl pigz zstd] and not ($link | path exists) { ^ln -s $tool $link }
  }
  "#!/bin/sh\ncat > /dev/null\necho 'zstd: unsupported format' >&2\nexit 1\n" | save ($bin | path join zstd)
  ^chmod 0755 ($bin | path join zstd)
  let config = {resources: [(release $dir 1.0.0 $root)]} | to nuon
  let script = $"hk exec 'command -v openssl pigz || echo none; zstd -dc < /dev/null 2>&1' local | get 0.stdout | print; ($config) | hk plan local | hk apply --confirm | ignore"
  let run = with-env {PATH: $bin} { ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $script | complete }
  assert equal $run.exit_code 0 $run.stderr
  assert equal ($run.stdout | str trim) "none\nzstd: unsupported format"
  assert equal (^($root | path join demo/current/bin/run)) "1.0.0"
}

export def "test release: malicious or damaged artifacts are refused and current stays" [] {
  let dir = scratch
  let root = $dir | path join opt
  app $dir 1.0.0 | ignore
  {resources: [(release $dir 1.0.0 $root)]} | hk plan local | hk apply --confirm | ignore
  let evil = $dir | path join evil
  mkdir $evil
  cd $evil
  "x" | save payload
  ^ln -s /etc/passwd escape
  ^ln -s ../../outside up
  ^tar -czf abs.tar.gz -P ($evil | path join payload)
  ^tar -czf dotdot.tar.gz --transform 's,^,../,' payload
  ^tar -czf link.tar.gz escape
  ^tar -czf uplink.tar.gz up
  ^mknod dev c 1 3
  ^tar -czf device.tar.gz dev
  let cases = [[file expect]; [abs.tar.gz "absolute path"] [dotdot.tar.gz "leaves the release"] [link.tar.gz "points outside"] [uplink.tar.gz "points outside"] [device.tar.gz "Char"]]
  for case in $cases {
    let err = error-of { {resources: [{type: release, name: demo, version: 6.6.6, artifact: ($evil | path join $case.file), root: $root}]} | hk plan local }
    has $err $case.expect
  }
  # A tarball that does not match its manifest.
  let tarball = $dir | path join dist/demo-1.0.0.tar.gz
  app $dir 2.0.0 | ignore
  let good = open --raw ($dir | path join dist/demo-2.0.0.tar.gz) | into binary
  $good | bytes add 0x[00] --end | save -f ($dir | path join dist/demo-2.0.0.tar.gz)
  let err = error-of { {resources: [(release $dir 2.0.0 $root)]} | hk plan local }
  has $err "does not match its manifest"
  # A manifest of another format.
  {format: other, version: 1} | to json | save ($dir | path join dist/other.json)
  let err = error-of { {resources: [{type: release, name: demo, version: 3.0.0, artifact: ($dir | path join dist/other.json), root: $root}]} | hk plan local }
  has $err "not an hk release manifest"
  # Bytes that change between plan and apply are caught on the host by their sha256.
  $good | save -f ($dir | path join dist/demo-2.0.0.tar.gz)
  let plan = {resources: [(release $dir 2.0.0 $root)]} | hk plan local
  # Another valid tarball: unpacks fine, but its sha256 gives it away.
  cp -f $tarball ($dir | path join dist/demo-2.0.0.tar.gz)
  let err = error-of { $plan | hk apply --confirm }
  has $err "does not match sha256"
  assert equal (^readlink ($root | path join demo/current)) releases/1.0.0
  # Truncated bytes: the upload itself fails.
  $good | bytes at 0..20 | save -f ($dir | path join dist/demo-2.0.0.tar.gz)
  let err = error-of { $plan | hk apply --confirm }
  has $err "uploading"
  has $err "does not match sha256"
  assert not (($root | path join demo/artifacts/demo-2.0.0.tar.gz.partial) | path exists)
  assert not (($root | path join demo/releases/2.0.0.partial) | path exists)
  assert equal (^readlink ($root | path join demo/current)) releases/1.0.0
  assert not (($root | path join demo/releases/2.0.0) | path exists)
  # With the right bytes back, the next apply goes through cleanly.
  $good | save -f ($dir | path join dist/demo-2.0.0.tar.gz)
  {resources: [(release $dir 2.0.0 $root)]} | hk plan local | hk apply --confirm | ignore
  assert equal (^($root | path join demo/current/bin/run)) "2.0.0"
}

export def "test release: readers never miss current during 100 flips" [] {
  let dir = scratch
  let root = $dir | path join opt
  app $dir 1.0.0 | ignore
  app $dir 2.0.0 | ignore
  for v in [1.0.0 2.0.0] {
    {resources: [(release $dir $v $root)]} | hk plan local | hk apply --confirm | ignore
  }
  let current = $root | path join demo/current
  let stop = $dir | path join stop
  let log = $dir | path join reads.log
  # The reader runs beside the flips: $1 stop file, $2 current, $3 log.
  let reader = 'n=0; bad=0; while [ ! -e "$1" ] || [ "$n" -lt 1000 ]; do cat "$2/VERSION" >/dev/null 2>&1 || bad=$((bad+1)); n=$((n+1)); done; echo "$n $bad" > "$3"'
  ^sh -c $"\(($reader)\) >/dev/null 2>&1 &" sh $stop $current $log
  for i in 1..100 {
    let v = if ($i mod 2) == 0 { "1.0.0" } else { "2.0.0" }
    {resources: [{type: link, path: $current, target: $"releases/($v)"}]} | hk plan local | hk apply --confirm | ignore
  }
  "" | save $stop
  mut waited = 0
  while not ($log | path exists) and $waited < 200 { sleep 100ms; $waited += 1 }
  let result = open $log | str trim | split row " " | into int
  assert ($result.0 >= 1000) $"only ($result.0) reads"
  assert equal $result.1 0 $"($result.1) of ($result.0) reads failed"
}

export def "test release: deploy and roll back over ssh" [] {
  let server = sshd start
  let dir = scratch
  ^chmod 0755 $dir
  let root = (sshd remote-scratch | path join opt)
  app $dir 1.0.0 | ignore
  app $dir 2.0.0 | ignore
  let host = sshd host $server
  # Runs kept beside the release (the default, the test user's home, belongs to another test).
  let rr = $root | path dirname | path join runs
  let br = $root | path dirname | path join backups
  for v in [1.0.0 2.0.0] {
    {hosts: {box: $host}, resources: [(release $dir $v $root)]} | hk plan box | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
  }
  assert equal (^($root | path join demo/current/bin/run)) "2.0.0"
  assert equal (ls -l ($root | path join demo/releases/2.0.0/bin/run) | get 0.user) hktest
  {hosts: {box: $host}, resources: []} | hk down box --last --runs-root $rr --backups-root $br | hk apply --confirm | ignore
  assert equal (^($root | path join demo/current/bin/run)) "1.0.0"
  sshd stop $server
}

export def "test release: a connection killed mid-upload leaves current alone and the next apply resumes" [] {
  let server = sshd start
  let dir = scratch
  ^chmod 0755 $dir
  let root = (sshd remote-scratch | path join opt)
  app $dir 1.0.0 | ignore
  # A big second release, so the upload takes a moment.
  let big = $dir | path join src-2.0.0
  mkdir ($big | path join bin)
  "#!/bin/sh\necho 2.0.0\n" | save ($big | path join bin/run)
  ^chmod 0755 ($big | path join bin/run)
  ^head -c 24000000 /dev/urandom | save ($big | path join blob)
  hk release build $big --name demo --version 2.0.0 --out-dir ($dir | path join dist) | ignore
  let host = sshd host $server
  let config_file = $dir | path join deploy.nuon
  {hosts: {box: $host}, resources: [(release $dir 1.0.0 $root)]} | hk plan box | hk apply --confirm | ignore
  {hosts: {box: $host}, resources: [(release $dir 2.0.0 $root)]} | to nuon | save $config_file
  let partial = $root | path join demo/artifacts/demo-2.0.0.tar.gz.partial
  let out = $dir | path join apply.out
  let apply = $"hk plan box ($config_file) | hk apply --confirm | ignore"
  ^sh -c '("$1" -n --plugins "$2" -c "$3" > "$4" 2>&1; echo "exit $?" >> "$4") &' sh $env.HK_NU $env.HK_PLUGIN $apply $out
  mut waited = 0
  while (not ($partial | path exists) or (ls $partial | get 0.size) < 1MB) and $waited < 300 { sleep 20ms; $waited += 1 }
  assert ($partial | path exists) "the upload never started"
  # Kill the SSH sessions serving the upload: the children of this test's sshd only (other tests
  # log in as the same user at the same time).
  ^pkill -P (open $server.pid_file | str trim) | complete | ignore
  mut waited = 0
  while not ($out | path exists) or not (open --raw $out | str contains "exit ") { sleep 100ms; $waited += 1; if $waited > 300 { break } }
  assert not (open --raw $out | str contains "exit 0") (open --raw $out)
  assert equal (^readlink ($root | path join demo/current)) releases/1.0.0
  assert not (($root | path join demo/releases/2.0.0) | path exists)
  # The next apply uploads again and finishes.
  hk plan box $config_file | hk apply --confirm | ignore
  assert equal (^($root | path join demo/current/bin/run)) "2.0.0"
  assert not ($partial | path exists)
  sshd stop $server
}

export def "test release: building and uploading a large release report progress on stderr" [] {
  let dir = scratch
  let root = $dir | path join opt
  let src = $dir | path join src-big
  mkdir $src
  ^head -c 34000000 /dev/urandom | save ($src | path join blob)
  # Progress goes to the plugin's stderr, so both run in a nu whose output this test reads.
  let script = $"hk release build ($src | to nuon) --name big --version 1.0.0 --out-dir ($dir | path join dist | to nuon) | ignore
    {resources: [{type: release, name: big, version: 1.0.0, artifact: ($dir | path join dist/big-1.0.0.json | to nuon), root: ($root | to nuon)}]} | hk plan local | hk apply --confirm | ignore"
  let run = ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $script | complete
  assert equal $run.exit_code 0 $run.stderr
  let lines = $run.stderr | lines
  assert equal ($lines | where $it starts-with "hk release build: " | last) "hk release build: 100% (32 of 32 MiB)" $run.stderr
  let uploads = $lines | where $it starts-with "hk apply: local: uploading release_artifact:"
  assert equal ($uploads | length) 10 $run.stderr
  assert str contains ($uploads | last) "100% (32 of 32 MiB)"
  assert equal (open --raw ($root | path join big/current/blob) | bytes length) 34000000
}

export def "test release: from a URL or a tarball hk did not build, pinned by sha256, with strip_components" [] {
  let dir = scratch
  $env.HK_DOWNLOAD_CACHE = $dir | path join downloads
  # A tarball made elsewhere: its files inside a folder of its own.
  mkdir ($dir | path join src/pkg-1.0/bin)
  "#!/bin/sh\necho external\n" | save ($dir | path join src/pkg-1.0/bin/run)
  chmod +x ($dir | path join src/pkg-1.0/bin/run)
  mkdir ($dir | path join www)
  ^tar -czf ($dir | path join www/pkg-1.0.tar.gz) -C ($dir | path join src) pkg-1.0
  let sha = open --raw ($dir | path join www/pkg-1.0.tar.gz) | hash sha256
  let free = port
  let server = ^bash -c $"\(cd '($dir | path join www)' && exec python3 -m http.server ($free) --bind 127.0.0.1\) > /dev/null 2>&1 < /dev/null & echo $!" | str trim
  let url = $"http://127.0.0.1:($free)/pkg-1.0.tar.gz"
  let root = $dir | path join opt
  let release = {type: release, name: ext, version: "1.0", url: $url, sha256: $sha, strip_components: 1, root: $root}
  try {
    # The server may take a moment to listen.
    let listening = 1..50 | each {|i| $i } | any {|_|
      let up = (^bash -c $"exec 3<>/dev/tcp/127.0.0.1/($free)" | complete | get exit_code) == 0
      if not $up { sleep 100ms }
      $up
    }
    assert $listening "the test's HTTP server never listened"
    {resources: [$release]} | hk plan local --quiet | hk apply --confirm | ignore
    assert equal (^($root | path join ext/current/bin/run)) "external"
    # A pin that does not match is refused before anything happens.
    let wrong = $release | update sha256 ("0" | fill -c 0 -w 64) | update version "2.0"
    has (error-of { {resources: [$wrong]} | hk plan local }) "not the 0000"
    has (error-of { {resources: [($release | reject sha256)]} | hk plan local }) "pinned by its sha256"
    # A local tarball hk did not build, pinned by the same hash, unpacks the same way.
    let local = $release | reject url | insert artifact ($dir | path join www/pkg-1.0.tar.gz) | update version "1.1"
    {resources: [$local]} | hk plan local --quiet | hk apply --confirm | ignore
    assert equal (^($root | path join ext/current/bin/run)) "external"
    has (error-of { {resources: [($local | update sha256 ("f" | fill -c f -w 64))]} | hk plan local }) "the config pins"
    assert not (($root | path join ext/releases/2.0) | path exists)
  } catch {|e|
    ^kill $server
    $e.raw
  }
  ^kill $server
}

export def "test release: hk release stale keeps the newest, the live one, the one before it and what ports run" [] {
  let at = {|v, s| {version: $v, unpacked_at: (2026-01-01 + ($s * 1sec))} }
  let releases = [(do $at 1.0.0 1) (do $at 2.0.0 2) (do $at 10.0.0 3) (do $at 3.0.0 4)]
  # Semantic versions order by version, not by time: 10.0.0 is the newest.
  assert equal ($releases | hk release stale --keep 1 --current 10.0.0) [1.0.0 2.0.0]
  # After a rollback the live one is old: it and the one before stay, the newer ones above `keep` go.
  assert equal ($releases | hk release stale --keep 1 --current 2.0.0) [3.0.0]
  # A release a port's instance may still run is never stale.
  assert equal ($releases | hk release stale --keep 1 --current 10.0.0 --linked [1.0.0]) [2.0.0]
  # Not semantic versions: by unpack time (seconds work as well as dates).
  let shas = [[version unpacked_at]; [c3 30] [a1 10] [b2 20] [d4 40]]
  assert equal ($shas | hk release stale --keep 2 --current d4) [a1 b2]
  assert equal ($shas | hk release stale --keep 1 --current b2) [c3]
  assert equal ([] | hk release stale --keep 3) []
  let err = error-of { $shas | hk release stale --keep 0 }
  has $err "--keep must be at least 1"
}
