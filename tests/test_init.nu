# `hk init` without a host: the scaffold (config, secrets kept out of git, inert hook samples, a
# project module whose aliases work after `use deploy.nu *`) and the Kamal importer on a project
# with roles, destinations, secrets, hooks and aliases.
use std/assert
use lib/helpers.nu *
use ../nu-modules/hk
use ../nu-modules/hk/config.nu [load]
use ../nu-modules/hk/hooks.nu [NAMES]

export def "test init: a scaffold that loads, keeps secrets out of git, inert hooks and working aliases" [] {
  let dir = scratch | path join my-shop
  mkdir $dir
  cd $dir
  let written = hk init
  assert equal ($written.file | sort) ([config/deploy.nu .hk/secrets deploy.nu .gitignore] | append ($NAMES | each {|h| $".hk/hooks/($h)" }) | sort)
  let ctx = load null null v1 (metadata $dir).span
  assert equal $ctx.service my-shop
  assert equal $ctx.release.cmd "bin/my-shop"
  assert equal $ctx.proxy {host: ":80", app_port: 4000}
  # Hooks are samples: none is executable, so none runs.
  assert equal (ls -l .hk/hooks | get mode | each {|m| $m | str substring 2..2 } | uniq) ["-"]
  assert equal (ls -l .hk/secrets | get 0.mode) "rw-------"
  has (open --raw .gitignore) ".hk/secrets*"
  # Running it again keeps what is there.
  "# mine\n" | save -f deploy.nu
  let again = hk init
  assert equal $again.file []
  assert equal (open --raw deploy.nu) "# mine\n"
  rm deploy.nu
  hk init | ignore
  # The project module's aliases are hk's commands after `use deploy.nu *`.
  let lib = $env.HK_TEST_ROOT | path join nu-modules
  let run = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -I $lib -c "use deploy.nu *; scope aliases | where name in [ship rollback-app] | get expansion | to nuon" | complete
  assert equal $run.exit_code 0 $run.stderr
  assert equal ($run.stdout | from nuon | sort) ["hk deploy" "hk rollback"]
  # Flags shape the config.
  let other = scratch
  cd $other
  hk init --service shop --host "http://shop.test" --app-port 5000 | ignore
  assert equal (load null null v1 (metadata $other).span).proxy {host: "http://shop.test", app_port: 5000}
  has (error-of { hk init --service "Bad Name" }) "is not a service name"
}

# A Kamal project with roles, a destination, secrets, hooks and aliases.
def kamal-project []: nothing -> string {
  let dir = scratch
  mkdir ($dir | path join config) ($dir | path join .kamal/hooks)
  {
    service: shop
    image: acme/shop
    servers: {web: ["10.0.0.5" "10.0.0.6"], job: {hosts: ["10.0.0.7"], cmd: "bin/jobs", env: {clear: {QUEUE: default}}}}
    proxy: {host: shop.example.com, ssl: true, app_port: 3000, healthcheck: {path: /health, interval: 2, timeout: 40}}
    env: {clear: {RAILS_ENV: production, WORKERS: 4}, secret: [RAILS_MASTER_KEY "DB_PASSWORD:SHOP_DB_PASSWORD"]}
    ssh: {user: deploy, port: 2222, keys: ["~/.ssh/shop"]}
    registry: {username: acme, password: [KAMAL_REGISTRY_PASSWORD]}
    builder: {arch: amd64}
    accessories: {db: {image: "mysql:8"}}
    retain_containers: 3
    drain_timeout: 15
    readiness_delay: 2
    require_destination: true
    primary_role: web
    boot: {limit: "50%", wait: 3}
    aliases: {console: "app exec --interactive --reuse \"bin/rails console\"", ship: "deploy"}
  } | to yaml | save ($dir | path join config/deploy.yml)
  {servers: {web: ["10.1.0.5"]}, proxy: {host: staging.example.com}} | to yaml | save ($dir | path join config/deploy.staging.yml)
  "RAILS_MASTER_KEY=$(cat config/master.key)\nSHOP_DB_PASSWORD=s3cret\n" | save ($dir | path join .kamal/secrets)
  "SHARED=1\n" | save ($dir | path join .kamal/secrets-common)
  "#!/bin/sh\necho \"Deployed $KAMAL_VERSION to $KAMAL_HOSTS\"\n" | save ($dir | path join .kamal/hooks/post-deploy)
  chmod +x ($dir | path join .kamal/hooks/post-deploy)
  "#!/bin/sh\nexit 0\n" | save ($dir | path join .kamal/hooks/pre-build.sample)
  "#!/bin/sh\ndocker network create x\n" | save ($dir | path join .kamal/hooks/docker-setup)
  $dir
}

