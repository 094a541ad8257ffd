//! What `user` and `group` share: the `rollback` setting, field diffs, and reading names.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::path_attrs::State;
use super::{Diff, Observed};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;

/// What `hk down` does with an account hk created: keep it (default: files may still belong to it)
/// or remove it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Rollback {
    #[default]
    Keep,
    Remove,
}

impl Rollback {
    pub fn from_config(obj: &mut Obj) -> Result<Rollback> {
        match obj.opt_str("rollback")?.as_deref() {
            None | Some("keep") => Ok(Rollback::Keep),
            Some("remove") => Ok(Rollback::Remove),
            Some(other) => obj.fail("rollback", &format!("{other:?}: use keep or remove")),
        }
    }
}

/// One change per field whose desired value is set and differs from what was seen.
pub fn changed_fields(wanted: &[(&str, Option<String>)], seen: &Observed) -> Vec<FieldChange> {
    wanted
        .iter()
        .filter_map(|(field, want)| {
            let want = want.as_ref()?;
            let have = seen.get(*field).and_then(|v| v.as_str()).map(str::to_string);
            (have.as_deref() != Some(want.as_str()))
                .then(|| FieldChange::new(field, have, Some(want.clone())))
        })
        .collect()
}

/// A user or group name as accepted by useradd/groupadd.
pub fn account_name(obj: &mut Obj, field: &str) -> Result<String> {
    let name = obj.req_str(field)?;
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('-');
    if !ok {
        return obj.fail(field, &format!("{name:?} is not a valid account name"));
    }
    Ok(name)
}

/// An optional numeric id (uid, gid).
pub fn opt_id(obj: &mut Obj, field: &str) -> Result<Option<String>> {
    Ok(obj.opt_u64(field)?.map(|n| n.to_string()))
}

/// The diff of an account (`kind` is "user" or "group"): created with its set fields, updated in the
/// fields that differ, deleted when it must be absent.
pub fn account_diff(
    kind: &str,
    name: &str,
    state: State,
    wanted: &[(&str, Option<String>)],
    seen: &Observed,
) -> Diff {
    let exists = seen.get("exists").and_then(|v| v.as_bool()).unwrap_or(false);
    match (state, exists) {
        (State::Absent, false) => Diff::noop(),
        (State::Absent, true) => Diff {
            action: Action::Delete,
            reason: Reason::Drift,
            changes: vec![FieldChange::new(kind, Some(name.to_string()), None)],
        },
        (State::Present, false) => {
            let mut changes = vec![FieldChange::new(kind, None, Some(name.to_string()))];
            changes.extend(changed_fields(wanted, seen));
            Diff { action: Action::Create, reason: Reason::Missing, changes }
        }
        (State::Present, true) => {
            let changes = changed_fields(wanted, seen);
            if changes.is_empty() {
                Diff::noop()
            } else {
                Diff { action: Action::Update, reason: Reason::Drift, changes }
            }
        }
    }
}

/// A created account is undone only with `rollback: remove`; a deleted one never comes back.
pub fn account_reversible(rollback: Rollback, diff: &Diff) -> bool {
    match diff.action {
        Action::Create => rollback == Rollback::Remove,
        Action::Delete => false,
        _ => true,
    }
}

/// What undoing a change to an account means, from whether it existed before.
pub enum WayBack {
    /// hk created it and `rollback: remove` allows deleting it.
    Remove,
    /// It existed: put back the fields `before` recorded.
    Restore,
}

pub fn account_way_back(
    kind: &str,
    before: &Observed,
    state: State,
    rollback: Rollback,
) -> Result<WayBack, String> {
    let existed = before.get("exists").and_then(|v| v.as_bool()).unwrap_or(false);
    match (existed, state, rollback) {
        (false, _, Rollback::Remove) => Ok(WayBack::Remove),
        (false, _, Rollback::Keep) => Err(format!(
            "hk keeps {kind}s it created (files may belong to them); set `rollback: remove` to delete it"
        )),
        (true, State::Absent, _) => Err(format!("hk does not recreate a deleted {kind}")),
        (true, State::Present, _) => Ok(WayBack::Restore),
    }
}
