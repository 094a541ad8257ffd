# Part 1: plan and apply dirs, files and links on the local host.
use std/assert
use lib/helpers.nu *

def tree [root: string] {
  {
    hosts: {local: {local: true}}
    resources: [
      {type: dir, path: $root, mode: "0755"}
      {type: dir, path: ($root | path join etc), mode: "0750"}
      {type: file, path: ($root | path join etc/app.conf), content: "port = 8080\n", mode: "0640"}
      {type: file, path: ($root | path join etc/motd), content: "hello\n"}
      {type: link, path: ($root | path join current), target: etc}
    ]
  }
}

export def "test plan, filter, apply, plan again is all noop" [] {
  let root = (scratch | path join site)
  let config = tree $root
  let plan = $config | hk plan local
  assert equal ($plan | length) 5
  assert equal ($plan.action | uniq) [create]
  # What matters first, so a terminal shows it; the structured rest after.
  assert equal ($plan | columns | first 10) [host action type name summary reason changes id reversible fingerprint]
  assert equal ($plan | where type == file | get 0.summary) "content, mode 0640"
  assert equal ($plan.host | uniq) [local]

  # A filtered plan applies only its rows.
  let events = $plan | where type == dir | hk apply --confirm
  assert equal ($events | length) 2
  assert equal ($events.status | uniq) [ok]
  assert equal ($events | columns) [host status action id duration message time]
  assert equal ($events.time | each { describe } | uniq) [datetime]
  assert equal ($events.duration | each { describe } | uniq) [duration]
  assert not (($root | path join etc/app.conf) | path exists)

  let rest = $config | hk plan local
  assert equal ($rest | where action == create | get type | sort) [file file link]
  $rest | hk apply --confirm | ignore
  assert equal (open --raw ($root | path join etc/app.conf)) "port = 8080\n"
  assert equal (ls -lD ($root | path join etc/app.conf) | get 0.mode) "rw-r-----"
  assert equal (ls -lD ($root | path join etc) | get 0.mode) "rwxr-x---"
  assert equal (^readlink ($root | path join current)) "etc"

  assert equal ($rest | columns | last) spec "a plan that changes something carries specs"
  let again = $config | hk plan local
  assert equal ($again.action | uniq) [noop]
  assert equal ($again.reason | uniq) [in_sync]
  # Nothing to apply, nothing for apply to carry: no spec column, and apply takes it all the same.
  assert equal ($again | columns) [host action type name reason changes id reversible fingerprint]
  assert equal ($again | hk apply --confirm | length) 0
}

export def "test out-of-band drift shows as update" [] {
  let root = (scratch | path join site)
  let config = tree $root
  $config | hk apply --confirm | ignore
  "changed\n" | save -f ($root | path join etc/motd)
  ^chmod 0600 ($root | path join etc/app.conf)
  rm ($root | path join current)
  ^ln -s /elsewhere ($root | path join current)
  let plan = $config | hk plan local | where action != noop
  assert equal ($plan.id | sort) ([etc/app.conf etc/motd current] | each {|p| $root | path join $p } | zip [file file link] | each {|x| $"($x.1):($x.0)" } | sort)
  assert equal ($plan.action | uniq) [update]
  assert equal ($plan.reason | uniq) [drift]
  let conf = $plan | where name ends-with app.conf | first
  assert equal $conf.changes [{field: mode, from: "0600", to: "0640"}]
  let link = $plan | where type == link | first
  assert equal $link.changes [{field: target, from: /elsewhere, to: etc}]
  assert equal ($plan | where name ends-with motd | get 0.changes.field) [content]
  $plan | hk apply --confirm | ignore
  assert equal (open --raw ($root | path join etc/motd)) "hello\n"
  assert equal (^readlink ($root | path join current)) "etc"
  assert equal (($config | hk plan local).action | uniq) [noop]
}

