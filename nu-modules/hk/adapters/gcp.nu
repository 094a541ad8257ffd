# Google Cloud Secret Manager (`gcloud`; --account is the gcloud account): keys `project/secret` or
# `project/secret/version` (default latest).

use run.nu [run-json]
use ../config.nu [fail]

export def fetch [keys: list<string>, account: oneof<string, nothing>, span: record]: nothing -> record {
  let account_args = if $account == null { [] } else { [$"--account=($account)"] }
  $keys | each {|k|
    let parts = $k | split row "/"
    if ($parts | length) < 2 { fail $"Google Cloud keys are project/secret, not ($k)" $span "e.g. --from my-project db_password" }
    let version = $parts | get -o 2 | default latest
    let got = run-json gcloud ([secrets versions access $version $"--secret=($parts.1)" $"--project=($parts.0)" --format=json] ++ $account_args) $span
    {key: $"($parts.0)/($parts.1)", value: ($got.payload.data | decode base64 | decode)}
  } | reduce --fold {} {|r, acc| $acc | upsert $r.key $r.value }
}
