//! Declared instances: machines hk brings up itself (`hk instance status|ensure|destroy`), reached as
//! ordinary SSH hosts once running. A backend trait with one implementation so far: qemu.

mod lock;
pub mod qemu;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fields::{ConfigError, Obj, type_name};
use crate::transport::SshTarget;

pub use lock::FileLock;

/// What `instances.NAME` declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSpec {
    pub backend: BackendKind,
    /// The Debian suite of the guest (`bookworm`).
    pub suite: String,
    /// Extra packages baked into the image.
    pub packages: Vec<String>,
    pub memory_mib: u64,
    pub cpus: u64,
    pub lifecycle: Lifecycle,
    pub accel: Accel,
    /// Debian mirror for the image; default: the one apt on this machine uses.
    pub mirror: Option<String>,
    /// Guest TCP ports forwarded from free ports on 127.0.0.1 (SSH always is).
    pub ports: Vec<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Qemu,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Qemu => "qemu",
        }
    }
}

/// `persistent` keeps the instance's disk when it stops (it boots again from it); `ephemeral` starts
/// from the clean image every time it is brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Persistent,
    Ephemeral,
}

/// How the guest CPU runs: software emulation, hardware virtualisation, or KVM where a stock kernel
/// really boots under it (checked once per machine), else emulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accel {
    Auto,
    Tcg,
    Kvm,
}

pub const BACKENDS: &[&str] = &["qemu"];

impl InstanceSpec {
    pub fn from_config(obj: &mut Obj) -> Result<InstanceSpec> {
        let backend = match obj.opt_str("backend")?.as_deref() {
            None | Some("qemu") => BackendKind::Qemu,
            Some(other) => {
                return obj.fail(
                    "backend",
                    &format!("unknown backend {other:?}; known backends: {}", BACKENDS.join(", ")),
                );
            }
        };
        let suite = obj.opt_str("suite")?.unwrap_or_else(|| "bookworm".to_string());
        if suite != "bookworm" {
            return obj.fail("suite", &format!("{suite:?} is not supported yet: use bookworm (Debian 12)"));
        }
        let packages = match obj.take("packages") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut names = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) if valid_package_name(&s) => names.push(s),
                        other => {
                            return obj.fail("packages", &format!("{other} is not a Debian package name"));
                        }
                    }
                }
                names
            }
            Some(other) => {
                return obj.fail("packages", &format!("expected a list of names, got {}", type_name(&other)));
            }
        };
        let memory_mib = match obj.take("memory") {
            None | Some(Value::Null) => 1024,
            Some(value) => match memory_mib(&value) {
                Some(m) if m >= 256 => m,
                _ => return obj.fail("memory", "give at least 256 MiB, e.g. 1024 or \"1GiB\""),
            },
        };
        let cpus = obj.opt_u64("cpus")?.unwrap_or(2);
        if !(1..=64).contains(&cpus) {
            return obj.fail("cpus", "give 1 to 64");
        }
        let lifecycle = match obj.opt_str("lifecycle")?.as_deref() {
            None | Some("persistent") => Lifecycle::Persistent,
            Some("ephemeral") => Lifecycle::Ephemeral,
            Some(other) => {
                return obj.fail("lifecycle", &format!("{other:?}: use persistent or ephemeral"));
            }
        };
        let accel = match obj.opt_str("accel")?.as_deref() {
            None | Some("auto") => Accel::Auto,
            Some("tcg") => Accel::Tcg,
            Some("kvm") => Accel::Kvm,
            Some(other) => return obj.fail("accel", &format!("{other:?}: use auto, tcg or kvm")),
        };
        let mirror = obj.opt_str("mirror")?;
        let ports = match obj.take("ports") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut ports: Vec<u16> = Vec::new();
                for item in items {
                    match item.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0 && *p != 22) {
                        Some(p) if !ports.contains(&p) => ports.push(p),
                        Some(_) => {}
                        None => {
                            return obj.fail(
                                "ports",
                                &format!("{item} is not a guest port to forward (1-65535, not 22)"),
                            );
                        }
                    }
                }
                ports
            }
            Some(other) => {
                return obj.fail("ports", &format!("expected a list of ports, got {}", type_name(&other)));
            }
        };
        Ok(InstanceSpec { backend, suite, packages, memory_mib, cpus, lifecycle, accel, mirror, ports })
    }
}