export def "test stale plan is refused and changes nothing" [] {
  let dir = scratch
  let root = ($dir | path join site)
  let config = tree $root
  mkdir $root
  let out = $dir | path join plan.json
  $config | hk plan local --out $out | ignore
  assert equal (ls -l $out | get 0.mode) "rw-------"
  let artifact = open $out
  assert equal $artifact.format hk-plan
  assert equal $artifact.version 1
  assert ($artifact.hosts.local.identity.machine_id | is-not-empty)
  # Someone else touches a planned path in between.
  mkdir ($root | path join etc)
  let err = error-of { hk apply --plan $out --confirm }
  has $err "stale"
  has $err $"dir:($root)/etc"
  has $err "nothing was changed"
  # Nothing at all was applied: the file planned in the same run does not exist.
  assert not (($root | path join etc/motd) | path exists)

  # The same for piped rows.
  let rows = $config | hk plan local
  "x" | save ($root | path join etc/motd)
  let err = error-of { $rows | hk apply --confirm }
  has $err "stale"
  assert equal (open --raw ($root | path join etc/motd)) "x"
}

export def "test a plan for another machine is refused" [] {
  let root = (scratch | path join site)
  let rows = tree $root | hk plan local | update spec.identity.machine_id "0000-not-this-machine"
  let err = error-of { $rows | hk apply --confirm }
  has $err "not the machine this plan was made for"
  assert not ($root | path exists)
}

export def "test dry-run changes nothing" [] {
  let root = (scratch | path join site)
  let events = tree $root | hk plan local | hk apply --dry-run
  assert equal ($events | length) 5
  assert equal ($events.status | uniq) [dry-run]
  assert not ($root | path exists)
  let err = error-of { tree $root | hk plan local | hk apply }
  has $err "exactly one of --confirm or --dry-run"
  let err = error-of { tree $root | hk plan local | hk apply --confirm --dry-run }
  has $err "exactly one of --confirm or --dry-run"
}

export def "test a failing step stops the apply and names host, resource and stderr" [] {
  let dir = scratch
  let config = {resources: [
    {type: dir, path: ($dir | path join ok1)}
    {type: command, name: boom, run: "echo 'boom: out of luck' >&2; exit 3"}
    {type: dir, path: ($dir | path join zz-after)}
  ]}
  let plan = $config | hk plan local
  let events = error-of { $plan | hk apply --confirm }
  has $events "host local"
  has $events "command:boom"
  has $events "boom: out of luck"
  # It ends with what ran, what failed, what was skipped.
  has $events $"ok: dir:($dir)/ok1; failed: command:boom; skipped: dir:($dir)/zz-after"
  assert (($dir | path join ok1) | path exists)
  assert not (($dir | path join zz-after) | path exists)
  # Leftover temp files are cleaned up.
  assert equal (ls -a $dir | where name =~ '\.hk-' | length) 0
}

export def "test apply --quiet streams failures and a summary, --verbose also what had nothing to do" [] {
  let dir = scratch
  let dirs = {|...names| {resources: ($names | each {|n| {type: dir, path: ($dir | path join $n)} })} }
  do $dirs a | hk plan local --quiet | hk apply --confirm | ignore
  let apply = {|config: record, flags: string|
    ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $"($config | to nuon) | hk plan local --quiet | hk apply --confirm ($flags) | to nuon" | complete
  }
  let quiet = do $apply (do $dirs a b) "--quiet"
  assert equal $quiet.exit_code 0 $quiet.stderr
  assert equal ($quiet.stdout | from nuon | length) 0
  assert equal ($quiet.stderr | str trim) "hk apply: 1 ok on 1 host"
  let failing = do $dirs c | update resources {|c| $c.resources | prepend {type: command, name: boom, run: "exit 3"} }
  let failed = do $apply $failing "--quiet"
  assert not equal $failed.exit_code 0
  has $failed.stderr "hk apply: 1 failed, 1 skipped on 1 host"
  has $failed.stderr "command:boom"
  let verbose = do $apply (do $dirs a b e) "--verbose"
  assert equal $verbose.exit_code 0 $verbose.stderr
  let rows = $verbose.stdout | from nuon
  assert equal ($rows | each {|r| [($r.id | path basename) $r.status] }) [[a skipped] [b skipped] [e ok]]
  assert equal ($rows | where status == skipped | get message | uniq) ["in sync: nothing to do"]
  has (error-of { do $dirs f | hk plan local | hk apply --confirm --quiet --verbose }) "opposite things"
  # An empty table says why on stderr.
  let none = do $apply (do $dirs a b) ""
  assert equal ($none.stdout | from nuon) []
  has $none.stderr "hk apply: nothing to do: every planned row is in sync on its host"
}

