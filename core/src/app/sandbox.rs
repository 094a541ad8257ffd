//! Commands run in an app unit's context: `systemd-run --pipe --wait` with the unit's own properties
//! (its dynamic user, state folders, environment files, working directory), so a migration or a
//! one-off command sees what the running instance sees and writes its files as the same user.

use anyhow::{Result, bail};

use crate::quote::q;

/// Properties a transient service may take from an app's unit (what decides its user, files and
/// environment); anything else in a unit record is left out.
pub const PROPERTIES: &[&str] = &[
    "User",
    "Group",
    "DynamicUser",
    "Environment",
    "EnvironmentFile",
    "WorkingDirectory",
    "StateDirectory",
    "RuntimeDirectory",
    "RuntimeDirectoryPreserve",
    "ReadWritePaths",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
];

/// The shell line that runs `command` (through `sh -c`) as a transient service with `properties`
/// (`(name, value)`, in order; a name may repeat). `terminal`: a pseudo-terminal for an interactive
/// session (`--pty`) instead of pipes. The unit name is left to systemd, and the unit is collected
/// when it ends, failed or not.
pub fn command_line(command: &str, properties: &[(String, String)], terminal: bool) -> Result<String> {
    if command.trim().is_empty() {
        bail!("no command to run");
    }
    let mut line = vec![
        "systemd-run".to_string(),
        "--quiet".into(),
        "--wait".into(),
        "--collect".into(),
        "--service-type=exec".into(),
        if terminal { "--pty".into() } else { "--pipe".into() },
    ];
    for (name, value) in properties {
        if !PROPERTIES.contains(&name.as_str()) {
            bail!(
                "{name} is not a property a command can take from its unit (known: {})",
                PROPERTIES.join(", ")
            );
        }
        if value.contains('\n') {
            bail!("{name}: a property value is one line");
        }
        line.push("-p".into());
        line.push(q(&format!("{name}={value}"))?);
    }
    line.push("--".into());
    line.push("sh".into());
    line.push("-c".into());
    line.push(q(command)?);
    Ok(line.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_value_and_keeps_order() {
        let props = vec![
            ("DynamicUser".to_string(), "yes".to_string()),
            ("Environment".to_string(), "A=1 B".to_string()),
            ("EnvironmentFile".to_string(), "-/opt/hk/a/env/web.4000.env".to_string()),
        ];
        let line = command_line("echo 'hi' $HOME", &props, false).unwrap();
        // What the host's shell hands systemd-run, word by word.
        let words = shlex::split(&line).unwrap();
        assert_eq!(
            words,
            [
                "systemd-run",
                "--quiet",
                "--wait",
                "--collect",
                "--service-type=exec",
                "--pipe",
                "-p",
                "DynamicUser=yes",
                "-p",
                "Environment=A=1 B",
                "-p",
                "EnvironmentFile=-/opt/hk/a/env/web.4000.env",
                "--",
                "sh",
                "-c",
                "echo 'hi' $HOME",
            ]
        );
    }

    #[test]
    fn refuses_unknown_properties_and_empty_commands() {
        let props = vec![("ExecStartPre".to_string(), "/bin/rm -rf /".to_string())];
        assert!(command_line("true", &props, false).is_err());
        assert!(command_line("  ", &[], false).is_err());
        assert!(command_line("true", &[], true).unwrap().contains("--pty"));
    }
}
