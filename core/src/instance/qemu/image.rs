//! The shared image cache: a Debian root filesystem built once with mmdebstrap (`image-KEY/`), and under
//! it a booted-and-saved VM state per machine shape (`snapshot-KEY/`) that instances resume from in
//! seconds. Each is built in a `.build` folder and renamed into place, under one lock per image.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::vm::{self, Vm, VmFiles};
use super::{Accel, require_tool, run_logged};
use crate::instance::{FileLock, InstanceSpec, read_json, write_json};

const SETUP_HOOK: &str = include_str!("setup-hook.sh");
const CUSTOMIZE_HOOK: &str = include_str!("customize-hook.sh");
/// Packages every image has: systemd as PID 1, sshd, a kernel, sudo.
const BASE_PACKAGES: &[&str] = &[
    "systemd-sysv",
    "udev",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "linux-image-amd64",
    "sudo",
    "iproute2",
];

/// A built image (root filesystem, kernel, keys) and the saved VM state instances resume from.
#[derive(Clone, Debug)]
pub struct Image {
    pub key: String,
    pub dir: PathBuf,
    pub snapshot_dir: PathBuf,
    pub accel: Accel,
}

#[derive(Serialize, Deserialize)]
struct ImageManifest {
    key: String,
    suite: String,
    packages: Vec<String>,
    mirror: String,
    built_at: String,
}

#[derive(Serialize, Deserialize)]
struct SnapshotManifest {
    key: String,
    qemu: String,
    accel: Accel,
    memory_mib: u64,
    cpus: u64,
    built_at: String,
}

impl Image {
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    pub fn initrd(&self) -> PathBuf {
        self.dir.join("initrd.img")
    }
    /// The private key that logs in as root (and as the sudo user `hk`) on every guest of this image.
    pub fn ssh_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    /// The guest's SSH host key (public half), recorded in each instance's known_hosts.
    pub fn host_key(&self) -> Result<String> {
        let path = self.dir.join("ssh_host_ed25519_key.pub");
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(text.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
    }
    pub fn snapshot_disk(&self) -> PathBuf {
        self.snapshot_dir.join("disk.qcow2")
    }
    pub fn snapshot_state(&self) -> PathBuf {
        self.snapshot_dir.join("ready.state.zst")
    }
    /// `image-KEY/snapshot-KEY`, as shown by `hk instance status`.
    pub fn label(&self) -> String {
        let snap =
            self.snapshot_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        format!("{}/{snap}", self.key)
    }
}

fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..8])
}

fn packages_of(spec: &InstanceSpec) -> Vec<String> {
    let mut all: Vec<String> = BASE_PACKAGES.iter().map(|p| p.to_string()).collect();
    all.extend(spec.packages.iter().cloned());
    all.sort();
    all.dedup();
    all
}

/// Build what is missing for `spec` (image, snapshot) and return it; waits for another builder of the
/// same image instead of building twice.
pub fn ensure(spec: &InstanceSpec, cache: &Path, progress: &mut dyn FnMut(&str)) -> Result<Image> {
    fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the image cache {}", cache.display()))?;
    let packages = packages_of(spec);
    let image_key = short_hash(&["hk-image-1", &spec.suite, &packages.join(","), SETUP_HOOK, CUSTOMIZE_HOOK]);
    let dir = cache.join(format!("image-{image_key}"));
    let lock_path = cache.join(format!("image-{image_key}.lock"));
    let _lock = FileLock::wait(&lock_path, Duration::from_secs(30 * 60), &mut |holder| {
        progress(&format!(
            "waiting for another hk (pid {}) building the same image in {}",
            holder.map_or("?".into(), |p| p.to_string()),
            cache.display()
        ))
    })?;
    if !dir.join("image.json").is_file() {
        build_image(spec, &packages, &image_key, &dir, progress)?;
    }
    let qemu = vm::qemu_version()?;
    let mut image =
        Image { key: image_key, dir: dir.clone(), snapshot_dir: PathBuf::new(), accel: Accel::Tcg };
    image.accel = resolve_accel(spec.accel, cache, &image, &qemu, progress)?;
    let accel_name = format!("{:?}", image.accel);
    let snapshot_key = short_hash(&[
        "hk-snapshot-1",
        &qemu,
        &accel_name,
        &spec.memory_mib.to_string(),
        &spec.cpus.to_string(),
        &vm::DEVICE_OPTIONS.join(" "),
    ]);
    image.snapshot_dir = dir.join(format!("snapshot-{snapshot_key}"));
    if !image.snapshot_dir.join("snapshot.json").is_file() {
        build_snapshot(spec, &mut image, &snapshot_key, &qemu, progress)?;
    }
    Ok(image)
}

