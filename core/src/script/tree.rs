//! What an unpacked release holds, as one digest that the host and this machine compute alike: the
//! byte-sorted lines `f<TAB>path<TAB>size` (regular files) and `l<TAB>path<TAB>target` (symbolic
//! links), joined by newlines, hashed with SHA-256. An empty, partial or altered release directory
//! gives another digest than its tarball's entries; directories and modes are left out (tar creates
//! implied folders and applies the unpacking user's umask).

use std::collections::BTreeMap;

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::quote::q;

/// The release's content as it unpacks: path → its line.
#[derive(Default, Clone, Debug)]
pub struct Tree {
    entries: BTreeMap<Vec<u8>, Entry>,
}

#[derive(Clone, Debug)]
enum Entry {
    File(u64),
    Link(Vec<u8>),
}

impl Tree {
    pub fn file(&mut self, path: &[u8], size: u64) {
        self.entries.insert(path.to_vec(), Entry::File(size));
    }

    pub fn link(&mut self, path: &[u8], target: &[u8]) {
        self.entries.insert(path.to_vec(), Entry::Link(target.to_vec()));
    }

    /// A later directory entry replaces what the same path held before.
    pub fn remove(&mut self, path: &[u8]) {
        self.entries.remove(path);
    }

    /// The size of a regular file already in the tree (a hard link unpacks as a copy of it).
    pub fn size_of(&self, path: &[u8]) -> Option<u64> {
        match self.entries.get(path) {
            Some(Entry::File(size)) => Some(*size),
            _ => None,
        }
    }

    pub fn files(&self) -> u64 {
        self.entries.values().filter(|e| matches!(e, Entry::File(_))).count() as u64
    }

    pub fn digest(&self) -> String {
        let mut lines: Vec<Vec<u8>> = self
            .entries
            .iter()
            .map(|(path, entry)| {
                let mut line = Vec::with_capacity(path.len() + 24);
                match entry {
                    Entry::File(size) => {
                        line.extend_from_slice(b"f\t");
                        line.extend_from_slice(path);
                        line.extend_from_slice(format!("\t{size}").as_bytes());
                    }
                    Entry::Link(target) => {
                        line.extend_from_slice(b"l\t");
                        line.extend_from_slice(path);
                        line.push(b'\t');
                        line.extend_from_slice(target);
                    }
                }
                line
            })
            .collect();
        // `sort` with LC_ALL=C orders whole lines by their bytes.
        lines.sort();
        hex::encode(Sha256::digest(lines.join(&b'\n')))
    }
}

/// Shell setting `hk_l` to `dir`'s sorted listing (see the module's words); empty when unreadable.
/// A missing directory costs no process.
pub fn listing_command(dir: &str) -> Result<String> {
    Ok(format!(
        "hk_l=; [ ! -d {0} ] || hk_l=$(cd -- {0} 2>/dev/null && find . -mindepth 1 \\( -type f -printf 'f\\t%P\\t%s\\n' \\) -o \\( -type l -printf 'l\\t%P\\t%l\\n' \\) 2>/dev/null | LC_ALL=C sort)",
        q(dir)?
    ))
}

/// The digest of an empty listing (no directory, or nothing in it).
const EMPTY_DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Shell printing, for a probe, `dir`, its listing and its marker's line, each NUL-ended: the
/// session's file helper writes the listing straight to the channel (no process), `find | sort`
/// otherwise; this side digests it ([`summary`]). `$HK` must be set; it leaves no variable set.
pub fn probe_command(dir: &str) -> Result<String> {
    let (dir_word, marker) = (q(dir)?, q(&marker_path(dir))?);
    let fallback = format!(
        "{}
printf '%s\\0' \"$hk_l\"
unset hk_l",
        listing_command(dir)?
    );
    Ok(format!(
        "printf '%s\\0' {dir_word}
{}hk_m=; read -r hk_m 2>/dev/null < {marker} || :
printf '%s\\0' \"$hk_m\"
unset hk_m
",
        super::steps::helper_or(&format!("printf 'tree\\0%s\\0\\0' {dir_word} >&3"), &fallback)
    ))
}

/// A listing's digest and how many regular files it names.
pub fn summary(listing: &[u8]) -> (String, u64) {
    if listing.is_empty() {
        return (EMPTY_DIGEST.to_string(), 0);
    }
    let files = listing.split(|&b| b == b'\n').filter(|l| l.starts_with(b"f\t")).count() as u64;
    (hex::encode(Sha256::digest(listing)), files)
}

