# Bootstrap the app's hosts, then deploy: the instances hk runs itself brought up, Caddy (and curl, which health checks use) installed, its
# main file importing every app's site — added to a file someone wrote, never over their sites; a
# distribution's untouched default is replaced by a minimal file with a reload grace period — and the
# app's folders and systemd template. Run once per host; running it again changes nothing.

use config.nu [load facts app-path unit hk-config]
use secrets.nu [with-secrets]
use caddy.nu [MAIN VALIDATE main-file import-line]
use phases.nu [apply-phase apply-by-roles template-unit by-phase]
use roles.nu [proxied]
use deploy.nu [roll deploying before-roll running]

# What Caddy's main file needs on hosts with these facts: replaced, a line added, or nothing.
def main-file-resources [ctx: record, host: record]: nothing -> list {
  let caddy = $host.caddy
  let reload = {type: service, name: caddy.service, state: running, enabled: true}
  if $caddy.imports {
    [$reload]
  } else if (not $caddy.main) or $caddy.pristine {
    [
      {type: file, path: $MAIN, content: (main-file $ctx.root $ctx.drain_timeout), mode: "0644", check: $VALIDATE}
      ($reload | insert reload_on [$"file:($MAIN)"])
    ]
  } else {
    let line = import-line $ctx.root
    [
      {type: line, path: $MAIN, line: $line}
      ($reload | insert reload_on [$"line:($MAIN):($line)"])
    ]
  }
}

# Caddy's main file on every host behind it; hosts may differ in what it needs: one plan per kind
# of host.
def main-files [ctx: record]: nothing -> table {
  if ($ctx.web | is-empty) { return [] }
  facts ($ctx | update servers $ctx.web)
  | group-by --to-table {|f| main-file-resources $ctx $f | to nuon }
  | each {|g|
    let hosts = $g.items | get host
    apply-phase ($ctx | update servers $hosts) setup (main-file-resources $ctx ($g.items | first))
  }
  | flatten
}

# Servers on instances hk runs itself, brought up (in seconds once their image exists).
export def ensure-instances [ctx: record]: nothing -> nothing {
  let instances = $ctx.servers | each {|s| $ctx.hosts | get $s | get -o instance } | compact | uniq
  for name in $instances {
    hk-config $ctx | hk instance ensure $name | ignore
  }
}

# What a host needs before any deploy, applied (the caller holds the lock): curl (health checks use
# it), the app's folders and each role's template; Caddy and its main file where a proxied role
# runs. Rows as `apply-phase`'s.
export def bootstrap [ctx: record]: nothing -> table {
  let packages = apply-by-roles $ctx setup $ctx.servers {|rc|
    let dir = app-path $rc
    let caddy = if (proxied $rc $rc.role) { [{type: package, name: caddy}] } else { [] }
    $caddy | append [
      {type: package, name: curl}
      {type: dir, path: $rc.root, mode: "0755"}
      {type: dir, path: $dir, mode: "0755"}
      {type: dir, path: $"($dir)/ports", mode: "0755"}
      {type: dir, path: $"($dir)/env", mode: "0700"}
      {type: service, name: (unit $rc), unit: (template-unit $rc)}
    ]
  }
  # Caddy's main file is shared by every app on a host: when another app's setup changed it since
  # it was read (a stale plan), read it again once.
  let caddy = try { main-files $ctx } catch { main-files $ctx }
  [$packages $caddy] | flatten
}

# Set up the app's hosts, then deploy it.
#
# Brings up the instances hk runs itself, installs Caddy and curl, makes Caddy's main file import
# every app's site, creates the app's folders and systemd template, then deploys as `hk deploy`.
# Running it again changes nothing but the deploy. See `hk docs config` and `hk docs hooks`.
@example "Set up the hosts and deploy" { hk setup }
@example "Set up production's hosts and deploy a version" { hk setup -d production --version 1.4.2 }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --version: string           # version to deploy (default: the git short sha, -dirty when changed, else a UTC timestamp)
  --lock-wait: duration       # wait this long for a deploy lock someone else holds
  --message (-m): string = "" # recorded in the lock while it runs
  --quiet (-q)                # no progress on stderr
  --skip-hooks (-H)           # run none of the project's hooks (.hk/hooks)
  --allow-empty-secrets       # accept secrets whose value is empty
]: nothing -> table {
  let ctx = running (load $config $destination $version (metadata $config).span --roles=$roles --hosts=$hosts) setup --quiet=$quiet --skip-hooks=$skip_hooks
  let ctx = with-secrets $ctx --allow-empty=$allow_empty_secrets
  ensure-instances $ctx
  deploying $ctx $message $lock_wait {|ctx|
    let prepared = bootstrap $ctx
    # The bootstrap changed the hosts (Caddy, folders): what the lock read of them is past.
    let ctx = $ctx | upsert lock_facts null
    let built = before-roll $ctx setup
    [$prepared [$built.row] (roll $ctx $ctx.version $built.artifact setup --prune)] | flatten
  } | by-phase
}
