# Zero-downtime blue-green deploys behind Caddy. Under the app's lock: build the release here, then
# on every host at once PREPARE it beside the live one (upload, environment, its own port, started,
# healthy); only when every host is healthy, SWITCH every host (Caddy validated and reloaded, the new
# release checked through Caddy, `current` and `active_port` flipped); then RETIRE the old instance
# (drained, stopped), prune old releases and write the audit log. A host failing to prepare stops the
# new instances and nothing switches anywhere; a host failing to switch makes every host go back to
# the release that was live (its instance still runs). Every phase is an hk plan applied as a tracked
# run of the app, so each has a record on the hosts and a way back.

use config.nu [load fail why facts app-path hk-config count runs-root]
use lock.nu [holding finish finish-request]
use errors.nu [unwrap]
use audit.nu [write]
use secrets.nu [with-secrets]
use hooks.nu
use phases.nu [prepare stage switch switch-back retire abandon boot-role apply-phase apply-by-roles one-plan plan-phase plan-by-roles progress progress-line by-phase]
use roles.nu [batches proxied roles-of]
use prune.nu [remove-releases stale-after releases-absent]
use mix.nu
use migrate.nu

# Build the release here: the config's `release.build` command (run in the project folder with
# HK_VERSION and HK_APP set), a Mix release's `mix release`, then `hk release build` of
# `release.path`. The artifact and a progress row.
export def build [ctx: record]: nothing -> record {
  let quiet = $ctx.quiet? | default false
  let started = date now
  let command = $ctx.release.build? | default ""
  if $command != "" {
    let run = with-env {HK_VERSION: $ctx.version, HK_APP: $ctx.app} {
      if $quiet {
        do { cd $ctx.project; ^sh -c $command } | complete
      } else {
        # A build can take a while: its own output shows as it goes, on stderr.
        print -e (progress-line "" build local "" $"running `($command)` in ($ctx.project)")
        let code = try { do { cd $ctx.project; ^sh -c $"exec 1>&2\n($command)" }; 0 } catch {|e| $e.exit_code? | default 1 }
        {exit_code: $code, stderr: "its output is above"}
      }
    }
    if $run.exit_code != 0 {
      let said = if ($run.stderr | str trim | is-empty) { $run.stdout? | default "" } else { $run.stderr }
      let tail = $said | lines | last 5 | str join "\n"
      fail $"the build of ($ctx.app) ($ctx.version) failed \(exit ($run.exit_code)\): ($tail)" $ctx.span $"run it by hand in ($ctx.project) to see why: ($command)"
    }
  }
  if (mix is-mix $ctx) { mix build $ctx }
  if not ($ctx.release.path | path exists) {
    fail $"release.path ($ctx.release.path) does not exist" $ctx.span "build it first (release.build), or point release.path at the folder to deploy"
  }
  let cache = cache-of $ctx
  mkdir $cache
  let built = hk release build $ctx.release.path --name $ctx.app --version $ctx.version --out-dir $cache
  let size = $built.size | into string
  {
    artifact: $built.manifest
    row: (progress build local $"release ($ctx.version)" ok ((date now) - $started) $"(count ($built.files | length) file), ($size)" --quiet=$quiet)
  }
}

# Where built releases of the context's app are kept on this machine (`<app>-<version>.tar.gz`
# and its manifest `.json`).
export def cache-of [ctx: record]: nothing -> string {
  $env.XDG_CACHE_HOME? | default ($env.HOME | path join .cache) | path join hk releases $ctx.app
}

# A release already built (`hk build`) or on every host: its artifact manifest here, or null when
# only the hosts have it; an error naming what is missing otherwise.
export def prebuilt [ctx: record]: nothing -> any {
  let manifest = cache-of $ctx | path join $"($ctx.app)-($ctx.version).json"
  if ($manifest | path exists) { return $manifest }
  let lacking = facts $ctx | where {|f| $ctx.version not-in ($f.releases | get -o version | default []) } | get host
  if ($lacking | is-not-empty) {
    fail $"release ($ctx.version) of ($ctx.app) is neither built here nor on ($lacking | str join ', ')" $ctx.span $"build and upload it first: hk build deliver --version ($ctx.version)"
  }
  null
}

