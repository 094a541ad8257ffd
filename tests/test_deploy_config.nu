# The deploy workflows without a host: reading and checking deploy configs, destinations, versions,
# the deploy history, what a deploy writes (Caddy site, systemd template), the module's commands.
use std/assert
use lib/helpers.nu *
use ../nu-modules/hk
use ../nu-modules/hk/config.nu [load version-of]
use ../nu-modules/hk/rollback.nu [history previous]
use ../nu-modules/hk/caddy.nu [site main-file check-through]
use ../nu-modules/hk/phases.nu [template-unit prepare switch retire]

# A project folder holding config/deploy.nuon = `config`.
def project [config: record]: nothing -> string {
  let dir = scratch
  mkdir ($dir | path join config) ($dir | path join dist)
  $config | save ($dir | path join config/deploy.nuon)
  $dir
}

def base []: nothing -> record {
  {
    service: shop
    hosts: {web1: {address: 10.0.0.5}, web2: {address: 10.0.0.6}}
    servers: [web1 web2]
    release: {path: dist, cmd: "bin/shop --port $PORT"}
  }
}

def ctx-of [dir: string, destination?: string]: nothing -> record {
  do { cd $dir; load null $destination v9 (metadata $dir).span }
}

export def "test deploy config: defaults, app id, paths resolved against the project" [] {
  let dir = project (base)
  let ctx = ctx-of $dir
  assert equal $ctx.app shop
  assert equal $ctx.primary web1
  assert equal $ctx.roles {web: [web1 web2]}
  assert equal $ctx.proxy {host: ":80", app_port: 4000}
  assert equal $ctx.health_check {path: /up, delay: 0sec, interval: 1sec, timeout: 30sec}
  assert equal $ctx.drain_timeout 10sec
  assert equal $ctx.retain 5
  assert equal $ctx.release.path ($dir | path join dist)
  assert equal $ctx.version v9
  let shown = do { cd $dir; hk config }
  assert equal ($shown | reject deploy) {hosts: (base).hosts, instances: {}}
  assert equal $shown.deploy.app shop
  assert equal $shown.deploy.secret_files [($dir | path join .hk/secrets-common) ($dir | path join .hk/secrets)]
}

export def "test deploy config: a destination is merged over the base and names the app" [] {
  let dir = project (base)
  {proxy: {app_port: 4100}, servers: {web: [web2]}, env: {clear: {MODE: staging}}} | save ($dir | path join config/deploy.staging.nuon)
  let ctx = ctx-of $dir staging
  assert equal $ctx.app shop-staging
  assert equal $ctx.servers [web2]
  assert equal $ctx.proxy.app_port 4100
  assert equal $ctx.proxy.host ":80"
  assert equal $ctx.env.clear {MODE: staging}
  # A .nu config is evaluated, durations and all.
  "{service: shop, hosts: {a: {local: true}}, servers: [a], release: {path: dist, cmd: x}, drain_timeout: 3sec, health_check: {interval: 250ms}}" | save -f ($dir | path join config/deploy.nu)
  let from_nu = do { cd $dir; load ($dir | path join config/deploy.nu) null v1 (metadata $dir).span }
  assert equal $from_nu.drain_timeout 3sec
  assert equal $from_nu.health_check.interval 250ms
}

