# hk's end-to-end test runner: every `export def "test ..."` of tests/test_*.nu runs in its own
# `nu -n --plugins <built plugin>`; ends with the line `N passed, N failed`.
const root = path self | path dirname | path dirname

def main [
  filter?: string     # run only tests whose file or name contains this
  --jobs (-j): int = 2  # tests run at once
] {
  let nu_bin = $nu.current-exe
  let plugin = $root | path join target/debug/nu_plugin_hk
  let scratch = $root | path join .scratch/tests
  rm -rf $scratch
  mkdir $scratch
  let tests = glob ($root | path join tests/test_*.nu) | sort | each {|file|
    open $file | lines
    | parse --regex '^export def "(?<name>test [^"]+)"'
    | get name
    | each {|name| {file: $file, name: $name} }
  } | flatten
  # A test is called by its name on a nu command line: it must read as one command.
  let unsafe = $tests | where {|t| $t.name =~ "[;|()$`']" }
  if ($unsafe | is-not-empty) {
    print $"test names cannot hold ; | \( \) $ ` or ': ($unsafe.name | str join ', ')"
    exit 1
  }
  let selected = if $filter == null { $tests } else {
    $tests | where {|t| ($t.file | str contains $filter) or ($t.name | str contains $filter) }
  }
  let instances = $root | path join .scratch/instances
  let env_of_tests = {
    HK_TEST_ROOT: $root, HK_TEST_SCRATCH: $scratch, HK_NU: $nu_bin, HK_PLUGIN: $plugin,
    HK_INSTANCES_DIR: $instances, HK_HASH_CACHE: ($scratch | path join hash-cache)
  }
  # Tests in test_guest*.nu share qemu guests (one per kind of file), brought up once through hk.
  let guest_lib = $"use r#'($root)/tests/lib/guest.nu'#"
  let guests = with-env $env_of_tests {
    ^$nu_bin -n --plugins $plugin -c $"($guest_lib); guest for-files ($selected.file | uniq | to nuon) | to nuon" | from nuon
  }
  let needs_guest = $guests | is-not-empty
  for name in $guests {
    print $"bringing up the test guest ($name) \(hk instance ensure; the first run on a machine builds the image, ≈2-3 min\)"
    let started = date now
    let up = with-env $env_of_tests {
      ^$nu_bin -n --plugins $plugin -c $"($guest_lib); guest up ($name) | to nuon" | complete
    }
    if $up.exit_code != 0 {
      print $"the test guest ($name) did not come up:\n($up.stderr)"
      exit 1
    }
    print $"  guest up in ((date now) - $started | format duration sec): ($up.stdout | str trim)"
  }
  print $"running ($selected | length) end-to-end tests"
  # Tests on the load guest run one after another (a Caddy reload by one would fail requests the
  # other counts); every other test is a lane of its own.
  let lanes = $selected | enumerate | group-by --to-table {|t|
    if ($t.item.file | path basename | str starts-with test_guest_load) { "load" } else { $"($t.index)" }
  } | each {|g| $g.items | get item }
  let results = $lanes | par-each --threads $jobs {|lane| $lane | each {|t|
    let started = date now
    let script = $"use r#'($t.file)'# *\n($t.name)"
    let run = with-env $env_of_tests {
      ^timeout 1800 $nu_bin -n --plugins $plugin -c $script | complete
    }
    let took = (date now) - $started
    let label = $"($t.file | path basename) › ($t.name)"
    if $run.exit_code == 0 {
      print $"  ok    ($label) \(($took | format duration sec)\)"
    } else {
      print $"  FAIL  ($label)\n($run.stdout)\n($run.stderr | ansi strip)"
    }
    {name: $label, ok: ($run.exit_code == 0)}
  } } | flatten
  if $needs_guest {
    for name in $guests {
      with-env $env_of_tests {
        ^$nu_bin -n --plugins $plugin -c $"($guest_lib); guest down ($name) | ignore" | complete | ignore
      }
    }
    # Instances of tests that failed before destroying them.
    ^pkill -f $"qemu-system-x86_64 .*($instances)" | complete | ignore
  }
  # Servers of tests that failed before stopping them.
  ^pkill -f $"sshd -f ($scratch)" | complete | ignore
  let failed = $results | where not ok
  if ($failed | is-not-empty) {
    print "failed:"
    $failed | each {|f| print $"  ($f.name)" } | ignore
  }
  print $"($results | where ok | length) passed, ($failed | length) failed"
  if ($failed | is-not-empty) { exit 1 }
}
