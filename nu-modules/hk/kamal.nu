# `hk init --from kamal`: a Kamal project's config/deploy.yml (and its destinations), .kamal/secrets*
# and .kamal/hooks written as their hk equivalents; what has none is listed on stderr.

use config.nu [fail]
use scaffold.nu [put config-text project-module copy-hook seconds copy-secrets]

# Kamal keys with no hk equivalent, and why.
const UNSUPPORTED = {
  image: "hk deploys a release folder, not a container image: set release.path, release.cmd, release.build"
  registry: "no container registry: the release is uploaded over SSH"
  builder: "set release.build to the command that builds release.path"
  accessories: "declare accessories as hk resources (packages, services) in a host config"
  volumes: "use storage (`hk docs storage`)"
  asset_path: "releases sit side by side: assets of the old one stay until it retires"
  logging: "instances log to the journal"
  labels: "no containers to label"
  minimum_version: "not needed"
  sshkit: "hk keeps one SSH session per host"
  hooks_path: "read from there; hk's hooks live in .hk/hooks"
  secrets_path: "read from there; hk's secrets live in .hk/secrets"
  run_directory: "not needed"
  error_pages_path: "not read"
}

# The hosts of one role: Kamal lists addresses, or records `{address: tags}`.
def addresses [hosts: any]: nothing -> list<string> {
  $hosts | default [] | each {|h| if ($h | describe) =~ '^record' { $h | columns } else { [$h] } } | flatten | each { into string }
}

# Kamal's servers as hk roles `{role: {hosts, cmd?, env?}}`.
def roles-of [servers: any]: nothing -> record {
  if $servers == null { return {} }
  if ($servers | describe) !~ '^record' { return {web: {hosts: (addresses $servers)}} }
  $servers | transpose role spec | reduce --fold {} {|r, acc|
    let spec = if ($r.spec | describe) =~ '^record' and ($r.spec.hosts? != null) { $r.spec } else { {hosts: $r.spec} }
    let role = {hosts: (addresses $spec.hosts)}
      | merge (if $spec.cmd? != null { {cmd: $spec.cmd} } else { {} })
      | merge (if $spec.env? != null { {env: $spec.env} } else { {} })
    $acc | upsert $r.role $role
  }
}

# Translate one Kamal config record (the base, or a destination's overrides); `{config, notes}`.
def translate [k: record, base: bool]: nothing -> record {
  mut c = {}
  mut notes = []
  if $k.service? != null { $c.service = $k.service }
  let ssh = $k.ssh? | default {}
  let roles = roles-of $k.servers?
  if ($roles | is-not-empty) {
    let all = $roles | values | get hosts | flatten | uniq
    let ssh_spec = {}
      | merge (if $ssh.user? != null { {user: $ssh.user} } else { {} })
      | merge (if $ssh.port? != null { {port: $ssh.port} } else { {} })
      | merge (if ($ssh.keys? | default [] | is-not-empty) { {identity_file: ($ssh.keys | first)} } else { {} })
    $c.hosts = ($all | reduce --fold {} {|h, acc| $acc | upsert $h ({address: $h} | merge (if ($ssh_spec | is-empty) { {} } else { {ssh: $ssh_spec} })) })
    let plain = ($roles | columns) == [web] and ($roles.web | columns) == [hosts]
    $c.servers = (if $plain { $roles.web.hosts } else {
      $roles | transpose role spec | reduce --fold {} {|r, acc| $acc | upsert $r.role (if ($r.spec | columns) == [hosts] { $r.spec.hosts } else { $r.spec }) }
    })
  }
  if $ssh.proxy? != null { $notes = ($notes | append "ssh.proxy: jump hosts go in ~/.ssh/config (ProxyJump), which hk reads") }
  if $base {
    $c.release = {path: dist, cmd: $"bin/($k.service? | default app)"}
  }
  let proxy = $k.proxy? | default {}
  if ($proxy | is-not-empty) {
    mut p = {}
    let host = $proxy.host? | default ($proxy.hosts? | default [] | get -o 0)
    if $host != null { $p.host = (if ($proxy.ssl? | default false) { $host } else { $"http://($host)" }) }
    if ($proxy.hosts? | default [] | length) > 1 { $notes = ($notes | append $"proxy.hosts: only ($host) is the site address") }
    if $proxy.app_port? != null {
      if $proxy.app_port < 1024 {
        $p.app_port = 4000
        $notes = ($notes | append $"proxy.app_port: Kamal's ($proxy.app_port) is the port inside the container; hk's app listens on 4000 and 4001 \(PORT is set\)")
      } else { $p.app_port = $proxy.app_port }
    }
    if ($p | is-not-empty) { $c.proxy = $p }
    let hc = $proxy.healthcheck? | default {}
    mut check = {}
    if $hc.path? != null { $check.path = $hc.path }
    if $hc.interval? != null { $check.interval = (seconds $hc.interval) }
    if $hc.timeout? != null { $check.timeout = (seconds $hc.timeout) }
    if ($check | is-not-empty) { $c.health_check = $check }
  }
  if $k.readiness_delay? != null { $c.health_check = ($c.health_check? | default {} | upsert delay (seconds $k.readiness_delay)) }
  if $k.deploy_timeout? != null { $c.health_check = ($c.health_check? | default {} | upsert timeout (seconds $k.deploy_timeout)) }
  if $k.drain_timeout? != null { $c.drain_timeout = (seconds $k.drain_timeout) }
  if $k.retain_containers? != null { $c.retain = $k.retain_containers }
  if $k.primary_role? != null { $c.primary_role = $k.primary_role }
  if $k.boot? != null {
    $c.boot = ({} | merge (if $k.boot.limit? != null { {limit: $k.boot.limit} } else { {} }) | merge (if $k.boot.wait? != null { {wait: (seconds $k.boot.wait)} } else { {} }))
  }
  if $k.require_destination? != null { $c.require_destination = $k.require_destination }
  let kenv = $k.env? | default {}
  if ($kenv | is-not-empty) {
    let structured = ($kenv | columns | all {|col| $col in [clear secret tags] })
    let clear = if $structured { $kenv.clear? | default {} } else { $kenv }
    let secret = if $structured { $kenv.secret? | default [] } else { [] }
    $c.env = {clear: ($clear | transpose k v | reduce --fold {} {|e, acc| $acc | upsert $e.k ($e.v | into string) }), secret: $secret}
    if $kenv.tags? != null { $notes = ($notes | append "env.tags: per-host environments are not read") }
  }
  for key in ($k | columns) {
    if $key in $UNSUPPORTED { $notes = ($notes | append $"($key): ($UNSUPPORTED | get $key)") }
  }
  {config: $c, notes: $notes}
}

