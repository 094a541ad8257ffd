//! `file`: a regular file with exact bytes (inline `content` or a local `source`), mode, owner, group.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dir::{owner_ids, refuse_kind};
use super::path_attrs::{
    PathAttrs, State, describe_content, normalize_path, observe_file, temp_sibling, text,
};
use super::{Diff, Observed, ResourceKind, StepContext, ancestor_dir_ids};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::{self, Step};

const DEFAULT_MODE: &str = "0644";

/// Inline content: text, or raw bytes (a Nushell binary value arrives as a list of byte values).
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Bytes(Vec<u8>),
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct File {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Absolute local path of the source file; its bytes are read again at apply and must still hash
    /// to `sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// sha256 of the desired bytes (empty when the file is to be absent).
    #[serde(default)]
    pub sha256: String,
    /// A copy on the target to take the bytes from (a tracked run's backup); set by down plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(flatten)]
    pub attrs: PathAttrs,
    #[serde(default)]
    pub state: State,
    /// A shell command run once new content is in place (e.g. validating a whole configuration
    /// that includes this file); when it fails, the previous content comes back and the step fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Ids to apply first (beyond the parent directories and owners, which always come first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    #[serde(skip)]
    data: Option<Arc<Vec<u8>>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    hex::encode(digest)
}

impl File {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let raw = obj.req_str("path")?;
        let path = normalize_path(obj, "path", &raw)?;
        let content = match obj.take("content") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(Content::Text(s)),
            Some(value @ serde_json::Value::Array(_)) => match serde_json::from_value::<Vec<u8>>(value) {
                Ok(bytes) => Some(Content::Bytes(bytes)),
                Err(_) => obj.fail("content", "expected a string or binary data (a list of bytes 0-255)")?,
            },
            Some(other) => {
                obj.fail("content", &format!("expected a string or binary data, got {}", kind_of(&other)))?
            }
        };
        let source = obj.opt_str("source")?.map(|src| obj.local_path(&src));
        let attrs = PathAttrs::from_config(obj)?;
        let state = obj.state()?;
        let check = obj.opt_str("check")?;
        let after = super::command::ids_field(obj, "after")?;
        if check.as_ref().is_some_and(|c| c.trim().is_empty()) {
            obj.fail("check", "empty command")?;
        }
        let mut file = File {
            path,
            content,
            source,
            sha256: String::new(),
            restore_from: None,
            size: 0,
            attrs,
            state,
            check,
            after,
            data: None,
        };
        match (&file.content, &file.source, state) {
            (Some(_), Some(_), _) => obj.fail("source", "give either content or source, not both")?,
            (None, None, State::Present) => obj.fail("content", "missing: a file needs content or source")?,
            _ => {}
        }
        if let Some(src) = &file.source {
            let bytes =
                std::fs::read(src).or_else(|e| obj.fail("source", &format!("cannot read {src}: {e}")))?;
            file.set_data(bytes);
        } else if let Some(content) = &file.content {
            let bytes = match content {
                Content::Text(s) => s.clone().into_bytes(),
                Content::Bytes(b) => b.clone(),
            };
            file.set_data(bytes);
        }
        Ok(file)
    }

    fn set_data(&mut self, bytes: Vec<u8>) {
        self.sha256 = sha256_hex(&bytes);
        self.size = bytes.len() as u64;
        self.data = Some(Arc::new(bytes));
    }

    /// Load the bytes after a plan came back from a row or a file; refuse a source that changed.
    pub fn resolve(&mut self) -> Result<()> {
        if self.data.is_some() || self.state == State::Absent || self.restore_from.is_some() {
            return Ok(());
        }
        let bytes = match (&self.content, &self.source) {
            (Some(Content::Text(s)), _) => s.clone().into_bytes(),
            (Some(Content::Bytes(b)), _) => b.clone(),
            (None, Some(src)) => std::fs::read(src)
                .with_context(|| format!("cannot read source {src} of file:{}", self.path))?,
            (None, None) => bail!("file:{} has neither content nor source", self.path),
        };
        let sha = sha256_hex(&bytes);
        if !self.sha256.is_empty() && sha != self.sha256 {
            bail!(
                "the content of file:{} changed since it was planned (sha256 {} now, {} in the plan); plan again",
                self.path,
                &sha[..12],
                &self.sha256[..self.sha256.len().min(12)]
            );
        }
        self.set_data(bytes);
        Ok(())
    }

    /// A file to bring back from a backup copy on the target, as it was `before`.
    pub fn restore(path: &str, backup: &str, sha256: &str, size: u64, attrs: PathAttrs) -> File {
        File {
            path: path.to_string(),
            content: None,
            source: None,
            sha256: sha256.to_string(),
            restore_from: Some(backup.to_string()),
            size,
            attrs,
            state: State::Present,
            check: None,
            after: Vec::new(),
            data: None,
        }
    }

    /// A file with bytes rendered by another resource (an env file), compared by `digest`.
    pub fn rendered(path: &str, bytes: Vec<u8>, digest: String, attrs: PathAttrs, state: State) -> File {
        File {
            path: path.to_string(),
            content: None,
            source: None,
            sha256: digest,
            restore_from: None,
            size: bytes.len() as u64,
            attrs,
            state,
            check: None,
            after: Vec::new(),
            data: Some(Arc::new(bytes)),
        }
    }

    /// A file that must not exist.
    pub fn absent(path: &str) -> File {
        File {
            path: path.to_string(),
            content: None,
            source: None,
            sha256: String::new(),
            restore_from: None,
            size: 0,
            attrs: PathAttrs::default(),
            state: State::Absent,
            check: None,
            after: Vec::new(),
            data: None,
        }
    }

    pub fn strip_payload(&mut self) {
        self.content = None;
        self.data = None;
    }

    /// Put `tmp` in place, run `check`, and bring the previous content back when it fails: the old
    /// file stays reachable through a hard link until the check passed.
    fn checked_rename(&self, step: &mut Step, tmp: &str, had_file: bool, check: &str) -> Result<()> {
        let path = q(&self.path)?;
        let old = q(&format!("{tmp}.old"))?;
        let restore = if had_file {
            step.run(format!("ln -- {path} {old}"));
            format!("mv -fT -- {old} {path}")
        } else {
            format!("rm -f -- {path}")
        };
        let message = q(&format!(
            "hk: check of file:{} failed (`{check}`); the previous {} is back in place",
            self.path,
            if had_file { "content" } else { "state (no file)" }
        ))?;
        step.run(steps::rename(tmp, &self.path)?)
            .run(format!(
                "{{ ( sh -c {} ) </dev/null 1>&2 || {{ {restore}; printf '%s\\n' {message} >&2; false; }}; }}",
                q(check)?
            ))
            .cleanup(format!("rm -f -- {} {old}", q(tmp)?));
        if had_file {
            step.run(format!("rm -f -- {old}"));
        }
        Ok(())
    }

    pub fn bytes(&self) -> Result<Arc<Vec<u8>>> {
        self.data.clone().with_context(|| format!("file:{}: content was not loaded", self.path))
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a bool",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a record",
    }
}

