# The quickstart end to end: plan, apply, plan again (all noop). Run by ./setup.
const here = path self | path dirname
let config = $here | path join hk.nu
let root = $here | path join ../../.scratch/quickstart | path expand
rm -rf $root
mkdir ($root | path dirname)

# Paths shown relative to the scratch root so the tables fit a terminal.
def short [root: string]: table -> table {
  update name {|row| $row.name | str replace $root '<root>' }
}

# A heading, in colour only at a terminal.
def heading [text: string]: nothing -> nothing {
  print (if (is-terminal --stdout) { $"(ansi green)== ($text)(ansi reset)" } else { $"== ($text)" })
}

heading $"hk plan local examples/quickstart/hk.nu   \(<root> = ($root)\)"
hk plan local $config | select name type action summary | short $root | print

heading "hk plan local ... | hk apply --confirm"
hk plan local $config | hk apply --confirm | select id status duration | rename name | short $root | print

heading "hk plan again: nothing left to do"
let again = hk plan local $config
$again | select name action reason | short $root | print
if ($again | any {|row| $row.action != noop }) {
  error make {msg: "the second plan still has changes"}
}
print $"quickstart applied under ($root)"
