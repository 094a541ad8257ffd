//! Content hashes remembered between plans, so a no-op plan does not read every file again.
//!
//! A cached hash is reused only for the same host (hostname + machine-id), path, inode, size and
//! ctime (nanoseconds, from the probe's `stat`), and only when that ctime is older than the host
//! clock read before the hash was taken. That clock is the ctime of a /proc entry made just then,
//! so it is the very clock the kernel dates file changes with: any write, truncation, rename or
//! replacement after the hash gets a ctime at least as late, hence a different one, and the
//! probe's own `stat` tells which files to hash again (one more small exec, only when some did
//! change). File systems that keep coarser times (whole seconds, FAT's two) show it in the trailing
//! zeros of their ctimes; the margin then covers that granularity twice. A file changed just before
//! its hash is not reused until a later probe hashed it again. An apply hashes the files it wrote at
//! its end, the same way, so the plan after it needs not read them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::probe::{Facts, PathKind};
use crate::model::HostIdentity;
use crate::transport::Target;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
struct Entry {
    ino: u64,
    size: u64,
    /// ctime (nanoseconds) when hashed.
    ctime_ns: i64,
    sha256: String,
    /// Host clock (nanoseconds) read before the hash was taken.
    hashed_at_ns: i64,
}

const SECOND: i64 = 1_000_000_000;
/// The least margin between a ctime and the clock: room for a file system whose clock is not quite
/// the host's (a network file system dates changes by its server's clock).
const CTIME_MARGIN: i64 = SECOND / 100;

/// How much older than the clock `ctime` must be: twice the granularity its trailing zeros suggest
/// (a file system keeping whole seconds gives a whole second), at least [`CTIME_MARGIN`]. The
/// session's file helper waits for a file's margin by the same rule before it reads the clock
/// (`lstat` in `script/steps.rs`).
pub(crate) fn margin_for(ctime_ns: i64) -> i64 {
    let mut granularity = SECOND;
    let fraction = ctime_ns.rem_euclid(SECOND);
    if fraction != 0 {
        granularity = 1;
        while fraction % (granularity * 10) == 0 {
            granularity *= 10;
        }
    }
    (2 * granularity).max(CTIME_MARGIN)
}