export def "test the quickstart that ./setup runs plans, applies and then has nothing left to do" [] {
  let demo = $env.HK_TEST_ROOT | path join examples/quickstart/demo.nu
  let run = ^$env.HK_NU -n --plugins $env.HK_PLUGIN $demo | complete
  assert equal $run.exit_code 0 $"($run.stdout)\n($run.stderr)"
  has $run.stderr "hk plan: 7 to create on 1 host"
  has $run.stderr "hk plan: 7 unchanged on 1 host"
  has $run.stdout "quickstart applied under"
  let root = $env.HK_TEST_ROOT | path join .scratch/quickstart
  assert equal (open ($root | path join etc/app.conf)) "port = 8080\nworkers = 2\n"
  assert equal (^readlink ($root | path join current)) releases/v1
  assert equal (ls -l ($root | path join etc) | get 0.mode) "rw-r-----"
}

export def "test an apply that plans inline reads the host once, and records its run" [] {
  let dir = scratch
  let rr = $dir | path join runs
  let br = $dir | path join backups
  let config = {resources: [{type: dir, path: ($dir | path join site)} {type: file, path: ($dir | path join site/a.txt), content: "a\n"}]}
  let traced = {|code: string|
    with-env {HK_TRACE: 1} { ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $code | complete }
  }
  let probes = {|run: record| $run.stderr | lines | where {|l| $l =~ 'hk trace: probe script' } | length }
  let inline = do $traced $"($config | to nuon) | hk apply local --confirm --track --runs-root ($rr) --backups-root ($br) --made-by 'test: inline' | to nuon"
  assert equal $inline.exit_code 0 $inline.stderr
  assert equal (do $probes $inline) 1
  assert equal ($inline.stdout | from nuon | get status | uniq) [ok]
  assert equal (open ($dir | path join site/a.txt)) "a\n"
  let run = hk runs --local --runs-root $rr --backups-root $br | first
  assert equal [$run.status $run.made_by $run.n_changes] [ok "test: inline" 2]
  # Rows piped in are read again before any change: that is what refuses a stale plan.
  let config = $config | update resources.1.content "b\n"
  let piped = do $traced $"($config | to nuon) | hk plan local --quiet | hk apply --confirm | to nuon"
  assert equal $piped.exit_code 0 $piped.stderr
  assert equal (do $probes $piped) 2
  # The way back of the inline run still knows what was there before.
  hk down --local --last --runs-root $rr --backups-root $br | hk apply --confirm | ignore
  assert not (($dir | path join site) | path exists)
}

export def "test a plan shows what the apply could not do, and such a plan changes nothing" [] {
  let dir = scratch
  "not a dir" | save ($dir | path join blocker)
  mkdir ($dir | path join a-dir) ($dir | path join full)
  "x" | save ($dir | path join full/keep.txt)
  "x" | save ($dir | path join plain.txt)
  let config = {resources: [
    {type: dir, path: ($dir | path join ok1)}
    {type: file, path: ($dir | path join blocker/inside), content: "x"}
    {type: file, path: ($dir | path join a-dir), content: "x"}
    {type: dir, path: ($dir | path join full), state: absent}
    {type: link, path: ($dir | path join plain.txt), state: absent}
    {type: file, path: ($dir | path join owned.txt), content: "x", owner: hk-no-such-user}
    {type: file, path: ($dir | path join new/deeper/file.txt), content: "x"}
  ]}
  let plan = $config | hk plan local
  let errors = $plan | where action == error
  assert equal ($errors.name | each { path basename } | sort) [a-dir blocker full inside owned.txt plain.txt]
  has ($errors | where name =~ inside | get 0.note) $"needs dir:($dir)/blocker, which cannot be applied"
  assert equal ($errors.reason | uniq) [conflict]
  has ($errors | where name =~ blocker | get 0.note) "is a file, not a directory"
  has ($errors | where name =~ full | get 0.note) "is not empty"
  has ($errors | where name =~ owned | get 0.note) "user hk-no-such-user does not exist on host local"
  has ($errors | where name =~ plain | get 0.note) "is a file, not a link"
  # Missing folders above a path are rows of their own, before it.
  let parents = $plan | where reason == parent
  assert equal ($parents.name | each {|p| $p | path relative-to $dir }) [new new/deeper]
  assert equal ($parents.action | uniq) [create]
  let err = error-of { $plan | hk apply --confirm }
  has $err "6 row(s) of the plan cannot be applied; nothing was changed"
  assert not (($dir | path join ok1) | path exists)
  # Left out, the rest applies, parents first.
  $plan | where action != error | hk apply --confirm | ignore
  assert equal (open ($dir | path join new/deeper/file.txt)) "x"
}

