//! Plain serde types shared by the engine and the plugin: plans, rows, events, host identity.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use crate::change::{Action, FieldChange, Reason};
use crate::resources::Resource;
pub use crate::script::probe::HostIdentity;
use crate::transport::Target;

pub const PLAN_FORMAT: &str = "hk-plan";
pub const PLAN_VERSION: u64 = 1;

/// Everything a plan needs to know about one host besides its rows.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HostPlan {
    pub target: Target,
    pub identity: HostIdentity,
    /// The host's release (`debian_12`), when packages were planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// What the plan is for and what made it: the runs it leads to say so.
    #[serde(default)]
    pub origin: Origin,
    /// Where the host keeps run records and backups, as its config says (a command's flags win).
    #[serde(default, skip_serializing_if = "crate::script::roots::Roots::is_unset")]
    pub roots: crate::script::roots::Roots,
}

/// The project a plan is for (the folder of its config, or where it was piped from) and what made
/// it: `plan`, `clean`, `down` (with the run it undoes).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub made_by: String,
    /// The run a down plan undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
}

impl Origin {
    pub fn new(project: Option<String>, made_by: &str) -> Origin {
        Origin { project, made_by: made_by.to_string(), undoes: None }
    }

    /// How a person reads it: `plan`, `clean`, `down of RUN`.
    pub fn describe(&self) -> String {
        match &self.undoes {
            Some(run) => format!("down of {run}"),
            None if self.made_by.is_empty() => "plan".to_string(),
            None => self.made_by.clone(),
        }
    }
}

/// One row of a plan: what hk will do to one resource on one host.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PlanRow {
    pub host: String,
    pub id: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub name: String,
    pub action: Action,
    pub changes: Vec<FieldChange>,
    pub reason: Reason,
    pub reversible: bool,
    /// Hash of the state observed when planning; apply refuses when it differs.
    pub fingerprint: String,
    pub resource: Resource,
    /// Why a row is as it is when the other columns cannot say it (e.g. why it is not reversible).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// A whole plan: rows plus, for each host, how to reach it and who it must be.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Plan {
    pub direction: Direction,
    pub hosts: IndexMap<String, HostPlan>,
    pub rows: Vec<PlanRow>,
}

/// The `--out` file: a plan bound to host identities.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PlanArtifact {
    pub format: String,
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub hk_version: String,
    pub direction: Direction,
    pub hosts: IndexMap<String, HostPlan>,
    pub changes: Vec<PlanRow>,
    pub summary: IndexMap<String, u64>,
}

impl PlanArtifact {
    pub fn new(plan: &Plan) -> Self {
        let mut summary: IndexMap<String, u64> = IndexMap::new();
        for row in &plan.rows {
            *summary.entry(row.action.as_str().to_string()).or_default() += 1;
        }
        PlanArtifact {
            format: PLAN_FORMAT.to_string(),
            version: PLAN_VERSION,
            created_at: Utc::now(),
            hk_version: crate::VERSION.to_string(),
            direction: plan.direction,
            hosts: plan.hosts.clone(),
            changes: plan.rows.clone(),
            summary,
        }
    }

    pub fn into_plan(self) -> Plan {
        Plan { direction: self.direction, hosts: self.hosts, rows: self.changes }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum EventStatus {
    Ok,
    Failed,
    Skipped,
    DryRun,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Ok => "ok",
            EventStatus::Failed => "failed",
            EventStatus::Skipped => "skipped",
            EventStatus::DryRun => "dry-run",
        }
    }
}

/// What happened to one change during apply, streamed as it happens.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Event {
    pub time: DateTime<Utc>,
    pub host: String,
    pub id: String,
    pub action: Action,
    pub status: EventStatus,
    pub duration: std::time::Duration,
    pub message: String,
}
