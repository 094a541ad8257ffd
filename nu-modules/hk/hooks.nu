# Hooks: the project's own programs run here at points of a deploy (`.hk/hooks/<name>`, any
# language, or `<name>.nu`, run by this nu with hk loaded), to notify, gate or migrate. A hook runs
# only when its file is executable; its output shows as it runs; a non-zero exit stops the command
# before anything more is switched. The order is in `hk docs hooks`.

use config.nu [fail]
use audit.nu [performer]

# Every hook hk runs, in the order of a deploy.
export const NAMES = [
  pre-connect pre-build post-build pre-deploy pre-app-boot post-app-boot
  pre-proxy-reload post-proxy-reload post-deploy
]

# The hooks that get the deploy's secrets in their environment.
const WITH_SECRETS = [pre-connect pre-deploy post-deploy]

# This module's folder: a `.nu` hook's nu loads hk from it.
const MODULE = path self | path dirname

# How many of a failing hook's last lines its error keeps.
const TAIL = 10

# The folder a project's hooks live in.
export def dir [ctx: record]: nothing -> string {
  $ctx.project | path join .hk hooks
}

# The file that runs hook `name` (an executable `<name>` or `<name>.nu`), or null.
export def find [ctx: record, name: string]: nothing -> any {
  [$name $"($name).nu"]
  | each {|f| dir $ctx | path join $f }
  | where {|p| ($p | path exists) and (ls -l $p | get 0.mode | str substring 2..2) == "x" }
  | get -o 0
}

# Whether hook `name` would run for this context (it exists and hooks are not skipped).
export def exists [ctx: record, name: string]: nothing -> bool {
  not ($ctx.skip_hooks? | default false) and (find $ctx $name) != null
}

# The record a hook gets on its input (JSON on stdin; `$in` in a `.nu` hook): what is deployed
# where, and by whom — never a secret.
export def context [ctx: record, name: string, extra: record]: nothing -> record {
  let version = $ctx.version
  {
    hook: $name
    service: $ctx.service
    app: $ctx.app
    version: $version
    service_version: $"($ctx.app)@($version | str substring 0..<7)"
    hosts: ($extra.hosts? | default $ctx.servers)
    roles: ($ctx.roles | columns)
    destination: ($ctx.destination | default "")
    recorded_at: (date now | date to-timezone UTC | format date "%Y-%m-%dT%H:%M:%SZ")
    performer: (performer)
    lock: ($ctx.holding_lock? | default false)
    command: ($ctx.command? | default deploy)
    subcommand: ($ctx.subcommand? | default ($ctx.command? | default deploy))
  } | merge ($extra | reject -o hosts)
}

# The environment of a hook: the context as HK_* variables (lists as comma lists), plus the
# deploy's secrets for the hooks that get them.
def environment [ctx: record, record: record]: nothing -> record {
  let vars = $record | reject hook | transpose key value | reduce --fold {} {|v, acc|
    let text = match ($v.value | describe | str replace -r '<.*' '') {
      list => ($v.value | str join ",")
      bool => ($v.value | into string)
      _ => ($v.value | into string)
    }
    $acc | upsert $"HK_($v.key | str uppercase)" $text
  }
  let secrets = if $record.hook in $WITH_SECRETS { $ctx.secret_values? | default {} } else { {} }
  $secrets | merge $vars
}

# Run hook `name` if the project has it (unless hooks are skipped); `extra` joins its context
# (`hosts` for a boot batch, `runtime` for post-deploy). Raises, naming the hook and keeping its
# last lines, when it exits non-zero.
export def fire [ctx: record, name: string, extra: record = {}]: nothing -> nothing {
  if ($ctx.skip_hooks? | default false) { return }
  let file = find $ctx $name
  if $file == null { return }
  let record = context $ctx $name $extra
  let marker = $"hk-hook-exit-(random chars -l 12):"
  let quiet = $ctx.quiet? | default false
  if not $quiet { print -e $"hook    ($name) \(($file)\)" }
  # The exit status comes back as a last line: a stream of lines does not carry it.
  let program = if ($file | str ends-with ".nu") {
    let plugin = plugin list | where name == hk | get -o 0.filename
    let plugins = if $plugin == null { [] } else { [--plugins $plugin] }
    # The record first: stdin feeds the script's first pipeline.
    let script = $"let hk_hook_input = \(from json\)\nuse r#'($MODULE)'#\n$hk_hook_input | do { source r#'($file)'# } | ignore"
    [$nu.current-exe -n ...$plugins --stdin -c $script]
  } else { [$file] }
  let lines = with-env (environment $ctx $record) {
    $record | to json | ^sh -c $"exec 2>&1; \"$@\"; echo \"($marker)$?\"" hk-hook ...$program
    | lines
    | each {|l|
      if not ($l | str starts-with $marker) and not $quiet { print -e $"  ($name)> ($l)" }
      $l
    }
    | collect
  }
  let code = $lines | where {|l| $l | str starts-with $marker } | get -o 0 | default $"($marker)1" | str replace $marker "" | into int
  if $code != 0 {
    let said = $lines | where {|l| not ($l | str starts-with $marker) } | last $TAIL | str join "\n"
    error make {
      msg: $"Hook `($name)` failed \(exit ($code)\): ($said)"
      label: {text: $"($file) exited with ($code)", span: $ctx.span}
      help: "fix the hook, or skip hooks with -H"
    }
  }
}
