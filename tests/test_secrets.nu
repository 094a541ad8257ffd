# Secrets without a host: the project's secrets files in layers, what `$(…)` prints kept as it is,
# renames, missing and empty secrets refused, redaction, and every vault adapter against a fake
# command line tool on PATH that records its arguments and answers as the real one does.
use std/assert
use lib/helpers.nu *
use ../nu-modules/hk
use ../nu-modules/hk/config.nu [load]
use ../nu-modules/hk/secrets.nu [resolve]

# A project with a deploy config wanting `secret`, and secrets files `files` ({name: text}).
def project [secret: list, files: record]: nothing -> string {
  let dir = scratch
  mkdir ($dir | path join config) ($dir | path join .hk)
  {
    service: shop, hosts: {web1: {address: 10.0.0.5}}, servers: [web1]
    release: {path: dist, cmd: "bin/shop"}, env: {secret: $secret}
  } | save ($dir | path join config/deploy.nuon)
  for f in ($files | transpose name text) { $f.text | save ($dir | path join .hk $f.name) }
  $dir
}

def values-of [dir: string, destination?: string]: nothing -> record {
  do { cd $dir; resolve (load null $destination v1 (metadata $dir).span) }
}

export def "test secrets: layered files, renames, the environment, and command output kept as printed" [] {
  let dir = project [TOKEN "DATABASE_URL:DB" COMMON FROM_ENV TRICKY] {
    secrets-common: "COMMON=common\nTOKEN=from-common\nDB=common-db\n"
    secrets: "# the default destination\nTOKEN=$(printf 'pa$1wor$D')\nDB=\"postgres://app:${COMMON}@db/app\"\nTRICKY='sp ace \"dq\" $HOME #hash \\back ünï'\n"
    secrets.prod: "TOKEN=prod-token\n"
  }
  let got = with-env {FROM_ENV: "env-value", COMMON: "loses to the file", D: "must not expand"} { values-of $dir }
  assert equal $got.values {
    TOKEN: 'pa$1wor$D', DB: "postgres://app:common@db/app", COMMON: common, FROM_ENV: env-value
    TRICKY: 'sp ace "dq" $HOME #hash \back ünï'
  }
  assert equal $got.sources.TOKEN ($dir | path join .hk/secrets)
  assert equal $got.sources.COMMON ($dir | path join .hk/secrets-common)
  assert equal $got.sources.FROM_ENV "(environment)"
  # A destination reads secrets-common, then its own file (not the default one).
  {} | save ($dir | path join config/deploy.prod.nuon)
  let prod = with-env {FROM_ENV: x, TRICKY: t} { values-of $dir prod }
  assert equal $prod.values.TOKEN prod-token
  assert equal $prod.values.DB common-db
  # `hk secrets print` names every key and where it came from, never a value.
  let shown = with-env {FROM_ENV: "env-value"} { do { cd $dir; hk secrets print } }
  assert equal ($shown | get value | uniq) ["(redacted)"]
  assert equal ($shown | where key == TOKEN | get source) [$"($dir)/.hk/secrets:2"]
  assert equal ($shown | where key == FROM_ENV | get source) ["(environment)"]
  assert not ($shown | to json | str contains "pa$1wor") "a value was printed"
  # `hk secrets extract` gives one value, from the files or from a record piped in.
  assert equal (do { cd $dir; hk secrets extract TOKEN }) 'pa$1wor$D'
  assert equal ({"Vault/app/DB_PASSWORD": s3cr3t} | hk secrets extract DB_PASSWORD) s3cr3t
}

export def "test secrets: a missing, an empty or an unreadable secret is refused, naming it and the files" [] {
  let dir = project [GONE] {secrets-common: "OTHER=1\n"}
  let err = error-of { values-of $dir }
  has $err "secret GONE not found: not in "
  has $err $"($dir)/.hk/secrets-common, ($dir)/.hk/secrets \(missing\), nor in the environment"
  let dir = project [BLANK] {secrets: "BLANK=\n"}
  let err = error-of { values-of $dir }
  has $err $"secret BLANK is empty \(BLANK in ($dir)/.hk/secrets\)"
  has $err "--allow-empty-secrets"
  let ok = do { cd $dir; resolve (load null null v1 (metadata $dir).span) --allow-empty }
  assert equal $ok.values {BLANK: ""}
  # A command that fails names its file, line and key; its stdout is never shown.
  let dir = project [A] {secrets: "A=ok\nB=$(printf '%s-%s' hidden out; echo 'no vault' >&2; exit 7)\n"}
  let err = error-of { values-of $dir }
  has $err $"($dir)/.hk/secrets:2"
  has $err "for B: exited with 7: no vault"
  assert not ($err | str contains "hidden-out") "the command's stdout was shown"
  # Bad config entries are refused by the config check.
  let dir = project ["A:B:C"] {}
  has (error-of { values-of $dir }) "KEY:FROM"
}

