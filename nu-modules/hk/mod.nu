# hk's workflows as Nushell commands: zero-downtime deploys behind Caddy and everything around them.
# `use nu-modules/hk` gives `hk setup`, `hk deploy`, `hk redeploy`, `hk rollback`, `hk prune`,
# `hk stale-releases`, `hk versions`, `hk lock status|acquire|release` and `hk audit`, beside the
# plugin's `hk plan`, `hk apply`, ... One file per concern; each command reads its deploy config from
# `config/deploy.nu` (or -c) with an optional destination (-d) merged over it.

export use config.nu [main]
export use setup.nu [main]
export use deploy.nu [main redeploy]
export use rollback.nu [main]
export use prune.nu [main stale-releases]
export use versions.nu [main]
export use lock.nu ["lock status" "lock acquire" "lock release"]
export use audit.nu [main]
