# Elixir Mix releases: `release: {mix: {name: my_app, env: prod}, migrate: "MyApp.Release.migrate()"}`.
# hk builds `MIX_ENV=<env> mix release <name> --overwrite`, deploys `_build/<env>/rel/<name>` and
# runs `bin/<name> start`. Each instance is its own Erlang node, `<name>_<port>@127.0.0.1` (another
# role: `<name>_<role>_<port>`), with the cookie from the secret RELEASE_COOKIE and its temporary
# files in a runtime folder of its unit (the release stays read-only under `DynamicUser`). Nodes
# register with one port mapper per host, `hk-epmd.service`, so a node stays reachable when the
# instance that started first stops; nodes and mapper listen on 127.0.0.1 only.

use errors.nu [fail]

# The host-wide port mapper every Elixir app's nodes register with.
export const EPMD_UNIT = "hk-epmd.service"

# Distribution on loopback only, and never a port mapper of a node's own (it would die with the
# instance that started it).
const ERL_FLAGS = "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"

# Is the release of the context a Mix release?
export def is-mix [ctx: record]: nothing -> bool {
  ($ctx.release.mix? | default null) != null
}

# The resolved `release` of a config's Mix release (`mix` given): name and env checked, the folder
# `mix release` writes, the command that starts it. Errors name the config `path`.
export def resolve [release: record, project: string, path: string, span: record]: nothing -> record {
  let mix = $release.mix
  let name = $mix.name? | default null
  if $name == null or ($name | describe) != string or ($name !~ '^[a-z][a-z0-9_]*$') {
    fail $"($path): release.mix.name: ($name | to nuon) is not a release name" $span "give the release's name as mix.exs declares it (an Elixir atom: lowercase letters, digits and _), e.g. release: {mix: {name: my_app}}"
  }
  let mix_env = $mix.env? | default prod
  if ($mix_env !~ '^[a-z][a-z0-9_]*$') {
    fail $"($path): release.mix.env: ($mix_env | to nuon) is not a Mix environment" $span "e.g. prod"
  }
  for key in [path cmd] {
    if ($release | get -o $key) != null {
      fail $"($path): release.($key): a Mix release is built and started by hk: drop release.($key)" $span $"it deploys _build/($mix_env)/rel/($name) and runs bin/($name) start"
    }
  }
  let unknown = $mix | columns | where $it not-in [name env]
  if ($unknown | is-not-empty) {
    fail $"($path): release.mix.($unknown | first): unknown field" $span "release.mix has name and env"
  }
  $release | merge {
    mix: {name: $name, env: $mix_env}
    path: ($project | path join _build $mix_env rel $name)
    cmd: $"bin/($name) start"
  }
}

# A Mix release's instances need the cookie as a secret: the release's own generated one must
# never be used by accident.
export def check-cookie [specs: record, path: string, span: record]: nothing -> nothing {
  for r in ($specs | transpose role spec) {
    let keys = $r.spec.env.secret | each {|k| $k | split row ":" | first }
    if "RELEASE_COOKIE" not-in $keys {
      fail $"($path): env.secret: a Mix release needs RELEASE_COOKIE among its secrets \(role ($r.role) has none\)" $span "add env: {secret: [RELEASE_COOKIE]} and put RELEASE_COOKIE=<a long random value> in .hk/secrets; every instance and hk rpc use it"
    }
  }
}

# The releases `mix.exs` in `project` declares (its app's name when it declares none).
export def declared [project: string, mix_env: string]: nothing -> list<string> {
  let script = 'c = Mix.Project.config(); rels = Keyword.keys(c[:releases] || []); rels = if rels == [], do: [c[:app]], else: rels; Enum.each(rels, &IO.puts/1)'
  let run = with-env {MIX_ENV: $mix_env} { do { cd $project; ^mix run --no-compile --no-start --no-deps-check -e $script } | complete }
  if $run.exit_code != 0 {
    error make {msg: $"mix could not read ($project)/mix.exs: ($run.stderr | str trim | lines | last 3 | str join ' ')"}
  }
  $run.stdout | lines | str trim | where $it != ""
}