export def "test deploy config: bad configs are refused with the field path and what to do" [] {
  let cases = [
    [change, expect];
    [{relase: {}}, "relase: unknown field"]
    [{relase: {}}, "did you mean `release`?"]
    [{release: {path: dist, cmd: x, bild: y}}, "release.bild: unknown field"]
    [{release: {path: dist}}, "release.cmd: missing (required)"]
    [{retain: "5"}, "retain: expected int, got string"]
    [{health_check: {timeout: soon}}, "health_check.timeout: expected duration"]
    [{servers: [web1 web3]}, "servers.1: \"web3\" is not a declared host"]
    [{service: "Shop!"}, "is not a service name"]
    [{proxy: {app_port: 80}}, "proxy.app_port: 80 is not a port for an app"]
    [{health_check: {path: up}}, "health_check.path: \"up\" must start with /"]
    [{servers: {worker: [web1]}}, "proxy.roles: \"web\" is not a role of servers (roles: worker)"]
    [{servers: {web: {hosts: [web1], cmnd: x}}}, "servers.web.cmnd: unknown field"]
    [{servers: {web: [web1], job: {hosts: [web9]}}}, "servers.job.hosts.0: \"web9\" is not a declared host"]
    [{boot: {limit: "150%"}}, "boot.limit: \"150%\" is neither a number of hosts"]
    [{primary_role: db}, "primary_role: \"db\" is not a role"]
    [{servers: {web: [web1], job: {hosts: [web2], env: {secret: ["X-Y"]}}}}, "env.secret: \"X-Y\" is not a variable name"]
    [{env: {secret: ["A-B"]}}, "env.secret: \"A-B\" is not a variable name"]
  ]
  for case in $cases {
    let dir = project ((base) | merge $case.change)
    let err = error-of { ctx-of $dir }
    has $err $case.expect
    has $err "deploy.nuon"
  }
  let dir = project (base)
  has (error-of { ctx-of $dir prod }) "no config for destination prod"
  has (error-of { ctx-of $dir prod }) "create "
  "{retain: 2}" | save ($dir | path join config/deploy.staging.nuon)
  has (error-of { ctx-of $dir prod }) "destinations here: staging"
  has (error-of { ctx-of $dir "Prod" }) "is not a name"
  has (error-of { do { cd (scratch); hk deploy --plan-only } }) "no deploy config"
  # Secrets must be found before anything happens on a host.
  let dir = project ((base) | merge {env: {secret: [HK_TEST_UNSET_SECRET]}})
  let err = error-of { do { cd $dir; hk deploy --plan-only } }
  has $err "secret HK_TEST_UNSET_SECRET not found: not in "
  has $err ".hk/secrets (missing), nor in the environment"
  # A failing build stops the deploy with its exit code and last words, before any host.
  let dir = project ((base) | merge {release: {path: dist, cmd: "bin/x", build: "echo compiling; echo broken-build; exit 4"}})
  let err = error-of { do { cd $dir; hk deploy --plan-only --version v1 } }
  has $err "the build of shop v1 failed (exit 4): compiling\nbroken-build"
  has $err $"run it by hand in ($dir)"
  # A host nobody answers on is named, with what to check.
  let dir = project ((base) | merge {hosts: {web1: {address: 127.0.0.1, ssh: {port: 1}}}, servers: [web1]})
  let err = error-of { do { cd $dir; hk deploy --version v1 --quiet } }
  has $err "cannot reach host web1"
  has $err "check that web1 is up"
}

export def "test deploy config: the version is the git commit, -dirty when changed, else a timestamp" [] {
  # Outside any repository (the scratch folder is inside hk's own).
  let dir = mktemp -d --tmpdir hk-version.XXXXXXXX
  let stamp = version-of $dir
  assert ($stamp =~ '^\d{14}$') $"not a UTC timestamp: ($stamp)"
  do {
    cd $dir
    ^git init -q
    "a" | save a.txt
    ^git -c user.name=t -c user.email=t@t add a.txt
    ^git -c user.name=t -c user.email=t@t commit -q -m first
  }
  let sha = do { cd $dir; ^git rev-parse --short HEAD } | str trim
  assert equal (version-of $dir) $sha
  "b" | save -f ($dir | path join a.txt)
  assert equal (version-of $dir) $"($sha)-dirty"
  assert equal (version-of $dir "1.2.3") "1.2.3"
  rm -rf $dir
}

export def "test deploy config: rollback goes back through the deploy history, never by dates" [] {
  def entry [action: string, version: string, result: string = "ok"] { {action: $action, version: $version, result: $result} }
  # The audit log comes newest first.
  let log = [(entry deploy v3) (entry deploy v9 failed) (entry deploy v2) (entry setup v1)]
  let stack = history ($log)
  assert equal $stack [v1 v2 v3]
  assert equal (previous $stack v3) v2
  # After rolling back to v2, the next rollback goes further back, to v1.
  let log = [(entry rollback v2)] | append $log
  let stack = history $log
  assert equal $stack [v1 v2]
  assert equal (previous $stack v2) v1
  assert equal (previous (history ([(entry rollback v1)] | append $log)) v1) null
  # A rollback to a version deployed twice goes back to its last time.
  let log = [(entry deploy v1) (entry deploy v2) (entry deploy v1) (entry deploy v3)] | reverse
  assert equal (history ([(entry rollback v1)] | append $log)) [v1 v2 v1]
}

