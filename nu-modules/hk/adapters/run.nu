# What the vault adapters share: running a tool for its JSON, and keys under a prefix.

use ../config.nu [fail]

# The keys with `from` in front (`from/key`), or as they are.
export def prefixed [keys: list<string>, from: oneof<string, nothing>]: nothing -> list<string> {
  if $from == null or $from == "" { $keys } else { $keys | each {|k| $"($from | str trim -r -c '/')/($k)" } }
}

# Run `tool` with `args`; its stdout parsed as JSON. A failure names the tool and what it said.
export def run-json [tool: string, args: list<string>, span: record]: nothing -> any {
  let run = ^$tool ...$args | complete
  if $run.exit_code != 0 {
    fail $"($tool) failed \(exit ($run.exit_code)\): ($run.stderr | str trim)" $span $"run `($tool) ($args | first)` by hand; you may need to log in first"
  }
  try { $run.stdout | from json } catch {
    fail $"($tool) did not print JSON" $span "check the tool's version"
  }
}
