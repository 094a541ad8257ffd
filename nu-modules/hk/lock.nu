# The deploy lock of an app: a directory made atomically on its primary host (the first server),
# holding who took it. Deploy, rollback and prune take it; an error or Ctrl-C releases it.

use listing.nu [commands-matching]
use config.nu [load hk-config facts fail why app-path runs-root count]
use errors.nu [outcome unwrap]
use audit.nu [write entry]
use phases.nu [by-phase progress]
use hooks.nu

# Who takes a lock: this user on this machine, this nu, deploying `version`.
def holder [version: string, message: string]: nothing -> record {
  {
    who: (whoami)
    host: (sys host | get hostname)
    pid: $nu.pid
    version: $version
    message: $message
    since: (date now | format date "%+")
  }
}

# Take the app's lock; the record to release it with. `wait`: keep trying this long. `--facts`: the
# primary's facts too, read in the same script once the lock is taken (a `facts` column).
# `read_ahead`: with them, the resources of the first phase on the primary, read in that script
# too for that phase's plan (`hk deployment lock --read-ahead`).
export def take [ctx: record, message: string, wait: oneof<duration, nothing>, --facts, --read-ahead: list]: nothing -> record {
  let wait = $wait | default 0sec
  let ahead = if $read_ahead != null { hk-config $ctx | insert resources $read_ahead }
  (hk-config $ctx | hk deployment lock $ctx.primary --app $ctx.app --root $ctx.root --holder (holder $ctx.version $message) --wait $wait --facts=$facts
    --read-ahead $ahead --runs-root (runs-root $ctx) --backups-root (app-path $ctx runs/backups))
}

# Release a lock taken with `take` (a lock someone else holds is left alone).
export def give-back [ctx: record, held: record]: nothing -> record {
  hk-config $ctx | hk deployment unlock $ctx.primary --app $ctx.app --root $ctx.root --holder $held.holder
}

# Run `work` holding the app's lock; the lock is released however `work` ends (error, Ctrl-C).
# `work` gets the context with `holding_lock` set, `held` (what `take` gave) and `lock_facts`:
# the primary's facts as the lock read them (one script for both; see `facts-at-start` in deploy.nu).
# When `work` released the lock itself (`finish`), it is not released again. Inside a hook of a
# command holding this app's lock (`HK_LOCK` true, `HK_APP` this app), the lock is already held:
# `work` runs without waiting. The context's `first_reading.resources` are read with the lock, for
# the first phase's plan (see `take`). `meanwhile`: work that needs no host (a build here), run while the
# lock is taken; `work` finds how it ended in the context's `meanwhile`, as `outcome` gives it.
export def holding [ctx: record, message: string, wait: oneof<duration, nothing>, work: closure, --meanwhile: closure]: nothing -> any {
  let inside = ($env.HK_LOCK? == "true") and ($env.HK_APP? == $ctx.app)
  let ctx = $ctx | upsert holding_lock true
  let take_lock = if $inside { {|| null } } else { {|| take $ctx $message $wait --facts --read-ahead=($ctx.first_reading?.resources?) } }
  let done = if $meanwhile == null { [{value: (do $take_lock)}] } else {
    [$take_lock $meanwhile] | par-each --keep-order {|f| outcome $f }
  }
  let ctx = if $meanwhile == null { $ctx } else { $ctx | upsert meanwhile $done.1 }
  if $inside { return (do $work $ctx) }
  # A lock not taken is the error, whatever the other work did.
  let held = unwrap $done.0
  $env.hk_lock_released = false
  try { do --env $work ($ctx | upsert held $held | upsert lock_facts $held.facts) } finally {
    if not $env.hk_lock_released {
      try { give-back $ctx $held | ignore } catch {|e| print -e $"hk: could not release the deploy lock: ($e.msg)" }
    }
  }
}

# How many of an app's newest runs a deploy keeps: those of about its last `retain` deploys (a
# deploy records three or four: prepare, switch, retire with its prune — or a prune of its own).
export def runs-kept [ctx: record]: nothing -> int {
  $ctx.retain * 4
}

# What the end of a deploy that went through does on each host, as `hk deployment finish` takes
# it: the audit entry `action` ok, with `--prune-runs` the app's older runs pruned, and the lock
# released on the primary host — unless a post-deploy hook still has to run with it held
# (`holding` releases it then). Made once, it can ride at the end of the last phase's apply
# (`hk apply --then-finish`) and then be asked for by `finish`.
export def finish-request [ctx: record, action: string, version: oneof<string, nothing>, --prune-runs]: nothing -> record<app: string, root: string, primary: string, entry: record, keep_runs: any, runs_root: string, backups_root: string, holder: any> {
  let held = $ctx.held? | default null
  # The lock is on the primary host, which has to come first among the hosts (not so when
  # --hosts left it out: it is released apart then).
  let release = $held != null and ($ctx.servers | first) == $ctx.primary and not (hooks exists $ctx post-deploy)
  {
    app: $ctx.app
    root: $ctx.root
    primary: $ctx.primary
    entry: (entry $ctx $action ok $version)
    keep_runs: (if $prune_runs { runs-kept $ctx })
    runs_root: (runs-root $ctx)
    backups_root: (app-path $ctx runs/backups)
    holder: (if $release { $held.holder })
  }
}

