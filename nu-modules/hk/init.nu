# `hk init`: a project's deploy files to start from — config/deploy.nu, .hk/secrets (ignored by
# git), a sample of every hook (inert until made executable) and a project module of aliases — or
# the same written from an existing Kamal project (`--from kamal`).

use config.nu [fail]
use hooks.nu [NAMES]
use scaffold.nu [put ignore-secrets project-module]
use kamal.nu
use xamal.nu

# What each hook is for, as its sample says.
const HOOK_PURPOSE = {
  pre-connect: "before anything reaches a host (e.g. warm a VPN or a DNS cache)"
  pre-build: "before the release is built (e.g. refuse a dirty tree)"
  post-build: "after the release is built"
  pre-deploy: "before anything changes on a host (e.g. wait for CI to pass)"
  pre-app-boot: "before the new instances start, once per boot batch"
  post-app-boot: "after the new instances are healthy, once per boot batch"
  pre-proxy-reload: "before traffic switches to the new instances"
  post-proxy-reload: "after traffic switched"
  post-deploy: "at the end of a deploy, the lock still held (e.g. notify a chat)"
}

# The sample of hook `name`: a shell script that does nothing until it is made executable.
def hook-sample [name: string]: nothing -> string {
  [
    "#!/bin/sh"
    $"# hk hook `($name)`: runs ($HOOK_PURPOSE | get $name)."
    $"# Inert until executable: chmod +x .hk/hooks/($name). A non-zero exit stops the deploy."
    "# Its environment: HK_SERVICE HK_APP HK_VERSION HK_SERVICE_VERSION HK_HOSTS HK_ROLES"
    "# HK_DESTINATION HK_RECORDED_AT HK_PERFORMER HK_LOCK HK_COMMAND HK_SUBCOMMAND (see `hk docs hooks`);"
    "# the same as JSON on stdin. A file named like this with .nu is run by nu with the record as $in."
    "set -eu"
    $"echo \"($name): $HK_SERVICE_VERSION on $HK_HOSTS\""
    ""
  ] | str join "\n"
}

# A new project's config/deploy.nu: deploys `service` to a Debian 12 guest hk runs under qemu here.
def fresh-config [service: string, host: string, port: int]: nothing -> string {
  [
    $"# How hk deploys ($service): `hk docs config` explains every field, `hk deploy` runs it."
    "#"
    "# As written it deploys to `demo`, a Debian 12 guest hk runs under qemu on this machine:"
    "#   hk setup          # brings the guest up, installs Caddy, deploys"
    "#   hk deploy         # every later deploy"
    "# For real servers, replace instances and hosts, e.g."
    "#   hosts: {web1: {address: 10.0.0.5, ssh: {user: deploy}, sudo: true}}"
    "let instance = $env.HK_DEMO_INSTANCE? | default demo"
    ""
    "{"
    $"  service: ($service | to nuon)"
    "  instances: {($instance): {backend: qemu, packages: [caddy curl], ports: [80], lifecycle: persistent}}"
    "  hosts: {demo: {instance: $instance}}"
    "  servers: [demo]                       # or roles: {web: [demo]}"
    "  release: {"
    "    path: dist                          # the folder deployed, relative to the project"
    $"    cmd: \"bin/($service)\"                # started in the release with PORT set; must answer health_check.path"
    "    # build: \"make dist\"               # run here first, with HK_VERSION and HK_APP set"
    "  }"
    $"  proxy: {host: ($host | to nuon), app_port: ($port)}   # Caddy's site; the app takes app_port and app_port + 1"
    "  env: {clear: {}, secret: []}          # secrets come from .hk/secrets (see `hk docs secrets`)"
    "  health_check: {path: /up, interval: 1sec, timeout: 30sec}"
    "  drain_timeout: 10sec"
    "  retain: 5"
    "  # storage: {uploads: uploads}         # folders that outlive releases (`hk docs storage`)"
    "}"
    ""
  ] | str join "\n"
}

# Scaffold a project's deploy files, or translate a Kamal project's.
#
# Writes config/deploy.nu (commented; as written it deploys to a qemu guest on this machine),
# .hk/secrets (and `.hk/secrets*` in .gitignore), a sample of every hook in .hk/hooks (inert until
# made executable) and deploy.nu, a module of aliases (`use deploy.nu *`). Files that exist are
# kept unless --force. `--from kamal` reads config/deploy.yml, its destinations, .kamal/secrets*
# and .kamal/hooks, writes their hk equivalents and lists on stderr what has none; `--from xamal`
# does the same for config/xamal.exs (read by the project's own elixir), .xamal/secrets* and
# .xamal/hooks.
@example "Start a project's deploy files" { hk init }
@example "Start them for a service on its own site and ports" { hk init --service shop --host "http://shop.test" --app-port 5000 }
@example "Translate a Kamal project" { hk init --from kamal }
@example "Translate an Xamal project (an Elixir release)" { hk init --from xamal }
export def main [
  --from: string              # kamal or xamal: translate that tool's project in this folder
  --service: string           # the service's name (default: this folder's name)
  --host: string = ":80"      # Caddy's site address for the app
  --app-port: int = 4000      # the first of the app's two ports
  --force                     # replace files that exist
]: nothing -> table<file: string> {
  let dir = $env.PWD
  let span = (metadata $from).span
  let written = match $from {
    null => {
      let service = $service | default ($dir | path basename | str lowercase | str replace -ra '[^a-z0-9-]+' '-' | str trim -c '-')
      if ($service !~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$') {
        fail $"($service | to nuon) is not a service name: use lowercase letters, digits and '-'" (metadata $service).span "give one with --service"
      }
      [
        (put ($dir | path join config/deploy.nu) (fresh-config $service $host $app_port) --force=$force)
        (put ($dir | path join .hk/secrets) "# Secrets of the deploy, one KEY=value a line; `hk docs secrets`.\n# DATABASE_PASSWORD=$(op read op://Prod/db/password)\n" --force=$force --mode "600")
      ]
      | append ($NAMES | each {|h| put ($dir | path join .hk/hooks $h) (hook-sample $h) --force=$force })
      | append (put ($dir | path join deploy.nu) (project-module [
        {name: ship, command: "hk deploy"}
        {name: ship-status, command: "hk versions"}
        {name: rollback-app, command: "hk rollback"}
      ]) --force=$force)
    }
    kamal => { kamal import $dir $span --force=$force }
    xamal => { xamal import $dir $span --force=$force }
    _ => { fail $"hk init --from ($from): hk reads kamal and xamal projects" $span "hk init --from kamal, or hk init --from xamal" }
  }
  $written | append (ignore-secrets $dir) | compact | each {|f| {file: ($f | path relative-to $dir)} }
}
