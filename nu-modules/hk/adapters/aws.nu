# AWS Secrets Manager (`aws`; --account is the profile): one `batch-get-secret-value` for every key.
# A secret holding a JSON object gives one key per field (`name/field`).

use run.nu [run-json]
use ../config.nu [fail]

export def fetch [keys: list<string>, account: oneof<string, nothing>, span: record]: nothing -> record {
  let profile = if $account == null { [] } else { [--profile $account] }
  let got = run-json aws ([secretsmanager batch-get-secret-value --secret-id-list ...$keys --output json] ++ $profile) $span
  let errors = $got.Errors? | default []
  if ($errors | is-not-empty) {
    fail $"AWS Secrets Manager: ($errors | each {|e| $'($e.SecretId): ($e.Message)' } | str join '; ')" $span
  }
  $got.SecretValues | each {|s|
    let parsed = try { $s.SecretString | from json } catch { null }
    if ($parsed | describe) =~ '^record' {
      $parsed | transpose field value | each {|f| {key: $"($s.Name)/($f.field)", value: ($f.value | into string)} }
    } else {
      [{key: $s.Name, value: $s.SecretString}]
    }
  } | flatten | reduce --fold {} {|r, acc| $acc | upsert $r.key $r.value }
}
