//! The qemu backend: a Debian guest with systemd and sshd, emulated (TCG) or under KVM, resumed in
//! seconds from a saved state of its first boot. SSH comes in through a forwarded port on 127.0.0.1;
//! the guest has no other network (`restrict=on`).

mod image;
mod qmp;
mod vm;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{Accel, Backend, Endpoint, FileLock, Instance, Lifecycle, Status, read_json, write_json};
use crate::quote::q;
use vm::{Vm, VmFiles};

pub struct Qemu;

/// What a running instance needs to be found again: written after it is up.
#[derive(Serialize, Deserialize)]
struct InstanceState {
    image: String,
    accel: Accel,
    port: u16,
    pid: u32,
    since: String,
    identity_file: String,
    /// Forwarded guest ports: guest port → port on 127.0.0.1.
    #[serde(default)]
    forwards: std::collections::BTreeMap<u16, u16>,
}

fn state_file(instance: &Instance) -> PathBuf {
    instance.dir.join("state.json")
}

/// Where a program is, or an error saying which package brings it.
pub(crate) fn require_tool(name: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin", "/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{name} is not installed: the qemu backend needs it (Debian/Ubuntu: apt-get install {package}; all at once: apt-get install qemu-system-x86 qemu-utils mmdebstrap zstd)"
    )
}

/// Output streams that append to `log` (qemu and the image tools never write to the plugin's stdout).
pub(crate) fn append_log(log: &Path) -> Result<(Stdio, Stdio)> {
    let file = fs::OpenOptions::new().create(true).append(true).open(log)?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// Run a command whose output only matters when it fails: both streams are appended to `log`.
pub(crate) fn run_logged(cmd: &mut Command, what: &str, log: &Path) -> Result<()> {
    let (out, err) = append_log(log)?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {} (full log: {})", vm::tail(log, 8), log.display());
    }
    Ok(())
}

impl Qemu {
    /// The pid of this instance's qemu when it runs; `Err(pid)` names a pid file left by one that died.
    fn running_pid(&self, instance: &Instance) -> Result<Option<u32>, u32> {
        match vm::read_pid(&VmFiles::in_dir(&instance.dir).pid) {
            Some(pid) if vm::is_running(pid, &instance.dir) => Ok(Some(pid)),
            Some(pid) => Err(pid),
            None => Ok(None),
        }
    }

    fn lock(&self, instance: &Instance) -> Result<FileLock> {
        fs::create_dir_all(&instance.dir)
            .with_context(|| format!("cannot create {}", instance.dir.display()))?;
        match FileLock::try_exclusive(&instance.dir.join("lock"))? {
            Ok(lock) => Ok(lock),
            Err(holder) => bail!(
                "instance {} is being brought up or destroyed by another hk (pid {}); wait for it, then run `hk instance status {}`",
                instance.name,
                holder.map_or("?".to_string(), |p| p.to_string()),
                instance.name
            ),
        }
    }
}

impl Qemu {
    /// `ensure` under the instance lock.
    fn bring_up(&self, instance: &Instance, progress: &mut dyn FnMut(&str)) -> Result<Status> {
        let files = VmFiles::in_dir(&instance.dir);
        match self.running_pid(instance) {
            Ok(Some(_)) if state_file(instance).is_file() => return self.status(instance),
            // Running without a state file: a start that was interrupted; begin again.
            Ok(Some(pid)) => Vm { pid, port: 0, forwards: Default::default() }.kill(),
            Ok(None) => {}
            Err(dead) => {
                progress(&format!("removing the stale pid file of qemu pid {dead}, which is gone"));
                let _ = fs::remove_file(&files.pid);
            }
        }
        let _ = fs::remove_file(state_file(instance));
        let image = image::ensure(&instance.spec, &instance.cache, progress)?;
        let disk = instance.dir.join("disk.qcow2");
        let cold = instance.spec.lifecycle == Lifecycle::Persistent && disk.is_file();
        if !cold {
            let _ = fs::remove_file(&disk);
            vm::create_overlay(&disk, &image.snapshot_disk(), "qcow2")?;
        }
        let _ = fs::remove_file(&files.console);
        progress(if cold {
            "booting the instance's own disk (persistent lifecycle; about a minute under emulation)"
        } else {
            "resuming from the ready snapshot"
        });
        let incoming = image.snapshot_state();
        let vm = Vm::start(&image, &instance.spec, &files, &disk, (!cold).then_some(incoming.as_path()))?;
        let timeout = Duration::from_secs(if cold { 600 } else { 300 });
        if let Err(e) = vm.wait_ready(&image, &files, timeout, Some(&instance.name), progress) {
            vm.kill();
            return Err(e.context(format!("instance {} did not come up", instance.name)));
        }
        write_json(
            &state_file(instance),
            &InstanceState {
                image: image.label(),
                accel: image.accel,
                port: vm.port,
                pid: vm.pid,
                since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                identity_file: image.ssh_key().display().to_string(),
                forwards: vm.forwards.clone(),
            },
        )?;
        self.status(instance)
    }
}