# A fake `tool` on PATH in `bin`: records its arguments (one per line) in `log` and prints `answer`.
def fake [bin: string, tool: string, answer: string, log: string]: nothing -> nothing {
  let script = $"#!/bin/sh\nprintf '%s\\n' \"$@\" > '($log)/($tool).args'\ncat <<'HK_EOF'\n($answer)\nHK_EOF\n"
  $script | save -f ($bin | path join $tool)
  chmod +x ($bin | path join $tool)
}

export def "test secrets: every vault adapter fetches through its tool, and a missing tool says which to install" [] {
  let dir = scratch
  let bin = $dir | path join bin
  mkdir $bin
  fake $bin op '[{"id":"a","label":"DB_PASSWORD","value":"op-db","reference":"op://Prod/app/DB_PASSWORD"},{"id":"b","label":"API_KEY","value":"op-api","reference":"op://Prod/app/API_KEY"}]' $dir
  fake $bin bw '{"name":"app","login":{"password":"bw-pass"},"fields":[{"name":"TOKEN","value":"bw-token"}]}' $dir
  fake $bin bws '{"id":"1234","key":"SM_KEY","value":"bws-value"}' $dir
  fake $bin aws '{"SecretValues":[{"Name":"app/db","SecretString":"{\"user\":\"u\",\"password\":\"aws-pw\"}"},{"Name":"app/plain","SecretString":"aws-plain"}],"Errors":[]}' $dir
  fake $bin gcloud '{"name":"x","payload":{"data":"Z2NwLXZhbHVl"}}' $dir
  fake $bin doppler '{"API":{"computed":"doppler-api","raw":"doppler-api"}}' $dir
  fake $bin lpass '[{"fullname":"Shared/db","password":"lpass-pw"}]' $dir
  fake $bin passbolt '[{"name":"db","password":"pb-pw"},{"name":"other","password":"x"}]' $dir
  let path = [$bin] | append $env.PATH
  with-env {PATH: $path} {
    assert equal (hk secrets fetch 1password --account team --from Prod/app DB_PASSWORD API_KEY) {"Prod/app/DB_PASSWORD": op-db, "Prod/app/API_KEY": op-api}
    assert equal (open ($dir | path join op.args) | lines) [item get app --vault Prod --fields "label=DB_PASSWORD,label=API_KEY" --format json --account team]
    assert equal (hk secrets fetch bitwarden --from app TOKEN) {"app/TOKEN": bw-token}
    assert equal (open ($dir | path join bw.args) | lines) [get item app]
    assert equal (hk secrets fetch bitwarden app) {app: bw-pass}
    assert equal (hk secrets fetch bitwarden-sm 1234) {SM_KEY: bws-value}
    assert equal (open ($dir | path join bws.args) | lines) [secret get "1234" --output json]
    assert equal (hk secrets fetch aws --account prod app/db app/plain) {"app/db/user": u, "app/db/password": aws-pw, "app/plain": aws-plain}
    assert equal (open ($dir | path join aws.args) | lines) [secretsmanager batch-get-secret-value --secret-id-list app/db app/plain --output json --profile prod]
    assert equal (hk secrets fetch gcp --from my-project db) {"my-project/db": gcp-value}
    assert equal (open ($dir | path join gcloud.args) | lines) [secrets versions access latest --secret=db --project=my-project --format=json]
    assert equal (hk secrets fetch doppler --from shop/prd API) {API: doppler-api}
    assert equal (open ($dir | path join doppler.args) | lines) [secrets get API --json -p shop -c prd]
    assert equal (hk secrets fetch lastpass --from Shared db) {"Shared/db": lpass-pw}
    assert equal (open ($dir | path join lpass.args) | lines) [show Shared/db --json]
    assert equal (hk secrets fetch passbolt db) {db: pb-pw}
    # No value ever went through a tool's command line.
    let args = glob ($dir | path join *.args) | each { open $in } | str join
    for v in [op-db bw-token bws-value aws-pw gcp-value doppler-api lpass-pw pb-pw] {
      assert not ($args | str contains $v) $"($v) was on a command line"
    }
  }
  # Without the tool on PATH: which CLI to install.
  let err = with-env {PATH: ["/nonexistent"]} { error-of { hk secrets fetch 1password --from a/b C } }
  has $err "1Password CLI is not installed (`op` is not on PATH)"
  has $err "install it:"
  has (error-of { hk secrets fetch keepass X }) "unknown secrets adapter keepass"
}
