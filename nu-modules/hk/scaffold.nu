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

# The config file's text: a header, then the record.
export def config-text [header: list<string>, config: record]: nothing -> string {
  $header | each {|l| $"# ($l)" } | append ($config | to nuon --indent 2) | append "" | str join "\n"
}
