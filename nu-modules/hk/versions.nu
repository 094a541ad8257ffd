# Which releases each host of an app holds, which one is live, and when each was deployed.

use config.nu [load facts]
use audit.nu [entries]

# The releases on each host of an app, which one is live, and when each went live.
#
# One row per release per host: {host, version, current, active_port, deployed_at}; deployed_at is
# when the audit log last saw it go live (else when it was unpacked). See `hk docs layout`.
@example "What runs, host by host" { hk versions | where current }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
]: nothing -> table<host: string, version: string, current: bool, active_port: any, deployed_at: any> {
  let ctx = load $config $destination "-" (metadata $config).span --roles=$roles --hosts=$hosts
  let live = entries $ctx | where {|e| $e.result? in [ok retire_failed] and $e.action? in [deploy redeploy rollback setup] }
  let hosts = facts $ctx
  if ($hosts | all {|h| $h.releases | is-empty }) {
    print -e $"hk versions: no release of ($ctx.app) on ($ctx.servers | str join ', ') yet: hk deploy \(or hk setup\) puts one there"
  }
  $hosts | each {|host|
    $host.releases | each {|r|
      let seen = $live | where version == $r.version | get -o 0.time
      {
        host: $host.host
        version: $r.version
        current: ($r.version == $host.current)
        active_port: (if $r.version == $host.current { $host.active_port } else { null })
        deployed_at: ($seen | default $r.unpacked_at)
      }
    }
  } | flatten
}
