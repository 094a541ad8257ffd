//! What `user` and `group` share: the `rollback` setting, field diffs, and reading names.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::Observed;
use crate::config::Obj;
use crate::model::FieldChange;

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
