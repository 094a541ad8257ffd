//! `hk release build`: sorted entries, fixed mtime/uid/gid, modes kept, gzip without a timestamp —
//! the same input gives the same sha256.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use super::{Manifest, ManifestFile, RELEASE_FORMAT, RELEASE_VERSION, Source, valid_component};

pub struct BuildRequest {
    pub dir: PathBuf,
    pub name: Option<String>,
    pub version: Option<String>,
    pub out_dir: PathBuf,
}

/// Entries below `dir`, sorted by their relative path: what `.gitignore` files (and the repository's
/// `.git/info/exclude`) ignore, `.git` itself and `skip` (the output folder) are left out. A user's
/// global excludes are not read, so the same tree builds the same release on every machine.
fn walk(dir: &Path, skip: &Path) -> Result<Vec<(String, PathBuf)>> {
    let skip = skip.to_path_buf();
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .ignore(false)
        .git_global(false)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |entry| entry.file_name() != ".git" && entry.path() != skip)
        .build();
    let mut out = Vec::new();
    for entry in walker {
        let entry = entry.with_context(|| format!("cannot read below {}", dir.display()))?;
        if entry.depth() == 0 {
            continue;
        }
        let path = entry.into_path();
        let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().to_string();
        out.push((rel, path));
    }
    out.sort();
    Ok(out)
}

/// Whether what the release would hold differs from the checked-out commit: changed, staged or
/// untracked (not ignored) files below `dir`, the output folder aside.
fn is_dirty(dir: &Path, out_dir: &Path) -> bool {
    let mut args = vec!["status".to_string(), "--porcelain".into(), "--".into(), ".".into()];
    if let Ok(inside) = out_dir.strip_prefix(dir)
        && !inside.as_os_str().is_empty()
    {
        args.push(format!(":(exclude){}", inside.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    git(dir, &args).is_some_and(|s| !s.is_empty())
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The app's name from its Cargo.toml, package.json or mix.exs, else the folder's name.
fn default_name(dir: &Path) -> String {
    let read = |f: &str| fs::read_to_string(dir.join(f)).ok();
    if let Some(cargo) = read("Cargo.toml") {
        let mut in_package = false;
        for line in cargo.lines().map(str::trim) {
            if line.starts_with('[') {
                in_package = line == "[package]";
            } else if in_package && let Some(rest) = line.strip_prefix("name") {
                let value = rest.trim_start().trim_start_matches('=').trim().trim_matches('"');
                if !value.is_empty() {
                    return value.to_string();
                }
            }
        }
    }
    if let Some(json) = read("package.json")
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(&json)
        && let Some(name) = value.get("name").and_then(|n| n.as_str())
    {
        return name.trim_start_matches('@').replace('/', "-");
    }
    if let Some(mix) = read("mix.exs")
        && let Some(pos) = mix.find("app: :")
    {
        let name: String =
            mix[pos + 6..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            return name;
        }
    }
    dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "app".into())
}

/// Build `<name>-<version>.tar.gz` and `<name>-<version>.json` in `out_dir`; `progress(done, total)`
/// is called as bytes are packed.
pub fn build(req: &BuildRequest, progress: &mut dyn FnMut(u64, u64)) -> Result<(Manifest, PathBuf, PathBuf)> {
    let dir = req.dir.canonicalize().with_context(|| format!("cannot open {}", req.dir.display()))?;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let name = req.name.clone().unwrap_or_else(|| default_name(&dir));
    fs::create_dir_all(&req.out_dir).with_context(|| format!("cannot create {}", req.out_dir.display()))?;
    let out_dir = req.out_dir.canonicalize()?;
    let dirty = is_dirty(&dir, &out_dir);
    let version = match &req.version {
        Some(v) => v.clone(),
        None => {
            let described = git(&dir, &["describe", "--always"])
                .context("no --version given and `git describe` has nothing to say here: pass --version")?;
            if dirty { format!("{described}-dirty") } else { described }
        }
    };
    if !valid_component(&name) {
        bail!("release name {name:?} must use letters, digits, '.', '_', '-', '+'");
    }
    if !valid_component(&version) {
        bail!("release version {version:?} must use letters, digits, '.', '_', '-', '+'");
    }
    let entries = walk(&dir, &out_dir)?;
    let total: u64 = entries
        .iter()
        .filter_map(|(_, p)| fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();

    let tar_path = out_dir.join(format!("{name}-{version}.tar.gz"));
    let partial = out_dir.join(format!(".{name}-{version}.tar.gz.partial"));
    let file = fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let gz = GzBuilder::new().mtime(0).write(file, Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    let mut done = 0u64;
    for (rel, path) in &entries {
        let meta = fs::symlink_metadata(path)?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(mode);
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, format!("{rel}/"), std::io::empty())?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(path)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, rel, &target)?;
        } else if meta.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let reader = fs::File::open(path)?;
            tar.append_data(&mut header, rel, reader)?;
            done += meta.len();
            progress(done, total);
            files.push(ManifestFile { path: rel.clone(), size: meta.len(), mode: format!("{mode:04o}") });
        } else {
            bail!("{} is neither a file, a directory nor a link; a release cannot hold it", path.display());
        }
    }
    let gz = tar.into_inner()?;
    let mut file = gz.finish()?;
    file.flush()?;
    drop(file);
    fs::rename(&partial, &tar_path)?;

    let (sha256, size) = sha256_file(&tar_path)?;
    let manifest = Manifest {
        format: RELEASE_FORMAT.into(),
        version: RELEASE_VERSION,
        name: name.clone(),
        release_version: version.clone(),
        sha256,
        size,
        files,
        built_at: chrono::Utc::now(),
        source: Source { git_commit: git(&dir, &["rev-parse", "HEAD"]), dirty },
    };
    let manifest_path = out_dir.join(format!("{name}-{version}.json"));
    crate::local_file::write_atomic(&manifest_path, &serde_json::to_vec_pretty(&manifest)?, 0o644)?;
    Ok((manifest, tar_path, manifest_path))
}

pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}
