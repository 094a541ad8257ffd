# Old releases of an app: what would go (`hk stale-releases`) and taking it away (`hk prune`), by the
# same selection — `hk clean` of the app's release folder: all but the newest `retain`, never the live
# release, the one before it, nor one a port's instance may still run.

use config.nu [load app-path hk-config runs-root]
use lock.nu [holding]
use audit.nu [write]
use phases.nu [progress]

# The plan rows that remove the app's stale releases.
export def stale [ctx: record]: nothing -> table {
  hk-config $ctx
  | hk clean $ctx.servers --releases (app-path $ctx) --keep $ctx.retain
  | where action != noop
}

# Remove stale releases (the lock held); progress rows.
export def remove [ctx: record, quiet: bool]: nothing -> table {
  let started = date now
  let rows = stale $ctx
  if ($rows | is-empty) {
    return [(progress prune ($ctx.servers | str join ",") "no stale release" ok ((date now) - $started) "" $quiet)]
  }
  $rows
  | hk apply --confirm --track --runs-root (runs-root $ctx) --backups-root (app-path $ctx runs/backups)
  | each {|e| progress prune $e.host $e.id $e.status $e.duration $e.message $quiet }
  | collect
}

# The releases `hk prune` would remove, as plan rows; nothing is changed.
@example "What a prune would remove" { hk stale-releases | select host name }
export def stale-releases [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span
  let rows = stale $ctx
  if ($rows | is-empty) {
    print -e $"hk stale-releases: nothing to remove on ($ctx.servers | str join ', '): ($ctx.app) keeps its newest ($ctx.retain) releases, the live one and the one before it"
  }
  $rows
}

# Remove an app's old releases from its hosts, keeping `retain`.
#
# Never the live release, the one before it, nor one a port's instance may still run; the same
# selection as `hk stale-releases`. Takes the deploy lock. Progress rows.
@example "Prune the app's hosts" { hk prune }
@example "Prune production, waiting for a deploy to finish" { hk prune -d production --lock-wait 2min }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --lock-wait: duration       # wait this long for a deploy lock someone else holds
  --quiet (-q)                # no progress on stderr
]: nothing -> table<phase: string, host: string, status: string, step: string, duration: duration, message: string, time: datetime> {
  let ctx = load $config $destination "-" (metadata $config).span
  holding $ctx "prune" $lock_wait {
    let rows = remove $ctx $quiet
    write $ctx prune ok null
    $rows
  }
}
