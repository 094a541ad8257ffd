//! `user`: an account with home, shell, supplementary groups and an optional fixed uid.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::account::{
    Rollback, WayBack, account_diff, account_name, account_reversible, account_way_back, opt_id,
};
use super::path_attrs::{State, text};
use super::{Diff, Observed, Resource, ResourceKind, StepContext};
use crate::change::Action;
use crate::fields::{Obj, type_name};
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::Step;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub system: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// The primary group (default: a group named like the user, made if missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Supplementary groups, exactly (sorted); `None` leaves them alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub rollback: Rollback,
}

impl User {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let name = account_name(obj, "name")?;
        let system = obj.opt_bool("system")?.unwrap_or(false);
        let uid = opt_id(obj, "uid")?;
        let home = obj.opt_str("home")?;
        if let Some(h) = &home
            && !h.starts_with('/')
        {
            return obj.fail("home", "must be an absolute path");
        }
        let shell = obj.opt_str("shell")?;
        let group = obj.opt_name("group")?;
        let groups = match obj.take("groups") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut names = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) if !s.is_empty() && !s.contains([',', ':']) => names.push(s),
                        other => return obj.fail("groups", &format!("{other} is not a group name")),
                    }
                }
                names.sort();
                names.dedup();
                Some(names)
            }
            Some(other) => {
                return obj.fail("groups", &format!("expected a list of names, got {}", type_name(&other)));
            }
        };
        let state = obj.state()?;
        let rollback = Rollback::from_config(obj)?;
        Ok(User { name, system, uid, home, shell, group, groups, state, rollback })
    }

    fn wanted(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("uid", self.uid.clone()),
            ("home", self.home.clone()),
            ("shell", self.shell.clone()),
            ("group", self.group.clone()),
            ("groups", self.groups.as_ref().map(|g| g.join(","))),
        ]
    }
}

impl ResourceKind for User {
    fn type_name(&self) -> &'static str {
        "user"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        batch.accounts();
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let mut seen = Observed::new();
        let user = facts.users.get(&self.name);
        seen.insert("exists".into(), user.is_some().into());
        if let Some(u) = user {
            seen.insert("uid".into(), u.uid.clone().into());
            seen.insert("home".into(), u.home.clone().into());
            seen.insert("shell".into(), u.shell.clone().into());
            if let Some((primary, _)) = facts.groups.iter().find(|(_, g)| g.gid == u.gid) {
                seen.insert("group".into(), primary.clone().into());
            }
            let mut groups: Vec<&str> = facts
                .groups
                .iter()
                .filter(|(_, g)| g.members.iter().any(|m| m == &self.name))
                .map(|(name, _)| name.as_str())
                .collect();
            groups.sort();
            seen.insert("groups".into(), groups.join(",").into());
        }
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        account_diff("user", &self.name, self.state, &self.wanted(), seen)
    }

    fn step(&self, diff: &Diff, _seen: &Observed, _cx: &StepContext) -> Result<Step> {
        let name = q(&self.name)?;
        let mut step = Step::new();
        let to = |field: &str| diff.changes.iter().find(|c| c.field == field).and_then(|c| c.to.clone());
        match diff.action {
            Action::Create => {
                let mut cmd = "useradd".to_string();
                if self.system {
                    cmd.push_str(" --system");
                } else {
                    cmd.push_str(" --create-home");
                }
                for (flag, value) in [
                    ("--uid", to("uid")),
                    ("--home-dir", to("home")),
                    ("--shell", to("shell")),
                    ("--gid", to("group")),
                    ("--groups", to("groups")),
                ] {
                    if let Some(v) = value.filter(|v| !v.is_empty()) {
                        cmd.push_str(&format!(" {flag} {}", q(&v)?));
                    }
                }
                if self.group.is_some() {
                    step.run(format!("{cmd} -- {name}"));
                } else {
                    // useradd makes a group named like the user, and fails when one exists: use it.
                    step.run(format!(
                        "{{ if getent group {name} >/dev/null 2>&1; then {cmd} --gid {name} -- {name}; else {cmd} -- {name}; fi; }}"
                    ));
                }
            }
            Action::Update => {
                let mut cmd = "usermod".to_string();
                if let Some(uid) = to("uid") {
                    cmd.push_str(&format!(" --uid {}", q(&uid)?));
                }
                if let Some(home) = to("home") {
                    cmd.push_str(&format!(" --home {} --move-home", q(&home)?));
                }
                if let Some(shell) = to("shell") {
                    cmd.push_str(&format!(" --shell {}", q(&shell)?));
                }
                if let Some(group) = to("group") {
                    cmd.push_str(&format!(" --gid {}", q(&group)?));
                }
                if let Some(groups) = to("groups") {
                    cmd.push_str(&format!(" --groups {}", q(&groups)?));
                }
                step.run(format!("{cmd} -- {name}"));
            }
            Action::Delete => {
                step.run(format!("userdel -- {name}"));
            }
            Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        self.groups.iter().flatten().chain(&self.group).map(|g| format!("group:{g}")).collect()
    }

    fn rank(&self) -> u8 {
        super::RANK_USER
    }

    fn reversible(&self, diff: &Diff) -> bool {
        account_reversible(self.rollback, diff)
    }

    fn down(&self, before: &Observed) -> Option<Result<Resource, String>> {
        Some(account_way_back("user", before, self.state, self.rollback).map(|way| {
            match way {
                WayBack::Remove => Resource::User(User { state: State::Absent, ..self.clone() }),
                WayBack::Restore => Resource::User(User {
                    uid: text(before, "uid"),
                    home: text(before, "home"),
                    shell: text(before, "shell"),
                    group: text(before, "group"),
                    groups: text(before, "groups")
                        .map(|g| g.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()),
                    state: State::Present,
                    ..self.clone()
                }),
            }
        }))
    }
}
