# `hk merge`: several hk configs — apps' steady states (`hk deploy state`) and hand-written ones —
# as one. A resource declared by several sources is kept once when they agree (their `hosts`,
# `after`, `reload_on` and `restart_on` lists joined); one path or unit declared differently by two
# sources is refused, naming both.

use errors.nu [fail]

# Fields whose lists add up when sources agree on everything else: which hosts hold a resource, and
# what it waits for or reacts to (Caddy reloads for every app's site).
const JOINED = [hosts after reload_on restart_on]

# A resource's id as hk names it (`type:path`, `type:name`).
def id-of [r: record]: nothing -> string {
  $"($r.type? | default '?'):($r.path? | default ($r.name? | default ''))"
}

# The first field two declarations of one resource differ in.
def differing [a: record, b: record]: nothing -> string {
  $a | columns | append ($b | columns) | uniq | where {|k| ($a | get -o $k) != ($b | get -o $k) } | first
}

# One list of resources from `sources` ([{name, resources}]): each id once, its joined fields
# joined (`hosts` null when any source means every host); a conflict fails at `span`.
export def combine [sources: list<record>, span: record]: nothing -> list<record> {
  let all = $sources | each {|s| $s.resources | each {|r| {id: (id-of $r), path: ($r.path? | default null), type: $r.type?, source: $s.name, resource: $r} } } | flatten
  # Two kinds of resource on one path (a file where another source wants a folder).
  let by_path = $all | where path != null and type != line | group-by --to-table path | where {|g| ($g.items | get type | uniq | length) > 1 }
  if ($by_path | is-not-empty) {
    let g = $by_path | first
    let a = $g.items | first
    let b = $g.items | where type != $a.type | first
    fail $"($g.path) is a ($a.type) in ($a.source) but a ($b.type) in ($b.source)" $span "one path has one owner: change or drop one of them"
  }
  $all | group-by --to-table id | each {|g|
    let first = $g.items | first
    let core = $first.resource | reject -o ...$JOINED
    for other in ($g.items | skip 1) {
      let theirs = $other.resource | reject -o ...$JOINED
      if $theirs != $core {
        let field = differing $core $theirs
        fail $"($g.id) is declared differently by ($first.source) and ($other.source): ($field) is ($core | get -o $field | to nuon) in one, ($theirs | get -o $field | to nuon) in the other" $span "make them agree, or leave the resource out of one of them"
      }
    }
    $JOINED | reduce --fold $core {|field, acc|
      let lists = $g.items | each {|i| $i.resource | get -o $field }
      if $field == hosts and ($lists | any {|l| $l == null }) { return $acc }
      let joined = $lists | compact | flatten | uniq
      if ($joined | is-empty) { $acc } else { $acc | insert $field $joined }
    }
  }
}

# Records of one kind (`hosts`, `instances`) from every source: a name declared differently twice
# is refused.
def join-named [configs: list<record>, field: string, span: record]: nothing -> record {
  $configs | reduce --fold {} {|c, acc|
    $c.config | get -o $field | default {} | transpose name value | reduce --fold $acc {|e, acc2|
      let had = $acc2 | get -o $e.name
      if $had != null and $had.value != $e.value {
        fail $"($field).($e.name) is declared differently by ($had.source) and ($c.name)" $span $"declare ($e.name) once, the same way in both"
      }
      $acc2 | upsert $e.name {value: $e.value, source: ($had.source? | default $c.name)}
    }
  } | transpose name e | reduce --fold {} {|x, acc| $acc | insert $x.name $x.e.value }
}

# Several hk configs as one: hosts, instances and resources of every source.
#
# Sources are the piped records in order: app states (`hk deploy state`, named by their app) and
# hk configs (`open infra/hk.nuon`, named by their place in the list). A resource several declare
# the same way is kept once, for all the hosts they give it to; a resource (or host) declared
# differently is an error naming both sources. See `hk docs elixir`.
@example "Two apps and the host's own config: one plan of the whole host" { [(hk deploy state -c a/config/deploy.nu) (hk deploy state -c b/config/deploy.nu) (open infra/hk.nuon)] | hk merge | hk plan web1 }
@example "Merge two hand-written configs" { [{resources: [{type: dir, path: /srv/a}]} {resources: [{type: dir, path: /srv/b}]}] | hk merge | get resources | length } --result 2
export def main []: list<record> -> record<hosts: record, instances: record, resources: list> {
  let sources = $in
  let span = (metadata $sources).span
  let configs = $sources | enumerate | each {|c|
    let app = $c.item.deploy?.app? | default null
    {name: (if $app == null { $"config ($c.index + 1)" } else { $"config ($c.index + 1) \(app ($app)\)" }), config: $c.item}
  }
  {
    hosts: (join-named $configs hosts $span)
    instances: (join-named $configs instances $span)
    resources: (combine ($configs | each {|c| {name: $c.name, resources: ($c.config.resources? | default [])} }) $span)
  }
}
