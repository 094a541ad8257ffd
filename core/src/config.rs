//! Desired state: `{hosts: {NAME: {...}}, resources: [...]}` from JSON-like data, validated with the
//! field path of every error (`resources.3.mode`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::instance::{self, Instance, InstanceSpec};
use crate::resources::{Resource, State};
use crate::transport::Target;

/// The name under which the machine hk runs on is planned when no host is declared for it.
pub const LOCAL_HOST: &str = "local";

#[derive(Clone, Debug, Default)]
pub struct Config {
    pub hosts: IndexMap<String, Target>,
    pub resources: Vec<Resource>,
    /// `instances.NAME`: machines hk brings up itself.
    pub instances: IndexMap<String, InstanceSpec>,
    /// Hosts declared with `instance: NAME`, reached through that instance once it runs.
    pub host_instances: IndexMap<String, String>,
    /// Where instances keep their own files (`NAME/` below it).
    pub instances_dir: PathBuf,
    /// The shared image cache of instance backends.
    pub image_cache: PathBuf,
}

/// A config error that names the offending field.
#[derive(Debug)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
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
            other => Err(ConfigError {
                field: path.to_string(),
                message: format!("expected a record, got {}", type_name(&other)),
            }
            .into()),
        }
    }

    fn field_path(&self, field: &str) -> String {
        if self.path.is_empty() { field.to_string() } else { format!("{}.{field}", self.path) }
    }

    /// An error about `field`. When the field is not there but a field of a similar name is (a
    /// typo), the message says so instead of leaving the user to guess.
    pub fn fail<T>(&self, field: &str, message: &str) -> Result<T> {
        let mut message = message.to_string();
        if !self.map.contains_key(field)
            && let Some(typo) = nearest(field, self.map.keys().map(String::as_str))
        {
            message.push_str(&format!(" — did you mean `{field}`? (the config has `{typo}`)"));
        }
        Err(ConfigError { field: self.field_path(field), message }.into())
    }

    /// A nested record at `field` (for error paths such as `resources.2.checks.0`).
    pub fn child(&self, field: &str, value: Value) -> Result<Obj> {
        Obj::new(&self.field_path(field), value, &self.base_dir)
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
            return Err(ConfigError { field: self.field_path(key), message: hint }.into());
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

impl Config {
    /// Validate a config value. `base_dir` anchors relative local paths (a file's `source`).
    pub fn from_value(value: Value, base_dir: &Path) -> Result<Config> {
        let mut root = Obj::new("", value, base_dir)?;
        let mut instances = IndexMap::new();
        if let Some(mut instance_map) = root.opt_record("instances")? {
            let names: Vec<String> = instance_map.map.keys().cloned().collect();
            for name in names {
                instance::check_name(&format!("instances.{name}"), &name)?;
                let value = instance_map.take(&name).unwrap_or(Value::Null);
                let mut obj = Obj::new(&format!("instances.{name}"), value, base_dir)?;
                let spec = InstanceSpec::from_config(&mut obj)?;
                obj.finish()?;
                instances.insert(name, spec);
            }
        }
        let mut hosts = IndexMap::new();
        let mut host_instances = IndexMap::new();
        if let Some(mut host_map) = root.opt_record("hosts")? {
            let names: Vec<String> = host_map.map.keys().cloned().collect();
            for name in names {
                if !valid_host_name(&name) {
                    host_map.fail(&name, "host names use letters, digits, '-', '_' and '.'")?;
                }
                let value = host_map.take(&name).unwrap_or(Value::Null);
                let mut obj = Obj::new(&format!("hosts.{name}"), value, base_dir)?;
                if let Some(instance) = obj.opt_str("instance")? {
                    if !instances.contains_key(&instance) {
                        let declared: Vec<&str> = instances.keys().map(String::as_str).collect();
                        return obj.fail(
                            "instance",
                            &format!(
                                "no instance {instance:?} is declared (instances: {})",
                                if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
                            ),
                        );
                    }
                    if obj.map.contains_key("address") || obj.map.contains_key("local") {
                        return obj.fail(
                            "instance",
                            "a host on an instance takes its address from it: drop `address`/`local`",
                        );
                    }
                    // The real port, key and known_hosts are filled in from the running instance.
                    obj.put("address", Value::String("127.0.0.1".into()));
                    host_instances.insert(name.clone(), instance);
                }
                let target = Target::from_config(&mut obj)?;
                obj.finish()?;
                hosts.insert(name, target);
            }
        }
        let mut resources = Vec::new();
        let mut origins = Vec::new();
        match root.take("resources") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut obj = Obj::new(&format!("resources.{i}"), item, base_dir)?;
                    let expanded = Resource::from_config(&mut obj)?;
                    obj.finish()?;
                    origins.extend(expanded.iter().map(|_| i));
                    resources.extend(expanded);
                }
            }
            Some(other) => root.fail("resources", &format!("expected a list, got {}", type_name(&other)))?,
        }
        root.finish()?;
        let config = Config {
            hosts,
            resources,
            instances,
            host_instances,
            instances_dir: base_dir.join(".hk/instances"),
            image_cache: instance::default_cache_dir(),
        };
        config.check_unique(&origins)?;
        Ok(config)
    }

    /// `origins[k]`: the config entry resource k came from (a `release` entry gives several).
    fn check_unique(&self, origins: &[usize]) -> Result<()> {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut paths: HashMap<&str, usize> = HashMap::new();
        for (r, &i) in self.resources.iter().zip(origins) {
            let id = r.kind().id();
            if let Some(first) = ids.insert(id.clone(), i) {
                bail!(ConfigError {
                    field: format!("resources.{i}"),
                    message: format!("duplicate id {id} (first at resources.{first})")
                });
            }
            // Several `line`s may share a file; nothing else shares a path.
            if let Some(path) = r.path().filter(|_| !matches!(r, Resource::Line(_)))
                && let Some(first) = paths.insert(path, i)
            {
                bail!(ConfigError {
                    field: format!("resources.{i}.path"),
                    message: format!("{path} is already managed by resources.{first}"),
                });
            }
        }
        Ok(())
    }

    /// The target of a host name: a declared host, or `local` for this machine.
    pub fn target(&self, host: &str) -> Result<Target> {
        if let Some(target) = self.hosts.get(host) {
            let mut target = target.clone();
            if let (Some(name), Target::Ssh { ssh, .. }) = (self.host_instances.get(host), &mut target) {
                instance::resolve_host(host, &self.instance(name)?, ssh)?;
            }
            return Ok(target);
        }
        if host == LOCAL_HOST {
            return Ok(Target::local());
        }
        let known: Vec<&str> = self.hosts.keys().map(String::as_str).collect();
        Err(anyhow!(
            "unknown host {host:?}; declared hosts: {}",
            if known.is_empty() { "none (use `local` or --local)".to_string() } else { known.join(", ") }
        ))
    }
}

