# Benchmark W1 on the local host: 100 dirs, 300 files of ~1 KiB, 100 links.
# Prints wall times of hk plan (empty target), hk apply, hk plan (no-op), and of hand-written single
# shell scripts doing the same work (the floor). Run: bin/hk-nu bench/w1.nu
const root = path self | path dirname | path dirname

def w1 [base: string] {
  let payload = 1..16 | each { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n" } | str join
  let dirs = 0..99 | each {|d| {type: dir, path: $"($base)/d($d)", mode: "0755"} }
  let files = 0..99 | each {|d| 0..2 | each {|f| {type: file, path: $"($base)/d($d)/f($f).txt", content: $"($d) ($f)\n($payload)", mode: "0644"} } } | flatten
  let links = 0..99 | each {|d| {type: link, path: $"($base)/l($d)", target: $"d($d)/f0.txt"} }
  {resources: ([{type: dir, path: $base, mode: "0755"}] | append $dirs | append $files | append $links)}
}

def median []: list<duration> -> duration { sort | get (($in | length) // 2) }

def main [--runs: int = 5] {
  let work = $root | path join .scratch/bench
  rm -rf $work
  mkdir $work
  let base = $work | path join w1
  let config = w1 $base
  let q = {|s| $"'($s | str replace --all "'" "'\\''")'" }

  # The floor: what a person would write by hand, one sh per phase.
  let floor_apply = [$"mkdir -m 0755 (do $q $base)"]
    | append ($config.resources | where type == dir | skip 1 | each {|r| $"mkdir -m 0755 (do $q $r.path)" })
    | append ($config.resources | where type == file | each {|r| $"printf '%s' (do $q $r.content) > (do $q $r.path)" })
    | append ($config.resources | where type == link | each {|r| $"ln -s (do $q $r.target) (do $q $r.path)" })
    | str join "\n"
  let all_paths = $config.resources.path | each {|p| do $q $p } | str join ' '
  let file_paths = $config.resources | where type == file | get path | each {|p| do $q $p } | str join ' '
  # The facts hk reads for W1: kind, mode, uid, gid, size, link target, content hash.
  let floor_probe = $"stat --printf '%n %F %a %u %g %s %N\\0' -- ($all_paths) 2>/dev/null\nsha256sum -- ($file_paths) 2>/dev/null\n"
  $floor_apply | save -f ($work | path join floor-apply.sh)
  $floor_probe | save -f ($work | path join floor-probe.sh)
  let config_file = $work | path join w1.json
  $config | to json | save -f $config_file

  mut rows = []
  for i in 1..$runs {
    rm -rf $base
    let plan_empty = timeit { $config | hk plan local | ignore }
    let apply = timeit { $config | hk plan local | hk apply --confirm | ignore }
    # Right after the apply: it hashed the files it wrote at its end, so this plan reads again only
    # those written in its last 10 ms.
    let plan_noop_file = timeit { hk plan local $config_file | ignore }
    let plan_noop = timeit { $config | hk plan local | ignore }
    # A moment later (and once read again), every content hash is remembered: the usual no-op.
    sleep 50ms
    $config | hk plan local | ignore
    let plan_noop_file_remembered = timeit { hk plan local $config_file | ignore }
    let plan_noop_remembered = timeit { $config | hk plan local | ignore }
    rm -rf $base
    let floor_apply_t = timeit { ^sh ($work | path join floor-apply.sh) }
    # The facts come back to the caller, as hk's do.
    let floor_probe_t = timeit { ^sh ($work | path join floor-probe.sh) | ignore }
    $rows = $rows | append {plan_empty: $plan_empty, apply: $apply, plan_noop: $plan_noop, plan_noop_file: $plan_noop_file, plan_noop_remembered: $plan_noop_remembered, plan_noop_file_remembered: $plan_noop_file_remembered, floor_apply: $floor_apply_t, floor_probe: $floor_probe_t}
  }
  let all = $rows
  let m = $all | columns | each {|c| {$c: ($all | get $c | median)} } | into record
  print $"W1 local \(($config.resources | length) resources, median of ($runs) runs\)"
  print ([
    [what, time];
    ["hk plan (empty target)", $m.plan_empty]
    ["hk plan + apply (empty target)", $m.apply]
    ["hk plan (no-op) right after, .json file", $m.plan_noop_file]
    ["hk plan (no-op) right after, config piped", $m.plan_noop]
    ["hk plan (no-op) a moment later, .json file", $m.plan_noop_file_remembered]
    ["hk plan (no-op) a moment later, config piped", $m.plan_noop_remembered]
    ["floor: one sh reading the same facts", $m.floor_probe]
    ["floor: one sh creating the same tree", $m.floor_apply]
  ] | update time {|r| $r.time | format duration ms })
  let ratio = {|t| ($t / $m.floor_probe) | math round --precision 2 }
  print $"no-op plan / floor \(target ≤ 1.5\): (do $ratio $m.plan_noop_file) right after the apply, (do $ratio $m.plan_noop_file_remembered) a moment later \(config from a file\); piped config: (do $ratio $m.plan_noop), (do $ratio $m.plan_noop_remembered)"
  print $"apply / floor = (($m.apply / $m.floor_apply) | math round --precision 2)"
}
