# The deploy config of an app: read `config/deploy.nu` (or `.nuon`), deep-merge a destination's file
# over it, check every field (unknown ones are errors with their path and the nearest known name), and
# resolve what the workflows need: the app id, hosts and roles, the version, the layout on the hosts.

# What a deploy config may hold: each field's type, whether it is required, and a record's fields.
const SCHEMA = {
  service: {type: string, required: true}
  hosts: {type: record, open: true}
  instances: {type: record, open: true}
  servers: {type: [list record]}
  release: {type: record, required: true, fields: {
    path: {type: string}
    cmd: {type: string}
    build: {type: string}
    mix: {type: record, open: true}
    migrate: {type: string}
  }}
  proxy: {type: record, fields: {host: {type: string}, app_port: {type: int}, roles: {type: list}}}
  primary_role: {type: string}
  primary_host: {type: string}
  boot: {type: record, fields: {limit: {type: [int string]}, wait: {type: duration}}}
  env: {type: record, fields: {clear: {type: record, open: true}, secret: {type: list}}}
  storage: {type: record, open: true}
  require_destination: {type: bool}
  health_check: {type: record, fields: {
    path: {type: string}, delay: {type: duration}, interval: {type: duration}, timeout: {type: duration}
  }}
  drain_timeout: {type: duration}
  retain: {type: int}
}

const DEFAULTS = {
  proxy: {host: ":80", app_port: 4000}
  env: {clear: {}, secret: []}
  health_check: {path: /up, delay: 0sec, interval: 1sec, timeout: 30sec}
  drain_timeout: 10sec
  retain: 5
}

export use errors.nu [fail count why]
use roles.nu [read-roles check-boot restrict]
use mix.nu

# Where apps live on their hosts.
export const ROOT = "/opt/hk"

# The record a config file holds: `.nu` files are evaluated by this nu (their last expression is the
# record), `.nuon`, `.json` and `.toml` are read.
def read-file [path: string, span: record]: nothing -> record {
  let ext = $path | path parse | get extension
  let value = match $ext {
    nu => {
      let script = $"let config = \(source r#'($path)'#\)\n$config | to nuon"
      let run = ^$nu.current-exe -n -c $script | complete
      if $run.exit_code != 0 {
        fail $"evaluating ($path) failed: ($run.stderr | str trim)" $span "fix the file; its last expression must be the config record"
      }
      $run.stdout | from nuon
    }
    nuon | json | toml => { open $path }
    _ => { fail $"($path): a deploy config is a .nu, .nuon, .json or .toml file" $span }
  }
  if ($value | describe) !~ '^record' {
    fail $"($path) must give a record, not ($value | describe)" $span
  }
  $value
}

# The type of `value` in the schema's words (`table` counts as a list).
def type-of [value: any]: nothing -> string {
  let t = $value | describe
  if ($t | str starts-with record) { "record" } else if ($t =~ '^(list|table)') { "list" } else { $t }
}

# The mistakes of `value` against `schema`, each `{path, msg, hint}` with the field's path from the
# config's root (`release.cmd`); every one is found, not just the first. A `partial` record (a
# destination's, merged over the base) need not hold the required fields.
def check-record [value: record, schema: record, at: string, --partial]: nothing -> list<record> {
  let here = {|key| if $at == "" { $key } else { $"($at).($key)" } }
  let found = $value | columns | each {|key|
    let path = do $here $key
    let spec = $schema | get -o $key
    if $spec == null {
      let known = $schema | columns
      let nearest = $known | each {|k| {name: $k, distance: ($key | str distance $k)} } | sort-by distance | first
      let hint = if $nearest.distance <= 3 { $"did you mean `($nearest.name)`?" } else { $"known fields: ($known | str join ', ')" }
      return [{path: $path, msg: "unknown field", hint: $hint}]
    }
    let field = $value | get $key
    let wanted = if ($spec.type | describe) == string { [$spec.type] } else { $spec.type }
    let have = type-of $field
    let ok = ($have in $wanted) or ($have == "string" and "duration" in $wanted and (try { $field | into duration; true } catch { false }))
    if not $ok {
      return [{path: $path, msg: $"expected ($wanted | str join ' or '), got ($have)", hint: ""}]
    }
    if $have == "record" and ($spec.fields? != null) {
      check-record $field $spec.fields $path --partial=$partial
    } else { [] }
  } | flatten
  if $partial { return $found }
  let missing = $schema | columns | where {|key| ($schema | get $key | get -o required | default false) and ($key not-in ($value | columns)) }
  $found | append ($missing | each {|key| {path: (do $here $key), msg: "missing (required)", hint: ""} })
}

