# 1Password (`op`): keys `vault/item/field`, fetched one `op item get` per item with every field
# asked for at once.

use run.nu [run-json]
use ../config.nu [fail]

export def fetch [keys: list<string>, account: oneof<string, nothing>, span: record]: nothing -> record {
  let refs = $keys | each {|k|
    let parts = $k | split row "/"
    if ($parts | length) < 3 { fail $"1Password keys are vault/item/field, not ($k)" $span "e.g. --from Vault/item DB_PASSWORD" }
    {vault: $parts.0, item: $parts.1, field: ($parts | skip 2 | str join "."), key: $k}
  }
  $refs | group-by --to-table {|r| $"($r.vault)/($r.item)" } | each {|g|
    let first = $g.items | first
    let account_args = if $account == null { [] } else { [--account $account] }
    let fields = $g.items | each {|r| $"label=($r.field)" } | str join ","
    let got = run-json op ([item get $first.item --vault $first.vault --fields $fields --format json] ++ $account_args) $span
    let got = if ($got | describe) =~ '^record' { [$got] } else { $got }
    $g.items | each {|r|
      let field = $got | where {|f| $f.label? == $r.field or $f.id? == $r.field } | get -o 0
      if $field == null { fail $"1Password item ($r.vault)/($r.item) has no field ($r.field)" $span }
      {key: $r.key, value: ($field.value? | default "")}
    }
  } | flatten | reduce --fold {} {|r, acc| $acc | upsert $r.key $r.value }
}
