# The lists of commands `hk`, `hk app`, `hk server` … show when called alone.

# The commands whose names match `pattern` (a regex), each with the first line of its description.
export def commands-matching [pattern: string]: nothing -> table<command: string, description: string> {
  scope commands
  | where name =~ $pattern
  | each {|c| {command: $c.name, description: ($c.description | lines | get -o 0 | default "")} }
  | sort-by command
}
