# hk's workflows as Nushell commands: zero-downtime deploys behind Caddy and everything around them.
# `use nu-modules/hk` gives `hk setup`, `hk deploy`, `hk redeploy`, `hk rollback`, `hk prune`,
# `hk stale-releases`, `hk versions`, `hk lock status|acquire|release` and `hk audit`, beside the
# plugin's `hk plan`, `hk apply`, ... One file per concern; each command reads its deploy config from
# `config/deploy.nu` (or -c) with an optional destination (-d) merged over it.
use listing.nu [commands-matching]

export use config.nu [main]
export use setup.nu [main]
export use deploy.nu [main redeploy]
export use rollback.nu [main]
export use prune.nu [main stale-releases]
export use versions.nu [main]
export use lock.nu [main "lock status" "lock acquire" "lock release"]
export use audit.nu [main]
export use docs.nu [main]
export use init.nu [main]
export use secrets.nu [main "secrets print" "secrets extract" "secrets fetch" "secrets env"]
export use state.nu ["deploy state"]
export use build.nu [main "build upload" "build deliver" "build details"]
export use merge.nu [main]
export use migrate.nu [main]
export use rpc.nu [main iex]
export use status.nu [main]
export use monitor.nu [main "monitor gatus" "monitor check"]
export use server.nu [main "server bootstrap" "server exec" "server logs"]
export use app.nu [main "app exec" "app version" "app details" "app logs" "app boot" "app stop" "app start" "app maintenance" "app live" "app remove" remove]

# hk's commands, each with what it is for.
#
# Every command named `hk …` in scope: the plugin's (plan, apply, runs, down, …) and these
# workflows. `help hk deploy` (or any of them) shows its flags and examples.
@example "The commands about deploys" { hk | where description =~ deploy }
@example "hk's version" { hk --version }
export def main [
  --version  # hk's version (the plugin's)
]: nothing -> any {
  if $version {
    return (plugin list | where name == hk | get -o 0.version | default unknown)
  }
  commands-matching '^hk '
}
