# Benchmark: deploys of the example app (examples/hello) to one and to two qemu guests. For each:
# the wall time of a v(n) → v(n+1) deploy split into upload, health wait, drain and the rest (hk's own
# work and its round trips); per host, the SSH connections its sshd accepted, the execs (round
# trips) hk made and the processes started on it (from `/proc/stat`, the app's own start and stop
# measured apart); hk's CPU on this machine (all of it but the guests'); and a redeploy of the live
# version (nothing new to upload). Each deploy runs in a nu of its own, as a user's would.
# Run as root: bin/hk-nu bench/deploy.nu [--runs 3]
const root = path self | path dirname | path dirname
use ../tests/lib/guest.nu

def median []: list<duration> -> duration { sort | get (($in | length) // 2) }

# A project deploying hello to `hosts` (host name → instance).
def project [work: string, service: string, hosts: record, port: int]: nothing -> string {
  let dir = $work | path join $service
  mkdir ($dir | path join config) ($dir | path join dist/bin)
  cp ($root | path join target/debug/hello) ($dir | path join dist/bin/hello)
  {
    service: $service
    instances: ($hosts | values | each {|n| {$n: (guest spec)} } | into record)
    hosts: ($hosts | items {|h, n| {$h: {instance: $n, ssh: {timeout: 10min}}} } | into record)
    servers: ($hosts | columns)
    release: {path: dist, cmd: "bin/hello", build: "printf '%s\\n' \"$HK_VERSION\" > dist/VERSION"}
    proxy: {host: $"http://($service).test", app_port: $port}
    health_check: {path: /up, interval: 200ms, timeout: 30sec}
  } | save ($dir | path join config/deploy.nuon)
  $dir
}

# CPU time this machine has spent busy so far (all cores; from /proc/stat, in clock ticks of 10 ms).
def busy []: nothing -> duration {
  let cpu = open /proc/stat | lines | first | split row -r '\s+' | skip 1 | each { into int }
  # user nice system idle iowait irq softirq steal
  ($cpu.0 + $cpu.1 + $cpu.2 + $cpu.5 + $cpu.6 + $cpu.7) * 10ms
}

# SSH connections each instance's sshd has accepted so far.
def accepted [instances: list<string>]: nothing -> record {
  $instances | each {|n|
    {$n: (guest sh --on $n "journalctl -u ssh -o cat --no-pager | grep -c '^Accepted' || true" | str trim | into int)}
  } | into record
}

# The shell line printing the host's `processes` counter (processes started since boot) with
# builtins alone, so reading it starts none of its own beyond the session.
const PROCESSES = 'while read -r k v; do if [ "$k" = processes ]; then echo "$v"; fi; done < /proc/stat'

# Processes started so far on each instance, less what reading it costs (`cost`, per instance).
def started [instances: list<string>, cost: record = {}]: nothing -> record {
  $instances | each {|n|
    {$n: ((guest sh --on $n $PROCESSES | str trim | into int) - ($cost | get -o $n | default 0))}
  } | into record
}

# What reading the counter costs on each instance: two readings in a row.
def reading-cost [instances: list<string>]: nothing -> record {
  let a = started $instances
  let b = started $instances
  $instances | each {|n| {$n: (($b | get $n) - ($a | get $n))} } | into record
}

# Processes the app's own restart starts (`systemctl restart` of its live unit; systemctl itself
# not counted): what any deploy of it costs the host, whatever the tool.
def app-start [instance: string, service: string]: nothing -> int {
  let unit = guest sh --on $instance $"systemctl list-units --state=active --plain --no-legend 'hk-($service)@*' | cut -d' ' -f1 | head -n1" | str trim
  let line = $"a=$\(($PROCESSES)\); systemctl restart ($unit); ($PROCESSES); echo "$a""
  let n = guest sh --on $instance $line | lines | each { into int }
  $n.0 - $n.1 - 1
}

# CPU time the guests' qemu processes have used so far.
def guests-cpu [pids: list<int>]: nothing -> duration {
  $pids | each {|pid|
    let f = open $"/proc/($pid)/stat" | split row ") " | last | split row " "
    # utime and stime are fields 14 and 15 of stat: 12 and 13 after the command's name.
    (($f | get 11 | into int) + ($f | get 12 | into int)) * 10ms
  } | math sum
}

# Execs (SSH channels opened) per host of a traced run, by the ssh label's port.
def execs-of [stderr: string, ports: record]: nothing -> record {
  traced $stderr $ports 'exec'
}

# Round trips per host of a traced run: every exec, and every further script the session's
# resident shell ran (a leg: one script sent, its answer read).
def legs-of [stderr: string, ports: record]: nothing -> record {
  traced $stderr $ports '(?:exec|continue)'
}

# How many `hk trace: ssh <what>` lines each instance's port has.
def traced [stderr: string, ports: record, what: string]: nothing -> record {
  let pattern = 'hk trace: ssh ' + $what + '\s+[\d.]+ ms \S+@[^:]+:(?<port>\d+) '
  let seen = $stderr | lines | parse --regex $pattern | get port
  $ports | items {|n, port| {$n: ($seen | where $it == ($port | into string) | length)} } | into record
}

# One command of the deploy workflows in a nu of its own (HK_TRACE on): its rows, stderr, wall time.
def run-in [dir: string, command: string]: nothing -> record {
  let plugin = $root | path join target/debug/nu_plugin_hk
  let module = $root | path join nu-modules/hk
  let started = date now
  let out = with-env {HK_TRACE: "1"} {
    do { cd $dir; ^$nu.current-exe -n --plugins $plugin -c $"use r#'($module)'#; ($command) --quiet | to nuon" } | complete
  }
  let took = (date now) - $started
  if $out.exit_code != 0 { error make {msg: $"($command) failed: ($out.stderr | lines | last 5 | str join "\n")"} }
  # A deploy returns a row per phase and host with its steps nested: every step, with both.
  let rows = $out.stdout | from nuon | each {|r| $r.steps | insert phase $r.phase | insert host $r.host } | flatten
  {rows: $rows, stderr: $out.stderr, wall: $took}
}

# Wall time split by phase: upload (the slowest host's), health wait and drain (the slowest host's
# ready rows), the rest.
def split [r: record, service: string]: nothing -> record {
  let uploads = $r.stderr | lines | parse --regex 'hk trace: upload\s+(?<ms>[\d.]+) ms' | get ms | each { into float }
  let upload = (if ($uploads | is-empty) { 0 } else { $uploads | math max }) * 1ms
  let slowest = {|pattern| $r.rows | where step =~ $pattern | get duration | append 0sec | math max }
  let health = do $slowest $'^ready:($service) on '
  let drain = do $slowest '^ready:drain '
  {wall: $r.wall, upload: $upload, health: $health, drain: $drain, rest: ($r.wall - $upload - $health - $drain)}
}

def scenario [work: string, service: string, hosts: record, port: int, runs: int, guests: record]: nothing -> record {
  let dir = project $work $service $hosts $port
  let instances = $hosts | values
  let ports = $instances | each {|n| {$n: ($guests | get $n | get port)} } | into record
  let pids = $instances | each {|n| $guests | get $n | get pid }
  run-in $dir "hk setup --version v0" | ignore
  let cost = reading-cost $instances
  let deploys = 1..$runs | each {|i|
    let before = accepted $instances
    let procs = started $instances $cost
    let cpu = busy
    let qemu = guests-cpu $pids
    let r = run-in $dir $"hk deploy --version v($i)"
    let qemu = (guests-cpu $pids) - $qemu
    let cpu = (busy) - $cpu
    let procs_after = started $instances $cost
    let after = accepted $instances
    let execs = execs-of $r.stderr $ports
    let legs = legs-of $r.stderr $ports
    split $r $service
    | insert connections ($instances | each {|n| ($after | get $n) - ($before | get $n) })
    | insert execs ($instances | each {|n| $execs | get $n })
    | insert legs ($instances | each {|n| $legs | get $n })
    | insert processes ($instances | each {|n| ($procs_after | get $n) - ($procs | get $n) })
    | insert cpu $cpu
    | insert hk_cpu ($cpu - $qemu)
  }
  let app = $instances | each {|n| app-start $n $service } | math max
  let redeploy = run-in $dir $"hk redeploy --version v($runs)"
  let per_host = {|col| $deploys | get $col | flatten | uniq | sort | str join "," }
  {
    hosts: ($hosts | columns | length)
    deploy: ($deploys | get wall | median)
    upload: ($deploys | get upload | median)
    health: ($deploys | get health | median)
    drain: ($deploys | get drain | median)
    rest: ($deploys | get rest | median)
    cpu: ($deploys | get cpu | median)
    hk_cpu: ($deploys | get hk_cpu | median)
    connections_per_host: (do $per_host connections)
    execs_per_host: (do $per_host execs)
    legs_per_host: (do $per_host legs)
    processes_per_host: (do $per_host processes)
    app_start: $app
    redeploy: (split $redeploy $service).wall
    redeploy_execs: (execs-of $redeploy.stderr $ports | values | uniq | sort | str join ",")
    redeploy_legs: (legs-of $redeploy.stderr $ports | values | uniq | sort | str join ",")
  }
}

# The floor for "the rest" on this machine: the same release deployed to the same guest by hand, as
# tight as it goes — built here (tar + gzip), then one SSH connection running one script that takes
# a lock, streams the tarball into tar, starts it beside the old one (systemd-run), waits for its
# health check, switches a link, stops the old one and frees the lock. Its wall time less its
# upload and health wait (clocked in the guest) is what any tool must spend beyond them here.
def floor [guest: record, runs: int, work: string]: nothing -> record {
  let dist = $work | path join floor-dist
  mkdir ($dist | path join bin)
  cp ($root | path join target/debug/hello) ($dist | path join bin/hello)
  let ssh = $guest.ssh | split row ' ' | skip 1
  let tarball = $work | path join floor.tar.gz
  let one = {|i|
    let port = 4500 + ($i mod 2)
    let old = 4500 + (($i + 1) mod 2)
    let started = date now
    ^tar -czf $tarball -C $dist .
    let size = ls $tarball | get 0.size | into int
    let script = [
      'set -eu'
      'read -r t0 x < /proc/uptime'
      'mkdir -p /opt/floor && mkdir /opt/floor/lock'
      $'mkdir -p /opt/floor/rel/v($i)'
      $'head -c ($size) | tar -xzf - -C /opt/floor/rel/v($i)'
      'read -r t1 x < /proc/uptime'
      $'systemd-run --quiet --unit=floor-($port) -p Environment=PORT=($port) /opt/floor/rel/v($i)/bin/hello'
      'read -r t2 x < /proc/uptime'
      $'until curl -sf -o /dev/null http://127.0.0.1:($port)/up; do sleep 0.2; done'
      'read -r t3 x < /proc/uptime'
      $'ln -sfn rel/v($i) /opt/floor/current'
      $'systemctl stop floor-($old) 2>/dev/null || :'
      'rmdir /opt/floor/lock'
      'echo "$t0 $t1 $t2 $t3"'
    ] | str join "\n"
    let out = open --raw $tarball | ^ssh ...$ssh $"sh -c '($script)'" | complete
    let wall = (date now) - $started
    if $out.exit_code != 0 { error make {msg: $"the floor deploy failed: ($out.stderr)"} }
    let t = $out.stdout | str trim | split row ' ' | each { into float }
    let upload = ($t.1 - $t.0) * 1sec
    let health = ($t.3 - $t.2) * 1sec
    {wall: $wall, upload: $upload, health: $health, rest: ($wall - $upload - $health)}
  }
  let done = 1..$runs | each {|i| do $one $i }
  {wall: ($done | get wall | median), upload: ($done | get upload | median), health: ($done | get health | median), rest: ($done | get rest | median)}
}

def main [--runs: int = 3] {
  $env.HK_INSTANCES_DIR = $root | path join .scratch/bench-instances
  let work = $root | path join .scratch/bench-deploy
  rm -rf $work
  mkdir $work
  $env.HK_TEST_SCRATCH = $work
  let one = {web1: hk-bench-1}
  let two = {web1: hk-bench-1, web2: hk-bench-2}
  print "bringing up two guests"
  let guests = $two | values | each {|n| {$n: (guest up $n)} } | into record
  let results = try {
    [(scenario $work bench-one $one 4000 $runs $guests) (scenario $work bench-two $two 4100 $runs $guests) (floor ($guests | get hk-bench-1) $runs $work)]
  } catch {|e|
    $two | values | each {|n| guest down $n } | ignore
    $e.raw
  }
  $two | values | each {|n| guest down $n } | ignore
  let ms = {|d| $"($d / 1ms | math round) ms" }
  let low = $results.2
  let results = $results | first 2
  for r in $results {
    print $"($r.hosts) host\(s\): deploy (do $ms $r.deploy) = upload (do $ms $r.upload) + health wait (do $ms $r.health) + drain (do $ms $r.drain) + the rest (do $ms $r.rest); machine CPU (do $ms $r.cpu), hk's (do $ms $r.hk_cpu); per host: SSH connections ($r.connections_per_host), execs ($r.execs_per_host), round trips ($r.legs_per_host), processes started ($r.processes_per_host) \(the app's own restart: ($r.app_start)\); redeploy of the live version (do $ms $r.redeploy), execs per host ($r.redeploy_execs), round trips ($r.redeploy_legs)"
  }
  let ratio = $results.1.deploy / $results.0.deploy
  # The guests run on this machine's cores, beside hk: a 2-host deploy cannot take less than its
  # whole CPU work spread over the cores, nor less than a 1-host deploy.
  let cores = sys cpu | length
  let bound = [($results.1.cpu / $cores) $results.0.deploy] | math max
  print $"2 hosts / 1 host: ($ratio | math round -p 2)× \(target ≤ 1.3×\); the machine's bound for 2 hosts \(its CPU work over ($cores) cores, at least one host's time\): ($bound / 1ms | math round) ms = ($bound / $results.0.deploy | math round -p 2)× one host; hk at ($results.1.deploy / $bound | math round -p 2)× that bound"
  print $"the floor, one host: deploy (do $ms $low.wall) = upload (do $ms $low.upload) + health wait (do $ms $low.health) + the rest (do $ms $low.rest); hk's rest at ($results.0.rest / $low.rest | math round -p 2)× the floor's"
  print $"SSH connections per host per deploy: ($results | get connections_per_host | uniq | str join ', ') \(target 1\)"
  print $"execs per host per deploy: ($results | get execs_per_host | uniq | str join ', ') \(target ≤ 5\); round trips \(scripts\): ($results | get legs_per_host | uniq | str join ', ')"
}
