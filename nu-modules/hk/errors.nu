# How the workflows say what went wrong: errors pointing at a value, with a next step.

# Raise a config or workflow error pointing at `span`, with a next step.
export def fail [msg: string, span: record, help: string = ""]: nothing -> any {
  if $help == "" {
    error make {msg: $msg, label: {text: "here", span: $span}}
  } else {
    error make {msg: $msg, label: {text: "here", span: $span}, help: $help}
  }
}

# `1 file`, `2 files`: a count and its noun.
export def count [n: int, noun: string]: nothing -> string {
  if $n == 1 { $"1 ($noun)" } else { $"($n) ($noun)s" }
}

# What went wrong, in the words of a caught error: its message and, when they say more, its labels.
export def why [caught: record]: nothing -> string {
  words ($caught.details? | default {msg: $caught.msg})
}

# The words of an error's details; an error that only wraps another (a closure that failed on its
# input, as `par-each` reports it) says what the one inside says.
def words [details: record]: nothing -> string {
  let inner = $details.inner? | default []
  if ($details.msg =~ '^Eval block failed') and ($inner | is-not-empty) { return (words ($inner | first)) }
  let labels = $details.labels? | default [] | get -o text | default [] | where {|t| $t != "" and $t != "here" }
  let detail = $labels | where {|t| not ($details.msg | str contains $t) } | str join "; "
  if $detail == "" { $details.msg } else { $"($details.msg): ($detail)" }
}

# How a closure ended, kept to be raised later: `{value}`, or `{error}` (the caught error).
export def outcome [work: closure]: nothing -> record {
  try { {value: (do $work)} } catch {|e| {error: $e} }
}

# What `outcome` kept: the value, or its error raised again as it was.
export def unwrap [kept: record]: nothing -> any {
  if ($kept.error? != null) { $kept.error.raw } else { $kept.value }
}
