# `hk build …`: the release apart from a deploy, for CI — build it here (`hk build`), put it on
# every host without starting anything (`build upload`), both (`build deliver`), or say what would
# be built (`build details`). `hk deploy --version V --skip-build` then deploys it later.

use config.nu [load fail why]
use lock.nu [holding]
use audit.nu [write]
use phases.nu [apply-phase by-phase]
use deploy.nu [build cache-of]
use mix.nu [is-mix]

# The release of the context, uploaded and unpacked on its hosts, `current` untouched.
def upload-rows [ctx: record]: nothing -> table {
  let manifest = cache-of $ctx | path join $"($ctx.app)-($ctx.version).json"
  if not ($manifest | path exists) {
    fail $"release ($ctx.version) of ($ctx.app) is not built here \(no ($manifest)\)" $ctx.span $"build it first: hk build --version ($ctx.version)"
  }
  holding $ctx $"build upload ($ctx.version)" null {|ctx|
    try {
      let rows = apply-phase $ctx upload [{type: release, name: $ctx.app, version: $ctx.version, artifact: $manifest, root: $ctx.root, current: false, keep: $ctx.retain}]
      write $ctx upload ok $ctx.version
      $rows
    } catch {|e|
      try { write $ctx upload failed $ctx.version (why $e) } catch { }
      fail $"uploading ($ctx.app) ($ctx.version) failed: (why $e)" $ctx.span "the rows above show the host that failed; nothing was started"
    }
  }
}

# Build the app's release here, as a deploy would (release.build, a Mix release, the tarball).
#
# The tarball and its manifest go to this machine's release cache, where `hk build upload` and
# `hk deploy --skip-build` find them by version. One row: {version, artifact, files, size}.
@example "Build the release CI will deploy" { hk build --version 1.4.2 }
export def main [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --version: string           # version to build (default: the git short sha, -dirty when changed, else a UTC timestamp)
  --quiet (-q)                # no progress on stderr
]: nothing -> record<version: string, artifact: string, took: duration> {
  let ctx = load $config $destination $version (metadata $config).span | upsert quiet $quiet
  let built = build $ctx
  {version: $ctx.version, artifact: $built.artifact, took: $built.row.duration}
}

# Upload a release built here (`hk build`) to every host and unpack it; nothing starts.
@example "Put 1.4.2 on every host, ready to deploy" { hk build upload --version 1.4.2 }
export def "build upload" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --version: string           # the version built (default: the git short sha, -dirty when changed, else a UTC timestamp)
  --quiet (-q)                # no progress on stderr
]: nothing -> table {
  let ctx = load $config $destination $version (metadata $config).span --roles=$roles --hosts=$hosts | upsert quiet $quiet
  upload-rows $ctx | by-phase
}

# Build the release here and upload it to every host: what CI runs before a later
# `hk deploy --version V --skip-build`.
@example "Build and deliver 1.4.2" { hk build deliver --version 1.4.2 }
export def "build deliver" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --roles (-r): string        # only these roles (comma list, * wildcards)
  --hosts: string             # only these hosts (comma list, * wildcards)
  --version: string           # version to build (default: the git short sha, -dirty when changed, else a UTC timestamp)
  --quiet (-q)                # no progress on stderr
]: nothing -> table {
  let ctx = load $config $destination $version (metadata $config).span --roles=$roles --hosts=$hosts | upsert quiet $quiet
  let built = build $ctx
  [$built.row] | append (upload-rows $ctx) | by-phase
}

# What `hk build` would build: from where, how, which version, and whether it is built already.
@example "What CI would build" { hk build details | select version kind built }
export def "build details" [
  --config (-c): string       # deploy config (default config/deploy.nu, then config/deploy.nuon)
  --destination (-d): string  # destination merged over the base config
  --version: string           # version (default: the git short sha, -dirty when changed, else a UTC timestamp)
]: nothing -> record<app: string, version: string, kind: string, project: string, folder: string, command: string, artifact: string, built: bool> {
  let ctx = load $config $destination $version (metadata $config).span
  let manifest = cache-of $ctx | path join $"($ctx.app)-($ctx.version).json"
  let mix = is-mix $ctx
  let own = $ctx.release.build? | default ""
  let command = if $mix {
    let m = $ctx.release.mix
    [$own $"MIX_ENV=($m.env) mix release ($m.name) --overwrite"] | where $it != "" | str join " && "
  } else { $own }
  {
    app: $ctx.app
    version: $ctx.version
    kind: (if $mix { "mix release" } else { "folder" })
    project: $ctx.project
    folder: $ctx.release.path
    command: $command
    artifact: $manifest
    built: ($manifest | path exists)
  }
}
