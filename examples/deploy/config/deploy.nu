# Deploy the example app `hello` (examples/hello: a tiny HTTP server) with zero downtime behind Caddy,
# to a Debian 12 guest that hk runs under qemu on this machine.
#
#   cd examples/deploy
#   hk instance ensure demo config/deploy.nu      # the guest: first time ≈2 min, then seconds
#   $env.HELLO_TOKEN = (random chars -l 32)        # a secret, from this shell only
#   hk setup                                       # Caddy, the app's folders; then the first deploy
#   hk deploy                                      # build, prepare, switch, retire, prune
#   http get $"http://127.0.0.1:((hk instance status demo config/deploy.nu).ports."80")/"
#   hk versions; hk audit; hk rollback
#
# `hk deploy -d staging` deploys the same service beside it as hello-staging (config/deploy.staging.nu).
# `$env.HK_DEMO_INSTANCE` points the host at another instance (hk's tests use their shared guest).
let instance = $env.HK_DEMO_INSTANCE? | default demo

{
  service: hello
  instances: {($instance): {backend: qemu, packages: [caddy curl], ports: [80], lifecycle: persistent}}
  hosts: {demo: {instance: $instance}}
  servers: [demo]
  release: {
    path: dist
    cmd: "bin/hello"
    # Runs in examples/deploy with HK_VERSION set: the app answers with that version.
    build: "cargo build --quiet -p hello && mkdir -p dist/bin && cp ../../target/debug/hello dist/bin/hello && printf '%s\\n' \"$HK_VERSION\" > dist/VERSION"
  }
  proxy: {host: ":80", app_port: 4000}
  env: {clear: {GREETING: "hello from hk"}, secret: [HELLO_TOKEN]}
  health_check: {path: /up, interval: 500ms, timeout: 30sec}
  drain_timeout: 10sec
  retain: 3
}
