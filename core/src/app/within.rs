//! Commands run inside an app's running instance, as `docker exec` joins a running container: the
//! instance's namespaces (its private `/tmp`, its read-only view of the system), its user, its
//! environment as systemd gave it (secrets included), its working folder and its cgroup (so
//! stopping the unit ends the command too). `hk app exec --reuse` runs this way.
//!
//! The environment is read from `/proc/<pid>/environ` by a perl helper on the host and handed to
//! `nsenter` through `exec`, so no value of it is ever on a command line.

use anyhow::{Result, bail};

use crate::quote::q;

/// Reads the instance's environment, user, group and cgroup, joins the cgroup, and execs nsenter
/// into every namespace of the instance with that environment. Arguments: pid, nsenter's path,
/// the command line.
const JOIN: &str = r#"use strict;
my ($pid, $nsenter, $command) = @ARGV;
$nsenter or die "hk: nsenter is not installed on this host (util-linux)\n";
sub lines_of { my ($path, $end) = @_; open(my $f, "<", $path) or die "hk: $path: $!\n"; local $/ = $end; my @l = <$f>; chomp @l; @l }
my %env = map { /\A([^=]+)=(.*)\z/s ? ($1, $2) : () } lines_of("/proc/$pid/environ", "\0");
my %ids = map { /\A(Uid|Gid):\s+(\d+)/ ? ($1, $2) : () } lines_of("/proc/$pid/status", "\n");
my ($cgroup) = map { /\A0::(\/.*)\z/ ? $1 : () } lines_of("/proc/$pid/cgroup", "\n");
defined $ids{Uid} && defined $ids{Gid} or die "hk: no user of process $pid\n";
if (defined $cgroup) {
  open(my $procs, ">", "/sys/fs/cgroup$cgroup/cgroup.procs") or die "hk: joining $cgroup: $!\n";
  print $procs "$$\n";
  close($procs) or die "hk: joining $cgroup: $!\n";
}
%ENV = %env;
exec { $nsenter } "nsenter", "--target", $pid, "--all", "--wd", "--setuid", $ids{Uid}, "--setgid", $ids{Gid}, "--", "sh", "-c", $command;
die "hk: nsenter: $!\n";
"#;

/// The exit status when the unit has no running process to join.
pub const NOT_RUNNING: i32 = 125;

/// The shell line that runs `command` (through `sh -c`) inside the running `unit` (a service name
/// such as `hk-web@4000.service`).
pub fn command_line(command: &str, unit: &str) -> Result<String> {
    if command.trim().is_empty() {
        bail!("no command to run");
    }
    let unit_ok = unit.ends_with(".service")
        && unit.chars().all(|c| c.is_ascii_alphanumeric() || "@._:-".contains(c))
        && !unit.starts_with('-');
    if !unit_ok {
        bail!("{unit:?} is not a service unit name");
    }
    let unit = q(unit)?;
    Ok(format!(
        "set -eu; pid=$(systemctl show --property=MainPID --value {unit}); \
         if [ \"${{pid:-0}}\" -le 0 ]; then echo \"hk: \"{unit}\" has no running process to join\" >&2; exit {NOT_RUNNING}; fi; \
         exec perl -e {} \"$pid\" \"$(command -v nsenter || true)\" {}",
        q(JOIN)?,
        q(command)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_unit_and_quotes_the_command() {
        let line = command_line("echo 'hi' $HOME", "hk-web@4000.service").unwrap();
        let words = shlex::split(&line).unwrap();
        assert!(words.contains(&"echo 'hi' $HOME".to_string()), "{words:?}");
        assert!(line.contains("--value hk-web@4000.service)"), "{line}");
    }

    #[test]
    fn refuses_what_is_not_a_unit_or_a_command() {
        assert!(command_line("true", "hk-web@4000.service; rm -rf /").is_err());
        assert!(command_line("true", "--all").is_err());
        assert!(command_line(" ", "hk-web@4000.service").is_err());
    }
}
