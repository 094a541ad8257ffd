# Part 3: tracked runs, backups, hk runs, hk down — locally and over SSH.
use std/assert
use lib/helpers.nu *
use lib/sshd.nu

def site [root: string] {
  [
    {type: dir, path: ($root | path join new)}
    {type: file, path: ($root | path join new/n.txt), content: "created\n"}
    {type: file, path: ($root | path join a.txt), content: "new content\n", mode: "0644"}
    {type: file, path: ($root | path join bin.dat), content: 0x[00 ff 00 01]}
    {type: link, path: ($root | path join current), target: new/n.txt}
    {type: dir, path: ($root | path join keep), mode: "0700"}
    {type: file, path: ($root | path join gone.txt), state: absent}
  ]
}

# Existing state the run changes: content, modes, a link target, a file it deletes.
def before [root: string] {
  mkdir $root
  "old content\n" | save ($root | path join a.txt)
  ^chmod 0600 ($root | path join a.txt)
  0x[01 02 03] | save ($root | path join bin.dat)
  ^ln -s a.txt ($root | path join current)
  mkdir ($root | path join keep)
  ^chmod 0755 ($root | path join keep)
  "to be deleted\n" | save ($root | path join gone.txt)
}

export def "test runs: apply --track, drift, hk down --last restores byte for byte" [] {
  let dir = scratch
  let root = $dir | path join site
  let rr = $dir | path join runs
  let br = $dir | path join backups
  before $root
  let snap = snapshot $root
  let config = {resources: (site $root)}
  $config | hk plan local | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
  # Out of band, someone edits a file the run created.
  "edited\n" | save -f ($root | path join new/n.txt)
  let runs = hk runs --local --runs-root $rr --backups-root $br
  assert equal ($runs | length) 1
  assert equal ($runs | columns) [id status made_by n_changes host direction started_at duration changes project]
  assert equal $runs.0.made_by plan
  assert equal ($runs.0.changes | columns) [id action status]
  # A row of `hk runs` (or its id) piped in shows that run whole.
  assert equal ($runs.0 | hk runs --local --runs-root $rr --backups-root $br | get id) $runs.0.id
  assert equal ($runs.0.id | hk runs --local --runs-root $rr --backups-root $br | get id) $runs.0.id
  assert equal $runs.0.status ok
  assert equal $runs.0.direction up
  assert equal ($runs.0.started_at | describe) datetime
  assert ($runs.0.id =~ '^\d{8}T\d{6}Z-local-up-[0-9a-f]{8}$')
  let record = hk runs --local --id $runs.0.id --runs-root $rr --backups-root $br
  assert equal ($record.changes | where action == update | get name | sort) ([a.txt bin.dat current keep] | each {|p| $root | path join $p } | sort)
  let verbose = hk runs --local --verbose --runs-root $rr --backups-root $br
  assert ($verbose.0.artifacts.plan | path exists)
  assert equal (ls -l $verbose.0.artifacts.plan | get 0.mode) "rw-------"
  let down = hk down --local --last --runs-root $rr --backups-root $br
  assert equal ($down | where reversible == false | length) 0
  # The way back says it discards the edit made since the run, and only there.
  let noted = $down | where note != ""
  assert equal ($noted.name | each { path relative-to $root }) [new/n.txt]
  has $noted.0.note "changed since the run"
  $down | hk apply --confirm | ignore
  assert equal (snapshot $root) $snap
  # The same down plan applied again changes nothing.
  let again = hk down --local --last --runs-root $rr --backups-root $br
  assert equal ($again | where action != noop | length) 0
  # A dry run is never recorded.
  $config | hk plan local | hk apply --dry-run --track --runs-root $rr --backups-root $br | ignore
  assert equal (hk runs --local --runs-root $rr --backups-root $br | length) 1
}