# Hosts must have been set up (`hk setup`): Caddy installed and importing every app's site.
export def check-hosts [ctx: record, facts: table]: nothing -> nothing {
  let missing = $facts | where {|f| not ($f.caddy.installed and $f.caddy.imports) } | get host
  if ($missing | is-not-empty) {
    fail $"host\(s\) not set up for hk deploys: ($missing | str join ', ') \(Caddy missing, or its main file does not import ($ctx.root)/*/Caddyfile\)" $ctx.span $"run `hk setup` first \(it installs Caddy, adds the import and deploys\)"
  }
}

# The live port (every host must agree), the free one the new release starts on, and the live version.
export def ports [ctx: record, facts: table]: nothing -> record {
  let actives = $facts | where active_port != null | get active_port | uniq
  if ($actives | length) > 1 {
    let seen = $facts | each {|f| $"($f.host): ($f.active_port | default none)" } | str join ", "
    fail $"the hosts of ($ctx.app) disagree on the live port \(($seen)\)" $ctx.span "roll back or deploy to one host at a time until they agree"
  }
  let old = $actives | get -o 0
  let base = $ctx.proxy.app_port
  let new = if $old == $base { $base + 1 } else { $base }
  for f in $facts {
    let taken = $f.claims | where port in [$base ($base + 1)]
    if ($taken | is-not-empty) {
      let other = $taken | first
      fail $"port ($other.port) on host ($f.host) belongs to app ($other.app)" $ctx.span $"give ($ctx.app) other ports: proxy.app_port \(it uses app_port and app_port + 1\)"
    }
  }
  let primary = $facts | where host == $ctx.primary | get -o 0
  {old: $old, new: $new, live: ($primary.current? | default null)}
}

# Stop the new instances of the proxied roles on `prepared` and switch `switched` back to what was
# live (its instances still run); what the way back says of itself.
def way-back [ctx: record, p: record, switched: list<string>, prepared: list<string>]: nothing -> string {
  let back = if ($switched | is-empty) { "" } else {
    try {
      apply-phase ($ctx | update servers $switched) "back" (switch-back $ctx $p.old $p.live) | ignore
      $"every host is back on ($p.live | default 'no release')"
    } catch {|e| $"switching back failed too: (why $e)" }
  }
  try {
    apply-by-roles $ctx abandon $prepared {|rc| if (proxied $rc $rc.role) { abandon $rc $p.new } else { [] } } | ignore
  } catch {|e| print -e $"hk: stopping the new instances failed too: (why $e)" }
  $back
}

# Hosts running a role that is not behind Caddy.
def role-hosts [ctx: record]: nothing -> list<string> {
  $ctx.servers | where {|h| roles-of $ctx $h | any {|r| not (proxied $ctx $r) } }
}

# The hooks that run between taking the lock and the first phase: a command of theirs may change
# what the lock's reading saw.
const HOOKS_BEFORE_ROLL = [pre-build post-build pre-deploy]

# The app's facts at the start of a roll: the primary's as the lock read them (taken and read in
# one script, `lock_facts`), unless a hook ran since; the other hosts' read now. Rows in the order
# of the context's servers, as `facts` gives them. A step that changes the hosts between the lock
# and the roll (setup's bootstrap) drops `lock_facts`.
export def facts-at-start [ctx: record]: nothing -> table {
  let known = $ctx.lock_facts? | default null
  let hooked = $HOOKS_BEFORE_ROLL | any {|h| hooks exists $ctx $h }
  if $known == null or $hooked or $known.host not-in $ctx.servers { return (facts $ctx) }
  let rest = $ctx.servers | where $it != $known.host
  let ahead = $ctx.first_reading?.resources?
  let read = if ($rest | is-empty) { [] } else if $ahead != null and ($rest | all {|h| $h in (batches $ctx | first) }) {
    # Those hosts' first reading too, in the same script (see `first-reading`).
    (hk-config $ctx | hk deployment facts $rest --app $ctx.app --root $ctx.root --read-ahead (hk-config $ctx | insert resources $ahead)
      --runs-root (runs-root $ctx) --backups-root (app-path $ctx runs/backups))
  } else { facts ($ctx | update servers $rest) }
  $ctx.servers | each {|h| if $h == $known.host { $known } else { $read | where host == $h | first } }
}

