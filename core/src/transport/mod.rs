//! Transports run generated scripts on a host: `sh -s` with the script on stdin, stdout streamed back
//! line by line, stderr collected. Nothing outside this module touches processes or channels.

mod known_hosts;
mod local;
pub mod pool;
mod ssh;

use std::collections::HashMap;

use std::io::Read;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub use local::LocalTransport;
pub use ssh::{Retry, SshTarget, SshTransport};

use crate::fields::Obj;
use crate::quote::q;

/// How to reach a host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Target {
    Local {
        #[serde(default)]
        sudo: bool,
    },
    Ssh {
        #[serde(flatten)]
        ssh: SshTarget,
        #[serde(default)]
        sudo: bool,
    },
}

/// Secrets for connecting, resolved by the caller at run time and never stored in a plan.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// A password given directly (e.g. `--password`).
    pub password: Option<String>,
    /// Values of the environment variables that targets name in `password_env`.
    pub env: HashMap<String, String>,
}

impl Credentials {
    pub fn password_for(&self, env_name: Option<&str>) -> Option<String> {
        self.password.clone().or_else(|| env_name.and_then(|name| self.env.get(name).cloned()))
    }
}

/// Flags that override how declared hosts are reached (`--user`, `--port`, …).
#[derive(Clone, Debug, Default)]
pub struct TargetOverrides {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_file: Option<String>,
    pub known_hosts: Option<String>,
    pub password_env: Option<String>,
    pub accept_unknown_host: bool,
    pub sudo: bool,
}

impl Target {
    pub fn local() -> Target {
        Target::Local { sudo: false }
    }

    /// `{local: true}` or `{address, ssh: {user, port, identity_file, known_hosts, password_env,
    /// retry: {attempts, base_delay, max_delay}, connect_timeout, timeout}}`, both with `sudo`.
    pub fn from_config(obj: &mut Obj) -> Result<Target> {
        let local = obj.opt_bool("local")?.unwrap_or(false);
        let sudo = obj.opt_bool("sudo")?.unwrap_or(false);
        let address = obj.opt_str("address")?;
        match (local, address) {
            (true, Some(_)) => {
                obj.fail("address", "a host is either `local: true` or has an address, not both")
            }
            (true, None) => Ok(Target::Local { sudo }),
            (false, None) => obj.fail("address", "missing: give the host an address (or `local: true`)"),
            (false, Some(address)) => {
                if address.is_empty() {
                    return obj.fail("address", "empty address");
                }
                let mut ssh = SshTarget { address, ..SshTarget::default() };
                ssh.connect_timeout_ms = 10_000;
                ssh.timeout_ms = 600_000;
                if let Some(mut o) = obj.opt_record("ssh")? {
                    ssh.user = o.opt_str("user")?;
                    if let Some(port) = o.opt_u64("port")? {
                        ssh.port =
                            Some(u16::try_from(port).or_else(|_| o.fail("port", "a port is 1-65535"))?);
                    }
                    ssh.identity_file = o.opt_str("identity_file")?.map(|p| o.local_path(&p));
                    ssh.known_hosts = o.opt_str("known_hosts")?.map(|p| o.local_path(&p));
                    ssh.password_env = o.opt_str("password_env")?;
                    ssh.accept_unknown_host = o.opt_bool("silently_accept_hosts")?.unwrap_or(false);
                    if let Some(ms) = o.opt_duration_ms("connect_timeout")? {
                        ssh.connect_timeout_ms = ms;
                    }
                    if let Some(ms) = o.opt_duration_ms("timeout")? {
                        ssh.timeout_ms = ms;
                    }
                    if let Some(mut r) = o.opt_record("retry")? {
                        let default = Retry::default();
                        ssh.retry = Retry {
                            attempts: r
                                .opt_u64("attempts")?
                                .map_or(default.attempts, |a| a.clamp(1, 100) as u32),
                            base_delay_ms: r.opt_duration_ms("base_delay")?.unwrap_or(default.base_delay_ms),
                            max_delay_ms: r.opt_duration_ms("max_delay")?.unwrap_or(default.max_delay_ms),
                        };
                        r.finish()?;
                    }
                    o.finish()?;
                }
                Ok(Target::Ssh { ssh, sudo })
            }
        }
    }

    /// A target for `--remote ADDRESS`.
    pub fn remote(address: &str) -> Target {
        Target::Ssh {
            ssh: SshTarget {
                address: address.to_string(),
                connect_timeout_ms: 10_000,
                timeout_ms: 600_000,
                ..SshTarget::default()
            },
            sudo: false,
        }
    }

