# The Elixir example (examples/elixir_app, a Mix release) on the load guest (`hk-load`; tests of
# test_guest_load*.nu run one at a time): built here with mix, deployed blue-green under load with
# its migration run once in the new release, a failing migration switching nothing, the live node
# reached by `hk rpc` and by `hk iex` through a terminal, a rollback without a build.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use lib/terminal.nu
use ../nu-modules/hk

const example = path self | path dirname | path dirname | path join examples elixir_app

# A copy of the example project (its source and config/deploy.nu, no build output), its secrets
# file with a fresh cookie, on the load guest.
def elixir-project []: nothing -> record {
  let dir = scratch
  for f in [mix.exs lib config] { cp -r ($example | path join $f) $dir }
  mkdir ($dir | path join .hk)
  $"RELEASE_COOKIE=(random chars -l 48)\n" | save ($dir | path join .hk/secrets)
  {dir: $dir, instance: $guest.load_instance, site: elixir.test, service: elixir-app}
}

# The lines the example's migration wrote on the guest.
def migrations [p: record]: nothing -> list<string> {
  guest sh --on $p.instance "cat /var/lib/hk/elixir-app/data/migrations.log 2>/dev/null || true" | lines
}

# The HTTP ports listening on the guest among the app's two.
def listening [p: record]: nothing -> list<int> {
  guest sh --on $p.instance "ss -ltnH" | lines | parse --regex '127\.0\.0\.1:(?<port>420[01])\s' | get port | into int | sort
}

# Run `hk iex` in a terminal, type `line`, and return what the pane showed once `expect` appeared.
def through-terminal [dir: string, line: string, expect: string]: nothing -> string {
  let session = terminal start $dir "hk iex" --vars {HK_DEMO_INSTANCE: $guest.load_instance}
  terminal wait-for $session "iex(" | ignore
  terminal keys $session $line Enter
  let shown = terminal wait-for $session $expect
  # Ctrl-\ ends the remote shell, not the node.
  terminal keys $session 'C-\'
  sleep 2sec
  terminal stop $session
  $shown
}

export def "test guest elixir: a Mix release deployed under load, migrated once in the new release, a failing migration switching nothing, rpc, iex and a rollback" [] {
  let p = elixir-project
  cd $p.dir
  $env.HK_DEMO_INSTANCE = $p.instance
  hk setup --version v1 --quiet | ignore
  assert equal (answer $p) v1
  assert equal (migrations $p) ["v1 hello from Elixir"]
  # The cookie is the secret's: the release's generated one never left this machine.
  let cookie = open .hk/secrets | lines | first | str replace "RELEASE_COOKIE=" ""
  has (guest sh --on $p.instance "cat /opt/hk/elixir-app/env/web.4200.env") $cookie
  assert equal (guest sh --on $p.instance "ls /opt/hk/elixir-app/releases/v1/releases/COOKIE 2>/dev/null || echo none" | str trim) none

  # Both nodes run side by side while Caddy switches: a hook looks at the guest just before.
  mkdir .hk/hooks
  let seen_file = $p.dir | path join listening.nuon
  $"hk config | hk exec 'ss -ltnH' | get 0.stdout | lines | parse --regex '127\\.0\\.0\\.1:\(?<port>420[01]\)\\s' | get port | into int | sort | to nuon | save -f '($seen_file)'\n" | save .hk/hooks/pre-proxy-reload.nu
  chmod +x .hk/hooks/pre-proxy-reload.nu
  # Gently: an emulated guest serving at full speed leaves the new node little CPU to boot.
  let load = start-load $p --at-least 200 --pause-ms 100
  let rows = hk deploy --version v2 --quiet
  let seen = stop-load $load
  no-failures $seen 200 "elixir deploy v1 to v2"
  assert equal (open $seen_file) [4200 4201]
  assert equal (answer $p) v2
  assert equal (listening $p) [4201]
  # The migration ran once, in v2's own release and environment, before the switch.
  assert equal (migrations $p) ["v1 hello from Elixir" "v2 hello from Elixir"]
  let phases = $rows | get phase
  assert (($phases | enumerate | where item == migrate | get 0.index) < ($phases | enumerate | where item == switch | get 0.index)) $"phases: ($phases)"
  rm .hk/hooks/pre-proxy-reload.nu

  # A failing migration: nothing switches, v2 serves on, the new node is stopped, the error and the
  # audit log hold the migration's own words.
  guest sh --on $p.instance "touch /var/lib/private/hk/elixir-app/data/fail-migration" | ignore
  let failed = error-of { hk deploy --version v3 --quiet }
  has $failed "migration"
  has $failed "nothing was switched"
  has $failed "fail-migration is there"
  assert equal (answer $p) v2
  assert equal (listening $p) [4201]
  assert equal (migrations $p | length) 2
  let audit = hk audit | first
  assert equal [$audit.action $audit.version $audit.result] [deploy v3 failed]
  has $audit.error "fail-migration is there"
  guest sh --on $p.instance "rm /var/lib/private/hk/elixir-app/data/fail-migration" | ignore

  # rpc: the live node of every host, as a table.
  let rpc = hk rpc "IO.puts ElixirApp.version()"
  assert equal ($rpc | select host role exit_code stdout) [{host: demo, role: web, exit_code: 0, stdout: "v2\n"}]

  # iex: a remote shell into the live node, through a real terminal.
  let shown = through-terminal $p.dir 'IO.puts("node says " <> ElixirApp.version())' "node says v2"
  has $shown "iex(elixir_app_4201@127.0.0.1)"
  has $shown "node says v2"
  # Leaving the shell leaves the node running.
  assert equal (answer $p) v2

  # Rollback to v1: no build, no migration (old code, migrated schema), v1 serving.
  let back = hk rollback --quiet
  assert not ("build" in ($back | get phase)) $"a rollback built: ($back | get phase)"
  assert not ("migrate" in ($back | get phase)) $"a rollback migrated: ($back | get phase)"
  assert equal (answer $p) v1
  assert equal (migrations $p | length) 2
  # The migration alone, in the live release (v1 now), under the lock; on record.
  let migrated = hk migrate --quiet
  assert equal [$migrated.phase $migrated.host $migrated.status] [migrate demo ok]
  assert equal (migrations $p | last) "v1 hello from Elixir"
  assert equal ((hk audit | first | select action version result) | values) [migrate v1 ok]
}
