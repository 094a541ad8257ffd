# What `hk init` and the importers share: writing a project's files without clobbering them.

# Write `text` to `path` unless a file is there (then say so and keep it); the path written, or null.
export def put [path: string, text: string, --force, --mode: string = "644"]: nothing -> any {
  if ($path | path exists) and not $force {
    print -e $"hk init: keeping ($path) \(it exists; --force replaces it\)"
    return null
  }
  mkdir ($path | path dirname)
  $text | save -f $path
  ^chmod $mode $path
  $path
}

# The lines `.gitignore` needs so secrets files are never committed; the file written, or null.
export def ignore-secrets [dir: string]: nothing -> any {
  let file = $dir | path join .gitignore
  let have = if ($file | path exists) { open --raw $file | lines } else { [] }
  if ".hk/secrets*" in $have { return null }
  let text = if ($have | is-empty) { "" } else { (open --raw $file | str trim -r -c "\n") + "\n" }
  $text + "# hk: secrets files stay on this machine\n.hk/secrets*\n" | save -f $file
  $file
}

# The project module: aliases of the commands a project runs, for `use deploy.nu *`.
export def project-module [aliases: list<record>]: nothing -> string {
  [
    "# This project's deploy commands: `use deploy.nu *` (with hk's modules on the library path, as"
    "# bin/hk-nu puts them), then `ship`, `rollback-app` … Add your own, e.g."
    "#   export alias ship-production = hk deploy -d production"
    "use hk"
    ""
  ]
  | append ($aliases | each {|a|
    let note = if ($a.note? | default "") == "" { [] } else { [$"# ($a.note)"] }
    $note | append $"export alias ($a.name) = ($a.command)"
  } | flatten)
  | append ""
  | str join "\n"
}

# The config file's text: a header, then the record (durations in whole seconds or ms written so).
export def config-text [header: list<string>, config: record]: nothing -> string {
  let body = $config | to nuon --indent 2 | str replace -ar '\b(\d+)000000000ns\b' '${1}sec' | str replace -ar '\b(\d+)000000ns\b' '${1}ms'
  $header | each {|l| $"# ($l)" } | append $body | append "" | str join "\n"
}

# Seconds as Kamal and Xamal write them (a number, or text such as "5s") as a duration.
export def seconds [value: any]: nothing -> duration {
  if ($value | describe) == int { $value * 1sec } else { $value | into string | str replace -r '^(\d+)$' '${1}sec' | str replace -r '(\d+)s$' '${1}sec' | into duration }
}

# Copy a hook of a `tool` project (kamal, xamal) to .hk/hooks: its `<TOOL>_*` variables renamed
# HK_*, a comment saying so, its mode kept.
export def copy-hook [from: string, to_dir: string, tool: string, --force]: nothing -> any {
  let text = open --raw $from | decode utf-8
  let lines = $text | lines
  let prefix = $"($tool | str uppercase)_"
  let note = $"# Translated from ($from | path basename) by hk init --from ($tool): ($prefix)* variables renamed HK_* \(see `hk docs hooks`\)."
  let renamed = $lines | each {|l| $l | str replace -a $prefix "HK_" }
  let body = if ($lines | get -o 0 | default "" | str starts-with "#!") {
    [($renamed | first) $note] | append ($renamed | skip 1)
  } else { [$note] | append $renamed }
  let mode = if (ls -l $from | get 0.mode | str substring 2..2) == "x" { "755" } else { "644" }
  put ($to_dir | path join ($from | path basename)) ($body | str join "\n" | $in + "\n") --force=$force --mode $mode
}

# Copy a `tool` project's secrets files (`secrets`, `secrets-common`, `secrets.<dest>` beside
# `secrets_path`) to .hk/, mode 600: `{written, notes}`.
export def copy-secrets [dir: string, secrets_path: string, tool: string, --force]: nothing -> record {
  let from = $dir | path join ($secrets_path | path dirname)
  let files = glob ($from | path join "secrets*") | sort
  {
    written: ($files | each {|f| put ($dir | path join .hk ($f | path basename)) (open --raw $f | decode utf-8) --force=$force --mode "600" })
    notes: ($files | where {|f| open --raw $f | decode utf-8 | str contains $"($tool) secrets" } | each {|f|
      $"($f | path basename): calls `($tool) secrets`: use the vault's own CLI in $\(…\), or hk secrets fetch"
    })
  }
}
