//! nu_plugin_hk: hk's commands for Nushell. Glue only: the engine is hk-core.

// nu-plugin's own error types (LabeledError, ShellError) are large; every command returns them.
#![allow(clippy::result_large_err)]

pub mod commands;
pub mod convert;
pub mod error;
pub mod load;
pub mod locate;
pub mod packages;
pub mod secrets;

use nu_plugin::{Plugin, PluginCommand};

/// Work on inputs larger than this (release builds, uploads) reports progress on stderr.
pub const PROGRESS_FROM: u64 = 32 * 1024 * 1024;

/// How long an SSH session is kept for reuse after its last command.
pub const SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(300);

/// Kept SSH sessions live in this process: a command that may connect asks nu not to stop the
/// plugin when it is idle (its garbage collector would close them). Idle sessions close by themselves
/// after [`SESSION_IDLE`]; the plugin ends with its nu.
pub fn keep_sessions(engine: &nu_plugin::EngineInterface) {
    let _ = engine.set_gc_disabled(true);
}

pub struct HkPlugin;

impl Plugin for HkPlugin {
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").into()
    }

    fn commands(&self) -> Vec<Box<dyn PluginCommand<Plugin = Self>>> {
        vec![
            Box::new(commands::plan::Plan),
            Box::new(commands::apply::Apply),
            Box::new(commands::runs::Runs),
            Box::new(commands::down::Down),
            Box::new(commands::release_build::ReleaseBuild),
            Box::new(commands::release_stale::ReleaseStale),
            Box::new(commands::clean::Clean),
            Box::new(commands::exec::Exec),
            Box::new(commands::target::TargetCommand),
            Box::new(commands::dotenv::Dotenv),
            Box::new(commands::instance_status::InstanceStatus),
            Box::new(commands::instance_ensure::InstanceEnsure),
            Box::new(commands::instance_destroy::InstanceDestroy),
            Box::new(commands::deployment_facts::AppFactsCommand),
            Box::new(commands::deployment_lock::AppLock),
            Box::new(commands::deployment_unlock::AppUnlock),
            Box::new(commands::deployment_audit::AppAudit),
            Box::new(commands::deployment_audit_add::AppAuditAdd),
            Box::new(commands::deployment_finish::AppFinish),
            Box::new(commands::deployment_remove::AppRemove),
            Box::new(commands::group::Group {
                name: "hk instance",
                description: "Machines hk runs for you (qemu guests with systemd): ensure, status, destroy.",
                example: "hk instance | get command",
            }),
            Box::new(commands::group::Group {
                name: "hk deployment",
                description: "An app's state on its hosts, its deploy lock and audit log: what the deploy workflows build on.",
                example: "hk deployment | get command",
            }),
            Box::new(commands::group::Group {
                name: "hk release",
                description: "Release artifacts: reproducible tarballs of a folder, with a manifest.",
                example: "hk release | get command",
            }),
        ]
    }
}
