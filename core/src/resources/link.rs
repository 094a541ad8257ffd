//! `link`: a symbolic link pointing at a target.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::dir::refuse_kind;
use super::path_attrs::{PathAttrs, State, normalize_path, temp_sibling, text};
use super::{Diff, Observed, ResourceKind, StepContext, ancestor_dir_ids};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::{self, Step};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Link {
    pub path: String,
    pub target: String,
    #[serde(default)]
    pub state: State,
    /// Ids to apply first (beyond the parent directories, which always come first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

impl Link {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let raw = obj.req_str("path")?;
        let path = normalize_path(obj, "path", &raw)?;
        let state = obj.state()?;
        // A link to remove needs no target.
        let target = match (obj.opt_str("target")?, state) {
            (Some(t), _) => t,
            (None, State::Absent) => "-".to_string(),
            (None, State::Present) => obj.fail("target", "missing (required)")?,
        };
        if target.is_empty() || target.contains('\0') {
            obj.fail("target", "a link target must be a non-empty path")?;
        }
        let after = super::command::ids_field(obj, "after")?;
        Ok(Link { path, target, state, after })
    }
}

impl ResourceKind for Link {
    fn type_name(&self) -> &'static str {
        "link"
    }

    fn name(&self) -> &str {
        &self.path
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        batch.stat(&self.path);
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let path = facts.path(&self.path);
        let mut seen = PathAttrs::observe(&path);
        if let Some(target) = path.target {
            seen.insert("target".into(), target.into());
        }
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let kind = text(seen, "kind").unwrap_or_default();
        match (self.state, kind.as_str()) {
            (State::Absent, "link") => Diff {
                action: Action::Delete,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("target", text(seen, "target"), None)],
            },
            (State::Absent, _) => Diff::noop(),
            (State::Present, "missing") => Diff {
                action: Action::Create,
                reason: Reason::Missing,
                changes: vec![FieldChange::new("target", None, Some(self.target.clone()))],
            },
            (State::Present, "link") => {
                let have = text(seen, "target");
                if have.as_deref() == Some(self.target.as_str()) {
                    Diff::noop()
                } else {
                    Diff {
                        action: Action::Update,
                        reason: Reason::Drift,
                        changes: vec![FieldChange::new("target", have, Some(self.target.clone()))],
                    }
                }
            }
            (State::Present, other) => Diff {
                action: Action::Update,
                reason: Reason::Drift,
                changes: vec![
                    FieldChange::new("kind", Some(other.to_string()), Some("link".into())),
                    FieldChange::new("target", None, Some(self.target.clone())),
                ],
            },
        }
    }

    fn step(&self, diff: &Diff, seen: &Observed, cx: &StepContext) -> Result<Step> {
        let mut step = Step::new();
        let kind = text(seen, "kind").unwrap_or_default();
        match diff.action {
            Action::Create | Action::Update => {
                // A file may be replaced by a link (it is backed up in tracked runs); a directory never.
                if !matches!(kind.as_str(), "missing" | "link" | "file") {
                    step.run(refuse_kind(&self.path, "a link")?);
                    return Ok(step);
                }
                if kind == "missing" {
                    // symlink(2) is atomic on its own when nothing is in the way.
                    step.run(steps::symlink(&self.target, &self.path)?);
                    return Ok(step);
                }
                let tmp = temp_sibling(&self.path, cx.nonce);
                step.run(steps::symlink(&self.target, &tmp)?)
                    .run(steps::rename(&tmp, &self.path)?)
                    .cleanup(format!("rm -f -- {}", q(&tmp)?));
            }
            Action::Delete => {
                step.run(steps::remove_file(&self.path)?);
            }
            Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        let mut deps = ancestor_dir_ids(&self.path);
        deps.extend(self.after.iter().cloned());
        deps
    }

    fn conflict(&self, seen: &Observed) -> Option<String> {
        match self.state {
            // A file in the way is replaced by the link (tracked runs keep what it was).
            State::Present => super::kind_conflict(&self.path, seen, &["missing", "link", "file"], "a link"),
            // Removing a link never touches what it points to, nor anything that is not a link.
            State::Absent => super::kind_conflict(&self.path, seen, &["missing", "link"], "a link"),
        }
    }
}