export def "test runs: a failed apply is recorded and its down plan undoes what ran" [] {
  let dir = scratch
  let root = $dir | path join site
  let rr = $dir | path join runs
  let br = $dir | path join backups
  mkdir $root
  "old\n" | save ($root | path join a.txt)
  let config = {resources: [
    {type: file, path: ($root | path join a.txt), content: "new\n"}
    {type: command, name: inside, run: "exit 3"}
    {type: file, path: ($root | path join z-after.txt), content: "never\n"}
  ]}
  let err = error-of { $config | hk plan local | hk apply --confirm --track --runs-root $rr --backups-root $br }
  has $err "command:inside"
  let run = hk runs --local --latest --runs-root $rr --backups-root $br
  assert equal $run.status failed
  let record = hk runs --local --id $run.id --runs-root $rr --backups-root $br
  assert equal ($record.changes | select name status | update name {|r| $r.name | path basename }) [[name status]; [a.txt ok] [inside failed] [z-after.txt skipped]]
  assert equal (hk runs --local --runs-root $rr --backups-root $br | where status != ok | length) 1
  let down = hk down --local --last --runs-root $rr --backups-root $br
  $down | hk apply --confirm | ignore
  assert equal (open --raw ($root | path join a.txt)) "old\n"
  assert not (($root | path join z-after.txt) | path exists)
}

export def "test runs: --only and --except pick rows of the down plan" [] {
  let dir = scratch
  let root = $dir | path join site
  let rr = $dir | path join runs
  let br = $dir | path join backups
  before $root
  {resources: (site $root)} | hk plan local | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
  let a = $"file:($root)/a.txt"
  let only = hk down --local --last --only $a --runs-root $rr --backups-root $br
  assert equal $only.id [$a]
  let except = hk down --local --last --except [$a $"link:($root)/current"] --runs-root $rr --backups-root $br
  assert not ($a in $except.id)
  assert equal ($except | length) 5
  $only | hk apply --confirm | ignore
  assert equal (open --raw ($root | path join a.txt)) "old content\n"
  assert equal (^readlink ($root | path join current)) new/n.txt
  let err = error-of { hk down --local --last --only a.txt --runs-root $rr --backups-root $br }
  has $err "type:name"
  let err = error-of { hk down --local --runs-root $rr --backups-root $br }
  has $err "exactly one of --last, --run ID or --plan FILE"
}

export def "test runs: prune keeps exactly N and touches nothing outside the roots" [] {
  let dir = scratch
  let root = $dir | path join site
  let rr = $dir | path join runs
  let br = $dir | path join backups
  mkdir $root
  "outside\n" | save ($dir | path join runs-neighbour.txt)
  for i in 1..4 {
    {resources: [{type: file, path: ($root | path join f.txt), content: $"v($i)\n"}]} | hk plan local | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
  }
  let all = hk runs --local --runs-root $rr --backups-root $br
  assert equal ($all | length) 4
  let removed = hk runs --local --prune --keep 2 --runs-root $rr --backups-root $br
  assert equal ($removed | length) 2
  let kept = hk runs --local --runs-root $rr --backups-root $br
  assert equal $kept.id ($all.id | first 2)
  for id in $removed.id {
    assert not (($dir | path join runs $"($id).json") | path exists)
    assert not (($dir | path join runs artifacts $id) | path exists)
    assert not (($dir | path join backups $id) | path exists)
  }
  assert equal (ls ($dir | path join runs artifacts) | length) 2
  assert equal (open --raw ($dir | path join runs-neighbour.txt)) "outside\n"
  assert equal (open --raw ($root | path join f.txt)) "v4\n"
  let err = error-of { hk runs --local --prune --runs-root $rr --backups-root $br }
  has $err "--prune and --keep N go together"
}

export def "test runs: a down plan from a bare plan file" [] {
  let dir = scratch
  let root = $dir | path join site
  before $root
  let out = $dir | path join plan.json
  {resources: (site $root)} | hk plan local --out $out | hk apply --confirm | ignore
  let down = hk down --plan $out
  assert equal (hk down $out | get id) $down.id
  # Content changes need a run's backups: shown, not dropped.
  let needs = $down | where reversible == false
  assert equal ($needs.name | sort) ([a.txt bin.dat gone.txt] | each {|p| $root | path join $p } | sort)
  assert ($needs.note | all {|n| $n | str contains "backups" })
  $down | hk apply --confirm | ignore
  assert not (($root | path join new) | path exists)
  assert equal (^readlink ($root | path join current)) a.txt
  assert equal (ls -lD ($root | path join keep) | get 0.mode) "rwxr-xr-x"
}

