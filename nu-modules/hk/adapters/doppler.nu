# Doppler (`doppler`): --from is `project/config` (else the folder's doppler setup); one
# `doppler secrets get` for every key; the record is keyed by name.

use run.nu [run-json]

export def fetch [keys: list<string>, account: oneof<string, nothing>, from: oneof<string, nothing>, span: record]: nothing -> record {
  let scope = if $from == null { [] } else {
    let parts = $from | split row "/"
    [-p $parts.0] ++ (if ($parts | length) > 1 { [-c $parts.1] } else { [] })
  }
  let got = run-json doppler ([secrets get ...$keys --json] ++ $scope) $span
  $got | transpose key value | reduce --fold {} {|r, acc| $acc | upsert $r.key ($r.value.computed? | default $r.value) }
}
