# Old releases of an app: what would go (`hk stale-releases`) and taking it away (`hk prune`), by the
# same selection — `hk clean` of the app's release folder: all but the newest `retain`, never the live
# release, the one before it, nor one a port's instance may still run.

use config.nu [load app-path hk-config runs-root count made-by]
use lock.nu [holding runs-kept]
use audit.nu [write]
use phases.nu [progress]

# The plan rows that remove the app's stale releases.
export def stale [ctx: record]: nothing -> table {
  hk-config $ctx
  | hk clean $ctx.servers --releases (app-path $ctx) --keep $ctx.retain --made-by (made-by $ctx prune)
  | where action != noop
}

# Remove stale releases, then old runs (the lock held); progress rows.
export def remove [ctx: record]: nothing -> table {
  remove-releases $ctx | append (remove-runs $ctx)
}

# Remove stale releases (the lock held); progress rows.
export def remove-releases [ctx: record]: nothing -> table {
  let quiet = $ctx.quiet? | default false
  let started = date now
  let rows = stale $ctx
  let releases = if ($rows | is-empty) {
    [(progress prune ($ctx.servers | str join ",") "no stale release" ok ((date now) - $started) "" --quiet=$quiet)]
  } else {
    $rows
    | hk apply --confirm --track --runs-root (runs-root $ctx) --backups-root (app-path $ctx runs/backups)
    | each {|e| progress prune $e.host $e.id $e.status $e.duration $e.message --quiet=$quiet }
    | collect
  }
  $releases
}

# Remove the app's older run records with their plans and backups, so the way back of a release
# pruned long ago does not keep its artifact (a hard link in the backups) on disk for ever.
def remove-runs [ctx: record]: nothing -> table {
  let quiet = $ctx.quiet? | default false
  let started = date now
  let keep = runs-kept $ctx
  hk-config $ctx
  | hk runs $ctx.servers --runs-root (runs-root $ctx) --backups-root (app-path $ctx runs/backups) --all-projects --prune --keep $keep
  | group-by --to-table host
  | each {|g| progress prune $g.host $"(count ($g.items | length) run) older than the newest ($keep)" ok ((date now) - $started) "" --quiet=$quiet }
}

# The releases a prune removes from each host once `version` is live on `port` and the old
# instance retired, from the `facts` read before the deploy (the same choice as `hk clean`'s):
# {host: [version]}. Nothing is read.
export def stale-after [ctx: record, facts: table, version: string, port: int]: nothing -> record {
  $facts | each {|f|
    let releases = $f.releases | select version unpacked_at
    let releases = if $version in ($releases | get -o version) { $releases } else { $releases | append {version: $version, unpacked_at: (date now)} }
    let linked = $f.ports | where port != $port | get -o version | append $version
    {$f.host: ($releases | hk release stale --keep $ctx.retain --current $version --linked $linked)}
  } | into record
}

# Resources taking `versions` of the app away (their folders, then their artifacts).
export def releases-absent [ctx: record, versions: list<string>]: nothing -> list {
  $versions | each {|v| {type: release, name: $ctx.app, version: $v, root: $ctx.root, state: absent} }
}

# The releases `hk prune` would remove, as plan rows; nothing is changed.
@example "What a prune would remove" { hk stale-releases | select host name }
export def stale-releases [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> table {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let rows = stale $ctx
  if ($rows | is-empty) {
    print -e $"hk stale-releases: nothing to remove on ($ctx.servers | str join ', '): ($ctx.app) keeps its newest ($ctx.retain) releases, the live one and the one before it"
  }
  $rows
}

# Remove an app's old releases from its hosts, keeping `retain`.
#
# Never the live release, the one before it, nor one a port's instance may still run; the same
# selection as `hk stale-releases`. Takes the deploy lock. Progress rows. Storage is never
# touched: see `hk docs storage`.
@example "Prune the app's hosts" { hk prune }
@example "Prune production, waiting for a deploy to finish" { hk prune -d production --lock-wait 2min }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --lock-wait: duration       # wait this long for a deploy lock someone else holds
  --quiet (-q)                # no progress on stderr
]: nothing -> table<phase: string, host: string, status: string, step: string, duration: duration, message: string, time: datetime> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  holding $ctx "prune" $lock_wait {|ctx|
    let rows = remove $ctx
    write $ctx prune ok null
    $rows
  }
}