export def "test shell metacharacters in paths and contents are data" [] {
  let dir = scratch
  let nasty = [
    "$(touch PWNED)" "`touch PWNED`" "a'b\"c" "semi; touch PWNED" "new\nline" "*" "-rf" "sp ace" "ü✓"
  ]
  let resources = $nasty | enumerate | each {|x|
    [
      {type: file, path: ($dir | path join $"f($x.index) ($x.item)"), content: $"content ($x.item) $\(touch PWNED\) '\"\n"}
      {type: link, path: ($dir | path join $"l($x.index) ($x.item)"), target: $"t ($x.item)"}
    ]
  } | flatten
  let config = {resources: $resources}
  $config | hk plan local | hk apply --confirm | ignore
  assert not (($dir | path join PWNED) | path exists)
  assert not ("PWNED" | path exists)
  for x in ($nasty | enumerate) {
    assert equal (open --raw ($dir | path join $"f($x.index) ($x.item)")) $"content ($x.item) $\(touch PWNED\) '\"\n"
    assert equal (^readlink ($dir | path join $"l($x.index) ($x.item)")) $"t ($x.item)"
  }
  assert equal (($config | hk plan local).action | uniq) [noop]
}

export def "test binary files are byte-exact" [] {
  let dir = scratch
  let src = $dir | path join src.bin
  0x[00 01 02 ff fe 00 0a 0d 27 22 24 28 29 00] | save $src
  let config = {resources: [
    {type: file, path: ($dir | path join a.bin), source: $src}
    {type: file, path: ($dir | path join b.bin), content: 0x[00 ff 00 0a]}
  ]}
  $config | hk plan local | hk apply --confirm | ignore
  assert equal (open --raw ($dir | path join a.bin) | into binary) (open --raw $src | into binary)
  assert equal (open --raw ($dir | path join b.bin) | into binary) 0x[00 ff 00 0a]
  assert equal (($config | hk plan local).action | uniq) [noop]
}

export def "test deletes and absent state" [] {
  let dir = scratch
  mkdir ($dir | path join gone)
  "x" | save ($dir | path join gone.txt)
  ^ln -s x ($dir | path join gone.link)
  let plan = {resources: [
    {type: dir, path: ($dir | path join gone), state: absent}
    {type: file, path: ($dir | path join gone.txt), state: absent}
    {type: link, path: ($dir | path join gone.link), target: x, state: absent}
    {type: file, path: ($dir | path join never.txt), state: absent}
  ]} | hk plan local
  assert equal ($plan.action) [delete delete delete noop]
  $plan | hk apply --confirm | ignore
  assert equal (ls -a $dir | length) 0
}

export def "test --ignore leaves resources alone" [] {
  let root = (scratch | path join site)
  let config = tree $root
  let motd = $"file:($root)/etc/motd"
  let plan = $config | hk plan local --ignore $motd
  assert equal ($plan | where id == $motd | get 0.reason) ignored
  assert equal ($plan | where id == $motd | get 0.action) noop
  $plan | hk apply --confirm | ignore
  assert not (($root | path join etc/motd) | path exists)
  let plan2 = $config | hk plan local --ignore [$motd $"link:($root)/current"]
  assert equal ($plan2 | where reason == ignored | length) 2
  let err = error-of { $config | hk plan local --ignore motd }
  has $err "type:name"
}