    pub fn apply_overrides(&mut self, o: &TargetOverrides) {
        match self {
            Target::Local { sudo } => *sudo |= o.sudo,
            Target::Ssh { ssh, sudo } => {
                *sudo |= o.sudo;
                if o.user.is_some() {
                    ssh.user = o.user.clone();
                }
                if o.port.is_some() {
                    ssh.port = o.port;
                }
                if o.identity_file.is_some() {
                    ssh.identity_file = o.identity_file.clone();
                }
                if o.known_hosts.is_some() {
                    ssh.known_hosts = o.known_hosts.clone();
                }
                if o.password_env.is_some() {
                    ssh.password_env = o.password_env.clone();
                }
                ssh.accept_unknown_host |= o.accept_unknown_host;
            }
        }
    }

    /// Open a connection (for SSH: one authenticated session reused for every script).
    /// With the session pool on (`pool::enable`), a kept session to the same target is reused.
    pub fn connect(&self, credentials: &Credentials) -> Result<Box<dyn Transport>> {
        match self {
            Target::Local { sudo } => Ok(Box::new(LocalTransport::new(*sudo))),
            Target::Ssh { ssh, sudo } if pool::enabled() => {
                // A session is only reused with the credentials it was opened with (a password only
                // as a hash, in memory).
                let mut key = serde_json::to_string(self)?;
                if let Some(password) = credentials.password_for(ssh.password_env.as_deref()) {
                    use sha2::Digest;
                    key.push_str(&hex::encode(sha2::Sha256::digest(password.as_bytes())));
                }
                let transport = match pool::take(&key) {
                    Some(kept) => kept,
                    None => SshTransport::connect(ssh, *sudo, credentials)?,
                };
                Ok(Box::new(pool::Pooled::new(key, transport)))
            }
            Target::Ssh { ssh, sudo } => Ok(Box::new(SshTransport::connect(ssh, *sudo, credentials)?)),
        }
    }

    /// The environment variable holding this target's password, if any.
    pub fn password_env(&self) -> Option<&str> {
        match self {
            Target::Ssh { ssh, .. } => ssh.password_env.as_deref(),
            Target::Local { .. } => None,
        }
    }
}