# The end of a deploy that went through, one script per host (see `finish-request`; `request`:
# one made before, which the last phase's apply may have run already). Progress rows.
export def --env finish [ctx: record, action: string, version: oneof<string, nothing>, --prune-runs, --request: record]: nothing -> table {
  let quiet = $ctx.quiet? | default false
  let started = date now
  let asked = $request | default (finish-request $ctx $action $version --prune-runs=$prune_runs)
  # A flag given null is left out.
  let done = (
    hk-config $ctx
    | hk deployment finish $ctx.servers --app $asked.app --root $asked.root --entry $asked.entry
      --keep-runs $asked.keep_runs --runs-root $asked.runs_root --backups-root $asked.backups_root
      --holder $asked.holder
  )
  if $asked.holder != null { $env.hk_lock_released = true }
  if not $prune_runs { return [] }
  $done | each {|d| progress prune $d.host $"(count $d.runs_removed run) older than the newest ($asked.keep_runs)" ok ((date now) - $started) "" --quiet=$quiet }
}

# Run `work` under the app's lock with the context of a command; audit `action` with its result.
export def under-lock [ctx: record, action: string, version: any, work: closure]: nothing -> table {
  holding $ctx $action null {|ctx|
    try {
      let rows = do $work $ctx
      write $ctx $action ok $version
      $rows
    } catch {|e|
      try { write $ctx $action failed $version (why $e) } catch { }
      fail $"hk app ($action) of ($ctx.app) failed: (why $e)" $ctx.span "the rows above show the host and step that failed"
    }
  } | by-phase
}

# An app's deploy lock: `hk lock status`, `hk lock acquire`, `hk lock release`.
#
# Alone, the list of those commands.
@example "The lock's commands" { hk lock | get command } --result ["hk lock acquire" "hk lock release" "hk lock status"]
export def main []: nothing -> table<command: string, description: string> {
  commands-matching ' lock (status|acquire|release)$'
}

# Who holds an app's deploy lock, since when, and whether its process is provably gone.
@example "Is the app locked?" { hk lock status }
@example "Is production locked?" { hk lock status -d production }
export def "lock status" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
]: nothing -> record<app: string, host: string, locked: bool, holder: any, since: any, age: any, gone: bool> {
  let ctx = load $config $destination "-" (metadata $config).span
  let primary = facts $ctx | where host == $ctx.primary | first
  let since = $primary.locked_at
  {
    app: $ctx.app
    host: $ctx.primary
    locked: ($primary.lock != null)
    holder: $primary.lock
    since: $since
    age: (if $since == null { null } else { (date now) - $since })
    gone: $primary.lock_gone
  }
}

# Take an app's deploy lock by hand, e.g. during maintenance.
#
# Deploys, rollbacks and prunes fail (or wait, with --lock-wait) until it is released.
@example "Hold deploys during maintenance" { hk lock acquire -m "db migration" }
@example "Hold production's deploys, waiting for a deploy to finish" { hk lock acquire -d production --lock-wait 5min }
export def "lock acquire" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --message (-m): string = "" # why, shown to whoever finds it locked
  --lock-wait: duration       # wait this long for a lock someone else holds
]: nothing -> record<host: string, app: string, holder: record> {
  let ctx = load $config $destination "-" (metadata $config).span
  take $ctx $message $lock_wait
}

# Release an app's deploy lock: your own, or anyone's with --force.
#
# Your own is one taken by this user on this machine.
@example "Release the lock you took" { hk lock release }
@example "Break a stuck lock" { hk lock release --force }
export def "lock release" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --force                     # release it whoever holds it
]: nothing -> record<host: string, app: string, released: bool, holder: any> {
  let span = (metadata $config).span
  let ctx = load $config $destination "-" $span
  if $force {
    return (hk-config $ctx | hk deployment unlock $ctx.primary --app $ctx.app --root $ctx.root --force)
  }
  let lock = facts $ctx | where host == $ctx.primary | first | get lock
  if $lock == null {
    return {host: $ctx.primary, app: $ctx.app, released: false, holder: null}
  }
  let mine = ($lock.who? == (whoami)) and ($lock.host? == (sys host | get hostname))
  if not $mine {
    fail $"the deploy lock of ($ctx.app) is held by ($lock.who? | default someone) on ($lock.host? | default '?'), not by you" $span "to break it anyway: hk lock release --force"
  }
  hk-config $ctx | hk deployment unlock $ctx.primary --app $ctx.app --root $ctx.root --holder $lock
}
