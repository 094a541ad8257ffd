# The secrets of a deploy: `.hk/secrets-common`, then `.hk/secrets` (or `.hk/secrets.<destination>`)
# beside `config/`, read here by `hk dotenv` (later files win; a file's value beats the environment),
# then the deploying shell's environment. Only the commands that need them load them. Values go to
# hosts only inside the env file's script on stdin; everything else sees `(redacted)`.

use listing.nu [commands-matching]
use config.nu [load fail]
use adapters

# The files a deploy reads its secrets from, in order.
export def files [ctx: record]: nothing -> list<string> {
  let dir = $ctx.project | path join .hk
  let own = if $ctx.destination == null { "secrets" } else { $"secrets.($ctx.destination)" }
  [($dir | path join secrets-common) ($dir | path join $own)]
}

# The config's `env.secret` entries: `KEY` (the app's variable and the secret's name) or `KEY:FROM`.
export def wanted [ctx: record]: nothing -> table<key: string, from: string> {
  $ctx.env.secret | each {|s|
    let parts = $s | split row ":"
    {key: ($parts | first), from: ($parts | last)}
  }
}

# What every role of the config wants (its own `env.secret` and the app's).
export def every-wanted [ctx: record]: nothing -> table<key: string, from: string> {
  $ctx.role_specs? | default {web: {env: $ctx.env}} | values | each {|s| wanted {env: $s.env} } | flatten | uniq
}

# Every secret the files define (rows key, value, file, line), then what the config wants from the
# environment; `{values: {FROM: value}, sources: {FROM: file}}` for what the config wants. A secret
# missing everywhere, or empty (unless `allow_empty`), is an error naming it and the files looked in.
export def resolve [ctx: record, --allow-empty]: nothing -> record {
  let paths = files $ctx
  let defined = try { hk dotenv ...$paths } catch {|e|
    fail $"reading the secrets files failed: ($e.msg)" $ctx.span "fix the line it names (see `hk docs secrets`)"
  }
  let looked = $paths | each {|p| if ($p | path exists) { $p } else { $"($p) \(missing\)" } } | str join ", "
  let found = every-wanted $ctx | get from | uniq | each {|name|
    let row = $defined | where key == $name | get -o 0
    if $row != null {
      {name: $name, value: $row.value, file: $row.file}
    } else if ($env | get -o $name) != null {
      {name: $name, value: ($env | get $name | into string), file: "(environment)"}
    } else {
      {name: $name, value: null, file: null}
    }
  }
  let missing = $found | where value == null | get name
  if ($missing | is-not-empty) {
    fail $"secret ($missing | str join ', ') not found: not in ($looked), nor in the environment" $ctx.span $"add it to one of those files \(($missing | first)=...\) or set $env.($missing | first)"
  }
  let empty = $found | where value == "" | get name
  if ($empty | is-not-empty) and not $allow_empty {
    let where_from = $found | where value == "" | each {|f| $"($f.name) in ($f.file)" } | str join ", "
    fail $"secret ($empty | str join ', ') is empty \(($where_from)\)" $ctx.span "give it a value, or pass --allow-empty-secrets if empty is meant"
  }
  {
    values: ($found | reduce --fold {} {|f, acc| $acc | upsert $f.name $f.value })
    sources: ($found | reduce --fold {} {|f, acc| $acc | upsert $f.name $f.file })
  }
}

# The environment variable an app's steady state (`hk deploy state`) reads the secret `from` from:
# the app's own name first, so two apps' secrets of the same name never meet.
export def secret-var [app: string, from: string]: nothing -> string {
  $"($app | str uppercase | str replace -a '-' '_')__($from)"
}

# The context with its secrets resolved (kept in `secret_values`, never shown or recorded).
export def with-secrets [ctx: record, --allow-empty]: nothing -> record {
  $ctx | upsert secret_values (resolve $ctx --allow-empty=$allow_empty).values
}

# Secrets: `hk secrets print`, `hk secrets extract`, `hk secrets fetch`.
#
# Alone, the list of those commands. See `hk docs secrets`.
@example "The secrets commands" { hk secrets | get command } --result ["hk secrets env" "hk secrets extract" "hk secrets fetch" "hk secrets print"]
export def main []: nothing -> table<command: string, description: string> {
  commands-matching '^hk secrets (print|extract|fetch|env)$'
}

