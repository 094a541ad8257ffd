# Benchmark: a 50 MiB release over the loopback sshd — hk upload + verify + unpack + flip — against
# `ssh host 'cat > f'` of the same bytes. Run as root: bin/hk-nu bench/release_ssh.nu
const root = path self | path dirname | path dirname
use ../tests/lib/sshd.nu

def median []: list<duration> -> duration { sort | get (($in | length) // 2) }

def main [--runs: int = 3, --mib: int = 50] {
  let work = $root | path join .scratch/bench-release
  rm -rf $work
  mkdir $work
  $env.HK_TEST_SCRATCH = $work
  let server = sshd start
  let remote = sshd remote-scratch
  let src = $work | path join app
  mkdir $src
  # Incompressible content, so the tarball is as big as the app.
  ^head -c ($mib * 1024 * 1024) /dev/urandom | save ($src | path join blob)
  let built = hk release build $src --name big --version 1.0.0 --out-dir ($work | path join dist)
  let size = $built.size | into int
  let host = sshd host $server
  let ssh_args = [-q -p $server.port -i $server.key -o $"UserKnownHostsFile=($server.known_hosts)" -o BatchMode=yes $"($server.user)@127.0.0.1"]
  mut rows = []
  for i in 1..$runs {
    let target = $remote | path join $"opt($i)"
    let config = {hosts: {box: $host}, resources: [{type: release, name: big, version: 1.0.0, artifact: $built.manifest, root: $target}]}
    # The plan (which checks the tarball on this machine) is made first; the figure is the apply:
    # re-check, upload, verify, unpack, flip.
    let plan = $config | hk plan box
    let hk = timeit { $plan | hk apply --confirm | ignore }
    let floor = timeit { open --raw $built.tarball | ^ssh ...$ssh_args $"cat > ($remote)/floor($i).tar.gz" }
    $rows = $rows | append {hk: $hk, floor: $floor}
  }
  sshd stop $server
  let runs_table = $rows
  let hk = $runs_table.hk | median
  let floor = $runs_table.floor | median
  let mib_s = {|t| ($size / 1048576) / ($t / 1sec) | math round --precision 1 }
  print $"release of ($size / 1048576 | math round --precision 1) MiB over SSH to 127.0.0.1 \(median of ($runs) runs\)"
  print ([
    [what, time, "MiB/s"];
    ["hk apply: upload + verify + unpack + flip", ($hk | format duration ms), (do $mib_s $hk)]
    ["ssh host 'cat > f'", ($floor | format duration ms), (do $mib_s $floor)]
  ])
  print $"hk throughput / floor = (($floor / $hk) * 100 | math round)% \(target ≥ 90%\)"
}
