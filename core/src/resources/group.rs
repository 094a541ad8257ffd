//! `group`: a system or regular group, with an optional fixed gid.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::account::{
    Rollback, WayBack, account_diff, account_name, account_reversible, account_way_back, opt_id,
};
use super::path_attrs::{State, text};
use super::{Diff, Observed, ResourceKind, StepContext};
use crate::change::Action;
use crate::fields::Obj;
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::Step;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Group {
    pub name: String,
    #[serde(default)]
    pub system: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(default)]
    pub state: State,
    #[serde(default)]
    pub rollback: Rollback,
}

impl Group {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let name = account_name(obj, "name")?;
        let system = obj.opt_bool("system")?.unwrap_or(false);
        let gid = opt_id(obj, "gid")?;
        let state = obj.state()?;
        let rollback = Rollback::from_config(obj)?;
        Ok(Group { name, system, gid, state, rollback })
    }
}

impl ResourceKind for Group {
    fn type_name(&self) -> &'static str {
        "group"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        batch.accounts();
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let mut seen = Observed::new();
        let group = facts.groups.get(&self.name);
        seen.insert("exists".into(), group.is_some().into());
        if let Some(g) = group {
            seen.insert("gid".into(), g.gid.clone().into());
        }
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        account_diff("group", &self.name, self.state, &[("gid", self.gid.clone())], seen)
    }

    fn step(&self, diff: &Diff, _seen: &Observed, _cx: &StepContext) -> Result<Step> {
        let name = q(&self.name)?;
        let mut step = Step::new();
        match diff.action {
            Action::Create => {
                let mut cmd = "groupadd".to_string();
                if self.system {
                    cmd.push_str(" --system");
                }
                if let Some(gid) = &self.gid {
                    cmd.push_str(&format!(" --gid {}", q(gid)?));
                }
                step.run(format!("{cmd} -- {name}"));
            }
            Action::Update => {
                if let Some(gid) = diff.changes.iter().find(|c| c.field == "gid").and_then(|c| c.to.clone()) {
                    step.run(format!("groupmod --gid {} -- {name}", q(&gid)?));
                }
            }
            Action::Delete => {
                step.run(format!("groupdel -- {name}"));
            }
            Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        Vec::new()
    }

    fn rank(&self) -> u8 {
        super::RANK_GROUP
    }

    fn reversible(&self, diff: &Diff) -> bool {
        account_reversible(self.rollback, diff)
    }

    fn down(&self, before: &Observed) -> Option<Result<super::Resource, String>> {
        Some(account_way_back("group", before, self.state, self.rollback).and_then(|way| match way {
            WayBack::Remove => {
                Ok(super::Resource::Group(Group { state: State::Absent, gid: None, ..self.clone() }))
            }
            WayBack::Restore => match text(before, "gid") {
                Some(gid) => Ok(super::Resource::Group(Group {
                    gid: Some(gid),
                    state: State::Present,
                    ..self.clone()
                })),
                None => Err("the previous gid is unknown".into()),
            },
        }))
    }
}
