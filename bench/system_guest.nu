# Benchmark: plan 50 packages + 20 users + 10 services on the qemu guest (one probe round trip) against
# the same facts read by one hand-written script over one ssh session. Brings up its own instance
# (the image cache is shared with the tests). Run as root: bin/hk-nu bench/system_guest.nu
const root = path self | path dirname | path dirname
use ../tests/lib/guest.nu

def median []: list<duration> -> duration { sort | get (($in | length) // 2) }

def main [--runs: int = 5] {
  $env.HK_INSTANCES_DIR = $root | path join .scratch/bench-instances
  let up = guest up
  print $"guest up: ($up.ssh)"
  let packages = guest sh "dpkg-query -W -f '${Package}\n' | head -50" | lines
  let users = guest sh "getent passwd | cut -d: -f1 | head -20" | lines
  let services = guest sh "systemctl list-unit-files --type=service --no-legend | awk '{print $1}' | grep -v @ | head -10" | lines
  let resources = ($packages | each {|p| {type: package, name: $p} })
    | append ($users | each {|u| {type: user, name: $u} })
    | append ($services | each {|s| {type: service, name: $s, state: (if (guest sh $"systemctl is-active ($s) || true" | str trim) == active { "running" } else { "stopped" })} })
  let config = guest config | insert resources $resources
  print $"($packages | length) packages, ($users | length) users, ($services | length) services"
  let plan = $config | hk plan guest
  print $"plan: ($plan | length) rows, actions ($plan.action | uniq | str join ', ')"
  let hk = 1..$runs | each { timeit { $config | hk plan guest | ignore } } | median
  # The floor: one ssh session, one hand-written script reading the same facts.
  let ssh = $up.ssh | split row " "
  let script = [
    $"dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' ($packages | str join ' ')"
    "getent passwd" "getent group"
    $"systemctl show --property=Id,LoadState,ActiveState,UnitFileState,FragmentPath ($services | str join ' ')"
  ] | str join "\n"
  let floor = 1..$runs | each { timeit { $script | ^($ssh | first) ...($ssh | skip 1) -o BatchMode=yes sh -s | ignore } } | median
  print $"hk plan, connect + one probe + diff: ($hk)"
  print $"ssh + one hand-written script:      ($floor)"
  print $"ratio: (($hk / $floor) | math round --precision 2)"
  guest down | ignore
}
