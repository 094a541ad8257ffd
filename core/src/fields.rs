//! Reading JSON-like data field by field: `Obj` takes each field it is asked for, names every error
//! by its path from the root (`resources.3.mode`), refuses fields nobody asked for, and answers a
//! misspelled one with the nearest known name. Everything that reads configs builds on it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use crate::change::State;

/// A config error that names the offending field.
#[derive(Debug)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
    /// The field that shows the problem best, when it is another one (the misspelled key of a
    /// missing field).
    pub at: Option<String>,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { field: field.into(), message: message.into(), at: None }
    }

    /// Where in the config to point: `resources.3.contnet` for a missing `resources.3.content`.
    pub fn location(&self) -> &str {
        self.at.as_deref().unwrap_or(&self.field)
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// One record of the config being read, with its field path for error messages.
pub struct Obj {
    path: String,
    map: Map<String, Value>,
    base_dir: PathBuf,
    /// Every field asked for so far: the names this record knows, for "did you mean".
    asked: Vec<String>,
}

impl Obj {
    pub fn new(path: &str, value: Value, base_dir: &Path) -> Result<Obj> {
        match value {
            Value::Object(map) => {
                Ok(Obj { path: path.to_string(), map, base_dir: base_dir.to_path_buf(), asked: Vec::new() })
            }
            other => {
                Err(ConfigError::new(path, format!("expected a record, got {}", type_name(&other))).into())
            }
        }
    }

    fn field_path(&self, field: &str) -> String {
        if self.path.is_empty() { field.to_string() } else { format!("{}.{field}", self.path) }
    }

    /// An error about `field`. When the field is not there but a field of a similar name is (a
    /// typo), the message says so instead of leaving the user to guess.
    pub fn fail<T>(&self, field: &str, message: &str) -> Result<T> {
        let mut error = ConfigError::new(self.field_path(field), message);
        if !self.map.contains_key(field)
            && let Some(typo) = nearest(field, self.map.keys().map(String::as_str))
        {
            error.message.push_str(&format!(" — did you mean `{field}`? (the config has `{typo}`)"));
            error.at = Some(self.field_path(typo));
        }
        Err(error.into())
    }

    /// A nested record at `field` (for error paths such as `resources.2.checks.0`).
    pub fn child(&self, field: &str, value: Value) -> Result<Obj> {
        Obj::new(&self.field_path(field), value, &self.base_dir)
    }

    /// Whether the record holds `key` (still unread).
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The field names still unread, in order.
    pub fn keys(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }

    pub fn put(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_string(), value);
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        if !self.asked.iter().any(|k| k == key) {
            self.asked.push(key.to_string());
        }
        self.map.shift_remove(key)
    }

    pub fn opt_str(&mut self, key: &str) -> Result<Option<String>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => self.fail(key, &format!("expected a string, got {}", type_name(&other))),
        }
    }

    pub fn req_str(&mut self, key: &str) -> Result<String> {
        match self.opt_str(key)? {
            Some(s) => Ok(s),
            None => self.fail(key, "missing (required)"),
        }
    }

    pub fn opt_bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => self.fail(key, &format!("expected a bool, got {}", type_name(&other))),
        }
    }

    pub fn opt_u64(&mut self, key: &str) -> Result<Option<u64>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(other) => self.fail(key, &format!("expected a whole number, got {}", type_name(&other))),
        }
    }

    /// A duration: a number of milliseconds, or a string with a unit ("250ms", "2s", "1min"; a Nushell
    /// duration arrives as "<n>ns").
    pub fn opt_duration_ms(&mut self, key: &str) -> Result<Option<u64>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(Value::String(s)) => match parse_duration_ms(&s) {
                Some(ms) => Ok(Some(ms)),
                None => self.fail(key, &format!("{s:?} is not a duration (e.g. 250ms, 2s)")),
            },
            Some(other) => self.fail(key, &format!("expected a duration, got {}", type_name(&other))),
        }
    }

    pub fn opt_record(&mut self, key: &str) -> Result<Option<Obj>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => Obj::new(&self.field_path(key), value, &self.base_dir).map(Some),
        }
    }

    /// A user or group: a name, or a numeric id.
    pub fn opt_name(&mut self, key: &str) -> Result<Option<String>> {
        match self.take(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(Some(n.to_string())),
            Some(Value::String(s)) if valid_account_name(&s) => Ok(Some(s)),
            Some(Value::String(s)) => self.fail(key, &format!("{s:?} is not a valid user or group name")),
            Some(other) => {
                self.fail(key, &format!("expected a name or a numeric id, got {}", type_name(&other)))
            }
        }
    }

    pub fn state(&mut self) -> Result<State> {
        match self.opt_str("state")?.as_deref() {
            None | Some("present") => Ok(State::Present),
            Some("absent") => Ok(State::Absent),
            Some(other) => self.fail("state", &format!("{other:?} is not a state: use present or absent")),
        }
    }

    /// A path on the machine running hk, relative ones resolved against the config's directory.
    pub fn local_path(&self, raw: &str) -> String {
        let p = Path::new(raw);
        if p.is_absolute() { raw.to_string() } else { self.base_dir.join(p).display().to_string() }
    }

    /// Refuse fields nobody read: a typo must not be silently ignored.
    pub fn finish(self) -> Result<()> {
        if let Some(key) = self.map.keys().next() {
            let hint = match nearest(key, self.asked.iter().map(String::as_str)) {
                Some(known) => format!("unknown field — did you mean `{known}`?"),
                None if self.asked.is_empty() => "unknown field".to_string(),
                None => format!("unknown field (known here: {})", self.asked.join(", ")),
            };
            return Err(ConfigError::new(self.field_path(key), hint).into());
        }
        Ok(())
    }
}

/// The name among `candidates` closest to `word` when it is close enough to be a typo of it.
fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn parse_duration_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "ns" => 1e-6,
        "us" | "µs" => 1e-3,
        "" | "ms" => 1.0,
        "s" | "sec" => 1e3,
        "m" | "min" => 60e3,
        _ => return None,
    };
    Some((value * factor).round() as u64)
}

fn valid_account_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$'))
        && !s.starts_with('-')
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "record",
    }
}

thread_local! {
    static READING_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `load` (a config read on this thread) for what its resources read on a host and nothing
/// else (a reading taken ahead, `engine::read_ahead`): a release's artifact is then not looked at,
/// as it may not be built yet.
pub fn for_reading<T>(load: impl FnOnce() -> T) -> T {
    READING_ONLY.with(|on| on.set(true));
    let loaded = load();
    READING_ONLY.with(|on| on.set(false));
    loaded
}

/// Whether the config being read is only for what it reads (see [`for_reading`]).
pub fn reading_only() -> bool {
    READING_ONLY.with(|on| on.get())
}
