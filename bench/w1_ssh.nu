# Benchmark W1 over SSH to a loopback sshd (started here, as in the tests): hk plan (empty), apply,
# no-op plan, against the floor — one `ssh` session running one hand-written script doing the same —
# and a no-op plan of 20 hosts in parallel against one. Run as root: bin/hk-nu bench/w1_ssh.nu
const root = path self | path dirname | path dirname
use ../tests/lib/sshd.nu

def w1 [base: string] {
  let payload = 1..16 | each { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n" } | str join
  let dirs = 0..99 | each {|d| {type: dir, path: $"($base)/d($d)", mode: "0755"} }
  let files = 0..99 | each {|d| 0..2 | each {|f| {type: file, path: $"($base)/d($d)/f($f).txt", content: $"($d) ($f)\n($payload)", mode: "0644"} } } | flatten
  let links = 0..99 | each {|d| {type: link, path: $"($base)/l($d)", target: $"d($d)/f0.txt"} }
  [{type: dir, path: $base, mode: "0755"}] | append $dirs | append $files | append $links
}

def median []: list<duration> -> duration { sort | get (($in | length) // 2) }

# CPU time all cores of this machine have been busy so far (from /proc/stat, in 10 ms ticks).
def machine_busy []: nothing -> duration {
  let f = open --raw /proc/stat | lines | first | split row -r '\s+' | skip 1 | into int
  (($f | math sum) - ($f | get 3) - ($f | get 4)) * 10ms
}

# CPU time (user + system) the hk plugin process has used so far.
def plugin_cpu []: nothing -> duration {
  let pid = ps | where name =~ nu_plugin_hk | get 0.pid
  let fields = open --raw $"/proc/($pid)/stat" | split row ") " | get 1 | split row " "
  let ticks = ($fields | get 11 | into int) + ($fields | get 12 | into int)
  ($ticks * 10) * 1ms
}

def main [--runs: int = 5] {
  let work = $root | path join .scratch/bench-ssh
  rm -rf $work
  mkdir $work
  $env.HK_TEST_SCRATCH = $work
  let server = sshd start
  let remote = sshd remote-scratch
  let base = $remote | path join w1
  let resources = w1 $base
  let host = sshd host $server
  let config = {hosts: {box: $host}, resources: $resources}
  let q = {|s| $"'($s | str replace --all "'" "'\\''")'" }
  # As tight as a hand-written script gets: one `mkdir -p` for every folder, a builtin `printf` for
  # every file, an `ln -s` for every link (no command makes links to different targets at once).
  let floor_apply = [$"mkdir -p -m 0755 ($resources | where type == dir | get path | each {|p| do $q $p } | str join ' ')"]
    | append ($resources | where type == file | each {|r| $"printf '%s' (do $q $r.content) > (do $q $r.path)" })
    | append ($resources | where type == link | each {|r| $"ln -s (do $q $r.target) (do $q $r.path)" })
    | str join "\n"
  let all_paths = $resources.path | each {|p| do $q $p } | str join ' '
  let file_paths = $resources | where type == file | get path | each {|p| do $q $p } | str join ' '
  let floor_probe = $"stat --printf '%n %F %a %u %g %s %N\\0' -- ($all_paths) 2>/dev/null\nsha256sum -- ($file_paths) 2>/dev/null\n"
  let ssh_args = [-q -p $server.port -i $server.key -o $"UserKnownHostsFile=($server.known_hosts)" -o BatchMode=yes $"($server.user)@127.0.0.1" "sh -s"]
  let hosts20 = 0..19 | reduce --fold {} {|i, acc| $acc | insert $"h($i)" $host }
  let config20 = {hosts: $hosts20, resources: $resources}

  mut rows = []
  for i in 1..$runs {
    rm -rf $base
    let plan_empty = timeit { $config | hk plan box | ignore }
    let apply = timeit { $config | hk plan box | hk apply --confirm | ignore }
    let plan_noop = timeit { $config | hk plan box | ignore }
    let cpu_before = plugin_cpu
    let hk_busy_before = machine_busy
    let plan20 = timeit { $config20 | hk plan --all --parallel 20 | ignore }
    let cpu20 = (plugin_cpu) - $cpu_before
    let hk_busy20 = (machine_busy) - $hk_busy_before
    rm -rf $base
    let floor_apply_t = timeit { $floor_apply | ^ssh ...$ssh_args }
    # The facts come back to the caller, as hk's do.
    let floor_probe_t = timeit { $floor_probe | ^ssh ...$ssh_args | ignore }
    # The same 20 sessions by hand: how far this machine's cores let 20 hosts share them.
    let busy_before = machine_busy
    let floor20 = timeit { 0..19 | par-each --threads 20 {|_| $floor_probe | ^ssh ...$ssh_args | ignore } | ignore }
    let busy20 = (machine_busy) - $busy_before
    $rows = $rows | append {plan_empty: $plan_empty, apply: $apply, plan_noop: $plan_noop, plan20: $plan20, cpu20: $cpu20, hk_busy20: $hk_busy20, floor_apply: $floor_apply_t, floor_probe: $floor_probe_t, floor20: $floor20, busy20: $busy20}
  }
  sshd stop $server
  let runs_table = $rows
  let m = $runs_table | columns | reduce --fold {} {|c, acc| $acc | insert $c ($runs_table | get $c | median) }
  print $"W1 over SSH to 127.0.0.1 \(($resources | length) resources, median of ($runs) runs\)"
  print ([
    [what, time];
    ["hk plan (empty target)", $m.plan_empty]
    ["hk plan + apply (empty target)", $m.apply]
    ["hk plan (no-op)", $m.plan_noop]
    ["hk plan (no-op), 20 hosts in parallel", $m.plan20]
    ["floor: ssh + one sh reading the same facts", $m.floor_probe]
    ["floor: ssh + one sh creating the same tree", $m.floor_apply]
    ["floor: the reading script over 20 ssh sessions at once", $m.floor20]
  ] | update time {|r| $r.time | format duration ms })
  print $"no-op plan / floor = (($m.plan_noop / $m.floor_probe) | math round --precision 2) \(target ≤ 0.4\)"
  print $"first apply / floor = (($m.apply / $m.floor_apply) | math round --precision 2) \(target ≤ 1.2\)"
  print $"20 hosts / 1 host = (($m.plan20 / $m.plan_noop) | math round --precision 2) \(target ≤ 3\); the floor's own: (($m.floor20 / $m.floor_probe) | math round --precision 2)"
  print $"hk 20 hosts / floor 20 sessions = (($m.plan20 / $m.floor20) | math round --precision 2); machine CPU busy during them: ($m.busy20 | format duration ms) on (sys cpu | length) cores"
  print $"20-host plan: machine CPU busy ($m.hk_busy20 | format duration ms), of which hk's own ($m.cpu20 | format duration ms); the rest is sshd and the probes, sharing this machine's cores"
  # However well hk spreads the hosts, their work cannot finish before all cores did it all.
  let cores = sys cpu | length
  let bound = $m.hk_busy20 / $cores
  print $"lower bound for the 20-host plan on ($cores) cores: ($bound | format duration ms) = (($bound / $m.plan_noop) | math round --precision 2)× one host; hk reached (($m.plan20 / $bound) | math round --precision 2)× that bound"
}
