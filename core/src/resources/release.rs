//! `release`: one config entry, three plan rows — the artifact on the host (uploaded only when the
//! host lacks these bytes, verified by sha256), the unpacked version directory, and the `current`
//! link flipped atomically to it (left out with `current: false`).

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::dir::refuse_kind;
use super::path_attrs::{State, describe_content, normalize_path, observe_file, text};
use super::{Diff, Link, Observed, Resource, ResourceKind, StepContext, Upload};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;
use crate::quote::q;
use crate::release::{check_artifact, valid_component};
use crate::script::probe::{Facts, PathKind, ProbeBatch};
use crate::script::steps::{self, Step};
use crate::script::tree::{digest_command, marker_line, marker_path, parse_marker};

/// Expand a `release` config entry into its rows' resources.
pub fn from_config(obj: &mut Obj) -> Result<Vec<Resource>> {
    let name = obj.req_str("name")?;
    if !valid_component(&name) {
        obj.fail("name", "a release name uses letters, digits, '.', '_', '-', '+'")?;
    }
    let version = obj.req_str("version")?;
    if !valid_component(&version) {
        obj.fail("version", "a release version uses letters, digits, '.', '_', '-', '+'")?;
    }
    if obj.state()? == State::Absent {
        // A release that must not be on the host: its folder, then its artifact, removed.
        let base = format!("{}/{name}", root_of(obj)?);
        return Ok(vec![
            Resource::ReleaseUnpack(ReleaseUnpack::absent(&format!("{base}/releases/{version}"))),
            Resource::ReleaseArtifact(ReleaseArtifact::absent(&artifact_path(&base, &name, &version))),
        ]);
    }
    let strip = match obj.opt_u64("strip_components")? {
        None => 0,
        Some(n) if n <= 16 => n as u32,
        Some(_) => obj.fail("strip_components", "give 0 to 16 leading path components to leave out")?,
    };
    let pinned = obj.opt_str("sha256")?.map(|s| s.to_ascii_lowercase());
    // The artifact: a local tarball or hk manifest, or a tarball at an http(s) URL, fetched here and
    // pinned by its sha256 — all checked before any host is touched.
    let (artifact, field) = match (obj.opt_str("artifact")?, obj.opt_str("url")?) {
        (Some(path), None) => (obj.local_path(&path), "artifact"),
        (None, Some(url)) => {
            let Some(sha) = &pinned else {
                return obj.fail("sha256", "a release from a URL is pinned by its sha256: give it");
            };
            if crate::fields::reading_only() {
                (url, "url")
            } else {
                match crate::release::fetch::fetch(&url, sha, &crate::release::fetch::cache_dir()) {
                    Ok(local) => (local.display().to_string(), "url"),
                    Err(e) => obj.fail("url", &format!("{e:#}"))?,
                }
            }
        }
        (Some(_), Some(_)) => obj.fail("url", "give either artifact (a local file) or url, not both")?,
        (None, None) => obj.fail("artifact", "missing: give the release's artifact (a file here) or url")?,
    };
    let checked = if crate::fields::reading_only() {
        // Only the paths matter; the artifact may not be built yet.
        crate::release::Artifact {
            tarball: artifact.clone().into(),
            sha256: pinned.clone().unwrap_or_default(),
            size: 0,
            tree: Default::default(),
        }
    } else {
        match check_artifact(std::path::Path::new(&artifact), strip) {
            Ok(a) => a,
            Err(e) => obj.fail(field, &format!("{e:#}"))?,
        }
    };
    if let Some(sha) = &pinned
        && !crate::fields::reading_only()
        && *sha != checked.sha256
    {
        obj.fail(
            "sha256",
            &format!(
                "{artifact} has sha256 {}, not the {sha} the config pins; nothing was changed",
                checked.sha256
            ),
        )?;
    }
    let root = root_of(obj)?;
    let keep = obj.opt_u64("keep")?.unwrap_or(5);
    // `current: false` leaves the `current` link to whoever switches traffic (a deploy's switch).
    let flip_current = obj.opt_bool("current")?.unwrap_or(true);
    let owner = obj.opt_name("owner")?;
    let group = obj.opt_name("group")?;
    let base = format!("{root}/{name}");
    let artifact_path = artifact_path(&base, &name, &version);
    let mut rows = vec![
        Resource::ReleaseArtifact(ReleaseArtifact {
            path: artifact_path.clone(),
            local: checked.tarball.display().to_string(),
            sha256: checked.sha256.clone(),
            size: checked.size,
            unpack_to: Some(format!("{base}/releases/{version}")),
            strip_components: strip,
            state: State::Present,
        }),
        Resource::ReleaseUnpack(ReleaseUnpack {
            path: format!("{base}/releases/{version}"),
            artifact: artifact_path,
            sha256: checked.sha256,
            owner,
            group,
            keep,
            strip_components: strip,
            tree: checked.tree.digest(),
            files: checked.tree.files(),
            state: State::Present,
        }),
    ];
    if flip_current {
        rows.push(Resource::Link(Link {
            path: format!("{base}/current"),
            target: format!("releases/{version}"),
            state: State::Present,
            after: Vec::new(),
        }));
    }
    Ok(rows)
}