impl ResourceKind for File {
    fn type_name(&self) -> &'static str {
        "file"
    }

    fn name(&self) -> &str {
        &self.path
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        self.attrs.probe(batch);
        batch.stat(&self.path);
        // Also for a file to delete: its hash lets a down plan restore it from the backup.
        batch.sha256(&self.path);
    }

    fn observe(&self, facts: &Facts) -> Observed {
        observe_file(&facts.path(&self.path))
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let kind = text(seen, "kind").unwrap_or_default();
        let want = describe_content(&self.sha256, self.size);
        match (self.state, kind.as_str()) {
            (State::Absent, "file") => Diff {
                action: Action::Delete,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("kind", Some(kind), None)],
            },
            (State::Absent, _) => Diff::noop(),
            (State::Present, "missing") => {
                let mut changes = vec![FieldChange::new("content", None, Some(want))];
                changes.extend(self.attrs.changes(seen, true, DEFAULT_MODE));
                Diff { action: Action::Create, reason: Reason::Missing, changes }
            }
            (State::Present, "file") => {
                let mut changes = Vec::new();
                let have_sha = text(seen, "sha256").unwrap_or_default();
                if have_sha != self.sha256 {
                    let size = seen.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
                    changes.push(FieldChange::new(
                        "content",
                        Some(describe_content(&have_sha, size)),
                        Some(want),
                    ));
                }
                changes.extend(self.attrs.changes(seen, false, DEFAULT_MODE));
                if changes.is_empty() {
                    Diff::noop()
                } else {
                    Diff { action: Action::Update, reason: Reason::Drift, changes }
                }
            }
            (State::Present, other) => {
                let mut changes =
                    vec![FieldChange::new("kind", Some(other.to_string()), Some("file".into()))];
                changes.push(FieldChange::new("content", None, Some(want)));
                Diff { action: Action::Update, reason: Reason::Drift, changes }
            }
        }
    }

    fn step(&self, diff: &Diff, seen: &Observed, cx: &StepContext) -> Result<Step> {
        let mut step = Step::new();
        let kind = text(seen, "kind").unwrap_or_default();
        match diff.action {
            Action::Create | Action::Update if diff.has("content") || diff.has("kind") => {
                if !matches!(kind.as_str(), "missing" | "file" | "link") {
                    step.run(refuse_kind(&self.path, "a regular file")?);
                    return Ok(step);
                }
                let tmp = temp_sibling(&self.path, cx.nonce);
                if let Some(backup) = &self.restore_from {
                    let mode = self.attrs.mode.clone().unwrap_or_else(|| DEFAULT_MODE.to_string());
                    step.run(format!("cp -- {} {}", q(backup)?, q(&tmp)?)).run(format!(
                        "chmod {} -- {}",
                        q(&mode)?,
                        q(&tmp)?
                    ));
                    if let (Some(o), Some(g)) = (&self.attrs.owner, &self.attrs.group) {
                        // Best effort: only root can hand a file back to another owner; the
                        // content and mode come back regardless, and a next plan shows the owner.
                        step.run(format!(
                            "{{ chown {} -- {} 2>/dev/null || :; }}",
                            q(&format!("{o}:{g}"))?,
                            q(&tmp)?
                        ));
                    }
                    step.run(steps::rename(&tmp, &self.path)?).cleanup(format!("rm -f -- {}", q(&tmp)?));
                    return Ok(step);
                }
                let bytes = self.bytes()?;
                step.write_bytes(&tmp, &bytes, cx.nonce)?;
                // The new file keeps the old one's mode and ownership unless the config sets them.
                let mode = self
                    .attrs
                    .mode
                    .clone()
                    .or_else(|| (kind == "file").then(|| text(seen, "mode")).flatten());
                let keep = |want: &Option<String>, have: &str| match want {
                    Some(w) => Some(w.clone()),
                    None if kind == "file" => text(seen, have),
                    None => None,
                };
                match (keep(&self.attrs.owner, "uid"), keep(&self.attrs.group, "gid")) {
                    (None, None) => {}
                    (owner, group) => {
                        let chown =
                            steps::chown(&owner.unwrap_or_default(), &group.unwrap_or_default(), &tmp)?;
                        if self.attrs.owner.is_none() && self.attrs.group.is_none() {
                            // Keeping the old owner is best effort: a non-root user cannot give a
                            // file away, and the new file then simply stays theirs.
                            step.run(format!("{{ {chown} 2>/dev/null || :; }}"));
                        } else {
                            step.run(chown);
                        }
                    }
                }
                // After chown, which clears setuid and setgid bits.
                step.run(steps::chmod(mode.as_deref().unwrap_or(DEFAULT_MODE), &tmp)?);
                match &self.check {
                    None => {
                        step.run(steps::rename(&tmp, &self.path)?).cleanup(format!("rm -f -- {}", q(&tmp)?));
                    }
                    Some(check) => self.checked_rename(&mut step, &tmp, kind == "file", check)?,
                }
            }
            Action::Update => step.commands.extend(self.attrs.commands(&diff.changes, &self.path, false)?),
            Action::Delete => {
                step.run(steps::remove_file(&self.path)?);
            }
            Action::Create | Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        let mut deps = ancestor_dir_ids(&self.path);
        deps.extend(owner_ids(&self.attrs));
        deps.extend(self.after.iter().cloned());
        deps
    }

    fn conflict(&self, seen: &Observed) -> Option<String> {
        match self.state {
            // A link in the way is replaced by the file (tracked runs keep what it was).
            State::Present => super::kind_conflict(&self.path, seen, &["missing", "file", "link"], "a file"),
            State::Absent => super::kind_conflict(&self.path, seen, &["missing", "file"], "a file"),
        }
    }
}
