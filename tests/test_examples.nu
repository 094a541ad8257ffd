# The examples in hk's command help: those of the plugin's commands that state a result give it.
use std/assert
use lib/helpers.nu *

export def "test examples: every plugin example with a stated result gives it" [] {
  let commands = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c "scope commands | where name =~ '^hk ' and type == plugin | select name examples | to nuon" | from nuon
  assert (($commands | length) >= 15) $"only ($commands | length) plugin commands"
  let checked = $commands | each {|c|
    $c.examples | where result != null | each {|e|
      let run = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"($e.example) | to nuon" | complete
      assert equal $run.exit_code 0 $"`($e.example)` failed: ($run.stderr | ansi strip)"
      assert equal ($run.stdout | str trim | from nuon) $e.result $"`($e.example)`"
      $e.example
    }
  } | flatten
  assert (($checked | length) >= 5) $"only ($checked | length) examples state a result"
}