# Import the Kamal project in `dir`; the files written.
export def import [dir: string, span: record, --force]: nothing -> list {
  let main = $dir | path join config/deploy.yml
  if not ($main | path exists) {
    fail $"no Kamal config: ($main) does not exist" $span "run hk init --from kamal in the Kamal project's folder"
  }
  let k = open $main
  if ($k | describe) !~ '^record' { fail $"($main) is not a Kamal config \(a YAML mapping\)" $span }
  let base = translate $k true
  let header = [
    "Written by `hk init --from kamal` from config/deploy.yml; `hk docs config` explains every field."
    "Kamal deployed a container image; hk deploys the release folder `release.path`, started with"
    "`release.cmd` (PORT set) after `release.build` ran here: fill those in."
  ]
  mut written = [(put ($dir | path join config/deploy.nu) (config-text $header $base.config) --force=$force)]
  mut notes = $base.notes
  for f in (glob ($dir | path join config/deploy.*.yml) | sort) {
    let dest = $f | path basename | str replace -r '^deploy\.(.+)\.yml$' '$1'
    let over = translate (open $f) false
    $written = ($written | append (put ($dir | path join $"config/deploy.($dest).nu") (config-text [$"Destination ($dest), merged over config/deploy.nu \(from config/deploy.($dest).yml\)."] $over.config) --force=$force))
    $notes = ($notes | append ($over.notes | each {|n| $"($dest): ($n)" }))
  }
  let kamal_dir = $dir | path join .kamal
  let secrets = copy-secrets $dir ($k.secrets_path? | default .kamal/secrets) kamal --force=$force
  $written = ($written | append $secrets.written)
  $notes = ($notes | append $secrets.notes)
  let hooks_dir = $dir | path join ($k.hooks_path? | default .kamal/hooks)
  for f in (glob ($hooks_dir | path join "*") | sort) {
    let name = $f | path basename | str replace -r '\.sample$' ''
    if $name == docker-setup {
      $notes = ($notes | append "hooks/docker-setup: no Docker to set up")
    } else {
      $written = ($written | append (copy-hook $f ($dir | path join .hk/hooks) kamal --force=$force))
    }
  }
  let aliases = $k.aliases? | default {} | transpose name command | each {|a|
    {name: $a.name, command: $"hk ($a.command)", note: $"kamal ($a.command)"}
  }
  let aliases = [{name: ship, command: "hk deploy"}] | append $aliases
  $written = ($written | append (put ($dir | path join deploy.nu) (project-module $aliases) --force=$force))
  for n in $notes { print -e $"hk init: no hk equivalent: ($n)" }
  $written
}