impl Config {
    /// A declared instance with where its files live.
    pub fn instance(&self, name: &str) -> Result<Instance> {
        let spec = self.instances.get(name).ok_or_else(|| {
            let declared: Vec<&str> = self.instances.keys().map(String::as_str).collect();
            anyhow!(
                "unknown instance {name:?}; declared instances: {}",
                if declared.is_empty() {
                    "none (declare one under `instances`)".to_string()
                } else {
                    declared.join(", ")
                }
            )
        })?;
        Ok(Instance {
            name: name.to_string(),
            spec: spec.clone(),
            dir: self.instances_dir.join(name),
            cache: self.image_cache.clone(),
        })
    }
}

fn valid_host_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(value: Value) -> String {
        match Config::from_value(value, Path::new("/tmp")) {
            Ok(_) => panic!("config was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err(json!({"resources": [{"type": "dir"}]})), "resources.0.path: missing (required)");
        assert!(
            err(json!({"resources": [{"type": "dir", "path": "/a", "mode": "999"}]}))
                .starts_with("resources.0.mode:")
        );
        assert!(err(json!({"resources": [{"type": "nope"}]})).contains("unknown resource type \"nope\""));
        assert!(
            err(json!({"resources": [{"type": "dir", "path": "rel/x"}]})).contains("not an absolute path")
        );
        assert_eq!(
            err(json!({"resources": [{"type": "dir", "path": "/a", "mdoe": "0644"}]})),
            "resources.0.mdoe: unknown field — did you mean `mode`?"
        );
        assert_eq!(
            err(json!({"resources": [{"type": "file", "path": "/a", "contnet": "x"}]})),
            "resources.0.content: missing: a file needs content or source — did you mean `content`? (the config has `contnet`)"
        );
        assert!(
            err(json!({"resources": [{"type": "dir", "path": "/a"}, {"type": "dir", "path": "/a/"}]}))
                .contains("duplicate id dir:/a")
        );
        assert!(err(json!({"resources": [{"type": "dir", "path": "/a"}, {"type": "link", "path": "/a", "target": "b"}]})).contains("already managed"));
        assert!(
            err(json!({"resources": [{"type": "file", "path": "/a"}]})).contains("needs content or source")
        );
        assert!(err(json!({"resources": [{"type": "dir", "path": "/a/../b"}]})).contains("'..'"));
        assert!(err(json!({"resources": {}})).starts_with("resources: expected a list"));
    }
}
