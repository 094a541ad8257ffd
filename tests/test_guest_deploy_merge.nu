# Composed state on the shared deploy guest (`hk-deploy`): two apps' steady states (`hk deploy
# state`) and a hand-written hk config merged into one plan of the host, applied, then all noop;
# a resource two sources declare differently is refused with both named.
use std/assert
use lib/helpers.nu *
use lib/guest.nu
use lib/deploy.nu *
use ../nu-modules/hk

def service [prefix: string]: nothing -> string {
  $"($prefix)-(random chars -l 6 | str lowercase)"
}

export def "test guest deploy merge: two apps and a hand-written file in one plan, applied, then noop, a conflict refused" [] {
  let a = project (service merge-a) 6600 --extra {env: {secret: [SHARED_TOKEN]}}
  let b = project (service merge-b) 6700 --extra {env: {secret: [SHARED_TOKEN]}}
  # The same secret name with a different value in each app: the states keep them apart.
  for pair in [[$a "token-of-a"] [$b "token-of-b"]] {
    mkdir ($pair.0.dir | path join .hk)
    $"SHARED_TOKEN=($pair.1)\n" | save ($pair.0.dir | path join .hk/secrets)
    do { cd $pair.0.dir; hk setup --version v1 --quiet | ignore }
  }
  let file = $"/etc/hk-merge-(random chars -l 6 | str lowercase).txt"
  let infra = {
    hosts: {guest: {instance: $guest.deploy_instance, ssh: {timeout: 10min}}}
    instances: {($guest.deploy_instance): (guest spec)}
    resources: [{type: file, path: $file, content: "the host's own file\n", mode: "0644"}]
  }
  let state_a = hk deploy state -c $a.config
  let state_b = hk deploy state -c $b.config
  assert equal $state_a.deploy.app $a.service
  # Env files name their secrets by the app, never hold them.
  assert not ($state_a | to nuon | str contains "token-of-a") "a secret value is in the state"
  let secrets = (hk secrets env -c $a.config) | merge (hk secrets env -c $b.config)
  let merged = [$state_a $state_b $infra] | hk merge
  # What both apps declare (the root folder, Caddy) is there once.
  let ids = $merged.resources | each {|r| $"($r.type):($r.path? | default $r.name?)" }
  assert equal ($ids | uniq | length) ($ids | length) "a resource is declared twice"
  let caddy = $merged.resources | where type == service and name? == caddy.service | first
  assert equal ($caddy.reload_on | length) 2 $"caddy reloads for: ($caddy.reload_on)"
  let plan = with-env $secrets { $merged | hk plan guest --quiet }
  let changing = $plan | where action != noop
  assert equal ($changing | get id) [$"file:($file)"] $"changes: ($changing | select action id | to nuon)"
  with-env $secrets { $merged | hk apply guest --confirm --quiet | ignore }
  assert equal (guest sh --on $guest.deploy_instance $"cat ($file)") "the host's own file\n"
  let again = with-env $secrets { $merged | hk plan guest --quiet }
  assert equal ($again | where action != noop | length) 0 $"not in sync: ($again | where action != noop | select action id | to nuon)"
  # Both apps still serve.
  assert equal (answer $a) v1
  assert equal (answer $b) v1
  # One path declared two ways: refused, both sources named.
  let other = $infra | update resources [{type: file, path: (app-path-of $a "active_port"), content: "1\n", mode: "0644"}]
  let refused = error-of { [$state_a $other] | hk merge }
  has $refused $"file:(app-path-of $a active_port)"
  has $refused $"app ($a.service)"
  has $refused "config 2"
  guest sh --on $guest.deploy_instance $"rm -f ($file)" | ignore
}

# A path of the app of project `p` on the guest.
def app-path-of [p: record, leaf: string]: nothing -> string {
  $"/opt/hk/($p.service)/($leaf)"
}
