# The shared test guest: one qemu instance (Debian 12, systemd, sshd) per test run, brought up by
# tests/run.nu through `hk instance ensure` before the `test_guest*` files run, destroyed after.
# Its files live under $env.HK_INSTANCES_DIR; the image cache is reused across runs.

export const instance = "hk-test"

# The config every guest test starts from: the instance and the host `guest` running on it.
export def config []: nothing -> record {
  {
    instances: {hk-test: {backend: qemu, lifecycle: ephemeral, memory: 1024, cpus: 2}}
    hosts: {guest: {instance: $instance, ssh: {timeout: 10min}}}
  }
}

export def up []: nothing -> record {
  config | hk instance ensure $instance
}

export def down []: nothing -> record {
  config | hk instance destroy $instance
}

# Run a command line as root in the guest; returns its stdout (fails on a non-zero exit).
export def sh [command: string]: nothing -> string {
  let out = config | hk exec $command guest | first
  if $out.exit_code != 0 {
    error make {msg: $"($command) failed in the guest \(exit ($out.exit_code)\): ($out.stderr)"}
  }
  $out.stdout
}
