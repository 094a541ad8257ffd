//! Content hashes remembered between plans, so a no-op plan does not read every file again.
//!
//! A cached hash is reused only for the same host (hostname + machine-id), path, inode, size and
//! ctime (whole seconds, from the probe's `stat`), and only when that ctime is more than a second
//! older than the moment the hash was taken (host clock): any write, truncation, rename or
//! replacement after the hash sets ctime to a later second, so the probe's own `stat` tells which
//! files to hash again (one more small exec, only when some did change). A file changed less than
//! a second before its hash is not reused until a later probe hashed it again. An apply forgets the
//! files it changed, so the plan after it hashes them in its one script.

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
    /// ctime (seconds) when hashed.
    ctime: i64,
    sha256: String,
    /// Host time (seconds) of the probe that hashed it.
    hashed_at: i64,
}

impl Entry {
    /// Changed at least a second before it was hashed: a later change is sure to show in ctime.
    fn stable(&self) -> bool {
        self.ctime < self.hashed_at - 1
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
                        && e.ctime == seen.ctime =>
                {
                    seen.sha256 = Some(e.sha256.clone());
                    self.reused.insert(path.clone());
                }
                _ => missing.push(path.clone()),
            }
        }
        missing
    }

    /// Remember what this probe learned: hashes read now get `host_time` (a file hashed again long
    /// after its last change becomes reusable), reused ones keep theirs.
    pub fn update(&mut self, facts: &Facts, host_time: i64) {
        if facts.identity != self.stored.identity {
            self.stored = Stored { identity: facts.identity.clone(), entries: HashMap::new() };
            self.changed = true;
        }
        for (path, seen) in &facts.paths {
            match (&seen.kind, &seen.sha256) {
                (PathKind::File, Some(sha)) => {
                    let hashed_at = match self.stored.entries.get(path) {
                        Some(e) if self.reused.contains(path) => e.hashed_at,
                        _ => host_time,
                    };
                    let entry = Entry {
                        ino: seen.ino,
                        size: seen.size,
                        ctime: seen.ctime,
                        sha256: sha.clone(),
                        hashed_at,
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
        // Changed at 100, hashed at 100: the change may hide in the same second.
        cache.update(&facts_with("/f", 100, Some("aa")), 100);
        assert!(cache.candidates(&paths).is_empty());
        // Read again at 105 (same bytes): now a later change is sure to show.
        cache.update(&facts_with("/f", 100, Some("aa")), 105);
        assert_eq!(cache.candidates(&paths), paths);
        // Reused at 200 without reading: it keeps the time it was really read.
        let mut facts = facts_with("/f", 100, None);
        assert!(cache.fill(&mut facts, &paths).is_empty());
        assert_eq!(facts.paths["/f"].sha256.as_deref(), Some("aa"));
        cache.update(&facts, 200);
        assert_eq!(cache.stored.entries["/f"].hashed_at, 105);
        // Changed since (a later ctime): hashed again.
        let mut facts = facts_with("/f", 150, None);
        assert_eq!(cache.fill(&mut facts, &paths), paths);
        // Forgotten after an apply: no longer a candidate.
        cache.forget(["/f"]);
        assert!(cache.candidates(&paths).is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
