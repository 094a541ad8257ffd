//! `env_file`: `KEY=value` lines for services, with secret entries (`{env: VAR}` or `{command: "…"}`)
//! resolved on the controller. Written like a `file` (atomically, mode 0600 by default), but its
//! content is compared through a keyed hash, shown as `(secret)`, and never backed up.

use anyhow::{Result, bail};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dir::owner_ids;
use super::file::{File, sha256_hex};
use super::path_attrs::{PathAttrs, State, normalize_path, text};
use super::{Diff, Observed, ResourceKind, StepContext, ancestor_dir_ids};
use crate::change::FieldChange;
use crate::fields::{Obj, type_name};
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::Step;
use crate::secrets::{SecretRef, Secrets};

const DEFAULT_MODE: &str = "0600";
const SECRET: &str = "(secret)";

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum EnvValue {
    Plain(String),
    Secret(SecretRef),
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EnvFile {
    pub path: String,
    pub entries: IndexMap<String, EnvValue>,
    #[serde(flatten)]
    pub attrs: PathAttrs,
    #[serde(default)]
    pub state: State,
    /// The rendered file (with secret values) and the key of the keyed hash: in memory only.
    #[serde(skip)]
    rendered: Option<Box<(File, Secrets)>>,
}

fn valid_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One `KEY=value` line: plain when safe, else double-quoted with backslash escapes.
fn line(key: &str, value: &str) -> String {
    let plain = value.chars().all(|c| c.is_ascii_alphanumeric() || "_./:@%+,-=".contains(c));
    if plain {
        return format!("{key}={value}\n");
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '$' => quoted.push_str("\\$"),
            '`' => quoted.push_str("\\`"),
            '\n' => quoted.push_str("\\n"),
            other => quoted.push(other),
        }
    }
    format!("{key}=\"{quoted}\"\n")
}

impl EnvFile {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let raw = obj.req_str("path")?;
        let path = normalize_path(obj, "path", &raw)?;
        let mut entries = IndexMap::new();
        match obj.take("entries") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (key, value) in map {
                    if !valid_key(&key) {
                        return obj.fail("entries", &format!("{key:?} is not a variable name"));
                    }
                    let entry = match value {
                        Value::String(s) => EnvValue::Plain(s),
                        Value::Number(n) => EnvValue::Plain(n.to_string()),
                        Value::Bool(b) => EnvValue::Plain(b.to_string()),
                        Value::Object(secret) => {
                            match serde_json::from_value::<SecretRef>(Value::Object(secret)) {
                                Ok(SecretRef::Env(var)) if valid_key(&var) => {
                                    EnvValue::Secret(SecretRef::Env(var))
                                }
                                Ok(SecretRef::Command(cmd)) if !cmd.trim().is_empty() => {
                                    EnvValue::Secret(SecretRef::Command(cmd))
                                }
                                _ => {
                                    return obj.fail(
                                        "entries",
                                        &format!("{key}: a secret is {{env: VAR}} or {{command: \"…\"}}"),
                                    );
                                }
                            }
                        }
                        other => {
                            return obj.fail(
                                "entries",
                                &format!("{key}: expected a value or a secret, got {}", type_name(&other)),
                            );
                        }
                    };
                    entries.insert(key, entry);
                }
            }
            Some(other) => {
                return obj.fail("entries", &format!("expected a record, got {}", type_name(&other)));
            }
        }
        let mut attrs = PathAttrs::from_config(obj)?;
        attrs.mode.get_or_insert_with(|| DEFAULT_MODE.to_string());
        let state = obj.state()?;
        Ok(EnvFile { path, entries, attrs, state, rendered: None })
    }

    pub fn secret_refs(&self) -> impl Iterator<Item = &SecretRef> {
        self.entries.values().filter_map(|v| match v {
            EnvValue::Secret(r) => Some(r),
            EnvValue::Plain(_) => None,
        })
    }

    fn has_secrets(&self) -> bool {
        self.secret_refs().next().is_some()
    }

    /// Render the file with the resolved secrets (kept in memory, never serialized).
    pub fn resolve(&mut self, secrets: &Secrets) -> Result<()> {
        if !secrets.has_key() {
            bail!("env_file:{}: no key for comparing secrets", self.path);
        }
        let mut text = String::new();
        for (key, value) in &self.entries {
            let value = match value {
                EnvValue::Plain(v) => v.as_str(),
                EnvValue::Secret(r) => secrets.get(r)?,
            };
            text.push_str(&line(key, value));
        }
        let digest = secrets.keyed(&sha256_hex(text.as_bytes()))?;
        let file = File::rendered(&self.path, text.into_bytes(), digest, self.attrs.clone(), self.state);
        let mut key_only = Secrets::default();
        if let Some(key) = secrets.key() {
            key_only.set_key(key.to_vec());
        }
        self.rendered = Some(Box::new((file, key_only)));
        Ok(())
    }

    fn rendered(&self) -> Result<&(File, Secrets)> {
        match &self.rendered {
            Some(r) => Ok(r),
            None => bail!("env_file:{}: its entries were not resolved", self.path),
        }
    }
}

impl ResourceKind for EnvFile {
    fn type_name(&self) -> &'static str {
        "env_file"
    }

    fn name(&self) -> &str {
        &self.path
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        self.attrs.probe(batch);
        batch.stat(&self.path);
        batch.sha256(&self.path);
    }

    /// As a file's, with the content hash replaced by its keyed hash.
    fn observe(&self, facts: &Facts) -> Observed {
        let mut seen = super::path_attrs::observe_file(&facts.path(&self.path));
        let keyed = self
            .rendered
            .as_deref()
            .and_then(|(_, key)| text(&seen, "sha256").and_then(|sha| key.keyed(&sha).ok()));
        match keyed {
            Some(k) => seen.insert("sha256".into(), k.into()),
            None => seen.shift_remove("sha256"),
        };
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let Ok((file, _)) = self.rendered() else {
            return Diff::noop();
        };
        let mut diff = file.diff(seen);
        if self.has_secrets() {
            for change in diff.changes.iter_mut().filter(|c| c.field == "content") {
                *change = FieldChange::new(
                    "content",
                    change.from.as_ref().map(|_| SECRET.to_string()),
                    change.to.as_ref().map(|_| SECRET.to_string()),
                );
            }
        }
        diff
    }

    fn step(&self, diff: &Diff, seen: &Observed, cx: &StepContext) -> Result<Step> {
        self.rendered()?.0.step(diff, seen, cx)
    }

    fn depends_on(&self) -> Vec<String> {
        let mut deps = ancestor_dir_ids(&self.path);
        deps.extend(owner_ids(&self.attrs));
        deps
    }

    fn conflict(&self, seen: &Observed) -> Option<String> {
        super::kind_conflict(&self.path, seen, &["missing", "file"], "a file")
    }

    fn rank(&self) -> u8 {
        super::RANK_ENV_FILE
    }

    fn backs_up(&self) -> bool {
        false
    }

    fn reversible(&self, diff: &Diff) -> bool {
        // Old secrets are never kept, so only a file hk created can be undone (by deleting it).
        diff.action == crate::change::Action::Create
    }
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(line("PORT", "9001"), "PORT=9001\n");
        assert_eq!(line("URL", "postgres://u@h:5432/db"), "URL=postgres://u@h:5432/db\n");
        assert_eq!(line("MSG", "a \"b\" $c `d`\\e\nf"), "MSG=\"a \\\"b\\\" \\$c \\`d\\`\\\\e\\nf\"\n");
    }
}