export def "test runs: tracked apply and down over ssh, default roots in the home of the user" [] {
  let server = sshd start
  # Only this test keeps runs under the test user's home: start from none.
  rm -rf /home/hktest/.local/state/hk
  let root = (sshd remote-scratch | path join site)
  let config = {hosts: {box: (sshd host $server)}, resources: (site $root)}
  before $root
  ^chown -R hktest:hktest $root
  let snap = snapshot $root
  $config | hk plan box | hk apply --confirm --track | ignore
  # Out of band, someone edits what the run wrote.
  "edited remotely\n" | save -f ($root | path join a.txt)
  let runs = $config | hk runs box --verbose
  assert equal ($runs | length) 1
  assert ($runs.0.backups | str starts-with /home/hktest/.local/state/hk/backups/)
  assert ($runs.0.id | str contains "-box-up-")
  $config | hk down box --last | hk apply --confirm | ignore
  assert equal (snapshot $root) $snap
  assert equal (($config | hk down box --last) | where action != noop | length) 0
  sshd stop $server
}

export def "test runs: track by default from the plugin config" [] {
  let dir = scratch
  let script = $"
    $env.config.plugins.hk = {track: true}
    {resources: [{type: file, path: '($dir)/t.txt', content: 'x'}]} | hk plan local | hk apply --confirm --runs-root '($dir)/runs' --backups-root '($dir)/backups' | ignore
    hk runs --local --runs-root '($dir)/runs' | length
  "
  let run = ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $script | complete
  assert equal $run.exit_code 0 $run.stderr
  assert equal ($run.stdout | str trim) "1"
}

export def "test runs: runs belong to their host and project, and down --last goes one further back each time" [] {
  let dir = scratch
  let rr = $dir | path join runs
  let br = $dir | path join backups
  let site = $dir | path join site
  mkdir $site ($dir | path join a) ($dir | path join b)
  let file = {|name| {type: file, path: ($site | path join $name), content: $"($name)\n"} }
  # Project a (its hk.nuon) makes two runs; project b (piped, from its folder) one.
  do {
    cd ($dir | path join a)
    {resources: [(do $file one.txt)]} | save -f hk.nuon
    hk plan local --quiet | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
    {resources: [(do $file one.txt) (do $file two.txt)]} | save -f hk.nuon
    hk plan local --quiet | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
  }
  do {
    cd ($dir | path join b)
    {resources: [(do $file three.txt)]} | hk plan local --quiet | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
  }
  let in_a = do { cd ($dir | path join a); hk runs --local --runs-root $rr --backups-root $br }
  assert equal ($in_a | length) 2
  assert equal ($in_a.project | uniq) [($dir | path join a)]
  assert equal (do { cd ($dir | path join b); hk runs --local --runs-root $rr --backups-root $br } | length) 1
  assert equal (do { cd ($dir | path join b); hk runs --local --all-projects --runs-root $rr --backups-root $br } | length) 3
  # down --last undoes a's newest run; run again, it goes one further back instead of undoing the undo.
  do {
    cd ($dir | path join a)
    hk down --local --last --runs-root $rr --backups-root $br | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
    assert not (($site | path join two.txt) | path exists)
    assert (($site | path join one.txt) | path exists)
    let runs = hk runs --local --runs-root $rr --backups-root $br
    assert equal $runs.0.made_by $"down of ($in_a.0.id)"
    hk down --local --last --runs-root $rr --backups-root $br | hk apply --confirm --track --runs-root $rr --backups-root $br | ignore
    assert not (($site | path join one.txt) | path exists)
    assert equal (hk runs --local --runs-root $rr --backups-root $br | get 0.made_by) $"down of ($in_a.1.id)"
    # Nothing of a is left to undo; b's run is not a's to undo.
    has (error-of { hk down --local --last --runs-root $rr --backups-root $br }) "no run to undo"
  }
  assert (($site | path join three.txt) | path exists)
}

export def "test runs: the runs root and backups root of a host can be set in the config" [] {
  let dir = scratch
  let rr = $dir | path join kept/runs
  let config = {
    hosts: {here: {local: true, runs_root: $rr, backups_root: ($dir | path join kept/backups)}}
    resources: [{type: file, path: ($dir | path join site/a.txt), content: "a\n"}]
  }
  $config | hk plan here --quiet | hk apply --confirm --track | ignore
  assert equal (ls $rr | where name =~ '\.json$' | length) 1
  # hk runs and hk down find them there without flags.
  let runs = $config | hk runs here
  assert equal ($runs | length) 1
  $config | hk down here --last | hk apply --confirm | ignore
  assert not (($dir | path join site/a.txt) | path exists)
  has (error-of { {hosts: {here: {local: true, runs_root: relative}}} | hk plan here }) "hosts.here.runs_root"
}
