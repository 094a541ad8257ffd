# Bitwarden (`bw`, unlocked beforehand: `BW_SESSION` in the environment): keys `item` (its login
# password) or `item/field` (a custom field), one `bw get item` per item.

use run.nu [run-json]
use ../config.nu [fail]

export def fetch [keys: list<string>, account: oneof<string, nothing>, span: record]: nothing -> record {
  let refs = $keys | each {|k|
    let parts = $k | split row "/"
    {item: $parts.0, field: ($parts | skip 1 | str join "/"), key: $k}
  }
  $refs | group-by --to-table item | each {|g|
    let item = run-json bw [get item $g.item] $span
    $g.items | each {|r|
      let value = if $r.field == "" { $item.login?.password? } else {
        $item.fields? | default [] | where name == $r.field | get -o 0.value
      }
      if $value == null { fail $"Bitwarden item ($r.item) has no ($r.field | default password)" $span }
      {key: $r.key, value: $value}
    }
  } | flatten | reduce --fold {} {|r, acc| $acc | upsert $r.key $r.value }
}