export def "test config files: nu with --require, nuon, json, toml, ./hk.nu, relative paths" [] {
  let dir = scratch
  cd $dir
  mkdir mods
  "export def site-dir [] { $env.PWD | path join from-nu }" | save mods/site.nu
  "{resources: [{type: dir, path: (site-dir)}]}" | save cfg.nu
  {resources: [{type: dir, path: ($dir | path join from-nuon)}]} | to nuon | save cfg.nuon
  {resources: [{type: dir, path: ($dir | path join from-json)}]} | to json | save cfg.json
  $"[[resources]]\ntype = \"dir\"\npath = \"($dir)/from-toml\"\n" | save cfg.toml
  assert equal (hk plan local cfg.nu --require mods/site.nu | get 0.name) ($dir | path join from-nu)
  assert equal (hk plan local cfg.nuon | get 0.name) ($dir | path join from-nuon)
  assert equal (hk plan local cfg.json | get 0.name) ($dir | path join from-json)
  assert equal (hk plan local cfg.toml | get 0.name) ($dir | path join from-toml)
  # The config alone (no host) plans the local host; a relative `source` is read beside the config.
  mkdir sub
  "payload" | save sub/data.txt
  {resources: [{type: file, path: ($dir | path join copied.txt), source: data.txt}]} | to nuon | save sub/hk.nuon
  hk plan sub/hk.nuon | hk apply --confirm | ignore
  assert equal (open --raw copied.txt) "payload"
  # ./hk.nu is the default config.
  "{resources: [{type: dir, path: ($env.PWD | path join default-nu)}]}" | save hk.nu
  assert equal (hk plan | get 0.name) ($dir | path join default-nu)
  assert equal (hk plan --local | get 0.host) local
}

export def "test bad input gets a clear error and changes nothing" [] {
  let dir = scratch
  let cases = [
    [config, expect];
    [{resources: [{type: dir}]}, "resources.0.path: missing"]
    [{resources: [{type: dir, path: /x, mode: "999"}]}, "resources.0.mode"]
    [{resources: [{type: dir, path: /x, mode: 644}]}, "ambiguous as a mode"]
    [{resources: [{type: dir, path: /x, mdoe: "0644"}]}, "resources.0.mdoe: unknown field — did you mean `mode`?"]
    [{resources: [{type: file, path: /x, contnet: "x"}]}, "did you mean `content`? (the config has `contnet`)"]
    [{hosts: {web: {adress: 10.0.0.1}}}, "did you mean `address`? (the config has `adress`)"]
    [{resources: [{type: daemon, name: x}]}, "unknown resource type \"daemon\""]
    [{resources: [{type: service, name: x, state: up}]}, "resources.0.state"]
    [{resources: [{type: env_file, path: /x, entries: {A: {vault: y}}}]}, "a secret is {env: VAR}"]
    [{resources: [{type: ready, name: x, checks: [{http: {url: "ftp://x"}}]}]}, "resources.0.checks.0.http.url"]
    [{resources: [{type: dir, path: relative/x}]}, "not an absolute path"]
    [{resources: [{type: file, path: /x, content: 5}]}, "resources.0.content"]
    [{resources: [{type: file, path: ($dir | path join a), content: x}, {type: file, path: ($dir | path join a), content: y}]}, "duplicate id"]
    [{resources: [{type: link, path: /x}]}, "resources.0.target: missing"]
    [{resources: {}}, "resources: expected a list"]
    [{hosts: {web: {local: true}}, resources: [], extra: 1}, "extra: unknown field"]
  ]
  for case in $cases {
    let err = error-of { $case.config | hk plan local }
    has $err $case.expect
  }
  let err = error-of { {resources: []} | hk plan nosuchhost }
  has $err "unknown host \"nosuchhost\""
  let err = error-of { hk plan local ($dir | path join missing.nuon) }
  has $err "not found"
  "{not nuon" | save ($dir | path join broken.nuon)
  let err = error-of { hk plan local ($dir | path join broken.nuon) }
  has $err "cannot parse"
  "error make {msg: 'boom from config'}" | save ($dir | path join broken.nu)
  let err = error-of { hk plan local ($dir | path join broken.nu) }
  has $err "boom from config"
  {format: "something-else", version: 1} | to json | save ($dir | path join other.json)
  let err = error-of { hk apply --plan ($dir | path join other.json) --confirm }
  has $err "not an hk plan"
  {format: "hk-plan", version: 99} | to json | save ($dir | path join future.json)
  let err = error-of { hk apply --plan ($dir | path join future.json) --confirm }
  has $err "version 99"
  let err = error-of { [{id: x}] | hk apply --confirm }
  has $err "no `spec` column"
  assert equal (ls -a $dir | length) 4
}

