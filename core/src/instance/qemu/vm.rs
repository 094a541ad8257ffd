//! One qemu process: start it (fresh boot or resumed from a saved state), wait until the guest answers
//! SSH with systemd up, save its state, stop it.

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::image::Image;
use super::qmp::Qmp;
use super::{Accel, append_log, require_tool};
use crate::instance::InstanceSpec;
use crate::quote::q;
use crate::transport::{Credentials, Retry, SshTarget, SshTransport, Transport};

/// Device options that shape the saved VM state: a state only loads under the same ones.
pub const DEVICE_OPTIONS: &[&str] = &[
    "-nodefaults",
    "-display",
    "none",
    "-device",
    "virtio-blk-pci,drive=d0",
    "-device",
    "virtio-net-pci,netdev=n0",
    "-device",
    "virtio-rng-pci",
];
const KERNEL_ARGS: &str = "root=/dev/vda rw console=ttyS0 net.ifnames=0";

/// The files of one running VM.
pub struct VmFiles {
    pub pid: PathBuf,
    pub qmp: PathBuf,
    pub console: PathBuf,
    pub log: PathBuf,
    pub known_hosts: PathBuf,
}

impl VmFiles {
    pub fn in_dir(dir: &Path) -> VmFiles {
        VmFiles {
            pid: dir.join("qemu.pid"),
            qmp: dir.join("qmp.sock"),
            console: dir.join("console.log"),
            log: dir.join("qemu.log"),
            known_hosts: dir.join("known_hosts"),
        }
    }
}

pub struct Vm {
    pub pid: u32,
    pub port: u16,
    /// Other forwarded guest ports: guest port → port on 127.0.0.1.
    pub forwards: std::collections::BTreeMap<u16, u16>,
}

