# Part 2: hosts over SSH against a real OpenSSH server on 127.0.0.1.
use std/assert
use lib/helpers.nu *
use lib/sshd.nu

def site [root: string] {
  [
    {type: dir, path: $root, mode: "0755"}
    {type: file, path: ($root | path join app.conf), content: "remote = true\n", mode: "0640"}
    {type: file, path: ($root | path join blob.bin), content: 0x[00 01 ff 00]}
    {type: link, path: ($root | path join current), target: app.conf}
  ]
}

export def "test ssh: plan, apply, plan again over ssh" [] {
  let server = sshd start
  let root = (sshd remote-scratch | path join site)
  let config = {hosts: {box: (sshd host $server)}, resources: (site $root)}
  let plan = $config | hk plan box
  assert equal ($plan.host | uniq) [box]
  assert equal ($plan.action | uniq) [create]
  let events = $plan | hk apply --confirm
  assert equal ($events.status | uniq) [ok]
  assert equal (open --raw ($root | path join app.conf)) "remote = true\n"
  assert equal (open --raw ($root | path join blob.bin) | into binary) 0x[00 01 ff 00]
  assert equal (ls -l ($root | path join app.conf) | get 0.user) hktest
  assert equal (^readlink ($root | path join current)) app.conf
  assert equal (($config | hk plan box).action | uniq) [noop]
  "drift\n" | save -f ($root | path join app.conf)
  let drift = $config | hk plan box | where action != noop
  assert equal $drift.id [$"file:($root)/app.conf"]
  sshd stop $server
}

export def "test ssh: unknown host key is refused with its fingerprint unless accepted" [] {
  let server = sshd start
  let root = (sshd remote-scratch | path join site)
  "" | save -f $server.known_hosts
  let config = {hosts: {box: (sshd host $server)}, resources: (site $root)}
  let err = error-of { $config | hk plan box }
  has $err "is not known"
  has $err "SHA256:"
  has $err "--silently-accept-hosts"
  let plan = $config | hk plan box --silently-accept-hosts
  assert equal ($plan | length) 4
  sshd stop $server
}

export def "test ssh: hashed known_hosts holding only an ECDSA key" [] {
  let server = sshd start --ecdsa
  ^ssh-keygen -q -H -f $server.known_hosts
  assert not (open $server.known_hosts | str contains "127.0.0.1")
  assert (open $server.known_hosts | str contains "ecdsa-sha2")
  let plan = {hosts: {box: (sshd host $server)}, resources: [{type: dir, path: /tmp}]} | hk plan box
  assert equal $plan.action [noop]
  sshd stop $server
}

export def "test ssh: a changed host key is always refused" [] {
  let server = sshd start
  let other = sshd start
  # known_hosts lists the other server's key for this server's port.
  let other_key = open $other.known_hosts | str trim | split row " " | skip 1 | str join " "
  $"[127.0.0.1]:($server.port) ($other_key)\n" | save -f $server.known_hosts
  let config = {hosts: {box: (sshd host $server)}, resources: [{type: dir, path: /tmp/hk-never}]}
  let err = error-of { $config | hk plan box }
  has $err "CHANGED"
  let err = error-of { $config | hk plan box --silently-accept-hosts }
  has $err "CHANGED"
  sshd stop $server
  sshd stop $other
}

export def "test ssh: a wrong key fails authentication clearly" [] {
  let server = sshd start
  let stranger = sshd start
  let config = {hosts: {box: ((sshd host $server) | update ssh.identity_file $stranger.key)}, resources: []}
  let err = error-of { $config | hk plan box }
  has $err "authentication failed for hktest"
  has $err $stranger.key
  sshd stop $server
  sshd stop $stranger
}