impl Entry {
    /// Changed before it was hashed: a later change is sure to show in ctime.
    fn stable(&self) -> bool {
        self.ctime_ns < self.hashed_at_ns.saturating_sub(margin_for(self.ctime_ns))
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Stored {
    identity: HostIdentity,
    entries: HashMap<String, Entry>,
}

pub struct HashCache {
    file: PathBuf,
    stored: Stored,
    changed: bool,
    /// Paths whose hash `fill` took from the cache (not read again by this probe).
    reused: std::collections::HashSet<String>,
}

impl HashCache {
    /// The cache of one target under `dir` (a missing or damaged file is an empty cache).
    pub fn load(dir: &Path, target: &Target) -> HashCache {
        let key = serde_json::to_vec(target).unwrap_or_default();
        let name: String = hex::encode(&Sha256::digest(&key)[..10]);
        let file = dir.join(format!("{name}.json"));
        let stored =
            std::fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        HashCache { file, stored, changed: false, reused: Default::default() }
    }

    /// Of `paths`, those with a remembered (stable) hash: the probe stats them without hashing.
    pub fn candidates(&self, paths: &[String]) -> Vec<String> {
        paths.iter().filter(|p| self.stored.entries.get(*p).is_some_and(Entry::stable)).cloned().collect()
    }

    /// Drop what is remembered of `paths` (files an apply changed): the next plan hashes them with
    /// the rest of its probe instead of in a second exec.
    pub fn forget<'a>(&mut self, paths: impl IntoIterator<Item = &'a str>) {
        for path in paths {
            self.changed |= self.stored.entries.remove(path).is_some();
        }
    }

    /// Fill the hashes the probe did not read again; returns the candidate files that still lack one
    /// (another machine, another inode, size or ctime) and must be hashed now.
    pub fn fill(&mut self, facts: &mut Facts, candidates: &[String]) -> Vec<String> {
        let trusted = facts.identity == self.stored.identity;
        let mut missing = Vec::new();
        for path in candidates {
            let Some(seen) = facts.paths.get_mut(path) else { continue };
            if seen.kind != PathKind::File || seen.sha256.is_some() {
                continue;
            }
            match self.stored.entries.get(path) {
                Some(e)
                    if trusted
                        && seen.ctime > 0
                        && e.ino == seen.ino
                        && e.size == seen.size
                        && e.ctime_ns == seen.ctime =>
                {
                    seen.sha256 = Some(e.sha256.clone());
                    self.reused.insert(path.clone());
                }
                _ => missing.push(path.clone()),
            }
        }
        missing
    }

    /// Remember what this probe learned: hashes read now get `clock` (the host clock, nanoseconds,
    /// read before hashing: a file hashed again long after its last change becomes reusable), reused
    /// ones keep theirs.
    pub fn update(&mut self, facts: &Facts, clock: i64) {
        if facts.identity != self.stored.identity {
            self.stored = Stored { identity: facts.identity.clone(), entries: HashMap::new() };
            self.changed = true;
        }
        for (path, seen) in &facts.paths {
            match (&seen.kind, &seen.sha256) {
                (PathKind::File, Some(sha)) => {
                    let hashed_at_ns = match self.stored.entries.get(path) {
                        Some(e) if self.reused.contains(path) => e.hashed_at_ns,
                        _ => clock,
                    };
                    let entry = Entry {
                        ino: seen.ino,
                        size: seen.size,
                        ctime_ns: seen.ctime,
                        sha256: sha.clone(),
                        hashed_at_ns,
                    };
                    if self.stored.entries.get(path) != Some(&entry) {
                        self.stored.entries.insert(path.clone(), entry);
                        self.changed = true;
                    }
                }
                _ => self.changed |= self.stored.entries.remove(path).is_some(),
            }
        }
    }

    /// Write the cache when it changed (best effort: a cache that cannot be written only costs time).
    pub fn save(&self) {
        if !self.changed {
            return;
        }
        if let Some(dir) = self.file.parent()
            && std::fs::create_dir_all(dir).is_ok()
            && let Ok(json) = serde_json::to_vec(&self.stored)
        {
            let _ = crate::plan_file::replace_file(&self.file, &json, 0o600, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::probe::PathFacts;

    fn facts_with(path: &str, ctime: i64, sha: Option<&str>) -> Facts {
        let mut facts = Facts::default();
        facts.paths.insert(
            path.into(),
            PathFacts {
                kind: PathKind::File,
                mode: "0644".into(),
                owner: None,
                group: None,
                uid: "0".into(),
                gid: "0".into(),
                size: 3,
                ino: 7,
                ctime,
                sha256: sha.map(String::from),
                target: None,
            },
        );
        facts
    }

    #[test]
    fn a_file_hashed_right_after_a_change_is_reused_once_hashed_again_later() {
        let dir = std::env::temp_dir().join(format!("hk-hash-cache-{}", std::process::id()));
        let paths = vec!["/f".to_string()];
        let mut cache = HashCache::load(&dir, &Target::Local { sudo: false });
        let changed = 100 * SECOND + 5_123_457;
        // Hashed 5 ms after the change: too close to tell.
        cache.update(&facts_with("/f", changed, Some("aa")), changed + 5_000_000);
        assert!(cache.candidates(&paths).is_empty());
        // Read again 200 ms after it (same bytes): now a later change is sure to show.
        cache.update(&facts_with("/f", changed, Some("aa")), changed + 200_000_000);
        assert_eq!(cache.candidates(&paths), paths);
        // Reused at 200 s without reading: it keeps the time it was really read.
        let mut facts = facts_with("/f", changed, None);
        assert!(cache.fill(&mut facts, &paths).is_empty());
        assert_eq!(facts.paths["/f"].sha256.as_deref(), Some("aa"));
        cache.update(&facts, 200 * SECOND);
        assert_eq!(cache.stored.entries["/f"].hashed_at_ns, changed + 200_000_000);
        // Changed since (a later ctime): hashed again.
        let mut facts = facts_with("/f", changed + 1, None);
        assert_eq!(cache.fill(&mut facts, &paths), paths);
        // Forgotten after an apply: no longer a candidate.
        cache.forget(["/f"]);
        assert!(cache.candidates(&paths).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn whole_second_ctimes_need_two_seconds() {
        let dir = std::env::temp_dir().join(format!("hk-hash-cache-s-{}", std::process::id()));
        let paths = vec!["/f".to_string()];
        let mut cache = HashCache::load(&dir, &Target::Local { sudo: false });
        cache.update(&facts_with("/f", 100 * SECOND, Some("aa")), 101 * SECOND + 500_000_000);
        assert!(cache.candidates(&paths).is_empty());
        cache.update(&facts_with("/f", 100 * SECOND, Some("aa")), 102 * SECOND + 1);
        assert_eq!(cache.candidates(&paths), paths);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_margin_follows_the_granularity_ctimes_show() {
        assert_eq!(margin_for(100 * SECOND + 123_456_789), CTIME_MARGIN);
        assert_eq!(margin_for(100 * SECOND + 120_000_000), 20_000_000);
        assert_eq!(margin_for(100 * SECOND + 500_000_000), 200_000_000);
        assert_eq!(margin_for(100 * SECOND), 2 * SECOND);
    }
}
