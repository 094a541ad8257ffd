//! Where a one-off command runs on a host: as a login would run it, beside an app's instance in a
//! transient service of the unit's properties ([`super::sandbox`]), or inside the running instance
//! itself ([`super::within`]).

use anyhow::Result;

#[derive(Clone, Debug, Default)]
pub enum RunContext {
    /// `sh -c` in `/`, as a login shell would.
    #[default]
    Login,
    /// A transient service with these unit properties (`(name, value)`, in order).
    Sandbox(Vec<(String, String)>),
    /// Inside this running service unit: its namespaces, user, environment and cgroup.
    Within(String),
}

impl RunContext {
    /// The shell line that runs `command` here; `terminal`: an interactive session is asked for.
    pub fn command_line(&self, command: &str, terminal: bool) -> Result<String> {
        match self {
            RunContext::Login => Ok(command.to_string()),
            RunContext::Sandbox(properties) => super::sandbox::command_line(command, properties, terminal),
            RunContext::Within(unit) => super::within::command_line(command, unit),
        }
    }
}