# Prepare and switch to `version` batch by batch (`boot`; without it, every host behind Caddy at
# once), then the roles not behind Caddy, then retire the old instances; with the way back when a
# step fails (every batch already switched goes back; their old instances run until the end).
# `artifact`: the release to upload, or null when the hosts have it. Then prune (`prune`) and the
# audit entry `action`. The lock is held. Progress rows.
export def --env roll [ctx: record, version: string, artifact: oneof<string, nothing>, action: string, --prune]: nothing -> table {
  let ctx = $ctx | upsert doing $"($action) ($version)"
  let state = facts-at-start $ctx
  check-hosts $ctx ($state | where host in $ctx.web)
  let p = ports $ctx $state
  let batches = batches $ctx
  let n = $batches | length
  let failed = {|e, text|
    try { write $ctx $action failed $version $"($text): (why $e)" } catch {|e2| print -e $"hk: the audit log could not be written: (why $e2)" }
  }
  # A migration runs once, on the primary host, in the new release after the first batch's
  # prepare and before any switch (never in a rollback, where the old code meets the new schema,
  # nor in a restart of what runs).
  let migration = if $action in [rollback boot] { null } else { $ctx.release.migrate? | default null }
  # Hosts that run no proxied role get the release first (nothing starts there yet), and so does
  # the primary host when a migration needs the release there before its own batch.
  let early = if $migration != null and $ctx.primary in $ctx.web and $ctx.primary not-in ($batches | first) { [$ctx.primary] } else { [] }
  let stage_only = $ctx.servers | where $it not-in $ctx.web | append $early
  let retiring = $p.old != null and $p.old != $p.new
  # The prune rides in the retire phase where there is one: each host's stale releases, from the
  # reading at the start as it is once this deploy is done, go in the same plan (hosts alike in
  # them share one).
  let stale = if $prune and $retiring { stale-after $ctx ($state | where host in $ctx.web) $version $p.new } else { {} }
  let retire_groups = $ctx.web | group-by --to-table {|h| $stale | get -o $h | default [] | to nuon }
  let retire_of = {|gone|
    # First in the list, so that among the removals they come last (apply removes in reverse
    # order): a release that cannot go leaves the retire itself done.
    {|rc| if (proxied $rc $rc.role) { releases-absent $rc $gone | append (retire $rc $p.old) } else { [] } }
  }
  # Where no hook runs between two phases on the same hosts, the first reads ahead for the
  # second: the prepare for its switch, the last switch for the retire (one plan for every host).
  let switch_ahead = not (hooks exists $ctx post-app-boot) and not (hooks exists $ctx pre-proxy-reload)
  let retire_ahead = if $retiring and ($retire_groups | length) == 1 and not (hooks exists $ctx post-proxy-reload) {
    let gone = $stale | get -o ($ctx.web | first) | default []
    one-plan ($ctx | update servers $ctx.web) $ctx.web (do $retire_of $gone)
  }
  let switch_resources = switch $ctx $p.new $version
  let staged = try {
    apply-by-roles $ctx prepare $stage_only {|rc| stage $rc $p.new $version $artifact }
  } catch {|e|
    do $failed $e "prepare failed"
    fail $"($action) of ($ctx.app) ($version) failed; nothing was switched, ($p.live | default 'nothing') still serves: (why $e)" $ctx.span "the rows above show the host and step that failed; fix it and deploy again"
  }
  mut rows = $staged
  mut switched = []
  mut prepared = []
  for batch in ($batches | enumerate) {
    let hosts = $batch.item
    let which = if $n == 1 { "" } else { $" in batch ($batch.index + 1) of ($n) \(($hosts | str join ', ')\)" }
    let bctx = $ctx | update servers $hosts
    let switched_before = $switched
    let prepared_now = $prepared | append $hosts
    let booted = try {
      hooks fire $ctx pre-app-boot {hosts: $hosts}
      let migrates = $batch.index == 0 and $migration != null
      let ahead = if $switch_ahead and not $migrates { $switch_resources }
      # The first batch's plan, as `first-reading` made it, when it is of this release.
      let first = $ctx.first_reading? | default null
      let known = if $batch.index == 0 and $first != null and $first.artifact == $artifact { $first.ports | get -o ($p.new | into string) }
      let done = if $known != null { apply-phase $bctx prepare $known --read-ahead=$ahead } else {
        apply-by-roles $bctx prepare $hosts --read-ahead=$ahead {|rc|
          if (proxied $rc $rc.role) { prepare $rc $p.new $version $artifact } else { stage $rc $p.new $version $artifact }
        }
      }
      let migrated = if $migrates { [(migrate run-in $ctx $p.new $migration)] } else { [] }
      hooks fire $ctx post-app-boot {hosts: $hosts}
      $done | append $migrated
    } catch {|e|
      let back = way-back $ctx $p $switched_before $prepared_now
      do $failed $e $"prepare failed($which)"
      if ($switched_before | is-empty) {
        fail $"($action) of ($ctx.app) ($version) failed($which); nothing was switched, ($p.live | default 'nothing') still serves: (why $e)" $ctx.span "the rows above show the host and step that failed; fix it and deploy again"
      }
      fail $"($action) of ($ctx.app) ($version) failed($which) while preparing; ($back): (why $e)" $ctx.span "the rows above show the host and step that failed"
    }
    let flipped = try {
      hooks fire $ctx pre-proxy-reload {hosts: $hosts}
      let ahead = if $batch.index == $n - 1 { $retire_ahead }
      let done = apply-phase $bctx switch $switch_resources --read-ahead=$ahead
      hooks fire $ctx post-proxy-reload {hosts: $hosts}
      $done
    } catch {|e|
      let back = way-back $ctx $p ($switched_before | append $hosts) $prepared_now
      do $failed $e $"switch failed($which)"
      fail $"($action) of ($ctx.app) ($version) failed($which) while switching; ($back): (why $e)" $ctx.span "the rows above show the host and step that failed"
    }
    $rows = ($rows | append $booted | append $flipped)
    $switched = ($switched_before | append $hosts)
    $prepared = $prepared_now
    if $batch.index < ($n - 1) and ($ctx.boot?.wait? | default 0sec) > 0sec { sleep $ctx.boot.wait }
  }
  # The other roles start their new release beside the old once every proxied host switched.
  let others = role-hosts $ctx
  let roles_booted = try {
    apply-by-roles $ctx boot $others {|rc| if (proxied $rc $rc.role) { [] } else { boot-role $rc $p.new $p.old $version } }
  } catch {|e|
    try {
      apply-by-roles $ctx abandon $others {|rc| if (proxied $rc $rc.role) { [] } else { abandon $rc $p.new } } | ignore
    } catch {|e2| print -e $"hk: stopping the new instances failed too: (why $e2)" }
    do $failed $e "boot of the roles not behind Caddy failed"
    fail $"($version) is live behind Caddy, but starting the other roles failed \(their old instances still run\): (why $e)" $ctx.span "the rows above show the host and step that failed; fix it and deploy again"
  }
  # The end of the deploy rides at the end of each host's retire (one leg less), made once here
  # so that `finish` finds it done there.
  let end = finish-request $ctx $action $version --prune-runs=$prune
  let retired = if not $retiring { [] } else {
    try {
      if $retire_ahead != null {
        # One plan for every host behind Caddy, made above.
        apply-phase ($ctx | update servers $ctx.web) retire $retire_ahead --then-finish=$end
      } else {
        $retire_groups | each {|g|
          let gone = $stale | get -o ($g.items | first) | default []
          apply-by-roles ($ctx | update servers $g.items) retire $g.items (do $retire_of $gone) --then-finish=$end
        } | flatten
      }
    } catch {|e|
      try { write $ctx $action retire_failed $version } catch { }
      fail $"($version) is live on every host, but retiring the old instance on port ($p.old) failed: (why $e)" $ctx.span $"stop it by hand once it is idle: systemctl stop hk-($ctx.app)@($p.old)"
    }
  }
  # The hosts no retire phase pruned.
  let unpruned = if $retiring { $ctx.servers | where $it not-in $ctx.web } else { $ctx.servers }
  let pruned = if $prune and ($unpruned | is-not-empty) {
    try { remove-releases ($ctx | update servers $unpruned) } catch {|e|
      print -e $"hk: pruning old releases failed \(the deploy itself is done\): (why $e)"
      []
    }
  } else { [] }
  let finished = finish $ctx $action $version --prune-runs=$prune --request $end
  [$rows $roles_booted $retired $pruned $finished] | flatten
}

