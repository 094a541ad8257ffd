# Passbolt (`passbolt`, configured beforehand): keys are resource names (a `folder/` prefix is the
# key's folder); one listing of names and passwords, filtered here.

use run.nu [run-json]
use ../config.nu [fail]

export def fetch [keys: list<string>, account: oneof<string, nothing>, span: record]: nothing -> record {
  let listed = run-json passbolt [list resources --column name --column password --json] $span
  $keys | each {|k|
    let name = $k | split row "/" | last
    let found = $listed | where name == $name | get -o 0
    if $found == null { fail $"Passbolt has no resource named ($name)" $span }
    {key: $k, value: $found.password}
  } | reduce --fold {} {|r, acc| $acc | upsert $r.key $r.value }
}