export def "test config errors point at the file, line and column of the field" [] {
  let dir = scratch
  # A .nu file: nu's parser knows where each value was written.
  "# web\n{\n  resources: [\n    {type: dir, path: /srv/a}\n    {type: file, path: /srv/b, contnet: \"hi\"}\n  ]\n}\n" | save ($dir | path join hk.nu)
  let err = error-of { hk plan local ($dir | path join hk.nu) }
  has $err $"invalid config at resources.1.content \(($dir)/hk.nu:5:41\)"
  has $err "the config has `contnet`"
  # JSON and NUON read the same way; a field that is there but wrong is pointed at itself.
  {resources: [{type: dir, path: /srv/a, mode: "999"}]} | to json | save ($dir | path join hk.json)
  has (error-of { hk plan local ($dir | path join hk.json) }) $"\(($dir)/hk.json:6:"
  "{resources: [\n  {type: dir, path: /srv/a, mode: \"999\"}\n]}" | save ($dir | path join hk.nuon)
  has (error-of { hk plan local ($dir | path join hk.nuon) }) $"\(($dir)/hk.nuon:2:35\)"
  # A piped record: the error's label sits on the value in the code that wrote it.
  "let config = {\n  resources: [\n    {type: file, path: /srv/b, contnet: \"hi\"}\n  ]\n}\n$config | hk plan local\n" | save ($dir | path join piped.nu)
  let run = ^$env.HK_NU -n --plugins $env.HK_PLUGIN ($dir | path join piped.nu) | complete
  assert not equal $run.exit_code 0
  has $run.stderr $"($dir)/piped.nu:3:41"
  has $run.stderr "did you mean `content`?"
}

export def "test examples with results run as documented" [] {
  let commands = scope commands | where name starts-with "hk " | where {|c| $c.examples | is-not-empty }
  assert (($commands | length) >= 2)
  mut checked = 0
  for cmd in $commands {
    for ex in ($cmd.examples | where result != null) {
      let got = ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $"($ex.example) | to nuon" | complete
      assert equal $got.exit_code 0 $"example failed: ($ex.example)\n($got.stderr)"
      assert equal ($got.stdout | str trim) ($ex.result | to nuon) $ex.example
      $checked += 1
    }
  }
  assert ($checked >= 2)
}