export def "test ssh: password from an environment variable, never stored" [] {
  let server = sshd start --password
  let dir = scratch
  let root = (sshd remote-scratch | path join site)
  let host = (sshd host $server) | reject ssh.identity_file | insert ssh.password_env HK_TEST_SSH_PASSWORD
  let config = {hosts: {box: $host}, resources: (site $root)}
  let err = error-of { $config | hk plan box }
  has $err "HK_TEST_SSH_PASSWORD is not set"
  $env.HK_TEST_SSH_PASSWORD = "hk-test-password-1"
  let out = $dir | path join plan.json
  let plan = $config | hk plan box --out $out
  let events = $plan | hk apply --confirm
  assert equal ($events.status | uniq) [ok]
  assert not (open --raw $out | str contains "hk-test-password-1")
  assert not ($plan | to json | str contains "hk-test-password-1")
  assert not ($events | to json | str contains "hk-test-password-1")
  # The flag form names the variable too.
  let flagged = {hosts: {box: ((sshd host $server) | reject ssh.identity_file)}, resources: (site $root)}
  assert equal (($flagged | hk plan box --password-env HK_TEST_SSH_PASSWORD).action | uniq) [noop]
  # A password given directly works too (and is not kept anywhere either).
  let direct = $flagged | hk plan box --password hk-test-password-1 --out ($dir | path join direct.json)
  assert equal ($direct.action | uniq) [noop]
  assert not (open --raw ($dir | path join direct.json) | str contains "hk-test-password-1")
  $env.HK_TEST_SSH_PASSWORD = "wrong"
  let err = error-of { $config | hk plan box }
  has $err "authentication failed"
  sshd stop $server
}

export def "test ssh: an sshd that comes up late is reached by retrying" [] {
  let server = sshd start --late 1500ms
  let host = (sshd host $server) | insert ssh.retry {attempts: 8, base_delay: 200ms, max_delay: 1sec}
  let plan = {hosts: {box: $host}, resources: [{type: dir, path: /tmp}]} | hk plan box
  assert equal ($plan.action) [noop]
  sshd stop $server
  # Without retries the same situation fails fast with the reason.
  let down = sshd start --late 30sec
  let host = (sshd host $down) | insert ssh.retry {attempts: 1}
  let err = error-of { {hosts: {box: $host}, resources: []} | hk plan box }
  has $err "connection refused"
}

export def "test ssh: sudo for a non-root user, and a sudo that needs a password fails fast" [] {
  let server = sshd start
  let dir = scratch
  ^chmod 0755 $dir
  # Only root may write here.
  let root_only = $dir | path join root-only
  mkdir $root_only
  ^chmod 0755 $root_only
  let config = {hosts: {box: (sshd host $server)}, resources: [{type: file, path: ($root_only | path join x), content: "as root\n"}]}
  let err = error-of { $config | hk plan box | hk apply --confirm }
  has $err "Permission denied"
  let events = $config | hk plan box --sudo | hk apply --confirm
  assert equal ($events.status | uniq) [ok]
  assert equal (ls -l ($root_only | path join x) | get 0.user) root
  # The same with sudo declared on the host.
  let declared = {hosts: {box: ((sshd host $server) | insert sudo true)}, resources: $config.resources}
  assert equal (($declared | hk plan box).action) [noop]
  # A user whose sudo needs a password: a clear error at once, not a hang.
  cp ($server.dir | path join client_key.pub) ($server.dir | path join authorized_keys)
  let nosudo = {hosts: {box: (sshd host $server --user hktest-nosudo)}, resources: $config.resources}
  let err = error-of { $nosudo | hk plan box --sudo }
  has $err "needs a password"
  has $err "NOPASSWD"
  sshd stop $server
}

export def "test ssh: many hosts in parallel, one of them down" [] {
  let servers = 1..3 | each { sshd start }
  let root = sshd remote-scratch
  let hosts = $servers | enumerate | reduce --fold {} {|s, acc| $acc | insert $"web($s.index)" (sshd host $s.item) }
  let resources = [{type: file, path: ($root | path join shared.txt), content: "same everywhere\n"}]
  let config = {hosts: $hosts, resources: $resources}
  let plan = $config | hk plan --all --parallel 2
  assert equal ($plan.host | sort) [web0 web1 web2]
  # The three "hosts" share this machine's disk: apply one, the others then see it in sync.
  $plan | where host == web0 | hk apply --confirm | ignore
  assert equal (($config | hk plan [web1 web2]).action | uniq) [noop]

  # A host that is down: the others are still planned, and the error names it.
  let with_down = $config | insert hosts.down {address: 127.0.0.1, ssh: {port: (port), user: hktest, identity_file: $servers.0.key, known_hosts: $servers.0.known_hosts, retry: {attempts: 1}}}
  let err = error-of { $with_down | hk plan --all }
  has $err "1 host(s) failed: down"
  has $err "connection refused"

  # Apply: a host that goes down between plan and apply fails alone.
  rm ($root | path join shared.txt)
  let plan = $config | hk plan --all
  sshd stop ($servers | get 2)
  sleep 200ms
  let err = error-of { $plan | where host != web1 | hk apply --confirm }
  has $err "web2"
  assert equal (open --raw ($root | path join shared.txt)) "same everywhere\n"
  $servers | each {|s| sshd stop $s } | ignore
}

