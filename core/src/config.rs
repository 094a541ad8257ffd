//! Desired state: `{hosts: {NAME: {...}}, resources: [...]}` from JSON-like data, validated with the
//! field path of every error (`resources.3.mode`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use indexmap::IndexMap;
use serde_json::Value;

pub use crate::fields::{ConfigError, Obj, type_name};
use crate::instance::{self, Instance, InstanceSpec};
use crate::resources::Resource;
use crate::transport::Target;

/// The name under which the machine hk runs on is planned when no host is declared for it.
pub const LOCAL_HOST: &str = "local";

#[derive(Clone, Debug, Default)]
pub struct Config {
    pub hosts: IndexMap<String, Target>,
    pub resources: Vec<Resource>,
    /// `resources.N.hosts`: the hosts resource k is for (`None`: every host), as `resources`.
    pub resource_hosts: Vec<Option<Vec<String>>>,
    /// `instances.NAME`: machines hk brings up itself.
    pub instances: IndexMap<String, InstanceSpec>,
    /// Hosts declared with `instance: NAME`, reached through that instance once it runs.
    pub host_instances: IndexMap<String, String>,
    /// Where instances keep their own files (`NAME/` below it).
    pub instances_dir: PathBuf,
    /// The shared image cache of instance backends.
    pub image_cache: PathBuf,
    /// The project this config belongs to (its file's folder, or where it was piped from): the runs
    /// its plans lead to are recorded as this project's.
    pub project: Option<String>,
    /// Where hosts keep their run records and backups (`hosts.NAME.runs_root`, `backups_root`),
    /// unless a command says otherwise.
    pub roots: IndexMap<String, crate::runs::Roots>,
}

impl Config {
    /// Validate a config value. `base_dir` anchors relative local paths (a file's `source`).
    pub fn from_value(value: Value, base_dir: &Path) -> Result<Config> {
        let mut root = Obj::new("", value, base_dir)?;
        let mut instances = IndexMap::new();
        if let Some(mut instance_map) = root.opt_record("instances")? {
            let names: Vec<String> = instance_map.keys();
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
        let mut roots = IndexMap::new();
        if let Some(mut host_map) = root.opt_record("hosts")? {
            let names: Vec<String> = host_map.keys();
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
                    if obj.has("address") || obj.has("local") {
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
                let host_roots = crate::runs::Roots {
                    runs: obj.opt_str("runs_root")?,
                    backups: obj.opt_str("backups_root")?,
                };
                if let Err(e) = host_roots.validate() {
                    return obj.fail(
                        if host_roots.runs.is_some() { "runs_root" } else { "backups_root" },
                        &format!("{e:#}"),
                    );
                }
                obj.finish()?;
                if host_roots != Default::default() {
                    roots.insert(name.clone(), host_roots);
                }
                hosts.insert(name, target);
            }
        }
        let mut resources = Vec::new();
        let mut resource_hosts = Vec::new();
        let mut origins = Vec::new();
        match root.take("resources") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    let mut obj = Obj::new(&format!("resources.{i}"), item, base_dir)?;
                    let only = only_on(&mut obj, &hosts)?;
                    let expanded = Resource::from_config(&mut obj)?;
                    obj.finish()?;
                    origins.extend(expanded.iter().map(|_| i));
                    resource_hosts.extend(expanded.iter().map(|_| only.clone()));
                    resources.extend(expanded);
                }
            }
            Some(other) => root.fail("resources", &format!("expected a list, got {}", type_name(&other)))?,
        }
        // What a deploy config adds beside its hosts (`hk config` shows it); the engine needs none of it.
        let _ = root.take("deploy");
        root.finish()?;
        let config = Config {
            hosts,
            resources,
            resource_hosts,
            instances,
            host_instances,
            instances_dir: base_dir.join(".hk/instances"),
            image_cache: instance::default_cache_dir(),
            project: Some(base_dir.display().to_string()),
            roots,
        };
        config.check_unique(&origins)?;
        Ok(config)
    }

    /// The resources `host` is to have: those for every host and those naming it.
    pub fn resources_for(&self, host: &str) -> Vec<Resource> {
        self.resources
            .iter()
            .enumerate()
            .filter(|(k, _)| match self.resource_hosts.get(*k) {
                Some(Some(only)) => only.iter().any(|h| h == host),
                _ => true,
            })
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// `origins[k]`: the config entry resource k came from (a `release` entry gives several).
    fn check_unique(&self, origins: &[usize]) -> Result<()> {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut paths: HashMap<&str, usize> = HashMap::new();
        for (r, &i) in self.resources.iter().zip(origins) {
            let id = r.kind().id();
            if let Some(first) = ids.insert(id.clone(), i) {
                bail!(ConfigError::new(
                    format!("resources.{i}"),
                    format!("duplicate id {id} (first at resources.{first})")
                ));
            }
            // Several `line`s may share a file; nothing else shares a path.
            if let Some(path) = r.path().filter(|_| !matches!(r, Resource::Line(_)))
                && let Some(first) = paths.insert(path, i)
            {
                bail!(ConfigError::new(
                    format!("resources.{i}.path"),
                    format!("{path} is already managed by resources.{first}"),
                ));
            }
        }
        Ok(())
    }

    /// The target of a host name as declared (a host on an instance still needs the instance's
    /// address: see `engine::target`), or `local` for this machine.
    pub fn target(&self, host: &str) -> Result<Target> {
        if let Some(target) = self.hosts.get(host) {
            return Ok(target.clone());
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

/// A resource's `hosts`: the declared hosts it is for (absent: every host).
fn only_on(obj: &mut Obj, hosts: &IndexMap<String, Target>) -> Result<Option<Vec<String>>> {
    let names = match obj.take("hosts") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => {
            let mut names = Vec::new();
            for item in items {
                match item {
                    Value::String(s) => names.push(s),
                    other => return obj.fail("hosts", &format!("{other} is not a host name")),
                }
            }
            names
        }
        Some(other) => return obj.fail("hosts", &format!("expected host names, got {}", type_name(&other))),
    };
    for name in &names {
        if !hosts.is_empty() && !hosts.contains_key(name) {
            let declared: Vec<&str> = hosts.keys().map(String::as_str).collect();
            return obj.fail(
                "hosts",
                &format!("{name:?} is not a declared host (declared: {})", declared.join(", ")),
            );
        }
    }
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_their_hosts() {
        let config = Config::from_value(
            serde_json::json!({
                "hosts": {"a": {"local": true}, "b": {"local": true}},
                "resources": [
                    {"type": "dir", "path": "/for-a", "hosts": ["a"]},
                    {"type": "dir", "path": "/for-b", "hosts": "b"},
                    {"type": "dir", "path": "/for-all"},
                ]
            }),
            Path::new("/"),
        )
        .expect("valid");
        let ids = |host: &str| config.resources_for(host).iter().map(|r| r.kind().id()).collect::<Vec<_>>();
        assert_eq!(ids("a"), ["dir:/for-a", "dir:/for-all"]);
        assert_eq!(ids("b"), ["dir:/for-b", "dir:/for-all"]);
        let unknown = Config::from_value(
            serde_json::json!({"hosts": {"a": {"local": true}}, "resources": [{"type": "dir", "path": "/x", "hosts": ["zz"]}]}),
            Path::new("/"),
        );
        assert!(format!("{:#}", unknown.expect_err("refused")).contains("zz"));
    }
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