export def "test deploy config: what a deploy writes — Caddy site, main file, systemd template, phases" [] {
  let dir = project ((base) | merge {proxy: {host: "shop.example.com", app_port: 4200}, drain_timeout: 20sec})
  let ctx = ctx-of $dir
  let text = site $ctx
  has $text "shop.example.com {"
  has $text "reverse_proxy @hk_4200 127.0.0.1:4200"
  has $text "reverse_proxy @hk_4201 127.0.0.1:4201"
  has $text "root /opt/hk/shop/upstream"
  has $text "header @hk_check_4201 X-Hk-Upstream \"127.0.0.1:4201\""
  has $text "keepalive 2s"
  has $text "respond \"no release of shop is live\" 503"
  # Maintenance and stopped pages by their files, no reload; hk's own check passes by them.
  has $text "try_files /maintenance.html"
  has $text "handle @hk_stopped {"
  has $text "not header X-Hk-Check shop"
  let main = main-file /opt/hk 20sec
  has $main "grace_period 20s"
  has $main "protocols h1 h2"
  has $main "import /opt/hk/*/Caddyfile"
  let check = check-through $ctx 4201
  assert equal $check.url "https://shop.example.com/up"
  assert equal $check.connect_to "127.0.0.1"
  assert equal $check.expect_header "X-Hk-Upstream: 127.0.0.1:4201"
  let unit = template-unit $ctx
  assert equal $unit.Service.ExecStart "/opt/hk/shop/ports/%i/bin/shop --port $PORT"
  assert equal $unit.Service.WorkingDirectory "/opt/hk/shop/ports/%i"
  assert equal $unit.Service.KillMode mixed
  assert equal $unit.Service.TimeoutStopSec 30
  assert ("PORT=%i" in $unit.Service.Environment)
  # Each phase is a valid hk config: plan it against this machine (read only) to prove it.
  let here = $ctx | update hosts {web1: {local: true}} | update servers [web1]
  let phases = [
    (prepare $here 4201 v9 null) (switch $here 4201 v9) (retire $here 4200)
  ]
  for resources in $phases {
    let rows = {resources: $resources} | hk plan --local
    assert ($rows | is-not-empty)
  }
  let ids = switch $here 4201 v9 | each {|r| $r.type }
  assert equal $ids [dir dir file dir file file service link ready link file]
}

export def "test deploy config: every workflow command has a description, typed flags and examples" [] {
  let module = $env.HK_TEST_ROOT | path join nu-modules/hk
  let commands = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($module)'#; scope commands | where name =~ '^hk ' and type == custom | to nuon" | from nuon
  let names = $commands | get name | sort
  for want in [
    "hk audit" "hk config" "hk deploy" "hk lock" "hk lock acquire" "hk lock release" "hk lock status" "hk prune"
    "hk redeploy" "hk rollback" "hk setup" "hk stale-releases" "hk versions" "hk migrate" "hk rpc" "hk iex"
    "hk deploy state" "hk merge" "hk secrets env"
  ] {
    assert ($want in $names) $"($want) is missing"
  }
  for c in $commands {
    assert ($c.description | is-not-empty) $"($c.name) has no description"
    assert ($c.examples | is-not-empty) $"($c.name) has no example"
    let flags = $c.signatures | values | flatten | where parameter_type in [named switch] and parameter_name != help
    for f in $flags {
      assert ($f.description | is-not-empty) $"($c.name) --($f.parameter_name) is not described"
    }
  }
  # Examples that state their result give it (those that need hosts run in the guest tests).
  let stated = $commands | each {|c| $c.examples | where result != null } | flatten
  assert (($stated | length) >= 1)
  for ex in $stated {
    let got = ^$nu.current-exe -n --plugins $env.HK_PLUGIN -c $"use r#'($module)'#; ($ex.example) | to nuon" | complete
    assert equal $got.exit_code 0 $"example failed: ($ex.example)\n($got.stderr)"
    assert equal ($got.stdout | str trim) ($ex.result | to nuon) $ex.example
  }
}

