# The journal of units on many hosts as rows {time, host, role, unit, message}: the newest lines
# (one `journalctl` per host, all at once), or every new line as it arrives from all of them
# (`--follow`: one stream that `where` filters while it runs; Ctrl-C ends it on every host).

use errors.nu [fail]

# `journalctl` reading `units` (glob patterns) as JSON.
def journal-args [units: list<string>, lines: int, since: oneof<string, nothing>, grep: oneof<string, nothing>, follow: bool]: nothing -> list<string> {
  [journalctl --no-pager -o json -n ($lines | into string)]
  | append ($units | each {|u| [-u $u] } | flatten)
  | append (if $since == null { [] } else { [--since $since] })
  | append (if $grep == null { [] } else { [--grep $grep] })
  | append (if $follow { [--follow] } else { [] })
}

# One journal entry (a JSON line) of `host` as a row; `role_of` names the role of a unit.
def entry-row [host: string, line: string, role_of: closure]: nothing -> record {
  let e = $line | from json
  # systemd's own lines about a unit (started, stopped, failed) name it in UNIT.
  let unit_name = $e.UNIT? | default ($e._SYSTEMD_UNIT? | default "")
  # A message that is not UTF-8 comes as a list of bytes.
  let message = if ($e.MESSAGE? | describe) =~ '^list' {
    $e.MESSAGE | each {|b| $b | into binary | bytes at 0..0 } | bytes collect | decode utf-8
  } else { $e.MESSAGE? | default "" | into string }
  {
    time: ($e.__REALTIME_TIMESTAMP | into int | $in * 1000 | into datetime)
    host: $host
    role: (do $role_of $unit_name)
    unit: $unit_name
    message: $message
  }
}

# The journal of `units` on `hosts` (of the hk config `config`): the last `lines` per host, oldest
# first, or with `--follow` those and then every new one as a stream.
export def read [
  config: record         # {hosts, instances}
  hosts: list<string>
  units: list<string>    # unit names or globs (hk-app@*)
  role_of: closure       # unit name -> role
  lines: int
  since: oneof<string, nothing>
  grep: oneof<string, nothing>
  span: record
  --follow
]: nothing -> any {
  let args = journal-args $units $lines $since $grep $follow
  if $follow {
    return ($config | hk exec $args $hosts --follow | where line starts-with "{" | each {|l| entry-row $l.host $l.line $role_of })
  }
  let out = $config | hk exec $args $hosts
  # journalctl answers 1 when --grep matches nothing.
  let failed = $out | where exit_code != 0 and exit_code != 1
  if ($failed | is-not-empty) {
    fail $"journalctl failed on ($failed | get host | str join ', '): ($failed | first | get stderr | str trim)" $span "check --since and --grep: journalctl refused them"
  }
  $out | each {|h|
    $h.stdout | into string | lines | where $it starts-with "{" | each {|l| entry-row $h.host $l $role_of }
  } | flatten | sort-by time
}