export def "test ssh: raw target flags and ~/.ssh/config aliases" [] {
  let server = sshd start
  let dir = scratch
  let root = (sshd remote-scratch | path join site)
  {resources: (site $root)} | to nuon | save ($dir | path join app.nuon)
  let plan = hk plan --remote 127.0.0.1 --port $server.port --user hktest --identity-file $server.key --known-hosts $server.known_hosts ($dir | path join app.nuon)
  assert equal ($plan.host | uniq) [127.0.0.1]
  assert equal ($plan | length) 4
  # An alias from ~/.ssh/config gives HostName, Port, User and IdentityFile.
  let home = $dir | path join home
  mkdir ($home | path join .ssh)
  $"Host boxalias\n  HostName 127.0.0.1\n  Port ($server.port)\n  User hktest\n  IdentityFile ($server.key)\n" | save ($home | path join .ssh/config)
  let script = $"{hosts: {box: {address: boxalias, ssh: {known_hosts: '($server.known_hosts)'}}}, resources: []} | hk plan box | length"
  let run = with-env {HOME: $home} { ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $script | complete }
  assert equal $run.exit_code 0 $run.stderr
  sshd stop $server
}

export def "test ssh: a server that never answers times out with a clear error" [] {
  let dir = scratch
  let port = port
  # Accepts connections and then says nothing: no SSH banner ever arrives.
  let listener = $"import socket, time\ns = socket.socket\(\)\ns.setsockopt\(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1\)\ns.bind\(\('127.0.0.1', ($port)\)\)\ns.listen\(5\)\nconns = []\nend = time.time\(\) + 30\nwhile time.time\(\) < end:\n    s.settimeout\(1\)\n    try:\n        conns.append\(s.accept\(\)\)\n    except OSError:\n        pass\n"
  $listener | save ($dir | path join silent.py)
  ^sh -c $"python3 ($dir)/silent.py >/dev/null 2>&1 &"
  # Listening before hk dials (a busy machine starts python slowly).
  let deadline = (date now) + 20sec
  while (^python3 -c $"import socket; socket.create_connection\(\('127.0.0.1', ($port)\), 0.5\)" | complete | get exit_code) != 0 {
    if (date now) > $deadline { error make {msg: "the silent server did not start listening"} }
    sleep 100ms
  }
  let host = {address: 127.0.0.1, ssh: {port: $port, user: hktest, connect_timeout: 1sec, retry: {attempts: 1}}}
  let started = date now
  let err = error-of { {hosts: {mute: $host}, resources: []} | hk plan mute }
  has $err "mute"
  has $err "handshake"
  has $err "Timed out"
  assert (((date now) - $started) < 10sec) "the timeout was not applied"
}

# The file helpers (perl) of user hktest's sessions and the folders they serve, by pid.
def file-helpers []: nothing -> record {
  ^ps -u hktest -o pid=,args= | lines | parse --regex '^\s*(?<pid>\d+) perl -e .* (?<dir>\S+/hk-session\.\S+)$'
  | each {|h| {$h.pid: $h.dir} } | into record
}

# Temp folders an apply left behind for user hktest.
def apply-temps []: nothing -> list<string> {
  glob /tmp/hk-apply.* | where {|p| (ls -lD $p | get 0.user) == hktest }
}