/// Where the apps' releases live: the config's `root`, else `/opt/hk`.
fn root_of(obj: &mut Obj) -> Result<String> {
    match obj.opt_str("root")? {
        Some(r) => normalize_path(obj, "root", &r),
        None => Ok("/opt/hk".to_string()),
    }
}

/// Where a release's tarball lives on a host: `<root>/<name>/artifacts/<name>-<version>.tar.gz`.
pub fn artifact_path(base: &str, name: &str, version: &str) -> String {
    format!("{base}/artifacts/{name}-{version}.tar.gz")
}

/// The artifact a release directory (`<root>/<name>/releases/<version>`) is unpacked from.
pub fn artifact_of(release_dir: &str) -> Option<String> {
    let (base, version) = release_dir.rsplit_once("/releases/")?;
    Some(artifact_path(base, base.rsplit('/').next()?, version))
}

/// `release_artifact`: the tarball under `<root>/<name>/artifacts/`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReleaseArtifact {
    pub path: String,
    /// The tarball on the machine running hk.
    pub local: String,
    pub sha256: String,
    pub size: u64,
    /// The version directory the upload also unpacks into (as `<dir>.partial`), while the bytes
    /// arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpack_to: Option<String>,
    /// Leading path components the unpack leaves out (a tarball that wraps its files in a folder).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub strip_components: u32,
    #[serde(default)]
    pub state: State,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// tar's flag for `strip` leading components (nothing for none).
fn strip_flag(strip: u32) -> String {
    if strip == 0 { String::new() } else { format!(" --strip-components={strip}") }
}

impl ReleaseArtifact {
    pub fn absent(path: &str) -> ReleaseArtifact {
        ReleaseArtifact {
            path: path.into(),
            local: String::new(),
            sha256: String::new(),
            size: 0,
            unpack_to: None,
            strip_components: 0,
            state: State::Absent,
        }
    }

    fn partial(&self) -> String {
        format!("{}.partial", self.path)
    }

    /// A shell check that the uploaded bytes hashed (into `<partial>.sum`) to the manifest's sha256;
    /// otherwise it removes them, and what was unpacked from them, and fails with a clear message.
    fn verify_upload(&self) -> Result<String> {
        let partial = q(&self.partial())?;
        let sum = q(&format!("{}.sum", self.partial()))?;
        let mut discard = format!("rm -f -- {partial} {sum}");
        if let Some(dir) = &self.unpack_to {
            discard.push_str(&format!("; rm -rf -- {}", q(&format!("{dir}.partial"))?));
        }
        let message = q(&format!(
            "hk: the uploaded artifact {} does not match sha256 {}; it was removed",
            self.path, self.sha256
        ))?;
        Ok(format!(
            "{{ hk_sum=; {{ read -r hk_sum hk_rest < {sum}; }} 2>/dev/null; [ \"$hk_sum\" = {} ] || {{ {discard}; printf '%s\\n' {message} >&2; false; }}; }}",
            q(&self.sha256)?
        ))
    }
}

