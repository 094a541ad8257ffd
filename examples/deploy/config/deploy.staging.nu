# Staging beside production on the same host: its own site address, ports and everything under
# /opt/hk/hello-staging.
{
  proxy: {host: "http://staging.hello.test", app_port: 4100}
  env: {clear: {GREETING: "hello from staging"}}
}