fn valid_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// Memory in MiB: a number of MiB, or a Nushell filesize (arrives as bytes) / "1GiB" string.
fn memory_mib(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => {
            let n = n.as_u64()?;
            // Nushell filesizes arrive as bytes; small numbers are MiB.
            Some(if n >= 1 << 20 { n >> 20 } else { n })
        }
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (number, unit) = s.split_at(split);
            let n: u64 = number.parse().ok()?;
            match unit.trim().to_ascii_lowercase().as_str() {
                "" | "m" | "mb" | "mib" => Some(n),
                "g" | "gb" | "gib" => Some(n * 1024),
                "b" => Some(n >> 20),
                _ => None,
            }
        }
        _ => None,
    }
}

/// One declared instance with where its files live.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub spec: InstanceSpec,
    /// Per-instance files: disk overlay, pid, sockets, logs, state.
    pub dir: PathBuf,
    /// Shared image cache (outside any clone, reused across instances and runs).
    pub cache: PathBuf,
}

/// What `hk instance status` reports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub backend: String,
    /// absent | stopped | running
    pub state: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub pid: Option<u32>,
    pub image: Option<String>,
    /// When the instance was last brought up (RFC 3339).
    pub since: Option<String>,
    /// A command line that logs in to a running instance as root.
    pub ssh: Option<String>,
    /// Forwarded guest ports: guest port → port on 127.0.0.1.
    #[serde(default)]
    pub ports: std::collections::BTreeMap<u16, u16>,
    /// Anything the user should know (a stale pid file cleaned up, …).
    pub note: Option<String>,
}

/// How to reach a running instance over SSH; written by the backend, read when a host points at it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    pub identity_file: String,
    pub known_hosts: String,
}

pub trait Backend {
    fn status(&self, instance: &Instance) -> Result<Status>;
    /// Make the instance running and ready for SSH (idempotent). `progress` hears about long steps.
    fn ensure(&self, instance: &Instance, progress: &mut dyn FnMut(&str)) -> Result<Status>;
    /// Stop the instance and remove its own files; shared image caches stay.
    fn destroy(&self, instance: &Instance, progress: &mut dyn FnMut(&str)) -> Result<Status>;
    /// The SSH endpoint of a running instance.
    fn endpoint(&self, instance: &Instance) -> Result<Endpoint>;
}

pub fn backend(kind: BackendKind) -> Box<dyn Backend> {
    match kind {
        BackendKind::Qemu => Box::new(qemu::Qemu),
    }
}

/// Where the images are cached: `$HK_IMAGE_CACHE`, else /var/tmp/hk-images (outside any clone, kept
/// across reboots).
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("HK_IMAGE_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/var/tmp/hk-images"),
    }
}

/// Fill in how a host declared with `instance: NAME` is reached: address, port, key and known_hosts
/// come from the running instance unless the host's own `ssh` settings say otherwise.
pub fn resolve_host(host: &str, instance: &Instance, ssh: &mut SshTarget) -> Result<()> {
    let endpoint = backend(instance.spec.backend).endpoint(instance).with_context(|| {
        format!(
            "host {host} runs on instance {name}: bring it up first with `hk instance ensure {name}`",
            name = instance.name
        )
    })?;
    ssh.address = endpoint.address;
    ssh.port = ssh.port.or(Some(endpoint.port));
    ssh.identity_file = ssh.identity_file.take().or(Some(endpoint.identity_file));
    ssh.known_hosts = ssh.known_hosts.take().or(Some(endpoint.known_hosts));
    if ssh.user.is_none() {
        ssh.user = Some("root".to_string());
    }
    Ok(())
}

/// Read a small JSON state file written by [`write_json`].
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write JSON atomically (temp file + rename).
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// An instance name is used in file names and as the guest's host name.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-');
    if !ok {
        bail!(ConfigError::new(
            field,
            "instance names use letters, digits and '-' (they become the guest's host name)"
        ));
    }
    Ok(())
}
