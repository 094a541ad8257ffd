//! The plan artifact on disk: JSON, mode 0600, written atomically; read back with a format check.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::model::{PLAN_FORMAT, PLAN_VERSION, Plan, PlanArtifact};

/// Write `bytes` to `path` via a temp file in the same directory and a rename, with `mode`, on disk
/// before the rename.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    replace_file(path, bytes, mode, true)
}

/// As [`write_atomic`], without waiting for the disk when `durable` is false: for caches, where a
/// file lost in a crash only costs time.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().context("the output path has no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.hk-{}", crate::engine::nonce()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let written = file
        .write_all(bytes)
        .and_then(|_| if durable { file.sync_all() } else { Ok(()) })
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|_| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
        });
    if written.is_err() {
        // A half-written temp file is never left beside the real one.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

pub fn write(path: &Path, plan: &Plan) -> Result<PlanArtifact> {
    let artifact = PlanArtifact::new(plan);
    let json = serde_json::to_vec_pretty(&artifact)?;
    write_atomic(path, &json, 0o600)?;
    Ok(artifact)
}

pub fn read(path: &Path) -> Result<Plan> {
    let text = std::fs::read(path).with_context(|| format!("cannot read plan file {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or_default();
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or_default();
    if format != PLAN_FORMAT || version != PLAN_VERSION {
        bail!(
            "{} is not an hk plan this hk reads (format {format:?} version {version}; expected {PLAN_FORMAT:?} version {PLAN_VERSION})",
            path.display()
        );
    }
    let artifact: PlanArtifact =
        serde_json::from_value(value).with_context(|| format!("{} is a damaged hk plan", path.display()))?;
    Ok(artifact.into_plan())
}
