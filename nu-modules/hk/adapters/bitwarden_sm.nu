# Bitwarden Secrets Manager (`bws`, `BWS_ACCESS_TOKEN` in the environment): keys are secret ids; the
# record is keyed by each secret's own key.

use run.nu [run-json]

export def fetch [keys: list<string>, account: oneof<string, nothing>, span: record]: nothing -> record {
  $keys | each {|id| run-json bws [secret get ($id | split row "/" | last) --output json] $span }
  | reduce --fold {} {|s, acc| $acc | upsert $s.key $s.value }
}
