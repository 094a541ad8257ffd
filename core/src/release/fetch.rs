//! Releases from elsewhere: a tarball at an http(s) URL, fetched on the machine running hk (with
//! curl) into a download cache keyed by the sha256 the config pins, and checked against it before
//! anything happens on a host.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::build::sha256_file;

/// Where downloads are kept: `$HK_DOWNLOAD_CACHE`, else `$XDG_CACHE_HOME/hk/downloads`, else
/// `~/.cache/hk/downloads`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HK_DOWNLOAD_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("hk").join("downloads")
}

/// The tarball at `url`, as a local file whose bytes hash to `sha256` (fetched unless the cache
/// has them already).
pub fn fetch(url: &str, sha256: &str, cache: &Path) -> Result<PathBuf> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("{url:?} is not an http(s) URL");
    }
    let sha256 = sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("{sha256:?} is not a sha256 (64 hex digits)");
    }
    let kept = cache.join(format!("{sha256}.tar.gz"));
    if kept.is_file() && sha256_file(&kept)?.0 == sha256 {
        return Ok(kept);
    }
    std::fs::create_dir_all(cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let partial = cache.join(format!("{sha256}.partial"));
    let out = Command::new("curl")
        .args(["-fsSL", "--proto", "=http,https", "--retry", "2", "-o"])
        .arg(&partial)
        .arg("--")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run curl to fetch the release")?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!("fetching {url} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let (got, _) = sha256_file(&partial)?;
    if got != sha256 {
        let _ = std::fs::remove_file(&partial);
        bail!("{url} has sha256 {got}, not the {sha256} the config pins; it was not used");
    }
    std::fs::rename(&partial, &kept).with_context(|| format!("cannot keep {}", kept.display()))?;
    Ok(kept)
}