/// Shell setting `hk_d` to `dir`'s digest inside an apply script: the listing goes to a file in
/// the script's temp folder (`$hk_tmp`), written by the file helper where the script has one, and
/// is hashed from there: one process (`sha256sum`), where `find | sort` and a pipe cost four.
pub fn digest_command(dir: &str) -> Result<String> {
    let d = q(dir)?;
    Ok(format!(
        "if [ \"$hk_fs\" = perl ] && hk_op tree {d} \"$hk_tmp/tree\"; then :; else
         {}
         printf '%s' \"$hk_l\" >| \"$hk_tmp/tree\"; fi
         if [ -s \"$hk_tmp/tree\" ]; then hk_d=$(sha256sum < \"$hk_tmp/tree\"); hk_d=${{hk_d%% *}}; else hk_d={EMPTY_DIGEST}; fi",
        listing_command(dir)?
    ))
}

/// Where hk notes which bytes a release directory was unpacked from (`<releases>/.<version>.unpacked`):
/// beside it, so that it is not part of what it describes, and hidden from `releases/*`.
pub fn marker_path(dir: &str) -> String {
    match dir.rsplit_once('/') {
        Some((parent, name)) => format!("{parent}/.{name}.unpacked"),
        None => format!(".{dir}.unpacked"),
    }
}

/// The marker's one line.
pub fn marker_line(sha256: &str, strip_components: u32) -> String {
    format!("sha256={sha256} strip_components={strip_components}")
}

/// The artifact sha256 and strip count a marker line names.
pub fn parse_marker(line: &str) -> (Option<String>, u32) {
    let mut sha = None;
    let mut strip = 0;
    for word in line.split_whitespace() {
        match word.split_once('=') {
            Some(("sha256", v)) if v.len() == 64 => sha = Some(v.to_string()),
            Some(("strip_components", v)) => strip = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    (sha, strip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_of_sorted_lines_without_a_final_newline() {
        let mut tree = Tree::default();
        tree.file(b"bin/run", 20);
        tree.link(b"ALIAS", b"VERSION");
        tree.file(b"VERSION", 14);
        let expected = hex::encode(Sha256::digest(b"f\tVERSION\t14\nf\tbin/run\t20\nl\tALIAS\tVERSION"));
        assert_eq!(tree.digest(), expected);
        assert_eq!(tree.files(), 2);
        assert_eq!(Tree::default().digest(), hex::encode(Sha256::digest(b"")));
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let mut tree = Tree::default();
        tree.file(b"a", 1);
        tree.file(b"a", 2);
        assert_eq!(tree.size_of(b"a"), Some(2));
        tree.remove(b"a");
        assert_eq!(tree.files(), 0);
    }

    #[test]
    fn markers_sit_beside_and_read_back() {
        assert_eq!(marker_path("/opt/hk/app/releases/1.0"), "/opt/hk/app/releases/.1.0.unpacked");
        let sha = "a".repeat(64);
        assert_eq!(parse_marker(&marker_line(&sha, 2)), (Some(sha), 2));
        assert_eq!(parse_marker("garbage"), (None, 0));
    }

    /// The shell's digest and count agree with this side's, for a real folder and a missing one.
    #[test]
    fn the_host_computes_the_same_summary() {
        let dir = std::env::temp_dir().join(format!("hk-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
        std::fs::write(dir.join("bin/run"), "12345").expect("write");
        std::fs::write(dir.join("VERSION"), "v1\n").expect("write");
        std::os::unix::fs::symlink("VERSION", dir.join("ALIAS")).expect("link");
        let mut tree = Tree::default();
        tree.file(b"bin/run", 5);
        tree.file(b"VERSION", 3);
        tree.link(b"ALIAS", b"VERSION");
        // The probe's form, without the session's file helper: find | sort.
        let summary = |path: &str| {
            let script = format!("HK=N\n{}", probe_command(path).expect("command"));
            let out = std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh");
            let fields: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
            assert_eq!(fields.len(), 4, "{:?}", String::from_utf8_lossy(&out.stdout));
            let (digest, files) = super::summary(fields[1]);
            format!("{files} {digest}")
        };
        // The apply's form, with a temp folder.
        let digest = |path: &str| {
            let script = format!(
                "hk_fs=; hk_tmp=$(mktemp -d)\n{}\nprintf '%s' \"$hk_d\"; rm -rf \"$hk_tmp\"",
                digest_command(path).expect("command")
            );
            let out = std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(digest(&dir.to_string_lossy()), tree.digest());
        assert_eq!(digest(&dir.join("nothing").to_string_lossy()), Tree::default().digest());
        let here = summary(&dir.to_string_lossy());
        let missing = summary(&dir.join("nothing").to_string_lossy());
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(here, format!("2 {}", tree.digest()));
        assert_eq!(missing, format!("0 {}", Tree::default().digest()));
    }
}