/// qemu's version line: saved states only load under the version that wrote them.
pub fn qemu_version() -> Result<String> {
    let qemu = require_tool("qemu-system-x86_64", "qemu-system-x86")?;
    let out = Command::new(qemu).arg("--version").stdin(Stdio::null()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// A qcow2 overlay on `backing` (relative paths are relative to the overlay's folder).
pub fn create_overlay(path: &Path, backing: &Path, backing_format: &str) -> Result<()> {
    let qemu_img = require_tool("qemu-img", "qemu-utils")?;
    let out = Command::new(qemu_img)
        .args(["create", "-q", "-f", "qcow2", "-F", backing_format, "-b"])
        .arg(backing)
        .arg(path)
        .current_dir(path.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!("qemu-img create {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A path inside a qemu option list, where a comma is written twice.
fn opt_path(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Is `pid` a live qemu started for `marker` (a path on its command line)?
pub fn is_running(pid: u32, marker: &Path) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let text = String::from_utf8_lossy(&cmdline);
            text.contains("qemu-system") && text.contains(&marker.display().to_string())
        }
        Err(_) => false,
    }
}

pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Stop whatever qemu a pid file names, if it still runs (used to clear an interrupted build).
pub fn kill_from_pid_file(pid_file: &Path) {
    if let (Some(pid), Some(dir)) = (read_pid(pid_file), pid_file.parent())
        && is_running(pid, dir)
    {
        Vm { pid, port: 0, forwards: Default::default() }.kill();
    }
}

impl Vm {
    /// Start qemu daemonized on `disk`; with `incoming`, resume the saved state instead of booting.
    pub fn start(
        image: &Image,
        spec: &InstanceSpec,
        files: &VmFiles,
        disk: &Path,
        incoming: Option<&Path>,
    ) -> Result<Vm> {
        let qemu = require_tool("qemu-system-x86_64", "qemu-system-x86")?;
        for stale in [&files.pid, &files.qmp] {
            let _ = fs::remove_file(stale);
        }
        let (machine, cpu) = match image.accel {
            Accel::Kvm => ("q35,accel=kvm", "host"),
            _ => ("q35,accel=tcg", "max"),
        };
        // A port that was free a moment ago can be taken by the time qemu binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let mut forwards = std::collections::BTreeMap::new();
            let mut netdev = format!("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22");
            for guest in &spec.ports {
                let local = free_port()?;
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{local}-:{guest}"));
                forwards.insert(*guest, local);
            }
            let mut cmd = Command::new(&qemu);
            cmd.args(["-machine", machine, "-cpu", cpu])
                .args(["-m", &spec.memory_mib.to_string(), "-smp", &spec.cpus.to_string()])
                .arg("-kernel")
                .arg(image.kernel())
                .arg("-initrd")
                .arg(image.initrd())
                .args(["-append", KERNEL_ARGS])
                .arg("-drive")
                .arg(format!("file={},if=none,id=d0,format=qcow2", opt_path(disk)))
                .arg("-netdev")
                .arg(&netdev)
                .args(DEVICE_OPTIONS)
                .arg("-serial")
                .arg(format!("file:{}", opt_path(&files.console)))
                .arg("-qmp")
                .arg(format!("unix:{},server=on,wait=off", opt_path(&files.qmp)))
                .arg("-pidfile")
                .arg(&files.pid)
                .arg("-D")
                .arg(&files.log)
                .arg("-daemonize");
            if let Some(state) = incoming {
                cmd.arg("-incoming").arg(format!("exec:zstd -dcq {}", q(&state.display().to_string())?));
            }
            // Never inherit stdout: a plugin's stdout is its protocol channel.
            let (out, err) = append_log(&files.log)?;
            let status = cmd.stdin(Stdio::null()).stdout(out).stderr(err).status()?;
            if status.success() {
                let pid = read_pid(&files.pid).context("qemu started but wrote no pid file")?;
                let vm = Vm { pid, port, forwards };
                if incoming.is_some() {
                    vm.resume(files)?;
                }
                return Ok(vm);
            }
            last_error = tail(&files.log, 5);
            if !last_error.contains("host forwarding") {
                break;
            }
        }
        bail!("qemu did not start: {last_error} (log: {})", files.log.display())
    }

    /// After `-incoming`, qemu loads the state then stays paused: wait for the load, then `cont`.
    fn resume(&self, files: &VmFiles) -> Result<()> {
        let mut qmp = Qmp::connect(&files.qmp, Duration::from_secs(10))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let state = qmp.run_state()?;
            match state.as_str() {
                "inmigrate" if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                "inmigrate" => bail!("loading the saved VM state took over 2 minutes"),
                "running" => return Ok(()),
                "paused" | "prelaunch" | "postmigrate" => {
                    qmp.execute("cont", None)?;
                    return Ok(());
                }
                other => bail!("the resumed VM is in state {other:?} (log: {})", files.log.display()),
            }
        }
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Wait until the guest answers SSH as root and systemd reports running or degraded; set its clock
    /// (a resumed guest still lives at snapshot time) and, when given, its host name.
    pub fn wait_ready(
        &self,
        image: &Image,
        files: &VmFiles,
        timeout: Duration,
        hostname: Option<&str>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<()> {
        fs::write(&files.known_hosts, format!("[127.0.0.1]:{} {}\n", self.port, image.host_key()?))?;
        let target = SshTarget {
            address: "127.0.0.1".into(),
            port: Some(self.port),
            user: Some("root".into()),
            identity_file: Some(image.ssh_key().display().to_string()),
            known_hosts: Some(files.known_hosts.display().to_string()),
            connect_timeout_ms: 5_000,
            timeout_ms: 900_000,
            retry: Retry { attempts: 1, base_delay_ms: 0, max_delay_ms: 0 },
            ..SshTarget::default()
        };
        let deadline = Instant::now() + timeout;
        let mut transport = loop {
            match SshTransport::connect(&target, false, &Credentials::default()) {
                Ok(t) => break t,
                Err(e) => {
                    if !self.alive() {
                        bail!(
                            "qemu exited while booting: {} (console: {})",
                            tail(&files.log, 5),
                            files.console.display()
                        );
                    }
                    if Instant::now() > deadline {
                        return Err(e.context(format!(
                            "the guest did not answer SSH within {} s (console: {})",
                            timeout.as_secs(),
                            files.console.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        };
        let now = chrono::Utc::now().timestamp();
        let mut script = format!("set -eu\ndate -s @{now} >/dev/null\n");
        if let Some(name) = hostname {
            let name = q(name)?;
            script.push_str(&format!(
                "hostname {name}\nprintf '%s\\n' {name} > /etc/hostname\n\
                 sed -i \"s/^127.0.1.1 .*/127.0.1.1 $(hostname)/\" /etc/hosts\n"
            ));
        }
        script.push_str(
            "state=$(timeout 600 systemctl is-system-running --wait 2>/dev/null || true)\necho \"$state\"\n\
             case $state in running|degraded) ;; *) systemctl --failed --no-legend --plain | head -5 >&2; exit 3;; esac\n",
        );
        progress("waiting for systemd in the guest");
        let out = transport.run_script(script.as_bytes(), &mut |_| {})?;
        if out.status != 0 {
            bail!(
                "systemd in the guest did not come up ({}): {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                out.stderr_text()
            );
        }
        Ok(())
    }

    /// Freeze the VM and write its RAM and device state to `state` (zstd), then stop qemu.
    pub fn save_state(&self, files: &VmFiles, state: &Path) -> Result<()> {
        let mut qmp = Qmp::connect(&files.qmp, Duration::from_secs(10))?;
        qmp.execute("stop", None)?;
        let partial = state.with_extension("partial");
        let uri = format!("exec:zstd -3 -q > {}", q(&partial.display().to_string())?);
        qmp.execute("migrate", Some(serde_json::json!({"uri": uri})))?;
        qmp.wait_migration(Duration::from_secs(300))?;
        fs::rename(&partial, state)?;
        let _ = qmp.execute("quit", None);
        self.wait_exit(Duration::from_secs(15));
        Ok(())
    }

    fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.alive() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    /// Stop qemu: TERM, then KILL when it does not go within a few seconds.
    pub fn kill(&self) {
        // SAFETY: signalling a pid read from our own pid file and checked to be our qemu.
        unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        if !self.wait_exit(Duration::from_secs(10)) {
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
            self.wait_exit(Duration::from_secs(5));
        }
    }
}

/// The last lines of a log, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// Does a stock kernel boot under this machine's KVM? Boot the image's kernel with `-cpu host` for a
/// few seconds and look for its banner on the serial console.
pub fn kvm_boots_kernel(image: &Image, cache: &Path) -> Result<bool> {
    let qemu = require_tool("qemu-system-x86_64", "qemu-system-x86")?;
    let console = cache.join("kvm-probe.console");
    let _ = fs::remove_file(&console);
    let mut child = Command::new(qemu)
        .args(["-machine", "q35,accel=kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none"])
        .args(["-no-reboot", "-append", "console=ttyS0 panic=-1"])
        .arg("-kernel")
        .arg(image.kernel())
        .arg("-serial")
        .arg(format!("file:{}", opt_path(&console)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut boots = false;
    while Instant::now() < deadline {
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&console) {
            let _ = f.read_to_string(&mut text);
        }
        if text.contains("Linux version") {
            boots = true;
            break;
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(boots)
}