/// The mirror apt on this machine uses for `suite` (deb822 `.sources` or one-line `sources.list`).
fn local_mirror(suite: &str) -> Option<String> {
    let mut files: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "sources")) {
        let text = fs::read_to_string(path).unwrap_or_default();
        for stanza in text.split("\n\n") {
            let field =
                |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()));
            let suites = field("Suites:").unwrap_or_default();
            if suites.split_whitespace().any(|s| s == suite)
                && let Some(uri) = field("URIs:").and_then(|u| u.split_whitespace().next().map(String::from))
            {
                return Some(uri);
            }
        }
    }
    let text = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with('[')).collect();
        (words.len() >= 3 && words[0] == "deb" && words[2] == suite).then(|| words[1].to_string())
    })
}

fn build_image(
    spec: &InstanceSpec,
    packages: &[String],
    key: &str,
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let mmdebstrap = require_tool("mmdebstrap", "mmdebstrap")?;
    let mkfs = require_tool("mkfs.ext4", "e2fsprogs")?;
    require_tool("ssh-keygen", "openssh-client")?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "building the {} image needs root (mmdebstrap --mode=root, chroot): run `hk instance ensure` once as root; later runs reuse the cache",
            spec.suite
        );
    }
    let mirror = spec
        .mirror
        .clone()
        .or_else(|| local_mirror(&spec.suite))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string());
    let build = dir.with_extension("build");
    if build.exists() {
        fs::remove_dir_all(&build).with_context(|| format!("cannot clear {}", build.display()))?;
    }
    fs::create_dir_all(&build)?;
    let log = build.join("build.log");
    let tree = build.join("tree");
    let key_file = build.join("id_ed25519");
    run_logged(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "hk-instance", "-f"])
            .arg(&key_file),
        "ssh-keygen",
        &log,
    )?;
    fs::write(build.join("setup-hook.sh"), SETUP_HOOK)?;
    fs::write(build.join("customize-hook.sh"), CUSTOMIZE_HOOK)?;
    progress(&format!(
        "building the Debian {} image from {mirror} with mmdebstrap (1–2 minutes, once per machine; log: {})",
        spec.suite,
        log.display()
    ));
    let hook = |name: &str| format!("sh {} \"$1\"", build.join(name).display());
    run_logged(
        Command::new(mmdebstrap)
            .args(["--mode=root", "--variant=minbase", "--format=directory"])
            .arg(format!("--include={}", packages.join(",")))
            .args([
                "--dpkgopt=force-unsafe-io",
                "--dpkgopt=force-confold",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
            ])
            .arg(format!("--setup-hook={}", hook("setup-hook.sh")))
            .arg(format!("--customize-hook={}", hook("customize-hook.sh")))
            .env("HK_GUEST_KEY", build.join("id_ed25519.pub"))
            .arg(&spec.suite)
            .arg(&tree)
            .arg(&mirror),
        "mmdebstrap",
        &log,
    )?;
    // mmdebstrap empties machine-id at the end; systemd would then wait for first-boot setup.
    let machine_id: String = short_hash(&[key, &chrono::Utc::now().to_rfc3339()]).repeat(2);
    fs::write(tree.join("etc/machine-id"), format!("{machine_id}\n"))?;
    let boot = tree.join("boot");
    let find = |prefix: &str| -> Result<PathBuf> {
        fs::read_dir(&boot)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
            .with_context(|| format!("the image has no {prefix}* in /boot (see {})", log.display()))
    };
    fs::copy(find("vmlinuz-")?, build.join("vmlinuz"))?;
    fs::copy(find("initrd.img-")?, build.join("initrd.img"))?;
    fs::copy(tree.join("etc/ssh/ssh_host_ed25519_key.pub"), build.join("ssh_host_ed25519_key.pub"))?;
    progress("writing the root filesystem (4 GiB sparse)");
    run_logged(
        Command::new(mkfs)
            .args(["-q", "-F", "-L", "hkroot", "-d"])
            .arg(&tree)
            .arg(build.join("rootfs.img"))
            .arg("4G"),
        "mkfs.ext4",
        &log,
    )?;
    fs::remove_dir_all(&tree).with_context(|| format!("cannot remove {}", tree.display()))?;
    set_read_only(&build.join("rootfs.img"))?;
    write_json(
        &build.join("image.json"),
        &ImageManifest {
            key: key.to_string(),
            suite: spec.suite.clone(),
            packages: packages.to_vec(),
            mirror,
            built_at: chrono::Utc::now().to_rfc3339(),
        },
    )?;
    if dir.exists() {
        fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace the incomplete {}", dir.display()))?;
    }
    fs::rename(&build, dir).with_context(|| format!("cannot move the image into {}", dir.display()))?;
    Ok(())
}

