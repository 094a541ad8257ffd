# The shared test guests: qemu instances (Debian 12, systemd, sshd, Caddy) brought up once per test
# run by tests/run.nu through `hk instance ensure` before the files that use them run, destroyed
# after: `hk-test` for test_guest*.nu, `hk-deploy` for test_guest_deploy*.nu (deploys own its Caddy),
# `hk-load` for test_guest_load*.nu (no other test may reload the Caddy its clients count through).
# Their files live under $env.HK_INSTANCES_DIR; the image cache is reused across runs.

export const instance = "hk-test"
export const deploy_instance = "hk-deploy"
export const load_instance = "hk-load"

# What every test instance is: the same spec shares one image and one saved snapshot (forwarded
# ports do not change either); port 80 (Caddy) is forwarded to a free port here.
export def spec []: nothing -> record {
  {backend: qemu, lifecycle: ephemeral, memory: 1024, cpus: 2, packages: [caddy curl], ports: [80]}
}

# The config every guest test starts from: the instance and the host `guest` running on it.
export def config [name: string = $instance]: nothing -> record {
  {
    instances: {($name): (spec)}
    hosts: {guest: {instance: $name, ssh: {timeout: 10min}}}
  }
}

# The guest instances the given test files use.
export def for-files [files: list<string>]: nothing -> list<string> {
  $files | each {|f|
    let name = $f | path basename
    if ($name | str starts-with test_guest_deploy) {
      $deploy_instance
    } else if ($name | str starts-with test_guest_load) {
      $load_instance
    } else if ($name | str starts-with test_guest) {
      $instance
    }
  } | compact | uniq
}

# A tiny Debian package built here with dpkg-deb: {path, name, version, size, sha256}.
export def deb [name: string, version: string, dir: string]: nothing -> record {
  let root = $dir | path join $"($name)-($version)"
  mkdir ($root | path join DEBIAN) ($root | path join usr/share/hk-test)
  [
    $"Package: ($name)" $"Version: ($version)" "Architecture: all" "Maintainer: hk tests <hk@localhost>"
    $"Description: hk test package ($name)"
  ] | str join "\n" | $in + "\n" | save -f ($root | path join DEBIAN/control)
  $"($name) ($version)\n" | save -f ($root | path join usr/share/hk-test $name)
  let path = $dir | path join $"($name)_($version)_all.deb"
  ^dpkg-deb --root-owner-group -Zgzip --build $root $path | ignore
  {path: $path, name: $name, version: $version, size: (ls $path | get 0.size | into int), sha256: (open --raw $path | hash sha256)}
}

# An apt repository index (`Packages`) for debs that will sit next to it.
export def packages-index [debs: list]: nothing -> string {
  $debs | each {|d|
    [
      $"Package: ($d.name)" $"Version: ($d.version)" "Architecture: all" "Maintainer: hk tests <hk@localhost>"
      $"Filename: ./($d.path | path basename)" $"Size: ($d.size)" $"SHA256: ($d.sha256)"
      $"Description: hk test package ($d.name)"
    ] | str join "\n"
  } | str join "\n\n" | $in + "\n"
}

export def up [name: string = $instance]: nothing -> record {
  config $name | hk instance ensure $name
}

export def down [name: string = $instance]: nothing -> record {
  config $name | hk instance destroy $name
}

# Run a command line as root in the guest; returns its stdout (fails on a non-zero exit).
export def sh [command: string, --on: string = $instance]: nothing -> string {
  let out = config $on | hk exec $command guest | first
  if $out.exit_code != 0 {
    error make {msg: $"($command) failed in the guest \(exit ($out.exit_code)\): ($out.stderr)"}
  }
  $out.stdout
}

# Run records and backups of one test: tests share the guest and run in parallel, so each keeps its
# own runs (and `hk down --last` means its own last run).
export def roots []: nothing -> record {
  let base = $"/var/lib/hk-tests/(random chars -l 10)"
  {runs: $"($base)/runs", backups: $"($base)/backups"}
}

# Plan `resources` on the guest and apply them, tracked under `roots`.
export def apply [resources: list, roots: record]: nothing -> table {
  config | insert resources $resources | hk plan guest
  | hk apply --confirm --track --runs-root $roots.runs --backups-root $roots.backups
}

export def runs [roots: record, --id: string]: nothing -> any {
  config | hk runs guest --runs-root $roots.runs --backups-root $roots.backups --id=$id
}

# The down plan of the last run (or of run `id`) under `roots`.
export def down-plan [roots: record, --run: string]: nothing -> table {
  let last = $run == null
  config | hk down guest --runs-root $roots.runs --backups-root $roots.backups --last=$last --run=$run
}