export def "test deploy config: every mistake at once with its file, line and column, require_destination, storage, hk docs" [] {
  let dir = scratch
  mkdir ($dir | path join config)
  "{\n  service: shop\n  hosts: {web1: {address: 10.0.0.5}}\n  servers: [web1]\n  release: {path: dist, cmd: 5}\n  retian: 3\n}\n" | save ($dir | path join config/deploy.nu)
  let err = error-of { ctx-of $dir }
  has $err "2 mistakes in"
  has $err $"($dir)/config/deploy.nu:5:30: release.cmd: expected string, got int"
  has $err $"($dir)/config/deploy.nu:6:11: retian: unknown field \(did you mean `retain`?\)"
  # A config that requires a destination refuses to run without one.
  let dir = project ((base) | merge {require_destination: true})
  {} | save ($dir | path join config/deploy.prod.nuon)
  let err = error-of { ctx-of $dir }
  has $err "requires a destination: give one with -d"
  has $err "destinations here: prod"
  assert equal (ctx-of $dir prod).app shop-prod
  # Storage must be somewhere the app's units may write.
  let dir = project ((base) | merge {storage: {uploads: "/srv/uploads"}})
  has (error-of { ctx-of $dir }) "storage.uploads: \"/srv/uploads\" must be a folder under /var/lib/ or a bare name"
  let dir = project ((base) | merge {storage: {uploads: "/var/lib/private/x"}})
  has (error-of { ctx-of $dir }) "must be a folder under /var/lib/ or a bare name"
  let dir = project ((base) | merge {storage: {uploads: uploads}})
  let ctx = ctx-of $dir
  use ../nu-modules/hk/storage.nu [storage-resources storage-env]
  assert equal (storage-env $ctx) ["HK_STORAGE_UPLOADS=/var/lib/hk/shop/uploads"]
  assert equal (storage-resources $ctx | where type == link | first | select path target) {path: /var/lib/hk/shop/uploads, target: ../../private/hk/shop/uploads}
  assert equal (template-unit $ctx).Service.StateDirectory "hk/shop/uploads"
  # The docs at the prompt.
  assert equal (hk docs | get topic) [boot config elixir hooks layout roles secrets storage]
  has (hk docs hooks) "post-deploy"
  has (error-of { hk docs nope }) "no docs topic nope"
}

