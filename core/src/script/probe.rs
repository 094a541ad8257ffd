//! The probe: ONE generated script per host reads every resource's state in a few batched commands,
//! and its nonce-delimited output is parsed into facts.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};

use crate::quote::q;
use crate::script::steps;

/// Bytes of paths handed to one `stat`/`sha256sum`/`find` call: well under the argument limit of
/// every kernel hk targets (Linux 2 MiB, the BSDs and macOS 256 KiB+), so one process serves a
/// whole tree of ordinary size.
const ARG_BYTES_PER_CALL: usize = 96 * 1024;

/// `paths` in runs whose total length fits one command line.
fn arg_chunks(paths: &[String]) -> Vec<&[String]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, path) in paths.iter().enumerate() {
        let len = path.len() + 3;
        if i > start && bytes + len > ARG_BYTES_PER_CALL {
            chunks.push(&paths[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < paths.len() {
        chunks.push(&paths[start..]);
    }
    chunks
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathKind {
    Missing,
    File,
    Dir,
    Link,
    Other(String),
}

impl PathKind {
    pub fn label(&self) -> &str {
        match self {
            PathKind::Missing => "missing",
            PathKind::File => "file",
            PathKind::Dir => "directory",
            PathKind::Link => "link",
            PathKind::Other(kind) => kind,
        }
    }
}

/// What the host says about one path.
#[derive(Clone, Debug)]
pub struct PathFacts {
    pub kind: PathKind,
    /// Four octal digits, e.g. "0644".
    pub mode: String,
    /// Names, when the probe looked them up.
    pub owner: Option<String>,
    pub group: Option<String>,
    pub uid: String,
    pub gid: String,
    pub size: u64,
    pub ino: u64,
    /// Last status change, nanoseconds since the epoch (host clock; whole seconds where the file
    /// system keeps no more).
    pub ctime: i64,
    pub sha256: Option<String>,
    pub target: Option<String>,
}

impl PathFacts {
    pub fn missing() -> Self {
        PathFacts {
            kind: PathKind::Missing,
            mode: String::new(),
            owner: None,
            group: None,
            uid: String::new(),
            gid: String::new(),
            size: 0,
            ino: 0,
            ctime: 0,
            sha256: None,
            target: None,
        }
    }
}

/// Who a host is: a plan made for one machine must not be applied to another.
#[derive(serde::Serialize, serde::Deserialize, Clone, PartialEq, Eq, Debug, Default)]
pub struct HostIdentity {
    pub hostname: String,
    pub machine_id: String,
}

/// Everything one probe learned about a host.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub identity: HostIdentity,
    /// Direct entries of the directories asked about.
    pub children: Vec<String>,
    /// Resolved (runs, backups) roots, when asked for.
    pub roots: Option<(String, String)>,
    pub paths: HashMap<String, PathFacts>,
    /// `ID` and `VERSION_ID` of /etc/os-release, and the package manager found (apt-get, dnf, apk,
    /// pacman), when packages were asked about.
    pub os: Option<OsFacts>,
    /// Accounts by name (from `getent passwd` / `getent group`), when asked for.
    pub users: HashMap<String, UserFacts>,
    pub groups: HashMap<String, GroupFacts>,
    /// Installed packages: name → version.
    pub packages: HashMap<String, String>,
    /// systemd units: unit → property → value (`systemctl show`).
    pub units: HashMap<String, HashMap<String, String>>,
    /// Guard commands by key: whether they succeeded.
    pub guards: HashMap<String, bool>,
    /// The host's clock (nanoseconds) before anything was hashed, when asked for.
    pub clock: Option<i64>,
    /// Release directories asked about: what they hold and where they came from.
    pub trees: HashMap<String, TreeFacts>,
}

/// A reading taken ahead of the command that needs it (at the end of the script before it, on the
/// same session): what was asked, and what was found. See `engine::read_ahead`.
#[derive(Clone)]
pub struct Reading {
    pub batch: ProbeBatch,
    pub facts: Facts,
}

/// A release directory's content ([`super::tree`]) and its unpack marker's line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeFacts {
    pub files: u64,
    pub digest: String,
    pub marker: String,
}

#[derive(Clone, Debug, Default)]
pub struct OsFacts {
    pub id: String,
    pub version_id: String,
    pub package_manager: Option<String>,
}

/// Prints `ID` and `VERSION_ID` of /etc/os-release, one a line.
pub const OS_RELEASE: &str =
    "( . /etc/os-release 2>/dev/null; printf '%s\\n%s\\n' \"${ID:-}\" \"${VERSION_ID:-}\" )\n";

impl OsFacts {
    /// The lines of [`OS_RELEASE`], then the package manager's name if one follows.
    pub fn parse(text: &str) -> OsFacts {
        let mut lines = text.lines();
        OsFacts {
            id: lines.next().unwrap_or_default().to_string(),
            version_id: lines.next().unwrap_or_default().to_string(),
            package_manager: lines.next().filter(|l| !l.is_empty()).map(str::to_string),
        }
    }

    /// `debian_12`: the Repology repository naming of this release.
    pub fn release(&self) -> String {
        let major = self.version_id.split('.').next().unwrap_or_default();
        format!("{}_{}", self.id, major)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFacts {
    pub uid: String,
    pub gid: String,
    pub home: String,
    pub shell: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFacts {
    pub gid: String,
    pub members: Vec<String>,
}

impl Facts {
    pub fn path(&self, path: &str) -> PathFacts {
        self.paths.get(path).cloned().unwrap_or_else(PathFacts::missing)
    }
}

/// What the resources of one host ask the probe to read.
#[derive(Clone, Default)]
pub struct ProbeBatch {
    stat: Vec<String>,
    sha256: Vec<String>,
    /// Look up owner and group names (costly per path); only when some resource declares them.
    names: bool,
    roots: Option<super::roots::Roots>,
    empty: Vec<String>,
    accounts: bool,
    packages: Vec<String>,
    units: Vec<String>,
    guards: Vec<(String, String)>,
    trees: Vec<String>,
    clock: bool,
}

impl ProbeBatch {
    /// A probe of the kind, size, ctime and content hash of `paths` (and the host clock, when
    /// `clock`), for the hash cache.
    pub fn hashes(paths: &[String], clock: bool) -> ProbeBatch {
        ProbeBatch { stat: paths.to_vec(), sha256: paths.to_vec(), clock, ..ProbeBatch::default() }
    }

    pub fn stat(&mut self, path: &str) {
        self.stat.push(path.to_string());
    }

    /// Report what these directories hold (their direct entries).
    pub fn emptiness(&mut self, dir: &str) {
        self.empty.push(dir.to_string());
    }

    /// Also report where runs and backups live on this host.
    pub fn roots(&mut self, roots: &super::roots::Roots) {
        self.roots = Some(roots.clone());
    }

    /// Read every user and group (two small databases, one command each).
    pub fn accounts(&mut self) {
        self.accounts = true;
    }

    /// Read the installed version of this package (and which package manager the host has).
    pub fn package(&mut self, name: &str) {
        self.packages.push(name.to_string());
    }

    /// Read a systemd unit's load, active and enablement state.
    pub fn unit(&mut self, unit: &str) {
        self.units.push(unit.to_string());
    }

    /// Run `command` (a guard such as `unless`) and report whether it succeeded, under `key`.
    pub fn guard(&mut self, key: &str, command: &str) {
        self.guards.push((key.to_string(), command.to_string()));
    }

    /// Digest what this release directory holds and read its unpack marker.
    pub fn tree(&mut self, dir: &str) {
        self.trees.push(dir.to_string());
    }

    pub fn need_names(&mut self) {
        self.names = true;
    }

    /// Content hash of a path, read only when it is a regular file.
    pub fn sha256(&mut self, path: &str) {
        self.sha256.push(path.to_string());
    }

    pub fn sha256_paths(&self) -> &[String] {
        &self.sha256
    }

    /// Do not hash `remembered` (their stat tells whether the remembered hash still holds); report
    /// the host clock.
    pub fn remember(&mut self, remembered: &[String]) {
        let set: std::collections::HashSet<&String> = remembered.iter().collect();
        self.sha256.retain(|p| !set.contains(p));
        self.clock = true;
    }

    /// Whether a reading made by this batch holds everything `other` asks for (what it reads in
    /// excess a plan never looks at: resources find their facts by path, unit or key).
    pub fn covers(&self, other: &ProbeBatch) -> bool {
        fn all_in<T: PartialEq>(wanted: &[T], have: &[T]) -> bool {
            wanted.iter().all(|w| have.contains(w))
        }
        all_in(&other.stat, &self.stat)
            && all_in(&other.sha256, &self.sha256)
            && (self.names || !other.names)
            && self.roots == other.roots
            && all_in(&other.empty, &self.empty)
            && (self.accounts || !other.accounts)
            && all_in(&other.packages, &self.packages)
            && all_in(&other.units, &self.units)
            && all_in(&other.guards, &self.guards)
            && all_in(&other.trees, &self.trees)
    }

    /// Whether the probe runs only commands hk knows, each setting what it needs, so that its
    /// script may run in the caller's shell rather than a subshell (see
    /// [`crate::transport::Transport::run_contained`]): no guards, packages or accounts.
    pub fn contained(&self) -> bool {
        self.guards.is_empty() && self.packages.is_empty() && !self.accounts
    }

    /// The probe script: sections start with a line `<nonce> <section>` so that anything a login
    /// shell prints on its own cannot be mistaken for facts.
    pub fn script(&self, nonce: &str) -> Result<String> {
        let mut s = String::with_capacity(256 + 64 * (self.stat.len() + self.sha256.len()));
        // A contained probe leaves the shell's options and environment as they were: `stat` gets
        // the locale and quoting it needs for itself.
        if !self.contained() {
            s.push_str("set -u\nexport LC_ALL=C QUOTING_STYLE=literal\n");
        }
        s.push_str(&format!("HK={}\n", q(nonce)?));
        s.push_str("printf '\\n%s host\\n' \"$HK\"\n");
        s.push_str("h=; m=\nread -r h < /proc/sys/kernel/hostname 2>/dev/null || h=$(uname -n)\n");
        s.push_str("read -r m < /etc/machine-id 2>/dev/null || m=\nprintf '%s\\n%s\\n' \"$h\" \"$m\"\n");
        s.push_str("printf '\\n%s stat\\n' \"$HK\"\n");
        let names = if self.names { "%U\\0%G" } else { "-\\0-" };
        let stat = format!(
            "LC_ALL=C QUOTING_STYLE=literal stat --printf '%n\\0%F\\0%a\\0{names}\\0%u\\0%g\\0%s\\0%i\\0%.9Z\\0%N\\0' --"
        );
        // The clock: `/proc/self/` is the stat process's own entry, made (and dated by the kernel's
        // file clock) when stat looks it up, before anything is hashed.
        let clock = if self.clock { format!(" {CLOCK_PATH}") } else { String::new() };
        let mut fallback = String::new();
        if self.stat.is_empty() && self.clock {
            fallback.push_str(&format!("{stat}{clock} 2>/dev/null || :\n"));
        }
        for (i, chunk) in arg_chunks(&self.stat).into_iter().enumerate() {
            fallback.push_str(&stat);
            push_words(&mut fallback, chunk)?;
            fallback.push_str(if i == 0 { &clock } else { "" });
            fallback.push_str(" 2>/dev/null || :\n");
        }
        if !fallback.is_empty() {
            let mut words = String::new();
            push_words(&mut words, &self.stat)?;
            let flags = format!("{}{}", if self.names { "n" } else { "" }, if self.clock { "c" } else { "" });
            s.push_str(&super::steps::helper_lstat(&flags, &words, fallback.trim_end()));
        }
        s.push_str("printf '\\n%s sha256\\n' \"$HK\"\n");
        for chunk in arg_chunks(&self.sha256) {
            // No process when none of them is a file (an artifact not uploaded yet).
            s.push_str("hk_f=; for hk_p in");
            push_words(&mut s, chunk)?;
            s.push_str(
                "; do [ ! -f \"$hk_p\" ] || { hk_f=1; break; }; done\n[ -z \"$hk_f\" ] || sha256sum -z --",
            );
            push_words(&mut s, chunk)?;
            s.push_str(" 2>/dev/null || :\n");
        }
        if !self.empty.is_empty() {
            s.push_str("printf '\\n%s children\\n' \"$HK\"\n");
            for chunk in arg_chunks(&self.empty) {
                s.push_str("find");
                push_words(&mut s, chunk)?;
                s.push_str(" -mindepth 1 -maxdepth 1 -print0 2>/dev/null || :\n");
            }
        }
        if !self.trees.is_empty() {
            s.push_str("printf '\\n%s trees\\n' \"$HK\"\n");
            for dir in &self.trees {
                s.push_str(&super::tree::probe_command(dir)?);
            }
        }
        self.system_sections(&mut s, nonce)?;
        if let Some(roots) = &self.roots {
            s.push_str(&roots.snippet()?);
            s.push_str("printf '\\n%s roots\\n%s\\n%s\\n' \"$HK\" \"$hk_runs\" \"$hk_backups\"\n");
        }
        s.push_str("printf '\\n%s end\\n' \"$HK\"\n");
        Ok(s)
    }
}

/// Stat'ed last in the first batch when the probe reports the host clock.
const CLOCK_PATH: &str = "/proc/self/";

/// `1795451069.260999357` (stat's `%.9Z`) as nanoseconds; 0 (never reused) when unreadable.
fn ctime_nanos(text: &str) -> i64 {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let Ok(seconds) = seconds.parse::<i64>() else { return 0 };
    let digits: String = fraction.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos = digits.parse::<i64>().unwrap_or(0);
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Installed packages as `name<TAB>version<TAB>status`, for whichever package manager the host has.
const PACKAGE_QUERY: &str = r#"if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f '${Package}\t${Version}\t${db:Status-Abbrev}\n' -- "$@" 2>/dev/null || :
elif command -v rpm >/dev/null 2>&1; then
  rpm -q --qf '%{NAME}\t%{VERSION}-%{RELEASE}\tii\n' -- "$@" 2>/dev/null | grep -v ' is not installed' || :
elif command -v apk >/dev/null 2>&1; then
  for p in "$@"; do v=$(apk info -e -v -- "$p" 2>/dev/null) && printf '%s\t%s\tii\n' "$p" "${v#"$p"-}"; done
elif command -v pacman >/dev/null 2>&1; then
  pacman -Q -- "$@" 2>/dev/null | while read -r n v; do printf '%s\t%s\tii\n' "$n" "$v"; done
fi"#;

impl ProbeBatch {
    fn system_sections(&self, s: &mut String, nonce: &str) -> Result<()> {
        if !self.packages.is_empty() {
            s.push_str("printf '\\n%s os\\n' \"$HK\"\n");
            s.push_str(OS_RELEASE);
            s.push_str("for m in apt-get dnf apk pacman; do command -v $m >/dev/null 2>&1 && { echo $m; break; }; done\n");
            s.push_str("printf '\\n%s packages\\n' \"$HK\"\n");
            s.push_str(&format!("hk_pkgs() {{\n{PACKAGE_QUERY}\n}}\nhk_pkgs"));
            push_words(s, &self.packages)?;
            s.push('\n');
        }
        if self.accounts {
            s.push_str("printf '\\n%s passwd\\n' \"$HK\"\ngetent passwd 2>/dev/null || cat /etc/passwd\n");
            s.push_str("printf '\\n%s group\\n' \"$HK\"\ngetent group 2>/dev/null || cat /etc/group\n");
        }
        if !self.units.is_empty() {
            s.push_str("printf '\\n%s units\\n' \"$HK\"\n");
            s.push_str(&steps::unit_properties("LoadState,ActiveState,UnitFileState", &self.units, nonce)?);
        }
        if !self.guards.is_empty() {
            s.push_str("printf '\\n%s guards\\n' \"$HK\"\n");
            for (key, command) in &self.guards {
                s.push_str(&format!(
                    "if ( {command}\n) </dev/null >/dev/null 2>&1; then echo {k}=0; else echo {k}=1; fi\n",
                    k = q(key)?
                ));
            }
        }
        Ok(())
    }

    /// Parse the output of [`ProbeBatch::script`].
    pub fn parse(&self, out: &[u8], nonce: &str) -> Result<Facts> {
        let mut facts = parse(out, nonce)?;
        parse_system(&sections(out, nonce), &mut facts, &self.units);
        Ok(facts)
    }
}

fn parse_system(sections: &HashMap<String, &[u8]>, facts: &mut Facts, units_asked: &[String]) {
    let text = |name: &str| sections.get(name).map(|b| String::from_utf8_lossy(b).into_owned());
    if let Some(os) = text("os") {
        facts.os = Some(OsFacts::parse(&os));
    }
    for line in text("packages").unwrap_or_default().lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() >= 3 && fields[2].starts_with("ii") {
            facts.packages.insert(fields[0].to_string(), fields[1].to_string());
        }
    }
    for line in text("passwd").unwrap_or_default().lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 7 {
            facts.users.insert(
                f[0].to_string(),
                UserFacts { uid: f[2].into(), gid: f[3].into(), home: f[5].into(), shell: f[6].into() },
            );
        }
    }
    for line in text("group").unwrap_or_default().lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 {
            let members = f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect();
            facts.groups.insert(f[0].to_string(), GroupFacts { gid: f[2].into(), members });
        }
    }
    // `systemctl show` prints one block per unit, in the order asked, separated by blank lines.
    let units = text("units").unwrap_or_default();
    let blocks = units.split("\n\n").map(str::trim).filter(|b| !b.is_empty());
    for (unit, block) in units_asked.iter().zip(blocks) {
        let props = block
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        facts.units.insert(unit.clone(), props);
    }
    if crate::trace::enabled() && !units_asked.is_empty() {
        let by =
            if units.lines().any(|l| l == "#helper") { "the session's file helper" } else { "systemctl" };
        eprintln!("hk trace: units read by {by}: {}", units_asked.join(" "));
    }
    for line in text("guards").unwrap_or_default().lines() {
        if let Some((key, code)) = line.rsplit_once('=') {
            facts.guards.insert(key.to_string(), code == "0");
        }
    }
}

fn push_words(s: &mut String, words: &[String]) -> Result<()> {
    for word in words {
        s.push(' ');
        s.push_str(&q(word)?);
    }
    Ok(())
}

/// Split probe output into its sections by nonce marker.
pub fn sections<'a>(out: &'a [u8], nonce: &str) -> HashMap<String, &'a [u8]> {
    let marker = format!("\n{nonce} ");
    let marker = marker.as_bytes();
    let mut found = HashMap::new();
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(pos) = find(&out[i..], marker) {
        starts.push(i + pos);
        i += pos + marker.len();
    }
    for (n, &start) in starts.iter().enumerate() {
        let name_start = start + marker.len();
        let Some(eol) = out[name_start..].iter().position(|&b| b == b'\n') else {
            continue;
        };
        let name = String::from_utf8_lossy(&out[name_start..name_start + eol]).into_owned();
        let body_start = name_start + eol + 1;
        let body_end = starts.get(n + 1).copied().unwrap_or(out.len()).max(body_start);
        found.insert(name, &out[body_start..body_end]);
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// Parse the path and host sections of [`ProbeBatch::script`]'s output.
pub fn parse(out: &[u8], nonce: &str) -> Result<Facts> {
    let sections = sections(out, nonce);
    if !sections.contains_key("end") {
        bail!("the probe script did not finish (no end marker in its output)");
    }
    let mut facts = Facts::default();
    let host = sections.get("host").context("probe output has no host section")?;
    let host = String::from_utf8_lossy(host);
    let mut lines = host.lines();
    facts.identity.hostname = lines.next().unwrap_or_default().trim().to_string();
    facts.identity.machine_id = lines.next().unwrap_or_default().trim().to_string();

    if let Some(children) = sections.get("children") {
        for entry in children.split(|&b| b == 0).filter(|d| !d.is_empty()) {
            facts.children.push(String::from_utf8_lossy(entry).into_owned());
        }
    }
    if let Some(roots) = sections.get("roots") {
        let text = String::from_utf8_lossy(roots);
        let mut lines = text.lines();
        let runs = lines.next().unwrap_or_default().to_string();
        let backups = lines.next().unwrap_or_default().to_string();
        facts.roots = Some((runs, backups));
    }
    if let Some(stat) = sections.get("stat") {
        let fields: Vec<&[u8]> = stat.split(|&b| b == 0).collect();
        for record in fields.chunks_exact(11) {
            let text = |i: usize| String::from_utf8_lossy(record[i]).into_owned();
            let name = text(0);
            let kind = match text(1).as_str() {
                "regular file" | "regular empty file" => PathKind::File,
                "directory" => PathKind::Dir,
                "symbolic link" => PathKind::Link,
                other => PathKind::Other(other.to_string()),
            };
            let target = if kind == PathKind::Link {
                let prefix = format!("{name} -> ");
                text(10).strip_prefix(&prefix).map(str::to_string)
            } else {
                None
            };
            let mode = format!("{:0>4}", text(2));
            facts.paths.insert(
                name,
                PathFacts {
                    kind,
                    mode,
                    owner: Some(text(3)).filter(|n| n != "-"),
                    group: Some(text(4)).filter(|n| n != "-"),
                    uid: text(5),
                    gid: text(6),
                    size: text(7).parse().unwrap_or(0),
                    ino: text(8).parse().unwrap_or(0),
                    ctime: ctime_nanos(&text(9)),
                    sha256: None,
                    target,
                },
            );
        }
    }
    // stat's own /proc entry, if asked for, is the host clock, not a path anyone manages.
    if let Some(own) = facts.paths.remove(CLOCK_PATH) {
        facts.clock = Some(own.ctime);
    }
    if let Some(trees) = sections.get("trees") {
        let fields: Vec<&[u8]> = trees.split(|&b| b == 0).collect();
        for record in fields.chunks_exact(3) {
            let (digest, files) = super::tree::summary(record[1]);
            let marker = String::from_utf8_lossy(record[2]).trim().to_string();
            facts
                .trees
                .insert(String::from_utf8_lossy(record[0]).into_owned(), TreeFacts { files, digest, marker });
        }
    }
    if let Some(sums) = sections.get("sha256") {
        for line in sums.split(|&b| b == 0) {
            // "<64 hex>  <path>"; a leading newline comes from the section marker layout.
            let line = line.strip_prefix(b"\n").unwrap_or(line);
            if line.len() < 67 || &line[64..66] != b"  " {
                continue;
            }
            let sum = String::from_utf8_lossy(&line[..64]).into_owned();
            let path = String::from_utf8_lossy(&line[66..]).into_owned();
            if let Some(p) = facts.paths.get_mut(&path) {
                p.sha256 = Some(sum);
            }
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading serves a plan that asks no more than it read, whatever else it read; roots must
    /// be the same (they are resolved on the host as asked).
    #[test]
    fn a_reading_covers_what_it_read_and_no_more() {
        let mut read = ProbeBatch::default();
        for p in ["/a", "/b", "/c"] {
            read.stat(p);
        }
        read.sha256("/b");
        read.unit("x.service");
        read.tree("/r");
        let mut asked = ProbeBatch::default();
        asked.stat("/c");
        asked.stat("/a");
        asked.sha256("/b");
        asked.unit("x.service");
        assert!(read.covers(&asked));
        let mut more = ProbeBatch::default();
        more.sha256("/a");
        assert!(!read.covers(&more), "a hash it did not take");
        let mut accounts = ProbeBatch::default();
        accounts.accounts();
        assert!(!read.covers(&accounts));
        let mut rooted = ProbeBatch::default();
        rooted.roots(&super::super::roots::Roots { runs: Some("/runs".into()), backups: None });
        assert!(!read.covers(&rooted));
        let mut remembered = read.clone();
        remembered.remember(&["/b".to_string()]);
        assert!(!remembered.covers(&read), "what a plan asks is compared before remembered hashes drop out");
    }

    #[test]
    fn ctimes_read_as_nanoseconds() {
        assert_eq!(ctime_nanos("1795451069.260999357"), 1_795_451_069_260_999_357);
        assert_eq!(ctime_nanos("12.5"), 12_500_000_000);
        assert_eq!(ctime_nanos("12"), 12_000_000_000);
        assert_eq!(ctime_nanos("?"), 0);
    }

    #[test]
    fn arg_chunks_keep_every_path_once_and_fit_a_command_line() {
        let paths: Vec<String> = (0..5000).map(|i| format!("/srv/app/{i:04}/{}", "x".repeat(40))).collect();
        let chunks = arg_chunks(&paths);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.iter().map(|p| p.len() + 3).sum::<usize>() <= ARG_BYTES_PER_CALL));
        assert_eq!(chunks.concat(), paths);
        assert_eq!(arg_chunks(&paths[..500]).len(), 1);
        assert!(arg_chunks(&[]).is_empty());
    }

    #[test]
    fn stray_output_before_and_inside_is_ignored() {
        let nonce = "abc123";
        let out = b"pyenv says hi\nabc123 not a marker\n\nabc123 host\nweb1\nm-1\n\nabc123 stat\n\nabc123 sha256\n\nabc123 end\n";
        let facts = parse(out, nonce).expect("parses");
        assert_eq!(facts.identity.hostname, "web1");
        assert_eq!(facts.identity.machine_id, "m-1");
    }

    #[test]
    fn missing_end_marker_is_an_error() {
        assert!(parse(b"\nn host\nh\nm\n", "n").is_err());
    }
}