export def "test the same tree without the perl file helper" [] {
  let dir = scratch
  let script = $"
    use std/assert
    let root = '($dir)/site'
    let config = {resources: [
      {type: dir, path: $root, mode: '0750'}
      {type: file, path: \($root | path join 'a b.txt'\), content: \"x\\n\", mode: '0600'}
      {type: link, path: \($root | path join l\), target: 'a b.txt'}
    ]}
    $config | hk plan local | hk apply --confirm | ignore
    assert equal \(ls -lD $root | get 0.mode\) rwxr-x---
    assert equal \(open --raw \($root | path join 'a b.txt'\)\) \"x\\n\"
    assert equal \(^readlink \($root | path join l\)\) 'a b.txt'
    {resources: [{type: link, path: \($root | path join l\), target: other}]} | hk plan local | hk apply --confirm | ignore
    assert equal \(^readlink \($root | path join l\)\) other
    assert equal \(\($config | hk plan local | where type != link\).action | uniq\) [noop]
  "
  let run = with-env {HK_NO_PERL: 1} { ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $script | complete }
  assert equal $run.exit_code 0 $run.stderr
}

export def "test remembered hashes never hide a change" [] {
  let dir = scratch
  $env.HK_HASH_CACHE = $dir | path join hash-cache
  let path = $dir | path join app.conf
  let config = {resources: [{type: file, path: $path, content: "aaaa\n"}]}
  # The apply goes on for 300 ms after writing the file, so the hash its end takes is reusable.
  let marker = $dir | path join settled
  let settling = {resources: ($config.resources | append {type: command, name: settle, run: $"sleep 0.3; touch ($marker)", creates: $marker})}
  $settling | hk plan local | hk apply --confirm | ignore
  let cache = glob ($env.HK_HASH_CACHE | path join '*.json')
  assert equal ($cache | length) 1 "the cache was written"
  # The apply hashed the file it wrote, at its end, as a probe does.
  let entries = open ($cache | first) | get entries
  assert equal ($entries | columns) [$path]
  assert equal ($entries | get $path | get sha256) ("aaaa\n" | hash sha256)
  # The plan right after the apply reuses that hash (its trace counts the hashes it did not read);
  # on a file system with whole-second ctimes it takes 2 s.
  let whole_seconds = (^stat -c '%.9Z' $path | str ends-with '.000000000')
  if $whole_seconds { sleep 2100ms; $config | hk plan local | ignore }
  let config_file = $dir | path join hk.nuon
  $config | save $config_file
  let traced = with-env {HK_TRACE: 1} { ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c $"hk plan local ($config_file) | get action | to nuon" | complete }
  assert equal $traced.exit_code 0 $traced.stderr
  assert equal $traced.stdout "[noop]\n"
  assert str contains $traced.stderr "1 hashes remembered"
  # Same size, old mtime: only ctime tells, and it does.
  "bbbb\n" | save -f $path
  ^touch -d "2020-01-01 00:00:00" $path
  let drift = $config | hk plan local
  assert equal $drift.action [update]
  assert equal $drift.0.changes.0.field content
  # Replaced by another file of the same size and an old mtime (a new inode).
  $config | hk plan local | hk apply --confirm | ignore
  assert equal (open ($cache | first) | get entries | get $path | get sha256) ("aaaa\n" | hash sha256)
  let other = $dir | path join other
  "cccc\n" | save -f $other
  ^touch -d "2020-01-01 00:00:00" $other
  ^mv -f $other $path
  assert equal (($config | hk plan local).action) [update]
  # Changed right after the apply hashed it, within the same clock tick if it can: still seen.
  $config | hk plan local | hk apply --confirm | ignore
  "dddd\n" | save -f $path
  assert equal (($config | hk plan local).action) [update]
  # With the cache off the answer is the same.
  assert equal ((with-env {HK_HASH_CACHE: off} { $config | hk plan local }).action) [update]
}

export def "test plan --diff shows what changes in text files, never in secrets or binaries" [] {
  let dir = scratch
  "a\nb\nc\n" | save ($dir | path join app.conf)
  $env.HK_TEST_DIFF_SECRET = "s3cret-in-env"
  let config = {resources: [
    {type: file, path: ($dir | path join app.conf), content: "a\nB\nc\n"}
    {type: file, path: ($dir | path join new.txt), content: "hello\n"}
    {type: file, path: ($dir | path join blob.bin), content: 0x[00 ff]}
    {type: env_file, path: ($dir | path join app.env), entries: {TOKEN: {env: HK_TEST_DIFF_SECRET}}}
  ]}
  let plan = $config | hk plan local --diff --quiet
  assert equal ($plan | columns | first 6) [host action type name summary diff]
  let diff = $plan | where name =~ app.conf | get 0.diff
  has $diff "-b\n+B\n"
  has $diff $"--- ($dir)/app.conf \(host\)"
  has ($plan | where name =~ new.txt | get 0.diff) "+hello"
  assert equal ($plan | where name =~ 'blob|app.env' | get diff) [null null]
  assert not ($plan | to json | str contains "s3cret-in-env")
  # The column does not get in the way of applying the plan.
  $plan | hk apply --confirm | ignore
  assert equal (open --raw ($dir | path join app.conf)) "a\nB\nc\n"
}
