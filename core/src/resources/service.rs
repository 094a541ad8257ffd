//! `service`: a systemd unit — its unit file (text, or a record rendered to unit syntax), enabled or
//! not, running or stopped — restarted when the unit or a declared dependency changed, reloaded when
//! a dependency named in `reload_on` changed. A template (`app@.service`) is only its unit file:
//! its instances (`app@4000.service`) are services of their own.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::command::ids_field;
use super::file::sha256_hex;
use super::path_attrs::{describe_content, temp_sibling, text};
use super::{Diff, Observed, Resource, ResourceKind, StepContext};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::{Obj, type_name};
use crate::quote::q;
use crate::script::probe::{Facts, PathKind, ProbeBatch};
use crate::script::steps::{self, Step};

const UNIT_DIR: &str = "/etc/systemd/system";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    #[default]
    Running,
    Stopped,
    /// Stopped, disabled and its unit file (one hk manages) removed.
    Absent,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Service {
    /// The unit name (`app.service`; `.service` is added to a bare name).
    pub name: String,
    /// Unit file text hk writes to /etc/systemd/system; `None` manages an existing unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `None` leaves enablement alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub state: ServiceState,
    /// Ids whose change restarts this service (`env_file:/etc/app.env`, `file:…`, `link:…`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_on: Vec<String>,
    /// Set by the plan when one of `restart_on` changes in the same plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_because: Option<String>,
    /// Ids whose change reloads this service (`systemctl reload`), e.g. a proxy's site file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reload_on: Vec<String>,
    /// Set by the plan when one of `reload_on` changes in the same plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload_because: Option<String>,
    /// Ids to apply first (besides `restart_on` and `reload_on`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// A record `{Unit: {Description: …}, Service: {ExecStart: …, Environment: [..]}, Install: {…}}` as unit
/// file text: sections in the given order, list values as repeated keys.
fn render_unit(obj: &Obj, value: &Value) -> Result<String> {
    let Value::Object(sections) = value else {
        return obj
            .fail("unit", &format!("expected unit text or a record of sections, got {}", type_name(value)));
    };
    let mut out = String::new();
    for (section, keys) in sections {
        let Value::Object(keys) = keys else {
            return obj.fail("unit", &format!("section {section} must be a record of keys"));
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("[{section}]\n"));
        for (key, v) in keys {
            let values = match v {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            for item in values {
                let text = match item {
                    Value::String(s) => s,
                    Value::Bool(b) => {
                        if b {
                            "yes".into()
                        } else {
                            "no".into()
                        }
                    }
                    Value::Number(n) => n.to_string(),
                    other => {
                        return obj.fail(
                            "unit",
                            &format!("{section}.{key}: {} is not a unit value", type_name(&other)),
                        );
                    }
                };
                if text.contains('\n') {
                    return obj.fail("unit", &format!("{section}.{key}: values are one line"));
                }
                out.push_str(&format!("{key}={text}\n"));
            }
        }
    }
    Ok(out)
}

impl Service {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let mut name = obj.req_str("name")?;
        if name.is_empty()
            || name.starts_with('-')
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
        {
            return obj.fail("name", &format!("{name:?} is not a unit name"));
        }
        if !name.contains('.') {
            name.push_str(".service");
        }
        let unit = match obj.take("unit") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(if s.ends_with('\n') { s } else { s + "\n" }),
            Some(record) => Some(render_unit(obj, &record)?),
        };
        let enabled = obj.opt_bool("enabled")?;
        let state = match obj.opt_str("state")?.as_deref() {
            None | Some("running") => ServiceState::Running,
            Some("stopped") => ServiceState::Stopped,
            Some("absent") => ServiceState::Absent,
            Some(other) => return obj.fail("state", &format!("{other:?}: use running, stopped or absent")),
        };
        let restart_on = ids_field(obj, "restart_on")?;
        let reload_on = ids_field(obj, "reload_on")?;
        let after = ids_field(obj, "after")?;
        let template = name.ends_with("@.service");
        if template {
            if unit.is_none() {
                return obj.fail("unit", "a template unit (name@.service) needs its `unit` text");
            }
            if enabled.is_some() || !restart_on.is_empty() || !reload_on.is_empty() {
                return obj.fail(
                    "name",
                    "a template unit is only its unit file: enable, start, restart or reload its instances (name@x.service)",
                );
            }
        }
        // A unit hk writes and runs is enabled unless the config says otherwise.
        let enabled =
            enabled.or((state == ServiceState::Running && unit.is_some() && !template).then_some(true));
        Ok(Service {
            name,
            unit,
            enabled,
            state,
            restart_on,
            restart_because: None,
            reload_on,
            reload_because: None,
            after,
        })
    }

    fn unit_path(&self) -> String {
        format!("{UNIT_DIR}/{}", self.name)
    }

    /// `name@.service`: a unit file only; systemd runs its instances.
    pub fn is_template(&self) -> bool {
        self.name.ends_with("@.service")
    }

    /// Note that dependencies changed in this plan: the service restarts (or reloads) after them.
    pub fn restart_after(&mut self, changed: &[String]) {
        if let Some(id) = self.restart_on.iter().find(|id| changed.contains(id)) {
            self.restart_because = Some(format!("{id} changed"));
        }
        if let Some(id) = self.reload_on.iter().find(|id| changed.contains(id)) {
            self.reload_because = Some(format!("{id} changed"));
        }
    }

    /// The plan of a template: only its unit file (written or removed).
    fn template_diff(&self, seen: &Observed) -> Diff {
        let has_file = seen.get("unit_file").and_then(|v| v.as_bool()).unwrap_or(false);
        let have = text(seen, "sha256");
        let size = seen.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
        match (&self.unit, self.state) {
            (_, ServiceState::Absent) if has_file => Diff {
                action: Action::Delete,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("unit", have.map(|h| describe_content(&h, size)), None)],
            },
            (Some(unit), ServiceState::Running | ServiceState::Stopped) => {
                let want = sha256_hex(unit.as_bytes());
                if have.as_deref() == Some(want.as_str()) {
                    return Diff::noop();
                }
                Diff {
                    action: if has_file { Action::Update } else { Action::Create },
                    reason: if has_file { Reason::Drift } else { Reason::Missing },
                    changes: vec![FieldChange::new(
                        "unit",
                        have.map(|h| describe_content(&h, size)),
                        Some(describe_content(&want, unit.len() as u64)),
                    )],
                }
            }
            _ => Diff::noop(),
        }
    }
}