impl Backend for Qemu {
    fn status(&self, instance: &Instance) -> Result<Status> {
        let mut status = Status {
            name: instance.name.clone(),
            backend: "qemu".into(),
            state: "absent".into(),
            address: None,
            port: None,
            pid: None,
            image: None,
            since: None,
            ssh: None,
            note: None,
            ports: Default::default(),
        };
        if !instance.dir.is_dir() {
            return Ok(status);
        }
        let state: Option<InstanceState> = read_json(&state_file(instance))?;
        status.image = state.as_ref().map(|s| s.image.clone());
        match self.running_pid(instance) {
            Ok(Some(pid)) => {
                status.state = "running".into();
                status.pid = Some(pid);
                if let Some(s) = &state {
                    status.address = Some("127.0.0.1".into());
                    status.port = Some(s.port);
                    status.since = Some(s.since.clone());
                    status.ports = s.forwards.clone();
                    let known_hosts = VmFiles::in_dir(&instance.dir).known_hosts.display().to_string();
                    status.ssh = Some(format!(
                        "ssh -i {} -o UserKnownHostsFile={} -p {} root@127.0.0.1",
                        q(&s.identity_file)?,
                        q(&known_hosts)?,
                        s.port
                    ));
                }
            }
            Ok(None) => status.state = "stopped".into(),
            Err(dead) => {
                status.state = "stopped".into();
                status.note = Some(format!(
                    "stale pid file: qemu (pid {dead}) is gone; `hk instance ensure {}` starts it again",
                    instance.name
                ));
            }
        }
        Ok(status)
    }

    fn ensure(&self, instance: &Instance, progress: &mut dyn FnMut(&str)) -> Result<Status> {
        let new = !instance.dir.exists();
        let lock = self.lock(instance)?;
        let result = self.bring_up(instance, progress);
        if result.is_err() && new && !instance.dir.join("disk.qcow2").exists() {
            // Nothing was made for this instance: leave it absent rather than half there.
            drop(lock);
            let _ = fs::remove_dir_all(&instance.dir);
        }
        result
    }
    fn destroy(&self, instance: &Instance, progress: &mut dyn FnMut(&str)) -> Result<Status> {
        if !instance.dir.exists() {
            return self.status(instance);
        }
        let lock = self.lock(instance)?;
        if let Ok(Some(pid)) = self.running_pid(instance) {
            progress(&format!("stopping qemu (pid {pid})"));
            Vm { pid, port: 0, forwards: Default::default() }.kill();
        }
        drop(lock);
        fs::remove_dir_all(&instance.dir)
            .with_context(|| format!("cannot remove {}", instance.dir.display()))?;
        self.status(instance)
    }

    fn endpoint(&self, instance: &Instance) -> Result<Endpoint> {
        let state: Option<InstanceState> = read_json(&state_file(instance))?;
        match (self.running_pid(instance), state) {
            (Ok(Some(_)), Some(state)) => Ok(Endpoint {
                address: "127.0.0.1".into(),
                port: state.port,
                identity_file: state.identity_file,
                known_hosts: VmFiles::in_dir(&instance.dir).known_hosts.display().to_string(),
            }),
            _ => bail!("instance {} is {}", instance.name, self.status(instance)?.state),
        }
    }
}
