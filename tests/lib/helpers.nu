# Helpers shared by hk's end-to-end tests.
use std/assert

# A fresh directory for one test under the project's scratch folder.
export def scratch []: nothing -> string {
  mktemp -d --tmpdir-path $env.HK_TEST_SCRATCH hk.XXXXXXXX
}

# Run `code`, which must fail; return the error's own words (headline, labels, help, inner errors),
# never the source lines a rendered error quotes, so an assertion cannot match the test's own text.
export def error-of [code: closure]: nothing -> string {
  let caught = try { do $code | collect | ignore; null } catch {|e| $e }
  if $caught == null { error make {msg: "expected an error, but the code succeeded"} }
  error-words $caught.details
}

def error-words [details: record]: nothing -> string {
  [$details.msg]
  | append ($details.labels? | default [] | get text)
  | append ($details.help? | default "")
  | append ($details.inner? | default [] | each {|inner| error-words $inner })
  | where {|line| $line | is-not-empty }
  | str join "\n"
}

# Assert that `text` contains `part`, showing both when it does not.
export def has [text: string, part: string] {
  assert ($text | str contains $part) $"expected to find ($part | to nuon) in:\n($text)"
}

# Paths under `dir` with type, mode and (for files) content hash or (for links) target.
export def snapshot [dir: string]: nothing -> table {
  glob --no-symlink ($dir | path join '**/*')
  | each {|p|
    let kind = ($p | path type)
    let info = (ls -lD $p | first)
    {
      path: ($p | path relative-to $dir)
      kind: $kind
      mode: $info.mode
      hash: (if $kind == file { open --raw $p | hash sha256 } else if $kind == symlink { $p | path expand --no-symlink | ^readlink $in } else { "" })
    }
  }
  | sort-by path
}
