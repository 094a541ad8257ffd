//! Resource types. Each type lives in its own file and implements [`ResourceKind`]; adding a type is
//! adding a file and one variant here.

mod account;
mod command;
mod dir;
mod env_file;
mod file;
mod group;
mod line;
mod link;
pub mod package;
mod path_attrs;
mod ready;
mod release;
mod service;
mod user;

use anyhow::Result;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use account::Rollback;
pub use command::Command;
pub use dir::Dir;
pub use env_file::{EnvFile, EnvValue};
pub use file::File;
pub use group::Group;
pub use line::Line;
pub use link::Link;
pub use package::Package;
pub use path_attrs::{PathAttrs, State, temp_sibling};
pub use ready::{Check, Ready};
pub use release::{ReleaseArtifact, ReleaseUnpack, artifact_of, artifact_path};
pub use service::{Service, ServiceState};
pub use user::User;

use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::Step;

/// Observed state of one resource, as plain fields; its hash is the plan row's fingerprint.
pub type Observed = IndexMap<String, serde_json::Value>;

/// What planning decided for one resource.
#[derive(Clone, Debug)]
pub struct Diff {
    pub action: Action,
    pub reason: Reason,
    pub changes: Vec<FieldChange>,
}

impl Diff {
    pub fn noop() -> Self {
        Diff { action: Action::Noop, reason: Reason::InSync, changes: Vec::new() }
    }

    pub fn has(&self, field: &str) -> bool {
        self.changes.iter().any(|c| c.field == field)
    }
}

/// Context a resource needs while writing its steps.
pub struct StepContext<'a> {
    pub nonce: &'a str,
    /// Ids of the rows whose uploads this apply has just streamed to the host.
    pub uploaded: &'a [String],
}

/// Bytes to stream before the script: `local` into the shell command line `command` on the host.
pub struct Upload {
    pub local: String,
    pub command: String,
}

pub trait ResourceKind {
    fn type_name(&self) -> &'static str;
    /// Unique within its type on a host; for path resources, the path.
    fn name(&self) -> &str;
    fn id(&self) -> String {
        format!("{}:{}", self.type_name(), self.name())
    }
    /// Ask the probe for the facts this resource needs.
    fn probe(&self, batch: &mut ProbeBatch);
    /// Pick this resource's observed state out of the host's facts.
    fn observe(&self, facts: &Facts) -> Observed;
    fn diff(&self, seen: &Observed) -> Diff;
    /// The commands that take the host from `seen` to the desired state.
    fn step(&self, diff: &Diff, seen: &Observed, cx: &StepContext) -> Result<Step>;
    /// Ids of resources that must be applied before this one, when they are declared.
    fn depends_on(&self) -> Vec<String>;
    /// A local file to stream to the host before the apply script runs.
    fn upload(&self) -> Result<Option<Upload>> {
        Ok(None)
    }

    /// Whether a down plan can undo this change.
    fn reversible(&self, _diff: &Diff) -> bool {
        true
    }

    /// Where this type goes in apply order (dependencies declared with ids come first regardless):
    /// groups, users, packages, paths, env files, services, readiness checks.
    fn rank(&self) -> u8 {
        RANK_PATH
    }

    /// The resource that brings the host back to `before` (as observed just before a change), or why
    /// that cannot be done. `None`: a path type, undone from its backup and `before` by the engine.
    fn down(&self, _before: &Observed) -> Option<Result<Resource, String>> {
        None
    }

    /// Whether a tracked run copies the current content before changing it (never for secrets).
    fn backs_up(&self) -> bool {
        true
    }

    /// Whether the backup may be a hard link: the type never writes its file in place (it only
    /// renames over it or removes it), so the old bytes stay as they were at no copying cost.
    fn backs_up_by_link(&self) -> bool {
        false
    }

    /// Why the apply could not do what the plan would show, when the host makes it impossible (a
    /// path of another kind in the way): the plan then shows an `error` row instead.
    fn conflict(&self, _seen: &Observed) -> Option<String> {
        None
    }
}

/// The message of a path of the wrong kind in the way (`kinds` are those a resource can work with).
pub fn kind_conflict(path: &str, seen: &Observed, kinds: &[&str], wanted: &str) -> Option<String> {
    let kind = seen.get("kind").and_then(|k| k.as_str()).unwrap_or("missing");
    (!kinds.contains(&kind)).then(|| {
        format!("{path} is a {kind}, not {wanted}: hk does not replace it; move it away or change the config")
    })
}

pub const RANK_GROUP: u8 = 0;
pub const RANK_USER: u8 = 1;
pub const RANK_PACKAGE: u8 = 2;
pub const RANK_PATH: u8 = 3;
pub const RANK_ENV_FILE: u8 = 4;
pub const RANK_SERVICE: u8 = 5;
pub const RANK_READY: u8 = 6;

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    Dir(Dir),
    File(File),
    Link(Link),
    Line(Line),
    ReleaseArtifact(ReleaseArtifact),
    ReleaseUnpack(ReleaseUnpack),
    Group(Group),
    User(User),
    Package(Package),
    Service(Service),
    EnvFile(EnvFile),
    Command(Command),
    Ready(Ready),
}

