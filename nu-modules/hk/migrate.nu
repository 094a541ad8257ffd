# Migrations of a Mix release (`release.migrate: "MyApp.Release.migrate()"`): `bin/<name> eval` of
# the expression on the primary host, a fresh VM of the release in the context of its unit (the
# same dynamic user, storage and env file as the instance, temporary files of its own). A deploy
# runs it in the NEW release after its prepare and before any switch; `hk migrate` in the live one.

use config.nu [load fail why facts]
use lock.nu [holding]
use audit.nu [write]
use phases.nu [progress]
use live.nu [primary-ctx in-release]
use mix.nu

# Run the migration `expr` on the primary host in the release on `port`: its progress row; a
# failure raises an error holding the migration's own output.
export def run-in [ctx: record, port: int, expr: string]: nothing -> record {
  let rctx = primary-ctx $ctx
  let started = date now
  let out = in-release $rctx [$ctx.primary] $port [$"bin/($ctx.release.mix.name)" eval $expr] | first
  let said = [$out.stdout $out.stderr] | each {|t| $t | into string | str trim } | where $it != "" | str join "\n"
  if $out.exit_code != 0 {
    let tail = $said | lines | last 10 | str join "\n"
    error make {msg: $"the migration `($expr)` failed on ($ctx.primary) \(exit ($out.exit_code)\):\n($tail)"}
  }
  progress migrate $ctx.primary $expr ok ((date now) - $started) ($said | lines | last 1 | get -o 0 | default "") --quiet=($ctx.quiet? | default false)
}

# Run the app's migration (or EXPR) in the live release, on the primary host, under the lock.
#
# `bin/<name> eval EXPR` in a fresh VM of the live release, with the instance's env file, user and
# storage: the same as a deploy's migration step (which runs in the new release before the switch).
# The audit log records it. See `hk docs elixir`.
@example "Migrate again" { hk migrate }
@example "Run a one-off task in the release" { hk migrate "MyApp.Release.seed()" }
export def main [
  expr?: string               # an Elixir expression (default release.migrate)
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --quiet (-q)                # no progress on stderr
]: nothing -> record<phase: string, host: string, status: string, step: string, duration: duration, message: string, time: datetime> {
  let span = (metadata $expr).span
  let ctx = load $config $destination "-" $span | upsert quiet $quiet
  if not (mix is-mix $ctx) {
    fail $"($ctx.app) is not a Mix release: hk migrate runs `bin/<name> eval` of one" $span "declare release: {mix: {name: ...}, migrate: ...} in the deploy config"
  }
  let expr = $expr | default ($ctx.release.migrate? | default null)
  if $expr == null {
    fail "no migration to run: give an expression or set release.migrate" $span "e.g. hk migrate \"MyApp.Release.migrate()\""
  }
  holding $ctx $"migrate ($expr)" null {|ctx|
    let live = facts ($ctx | update servers [$ctx.primary]) | first
    if $live.active_port == null {
      fail $"($ctx.app) is not live on ($ctx.primary): nothing to migrate" $span "deploy it first: hk deploy"
    }
    try {
      let row = run-in $ctx $live.active_port $expr
      write $ctx migrate ok $live.current
      $row
    } catch {|e|
      try { write $ctx migrate failed $live.current (why $e) } catch { }
      fail (why $e) $span "the lines above are the migration's own output"
    }
  }
}
