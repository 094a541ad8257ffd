# A real OpenSSH server on 127.0.0.1 for one test: own host key, own client key, key-only login as the
# unprivileged user `hktest` (shell /bin/sh, so no rc files), stopped by pid.
use std/assert

const test_user = "hktest"

# Make sure the test accounts exist: `hktest` with passwordless sudo, `hktest-nosudo` without.
# Tests run in parallel: the accounts are made under a lock, and their homes always belong to them.
export def ensure-users [] {
  if (^id -u | into int) != 0 { error make {msg: "the SSH tests create test users and need root"} }
  let script = '
    for user in hktest hktest-nosudo; do
      id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"
      mkdir -p "/home/$user"
      chown "$user:$user" "/home/$user"
    done
    printf "hktest ALL=(ALL) NOPASSWD: ALL\n" > /etc/sudoers.d/hktest
    chmod 0440 /etc/sudoers.d/hktest
    # A locked account (no password at all) cannot log in even with a key.
    printf "hktest:hk-test-password-1\nhktest-nosudo:hk-test-password-2\n" | chpasswd
  '
  ^flock /tmp/hk-test-users.lock sh -c $script
}

# Start sshd; returns {port, dir, key, known_hosts, user, pid_file}. With --late it starts after a delay.
export def start [--late: duration, --password, --ecdsa] {
  ensure-users
  mkdir /run/sshd
  let dir = mktemp -d --tmpdir-path $env.HK_TEST_SCRATCH sshd.XXXXXXXX
  ^chmod 0755 $dir
  let port = port
  ^ssh-keygen -q -t ed25519 -N "" -f ($dir | path join host_key)
  # With --ecdsa the server also offers an ECDSA key, and known_hosts lists only that one.
  ^ssh-keygen -q -t ecdsa -N "" -f ($dir | path join host_key_ecdsa)
  ^ssh-keygen -q -t ed25519 -N "" -f ($dir | path join client_key)
  cp ($dir | path join client_key.pub) ($dir | path join authorized_keys)
  ^chmod 0644 ($dir | path join authorized_keys)
  let pub_file = if $ecdsa { "host_key_ecdsa.pub" } else { "host_key.pub" }
  let host_pub = open ($dir | path join $pub_file) | str trim | split row " " | first 2 | str join " "
  $"[127.0.0.1]:($port) ($host_pub)\n" | save ($dir | path join known_hosts)
  [
    $"Port ($port)"
    "ListenAddress 127.0.0.1"
    $"HostKey ($dir)/host_key"
    (if $ecdsa { $"HostKey ($dir)/host_key_ecdsa" } else { "" })
    $"PidFile ($dir)/sshd.pid"
    $"AuthorizedKeysFile ($dir)/authorized_keys"
    $"PasswordAuthentication (if $password { 'yes' } else { 'no' })"
    "KbdInteractiveAuthentication no"
    "PubkeyAuthentication yes"
    "UsePAM no"
    "StrictModes no"
    "PermitRootLogin no"
    "PermitUserRC no"
    "PrintMotd no"
    "MaxStartups 100:30:200"
  ] | str join "\n" | save ($dir | path join sshd_config)
  let sshd = "/usr/sbin/sshd"
  let cmd = $"($sshd) -f ($dir)/sshd_config -E ($dir)/sshd.log"
  if $late == null {
    ^sh -c $cmd
    wait-port $port
  } else {
    let seconds = $late / 1sec
    ^sh -c $"\(sleep ($seconds); ($cmd)\) >/dev/null 2>&1 &"
  }
  {port: $port, dir: $dir, key: ($dir | path join client_key), known_hosts: ($dir | path join known_hosts), user: $test_user, pid_file: ($dir | path join sshd.pid)}
}

def wait-port [port: int] {
  for i in 1..100 {
    let ok = (do { ^bash -c $"exec 3<>/dev/tcp/127.0.0.1/($port)" } | complete | get exit_code) == 0
    if $ok { return }
    sleep 50ms
  }
  error make {msg: $"sshd did not come up on port ($port)"}
}

# Stop the server and its sessions (as when the host goes down: kept connections end too).
export def stop [server: record] {
  if ($server.pid_file | path exists) {
    let pid = open $server.pid_file | str trim
    ^pkill -TERM -P $pid | complete | ignore
    ^kill $pid | complete | ignore
  }
}

# A host declaration for this server.
export def host [server: record, --user: string] {
  {
    address: 127.0.0.1
    ssh: {port: $server.port, user: ($user | default $server.user), identity_file: $server.key, known_hosts: $server.known_hosts}
  }
}

# A scratch dir the test user may write to.
export def remote-scratch [] {
  let dir = mktemp -d --tmpdir-path $env.HK_TEST_SCRATCH remote.XXXXXXXX
  ^chmod 0777 $dir
  $dir
}