/// The SHA-256 of stdin as `HEX …`: OpenSSL where the host has it (it uses the CPU's SHA
/// instructions, several times faster than coreutils on large artifacts), else sha256sum.
const SHA256_STDIN: &str =
    "{ if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }";

/// Decompresses gzip from stdin with the fastest decoder the host has: zstd (through zlib, ten
/// times GNU gzip's speed on large artifacts) when it reads gzip — tried on an empty gzip member
/// first, since a zstd built without zlib does not — else pigz, else gzip. Only as the left side of
/// a pipeline: that runs in a subshell of its own, which the decoder replaces (`exec`), one process
/// fewer.
const GUNZIP_STDIN: &str = "{ if command -v zstd >/dev/null 2>&1 && printf '\\037\\213\\010\\000\\000\\000\\000\\000\\000\\003\\003\\000\\000\\000\\000\\000\\000\\000\\000\\000' | zstd -dcq >/dev/null 2>&1; then exec zstd -dcq; elif command -v pigz >/dev/null 2>&1; then exec pigz -dc; else exec gzip -dc; fi; }";

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty()).unwrap_or("/")
}

impl ResourceKind for ReleaseArtifact {
    fn type_name(&self) -> &'static str {
        "release_artifact"
    }

    fn name(&self) -> &str {
        &self.path
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        batch.stat(&self.path);
        batch.sha256(&self.path);
    }

    fn observe(&self, facts: &Facts) -> Observed {
        observe_file(&facts.path(&self.path))
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let kind = text(seen, "kind").unwrap_or_default();
        let have = text(seen, "sha256");
        match (self.state, kind.as_str()) {
            (State::Absent, "file") => Diff {
                action: Action::Delete,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("artifact", have, None)],
            },
            (State::Absent, _) => Diff::noop(),
            (State::Present, "file") if have.as_deref() == Some(self.sha256.as_str()) => Diff::noop(),
            (State::Present, kind) => Diff {
                action: if kind == "missing" { Action::Create } else { Action::Update },
                reason: if kind == "missing" { Reason::Missing } else { Reason::Drift },
                changes: vec![FieldChange::new(
                    "artifact",
                    have.map(|h| {
                        describe_content(&h, seen.get("size").and_then(|s| s.as_u64()).unwrap_or(0))
                    }),
                    Some(describe_content(&self.sha256, self.size)),
                )],
            },
        }
    }

    fn step(&self, diff: &Diff, seen: &Observed, _cx: &StepContext) -> Result<Step> {
        let mut step = Step::new();
        match diff.action {
            Action::Create | Action::Update => {
                if !matches!(text(seen, "kind").as_deref(), Some("missing" | "file")) {
                    step.run(refuse_kind(&self.path, "a regular file")?);
                    return Ok(step);
                }
                // The bytes were streamed to `.partial` before this script and hashed on the way in;
                // they count only if they hash to what was checked on this machine.
                let (partial, sum) = (self.partial(), format!("{}.sum", self.partial()));
                step.run(self.verify_upload()?)
                    .run(steps::remove_file(&sum)?)
                    .run(steps::chmod("0644", &partial)?)
                    .run(steps::rename(&partial, &self.path)?);
            }
            Action::Delete => {
                step.run(steps::remove_file(&self.path)?);
            }
            Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        super::ancestor_dir_ids(&self.path)
    }

    fn backs_up_by_link(&self) -> bool {
        true
    }

    fn conflict(&self, seen: &Observed) -> Option<String> {
        super::kind_conflict(&self.path, seen, &["missing", "file"], "a release artifact (a file)")
    }

    fn upload(&self) -> Result<Option<Upload>> {
        if self.state != State::Present {
            return Ok(None);
        }
        // The bytes land in `.partial` through `cat` (large writes; a `tee` into several pipes costs
        // more than it overlaps). Then, from the page cache and at the same time, they are hashed
        // and, for a new version, unpacked into `<version>.partial` — which only the next steps,
        // after the hash matched, make real.
        let partial = q(&self.partial())?;
        let sum = q(&format!("{}.sum", self.partial()))?;
        // The folders usually exist, and what a last upload left goes in one `rm` (a process costs
        // on a slow host). A `.partial` is removed before `cat` writes it: it may be a hard link.
        let unpack = self.unpack_to.as_ref().map(|dir| format!("{dir}.partial"));
        let mut folders = vec![q(parent(&self.path))?];
        let mut leftovers = format!("{partial} {sum}");
        if let (Some(version_dir), Some(unpack)) = (&self.unpack_to, &unpack) {
            folders.push(q(parent(version_dir))?);
            leftovers.push_str(&format!(" {}", q(unpack)?));
        }
        let exist = folders.iter().map(|f| format!("[ -d {f} ]")).collect::<Vec<_>>().join(" && ");
        let mut script = format!(
            "set -eu\numask 022\n{exist} || mkdir -p -- {}\n\
             for hk_p in {leftovers}; do if [ -e \"$hk_p\" ] || [ -L \"$hk_p\" ]; then rm -rf -- {leftovers}; break; fi; done\n\
             cat > {partial}\n",
            folders.join(" ")
        );
        match &unpack {
            Some(unpack) => {
                let unpack = q(unpack)?;
                // Bytes that do not unpack are most likely not the artifact's: say so when their hash
                // tells, after the decoder's own words.
                script.push_str(&format!(
                    "mkdir -- {unpack}\n{SHA256_STDIN} < {partial} > {sum} &\n\
                     if ! {{ {GUNZIP_STDIN} < {partial} | tar -xf - -C {unpack} --no-same-owner{strip}; }}; then\n\
                     wait $!\n{verify}\nexit 1\nfi\nwait $!\n",
                    verify = self.verify_upload()?,
                    strip = strip_flag(self.strip_components),
                ));
            }
            None => script.push_str(&format!("{SHA256_STDIN} < {partial} > {sum}\n")),
        }
        Ok(Some(Upload { local: self.local.clone(), command: format!("sh -c {}", q(&script)?) }))
    }
}

