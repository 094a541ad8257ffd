# An app's storage: folders that outlive its releases (`storage: {uploads: "uploads"}`), declared
# explicitly and never wired in otherwise. Each is a systemd `StateDirectory` of the app's units, so
# the `DynamicUser` instances may write there and nowhere else; its path reaches the app as
# `HK_STORAGE_<NAME>`. Prune and rollback never touch them.
#
# With `DynamicUser`, systemd keeps a state directory under /var/lib/private and links it from
# /var/lib; the plan makes both exactly as systemd would, so systemd finds them in place (and only
# gives the folder to the unit's user) and the next plan still finds them in sync.

export const STATE = "/var/lib"

# The storage of a loaded config: rows {name, path, relative} (`relative`: below /var/lib).
export def entries [ctx: record]: nothing -> table<name: string, path: string, relative: string> {
  $ctx.storage? | default {} | transpose name path | each {|s|
    let path = if ($s.path | str starts-with "/") { $s.path } else { $"($STATE)/hk/($ctx.app)/($s.path)" }
    {name: $s.name, path: $path, relative: ($path | str replace $"($STATE)/" "")}
  }
}

# The unit's `StateDirectory` line (nothing without storage).
export def state-directories [ctx: record]: nothing -> record {
  let dirs = entries $ctx
  if ($dirs | is-empty) { {} } else { {StateDirectory: ($dirs | get relative | str join " ")} }
}

# `HK_STORAGE_<NAME>=<path>` for every storage folder.
export def storage-env [ctx: record]: nothing -> list<string> {
  entries $ctx | each {|s| $"HK_STORAGE_($s.name | str uppercase)=($s.path)" }
}

# The folders and links of every storage, as systemd makes them for a `DynamicUser` unit.
export def storage-resources [ctx: record]: nothing -> list {
  let dirs = entries $ctx
  if ($dirs | is-empty) { return [] }
  let private = $"($STATE)/private"
  $dirs | each {|s|
    let parts = $s.relative | split row "/"
    let above = $parts | drop 1
    # Every folder above the storage, under /var/lib/private and under /var/lib.
    let chain = {|base| $above | enumerate | each {|p| {type: dir, path: $"($base)/($above | first ($p.index + 1) | str join '/')", mode: "0755"} } }
    let back = $above | each { ".." } | append [private] | append $parts | str join "/"
    [{type: dir, path: $private, mode: "0700"}]
    | append (do $chain $private)
    | append {type: dir, path: $"($private)/($s.relative)", mode: "0755"}
    | append (do $chain $STATE)
    | append {type: link, path: $s.path, target: $back}
  } | flatten | uniq-by type path
}