impl Resource {
    pub const TYPES: &'static [&'static str] = &[
        "dir", "file", "link", "line", "release", "group", "user", "package", "service", "env_file",
        "command", "ready",
    ];

    pub fn kind(&self) -> &dyn ResourceKind {
        match self {
            Resource::Dir(r) => r,
            Resource::File(r) => r,
            Resource::Link(r) => r,
            Resource::Line(r) => r,
            Resource::ReleaseArtifact(r) => r,
            Resource::ReleaseUnpack(r) => r,
            Resource::Group(r) => r,
            Resource::User(r) => r,
            Resource::Package(r) => r,
            Resource::Service(r) => r,
            Resource::EnvFile(r) => r,
            Resource::Command(r) => r,
            Resource::Ready(r) => r,
        }
    }

    /// Build the resources of one config entry (a `release` gives three); `obj` carries the field
    /// path for errors.
    pub fn from_config(obj: &mut Obj) -> Result<Vec<Resource>> {
        let rtype = obj.req_str("type")?;
        Ok(match rtype.as_str() {
            "dir" => vec![Resource::Dir(Dir::from_config(obj)?)],
            "file" => vec![Resource::File(File::from_config(obj)?)],
            "link" => vec![Resource::Link(Link::from_config(obj)?)],
            "line" => vec![Resource::Line(Line::from_config(obj)?)],
            "release" => release::from_config(obj)?,
            "group" => vec![Resource::Group(Group::from_config(obj)?)],
            "user" => vec![Resource::User(User::from_config(obj)?)],
            "package" => vec![Resource::Package(Package::from_config(obj)?)],
            "service" => vec![Resource::Service(Service::from_config(obj)?)],
            "env_file" => vec![Resource::EnvFile(EnvFile::from_config(obj)?)],
            "command" => vec![Resource::Command(Command::from_config(obj)?)],
            "ready" => vec![Resource::Ready(Ready::from_config(obj)?)],
            other => obj.fail(
                "type",
                &format!("unknown resource type {other:?} (known: {})", Self::TYPES.join(", ")),
            )?,
        })
    }

    /// The path a path resource manages.
    pub fn path(&self) -> Option<&str> {
        match self {
            Resource::Dir(r) => Some(&r.path),
            Resource::File(r) => Some(&r.path),
            Resource::Link(r) => Some(&r.path),
            Resource::Line(r) => Some(&r.path),
            Resource::ReleaseArtifact(r) => Some(&r.path),
            Resource::ReleaseUnpack(r) => Some(&r.path),
            Resource::EnvFile(r) => Some(&r.path),
            _ => None,
        }
    }

    /// Whether applying it puts something at its path (so the directories above must exist).
    pub fn puts_path(&self) -> bool {
        match self {
            Resource::Dir(r) => r.state == State::Present,
            Resource::File(r) => r.state == State::Present,
            Resource::Link(r) => r.state == State::Present,
            Resource::Line(r) => r.state == State::Present,
            Resource::ReleaseArtifact(r) => r.state == State::Present,
            Resource::ReleaseUnpack(r) => r.state == State::Present,
            Resource::EnvFile(r) => r.state == State::Present,
            _ => false,
        }
    }

    /// Drop inline payloads (a file's content) from a row that will not be applied.
    pub fn strip_payload(&mut self) {
        if let Resource::File(f) = self {
            f.strip_payload();
        }
    }

    /// Load what is not carried in the row itself (a file's `source` bytes) and check it is unchanged.
    pub fn resolve(&mut self, secrets: &crate::secrets::Secrets) -> Result<()> {
        match self {
            Resource::File(f) => f.resolve(),
            Resource::EnvFile(e) => e.resolve(secrets),
            _ => Ok(()),
        }
    }
}

/// Ids of the declared directories above `path`, nearest last.
pub fn ancestor_dir_ids(path: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut current = path;
    while let Some(pos) = current.rfind('/') {
        current = &current[..pos];
        if current.is_empty() {
            break;
        }
        ids.push(format!("dir:{current}"));
    }
    ids.reverse();
    ids
}

/// Every secret the resources refer to, once each.
pub fn secret_refs(resources: &[&Resource]) -> Vec<crate::secrets::SecretRef> {
    let mut refs = Vec::new();
    for resource in resources {
        if let Resource::EnvFile(env) = resource {
            for r in env.secret_refs() {
                if !refs.contains(r) {
                    refs.push(r.clone());
                }
            }
        }
    }
    refs
}

/// Whether any resource is an env file (and so needs the key).
pub fn needs_key(resources: &[&Resource]) -> bool {
    resources.iter().any(|r| matches!(r, Resource::EnvFile(_)))
}
