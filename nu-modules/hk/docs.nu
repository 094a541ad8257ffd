# `hk docs`: the reference of the deploy config and of hooks, secrets, storage and the layout on the
# hosts, at the prompt. One text file per topic in docs/.

use config.nu [fail]

const DIR = path self | path dirname | path join docs

# The topics, each with its first line.
def topics []: nothing -> table<topic: string, about: string> {
  glob ($DIR | path join *.md) | sort | each {|f|
    let first = open --raw $f | lines | first | str replace -r '^# [a-z-]+ — ' ''
    {topic: ($f | path parse | get stem), about: $first}
  }
}

# The reference of hk's deploys: the config, roles, boot batches, hooks, secrets, storage, the layout on the hosts, Elixir releases.
#
# Alone, the list of topics; with one, its text.
@example "The topics" { hk docs | get topic }
@example "Every hook, in the order a deploy runs them" { hk docs hooks }
export def main [
  topic?: string   # config, roles, boot, hooks, secrets, storage, layout or elixir
]: nothing -> any {
  if $topic == null { return (topics) }
  let file = $DIR | path join $"($topic).md"
  if not ($file | path exists) {
    fail $"no docs topic ($topic)" (metadata $topic).span $"topics: ((topics).topic | str join ', ')"
  }
  open --raw $file
}
