# An Xamal project (the Elixir example described in config/xamal.exs, with roles, a destination,
# secrets and a hook) imported by `hk init --from xamal` and deployed on the shared deploy guest
# (`hk-deploy`): a web and a worker node of one release.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use ../nu-modules/hk

const example = path self | path dirname | path dirname | path join examples elixir_app

export def "test guest deploy xamal: an Xamal project with roles, a destination and secrets imports and deploys" [] {
  let dir = scratch
  for f in [mix.exs lib] { cp -r ($example | path join $f) $dir }
  mkdir ($dir | path join config/xamal) ($dir | path join .xamal/hooks)
  'import Config

config :xamal,
  service: "elixir-xamal",
  servers: [
    web: [guest: "127.0.0.1"],
    worker: [hosts: [guest: "127.0.0.1"], env: [clear: [ELIXIR_APP_HTTP: "false"]]]
  ],
  ssh: [user: "root"],
  env: [clear: [GREETING: "hello from Xamal", RELEASE_MODE: "interactive"], secret: ["RELEASE_COOKIE", "API_TOKEN"]],
  caddy: [host: "xamal.test", app_port: 4300],
  release: [name: :elixir_app, mix_env: "prod"],
  health_check: [path: "/up", interval: 1, timeout: 90],
  retain_releases: 3,
  drain_timeout: 10,
  builder: [remote: "build.example.com"]
' | save ($dir | path join config/xamal.exs)
  'import Config
config :xamal, caddy: [host: "staging.xamal.test"], env: [clear: [GREETING: "hello from staging"]]
' | save ($dir | path join config/xamal/staging.exs)
  $"RELEASE_COOKIE=(random chars -l 40)\nAPI_TOKEN=xamal-token\n" | save ($dir | path join .xamal/secrets)
  $"#!/bin/sh\necho \"$XAMAL_SERVICE_VERSION\" > '($dir)/hook.out'\n" | save ($dir | path join .xamal/hooks/post-deploy)
  chmod +x ($dir | path join .xamal/hooks/post-deploy)
  cd $dir
  let run = do { ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($env.HK_TEST_ROOT)/nu-modules/hk'#; hk init --from xamal | to nuon" } | complete
  assert equal $run.exit_code 0 $run.stderr
  assert equal (($run.stdout | from nuon).file | sort) ([config/deploy.nu config/deploy.staging.nu .hk/secrets .hk/hooks/post-deploy deploy.nu .gitignore] | sort)
  # What has no equivalent is said, not dropped silently.
  has $run.stderr "no hk equivalent: builder"
  let imported = open config/deploy.nu | from nuon
  assert equal $imported.release {mix: {name: elixir_app, env: prod}}
  assert equal $imported.servers.web [guest]
  assert equal $imported.servers.worker {hosts: [guest], env: {clear: {ELIXIR_APP_HTTP: "false"}}}
  assert equal $imported.proxy {host: xamal.test, app_port: 4300}
  assert equal $imported.health_check {path: /up, interval: 1sec, timeout: 90sec}
  assert equal $imported.env.secret [RELEASE_COOKIE API_TOKEN]
  assert equal (open config/deploy.staging.nu | from nuon) {proxy: {host: staging.xamal.test}, env: {clear: {GREETING: "hello from staging"}}}
  has (open --raw .hk/hooks/post-deploy) "$HK_SERVICE_VERSION"
  # How to reach the test guest is all the test adds: Xamal's config only names an address.
  $imported
  | upsert instances {($guest.deploy_instance): (guest spec)}
  | upsert hosts {guest: {instance: $guest.deploy_instance}}
  | upsert proxy.host "http://xamal.test"
  | save config/guest.nuon
  hk setup -c config/guest.nuon --version x1 --quiet | ignore
  let here = guest sh --on $guest.deploy_instance "curl -s -H 'Host: xamal.test' http://127.0.0.1/" | str trim
  assert equal $here x1
  assert equal (open hook.out | str trim) "elixir-xamal@x1"
  # The worker role runs the same release as its own node, beside the web one.
  let nodes = hk rpc -c config/guest.nuon "IO.puts node()" | select role stdout
  assert equal $nodes [{role: web, stdout: "elixir_app_4300@127.0.0.1\n"} {role: worker, stdout: "elixir_app_worker_4300@127.0.0.1\n"}]
  let token = guest sh --on $guest.deploy_instance "grep -c '^API_TOKEN=xamal-token$' /opt/hk/elixir-xamal/env/worker.4300.env" | str trim
  assert equal $token "1"
}
