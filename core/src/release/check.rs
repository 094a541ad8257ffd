//! What an artifact must be before it is shipped: an hk release (or a tarball) whose entries stay
//! inside the release — no absolute paths, no `..`, no links out, no devices — and whose bytes match
//! the manifest's sha256.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::read::GzDecoder;

use super::build::sha256_file;
use super::{Manifest, RELEASE_FORMAT, RELEASE_VERSION};
use crate::script::tree::Tree;

/// A checked artifact on the machine running hk.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub tarball: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// What it unpacks to, for the check that a release directory holds exactly that.
    pub tree: Tree,
}

/// Normalise `path` lexically; `None` when it climbs above its start.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `path` without its first `strip` components (`None` when it has no more), as tar's
/// `--strip-components` unpacks it.
fn stripped(path: &Path, strip: u32) -> Option<PathBuf> {
    let mut parts = path.components().filter(|c| !matches!(c, Component::CurDir));
    for _ in 0..strip {
        parts.next()?;
    }
    let rest: PathBuf = parts.collect();
    (!rest.as_os_str().is_empty()).then_some(rest)
}

/// Check a tarball (`.tar.gz`) or a manifest (`.json`, with its tarball beside it), its entries as
/// they unpack with their first `strip` components left out.
pub fn check_artifact(path: &Path, strip: u32) -> Result<Artifact> {
    let (tarball, expected) = if path.extension().is_some_and(|e| e == "json") {
        let text = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        let format = value.get("format").and_then(|f| f.as_str()).unwrap_or_default();
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or_default();
        if format != RELEASE_FORMAT || version != RELEASE_VERSION {
            bail!("{} is not an hk release manifest (format {format:?} version {version})", path.display());
        }
        let manifest: Manifest = serde_json::from_value(value)
            .with_context(|| format!("{} is a damaged manifest", path.display()))?;
        let tarball = path.with_file_name(format!("{}-{}.tar.gz", manifest.name, manifest.release_version));
        (tarball, Some(manifest.sha256))
    } else {
        (path.to_path_buf(), None)
    };
    let (sha256, size) = sha256_file(&tarball)?;
    if let Some(expected) = expected
        && expected != sha256
    {
        bail!(
            "{} does not match its manifest: sha256 {} on disk, {} in the manifest",
            tarball.display(),
            &sha256[..12],
            &expected[..expected.len().min(12)]
        );
    }
    let file = fs::File::open(&tarball)?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let entries =
        archive.entries().with_context(|| format!("{} is not a tar.gz archive", tarball.display()))?;
    let mut tree = Tree::default();
    for entry in entries {
        let entry =
            entry.with_context(|| format!("{} is not a complete tar.gz archive", tarball.display()))?;
        let raw = entry.path_bytes().to_vec();
        let name = String::from_utf8_lossy(&raw).to_string();
        if Path::new(&name).is_absolute() {
            bail!("{}: entry {name:?} has an absolute path", tarball.display());
        }
        // What tar leaves out with --strip-components is never unpacked.
        let Some(path) = stripped(Path::new(&name), strip) else { continue };
        let Some(normal) = inside(&path) else {
            bail!("{}: entry {name:?} leaves the release ('..')", tarball.display())
        };
        // The content check lists one entry per line.
        if name.contains(['\n', '\t']) {
            bail!("{}: entry {name:?} has a newline or tab in its name; rename it", tarball.display());
        }
        let key = normal.as_os_str().as_encoded_bytes().to_vec();
        match entry.header().entry_type() {
            tar::EntryType::Regular => tree.file(&key, entry.size()),
            tar::EntryType::Directory => tree.remove(&key),
            tar::EntryType::GNULongName => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry.link_name()?.map(|t| t.to_path_buf()).unwrap_or_default();
                let resolved = if entry.header().entry_type() == tar::EntryType::Link {
                    stripped(&target, strip).and_then(|t| inside(&t))
                } else if target.is_absolute() {
                    None
                } else {
                    inside(&normal.parent().unwrap_or(Path::new("")).join(&target))
                };
                let Some(resolved) = resolved else {
                    bail!(
                        "{}: link {name:?} points outside the release ({})",
                        tarball.display(),
                        target.display()
                    );
                };
                if entry.header().entry_type() == tar::EntryType::Link {
                    // A hard link unpacks as the file it names.
                    let size = tree.size_of(resolved.as_os_str().as_encoded_bytes()).unwrap_or(0);
                    tree.file(&key, size);
                } else {
                    tree.link(&key, target.as_os_str().as_encoded_bytes());
                }
            }
            other => bail!(
                "{}: entry {name:?} is a {other:?}; a release holds only files, directories and links",
                tarball.display()
            ),
        }
    }
    Ok(Artifact { tarball, sha256, size, tree })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tarball of `entries` (path, type, content or link target) in a fresh temp folder.
    fn tarball(entries: &[(&str, tar::EntryType, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hk-check-{}", crate::script::nonce()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.tar.gz");
        let file = fs::File::create(&path).expect("create");
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            if kind.is_file() {
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, name, data.as_bytes()).expect("file");
            } else if kind.is_dir() {
                header.set_size(0);
                tar.append_data(&mut header, name, std::io::empty()).expect("dir");
            } else {
                header.set_size(0);
                tar.append_link(&mut header, name, data).expect("link");
            }
        }
        tar.into_inner().expect("tar").finish().expect("gzip");
        path
    }

    #[test]
    fn the_tree_is_what_tar_unpacks() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let path = tarball(&[
            ("pkg/", Directory, ""),
            ("pkg/a.txt", Regular, "one"),
            ("pkg/a.txt", Regular, "three"),
            ("pkg/hard", Link, "pkg/a.txt"),
            ("pkg/soft", Symlink, "a.txt"),
            ("./pkg/sub/b", Regular, ""),
        ]);
        let artifact = check_artifact(&path, 1).expect("a sound tarball");
        let mut expected = Tree::default();
        expected.file(b"a.txt", 5);
        expected.file(b"hard", 5);
        expected.link(b"soft", b"a.txt");
        expected.file(b"sub/b", 0);
        assert_eq!(artifact.tree.digest(), expected.digest());
        assert_eq!(artifact.tree.files(), 3);
        let _ = fs::remove_dir_all(path.parent().expect("temp dir"));
    }

    #[test]
    fn names_that_break_the_listing_are_refused() {
        let path = tarball(&[("a\nb", tar::EntryType::Regular, "x")]);
        let err = check_artifact(&path, 0).expect_err("refused");
        assert!(format!("{err:#}").contains("newline or tab"));
        let _ = fs::remove_dir_all(path.parent().expect("temp dir"));
    }
}
