//! Plain serde types shared by the engine and the plugin: plans, rows, events, host identity.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::resources::Resource;
use crate::transport::Target;

pub const PLAN_FORMAT: &str = "hk-plan";
pub const PLAN_VERSION: u64 = 1;

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    Noop,
    Read,
    /// The plan knows the apply would fail (its `note` says why and what to do): never applied.
    Error,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Noop => "noop",
            Action::Read => "read",
            Action::Error => "error",
        }
    }

    /// Whether applying a row with this action changes the host.
    pub fn mutates(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }

    /// Whether apply runs a row with this action (a `read` row is a check that runs at apply time).
    pub fn applies(self) -> bool {
        self.mutates() || self == Action::Read
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Missing,
    Drift,
    InSync,
    Ignored,
    ReadError,
    Down,
    /// A readiness check, run at every apply.
    Check,
    /// A directory missing above a path the plan puts in place.
    Parent,
    /// Something on the host stands in the way (the row's `note` says what).
    Conflict,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::Drift => "drift",
            Reason::InSync => "in_sync",
            Reason::Ignored => "ignored",
            Reason::ReadError => "read_error",
            Reason::Down => "down",
            Reason::Check => "check",
            Reason::Parent => "parent",
            Reason::Conflict => "conflict",
        }
    }
}

/// One field that differs between the host and the desired state. `None` means absent.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl FieldChange {
    pub fn new(field: &str, from: Option<String>, to: Option<String>) -> Self {
        FieldChange { field: field.to_string(), from, to }
    }
}

/// Who a host is: a plan made for one machine must not be applied to another.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug, Default)]
pub struct HostIdentity {
    pub hostname: String,
    pub machine_id: String,
}

/// Everything a plan needs to know about one host besides its rows.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HostPlan {
    pub target: Target,
    pub identity: HostIdentity,
    /// The host's release (`debian_12`), when packages were planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
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
