//! The shell hk sends to hosts, below everything that sends it: the probe that reads a host in one
//! script (`probe`), the apply script of steps (`steps`), the digest of an unpacked release
//! (`tree`), one `stat` listing many paths (`stat_list`), and the nonces that mark their output.

pub mod probe;
pub mod roots;
pub mod stat_list;
pub mod steps;
pub mod tree;

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
