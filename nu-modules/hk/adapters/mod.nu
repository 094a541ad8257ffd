# Vault adapters of `hk secrets fetch`: one file per vault's command line tool. Each returns a record
# `{NAME: value}` from what its tool prints (JSON on stdout); values never pass through a command line.

use ../config.nu [fail]
use run.nu [prefixed]
use onepassword.nu
use bitwarden.nu
use bitwarden_sm.nu
use aws.nu
use gcp.nu
use doppler.nu
use lastpass.nu
use passbolt.nu

# Each adapter: the tool it runs, its vendor's name, and where to get it.
const ADAPTERS = {
  1password: {tool: op, name: "1Password", install: "https://developer.1password.com/docs/cli"}
  bitwarden: {tool: bw, name: "Bitwarden", install: "npm install -g @bitwarden/cli"}
  bitwarden-sm: {tool: bws, name: "Bitwarden Secrets Manager", install: "https://bitwarden.com/help/secrets-manager-cli/"}
  aws: {tool: aws, name: "AWS", install: "https://aws.amazon.com/cli/"}
  gcp: {tool: gcloud, name: "Google Cloud", install: "https://cloud.google.com/sdk/docs/install"}
  doppler: {tool: doppler, name: "Doppler", install: "https://docs.doppler.com/docs/cli"}
  lastpass: {tool: lpass, name: "LastPass", install: "apt install lastpass-cli"}
  passbolt: {tool: passbolt, name: "Passbolt", install: "https://www.passbolt.com/docs/user/cli/"}
}

# Fetch `keys` through `adapter`.
export def fetch [adapter: string, keys: list<string>, account: oneof<string, nothing>, from: oneof<string, nothing>, span: record]: nothing -> record {
  let spec = $ADAPTERS | get -o $adapter
  if $spec == null {
    fail $"unknown secrets adapter ($adapter)" $span $"adapters: ($ADAPTERS | columns | str join ', ')"
  }
  if (which $spec.tool | is-empty) {
    fail $"($spec.name) CLI is not installed \(`($spec.tool)` is not on PATH\)" $span $"install it: ($spec.install)"
  }
  let wanted = prefixed $keys $from
  match $adapter {
    1password => { onepassword fetch $wanted $account $span }
    bitwarden => { bitwarden fetch $wanted $account $span }
    bitwarden-sm => { bitwarden_sm fetch $wanted $account $span }
    aws => { aws fetch $wanted $account $span }
    gcp => { gcp fetch $wanted $account $span }
    doppler => { doppler fetch $keys $account $from $span }
    lastpass => { lastpass fetch $wanted $account $span }
    passbolt => { passbolt fetch $wanted $account $span }
  }
}
