//! Package names across distributions: a lock file (`{version: 1, target: "debian_12", packages:
//! {name: distro_name}}`) makes plans deterministic; Repology maps project names to the package names
//! of the host's exact release, through a cache that is used stale when offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::resources::Resource;

pub const LOCK_VERSION: u64 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PackageLock {
    pub version: u64,
    /// The release the names are for, as Repology names it (`debian_12`).
    pub target: String,
    pub packages: BTreeMap<String, String>,
}

impl PackageLock {
    pub fn read(path: &Path) -> Result<PackageLock> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let lock: PackageLock = serde_json::from_str(&text).with_context(|| {
            format!("{} is not a package lock ({{version, target, packages}})", path.display())
        })?;
        if lock.version != LOCK_VERSION {
            bail!(
                "{}: package lock version {} is not supported (expected {LOCK_VERSION})",
                path.display(),
                lock.version
            );
        }
        Ok(lock)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        crate::local_file::write_atomic(path, &json, 0o644)
    }
}

#[derive(Clone, Debug)]
pub struct Repology {
    /// Where responses are kept (`<project>.json`); `None` with `no_cache`.
    pub cache_dir: Option<PathBuf>,
    pub ttl: Duration,
    /// Always ask the API; never read or write the cache.
    pub no_cache: bool,
    /// The API root (`$HK_REPOLOGY_URL`, default https://repology.org/api/v1).
    pub api: String,
}

impl Repology {
    pub fn new(cache_dir: Option<PathBuf>, ttl: Duration, no_cache: bool) -> Repology {
        let api = std::env::var("HK_REPOLOGY_URL").unwrap_or_else(|_| "https://repology.org/api/v1".into());
        Repology { cache_dir, ttl, no_cache, api }
    }

    /// The package name of `project` in `release`, or `None` when Repology knows no package there.
    pub fn resolve(&self, project: &str, release: &str) -> Result<Option<String>> {
        let entries = self.project(project)?;
        let mut candidates: Vec<&Value> =
            entries.iter().filter(|e| e.get("repo").and_then(Value::as_str) == Some(release)).collect();
        // The entry whose binary package is named like the project wins; then the newest.
        candidates.sort_by_key(|e| {
            let bin = e.get("binname").and_then(Value::as_str).unwrap_or_default();
            (bin != project, e.get("status").and_then(Value::as_str) != Some("newest"))
        });
        Ok(candidates.first().and_then(|e| {
            e.get("binname").or_else(|| e.get("srcname")).and_then(Value::as_str).map(str::to_string)
        }))
    }

    fn project(&self, project: &str) -> Result<Vec<Value>> {
        let cache =
            self.cache_dir.as_ref().filter(|_| !self.no_cache).map(|d| d.join(format!("{project}.json")));
        let cached = cache.as_ref().and_then(|path| {
            let age = std::fs::metadata(path).ok()?.modified().ok()?;
            let text = std::fs::read_to_string(path).ok()?;
            let fresh = SystemTime::now().duration_since(age).map(|a| a <= self.ttl).unwrap_or(true);
            Some((serde_json::from_str::<Vec<Value>>(&text).ok()?, fresh))
        });
        if let Some((entries, true)) = &cached {
            return Ok(entries.clone());
        }
        match self.fetch(project) {
            Ok(entries) => {
                if let Some(path) = &cache {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    crate::local_file::replace_file(path, &serde_json::to_vec(&entries)?, 0o644, false)?;
                }
                Ok(entries)
            }
            // Offline: a stale answer beats none.
            Err(e) => match cached {
                Some((entries, _)) => Ok(entries),
                None => Err(e),
            },
        }
    }

    fn fetch(&self, project: &str) -> Result<Vec<Value>> {
        let url = format!("{}/project/{project}", self.api.trim_end_matches('/'));
        let out = Command::new("curl")
            .args(["-fsSL", "--max-time", "20", "-A", "hk (https://github.com/hk)", &url])
            .stdin(Stdio::null())
            .output()
            .context("cannot run curl to ask Repology")?;
        if !out.status.success() {
            bail!("asking Repology for {project} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("Repology's answer for {project} is not JSON"))
    }
}

/// How package names are chosen for a plan.
#[derive(Clone, Debug, Default)]
pub struct PackageNaming {
    pub lock: Option<PackageLock>,
    pub repology: Option<Repology>,
}

impl PackageNaming {
    /// Before the probe: every package takes its name from the lock (a package it lacks is an error).
    pub fn apply_lock(&self, resources: &mut [Resource]) -> Result<()> {
        let Some(lock) = &self.lock else { return Ok(()) };
        for resource in resources {
            if let Resource::Package(p) = resource {
                let distro = lock.packages.get(&p.name).with_context(|| {
                    format!(
                        "package {} is not in the package lock; write it again with --write-package-lock",
                        p.name
                    )
                })?;
                p.set_distro_name(distro)?;
            }
        }
        Ok(())
    }

    /// Names through Repology for `release` (a package Repology does not know keeps its name).
    pub fn apply_repology(&self, release: &str, resources: &mut [Resource]) -> Result<()> {
        let Some(repology) = &self.repology else { return Ok(()) };
        for resource in resources {
            if let Resource::Package(p) = resource
                && let Some(distro) = repology.resolve(&p.name, release)?
            {
                p.set_distro_name(&distro)?;
            }
        }
        Ok(())
    }

    /// A lock made for another release is refused.
    pub fn check_release(&self, host: &str, release: &str) -> Result<()> {
        if let Some(lock) = &self.lock
            && lock.target != release
        {
            bail!(
                "the package lock was made for {}, but host {host} runs {release}; write a lock for it with --write-package-lock",
                lock.target
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repology_picks_the_exact_release_from_a_stale_cache_when_offline() {
        let dir = std::env::temp_dir().join(format!("hk-repology-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let answer = serde_json::json!([
            {"repo": "debian_11", "binname": "py3-old", "status": "outdated"},
            {"repo": "debian_12", "binname": "python3-other", "status": "legacy"},
            {"repo": "debian_12", "binname": "python3", "status": "newest"},
        ]);
        std::fs::write(dir.join("python.json"), answer.to_string()).expect("write");
        let mut repology = Repology::new(Some(dir.clone()), Duration::ZERO, false);
        repology.api = "http://127.0.0.1:9".into();
        assert_eq!(repology.resolve("python", "debian_12").expect("stale cache"), Some("python3".into()));
        assert_eq!(repology.resolve("python", "alpine_3_20").expect("known project"), None);
        assert!(repology.resolve("nothing-cached", "debian_12").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_lock_for_another_release_is_refused() {
        let naming = PackageNaming {
            lock: Some(PackageLock { version: 1, target: "debian_12".into(), packages: BTreeMap::new() }),
            repology: None,
        };
        assert!(naming.check_release("web", "debian_12").is_ok());
        let err = naming.check_release("web", "ubuntu_24").expect_err("refused").to_string();
        assert!(err.contains("made for debian_12") && err.contains("ubuntu_24"), "{err}");
    }
}
