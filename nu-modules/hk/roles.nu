# Roles: which hosts run what. `servers: [a b]` is the role `web`; `servers: {web: [a], worker:
# {hosts: [b], cmd: "bin/jobs", env: {…}, health_check: {…}}}` names more. The roles in
# `proxy.roles` (default [web]) run blue-green behind Caddy; the others start their new release
# beside the old once every proxied host switched, and stop the old once the new is up. Also: the
# primary host, boot batches, and the -r/--hosts filters every command takes.

use errors.nu [fail]

const ROLE_FIELDS = [hosts cmd env health_check]

# `a*,b` as a regex matching a whole name.
def pattern [glob: string]: nothing -> string {
  let parts = $glob | split row "," | str trim | where $it != "" | each {|g| $g | str replace -ra '([.+?^${}()|\[\]\\])' '\$1' | str replace -a '*' '.*' }
  $"^\(($parts | str join '|')\)$"
}

# Read `servers` of a merged config `c` into `{roles: {role: [hosts]}, specs: {role: {cmd, env,
# health_check, proxied}}, web: [hosts behind Caddy], primary}`; every host must be declared.
export def read-roles [c: record, hosts: record, path: string, span: record]: nothing -> record {
  let servers = $c.servers? | default []
  let given = if ($servers | describe) =~ '^(list|table)' { {web: $servers} } else { $servers }
  let proxied = $c.proxy.roles? | default [web]
  let read = $given | transpose role spec | each {|r|
    let at = $"servers.($r.role)"
    if ($r.role !~ '^[a-z][a-z0-9-]*$') { fail $"($path): ($at): a role name is lowercase letters, digits and -" $span }
    let spec = if ($r.spec | describe) =~ '^(list|table)' { {hosts: $r.spec} } else if ($r.spec | describe) =~ '^record' { $r.spec } else {
      fail $"($path): ($at): expected a list of hosts or a record {hosts, cmd, env, health_check}, got ($r.spec | describe)" $span
    }
    for key in ($spec | columns) {
      if $key not-in $ROLE_FIELDS {
        let nearest = $ROLE_FIELDS | sort-by {|k| $key | str distance $k } | first
        fail $"($path): ($at).($key): unknown field" $span $"did you mean `($nearest)`? \(a role has ($ROLE_FIELDS | str join ', ')\)"
      }
    }
    let role_hosts = $spec.hosts? | default []
    if ($role_hosts | describe) !~ '^list' or ($role_hosts | is-empty) {
      fail $"($path): ($at).hosts: name the role's hosts" $span $"e.g. servers: {($r.role): [web1]}"
    }
    for h in ($role_hosts | enumerate) {
      if ($h.item | describe) != string or ($h.item not-in ($hosts | columns)) {
        let where_at = if ($r.spec | describe) =~ '^list' and ($servers | describe) =~ '^list' { $"servers.($h.index)" } else { $"($at).hosts.($h.index)" }
        fail $"($path): ($where_at): ($h.item | to nuon) is not a declared host" $span $"declare it under hosts \(declared: ($hosts | columns | str join ', ')\)"
      }
    }
    for field in [[cmd string] [env record] [health_check record]] {
      let v = $spec | get -o $field.0
      if $v != null and ($v | describe | str replace -r '<.*' '') != $field.1 {
        fail $"($path): ($at).($field.0): expected ($field.1), got ($v | describe)" $span
      }
    }
    let is_proxied = $r.role in $proxied
    let role_env = $spec.env? | default {}
    let check = if $is_proxied { $c.health_check | merge ($spec.health_check? | default {}) } else if $spec.health_check? != null {
      {path: /up, delay: 0sec, interval: 1sec, timeout: 30sec} | merge $spec.health_check
    } else { null }
    {
      role: $r.role
      hosts: $role_hosts
      spec: {
        cmd: ($spec.cmd? | default $c.release.cmd)
        env: {clear: ($c.env.clear | merge ($role_env.clear? | default {})), secret: ($c.env.secret | append ($role_env.secret? | default []) | uniq)}
        health_check: $check
        proxied: $is_proxied
      }
    }
  }
  for r in $proxied {
    if $r not-in ($read.role) {
      fail $"($path): proxy.roles: ($r | to nuon) is not a role of servers \(roles: ($read.role | str join ', ')\)" $span "list the roles Caddy sends traffic to, e.g. proxy: {roles: [web]}"
    }
  }
  let web = $read | where spec.proxied | get hosts | flatten
  if ($web | uniq | length) != ($web | length) {
    fail $"($path): servers: a host is in two roles behind Caddy \(($proxied | str join ', ')\)" $span "each host serves one proxied role"
  }
  let all = $read | get hosts | flatten | uniq
  if ($all | is-empty) {
    fail $"($path): servers: no server to deploy to" $span "name the hosts, e.g. servers: [web1] with hosts: {web1: {address: ...}}"
  }
  let primary_role = $c.primary_role? | default (if "web" in $read.role { "web" } else { $read.role | first })
  let role_row = $read | where role == $primary_role | get -o 0
  if $role_row == null {
    fail $"($path): primary_role: ($primary_role | to nuon) is not a role \(roles: ($read.role | str join ', ')\)" $span
  }
  let primary = $c.primary_host? | default ($role_row.hosts | first)
  if $primary not-in $all {
    fail $"($path): primary_host: ($primary | to nuon) is not one of the servers \(($all | str join ', ')\)" $span
  }
  {
    roles: ($read | reduce --fold {} {|r, acc| $acc | upsert $r.role $r.hosts })
    specs: ($read | reduce --fold {} {|r, acc| $acc | upsert $r.role $r.spec })
    web: ($web | uniq)
    primary: $primary
  }
}