# The secrets of a deploy, redacted: every key its secrets files define and every one it wants.
#
# One row per key: {key, source, value}; `value` is `(redacted)` (or `(missing)` for a secret the
# config wants that nothing defines). See `hk docs secrets`.
@example "Where each secret comes from" { hk secrets print }
@example "Where each secret of production comes from" { hk secrets print -d production }
export def "secrets print" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
]: nothing -> table<key: string, source: string, value: string> {
  let ctx = load $config $destination "-" (metadata $config).span
  let defined = hk dotenv ...(files $ctx) | each {|r| {key: $r.key, source: $"($r.file):($r.line)", value: "(redacted)"} }
  let from_env = every-wanted $ctx | get from | uniq | where {|k| $k not-in $defined.key } | each {|k|
    if ($env | get -o $k) == null { {key: $k, source: "", value: "(missing)"} } else { {key: $k, source: "(environment)", value: "(redacted)"} }
  }
  $defined | append $from_env
}

# The value of one secret, for scripts: from a record piped in (`hk secrets fetch`'s), else from the
# deploy's secrets files and environment.
#
# A piped record's key may be given whole (`vault/item/field`) or by its last part (`field`).
@example "One secret of the project's files (or the environment)" { hk secrets extract HELLO_TOKEN }
@example "One field of what a vault returned" { hk secrets fetch bitwarden --account me@example.com --from app DB_PASSWORD | hk secrets extract DB_PASSWORD }
export def "secrets extract" [
  key: string                 # the secret's name
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
]: [nothing -> string, record -> string] {
  let given = $in
  let span = (metadata $key).span
  if $given != null {
    let whole = $given | get -o $key
    if $whole != null { return ($whole | into string) }
    let by_leaf = $given | transpose name value | where {|r| ($r.name | split row "/" | last) == $key }
    if ($by_leaf | length) == 1 { return ($by_leaf | first | get value | into string) }
    let known = $given | columns | str join ", "
    fail $"no secret ($key) in the record \(it has ($known)\)" $span "give the key as the record names it"
  }
  let ctx = load $config $destination "-" $span
  let row = hk dotenv ...(files $ctx) | where key == $key | get -o 0
  if $row != null { return $row.value }
  if ($env | get -o $key) != null { return ($env | get $key | into string) }
  fail $"secret ($key) not found in ((files $ctx) | str join ', '), nor in the environment" $span
}

# Fetch secrets from a vault's command line tool, as one record `{NAME: value}`.
#
# ADAPTER is one of 1password (op), bitwarden (bw), bitwarden-sm (bws), aws (aws), gcp (gcloud),
# doppler (doppler), lastpass (lpass), passbolt (passbolt). KEYS are names as the vault knows them;
# `--from` prefixes each (a vault, item, folder or project). Nothing is fetched until this runs, and
# values pass from the tool to the record only — never through a command line.
@example "Two fields of a 1Password item" { hk secrets fetch 1password --account my-team --from Vault/app DB_PASSWORD API_KEY }
@example "AWS secrets of a profile" { hk secrets fetch aws --account prod --from app/ db_password }
export def "secrets fetch" [
  adapter: string             # 1password, bitwarden, bitwarden-sm, aws, gcp, doppler, lastpass or passbolt
  ...keys: string             # the secrets to fetch
  --account: string           # the vault's account (or profile, or project where the tool has no accounts)
  --from: string              # prefix every key with this (vault/item, folder, project)
]: nothing -> record {
  let span = (metadata $adapter).span
  if ($keys | is-empty) { fail "name the secrets to fetch" $span $"e.g. hk secrets fetch ($adapter) --from app DB_PASSWORD" }
  adapters fetch $adapter $keys $account $from $span
}

# The app's secrets as the variables its steady state refers to (`<APP>__<NAME>`), for `with-env`.
#
# `hk deploy state` writes no secret into its env files: they name these variables, which `hk plan`
# and `hk apply` read from their environment. Keep the record in a `with-env` block, not in the
# shell's own environment, so no other program started meanwhile inherits it.
@example "Plan the app's steady state with its secrets" { with-env (hk secrets env) { hk deploy state | hk plan --all } }
@example "Two apps' secrets at once" { with-env ((hk secrets env -c a/config/deploy.nu) | merge (hk secrets env -c b/config/deploy.nu)) { [(hk deploy state -c a/config/deploy.nu) (hk deploy state -c b/config/deploy.nu)] | hk merge | hk plan --all } }
export def "secrets env" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --allow-empty-secrets       # accept secrets whose value is empty
]: nothing -> record {
  let ctx = load $config $destination "-" (metadata $config).span
  resolve $ctx --allow-empty=$allow_empty_secrets | get values | transpose from value
  | reduce --fold {} {|s, acc| $acc | insert (secret-var $ctx.app $s.from) $s.value }
}
