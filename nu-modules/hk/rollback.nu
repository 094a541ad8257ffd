# Back to an earlier release: the same prepare → switch → retire path as a deploy, without building
# or uploading — the release must still be on every host.

use config.nu [load fail facts]
use audit.nu [entries]
use deploy.nu [roll plan-roll deploying running facts-at-start]
use secrets.nu [with-secrets]
use hooks.nu
use phases.nu [by-phase]

# The versions the app's audit log says went live, as a stack: a deploy pushes its version, a
# rollback goes back down to the version it restored. Oldest first.
export def history [log: table]: nothing -> list<string> {
  $log
  | reverse
  | where {|e| ($e.result? in [ok retire_failed]) and ($e.action? in [setup deploy redeploy rollback]) and $e.version? != null }
  | reduce --fold [] {|e, stack|
    let at = $stack | enumerate | where item == $e.version | get -o index | last
    if $e.action == rollback and $at != null {
      $stack | first ($at + 1)
    } else if ($stack | is-not-empty) and ($stack | last) == $e.version {
      $stack
    } else {
      $stack | append $e.version
    }
  }
}

# The version before `live` in the deploy history, or null.
export def previous [stack: list<string>, live: oneof<string, nothing>]: nothing -> any {
  let at = $stack | enumerate | where item == $live | get -o index | last
  if $at == null or $at == 0 { null } else { $stack | get ($at - 1) }
}

# The release a rollback goes to: `version`, else the one before the live one in the deploy
# history; refused when a host lacks it or it is live everywhere already.
def target-of [ctx: record, version: oneof<string, nothing>, span: record]: nothing -> string {
  let state = facts-at-start $ctx
  let live = $state | where host == $ctx.primary | get -o 0.current
  let target = if $version != null { $version } else {
    let stack = history (entries $ctx)
    let found = previous $stack $live
    if $found == null {
      let known = $state | get releases | flatten | get -o version | uniq | str join ", "
      fail $"no release before ($live | default 'nothing') in the deploy history of ($ctx.app)" $span $"name one: hk rollback VERSION \(on the hosts: ($known)\)"
    }
    $found
  }
  let lacking = $state | where {|f| $target not-in ($f.releases | get -o version) }
  if ($lacking | is-not-empty) {
    let have = $lacking | each {|f| $"($f.host): ($f.releases | get -o version | str join ' ')" } | str join "; "
    fail $"release ($target) is not on every host of ($ctx.app) \(($have)\)" $span "roll back to a release every host has, or deploy it again"
  }
  if $target == $live and ($state | all {|f| $f.current == $target }) {
    fail $"($target) is already live on every host of ($ctx.app)" $span
  }
  $target
}

# Roll the app back to VERSION, or to the release before the live one.
#
# Without VERSION, the release before the live one in the app's deploy history (its audit log, never
# file dates); each rollback goes one further back. The release must still be on every host: it starts
# beside the live one, traffic switches once every host is healthy, the old instance is retired.
# Its hooks are a deploy's but pre-build and post-build: see `hk docs hooks`.
@example "Back to the previous release" { hk rollback }
@example "Back to a given release" { hk rollback 3f2a9c1 -d production }
export def main [
  version?: string            # the release to go back to (default: the one before the live one)
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --plan-only                 # every phase's plan rows; nothing on the hosts changes
  --lock-wait: duration       # wait this long for a deploy lock someone else holds
  --message (-m): string = "" # recorded in the lock while it runs
  --quiet (-q)                # no progress on stderr
  --skip-hooks (-H)           # run none of the project's hooks (.hk/hooks)
  --allow-empty-secrets       # accept secrets whose value is empty
]: nothing -> table {
  let span = (metadata $version).span
  let ctx = running (load $config $destination "-" $span --roles=$roles --hosts=$hosts) rollback --quiet=$quiet --skip-hooks=$skip_hooks
  let ctx = with-secrets ($ctx | upsert version ($version | default "-")) --allow-empty=$allow_empty_secrets
  if $plan_only {
    let target = target-of $ctx $version $span
    return (plan-roll ($ctx | upsert version $target) $target null)
  }
  # A rollback builds nothing: no pre-build or post-build hook. It reads the hosts only once the
  # pre-connect hook ran.
  deploying $ctx $message $lock_wait {|ctx|
    let target = target-of $ctx $version $span
    let ctx = $ctx | upsert version $target
    hooks fire $ctx pre-deploy
    roll $ctx $target null rollback
  } | by-phase
}