# The context of one role: its command, environment and health check in place of the app's, and
# `role` set (units, env files and templates are named by it).
export def role-ctx [ctx: record, role: string]: nothing -> record {
  let spec = $ctx.role_specs | get $role
  $ctx | merge {role: $role, release: ($ctx.release | upsert cmd $spec.cmd), env: $spec.env, health_check: $spec.health_check}
}

# Is `role` of the context behind Caddy?
export def proxied [ctx: record, role: string]: nothing -> bool {
  $ctx.role_specs | get $role | get proxied
}

# The roles `host` runs, in the config's order.
export def roles-of [ctx: record, host: string]: nothing -> list<string> {
  $ctx.roles | transpose role hosts | where {|r| $host in $r.hosts } | get role
}

# `hosts` grouped by the roles they run: [{roles, hosts}], so hosts alike share one plan.
export def groups [ctx: record, hosts: list<string>]: nothing -> table<roles: list<string>, hosts: list<string>> {
  $hosts | each {|h| {host: $h, roles: (roles-of $ctx $h)} }
  | group-by --to-table {|r| $r.roles | str join "," }
  | each {|g| {roles: $g.items.0.roles, hosts: ($g.items | get host)} }
}

# The hosts behind Caddy in boot batches: `boot.limit` hosts at a time (a percentage rounds down, at
# least 1); without `boot`, one batch of them all.
export def batches [ctx: record]: nothing -> list<list<string>> {
  let hosts = $ctx.web
  let limit = $ctx.boot?.limit?
  if $limit == null or ($hosts | is-empty) { return [$hosts] }
  let size = if ($limit | describe) == int { $limit } else {
    ($hosts | length) * ($limit | str replace "%" "" | into int) // 100
  } | [$in 1] | math max
  $hosts | chunks $size
}

# Check `boot` of a config read from `file`.
export def check-boot [boot: oneof<record, nothing>, file: string, span: record]: nothing -> nothing {
  if $boot == null { return }
  let limit = $boot.limit?
  let ok = ($limit == null) or (($limit | describe) == int and $limit >= 1) or (($limit | describe) == string and $limit =~ '^([1-9][0-9]?|100)%$')
  if not $ok {
    fail $"($file): boot.limit: ($limit | to nuon) is neither a number of hosts \(1 or more\) nor a percentage \(\"25%\"\)" $span
  }
}

# The context restricted to `roles` and `hosts` (comma lists with * wildcards; null: all), as
# -r/--roles and --hosts ask. The lock stays on the primary host.
export def restrict [roles: oneof<string, nothing>, hosts: oneof<string, nothing>]: record -> record {
  let ctx = $in
  if $roles == null and $hosts == null { return $ctx }
  let role_re = if $roles == null { '.*' } else { pattern $roles }
  let host_re = if $hosts == null { '.*' } else { pattern $hosts }
  let kept = $ctx.roles | transpose role hosts | where {|r| $r.role =~ $role_re } | each {|r| {role: $r.role, hosts: ($r.hosts | where {|h| $h =~ $host_re })} } | where {|r| $r.hosts | is-not-empty }
  if ($kept | is-empty) {
    fail $"no host of ($ctx.app) matches --roles ($roles | default '*') --hosts ($hosts | default '*')" $ctx.span $"roles: ($ctx.roles | columns | str join ', '); hosts: ($ctx.servers | str join ', ')"
  }
  let roles_left = $kept | reduce --fold {} {|r, acc| $acc | upsert $r.role $r.hosts }
  let servers = $kept | get hosts | flatten | uniq
  $ctx | merge {roles: $roles_left, servers: $servers, web: ($ctx.web | where $it in $servers)}
}