/// What a script printed and how it ended.
#[derive(Debug, Default)]
pub struct ScriptOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ScriptOutput {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// `sudo -n` fails fast when it needs a password; say so plainly instead of passing on its words.
pub(crate) fn sudo_failure(output: &ScriptOutput, host: &str) -> Result<()> {
    let stderr = output.stderr_text();
    if output.status != 0
        && stderr.starts_with("sudo:")
        && (stderr.contains("password is required") || stderr.contains("terminal is required"))
    {
        bail!(
            "sudo on {host} needs a password; hk runs `sudo -n`: allow this user passwordless sudo (NOPASSWD) or connect as root ({stderr})"
        );
    }
    Ok(())
}

pub trait Transport: Send {
    /// Run the shell command line `command` (under `sudo -n` when the target says so) with `input` on
    /// its stdin. `on_line` sees every complete stdout line as soon as it arrives.
    fn exec(
        &mut self,
        command: &str,
        input: Box<dyn Read + Send>,
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput>;

    /// Run the shell command line `command` until it ends or `keep_going()` answers false, its stdin
    /// held open all along: closing it is how the host side learns to stop (see `engine::follow`).
    /// `on_line` sees every stdout line as it arrives and nothing is kept, so a follower may run for
    /// hours; no output timeout applies. The exit status, or `None` when stopped.
    fn follow(
        &mut self,
        command: &str,
        on_line: &mut dyn FnMut(&[u8]),
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<i32>>;

    /// How this transport reaches its host, for messages.
    fn describe(&self) -> String;

    /// Run `script` through `sh -s` (over SSH, in the session's resident shell: see `ssh.rs`).
    fn run_script(&mut self, script: &[u8], on_line: &mut dyn FnMut(&[u8])) -> Result<ScriptOutput> {
        self.exec(SCRIPT_SHELL, Box::new(std::io::Cursor::new(script.to_vec())), on_line)
    }

    /// `run_script`, where a resident shell first runs `setup` at its top level, once per shell:
    /// what it leaves (variables, open fds, a helper process) serves every later script of the
    /// session. Without a resident shell, `setup` is not run: a script must work without it.
    fn run_script_with_setup(
        &mut self,
        setup: &'static str,
        script: &[u8],
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput> {
        let _ = setup;
        self.run_script(script, on_line)
    }

    /// `run_script` for a script that only reads, never exits, and leaves nothing behind but shell
    /// variables of its own (a contained probe): a resident shell runs it in place, without the
    /// subshell (a process) that keeps any other script's options, traps and exports to itself.
    fn run_contained(&mut self, script: &[u8], on_line: &mut dyn FnMut(&[u8])) -> Result<ScriptOutput> {
        self.run_script(script, on_line)
    }

    /// Keep what a script ran ahead for a later command of this session (see `engine::read_ahead`):
    /// a session kept between commands holds it until anything else runs on it. Whether it was
    /// kept: other transports keep nothing.
    fn keep(&mut self, kept: Kept) -> bool {
        let _ = kept;
        false
    }

    /// The kept item `wanted` picks, taken (so it serves once); the others stay.
    fn take_kept(&mut self, wanted: &dyn Fn(&Kept) -> bool) -> Option<Kept> {
        let _ = wanted;
        None
    }

    /// Whether [`Transport::keep`] keeps anything, so running ahead is worth it.
    fn keeps_readings(&self) -> bool {
        false
    }

    /// The reading kept on this session, taken.
    fn take_reading(&mut self) -> Option<crate::script::probe::Reading> {
        match self.take_kept(&|k| matches!(k, Kept::Reading(_)))? {
            Kept::Reading(reading) => Some(*reading),
            Kept::Output { .. } => None,
        }
    }

    /// What the script `canonical` (as written with [`AHEAD_NONCE`]) printed when it ran ahead,
    /// taken: the nonce it really ran with, and its stdout.
    fn take_output(&mut self, canonical: &str) -> Option<(String, Vec<u8>)> {
        match self.take_kept(&|k| matches!(k, Kept::Output { script, .. } if script == canonical))? {
            Kept::Output { nonce, stdout, .. } => Some((nonce, stdout)),
            Kept::Reading(_) => None,
        }
    }

    /// Stream a local file into `command` (a shell command line reading stdin) on one exec channel,
    /// in large writes; `progress(sent, total)` after every read, which stops the upload by
    /// answering `false`.
    fn upload(
        &mut self,
        local: &std::path::Path,
        command: &str,
        mut progress: Box<dyn FnMut(u64, u64) -> bool + Send>,
    ) -> Result<()> {
        let file = std::fs::File::open(local).with_context(|| format!("cannot open {}", local.display()))?;
        let total = file.metadata().map(|m| m.len()).unwrap_or(0);
        let reader = crate::progress::CountingReader {
            inner: file,
            done: 0,
            on_read: move |done| progress(done, total),
        };
        let out = self.exec(command, Box::new(reader), &mut |_| {})?;
        if out.status != 0 {
            bail!("uploading {} to {} failed: {}", local.display(), self.describe(), out.stderr_text());
        }
        Ok(())
    }
}

/// What a script ran ahead for a later command of the same session.
#[derive(Clone)]
pub enum Kept {
    /// A plan's reading (taken when it holds all the plan asks).
    Reading(Box<crate::script::probe::Reading>),
    /// A script's output: `script` is its text written with [`AHEAD_NONCE`], so the command that
    /// would run it finds it by building the same; `nonce` is the one it ran with.
    Output { script: String, nonce: String, stdout: Vec<u8> },
}

/// The nonce a script run ahead is named by (never the one it runs with).
pub const AHEAD_NONCE: &str = "hk-ahead";

/// The command that reads a script on stdin.
pub const SCRIPT_SHELL: &str = "sh -s";

/// `command` as run on the target: under `sudo -n` when asked (a script shell directly, anything
/// else through `sh -c`).
pub fn with_sudo(command: &str, sudo: bool) -> Result<String> {
    Ok(match (sudo, command == SCRIPT_SHELL) {
        (false, _) => command.to_string(),
        (true, true) => format!("sudo -n {command}"),
        (true, false) => format!("sudo -n sh -c {}", q(command)?),
    })
}

/// Splits a byte stream into lines for `on_line` while keeping every byte (or, streaming, only the
/// unfinished last line).
pub(crate) struct LineSplitter {
    pub all: Vec<u8>,
    consumed: usize,
    keep: bool,
}

impl LineSplitter {
    pub fn new() -> Self {
        LineSplitter { all: Vec::new(), consumed: 0, keep: true }
    }

    /// A splitter that forgets every line once `on_line` has seen it.
    pub fn streaming() -> Self {
        LineSplitter { all: Vec::new(), consumed: 0, keep: false }
    }

    pub fn push(&mut self, chunk: &[u8], on_line: &mut dyn FnMut(&[u8])) {
        self.all.extend_from_slice(chunk);
        while let Some(pos) = memchr::memchr(b'\n', &self.all[self.consumed..]) {
            let end = self.consumed + pos;
            on_line(&self.all[self.consumed..end]);
            self.consumed = end + 1;
        }
        if !self.keep {
            self.all.drain(..self.consumed);
            self.consumed = 0;
        }
    }

    /// The last line when the stream ended without a newline.
    pub fn finish(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if self.consumed < self.all.len() {
            on_line(&self.all[self.consumed..]);
            self.consumed = self.all.len();
        }
    }
}