# The plan rows of every phase of a deploy to `version`, with a `phase` column; nothing is changed.
export def plan-roll [ctx: record, version: string, artifact: oneof<string, nothing>]: nothing -> table {
  let state = facts $ctx
  check-hosts $ctx ($state | where host in $ctx.web)
  let p = ports $ctx $state
  let retiring = if $p.old == null or $p.old == $p.new { [] } else {
    plan-by-roles $ctx retire $ctx.web {|rc| if (proxied $rc $rc.role) { retire $rc $p.old } else { [] } }
  }
  [
    (plan-by-roles $ctx prepare $ctx.servers {|rc| if (proxied $rc $rc.role) { prepare $rc $p.new $version $artifact } else { stage $rc $p.new $version $artifact } })
    (if ($ctx.web | is-empty) { [] } else { plan-phase ($ctx | update servers $ctx.web) switch (switch $ctx $p.new $version) })
    (plan-by-roles $ctx boot (role-hosts $ctx) {|rc| if (proxied $rc $rc.role) { [] } else { boot-role $rc $p.new $p.old $version } })
    $retiring
  ] | flatten
}

# Run `work` (given the context) the way every deploying command does: secrets loaded, the
# `pre-connect` hook, the lock taken, then `post-deploy` (with the lock still held, and the runtime)
# once `work` went through (its `roll` ends with `finish`, which releases the lock when no
# post-deploy hook is left to run). A failure before anything was prepared is in the audit log too.
# `meanwhile`: work needing no host, done while the lock is taken (see `holding`).
export def deploying [ctx: record, message: string, wait: oneof<duration, nothing>, work: closure, --meanwhile: closure]: nothing -> table {
  let started = date now
  hooks fire $ctx pre-connect
  holding $ctx $message $wait --meanwhile=$meanwhile {|ctx|
    # --env: a `finish` in `work` may have released the lock (`holding` then does not).
    let rows = do --env $work $ctx
    let runtime = ((date now) - $started) / 1sec | math floor
    hooks fire $ctx post-deploy {runtime: $runtime}
    $rows
  }
}