/// `release_unpack`: `<root>/<name>/releases/<version>`, unpacked from the verified artifact, in
/// sync only while it holds exactly what the artifact unpacks to ([`crate::script::tree`]).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ReleaseUnpack {
    pub path: String,
    /// The artifact on the host.
    pub artifact: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub keep: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub strip_components: u32,
    /// The digest of what the artifact unpacks to, and how many files that is (empty: not known).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tree: String,
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub state: State,
}

impl ReleaseUnpack {
    pub fn absent(path: &str) -> ReleaseUnpack {
        ReleaseUnpack {
            path: path.into(),
            // Named so that a removal takes the directory away before its artifact.
            artifact: artifact_of(path).unwrap_or_default(),
            sha256: String::new(),
            owner: None,
            group: None,
            keep: 0,
            strip_components: 0,
            tree: String::new(),
            files: 0,
            state: State::Absent,
        }
    }

    /// The release directory a removal observed as `before`, put back whole: unpacked again from
    /// its artifact (restored first, or still there), verified by the artifact's hash and by the
    /// digest of what the directory held. `artifact_sha256` stands in for a marker hk did not
    /// write (a directory unpacked before markers existed).
    pub fn restore(
        path: &str,
        before: &Observed,
        artifact_sha256: Option<String>,
    ) -> Result<ReleaseUnpack, String> {
        let (marked_sha, strip) = parse_marker(&text(before, "marker").unwrap_or_default());
        let sha256 = marked_sha.or(artifact_sha256).ok_or_else(|| {
            "which artifact this release was unpacked from is unknown (no marker, and the run did not remove its artifact)"
                .to_string()
        })?;
        let tree = text(before, "tree").ok_or("what the release held was not recorded")?;
        let artifact =
            artifact_of(path).ok_or("it is not a release directory (<root>/<name>/releases/<version>)")?;
        Ok(ReleaseUnpack {
            path: path.into(),
            artifact,
            sha256,
            owner: text(before, "uid"),
            group: text(before, "gid"),
            keep: 0,
            strip_components: strip,
            tree,
            files: before.get("files").and_then(|f| f.as_u64()).unwrap_or(0),
            state: State::Present,
        })
    }

