# hk staging on this machine: a Debian 12 guest with systemd (qemu), serving the example app's page
# through Caddy, with a secret in an env file and a readiness check.
#
#   hk instance ensure demo examples/staging/hk.nu        # first time ≈2 min, then seconds
#   $env.APP_TOKEN = (random chars -l 32)
#   hk plan demo examples/staging/hk.nu | where action != noop
#   hk plan demo examples/staging/hk.nu | hk apply --confirm --track
#   hk exec 'curl -s http://127.0.0.1/' demo examples/staging/hk.nu
#
# `$env.HK_STAGING_INSTANCE` points the host at another instance (hk's tests use their shared guest).
const here = path self | path dirname
let instance = $env.HK_STAGING_INSTANCE? | default demo
let page = $here | path join ../app/public/index.html

{
  instances: {($instance): {backend: qemu, packages: [caddy curl], lifecycle: persistent}}
  hosts: {demo: {instance: $instance}}
  resources: [
    {type: group, name: app, system: true}
    {type: user, name: app, system: true, home: /srv/app, shell: /usr/sbin/nologin, groups: [app]}
    {type: dir, path: /srv/app, owner: app, group: app, mode: "0755"}
    {type: dir, path: /srv/app/public, owner: app, group: app, mode: "0755"}
    {type: file, path: /srv/app/public/index.html, source: $page, owner: app, group: app, mode: "0644"}
    {type: env_file, path: /etc/app.env, owner: app, entries: {
      GREETING: "hello from hk"
      APP_TOKEN: {env: APP_TOKEN}
    }}
    {type: service, name: app-web, restart_on: [env_file:/etc/app.env], unit: {
      Unit: {Description: "hk example app", After: network.target}
      Service: {
        User: app
        EnvironmentFile: /etc/app.env
        ExecStart: "/usr/bin/caddy file-server --root /srv/app/public --listen 127.0.0.1:9001"
        Restart: on-failure
      }
      Install: {WantedBy: multi-user.target}
    }}
    {type: file, path: /etc/caddy/Caddyfile, mode: "0644", content: ":80 {\n\treverse_proxy 127.0.0.1:9001\n}\n"}
    {type: service, name: caddy, restart_on: [file:/etc/caddy/Caddyfile]}
    {type: ready, name: site, timeout: 60sec, checks: [
      {systemd: {unit: app-web}}
      {http: {url: "http://127.0.0.1/", status: 200, body: "hk example app"}}
    ]}
  ]
}