export def "test ssh: one file helper serves every apply of a session, and a dead one is replaced" [] {
  let server = sshd start
  let root = (sshd remote-scratch | path join helper)
  let host = sshd host $server
  let config = {|n| {hosts: {box: $host}, resources: [
    {type: dir, path: $root, mode: "0750"}
    {type: file, path: ($root | path join $"f($n).conf"), content: $"($n)\n", mode: "0600"}
    {type: link, path: ($root | path join current), target: $"f($n).conf"}
  ]} }
  let before = file-helpers
  do $config 1 | hk plan box | hk apply --confirm | ignore
  let started = file-helpers | reject ...($before | columns)
  assert equal ($started | columns | length) 1 "the session started one file helper"
  assert equal (apply-temps) [] "the apply's temp folder went"
  do $config 2 | hk plan box | hk apply --confirm | ignore
  assert equal (file-helpers | reject ...($before | columns)) $started "the second apply used the same helper"
  assert equal (^readlink ($root | path join current)) f2.conf
  # A helper that died: the next apply falls back to one of its own.
  ^kill ($started | columns | first)
  sleep 200ms
  let events = do $config 3 | hk plan box | hk apply --confirm
  assert equal ($events.status | uniq) [ok]
  assert equal (open --raw ($root | path join f3.conf)) "3\n"
  assert equal (ls -lD ($root | path join f3.conf) | get 0.mode) rw-------
  assert equal (ls -lD $root | get 0.mode) rwxr-x---
  assert equal (^readlink ($root | path join current)) f3.conf
  assert equal (apply-temps) [] "no temp folder is left"
  assert equal ((do $config 3 | hk plan box).action | uniq) [noop]
  sshd stop $server
  # A killed helper leaves its fifos' folder.
  rm -rf ($started | values | first)
  # The end of a session ends its helper, which removes its folder.
  let other = sshd start
  let before = file-helpers
  do $config 4 | update hosts.box (sshd host $other) | hk plan box | hk apply --confirm | ignore
  let dir = file-helpers | reject ...($before | columns) | values
  assert equal ($dir | length) 1
  sshd stop $other
  sleep 500ms
  assert not ($dir.0 | path exists) $"($dir.0) is left"
  assert equal (file-helpers | reject ...($before | columns)) {}
}

export def "test ssh: a probe run in the resident shell leaves its environment as it was" [] {
  let server = sshd start
  let root = (sshd remote-scratch | path join env)
  let seen = $root | path join seen
  let config = {hosts: {box: (sshd host $server)}, resources: [
    {type: dir, path: $root, mode: "0755"}
    {type: command, name: env, run: $"printf '%s\\n' \"${QUOTING_STYLE-unset}\" > ($seen)", creates: $seen, after: [$"dir:($root)"]}
  ]}
  # The probes run in place in the session's resident shell; the command runs after them.
  $config | hk plan box | hk apply --confirm | ignore
  assert equal (open --raw $seen) "unset\n"
  assert equal (($config | hk plan box).action | uniq) [noop]
  sshd stop $server
}

# `hk apply --read-ahead`: the next plan on the session is made from what the apply's own script
# read at its end (seen here by changing the file behind the session's back: that plan still
# finds it missing, and an apply of it is refused as stale), once; any other command run on the
# session in between drops the reading.
export def "test ssh: a reading taken ahead serves the next plan once, and anything run on the session first drops it" [] {
  let server = sshd start
  let root = (sshd remote-scratch | path join ahead)
  let host = sshd host $server
  let first = {|content| {hosts: {box: $host}, resources: [{type: dir, path: $root, mode: "0755"}, {type: file, path: ($root | path join a), content: $content}]} }
  let next = {hosts: {box: $host}, resources: [{type: file, path: ($root | path join b), content: "x\n"}]}
  do $first "1\n" | hk apply box --confirm --read-ahead $next | ignore
  "outside\n" | save -f ($root | path join b)
  let planned = $next | hk plan box
  assert equal ($planned | where id =~ '/b$' | get action) [create] "planned from the reading taken before the file appeared"
  assert str contains (error-of { $planned | hk apply --confirm }) "stale"
  assert equal ($next | hk plan box | where id =~ '/b$' | get action) [update] "the reading served once"
  rm ($root | path join b)
  do $first "2\n" | hk apply box --confirm --read-ahead $next | ignore
  {hosts: {box: $host}} | hk exec "true" box | ignore
  "outside\n" | save -f ($root | path join b)
  assert equal ($next | hk plan box | where id =~ '/b$' | get action) [update] "a command in between dropped the reading"
  sshd stop $server
}
