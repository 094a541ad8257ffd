//! What a plan says of one resource: the action, why, the fields that change — and whether a path
//! is to be present or absent. Plain types that resources, plans and runs share, below all of them.

use serde::{Deserialize, Serialize};

/// Whether a path resource is to exist.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum State {
    #[default]
    Present,
    Absent,
}

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