# Build the context's Mix release in its project: the name checked against mix.exs first, then
# `mix release` (its output on stderr as it goes, unless quiet). The generated cookie is removed
# from the output: the cookie comes from the secret RELEASE_COOKIE only.
export def build [ctx: record]: nothing -> nothing {
  let mix = $ctx.release.mix
  let quiet = $ctx.quiet? | default false
  if (which mix | is-empty) {
    fail "mix is not installed on this machine: hk builds Mix releases with the project's own mix" $ctx.span "install Elixir (Debian: apt install elixir erlang-nox), or build elsewhere and deploy with --skip-build"
  }
  let known = try { declared $ctx.project $mix.env } catch {|e| fail $e.msg $ctx.span "run `mix compile` in the project to see why" }
  if $mix.name not-in $known {
    fail $"release.mix.name: mix.exs in ($ctx.project) declares no release ($mix.name) \(it declares: ($known | str join ', ')\)" $ctx.span "name one of those, or add it under releases: in mix.exs"
  }
  let args = [release $mix.name --overwrite]
  let run = with-env {MIX_ENV: $mix.env, HK_VERSION: $ctx.version, HK_APP: $ctx.app} {
    if $quiet {
      do { cd $ctx.project; ^mix ...$args } | complete
    } else {
      # Its output on stderr as it goes (the plugin's stdout is nu's), its exit status kept.
      try { do { cd $ctx.project; ^sh -c 'exec 1>&2; exec "$0" "$@"' mix ...$args }; {exit_code: 0} } catch {|e| {exit_code: ($e.exit_code? | default 1), stdout: "its output is above"} }
    }
  }
  if $run.exit_code != 0 {
    let tail = $"($run.stdout? | default '')\n($run.stderr? | default '')" | str trim | lines | last 5 | str join "\n"
    fail $"MIX_ENV=($mix.env) mix release ($mix.name) failed \(exit ($run.exit_code)\): ($tail)" $ctx.span $"run it by hand in ($ctx.project) to see why"
  }
  rm -f ($ctx.release.path | path join releases COOKIE)
}

# What a Mix release adds to its template unit (`base`: the template's name without `@…`): the
# node name, distribution and temporary folder of each instance, and the port mapper.
export def unit-additions [ctx: record, base: string]: nothing -> record {
  let name = $ctx.release.mix.name
  let role = $ctx.role? | default web
  let node = if $role == web { $"($name)_%i" } else { $"($name)_($role | str replace -a '-' '_')_%i" }
  let runtime = $"($base)-%i"
  {
    environment: [
      $"RELEASE_NODE=($node)@127.0.0.1"
      "RELEASE_DISTRIBUTION=name"
      $"RELEASE_TMP=/run/($runtime)"
      # IEx sessions evaluate in the node and look for ~/.iex.exs: a home it may read.
      $"HOME=/run/($runtime)"
      $"ERL_CRASH_DUMP=/run/($runtime)/erl_crash.dump"
      $"\"ERL_AFLAGS=($ERL_FLAGS)\""
    ]
    service: {RuntimeDirectory: $runtime}
    unit: {Wants: $EPMD_UNIT, After: $"network.target ($EPMD_UNIT)"}
  }
}

# The port mapper's unit: the `epmd` of any Elixir release under the app root (the protocol is the
# same across OTP versions), on 127.0.0.1. The same resource from every app, so merged configs agree.
export def epmd-resource [root: string]: nothing -> record {
  let find = $"for e in ($root)/*/releases/*/erts-*/bin/epmd; do if [ -x \"$$e\" ]; then exec \"$$e\"; fi; done; echo 'no epmd in any release under ($root)' >&2; exit 1"
  {
    type: service
    name: $EPMD_UNIT
    unit: {
      Unit: {Description: "Erlang port mapper for hk's Elixir apps", After: network.target}
      Service: {
        ExecStart: $"/bin/sh -c '($find)'"
        Environment: ["ERL_EPMD_ADDRESS=127.0.0.1"]
        DynamicUser: yes
        Restart: always
        RestartSec: 2
      }
      Install: {WantedBy: multi-user.target}
    }
  }
}
