//! `command`: a shell command run at apply time, unless `creates` exists or `unless` succeeds; its
//! down plan runs `down` (or it is irreversible).

use anyhow::Result;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::path_attrs::normalize_path;
use super::{Diff, Observed, Resource, ResourceKind, StepContext};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::{Obj, type_name};
use crate::quote::q;
use crate::script::probe::{Facts, PathKind, ProbeBatch};
use crate::script::steps::Step;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Command {
    pub name: String,
    pub run: String,
    /// Skip when this path exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creates: Option<String>,
    /// Skip when this shell command succeeds (run by the probe, as the connecting user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u64>,
    /// What `hk down` runs to undo it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
    /// Ids to run after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// `after: [type:name …]` as a list of ids.
pub fn ids_field(obj: &mut Obj, field: &str) -> Result<Vec<String>> {
    match obj.take(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.contains(':') => Ok(vec![s]),
        Some(Value::Array(items)) => {
            let mut ids = Vec::new();
            for item in items {
                match item {
                    Value::String(s) if s.contains(':') => ids.push(s),
                    other => return obj.fail(field, &format!("{other} is not a resource id (type:name)")),
                }
            }
            Ok(ids)
        }
        Some(other) => obj.fail(field, &format!("expected resource ids, got {}", type_name(&other))),
    }
}

impl Command {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let run = obj.req_str("run")?;
        if run.trim().is_empty() {
            return obj.fail("run", "empty command");
        }
        let name = obj.opt_str("name")?.unwrap_or_else(|| run.clone());
        let creates = match obj.opt_str("creates")? {
            Some(p) => Some(normalize_path(obj, "creates", &p)?),
            None => None,
        };
        let unless = obj.opt_str("unless")?;
        let user = obj.opt_name("user")?;
        let cwd = match obj.opt_str("cwd")? {
            Some(p) => Some(normalize_path(obj, "cwd", &p)?),
            None => None,
        };
        let mut env = IndexMap::new();
        if let Some(mut vars) = obj.opt_record("env")? {
            let keys: Vec<String> = vars.keys();
            for key in keys {
                if !key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return vars.fail(&key, "not a variable name");
                }
                let value = match vars.take(&key) {
                    Some(Value::String(s)) => s,
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::Bool(b)) => b.to_string(),
                    _ => return vars.fail(&key, "expected a string"),
                };
                env.insert(key, value);
            }
        }
        let timeout_s = obj.opt_duration_ms("timeout")?.map(|ms| ms.div_ceil(1000).max(1));
        let down = obj.opt_str("down")?;
        let after = ids_field(obj, "after")?;
        Ok(Command { name, run, creates, unless, user, cwd, env, timeout_s, down, after })
    }

    fn guard_key(&self) -> String {
        format!("command:{}", self.name)
    }
}

impl ResourceKind for Command {
    fn type_name(&self) -> &'static str {
        "command"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        if let Some(path) = &self.creates {
            batch.stat(path);
        }
        if let Some(unless) = &self.unless {
            batch.guard(&self.guard_key(), unless);
        }
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let mut seen = Observed::new();
        if let Some(path) = &self.creates {
            seen.insert("creates".into(), (facts.path(path).kind != PathKind::Missing).into());
        }
        if self.unless.is_some() {
            seen.insert(
                "unless".into(),
                facts.guards.get(&self.guard_key()).copied().unwrap_or(false).into(),
            );
        }
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let flag = |k: &str| seen.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        if flag("creates") || flag("unless") {
            return Diff::noop();
        }
        Diff {
            action: Action::Create,
            reason: Reason::Missing,
            changes: vec![FieldChange::new("run", None, Some(self.run.clone()))],
        }
    }

    fn step(&self, diff: &Diff, _seen: &Observed, _cx: &StepContext) -> Result<Step> {
        let mut step = Step::new();
        if diff.action != Action::Create {
            return Ok(step);
        }
        let mut line = format!("sh -c {}", q(&self.run)?);
        if let Some(user) = &self.user {
            line = format!("runuser -u {} -- {line}", q(user)?);
        }
        if let Some(seconds) = self.timeout_s {
            line = format!("timeout {seconds} {line}");
        }
        if !self.env.is_empty() {
            let mut vars = String::new();
            for (k, v) in &self.env {
                vars.push_str(&q(&format!("{k}={v}"))?);
                vars.push(' ');
            }
            line = format!("env {vars}{line}");
        }
        // In its `cwd` (else /) with umask 022, whatever the apply script's own: never in the
        // directory hk happened to start in.
        let cwd = self.cwd.as_deref().unwrap_or("/");
        line = format!("cd {} && umask 022 && {line}", q(cwd)?);
        // Its output goes to stderr: shown when it fails, never mixed into the event lines.
        step.run(format!("( {line} ) </dev/null 1>&2"));
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        self.after.clone()
    }

    fn reversible(&self, _diff: &Diff) -> bool {
        self.down.is_some()
    }

    fn down(&self, _before: &Observed) -> Option<Result<Resource, String>> {
        Some(match &self.down {
            Some(down) => Ok(Resource::Command(Command {
                name: format!("{} (down)", self.name),
                run: down.clone(),
                creates: None,
                unless: None,
                down: None,
                after: Vec::new(),
                ..self.clone()
            })),
            None => Err("the command has no `down` to undo it".into()),
        })
    }
}