fn enabled_text(on: bool) -> String {
    if on { "enabled".into() } else { "disabled".into() }
}

impl ResourceKind for Service {
    fn type_name(&self) -> &'static str {
        "service"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        if !self.is_template() {
            batch.unit(&self.name);
        }
        let path = self.unit_path();
        batch.stat(&path);
        // Only a unit hk writes (or removes, to show what goes) is compared by content: hashing one
        // it manages as it is costs a process and tells nothing.
        if self.unit.is_some() || self.state == ServiceState::Absent {
            batch.sha256(&path);
        }
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let mut seen = Observed::new();
        let props = facts.units.get(&self.name).cloned().unwrap_or_default();
        let prop = |k: &str| props.get(k).cloned().unwrap_or_default();
        seen.insert("load".into(), prop("LoadState").into());
        // Starting, running and reloading are one state here: a unit that a deploy of another app
        // reloads, or one restarting in a loop, must not make a plan of it stale.
        let active = match prop("ActiveState").as_str() {
            "reloading" | "activating" => "active".to_string(),
            other => other.to_string(),
        };
        seen.insert("active".into(), active.into());
        seen.insert("enabled".into(), prop("UnitFileState").into());
        let file = facts.path(&self.unit_path());
        seen.insert("unit_file".into(), (file.kind == PathKind::File).into());
        if let Some(sha) = &file.sha256 {
            seen.insert("sha256".into(), sha.clone().into());
            seen.insert("size".into(), file.size.into());
        }
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        if self.is_template() {
            return self.template_diff(seen);
        }
        let load = text(seen, "load").unwrap_or_default();
        let active = text(seen, "active").unwrap_or_default();
        let enabled = text(seen, "enabled").unwrap_or_default();
        let has_file = seen.get("unit_file").and_then(|v| v.as_bool()).unwrap_or(false);
        let running = matches!(active.as_str(), "active" | "activating" | "reloading");
        if self.state == ServiceState::Absent {
            if !has_file && load != "loaded" {
                return Diff::noop();
            }
            let mut changes = vec![FieldChange::new("unit", Some(self.name.clone()), None)];
            if running {
                changes.push(FieldChange::new("active", Some(active), Some("inactive".into())));
            }
            return Diff { action: Action::Delete, reason: Reason::Drift, changes };
        }
        let mut changes = Vec::new();
        if let Some(unit) = &self.unit {
            let want = sha256_hex(unit.as_bytes());
            let have = text(seen, "sha256");
            if have.as_deref() != Some(want.as_str()) {
                let size = seen.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
                changes.push(FieldChange::new(
                    "unit",
                    have.map(|h| describe_content(&h, size)),
                    Some(describe_content(&want, unit.len() as u64)),
                ));
            }
        } else if load == "not-found" || load.is_empty() {
            // Nothing to write and nothing there: starting it would fail; say so in the plan.
            changes.push(FieldChange::new("unit", Some("not-found".into()), Some("(no unit given)".into())));
        }
        if let Some(on) = self.enabled
            && (enabled == "enabled") != on
        {
            changes.push(FieldChange::new("enabled", Some(enabled.clone()), Some(enabled_text(on))));
        }
        let want_running = self.state == ServiceState::Running;
        if running != want_running {
            changes.push(FieldChange::new(
                "active",
                Some(active.clone()),
                Some(if want_running { "active" } else { "inactive" }.into()),
            ));
        } else if want_running && let Some(why) = &self.restart_because {
            changes.push(FieldChange::new("restart", None, Some(why.clone())));
        } else if want_running && let Some(why) = &self.reload_because {
            changes.push(FieldChange::new("reload", None, Some(why.clone())));
        }
        if changes.is_empty() {
            return Diff::noop();
        }
        let creating = self.unit.is_some() && !has_file;
        Diff {
            action: if creating { Action::Create } else { Action::Update },
            reason: if creating { Reason::Missing } else { Reason::Drift },
            changes,
        }
    }

    fn step(&self, diff: &Diff, seen: &Observed, cx: &StepContext) -> Result<Step> {
        let name = q(&self.name)?;
        let path = self.unit_path();
        let mut step = Step::new();
        let running = matches!(text(seen, "active").as_deref(), Some("active" | "activating" | "reloading"));
        match diff.action {
            Action::Delete => {
                if !self.is_template() {
                    step.run(format!(
                        "systemctl disable --now -- {name} >/dev/null 2>&1 || systemctl stop -- {name}"
                    ));
                }
                if seen.get("unit_file").and_then(|v| v.as_bool()).unwrap_or(false) {
                    step.run(format!("rm -f -- {}", q(&path)?)).run("systemctl daemon-reload".into());
                }
            }
            Action::Create | Action::Update => {
                let unit_changed = diff.has("unit") && self.unit.is_some();
                if let (true, Some(unit)) = (unit_changed, &self.unit) {
                    let tmp = temp_sibling(&path, cx.nonce);
                    step.write_bytes(&tmp, unit.as_bytes(), cx.nonce)?;
                    step.run(steps::chmod("0644", &tmp)?)
                        .run(steps::rename(&tmp, &path)?)
                        .cleanup(format!("rm -f -- {}", q(&tmp)?))
                        .run("systemctl daemon-reload".into());
                }
                match self.enabled {
                    Some(true) if diff.has("enabled") => {
                        step.run(format!("systemctl enable --quiet -- {name}"));
                    }
                    Some(false) if diff.has("enabled") => {
                        step.run(format!("systemctl disable --quiet -- {name}"));
                    }
                    _ => {}
                }
                match self.state {
                    _ if self.is_template() => {}
                    ServiceState::Running if !running => {
                        step.run(format!("systemctl start -- {name}"));
                    }
                    ServiceState::Running if unit_changed || diff.has("restart") => {
                        step.run(format!("systemctl restart -- {name}"));
                    }
                    ServiceState::Running if diff.has("reload") => {
                        step.run(format!("systemctl reload -- {name}"));
                    }
                    ServiceState::Stopped if running => {
                        step.run(format!("systemctl stop -- {name}"));
                    }
                    _ => {}
                }
                if step.commands.is_empty() {
                    step.run(":".into());
                }
            }
            Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        self.restart_on.iter().chain(&self.reload_on).chain(&self.after).cloned().collect()
    }

    fn rank(&self) -> u8 {
        super::RANK_SERVICE
    }

    fn reversible(&self, diff: &Diff) -> bool {
        // A replaced unit file's old text is not kept.
        !(diff.action == Action::Update && diff.has("unit") && self.unit.is_some())
    }

    fn down(&self, before: &Observed) -> Option<Result<Resource, String>> {
        let had_file = before.get("unit_file").and_then(|v| v.as_bool());
        let existed = had_file.or_else(|| before.get("exists").and_then(|v| v.as_bool())).unwrap_or(false);
        let was_running =
            matches!(text(before, "active").as_deref(), Some("active" | "activating" | "reloading"));
        Some(if self.unit.is_some() && !existed {
            // hk created the unit: stop, disable, remove.
            Ok(Resource::Service(Service {
                unit: None,
                enabled: None,
                state: ServiceState::Absent,
                restart_on: Vec::new(),
                restart_because: None,
                reload_on: Vec::new(),
                reload_because: None,
                after: Vec::new(),
                ..self.clone()
            }))
        } else if self.unit.is_some() && before.get("sha256").is_some() && self.state == ServiceState::Absent
        {
            Err("hk does not recreate a removed unit file".into())
        } else if let (Some(unit), Some(sha)) = (&self.unit, text(before, "sha256"))
            && sha != sha256_hex(unit.as_bytes())
        {
            Err("the previous unit file text was not kept".into())
        } else {
            Ok(Resource::Service(Service {
                unit: None,
                enabled: text(before, "enabled").map(|e| e == "enabled"),
                state: if was_running { ServiceState::Running } else { ServiceState::Stopped },
                restart_on: Vec::new(),
                restart_because: None,
                reload_on: Vec::new(),
                reload_because: None,
                after: Vec::new(),
                ..self.clone()
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(active: &str, enabled: &str, unit: Option<&str>) -> Observed {
        let mut seen = Observed::new();
        seen.insert("load".into(), "loaded".into());
        seen.insert("active".into(), active.into());
        seen.insert("enabled".into(), enabled.into());
        seen.insert("unit_file".into(), unit.is_some().into());
        if let Some(text) = unit {
            seen.insert("sha256".into(), sha256_hex(text.as_bytes()).into());
            seen.insert("size".into(), (text.len() as u64).into());
        }
        seen
    }

    fn service(unit: &str) -> Service {
        Service {
            name: "app.service".into(),
            unit: Some(unit.into()),
            enabled: Some(true),
            state: ServiceState::Running,
            restart_on: vec!["env_file:/etc/app.env".into()],
            restart_because: None,
            reload_on: vec!["file:/etc/app/site".into()],
            reload_because: None,
            after: Vec::new(),
        }
    }

    #[test]
    fn restarts_only_when_a_dependency_changed() {
        let unit = "[Service]\nExecStart=/bin/true\n";
        let mut s = service(unit);
        let running = seen("active", "enabled", Some(unit));
        assert_eq!(s.diff(&running).action, Action::Noop);
        s.restart_after(&["file:/other".into()]);
        assert_eq!(s.diff(&running).action, Action::Noop);
        s.restart_after(&["env_file:/etc/app.env".into()]);
        let diff = s.diff(&running);
        assert_eq!(diff.action, Action::Update);
        assert!(diff.has("restart"));
        let step = s.step(&diff, &running, &StepContext { nonce: "n0nce", uploaded: &[] }).expect("step");
        assert!(step.commands.iter().any(|c| c.starts_with("systemctl restart")), "{:?}", step.commands);
    }

    #[test]
    fn a_template_is_only_its_unit_file_and_reload_on_reloads() {
        let unit = "[Service]\nExecStart=/bin/true\n";
        let mut template = service(unit);
        template.name = "app@.service".into();
        template.enabled = None;
        template.restart_on.clear();
        template.reload_on.clear();
        let missing = seen("inactive", "", None);
        let diff = template.diff(&missing);
        assert_eq!(diff.action, Action::Create);
        let step =
            template.step(&diff, &missing, &StepContext { nonce: "n0nce", uploaded: &[] }).expect("step");
        let text = step.commands.join("\n");
        assert!(
            text.contains("daemon-reload") && !text.contains("systemctl start") && !text.contains("enable"),
            "{text}"
        );
        assert_eq!(template.diff(&seen("inactive", "", Some(unit))).action, Action::Noop);

        let mut proxy = service(unit);
        let running = seen("active", "enabled", Some(unit));
        proxy.restart_after(&["file:/etc/app/site".into()]);
        let diff = proxy.diff(&running);
        assert!(diff.has("reload") && !diff.has("restart"));
        let step = proxy.step(&diff, &running, &StepContext { nonce: "n0nce", uploaded: &[] }).expect("step");
        assert!(step.commands.iter().any(|c| c.starts_with("systemctl reload")), "{:?}", step.commands);
    }

    #[test]
    fn a_new_unit_is_written_reloaded_enabled_and_started() {
        let unit = "[Service]\nExecStart=/bin/true\n";
        let s = service(unit);
        let mut missing = seen("inactive", "", None);
        missing.insert("load".into(), "not-found".into());
        let diff = s.diff(&missing);
        assert_eq!(diff.action, Action::Create);
        let step = s.step(&diff, &missing, &StepContext { nonce: "n0nce", uploaded: &[] }).expect("step");
        let text = step.commands.join("\n");
        let order: Vec<usize> = ["daemon-reload", "systemctl enable", "systemctl start"]
            .iter()
            .map(|c| text.find(c).unwrap_or(usize::MAX))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
