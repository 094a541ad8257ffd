//! `hk exec`: one command line on many hosts, each over its own connection, with what it printed.

use anyhow::Result;

use super::fanout::for_each_host;
use crate::app::context::RunContext;
use crate::transport::{Credentials, ScriptOutput, Target, sudo_failure};

/// Run `command` through `sh -c` on every target (under `sudo -n` where the target says so), in
/// `context` (see [`RunContext`]: beside or inside an app's instance).
pub fn exec(
    targets: &[(String, Target)],
    command: &str,
    context: &RunContext,
    parallel: usize,
    credentials: &Credentials,
) -> Vec<(String, Result<ScriptOutput>)> {
    let command = match context.command_line(command, false) {
        Ok(line) => line,
        Err(e) => {
            let message = format!("{e:#}");
            return targets.iter().map(|(n, _)| (n.clone(), Err(anyhow::anyhow!("{message}")))).collect();
        }
    };
    let command = command.as_str();
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    for_each_host(&names, parallel, |host| {
        let target = targets
            .iter()
            .find(|(n, _)| n == host)
            .map(|(_, t)| t)
            .ok_or_else(|| anyhow::anyhow!("no target for {host}"))?;
        let mut transport = target.connect(credentials)?;
        // In / with umask 022, as a login would be, never in the directory the plugin started in;
        // the command itself is handed whole to a shell of its own (a trailing `&` stays its own).
        let line = format!("cd / && umask 022 && exec sh -c {}", crate::quote::q(command)?);
        let out = transport.exec(&line, Box::new(std::io::empty()), &mut |_| {})?;
        sudo_failure(&out, host)?;
        Ok(out)
    })
}
