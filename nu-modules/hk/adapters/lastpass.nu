# LastPass (`lpass`, logged in beforehand): keys are entry names (`folder/name`); one `lpass show`
# for every key; each entry's password.

use run.nu [run-json]

export def fetch [keys: list<string>, account: oneof<string, nothing>, span: record]: nothing -> record {
  run-json lpass ([show ...$keys --json]) $span
  | reduce --fold {} {|e, acc| $acc | upsert ($e.fullname? | default $e.name?) $e.password }
}