# `FILE:LINE:COL` of each field path in a config file, from nu's own parser: the file is evaluated
# again with `source` (only when it is wrong) and each value's span looked up among the files nu
# read. A path the file does not hold is located at the deepest record it does.
def locate [file: string, paths: list<string>]: nothing -> record {
  let script = $"let c = \(source r#'($file)'#\)
($paths | to nuon) | each {|p|
  let parts = $p | split row '.' | each {|x| if \($x =~ '^\\d+$'\) { $x | into int } else { $x } }
  let found = \(\($parts | length\) - 1\)..0 | each {|n| $c | get -o \($parts | first \($n + 1\) | into cell-path\) } | compact | get -o 0 | default $c
  let s = \(metadata $found\).span
  let f = view files | where {|f| $s.start >= $f.start and $s.start < $f.end } | get -o 0
  if $f == null { {path: $p, at: null} } else {
    let before = open --raw $f.filename | into binary | bytes at ..<\($s.start - $f.start\) | decode utf-8
    let lines = $before | split row \"\\n\"
    {path: $p, at: $\"\($f.filename\):\($lines | length\):\(\($lines | last | str length\) + 1\)\"}
  }
} | to nuon"
  let run = ^$nu.current-exe -n -c $script | complete
  if $run.exit_code != 0 { return {} }
  $run.stdout | from nuon | where at != null | reduce --fold {} {|r, acc| $acc | upsert $r.path $r.at }
}

# Raise every mistake found in `file` at once, each named by `FILE:LINE:COL` and its field path.
def mistakes [file: string, found: list<record>, span: record]: nothing -> nothing {
  if ($found | is-empty) { return }
  let at = locate $file ($found | get path)
  let lines = $found | each {|m|
    let where_at = $at | get -o $m.path | default $file
    let hint = if $m.hint == "" { "" } else { $" \(($m.hint)\)" }
    $"($where_at): ($m.path): ($m.msg)($hint)"
  }
  if ($found | length) == 1 {
    fail ($lines | first) $span "see `hk docs config` for every field"
  }
  fail $"($found | length) mistakes in ($file):\n  ($lines | str join "\n  ")" $span "see `hk docs config` for every field"
}

# Check the `storage` field of a config read from `file`: names and where each folder may be.
def check-storage [storage: record, file: string, span: record]: nothing -> nothing {
  for s in ($storage | transpose name path) {
    if ($s.name !~ '^[a-z][a-z0-9_]*$') {
      fail $"($file): storage.($s.name): a storage name is lowercase letters, digits and _" $span
    }
    if ($s.path | describe) != string {
      fail $"($file): storage.($s.name): expected a path or a folder name, got ($s.path | describe)" $span
    }
    let absolute = $s.path | str starts-with "/"
    let clean = $s.path | split row "/" | where {|p| $p in [".." "."] } | is-empty
    let private = ($s.path | str starts-with "/var/lib/private/") or ($s.path | str starts-with "private/")
    if not $clean or $private or ($absolute and not ($s.path | str starts-with "/var/lib/")) or ($s.path | str ends-with "/") {
      fail $"($file): storage.($s.name): ($s.path | to nuon) must be a folder under /var/lib/ or a bare name" $span $"the app's units may write only to their state folders; e.g. storage: {($s.name): \"($s.name)\"} is /var/lib/hk/<app>/($s.name)"
    }
  }
}

# The `release` of a config resolved: a Mix release's folder and command, or `path` and `cmd` as given.
def release-of [release: record, project: string, path: string, span: record]: nothing -> record {
  if ($release.mix? | default null) != null { return (mix resolve $release $project $path $span) }
  for key in [path cmd] {
    if ($release | get -o $key) == null {
      fail $"($path): release.($key): missing \(required\)" $span "give release: {path: <folder to deploy>, cmd: <command in it>}, or release: {mix: {name: <release>}} for an Elixir app"
    }
  }
  $release
}

# Durations given as text (a .json config) become durations.
def durations []: record -> record {
  let config = $in
  let fix = {|v| if ($v | describe) == string { $v | into duration } else { $v } }
  let check = $config.health_check
  $config
  | upsert health_check ($check | upsert delay (do $fix $check.delay) | upsert interval (do $fix $check.interval) | upsert timeout (do $fix $check.timeout))
  | upsert drain_timeout (do $fix $config.drain_timeout)
}

# The version to deploy: `explicit`, else the git short sha of `dir`'s repository (`-dirty` when its
# tree has changes), else a UTC timestamp.
export def version-of [dir: string, explicit?: string]: nothing -> string {
  if $explicit != null { return $explicit }
  let sha = do { cd $dir; ^git rev-parse --short HEAD } | complete
  if $sha.exit_code != 0 {
    return (date now | date to-timezone UTC | format date "%Y%m%d%H%M%S")
  }
  let dirty = do { cd $dir; ^git status --porcelain --untracked-files=normal } | complete | get stdout | str trim
  let sha = $sha.stdout | str trim
  if $dirty == "" { $sha } else { $"($sha)-dirty" }
}

# `config/deploy.nu` (then `.nuon`) under the current directory, or `config` as given.
def config-path [config: oneof<string, nothing>, span: record]: nothing -> string {
  if $config != null {
    let path = $config | path expand
    if not ($path | path exists) { fail $"deploy config ($path) not found" $span "give the path with -c, e.g. -c config/deploy.nu" }
    return $path
  }
  let found = [config/deploy.nu config/deploy.nuon] | path expand | where {|p| $p | path exists }
  if ($found | is-empty) {
    fail $"no deploy config: neither config/deploy.nu nor config/deploy.nuon in ($env.PWD)" $span "run from your project's folder, or give one with -c"
  }
  $found | first
}

# The project folder of a config: the folder holding `config/`, or the config's own folder.
def project-of [config_path: string]: nothing -> string {
  let dir = $config_path | path dirname
  if ($dir | path basename) == config { $dir | path dirname } else { $dir }
}

# The destinations whose files sit in a config folder (`deploy.<name>.nu[on]`).
def destinations-in [dir: string]: nothing -> list<string> {
  ls $dir | get name | path basename | parse --regex '^deploy\.(?<name>[a-z0-9-]+)\.nu(?:on)?$' | get name | uniq
}

# Read, merge, check and resolve an app's deploy config. `span` is where errors point.
export def load [
  config: oneof<string, nothing>       # path of the config, or null for config/deploy.nu[on]
  destination: oneof<string, nothing>  # destination name, or null
  version: oneof<string, nothing>      # version, or null for git / a timestamp
  span: record
  --roles: string                      # only these roles (comma list, * wildcards)
  --hosts: string                      # only these hosts (comma list, * wildcards)
]: nothing -> record {
  let path = config-path $config $span
  let base = read-file $path $span
  mistakes $path (check-record $base $SCHEMA "") $span
  if ($base.require_destination? | default false) and $destination == null {
    fail $"($path) requires a destination: give one with -d" $span $"destinations here: ((destinations-in ($path | path dirname)) | str join ', ')"
  }
  let merged = if $destination == null { $base } else {
    if ($destination !~ '^[a-z0-9-]+$') {
      fail $"destination ($destination | to nuon) is not a name: use lowercase letters, digits and '-'" $span
    }
    let dir = $path | path dirname
    let over_path = [nu nuon] | each {|ext| $dir | path join $"deploy.($destination).($ext)" } | where {|p| $p | path exists }
    if ($over_path | is-empty) {
      let known = destinations-in $dir
      let hint = if ($known | is-empty) { $"create ($dir)/deploy.($destination).nu with what differs from deploy.nu" } else { $"destinations here: ($known | str join ', ')" }
      fail $"no config for destination ($destination): neither deploy.($destination).nu nor deploy.($destination).nuon in ($dir)" $span $hint
    }
    let over = read-file ($over_path | first) $span
    mistakes ($over_path | first) (check-record $over $SCHEMA "" --partial) $span
    $base | merge deep --strategy overwrite $over
  }
  let c = $DEFAULTS | merge deep --strategy overwrite $merged | durations
  if ($c.service !~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$') {
    fail $"($path): service: ($c.service | to nuon) is not a service name: use lowercase letters, digits and '-'" $span
  }
  let app = if $destination == null { $c.service } else { $"($c.service)-($destination)" }
  let project = project-of $path
  let c = $c | update release (release-of $c.release $project $path $span)
  let declared = $c.hosts? | default {}
  let read = read-roles $c $declared $path $span
  if (($c.release.mix? | default null) != null) { mix check-cookie $read.specs $path $span }
  check-boot ($c.boot? | default null) $path $span
  let port = $c.proxy.app_port
  if $port < 1024 or $port > 65534 {
    fail $"($path): proxy.app_port: ($port) is not a port for an app: give 1024-65534 \(it uses app_port and app_port+1\)" $span
  }
  if not ($c.health_check.path | str starts-with /) {
    fail $"($path): health_check.path: ($c.health_check.path | to nuon) must start with /" $span
  }
  for k in ($read.specs | values | get env.secret | flatten | uniq) {
    if ($k | describe) != string or ($k !~ '^[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z_][A-Za-z0-9_]*)?$') {
      fail $"($path): env.secret: ($k | to nuon) is not a variable name \(KEY, or KEY:FROM to give the app KEY from the secret FROM\)" $span
    }
  }
  check-storage ($c.storage? | default {}) $path $span
  let release_path = $project | path join $c.release.path | path expand
  {
    service: $c.service
    destination: $destination
    app: $app
    root: $ROOT
    config_path: $path
    project: $project
    hosts: $declared
    instances: ($c.instances? | default {})
    roles: $read.roles
    role_specs: $read.specs
    servers: ($read.roles | values | flatten | uniq)
    web: $read.web
    primary: $read.primary
    boot: ($c.boot? | default null | if $in == null { null } else { {limit: $in.limit?, wait: ($in.wait? | default 0sec | if ($in | describe) == string { $in | into duration } else { $in })} })
    release: ($c.release | upsert path $release_path)
    proxy: $c.proxy
    env: $c.env
    health_check: $c.health_check
    drain_timeout: $c.drain_timeout
    retain: $c.retain
    storage: ($c.storage? | default {})
    version: (version-of $project $version)
    span: $span
  } | restrict $roles $hosts
}

# The hk config record (hosts and instances) that plugin commands take on their input.
export def hk-config [ctx: record]: nothing -> record {
  {hosts: $ctx.hosts, instances: $ctx.instances}
}

# A path of the app on its hosts (`<root>/<app>/<leaf>`).
export def app-path [ctx: record, leaf: string = ""]: nothing -> string {
  if $leaf == "" { $"($ctx.root)/($ctx.app)" } else { $"($ctx.root)/($ctx.app)/($leaf)" }
}

# The systemd unit of the app's instance on `port` (or the template without one), of the context's
# role: `hk-<app>@` for web, `hk-<app>-<role>@` for another.
export def unit [ctx: record, port?: int]: nothing -> string {
  let role = $ctx.role? | default web
  let base = if $role == web { $"hk-($ctx.app)" } else { $"hk-($ctx.app)-($role)" }
  if $port == null { $"($base)@.service" } else { $"($base)@($port).service" }
}

# What the app's hosts hold now (one script per host): see `hk deployment facts`.
export def facts [ctx: record]: nothing -> table {
  hk-config $ctx | hk deployment facts $ctx.servers --app $ctx.app --root $ctx.root
}

# What a run of `step` says made it: `deploy 1a2b3c: prepare` within a deploy, else the step alone.
export def made-by [ctx: record, step: string]: nothing -> string {
  if $ctx.doing? == null { $step } else { $"($ctx.doing): ($step)" }
}

# Where this app's runs are recorded on its hosts.
export def runs-root [ctx: record]: nothing -> string {
  app-path $ctx runs
}

# A deploy config as `hk config` shows it: merged for its destination and resolved, without the
# secrets' values (they are not even loaded: only their names and the files they come from).
def shown [ctx: record]: nothing -> record {
  let own = if $ctx.destination == null { "secrets" } else { $"secrets.($ctx.destination)" }
  $ctx
  | select service destination app project config_path roles servers primary release proxy env health_check drain_timeout retain storage boot
  | insert secret_files [($ctx.project | path join .hk secrets-common) ($ctx.project | path join .hk $own)]
}

# The merged deploy config of an app, for a destination: its hosts and instances (to pipe into hk's
# commands) and under `deploy` everything else, resolved, without secret values.
#
# See `hk docs config` for every field.
@example "The hosts a deploy config declares" { hk config | get hosts | columns }
@example "What production deploys, merged" { hk config -d production | get deploy }
@example "Bring up the instance a deploy config declares" { hk config | hk instance ensure demo }
@example "Run a command on production's hosts" { hk config -d production | hk exec uptime --all }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> record<hosts: record, instances: record, deploy: record> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  hk-config $ctx | insert deploy (shown $ctx)
}
