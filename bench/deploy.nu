# Benchmark: deploys of the example app (examples/hello) to one and to two qemu guests. For each:
# the wall time of a v(n) → v(n+1) deploy split into upload, health wait, drain and the rest (hk's own
# work and its round trips), the SSH connections each host's sshd accepted for the whole deploy, and
# a redeploy of the live version (nothing new to upload). Each deploy runs in a nu of its own, as a
# user's would. Run as root: bin/hk-nu bench/deploy.nu [--runs 3]
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

def scenario [work: string, service: string, hosts: record, port: int, runs: int]: nothing -> record {
  let dir = project $work $service $hosts $port
  let instances = $hosts | values
  run-in $dir "hk setup --version v0" | ignore
  let deploys = 1..$runs | each {|i|
    let before = accepted $instances
    let cpu = busy
    let r = run-in $dir $"hk deploy --version v($i)"
    let cpu = (busy) - $cpu
    let after = accepted $instances
    split $r $service
    | insert connections ($instances | each {|n| ($after | get $n) - ($before | get $n) })
    | insert cpu $cpu
  }
  let redeploy = split (run-in $dir $"hk redeploy --version v($runs)") $service
  {
    hosts: ($hosts | columns | length)
    deploy: ($deploys | get wall | median)
    upload: ($deploys | get upload | median)
    health: ($deploys | get health | median)
    drain: ($deploys | get drain | median)
    rest: ($deploys | get rest | median)
    cpu: ($deploys | get cpu | median)
    connections_per_host: ($deploys | get connections | flatten | uniq | str join ",")
    redeploy: $redeploy.wall
  }
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
  $two | values | each {|n| guest up $n | ignore }
  let results = try {
    [(scenario $work bench-one $one 4000 $runs) (scenario $work bench-two $two 4100 $runs)]
  } catch {|e|
    $two | values | each {|n| guest down $n } | ignore
    $e.raw
  }
  $two | values | each {|n| guest down $n } | ignore
  let ms = {|d| $"($d / 1ms | math round) ms" }
  for r in $results {
    print $"($r.hosts) host\(s\): deploy (do $ms $r.deploy) = upload (do $ms $r.upload) + health wait (do $ms $r.health) + drain (do $ms $r.drain) + the rest (do $ms $r.rest); machine CPU (do $ms $r.cpu); SSH connections per host ($r.connections_per_host); redeploy of the live version (do $ms $r.redeploy)"
  }
  let ratio = $results.1.deploy / $results.0.deploy
  # The guests run on this machine's cores, beside hk: a 2-host deploy cannot take less than its
  # whole CPU work spread over the cores, nor less than a 1-host deploy.
  let cores = sys cpu | length
  let bound = [($results.1.cpu / $cores) $results.0.deploy] | math max
  print $"2 hosts / 1 host: ($ratio | math round -p 2)× \(target ≤ 1.3×\); the machine's bound for 2 hosts \(its CPU work over ($cores) cores, at least one host's time\): ($bound / 1ms | math round) ms = ($bound / $results.0.deploy | math round -p 2)× one host; hk at ($results.1.deploy / $bound | math round -p 2)× that bound"
  print $"SSH connections per host per deploy: ($results | get connections_per_host | uniq | str join ', ') \(target 1\)"
}
