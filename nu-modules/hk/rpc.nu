# Reaching a Mix release's running nodes: `hk rpc EXPR` on every host (`bin/<name> rpc`, a hidden
# node that evaluates EXPR in the live node and prints what it prints), and `hk iex`, a remote shell
# into the live node of the primary host through a real terminal (OpenSSH's `ssh -t` with hk's
# host, key and known_hosts, host keys checked strictly).

use config.nu [load fail facts]
use live.nu [primary-ctx on-live sandbox]
use mix.nu

def mix-ctx [config: oneof<string, nothing>, destination: oneof<string, nothing>, span: record, roles: oneof<string, nothing>, hosts: oneof<string, nothing>]: nothing -> record {
  let ctx = load $config $destination "-" $span --roles=$roles --hosts=$hosts
  if not (mix is-mix $ctx) {
    fail $"($ctx.app) is not a Mix release: its nodes cannot be reached by rpc" $span "declare release: {mix: {name: ...}} in the deploy config"
  }
  $ctx
}

# Evaluate EXPR in the live node of every host (or -r/--hosts): one row per host and role.
#
# `bin/<name> rpc EXPR` as the instance's own user with its env file (so its cookie); rows
# {host, role, exit_code, stdout, stderr}. What EXPR prints is stdout; its value is not printed
# (use IO.inspect). A host where the app is not live is an error naming it. See `hk docs elixir`.
@example "The version every node runs" { hk rpc "IO.puts System.get_env(\"HK_VERSION\")" | select host stdout }
@example "Memory of the worker nodes" { hk rpc -r worker "IO.inspect :erlang.memory(:total)" }
export def main [
  expr: string                # an Elixir expression, evaluated in the running node
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> table<host: string, role: string, exit_code: int, stdout: any, stderr: string> {
  let span = (metadata $expr).span
  let ctx = mix-ctx $config $destination $span $roles $hosts
  on-live $ctx [$"bin/($ctx.release.mix.name)" rpc $expr]
}

# A remote shell (IEx) into the live node of the primary host (or --host), in this terminal.
#
# `bin/<name> remote` as the instance's own user with its env file, through `ssh -t` with the host,
# key and known_hosts hk uses (host keys checked strictly). Ctrl-\ (or Ctrl-C, then a) ends this
# shell and leaves the node running; `System.stop()` would stop the node itself. See `hk docs elixir`.
@example "A shell into production's primary node" { hk iex -d production }
export def iex [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --host: string              # this host instead of the primary one
]: nothing -> nothing {
  let span = (metadata $config).span
  let ctx = mix-ctx $config $destination $span null null
  let host = $host | default $ctx.primary
  if $host not-in $ctx.servers {
    fail $"($host) is not a server of ($ctx.app) \(servers: ($ctx.servers | str join ', ')\)" $span
  }
  let rctx = primary-ctx ($ctx | update primary $host)
  let live = facts ($ctx | update servers [$host]) | first
  if $live.active_port == null {
    fail $"($ctx.app) is not live on ($host)" $span "deploy it first: hk deploy"
  }
  let props = sandbox $rctx $live.active_port
  let reach = {hosts: $ctx.hosts, instances: $ctx.instances}
    | hk target $host --terminal --run [$"bin/($ctx.release.mix.name)" remote] --sandbox $props | first
  if $reach.kind != ssh {
    fail $"($host) is this machine: hk iex reaches nodes over SSH" $span
  }
  ^ssh ...$reach.ssh
}
