//! Releases: a reproducible tarball and its manifest (`hk release build`), and the safety checks an
//! artifact passes before any host sees it.

mod build;
mod check;
pub mod fetch;

pub use build::{BuildRequest, build};
pub use check::{Artifact, check_artifact};

use serde::{Deserialize, Serialize};

pub const RELEASE_FORMAT: &str = "hk-release";
pub const RELEASE_VERSION: u64 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub mode: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub git_commit: Option<String>,
    pub dirty: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Manifest {
    pub format: String,
    pub version: u64,
    pub name: String,
    pub release_version: String,
    pub sha256: String,
    pub size: u64,
    pub files: Vec<ManifestFile>,
    pub built_at: chrono::DateTime<chrono::Utc>,
    pub source: Source,
}

/// Names and versions become path components on hosts: keep them to a safe alphabet.
pub fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
}