export def "test deploy config: roles with their own command, env and check, the primary host, boot batches, -r and --hosts" [] {
  let dir = project ((base) | merge {
    hosts: {web1: {address: 10.0.0.5}, web2: {address: 10.0.0.6}, web3: {address: 10.0.0.7}, jobs1: {address: 10.0.0.8}}
    servers: {web: [web1 web2 web3], worker: {hosts: [jobs1 web1], cmd: "bin/jobs --queue default", env: {clear: {QUEUE: default}, secret: [JOBS_TOKEN]}}}
    env: {clear: {MODE: prod}, secret: [APP_TOKEN]}
    boot: {limit: "50%", wait: 2sec}
    primary_host: web2
  })
  let ctx = ctx-of $dir
  assert equal $ctx.roles {web: [web1 web2 web3], worker: [jobs1 web1]}
  assert equal $ctx.servers [web1 web2 web3 jobs1]
  assert equal $ctx.web [web1 web2 web3]
  assert equal $ctx.primary web2
  assert equal $ctx.role_specs.worker {cmd: "bin/jobs --queue default", env: {clear: {MODE: prod, QUEUE: default}, secret: [APP_TOKEN JOBS_TOKEN]}, health_check: null, proxied: false}
  assert equal $ctx.role_specs.web.cmd "bin/shop --port $PORT"
  # Each role has its own template and env file; web keeps part 1's names.
  use ../nu-modules/hk/roles.nu [role-ctx batches restrict groups]
  use ../nu-modules/hk/config.nu [unit]
  let worker = role-ctx $ctx worker
  assert equal (unit $worker 4001) "hk-shop-worker@4001.service"
  assert equal (unit (role-ctx $ctx web) 4001) "hk-shop@4001.service"
  let t = template-unit $worker
  assert equal $t.Service.ExecStart "/opt/hk/shop/ports/%i/bin/jobs --queue default"
  assert equal $t.Service.EnvironmentFile "-/opt/hk/shop/env/worker.%i.env"
  # A worker without a check is up when systemd says so; it is only staged with the web prepare.
  use ../nu-modules/hk/phases.nu [stage boot-role]
  let booted = boot-role $worker 4001 4000 v2
  assert equal ($booted | where type == ready | get checks | flatten) [{systemd: {unit: "hk-shop-worker@4001.service"}}]
  assert equal ($booted | where type == service and state? == stopped | get name) ["hk-shop-worker@4000.service"]
  assert equal (stage $worker 4001 v2 null | where type == service | get name) ["hk-shop-worker@.service"]
  assert equal (stage $worker 4001 v2 null | where type == env_file | first | get entries) {MODE: prod, QUEUE: default, HK_VERSION: v2, APP_TOKEN: {env: APP_TOKEN}, JOBS_TOKEN: {env: JOBS_TOKEN}}
  # Hosts alike share a plan.
  assert equal (groups $ctx $ctx.servers) [[roles hosts]; [[web worker] [web1]] [[web] [web2 web3]] [[worker] [jobs1]]]
  # 50% of three proxied hosts rounds down to one a batch; no boot: one batch.
  assert equal (batches $ctx) [[web1] [web2] [web3]]
  assert equal (batches ($ctx | update boot {limit: 2})) [[web1 web2] [web3]]
  assert equal (batches ($ctx | update boot null)) [[web1 web2 web3]]
  # -r and --hosts, with wildcards; the lock stays on the primary host.
  let only = $ctx | restrict worker null
  assert equal [$only.roles $only.servers $only.web $only.primary] [{worker: [jobs1 web1]} [jobs1 web1] [web1] web2]
  let some = $ctx | restrict null "web*"
  assert equal $some.roles {web: [web1 web2 web3], worker: [web1]}
  has (error-of { $ctx | restrict db null }) "no host of shop matches --roles db"
  let flagged = do { cd $dir; hk config -r worker --hosts jobs* } | get deploy
  assert equal $flagged.roles {worker: [jobs1]}
}

export def "test deploy config: a Mix release - its folder and command, the cookie required, each node named, the unit sandbox" [] {
  let mix = base | update release {mix: {name: shop, env: prod}, migrate: "Shop.Release.migrate()"} | insert env {clear: {}, secret: [RELEASE_COOKIE]}
  let ctx = ctx-of (project $mix)
  assert equal ($ctx.release.path | path split | last 4) [_build prod rel shop]
  assert equal $ctx.release.cmd "bin/shop start"
  assert equal $ctx.release.migrate "Shop.Release.migrate()"
  let unit = template-unit $ctx
  let environment = $unit.Service.Environment
  for want in ["RELEASE_NODE=shop_%i@127.0.0.1" "RELEASE_DISTRIBUTION=name" "RELEASE_TMP=/run/hk-shop-%i" "HK_ROLE=web"] {
    assert ($want in $environment) $"($want) not in ($environment)"
  }
  assert equal $unit.Service.RuntimeDirectory "hk-shop-%i"
  assert equal $unit.Service.DynamicUser yes
  assert equal $unit.Unit.Wants hk-epmd.service
  # Without the cookie among the secrets, the release's generated one would be used: refused.
  let no_cookie = error-of { ctx-of (project ($mix | update env {clear: {}, secret: []})) }
  has $no_cookie "RELEASE_COOKIE"
  let both = error-of { ctx-of (project ($mix | update release {mix: {name: shop}, path: dist})) }
  has $both "release.path"
  has $both "drop release.path"
  let bad_name = error-of { ctx-of (project ($mix | update release {mix: {name: "My-App"}})) }
  has $bad_name "release.mix.name"
  let neither = error-of { ctx-of (project ($mix | update release {build: "make"})) }
  has $neither "release.path"
  # A release name mix.exs does not declare: refused before anything is built or uploaded.
  let app = scratch
  for f in [mix.exs lib] { cp -r ($env.HK_TEST_ROOT | path join examples/elixir_app $f) $app }
  use ../nu-modules/hk/mix.nu
  let unknown = error-of { mix build {release: {mix: {name: nope, env: prod}, path: ($app | path join _build/prod/rel/nope)}, project: $app, version: v1, app: x, quiet: true, span: (metadata $app).span} }
  has $unknown "declares no release nope"
  has $unknown "it declares: elixir_app"
  assert not ($app | path join _build/prod/rel | path exists) "something was built"
  # A one-off command in the instance's context: its user, env file, folder, storage; tmp of its own.
  use ../nu-modules/hk/live.nu [sandbox]
  let props = sandbox $ctx 4001
  assert equal $props.User hk-shop
  assert equal $props.EnvironmentFile "-/opt/hk/shop/env/web.4001.env"
  assert equal $props.WorkingDirectory "/opt/hk/shop/ports/4001"
  assert ("RELEASE_NODE=shop_4001@127.0.0.1" in $props.Environment)
  assert (($props.Environment | last 2 | first) =~ '^RELEASE_TMP=/run/hk-shop-once-') $"($props.Environment)"
}