    /// What the plan shows for the content wanted.
    fn describe_wanted(&self) -> String {
        let from = describe_content(&self.sha256, 0).replace(" (0 B)", "");
        if self.tree.is_empty() { from } else { format!("{} from {from}", files_word(self.files)) }
    }

    /// Shell checking that `dir` holds what the artifact unpacks to; otherwise it fails naming both.
    fn verify_tree(&self, dir: &str) -> Result<String> {
        let message = q(&format!(
            "hk: {} did not unpack to what {} holds ({}); nothing was replaced",
            self.artifact,
            self.artifact,
            files_word(self.files)
        ))?;
        Ok(format!(
            "{{ {}; [ \"$hk_d\" = {} ] || {{ printf '%s\\n' {message} >&2; false; }}; }}",
            digest_command(dir)?,
            q(&self.tree)?
        ))
    }
}

fn files_word(n: u64) -> String {
    if n == 1 { "1 file".into() } else { format!("{n} files") }
}

impl ResourceKind for ReleaseUnpack {
    fn type_name(&self) -> &'static str {
        "release_unpack"
    }

    fn name(&self) -> &str {
        &self.path
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        batch.stat(&self.path);
        batch.tree(&self.path);
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let path = facts.path(&self.path);
        let mut seen = Observed::new();
        seen.insert("kind".into(), path.kind.label().into());
        if path.kind == PathKind::Dir {
            seen.insert("uid".into(), path.uid.into());
            seen.insert("gid".into(), path.gid.into());
            if let Some(tree) = facts.trees.get(&self.path) {
                seen.insert("tree".into(), tree.digest.clone().into());
                seen.insert("files".into(), tree.files.into());
                if !tree.marker.is_empty() {
                    seen.insert("marker".into(), tree.marker.clone().into());
                }
            }
        }
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let kind = text(seen, "kind").unwrap_or_default();
        let files = seen.get("files").and_then(|f| f.as_u64()).unwrap_or(0);
        match (self.state, kind.as_str()) {
            (State::Absent, "missing") => Diff::noop(),
            (State::Present, "directory") => {
                let (marked_sha, _) = parse_marker(&text(seen, "marker").unwrap_or_default());
                let same_tree =
                    self.tree.is_empty() || text(seen, "tree").as_deref() == Some(self.tree.as_str());
                let same_bytes = marked_sha.is_none_or(|sha| sha == self.sha256);
                if same_tree && same_bytes {
                    return Diff::noop();
                }
                let what = if same_tree {
                    "unpacked from other bytes".to_string()
                } else {
                    "not what it unpacks to".to_string()
                };
                Diff {
                    action: Action::Update,
                    reason: Reason::Drift,
                    changes: vec![FieldChange::new(
                        "unpacked",
                        Some(format!("{}, {what}", files_word(files))),
                        Some(self.describe_wanted()),
                    )],
                }
            }
            (State::Present, _) => Diff {
                action: Action::Create,
                reason: Reason::Missing,
                changes: vec![FieldChange::new("unpacked", None, Some(self.describe_wanted()))],
            },
            (State::Absent, _) => Diff {
                action: Action::Delete,
                reason: Reason::Drift,
                changes: vec![FieldChange::new(
                    "unpacked",
                    Some(if kind == "directory" { files_word(files) } else { kind }),
                    None,
                )],
            },
        }
    }

    fn step(&self, diff: &Diff, seen: &Observed, cx: &StepContext) -> Result<Step> {
        let mut step = Step::new();
        let path = q(&self.path)?;
        let marker = q(&marker_path(&self.path))?;
        if !matches!(diff.action, Action::Create | Action::Update) {
            if diff.action == Action::Delete {
                step.run(format!("hk_rmtree {path}")).run(format!("hk_rm {marker}"));
            }
            return Ok(step);
        }
        let expected_kind = if diff.action == Action::Create { "missing" } else { "directory" };
        if text(seen, "kind").as_deref() != Some(expected_kind) {
            step.run(refuse_kind(&self.path, "a release directory")?);
            return Ok(step);
        }
        let partial_path = format!("{}.partial", self.path);
        let partial = q(&partial_path)?;
        if cx.uploaded.contains(&format!("release_artifact:{}", self.artifact)) {
            // Unpacked while uploading; the artifact step before this one verified the bytes.
            step.run(format!("[ -d {partial} ]"));
        } else {
            let artifact = q(&self.artifact)?;
            let message = q(&format!(
                "hk: {} does not match sha256 {}; nothing was unpacked",
                self.artifact, self.sha256
            ))?;
            step.run("umask 022".into())
                .run(format!("rm -rf -- {partial}"))
                .run(format!("mkdir -p -- {}", q(parent(&self.path))?))
                .run(format!("mkdir -- {partial}"))
                .run(format!(
                    "{{ [ \"$({SHA256_STDIN} < {artifact} | cut -d' ' -f1)\" = {} ] || {{ printf '%s\\n' {message} >&2; false; }}; }}",
                    q(&self.sha256)?
                ))
                .run(format!(
                    "{GUNZIP_STDIN} < {artifact} | tar -xf - -C {partial} --no-same-owner{}",
                    strip_flag(self.strip_components)
                ))
                .run("umask 077".into());
        }
        if !self.tree.is_empty() {
            step.run(self.verify_tree(&partial_path)?);
        }
        let spec = match (&self.owner, &self.group) {
            (Some(o), Some(g)) => Some(format!("{o}:{g}")),
            (Some(o), None) => Some(o.clone()),
            (None, Some(g)) => Some(format!(":{g}")),
            (None, None) => None,
        };
        if let Some(spec) = &spec {
            step.run(format!("chown -R -- {} {partial}", q(spec)?));
        }
        if diff.action == Action::Update {
            // The drifted directory steps aside for the good one, then goes; a process running in
            // it keeps its (renamed) working directory.
            let aside = q(&hidden_beside(&self.path, "replaced"))?;
            step.run(format!("rm -rf -- {aside}"))
                .run(format!("mv -T -- {path} {aside}"))
                .run(format!("mv -T -- {partial} {path}"))
                .run(format!("rm -rf -- {aside}"));
        } else {
            step.run(steps::rename(&partial_path, &self.path)?);
        }
        let marker_tmp = hidden_beside(&self.path, "unpacked.tmp");
        step.run(format!(
            "printf '%s\\n' {} > {}",
            q(&marker_line(&self.sha256, self.strip_components))?,
            q(&marker_tmp)?
        ))
        .run(steps::chmod("0644", &marker_tmp)?)
        .run(steps::rename(&marker_tmp, &marker_path(&self.path))?)
        .cleanup(format!("rm -rf -- {partial}"));
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        let mut deps = super::ancestor_dir_ids(&self.path);
        deps.push(format!("release_artifact:{}", self.artifact));
        // A down plan puts a removed artifact back from its backup as a plain file row.
        deps.push(format!("file:{}", self.artifact));
        deps
    }

    fn conflict(&self, seen: &Observed) -> Option<String> {
        super::kind_conflict(&self.path, seen, &["missing", "directory"], "a release directory")
    }
}

/// `<parent>/.<name>.<suffix>`: a temp name beside `path` that `releases/*` does not list.
fn hidden_beside(path: &str, suffix: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    format!("{dir}/.{name}.{suffix}")
}
