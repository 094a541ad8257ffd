# `hk instance` on bad input: clear errors, never a hang, nothing started. No qemu guest needed.
use std/assert
use lib/helpers.nu *

def with-dir [code: closure] {
  let dir = scratch
  with-env {HK_INSTANCES_DIR: $dir} { do $code $dir }
}

export def "test instance: absent instances and declarations" [] {
  with-dir {|dir|
    let config = {instances: {demo: {backend: qemu}, web: {}}}
    let status = $config | hk instance status demo
    assert equal $status.state absent
    assert equal $status.backend qemu
    assert equal $status.name demo
    assert equal (($config | hk instance status).name) [demo web]
    assert equal ($config | hk instance destroy demo | get state) absent
  }
}

export def "test instance: bad input is refused with what to do" [] {
  with-dir {|dir|
    let err = error-of { {instances: {demo: {backend: lxd}}} | hk instance status demo }
    has $err "instances.demo.backend"
    has $err "unknown backend \"lxd\""
    has $err qemu
    let err = error-of { {instances: {demo: {backend: qemu}}} | hk instance ensure nope }
    has $err "unknown instance \"nope\""
    has $err demo
    let err = error-of { {instances: {demo: {}}, hosts: {web: {instance: other}}} | hk plan web }
    has $err "hosts.web.instance"
    has $err "no instance \"other\""
    let err = error-of { {instances: {demo: {memory: 12}}} | hk instance status demo }
    has $err "instances.demo.memory"
    let err = error-of { {instances: {demo: {lifecycle: forever}}} | hk instance status demo }
    has $err "persistent or ephemeral"
    let err = error-of { {instances: {demo: {}}, hosts: {web: {instance: demo, address: "10.0.0.1"}}} | hk plan web }
    has $err "takes its address from it"
  }
}

export def "test instance: a host on an instance that is not running says how to start it" [] {
  with-dir {|dir|
    let config = {instances: {demo: {}}, hosts: {web: {instance: demo}}, resources: []}
    let err = error-of { $config | hk plan web }
    has $err "hk instance ensure demo"
    has $err "instance demo is absent"
  }
}

export def "test instance: a second ensure while one runs is refused at once" [] {
  with-dir {|dir|
    mkdir ($dir | path join demo)
    let lock = $dir | path join demo lock
    # Another hk holds the instance's lock (flock, as hk takes it) for a few seconds.
    ^sh -c $"flock -n '($lock)' sleep 20 >/dev/null 2>&1 &"
    sleep 300ms
    let started = date now
    let err = error-of { {instances: {demo: {}}} | hk instance ensure demo }
    has $err "being brought up or destroyed by another hk"
    has $err "hk instance status demo"
    assert (((date now) - $started) < 10sec) "the second ensure waited instead of failing"
    let err = error-of { {instances: {demo: {}}} | hk instance destroy demo }
    has $err "being brought up or destroyed"
    ^pkill -f $"flock -n ($lock)" | complete | ignore
  }
}

export def "test instance: a stale pid file shows as stopped with a note" [] {
  with-dir {|dir|
    mkdir ($dir | path join demo)
    let dead = ^sh -c 'echo $$' | str trim
    $dead | save ($dir | path join demo qemu.pid)
    let status = {instances: {demo: {}}} | hk instance status demo
    assert equal $status.state stopped
    has $status.note $"pid ($dead)"
    assert equal $status.pid null
  }
}

export def "test instance: missing qemu tools are named with the package that brings them" [] {
  with-dir {|dir|
    let cache = scratch
    let out = with-env {PATH: ["/nonexistent"], HK_IMAGE_CACHE: $cache} {
      ^$env.HK_NU -n --plugins $env.HK_PLUGIN -c "{instances: {demo: {}}} | hk instance ensure demo" | complete
    }
    assert ($out.exit_code != 0)
    has $out.stderr "mmdebstrap is not installed"
    has $out.stderr "apt-get install"
    # Nothing was started or left behind.
    assert equal ({instances: {demo: {}}} | hk instance status demo | get state) absent
  }
}
