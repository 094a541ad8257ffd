//! Files on the machine running hk (plan artifacts, manifests, caches, keys), written atomically:
//! a temp file beside the target, then a rename.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

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
    let tmp = dir.join(format!(".{name}.hk-{}", crate::script::nonce()));
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
