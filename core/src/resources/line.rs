//! `line`: one whole line present in (or absent from) a text file that others own too — the rest of
//! the file is left as it is. The file is rewritten atomically (copy, edit, rename); a missing file
//! is created holding just the line.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::dir::{owner_ids, refuse_kind};
use super::file::sha256_hex;
use super::path_attrs::{PathAttrs, State, normalize_path, observe_file, temp_sibling, text};
use super::{Diff, Observed, ResourceKind, StepContext, ancestor_dir_ids};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::{self, Step};

const DEFAULT_MODE: &str = "0644";

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Line {
    pub path: String,
    pub line: String,
    #[serde(flatten)]
    pub attrs: PathAttrs,
    #[serde(default)]
    pub state: State,
}

impl Line {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let raw = obj.req_str("path")?;
        let path = normalize_path(obj, "path", &raw)?;
        let line = obj.req_str("line")?;
        if line.contains(['\n', '\r', '\0']) {
            obj.fail("line", "one line: no line breaks")?;
        }
        let attrs = PathAttrs::from_config(obj)?;
        let state = obj.state()?;
        Ok(Line { path, line, attrs, state })
    }

    /// The probe's name for "the file holds this line" (hashed: a line may hold any character).
    fn guard_key(&self) -> String {
        format!("line:{}", &sha256_hex(format!("{}\0{}", self.path, self.line).as_bytes())[..16])
    }
}

impl ResourceKind for Line {
    fn type_name(&self) -> &'static str {
        "line"
    }

    /// `path` alone would clash with a `file` of the same path; the line makes it unique.
    fn name(&self) -> &str {
        &self.path
    }

    fn id(&self) -> String {
        format!("line:{}:{}", self.path, self.line)
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        self.attrs.probe(batch);
        batch.stat(&self.path);
        batch.sha256(&self.path);
        batch.guard(
            &self.guard_key(),
            &format!("grep -qxF -- {} {}", q_or_empty(&self.line), q_or_empty(&self.path)),
        );
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let mut seen = observe_file(&facts.path(&self.path));
        let has = facts.guards.get(&self.guard_key()).copied().unwrap_or(false);
        seen.insert("has_line".into(), has.into());
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let kind = text(seen, "kind").unwrap_or_default();
        let has = seen.get("has_line").and_then(|v| v.as_bool()).unwrap_or(false);
        let line = || Some(self.line.clone());
        match (self.state, kind.as_str()) {
            (State::Present, "missing") => {
                let mut changes = vec![FieldChange::new("line", None, line())];
                changes.extend(self.attrs.changes(seen, true, DEFAULT_MODE));
                Diff { action: Action::Create, reason: Reason::Missing, changes }
            }
            (State::Present, _) => {
                let mut changes = Vec::new();
                if !has {
                    changes.push(FieldChange::new("line", None, line()));
                }
                if kind == "file" {
                    changes.extend(self.attrs.changes(seen, false, DEFAULT_MODE));
                }
                if changes.is_empty() {
                    return Diff::noop();
                }
                Diff { action: Action::Update, reason: Reason::Drift, changes }
            }
            (State::Absent, "file") if has => Diff {
                action: Action::Update,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("line", line(), None)],
            },
            (State::Absent, _) => Diff::noop(),
        }
    }

    fn step(&self, diff: &Diff, seen: &Observed, cx: &StepContext) -> Result<Step> {
        let mut step = Step::new();
        let kind = text(seen, "kind").unwrap_or_default();
        if !matches!(diff.action, Action::Create | Action::Update) {
            return Ok(step);
        }
        if !matches!(kind.as_str(), "missing" | "file") {
            step.run(refuse_kind(&self.path, "a regular file")?);
            return Ok(step);
        }
        let (path, line) = (q(&self.path)?, q(&self.line)?);
        if diff.has("line") {
            let tmp = temp_sibling(&self.path, cx.nonce);
            let qtmp = q(&tmp)?;
            if kind == "missing" {
                let mode = self.attrs.mode.clone().unwrap_or_else(|| DEFAULT_MODE.to_string());
                step.run(format!("printf '%s\\n' {line} > {qtmp}"))
                    .run(format!("chmod {} -- {qtmp}", q(&mode)?));
            } else if self.state == State::Present {
                // The file as it is, a line break after its last line if it lacks one, then the line.
                step.run(format!("cp -p -- {path} {qtmp}"))
                    .run(format!(
                        "{{ [ ! -s {qtmp} ] || [ -z \"$(tail -c 1 {qtmp})\" ] || printf '\\n' >> {qtmp}; }}"
                    ))
                    .run(format!("printf '%s\\n' {line} >> {qtmp}"));
            } else {
                // grep exits 1 when no line is left: an empty file is still a right answer.
                step.run(format!("cp -p -- {path} {qtmp}"))
                    .run(format!("{{ grep -vxF -- {line} {path} >| {qtmp} || [ $? = 1 ]; }}"));
            }
            let attrs = self.attrs.commands(&diff.changes, &tmp, false)?;
            step.commands.extend(attrs);
            step.run(steps::rename(&tmp, &self.path)?).cleanup(format!("rm -f -- {qtmp}"));
        } else {
            step.commands.extend(self.attrs.commands(&diff.changes, &self.path, false)?);
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        let mut deps = ancestor_dir_ids(&self.path);
        deps.extend(owner_ids(&self.attrs));
        deps
    }

    fn conflict(&self, seen: &Observed) -> Option<String> {
        super::kind_conflict(&self.path, seen, &["missing", "file"], "a file")
    }
}

/// Quoted for the probe, which cannot fail: a value the quoting helper refuses (a NUL byte, caught
/// by `from_config`) becomes an empty word.
fn q_or_empty(s: &str) -> String {
    q(s).unwrap_or_else(|_| "''".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(state: State) -> Line {
        Line {
            path: "/etc/caddy/Caddyfile".into(),
            line: "import /opt/hk/*/Caddyfile".into(),
            attrs: PathAttrs::default(),
            state,
        }
    }

    fn seen(kind: &str, has: bool) -> Observed {
        let mut seen = Observed::new();
        seen.insert("kind".into(), kind.into());
        seen.insert("has_line".into(), has.into());
        seen
    }

    #[test]
    fn appends_creates_removes_or_leaves_alone() {
        let present = line(State::Present);
        assert_eq!(present.diff(&seen("file", true)).action, Action::Noop);
        assert_eq!(present.diff(&seen("missing", false)).action, Action::Create);
        let append = present.diff(&seen("file", false));
        assert_eq!(append.action, Action::Update);
        let cx = StepContext { nonce: "n0nce0123456789", uploaded: &[] };
        let step = present.step(&append, &seen("file", false), &cx).expect("step");
        let text = step.commands.join("\n");
        assert!(text.contains("cp -p --") && text.contains(">> ") && text.contains("hk_mv"), "{text}");
        let absent = line(State::Absent);
        assert_eq!(absent.diff(&seen("file", false)).action, Action::Noop);
        let remove = absent.diff(&seen("file", true));
        let step = absent.step(&remove, &seen("file", true), &cx).expect("step");
        assert!(step.commands.join("\n").contains("grep -vxF"));
        assert!(
            present.step(&append, &seen("directory", false), &cx).expect("step").commands[0]
                .contains("is not a regular file")
        );
    }
}
