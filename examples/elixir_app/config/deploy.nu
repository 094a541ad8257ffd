# Deploy this Elixir app (a Mix release, no dependencies) blue-green behind Caddy to a Debian 12
# guest that hk runs under qemu on this machine.
#
#   cd examples/elixir_app
#   "RELEASE_COOKIE=" + (random chars -l 48) | save .hk/secrets   # once: the nodes' cookie, kept here
#   hk instance ensure demo config/deploy.nu     # the guest: first time ≈2 min, then seconds
#   hk setup                                     # Caddy, the app's folders; then the first deploy
#   hk deploy                                    # mix release, prepare, migrate, switch, retire
#   hk rpc "IO.puts ElixirApp.version()"         # in the live node of every host
#   hk iex                                       # a remote shell into it
#
# `$env.HK_DEMO_INSTANCE` points the host at another instance (hk's tests use their shared guest).
let instance = $env.HK_DEMO_INSTANCE? | default demo

{
  service: elixir-app
  instances: {($instance): {backend: qemu, packages: [caddy curl], ports: [80], lifecycle: persistent}}
  hosts: {demo: {instance: $instance}}
  servers: [demo]
  release: {
    mix: {name: elixir_app, env: prod}
    # Runs in the new release (bin/elixir_app eval) after it is up and before Caddy switches to it.
    migrate: "ElixirApp.Release.migrate()"
  }
  proxy: {host: "http://elixir.test", app_port: 4200}
  # RELEASE_MODE=interactive loads modules on first use: the node is up in about a fifth of the
  # time on a small or emulated host (embedded, the default, loads every module at boot).
  env: {clear: {GREETING: "hello from Elixir", RELEASE_MODE: interactive}, secret: [RELEASE_COOKIE]}
  storage: {data: data}
  health_check: {path: /up, interval: 500ms, timeout: 180sec}
  drain_timeout: 10sec
  retain: 3
}