# Hooks and the build before a roll: pre-build, the build, post-build, pre-deploy. A failure is
# written to the audit log (nothing was touched on the hosts) and raised. A build done while the
# lock was taken (`early-build`) is in the context's `meanwhile`.
export def before-roll [ctx: record, action: string]: nothing -> record {
  try {
    let built = if ($ctx.skip_build? | default false) {
      {artifact: (prebuilt $ctx), row: (progress build local $"release ($ctx.version)" ok 0sec "built before \(--skip-build\)" --quiet=($ctx.quiet? | default false))}
    } else if ($ctx.meanwhile? != null) {
      unwrap $ctx.meanwhile
    } else {
      hooks fire $ctx pre-build
      let built = build $ctx
      hooks fire $ctx post-build
      $built
    }
    hooks fire $ctx pre-deploy
    $built
  } catch {|e|
    try { write $ctx $action failed $ctx.version (why $e) } catch {|e2| print -e $"hk: the audit log could not be written: (why $e2)" }
    error make {msg: $"($action) of ($ctx.app) ($ctx.version) stopped before anything changed on the hosts: (why $e)", label: {text: "here", span: $ctx.span}, inner: [$e]}
  }
}

# The build, when it can run while the lock is taken: it needs no host, and no pre-build or
# post-build hook has to run around it with the lock held. Null otherwise.
def early-build [ctx: record]: nothing -> oneof<closure, nothing> {
  if ($ctx.skip_build? | default false) or (hooks exists $ctx pre-build) or (hooks exists $ctx post-build) { return null }
  {|| build $ctx }
}

# What every deploying command adds to its context: which command it is and how it runs.
export def running [ctx: record, command: string, --quiet, --skip-hooks]: nothing -> record {
  $ctx | merge {command: $command, subcommand: $command, quiet: $quiet, skip_hooks: $skip_hooks}
}

# What the first phase on the hosts of the first batch reads, to be read with the lock on the
# primary (`holding`) and with the facts on the others (`facts-at-start`), when nothing runs there
# in between (no hook before the roll or the first boot, the primary in the first batch, every
# host of it alike): the prepare on either port, as the facts read with it decide which, of the
# release as it will be built (only its paths are read). {artifact, ports: {PORT: resources},
# resources: both ports' together}, or null. The roll applies the one its port needs.
def first-reading [ctx: record]: nothing -> oneof<record, nothing> {
  let hooked = [pre-build post-build pre-deploy pre-app-boot] | any {|h| hooks exists $ctx $h }
  if $hooked or ($ctx.web | is-empty) or $ctx.primary not-in (batches $ctx | first) { return null }
  # Built here, or (--skip-build) already on the hosts when not here.
  let manifest = cache-of $ctx | path join $"($ctx.app)-($ctx.version).json"
  let artifact = if ($ctx.skip_build? | default false) and not ($manifest | path exists) { null } else { $manifest }
  let first = batches $ctx | first
  let base = $ctx.proxy.app_port
  # One plan of both ports, split again by port (the resources of a port name it).
  let both = one-plan ($ctx | update servers $first) $first {|rc|
    [$base ($base + 1)] | each {|port|
      let resources = if (proxied $rc $rc.role) { prepare $rc $port $ctx.version $artifact } else { stage $rc $port $ctx.version $artifact }
      $resources | each {|r| {port: $port, resource: $r} }
    } | flatten
  }
  if $both == null { return null }
  let on_port = {|port| $both | where port == $port | get resource | uniq }
  {
    artifact: $artifact
    ports: {($base | into string): (do $on_port $base), ($base + 1 | into string): (do $on_port ($base + 1))}
    resources: ($both | get resource | uniq)
  }
}