fn set_read_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o444))
        .with_context(|| format!("cannot make {} read-only", path.display()))
}

/// Boot the image once, wait until systemd is up, and save the whole VM (RAM + devices) next to a disk
/// overlay frozen at the same moment.
fn build_snapshot(
    spec: &InstanceSpec,
    image: &mut Image,
    key: &str,
    qemu: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    require_tool("zstd", "zstd")?;
    let final_dir = image.snapshot_dir.clone();
    let build = final_dir.with_extension("build");
    if build.exists() {
        vm::kill_from_pid_file(&build.join("qemu.pid"));
        fs::remove_dir_all(&build).with_context(|| format!("cannot clear {}", build.display()))?;
    }
    fs::create_dir_all(&build)?;
    // A relative backing file keeps the overlay valid after the folder is renamed into place.
    vm::create_overlay(&build.join("disk.qcow2"), Path::new("../rootfs.img"), "raw")?;
    progress(&format!(
        "first boot of the image to save a ready snapshot ({} emulation: about a minute)",
        if image.accel == Accel::Kvm { "KVM" } else { "software" }
    ));
    let files = VmFiles::in_dir(&build);
    let vm = Vm::start(image, spec, &files, &build.join("disk.qcow2"), None)?;
    let ready = vm.wait_ready(image, &files, Duration::from_secs(600), None, progress);
    let result = ready.and_then(|_| {
        progress("saving the booted VM (RAM and devices, zstd)");
        vm.save_state(&files, &build.join("ready.state.zst"))
    });
    if let Err(e) = result {
        vm.kill();
        return Err(e.context(format!("the first boot did not finish; console: {}", files.console.display())));
    }
    set_read_only(&build.join("disk.qcow2"))?;
    for leftover in [&files.pid, &files.qmp] {
        let _ = fs::remove_file(leftover);
    }
    write_json(
        &build.join("snapshot.json"),
        &SnapshotManifest {
            key: key.to_string(),
            qemu: qemu.to_string(),
            accel: image.accel,
            memory_mib: spec.memory_mib,
            cpus: spec.cpus,
            built_at: chrono::Utc::now().to_rfc3339(),
        },
    )?;
    fs::rename(&build, &final_dir)
        .with_context(|| format!("cannot move the snapshot into {}", final_dir.display()))?;
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct KvmProbe {
    qemu: String,
    host_kernel: String,
    kernel_boots: bool,
}

/// `auto`: KVM when /dev/kvm is usable and a stock kernel really boots under it (some hosts offer a
/// paravirtual KVM that only runs special guest kernels); checked once per machine and qemu version.
fn resolve_accel(
    wanted: Accel,
    cache: &Path,
    image: &Image,
    qemu: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Accel> {
    let kvm_usable = fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
    match wanted {
        Accel::Tcg => return Ok(Accel::Tcg),
        Accel::Kvm if !kvm_usable => bail!("accel: kvm was asked for, but /dev/kvm cannot be opened here"),
        Accel::Kvm => return Ok(Accel::Kvm),
        Accel::Auto if !kvm_usable => return Ok(Accel::Tcg),
        Accel::Auto => {}
    }
    let host_kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let probe_file = cache.join("kvm-probe.json");
    if let Some(probe) = read_json::<KvmProbe>(&probe_file)?
        && probe.qemu == qemu
        && probe.host_kernel == host_kernel
    {
        return Ok(if probe.kernel_boots { Accel::Kvm } else { Accel::Tcg });
    }
    progress("checking whether a stock kernel boots under this machine's KVM");
    let kernel_boots = vm::kvm_boots_kernel(image, cache)?;
    write_json(&probe_file, &KvmProbe { qemu: qemu.to_string(), host_kernel, kernel_boots })?;
    Ok(if kernel_boots { Accel::Kvm } else { Accel::Tcg })
}
