//! Plan (probe + diff) and apply (staleness check + one script of steps).

mod apply;
mod clean;
mod down;
mod exec;
mod fanout;
pub mod hash_cache;
mod order;
mod plan;
pub mod probe;
pub mod script;
mod text_diff;

pub use apply::{ApplyOptions, apply};
pub use clean::{clean, release_bases};
pub use down::{DownOptions, down_from_plan, down_from_run, fetch_runs};
pub use exec::exec;
pub use fanout::{failed_hosts_error, for_each_host};
pub use order::dependency_order;
pub use plan::{PlanOptions, PlanOutcome, fingerprint, plan, probe_host};
pub use text_diff::{DIFF_LIMIT, text_diffs};

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh random-looking token for script markers and temp names.
pub fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(now.to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let addr = &hasher as *const _ as usize;
    hasher.update(addr.to_le_bytes());
    hex::encode(&hasher.finalize()[..12])
}