# Build, then deploy under the lock: the shared body of deploy and redeploy.
def deploy-with [ctx: record, action: string, message: string, wait: oneof<duration, nothing>, --prune, --plan-only, --allow-empty]: nothing -> table {
  let ctx = with-secrets $ctx --allow-empty=$allow_empty
  if $plan_only {
    let artifact = if ($ctx.skip_build? | default false) { prebuilt $ctx } else { (build ($ctx | upsert quiet true)).artifact }
    return (plan-roll $ctx $ctx.version $artifact)
  }
  let ctx = $ctx | upsert first_reading (first-reading $ctx)
  deploying $ctx $message $wait --meanwhile=(early-build $ctx) {|ctx|
    let built = before-roll $ctx $action
    [$built.row] | append (roll $ctx $ctx.version $built.artifact $action --prune=$prune)
  } | by-phase
}

# Deploy the app with zero downtime, on every host at once.
#
# Builds the release, starts it beside the live one on every host, switches traffic to it once every
# host is healthy, retires the old instance, prunes old releases and writes the audit log — under the
# app's deploy lock. One row per phase and host: {phase, host, status, steps, duration}; every step is
# in `steps` ({status, step, duration, message, time}): `hk deploy | get steps | flatten`.
# See `hk docs config`, `hk docs hooks`, `hk docs secrets`, `hk docs storage`.
@example "Deploy the project's app (config/deploy.nu)" { hk deploy }
@example "Deploy a version to production" { hk deploy -d production --version 1.4.2 }
@example "What a deploy would change, phase by phase" { hk deploy --plan-only | where action != noop | select phase host action id }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config (config/deploy.<name>.nu)
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --version: string           # version to deploy (default: the git short sha, -dirty when changed, else a UTC timestamp)
  --plan-only                 # every phase's plan rows (with a phase column); nothing on the hosts changes
  --lock-wait: duration       # wait this long for a deploy lock someone else holds
  --message (-m): string = "" # recorded in the lock while the deploy runs
  --quiet (-q)                # no progress on stderr
  --skip-hooks (-H)           # run none of the project's hooks (.hk/hooks)
  --allow-empty-secrets       # accept secrets whose value is empty
  --skip-build                # deploy --version as built before (hk build: here, or on every host)
]: nothing -> table {
  if $skip_build and $version == null {
    fail "--skip-build deploys a release built before: name it with --version" (metadata $config).span "e.g. hk build deliver --version 1.4.2 in CI, then hk deploy --version 1.4.2 --skip-build"
  }
  let ctx = running (load $config $destination $version (metadata $config).span --roles=$roles --hosts=$hosts) deploy --quiet=$quiet --skip-hooks=$skip_hooks | upsert skip_build $skip_build
  deploy-with $ctx deploy $message $lock_wait --prune --plan-only=$plan_only --allow-empty=$allow_empty_secrets
}

# Deploy like `hk deploy`, without pruning old releases afterwards.
#
# See `hk docs hooks` and `hk docs secrets`.
@example "Deploy again, keeping every release" { hk redeploy }
@example "Deploy production again, keeping every release" { hk redeploy -d production }
export def redeploy [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config (config/deploy.<name>.nu)
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --version: string           # version to deploy (default: the git short sha, -dirty when changed, else a UTC timestamp)
  --plan-only                 # every phase's plan rows (with a phase column); nothing on the hosts changes
  --lock-wait: duration       # wait this long for a deploy lock someone else holds
  --message (-m): string = "" # recorded in the lock while the deploy runs
  --quiet (-q)                # no progress on stderr
  --skip-hooks (-H)           # run none of the project's hooks (.hk/hooks)
  --allow-empty-secrets       # accept secrets whose value is empty
]: nothing -> table {
  let ctx = running (load $config $destination $version (metadata $config).span --roles=$roles --hosts=$hosts) redeploy --quiet=$quiet --skip-hooks=$skip_hooks
  deploy-with $ctx redeploy $message $lock_wait --plan-only=$plan_only --allow-empty=$allow_empty_secrets
}
