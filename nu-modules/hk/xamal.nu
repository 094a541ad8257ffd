# `hk init --from xamal`: an Xamal project's config/xamal.exs (and its destinations), .xamal/secrets*
# and .xamal/hooks written as their hk equivalents; what has none is listed on stderr. The config
# files are Elixir: the project's own `elixir` evaluates them (`Config.Reader.read!/1`) and a few
# lines of Elixir print the `:xamal` config as JSON (Elixir 1.14 has no JSON module).

use config.nu [fail]
use scaffold.nu [put config-text project-module copy-hook seconds copy-secrets]

# Xamal keys with no hk equivalent, and why.
const UNSUPPORTED = {
  builder: "hk builds the release here with the project's own mix (release.build runs first); remote and Docker builders are not read"
  hooks_path: "read from there; hk's hooks live in .hk/hooks"
  secrets_path: "read from there; hk's secrets live in .hk/secrets"
  caddy_path: "hk keeps each app's site in /opt/hk/<app>/Caddyfile"
}

# Prints the `:xamal` config of the file given first, as JSON: keyword lists as objects (in order),
# atoms as text, tuples as lists.
const READER = '
defmodule HkXamalJson do
  def e(nil), do: "null"
  def e(v) when is_boolean(v), do: to_string(v)
  def e(v) when is_atom(v), do: e(Atom.to_string(v))
  def e(v) when is_number(v), do: to_string(v)
  def e(v) when is_binary(v), do: "\"" <> (v |> String.to_charlist() |> Enum.map_join(&c/1)) <> "\""
  def e(v) when is_tuple(v), do: e(Tuple.to_list(v))
  def e(v) when is_map(v), do: obj(Map.to_list(v))
  def e([]), do: "[]"
  def e(v) when is_list(v) do
    if Keyword.keyword?(v), do: obj(v), else: "[" <> Enum.map_join(v, ",", &e/1) <> "]"
  end
  defp obj(pairs), do: "{" <> Enum.map_join(pairs, ",", fn {k, x} -> e(to_string(k)) <> ":" <> e(x) end) <> "}"
  defp c(?"), do: "\\\""
  defp c(?\\), do: "\\\\"
  defp c(x) when x < 32, do: "\\u" <> String.pad_leading(Integer.to_string(x, 16), 4, "0")
  defp c(x), do: <<x::utf8>>
end
[file] = System.argv()
file |> Config.Reader.read!() |> Keyword.get(:xamal, []) |> HkXamalJson.e() |> IO.puts()
'

# The `:xamal` config of one file, read by the project's elixir.
def read-exs [file: string, span: record]: nothing -> record {
  if (which elixir | is-empty) {
    fail $"reading ($file) needs elixir: Xamal's config is Elixir code" $span "install Elixir (Debian: apt install elixir), the one the project builds with"
  }
  let run = do { cd ($file | path dirname); ^elixir -e $READER $file } | complete
  if $run.exit_code != 0 {
    fail $"elixir could not read ($file): ($run.stderr | str trim | lines | last 3 | str join ' ')" $span "fix the file: `elixir -e 'Config.Reader.read!(\"config/xamal.exs\")'` shows the same error"
  }
  let value = $run.stdout | from json
  if ($value | describe) !~ '^record' { fail $"($file) has no `config :xamal, …`" $span }
  $value
}

# One host as Xamal writes it: an address, or `name: address` (a one-field record): {name, address}.
def host-of [h: any]: nothing -> record {
  if ($h | describe) =~ '^record' {
    let pair = $h | transpose name address | first
    {name: ($pair.name | into string), address: ($pair.address | into string)}
  } else { {name: ($h | into string), address: ($h | into string)} }
}

# A role's hosts: a list of hosts, or named hosts as one record `{east: "10.0.0.1", …}`.
def hosts-of [hosts: any]: nothing -> list<record> {
  if $hosts == null { return [] }
  if ($hosts | describe) =~ '^record' { $hosts | transpose name address | each {|p| {name: $p.name, address: ($p.address | into string)} } } else { $hosts | each {|h| host-of $h } }
}

# Xamal's servers as {role: {hosts: [{name, address}], cmd?, env?}}.
def roles-of [servers: any]: nothing -> record {
  if $servers == null { return {} }
  if ($servers | describe) !~ '^record' { return {web: {hosts: (hosts-of $servers)}} }
  # Named hosts straight under servers (`servers: [east: "10.0.0.1"]`) are the web role's.
  if ($servers | values | all {|v| ($v | describe) == string }) { return {web: {hosts: (hosts-of $servers)}} }
  $servers | transpose role spec | reduce --fold {} {|r, acc|
    let spec = if ($r.spec | describe) =~ '^record' and ($r.spec.hosts? != null) { $r.spec } else { {hosts: $r.spec} }
    let role = {hosts: (hosts-of $spec.hosts)}
      | merge (if $spec.cmd? != null { {cmd: $spec.cmd} } else { {} })
      | merge (if $spec.env? != null { {env: $spec.env} } else { {} })
    $acc | upsert $r.role $role
  }
}

# Translate one Xamal config record (the base, or a destination's overrides); `{config, notes}`.
def translate [x: record, base: bool]: nothing -> record {
  mut c = {}
  mut notes = []
  if $x.service? != null { $c.service = $x.service }
  let ssh = $x.ssh? | default {}
  let roles = roles-of $x.servers?
  if ($roles | is-not-empty) {
    let all = $roles | values | get hosts | flatten | uniq-by name
    let ssh_spec = {}
      | merge (if $ssh.user? != null { {user: $ssh.user} } else { {} })
      | merge (if $ssh.port? != null { {port: $ssh.port} } else { {} })
      | merge (if ($ssh.keys? | default [] | is-not-empty) { {identity_file: ($ssh.keys | first)} } else { {} })
    $c.hosts = ($all | reduce --fold {} {|h, acc| $acc | upsert $h.name ({address: $h.address} | merge (if ($ssh_spec | is-empty) { {} } else { {ssh: $ssh_spec} })) })
    let plain = ($roles | columns) == [web] and ($roles.web | columns) == [hosts]
    $c.servers = (if $plain { $roles.web.hosts | get name } else {
      $roles | transpose role spec | reduce --fold {} {|r, acc|
        let spec = $r.spec | update hosts ($r.spec.hosts | get name)
        $acc | upsert $r.role (if ($spec | columns) == [hosts] { $spec.hosts } else { $spec })
      }
    })
  }
  for key in [proxy proxy_command key_data] {
    if ($ssh | get -o $key) != null { $notes = ($notes | append $"ssh.($key): jump hosts and keys go in ~/.ssh/config \(ProxyJump, IdentityFile\), which hk reads") }
  }
  let release = $x.release? | default {}
  if $base or ($release | is-not-empty) {
    let name = $release.name? | default ($x.service? | default app | str replace -a "-" "_")
    $c.release = {mix: {name: $name, env: ($release.mix_env? | default prod)}}
  }
  let caddy = $x.caddy? | default {}
  if ($caddy | is-not-empty) {
    mut p = {}
    if $caddy.host? != null { $p.host = $caddy.host }
    if ($caddy.hosts? | default [] | is-not-empty) {
      $notes = ($notes | append $"caddy.hosts: only ($caddy.host? | default ($caddy.hosts | first)) is the site address")
      if $caddy.host? == null { $p.host = ($caddy.hosts | first) }
    }
    if $caddy.app_port? != null { $p.app_port = $caddy.app_port }
    if ($p | is-not-empty) { $c.proxy = $p }
  }
  let hc = $x.health_check? | default {}
  mut check = {}
  if $hc.path? != null { $check.path = $hc.path }
  if $hc.interval? != null { $check.interval = (seconds $hc.interval) }
  if $hc.timeout? != null { $check.timeout = (seconds $hc.timeout) }
  if $x.readiness_delay? != null { $check.delay = (seconds $x.readiness_delay) }
  if $x.deploy_timeout? != null and $hc.timeout? == null { $check.timeout = (seconds $x.deploy_timeout) }
  if ($check | is-not-empty) { $c.health_check = $check }
  if $x.drain_timeout? != null { $c.drain_timeout = (seconds $x.drain_timeout) }
  if $x.retain_releases? != null { $c.retain = $x.retain_releases }
  if $x.primary_role? != null { $c.primary_role = $x.primary_role }
  if $x.require_destination? != null { $c.require_destination = $x.require_destination }
  if $x.boot? != null {
    $c.boot = ({} | merge (if $x.boot.limit? != null { {limit: $x.boot.limit} } else { {} }) | merge (if $x.boot.wait? != null { {wait: (seconds $x.boot.wait)} } else { {} }))
  }
  let xenv = $x.env? | default {}
  if ($xenv | is-not-empty) or $base {
    let clear = $xenv.clear? | default {} | transpose k v | reduce --fold {} {|e, acc| $acc | upsert $e.k ($e.v | into string) }
    let secret = $xenv.secret? | default []
    # hk starts the nodes with the cookie from the secrets only, never one generated at build time.
    let secret = if $base and ("RELEASE_COOKIE" not-in ($secret | each {|k| $k | split row ":" | first })) {
      $notes = ($notes | append "env.secret: RELEASE_COOKIE added (hk refuses a Mix release without it): put RELEASE_COOKIE=<the nodes' cookie> in .hk/secrets")
      $secret | append RELEASE_COOKIE
    } else { $secret }
    # A destination's env holds only what it gives: an empty list would replace the base's secrets.
    if $base { $c.env = {clear: $clear, secret: $secret} } else {
      let over = {} | merge (if ($clear | is-empty) { {} } else { {clear: $clear} }) | merge (if ($secret | is-empty) { {} } else { {secret: $secret} })
      if ($over | is-not-empty) { $c.env = $over }
    }
  }
  for key in ($x | columns) {
    if $key in $UNSUPPORTED { $notes = ($notes | append $"($key): ($UNSUPPORTED | get $key)") }
  }
  {config: $c, notes: $notes}
}

# Destination files of config/xamal.exs: config/xamal/<dest>.exs or config/xamal.<dest>.exs.
def destinations [dir: string]: nothing -> table<name: string, file: string> {
  let nested = glob ($dir | path join config/xamal/*.exs) | each {|f| {name: ($f | path parse | get stem), file: $f} }
  let dotted = glob ($dir | path join "config/xamal.*.exs") | each {|f| {name: ($f | path basename | str replace -r '^xamal\.(.+)\.exs$' '$1'), file: $f} }
  $nested | append $dotted | uniq-by name | sort-by name
}

# Import the Xamal project in `dir`; the files written.
export def import [dir: string, span: record, --force]: nothing -> list {
  let main = $dir | path join config/xamal.exs
  if not ($main | path exists) {
    fail $"no Xamal config: ($main) does not exist" $span "run hk init --from xamal in the Xamal project's folder"
  }
  let x = read-exs $main $span
  let base = translate $x true
  let header = [
    "Written by `hk init --from xamal` from config/xamal.exs; `hk docs config` explains every field"
    "and `hk docs elixir` the Mix release: hk builds it here, deploys it blue-green behind Caddy and"
    "runs release.migrate (if you set it) in the new release before switching."
  ]
  mut written = [(put ($dir | path join config/deploy.nu) (config-text $header $base.config) --force=$force)]
  mut notes = $base.notes
  for d in (destinations $dir) {
    let over = translate (read-exs $d.file $span) false
    $written = ($written | append (put ($dir | path join $"config/deploy.($d.name).nu") (config-text [$"Destination ($d.name), merged over config/deploy.nu \(from ($d.file | path relative-to $dir)\)."] $over.config) --force=$force))
    $notes = ($notes | append ($over.notes | each {|n| $"($d.name): ($n)" }))
  }
  let secrets = copy-secrets $dir ($x.secrets_path? | default .xamal/secrets) xamal --force=$force
  $written = ($written | append $secrets.written)
  $notes = ($notes | append $secrets.notes)
  let hooks_dir = $dir | path join ($x.hooks_path? | default .xamal/hooks)
  for f in (glob ($hooks_dir | path join "*") | sort) {
    $written = ($written | append (copy-hook $f ($dir | path join .hk/hooks) xamal --force=$force))
  }
  $written = ($written | append (put ($dir | path join deploy.nu) (project-module [{name: ship, command: "hk deploy"}]) --force=$force))
  for n in $notes { print -e $"hk init: no hk equivalent: ($n)" }
  $written | compact
}