export def "test init: a Kamal project is translated, with what has no equivalent on stderr" [] {
  let dir = kamal-project
  cd $dir
  let module = $env.HK_TEST_ROOT | path join nu-modules/hk
  let run = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($module)'#; hk init --from kamal | get file | to nuon" | complete
  assert equal $run.exit_code 0 $run.stderr
  assert equal ($run.stdout | from nuon | sort) [.gitignore .hk/hooks/post-deploy .hk/hooks/pre-build.sample .hk/secrets .hk/secrets-common config/deploy.nu config/deploy.staging.nu deploy.nu]
  for said in ["image: hk deploys a release folder" "registry:" "builder:" "accessories:" "hooks/docker-setup"] {
    has $run.stderr $"hk init: no hk equivalent: ($said)"
  }
  let c = open config/deploy.nu | from nuon
  assert equal $c.service shop
  assert equal ($c.hosts | columns) ["10.0.0.5" "10.0.0.6" "10.0.0.7"]
  assert equal $c.hosts."10.0.0.5" {address: "10.0.0.5", ssh: {user: deploy, port: 2222, identity_file: "~/.ssh/shop"}}
  assert equal $c.servers {web: ["10.0.0.5" "10.0.0.6"], job: {hosts: ["10.0.0.7"], cmd: "bin/jobs", env: {clear: {QUEUE: default}}}}
  assert equal $c.proxy {host: shop.example.com, app_port: 3000}
  assert equal $c.health_check {path: /health, interval: 2sec, timeout: 40sec, delay: 2sec}
  assert equal $c.env {clear: {RAILS_ENV: production, WORKERS: "4"}, secret: [RAILS_MASTER_KEY "DB_PASSWORD:SHOP_DB_PASSWORD"]}
  assert equal [$c.retain $c.drain_timeout $c.require_destination $c.primary_role $c.boot] [3 15sec true web {limit: "50%", wait: 3sec}]
  # What it wrote is a config hk reads, roles and all.
  let ctx = load null staging v1 (metadata $dir).span
  assert equal $ctx.roles {web: ["10.1.0.5"]}
  open config/deploy.nu | from nuon | reject require_destination | save config/without-destination.nuon
  let base = load ($dir | path join config/without-destination.nuon) null v1 (metadata $dir).span
  assert equal $base.role_specs.job.cmd "bin/jobs"
  assert equal $base.web ["10.0.0.5" "10.0.0.6"]
  assert equal (open config/deploy.staging.nu | from nuon) {hosts: {"10.1.0.5": {address: "10.1.0.5"}}, servers: ["10.1.0.5"], proxy: {host: "http://staging.example.com"}}
  # Secrets copied (0600), hooks renamed and noted, samples stay inert.
  assert equal (open --raw .hk/secrets) "RAILS_MASTER_KEY=$(cat config/master.key)\nSHOP_DB_PASSWORD=s3cret\n"
  assert equal (ls -l .hk/secrets | get 0.mode) "rw-------"
  let hook = open --raw .hk/hooks/post-deploy | lines
  assert equal $hook.0 "#!/bin/sh"
  has $hook.1 "KAMAL_* variables renamed HK_*"
  assert equal $hook.2 "echo \"Deployed $HK_VERSION to $HK_HOSTS\""
  assert equal (ls -l .hk/hooks/post-deploy | get 0.mode | str substring 2..2) "x"
  assert equal (ls -l .hk/hooks/pre-build.sample | get 0.mode | str substring 2..2) "-"
  # Aliases, with what Kamal ran.
  let aliases = open --raw deploy.nu
  has $aliases "# kamal app exec --interactive --reuse \"bin/rails console\"\nexport alias console = hk app exec --interactive --reuse \"bin/rails console\""
  has $aliases "export alias ship = hk deploy"
  # Without config/deploy.yml: said, and nothing written.
  let empty = scratch
  cd $empty
  has (error-of { hk init --from kamal }) "no Kamal config"
  assert equal (ls $empty | length) 0
}
