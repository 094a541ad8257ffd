//! Plan (probe + diff) and apply (staleness check + one script of steps).

mod apply;
pub mod busy;
mod clean;
mod down;
mod exec;
mod fanout;
mod follow;
pub mod hash_cache;
mod order;
mod plan;
pub mod read_ahead;
mod text_diff;

pub use apply::{ApplyOptions, Interrupted, Then, apply};
pub use clean::{Installed, clean, order_versions, release_bases, removable};
pub use down::{DownOptions, down_from_plan, down_from_run, fetch_runs};
pub use exec::exec;
pub use fanout::{failed_hosts_error, for_each_host};
pub use follow::{Followed, Follower, follow};
pub use order::dependency_order;
pub use plan::{PlanOptions, PlanOutcome, Probed, fingerprint, plan, probe_host};
pub use text_diff::{DIFF_LIMIT, text_diffs};

// The shell the engine sends lives below it (resources write it too).
pub use crate::script::{probe, steps as script};

/// Markers and temp names: see `crate::script::nonce`.
pub use crate::script::nonce;

/// How to reach a host of `config`: its declared target, with the address, port and key of its
/// instance when it runs on one (`hosts.NAME.instance`).
pub fn target(config: &crate::config::Config, host: &str) -> anyhow::Result<crate::transport::Target> {
    let mut target = config.target(host)?;
    if let (Some(name), crate::transport::Target::Ssh { ssh, .. }) =
        (config.host_instances.get(host), &mut target)
    {
        crate::instance::resolve_host(host, &config.instance(name)?, ssh)?;
    }
    Ok(target)
}
