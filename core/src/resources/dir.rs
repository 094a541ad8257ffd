//! `dir`: a directory with mode, owner and group.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::path_attrs::{PathAttrs, State, normalize_path, text};
use super::{Diff, Observed, ResourceKind, StepContext, ancestor_dir_ids};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::{self, Step};

const DEFAULT_MODE: &str = "0755";

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Dir {
    pub path: String,
    #[serde(flatten)]
    pub attrs: PathAttrs,
    #[serde(default)]
    pub state: State,
    /// Not declared: a directory the plan adds above a path it puts in place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parent: bool,
}

impl Dir {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let raw = obj.req_str("path")?;
        let path = normalize_path(obj, "path", &raw)?;
        let attrs = PathAttrs::from_config(obj)?;
        let state = obj.state()?;
        Ok(Dir { path, attrs, state, parent: false })
    }

    /// A missing directory above a path the plan puts in place: mode 0755, no owner.
    pub fn parent(path: &str) -> Dir {
        Dir {
            path: path.to_string(),
            attrs: PathAttrs { mode: Some(DEFAULT_MODE.to_string()), owner: None, group: None },
            state: State::Present,
            parent: true,
        }
    }

    /// A directory to remove or restore as it was.
    pub fn with(path: &str, attrs: PathAttrs, state: State) -> Dir {
        Dir { path: path.to_string(), attrs, state, parent: false }
    }
}

impl ResourceKind for Dir {
    fn type_name(&self) -> &'static str {
        "dir"
    }

    fn name(&self) -> &str {
        &self.path
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        self.attrs.probe(batch);
        batch.stat(&self.path);
    }

    fn observe(&self, facts: &Facts) -> Observed {
        PathAttrs::observe(&facts.path(&self.path))
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let kind = text(seen, "kind").unwrap_or_default();
        if self.parent && kind == "directory" {
            // An undeclared parent only needs to exist: its mode and owner are not hk's to change.
            return Diff::noop();
        }
        match (self.state, kind.as_str()) {
            (State::Absent, "directory") => Diff {
                action: Action::Delete,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("kind", Some(kind), None)],
            },
            (State::Absent, _) => Diff::noop(),
            (State::Present, "missing") => {
                let mut changes = vec![FieldChange::new("kind", None, Some("directory".into()))];
                changes.extend(self.attrs.changes(seen, true, DEFAULT_MODE));
                Diff { action: Action::Create, reason: Reason::Missing, changes }
            }
            (State::Present, "directory") => {
                let changes = self.attrs.changes(seen, false, DEFAULT_MODE);
                if changes.is_empty() {
                    Diff::noop()
                } else {
                    Diff { action: Action::Update, reason: Reason::Drift, changes }
                }
            }
            (State::Present, other) => Diff {
                action: Action::Update,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("kind", Some(other.to_string()), Some("directory".into()))],
            },
        }
    }

    fn step(&self, diff: &Diff, _seen: &Observed, _cx: &StepContext) -> Result<Step> {
        let path = q(&self.path)?;
        let mut step = Step::new();
        match diff.action {
            Action::Create => {
                let mode = self.attrs.mode.as_deref().unwrap_or(DEFAULT_MODE);
                // An upload earlier in the same apply may have made it (a release below it): then
                // it only takes its mode.
                step.run(format!(
                    "{{ if [ -d {path} ] && [ ! -L {path} ]; then chmod {} -- {path}; else {}; fi; }}",
                    q(mode)?,
                    steps::mkdir(&self.path, mode)?
                ));
                let owned: Vec<FieldChange> =
                    diff.changes.iter().filter(|c| c.field != "mode").cloned().collect();
                step.commands.extend(self.attrs.commands(&owned, &self.path, false)?);
            }
            Action::Update if diff.has("kind") => {
                step.run(refuse_kind(&self.path, "a directory")?);
            }
            Action::Update => step.commands.extend(self.attrs.commands(&diff.changes, &self.path, false)?),
            Action::Delete => {
                step.run(format!("rmdir -- {path}"));
            }
            Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        let mut deps = ancestor_dir_ids(&self.path);
        deps.extend(owner_ids(&self.attrs));
        deps
    }

    fn conflict(&self, seen: &Observed) -> Option<String> {
        super::kind_conflict(&self.path, seen, &["missing", "directory"], "a directory")
    }
}

/// Ids of the user and group a path is owned by, so declared accounts come first.
pub fn owner_ids(attrs: &PathAttrs) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(owner) = &attrs.owner {
        ids.push(format!("user:{owner}"));
    }
    if let Some(group) = &attrs.group {
        ids.push(format!("group:{group}"));
    }
    ids
}

/// A command that fails with a message saying what is in the way; hk never removes it silently.
pub fn refuse_kind(path: &str, wanted: &str) -> Result<String> {
    let message = format!("hk: {path} exists but is not {wanted}; move it away or change the config");
    Ok(format!("{{ printf '%s\\n' {} >&2; false; }}", q(&message)?))
}
