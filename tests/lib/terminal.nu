# A real terminal for the tests of interactive commands: `nu` with the plugin in a tmux pane, keys
# typed into it (Ctrl-C included) and what the pane shows.

# Start `code` (Nushell, with hk's module in scope as `hk`) in a new pane, in `dir`, with the environment `vars`;
# the pane stays after nu ends, so its last words can be read. Returns the session.
export def start [dir: string, code: string, --vars: record = {}]: nothing -> string {
  let session = $"hk-test-(random chars -l 6)"
  let assignments = $vars | items {|k, v| $"($k)='($v)'" } | str join " "
  # A script file: the code reaches nu without a shell's quoting in between.
  let script = $dir | path join $".($session).nu"
  $"use '($env.HK_TEST_ROOT)/nu-modules/hk'\n($code)\n" | save $script
  # nu is the pane's own process (exec), so a Ctrl-C reaches it and no shell between.
  let command = $"cd '($dir)' && exec env ($assignments) '($nu.current-exe)' -n --plugins '($env.HK_PLUGIN)' '($script)'"
  ^tmux new-session -d -s $session -x 200 -y 50 $"sleep 0.3; ($command)"
  ^tmux set-option -t $session remain-on-exit on | complete | ignore
  $session
}

# What the pane shows (its last 200 lines).
export def shown [session: string]: nothing -> string {
  ^tmux capture-pane -p -t $session -S -200 | complete | get stdout
}

# Wait until the pane shows `text`; what it shows then (an error after `timeout`).
export def wait-for [session: string, text: string, --timeout: duration = 120sec]: nothing -> string {
  let deadline = (date now) + $timeout
  mut now_shown = shown $session
  while not ($now_shown | str contains $text) {
    if (date now) > $deadline {
      stop $session
      error make {msg: $"the terminal never showed ($text | to nuon):\n($now_shown)"}
    }
    sleep 500ms
    $now_shown = shown $session
  }
  $now_shown
}

# Type `keys` (tmux key names: Enter, C-c, …).
export def keys [session: string, ...keys: string] {
  ^tmux send-keys -t $session ...$keys
}

export def stop [session: string] {
  ^tmux kill-session -t $session | complete | ignore
}