export def "test deploy config: hk merge keeps agreeing resources once, joins their hosts, refuses conflicts naming both" [] {
  let a = {hosts: {w1: {address: 10.0.0.1}}, resources: [{type: dir, path: /srv/shared, mode: "0755", hosts: [w1]} {type: service, name: caddy.service, reload_on: ["file:/a"], hosts: [w1]}], deploy: {app: a}}
  let b = {hosts: {w2: {address: 10.0.0.2}}, resources: [{type: dir, path: /srv/shared, mode: "0755", hosts: [w2]} {type: service, name: caddy.service, reload_on: ["file:/b"], hosts: [w2]}], deploy: {app: b}}
  let merged = [$a $b {resources: [{type: file, path: /etc/motd, content: "hi\n"}]}] | hk merge
  assert equal ($merged.hosts | columns) [w1 w2]
  assert equal ($merged.resources | length) 3
  assert equal ($merged.resources | where type == dir | first | get hosts) [w1 w2]
  assert equal ($merged.resources | where type == service | first | get reload_on) ["file:/a" "file:/b"]
  # A resource for every host stays one for every host.
  assert equal ($merged.resources | where type == file | first | get -o hosts) null
  # Each host plans only the resources given to it.
  let dir = scratch
  let per_host = {hosts: {a: {local: true}, b: {local: true}}, resources: [{type: dir, path: $"($dir)/for-a", hosts: [a]} {type: dir, path: $"($dir)/for-b", hosts: b} {type: dir, path: $"($dir)/for-all"}]}
  assert equal ($per_host | hk plan a --quiet | get id | sort) [$"dir:($dir)/for-a" $"dir:($dir)/for-all"]
  assert equal ($per_host | hk plan b --quiet | get id | sort) [$"dir:($dir)/for-all" $"dir:($dir)/for-b"]
  let unknown = error-of { {hosts: {a: {local: true}}, resources: [{type: dir, path: /x, hosts: [zz]}]} | hk plan a }
  has $unknown "zz"
  let refused = error-of { [$a ($b | update resources.0.mode "0700")] | hk merge }
  has $refused "dir:/srv/shared"
  has $refused "config 1 (app a)"
  has $refused "config 2 (app b)"
  has $refused "mode"
  let kinds = error-of { [$a {resources: [{type: file, path: /srv/shared, content: ""}]}] | hk merge }
  has $kinds "/srv/shared is a dir in config 1 (app a) but a file in config 2"
  let hosts = error-of { [$a {hosts: {w1: {address: 10.9.9.9}}}] | hk merge }
  has $hosts "hosts.w1 is declared differently"
}
