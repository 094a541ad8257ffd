# hk quickstart: a small app layout on this machine, under a project-local scratch root.
# `hk plan local examples/quickstart/hk.nu` shows what would change; `| hk apply --confirm` does it.
const here = path self | path dirname
let root = ($env.HK_QUICKSTART_ROOT? | default ($here | path join ../../.scratch/quickstart | path expand))

{
  hosts: {local: {local: true}}
  resources: [
    {type: dir, path: $root, mode: "0755"}
    {type: dir, path: ($root | path join etc), mode: "0750"}
    {type: file, path: ($root | path join etc/app.conf), mode: "0640", content: "port = 8080\nworkers = 2\n"}
    {type: dir, path: ($root | path join releases)}
    {type: dir, path: ($root | path join releases/v1)}
    {type: file, path: ($root | path join releases/v1/logo.bin), source: files/logo.bin, mode: 0o644}
    {type: link, path: ($root | path join current), target: releases/v1}
  ]
}
