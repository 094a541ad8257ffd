//! The SSH transport (ssh2 on the system OpenSSL): one authenticated session per host, each script run
//! in ONE exec of `sh -s` with the script on stdin, stdout and stderr read together without blocking.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use ssh2::{CheckResult, KnownHostFileKind, MethodType, Session};

use super::known_hosts::{fingerprint, key_types_for, lookup_name};
use super::{Credentials, LineSplitter, ScriptOutput, Transport, sudo_failure, with_sudo};

const WRITE_CHUNK: usize = 256 * 1024;

const FAST_CIPHERS: &str =
    "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,aes256-ctr";

/// Connection retries: only establishing the connection is retried, never a command.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 4, base_delay_ms: 250, max_delay_ms: 4000 }
    }
}

impl Retry {
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.min(16);
        Duration::from_millis(self.base_delay_ms.saturating_mul(factor).min(self.max_delay_ms))
    }
}

/// How to reach a host over SSH. Never holds a secret: a password comes from `password_env` (a
/// variable name) or a flag, at connect time.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct SshTarget {
    /// Host name, address, or an alias from ~/.ssh/config.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default)]
    pub accept_unknown_host: bool,
    #[serde(default)]
    pub retry: Retry,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_connect_timeout() -> u64 {
    10_000
}

fn default_timeout() -> u64 {
    600_000
}

/// The parameters actually used after ~/.ssh/config.
struct Resolved {
    host: String,
    port: u16,
    user: String,
    identity_files: Vec<PathBuf>,
    known_hosts: PathBuf,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

impl SshTarget {
    /// Arguments that make OpenSSH's `ssh` reach this host as hk does (same address, port, user, key
    /// and known_hosts, host keys checked as strictly), before the remote command: for what needs a
    /// real terminal on the user's side, which the plugin's own channel cannot give.
    pub fn openssh_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(key) = &self.identity_file {
            args.extend(["-i".to_string(), key.clone(), "-o".into(), "IdentitiesOnly=yes".into()]);
        }
        if let Some(known) = &self.known_hosts {
            args.extend(["-o".to_string(), format!("UserKnownHostsFile={known}")]);
        }
        let strict = if self.accept_unknown_host { "accept-new" } else { "yes" };
        args.extend(["-o".to_string(), format!("StrictHostKeyChecking={strict}")]);
        args.extend(["-o".to_string(), format!("ConnectTimeout={}", self.connect_timeout_ms.div_ceil(1000))]);
        args.push(self.address.clone());
        args
    }

    fn resolve(&self) -> Resolved {
        let config = std::fs::File::open(home().join(".ssh/config")).ok().and_then(|file| {
            let mut reader = std::io::BufReader::new(file);
            ssh2_config::SshConfig::default()
                .parse(&mut reader, ssh2_config::ParseRule::ALLOW_UNKNOWN_FIELDS)
                .ok()
        });
        let params = config.map(|c| c.query(&self.address));
        let host = params.as_ref().and_then(|p| p.host_name.clone()).unwrap_or_else(|| self.address.clone());
        let port = self.port.or(params.as_ref().and_then(|p| p.port)).unwrap_or(22);
        let user = self
            .user
            .clone()
            .or(params.as_ref().and_then(|p| p.user.clone()))
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into());
        let identity_files =
            match (&self.identity_file, params.as_ref().and_then(|p| p.identity_file.clone())) {
                (Some(file), _) => vec![PathBuf::from(file)],
                (None, Some(files)) => files,
                (None, None) => ["id_ed25519", "id_ecdsa", "id_rsa"]
                    .iter()
                    .map(|n| home().join(".ssh").join(n))
                    .filter(|p| p.exists())
                    .collect(),
            };
        let known_hosts =
            self.known_hosts.as_ref().map(PathBuf::from).unwrap_or_else(|| home().join(".ssh/known_hosts"));
        Resolved { host, port, user, identity_files, known_hosts }
    }

    pub fn describe(&self) -> String {
        let r = self.resolve();
        format!("{}@{}:{}", r.user, r.host, r.port)
    }
}

/// Whether another attempt may succeed (the connection was never established).
enum Failure {
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

pub struct SshTransport {
    session: Session,
    socket: TcpStream,
    sudo: bool,
    label: String,
    timeout: Duration,
    /// The session's resident shell: a `sh -s` that runs every script of [`Transport::run_script`],
    /// each in a subshell framed by markers, waiting on its open stdin in between.
    resident: Option<ssh2::Channel>,
    /// The setups (see [`Transport::run_script_with_setup`]) the resident shell has run.
    setups: Vec<&'static str>,
    /// What scripts ran ahead for later commands, while the session waits in the pool.
    pub(super) kept: Vec<super::Kept>,
}

impl SshTransport {
    pub fn connect(target: &SshTarget, sudo: bool, credentials: &Credentials) -> Result<SshTransport> {
        let resolved = target.resolve();
        let label = format!("{}@{}:{}", resolved.user, resolved.host, resolved.port);
        let password = credentials.password_for(target.password_env.as_deref());
        let attempts = target.retry.attempts.max(1);
        let mut last = None;
        for attempt in 0..attempts {
            match try_connect(target, &resolved, password.as_deref()) {
                Ok((session, socket)) => {
                    super::pool::count_connection();
                    return Ok(SshTransport {
                        session,
                        socket,
                        sudo,
                        label,
                        timeout: Duration::from_millis(target.timeout_ms.max(1)),
                        resident: None,
                        setups: Vec::new(),
                        kept: Vec::new(),
                    });
                }
                Err(Failure::Permanent(e)) => return Err(e.context(format!("ssh to {label}"))),
                Err(Failure::Transient(e)) => {
                    last = Some(e);
                    if attempt + 1 < attempts {
                        std::thread::sleep(target.retry.delay(attempt));
                    }
                }
            }
        }
        let err = last.unwrap_or_else(|| anyhow!("no attempt was made"));
        Err(err.context(format!("ssh to {label}: cannot connect after {attempts} attempt(s)")))
    }
}

fn try_connect(
    target: &SshTarget,
    r: &Resolved,
    password: Option<&str>,
) -> Result<(Session, TcpStream), Failure> {
    let addrs: Vec<_> = (r.host.as_str(), r.port)
        .to_socket_addrs()
        .map_err(|e| Failure::Permanent(anyhow!("cannot resolve {}: {e}", r.host)))?
        .collect();
    let addr = addrs.first().ok_or_else(|| Failure::Permanent(anyhow!("{} has no address", r.host)))?;
    let timeout = Duration::from_millis(target.connect_timeout_ms.max(1));
    let tcp = TcpStream::connect_timeout(addr, timeout).map_err(|e| {
        let what = match e.kind() {
            ErrorKind::ConnectionRefused => "connection refused".to_string(),
            ErrorKind::TimedOut | ErrorKind::WouldBlock => format!("connection timed out after {timeout:?}"),
            _ => e.to_string(),
        };
        Failure::Transient(anyhow!("{addr}: {what}"))
    })?;
    // Without this every small exchange waits for a delayed ACK.
    let _ = tcp.set_nodelay(true);
    let socket = tcp.try_clone().map_err(|e| Failure::Transient(e.into()))?;
    let mut session = Session::new().map_err(|e| Failure::Permanent(e.into()))?;
    session.set_tcp_stream(tcp);
    session.set_timeout(target.connect_timeout_ms.min(u32::MAX as u64) as u32);

    // Ask for a host key type that known_hosts holds for this host.
    let known_text = std::fs::read_to_string(&r.known_hosts).unwrap_or_default();
    let types = key_types_for(&known_text, &lookup_name(&r.host, r.port));
    if !types.is_empty() {
        let _ = session.method_pref(MethodType::HostKey, &types.join(","));
    }
    // AEAD ciphers first (no separate MAC), ChaCha20-Poly1305 ahead of AES-GCM as OpenSSH orders
    // them: libssh2 encrypts AES one 16-byte block per call, ChaCha20 a whole packet at once, which
    // halves the client's CPU on uploads. A server without them falls back to the rest of the list.
    for dir in [MethodType::CryptCs, MethodType::CryptSc] {
        let _ = session.method_pref(dir, FAST_CIPHERS);
    }
    let timer = crate::trace::Timer::start("ssh handshake");
    session
        .handshake()
        .map_err(|e| Failure::Transient(anyhow!("SSH handshake with {}:{} failed: {e}", r.host, r.port)))?;
    timer.done(&format!("{}:{}", r.host, r.port));

    check_host_key(&session, target, r).map_err(Failure::Permanent)?;
    let timer = crate::trace::Timer::start("ssh auth");
    authenticate(&session, r, password)?;
    timer.done(&r.user);
    session.set_timeout(0);
    // Keepalives without a reply: an idle session's socket then stays silent, so anything readable
    // on it means the server went away (see `pool::socket_alive`).
    session.set_keepalive(false, 30);
    Ok((session, socket))
}

fn check_host_key(session: &Session, target: &SshTarget, r: &Resolved) -> Result<()> {
    let (key, _) = session.host_key().context("the server sent no host key")?;
    let print = fingerprint(key);
    let mut known = session.known_hosts()?;
    if r.known_hosts.exists() {
        known
            .read_file(&r.known_hosts, KnownHostFileKind::OpenSSH)
            .with_context(|| format!("cannot read {}", r.known_hosts.display()))?;
    }
    match known.check_port(&r.host, r.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::NotFound if target.accept_unknown_host => Ok(()),
        CheckResult::NotFound => bail!(
            "the host key of {} is not known ({print}); check it, then add it to {} (e.g. `ssh-keyscan -p {} {} >> {}`) or pass --silently-accept-hosts",
            lookup_name(&r.host, r.port),
            r.known_hosts.display(),
            r.port,
            r.host,
            r.known_hosts.display()
        ),
        CheckResult::Mismatch => bail!(
            "the host key of {} CHANGED: the server offers {print}, which differs from {}. Someone may be intercepting the connection, or the host was reinstalled; hk refuses to connect",
            lookup_name(&r.host, r.port),
            r.known_hosts.display()
        ),
        CheckResult::Failure => {
            bail!("cannot check the host key of {} against {}", r.host, r.known_hosts.display())
        }
    }
}

/// Whether a libssh2 error is the connection timing out or breaking (worth another attempt), not a
/// refusal.
fn transient_ssh_error(e: &ssh2::Error) -> bool {
    // LIBSSH2_ERROR_SOCKET_SEND, _SOCKET_RECV, _SOCKET_DISCONNECT, _TIMEOUT, _SOCKET_TIMEOUT
    matches!(e.code(), ssh2::ErrorCode::Session(-7 | -43 | -13 | -9 | -30))
}

fn authenticate(session: &Session, r: &Resolved, password: Option<&str>) -> Result<(), Failure> {
    let mut tried = Vec::new();
    // A server too slow to answer is not a refused key: say so, and let the caller retry.
    let broken = |e: &ssh2::Error| -> Option<Failure> {
        transient_ssh_error(e).then(|| Failure::Transient(anyhow!("authenticating as {}: {e}", r.user)))
    };
    if std::env::var_os("SSH_AUTH_SOCK").is_some()
        && let Ok(mut agent) = session.agent()
        && agent.connect().is_ok()
        && agent.list_identities().is_ok()
    {
        let identities = agent.identities().unwrap_or_default();
        tried.push(format!("ssh-agent ({} identities)", identities.len()));
        for identity in identities {
            if agent.userauth(&r.user, &identity).is_ok() && session.authenticated() {
                return Ok(());
            }
        }
    }
    for file in &r.identity_files {
        tried.push(format!("key {}", file.display()));
        match session.userauth_pubkey_file(&r.user, None, file, None) {
            Ok(()) if session.authenticated() => return Ok(()),
            Err(e) if let Some(failure) = broken(&e) => return Err(failure),
            _ => {}
        }
    }
    if let Some(password) = password {
        tried.push("password".into());
        match session.userauth_password(&r.user, password) {
            Ok(()) if session.authenticated() => return Ok(()),
            Err(e) if let Some(failure) = broken(&e) => return Err(failure),
            _ => {}
        }
    }
    if tried.is_empty() {
        return Err(Failure::Permanent(anyhow!(
            "no way to authenticate as {}: no ssh-agent, no key file, no password (--identity-file, --password-env)",
            r.user
        )));
    }
    Err(Failure::Permanent(anyhow!("authentication failed for {} (tried {})", r.user, tried.join(", "))))
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

/// libssh2's "would block" in a non-blocking session.
const EAGAIN: ssh2::ErrorCode = ssh2::ErrorCode::Session(-37);

impl SshTransport {
    /// Whether the connection still looks usable (checked between commands, never during one).
    pub(crate) fn alive(&mut self) -> bool {
        if super::pool::socket_alive(&self.socket) {
            return true;
        }
        // Something came in while idle. With a resident shell that may be the server's window
        // adjustment for the last leg's input: let libssh2 take it, and the session is gone only
        // if the shell's channel ended or the read fails.
        let Some(channel) = self.resident.as_mut() else { return false };
        self.session.set_blocking(false);
        let mut buf = [0u8; 256];
        let alive = match channel.read(&mut buf) {
            Err(e) if would_block(&e) => !channel.eof(),
            _ => false,
        };
        self.session.set_blocking(true);
        if !alive {
            self.resident = None;
        }
        alive
    }

    /// Tell the server this idle session is still wanted.
    pub(crate) fn keepalive(&self) {
        let _ = self.session.keepalive_send();
    }

    /// Runs a libssh2 call of a non-blocking session to completion, waiting on the socket here so
    /// that every wait acknowledges at once (see `wait_socket`).
    fn without_blocking<T>(&self, mut call: impl FnMut() -> Result<T, ssh2::Error>) -> Result<T> {
        let start = Instant::now();
        loop {
            match call() {
                Err(e) if e.code() == EAGAIN => {
                    if start.elapsed() > self.timeout {
                        bail!("{}: no answer for {:?}", self.label, self.timeout);
                    }
                    self.wait_socket(Duration::from_millis(200));
                }
                other => return Ok(other?),
            }
        }
    }

    /// A session channel running `command`.
    fn open_channel(&self, command: &str) -> Result<ssh2::Channel> {
        let mut channel = self
            .without_blocking(|| self.session.channel_session())
            .with_context(|| format!("{}: cannot open a channel", self.label))?;
        self.without_blocking(|| channel.exec(command))
            .with_context(|| format!("{}: cannot start `{command}`", self.label))?;
        Ok(channel)
    }

    /// Wait until the socket can move data in the direction libssh2 is blocked on.
    fn wait_socket(&self, max: Duration) {
        quick_ack(&self.socket);
        let dirs = self.session.block_directions();
        let mut events: libc::c_short = 0;
        if matches!(dirs, ssh2::BlockDirections::Inbound | ssh2::BlockDirections::Both) {
            events |= libc::POLLIN;
        }
        if matches!(dirs, ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both) {
            events |= libc::POLLOUT;
        }
        if events == 0 {
            events = libc::POLLIN;
        }
        let mut fd = libc::pollfd { fd: self.socket.as_raw_fd(), events, revents: 0 };
        let ms = max.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe {
            libc::poll(&mut fd, 1, ms);
        }
    }
}

impl SshTransport {
    /// One channel running `command_line`: the input sent, stdout and stderr read together. A
    /// follower (`keep_going` given) keeps its stdin open, has no output timeout and keeps no
    /// output; when `keep_going` answers false its channel is closed. The status is `None` then.
    fn run_channel(
        &mut self,
        command_line: &str,
        input: Box<dyn Read + Send>,
        on_line: &mut dyn FnMut(&[u8]),
        keep_going: Option<&dyn Fn() -> bool>,
    ) -> Result<(Option<i32>, ScriptOutput)> {
        let (status, output, _) = self.pump(Leg::Open(command_line), input, on_line, keep_going, None)?;
        Ok((status, output))
    }

    /// Send `input` on a channel — a new one running `leg`'s command, or the resident shell — and
    /// read stdout and stderr together until it ends. With `frame` (a leg of the resident shell),
    /// its stdin stays open and the reading stops at the leg's end markers: its status is theirs,
    /// and the channel comes back, waiting for the next leg.
    fn pump(
        &mut self,
        leg: Leg<'_>,
        mut input: Box<dyn Read + Send>,
        on_line: &mut dyn FnMut(&[u8]),
        keep_going: Option<&dyn Fn() -> bool>,
        frame: Option<&str>,
    ) -> Result<(Option<i32>, ScriptOutput, Option<ssh2::Channel>)> {
        self.session.set_blocking(false);
        let mut channel = match leg {
            Leg::Resident(channel) => channel,
            Leg::Open(command_line) => {
                let opened =
                    with_sudo(command_line, self.sudo).and_then(|command| self.open_channel(&command));
                match opened {
                    Ok(channel) => channel,
                    Err(e) => {
                        self.session.set_blocking(true);
                        return Err(e);
                    }
                }
            }
        };
        // Where each stream's end marker starts, once seen, and the leg's status.
        let (mut out_end, mut err_end, mut framed_status): (Option<usize>, Option<usize>, Option<i32>) =
            (None, None, None);
        let marker = frame.map(|nonce| format!("\n{nonce}"));

        let mut pending: Vec<u8> = Vec::new();
        let mut pending_at = 0usize;
        let mut input_done = false;
        let mut eof_sent = false;
        let mut stdout = if keep_going.is_some() { LineSplitter::streaming() } else { LineSplitter::new() };
        let mut stderr = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut last_progress = Instant::now();
        let mut last_keepalive = Instant::now();
        let mut stopped = false;
        let result: Result<()> = 'run: loop {
            if let Some(keep_going) = keep_going
                && !keep_going()
            {
                stopped = true;
                break Ok(());
            }
            let mut progress = false;
            loop {
                if pending_at == pending.len() && !input_done {
                    // Refill from the input in large chunks.
                    pending.resize(WRITE_CHUNK, 0);
                    match input.read(&mut pending) {
                        Ok(0) => {
                            input_done = true;
                            pending.clear();
                        }
                        Ok(n) => pending.truncate(n),
                        Err(e) => break 'run Err(anyhow!("{}: reading the input failed: {e}", self.label)),
                    }
                    pending_at = 0;
                }
                if pending_at == pending.len() {
                    break;
                }
                match channel.write(&pending[pending_at..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        pending_at += n;
                        progress = true;
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) => break 'run Err(anyhow!("{}: sending the input failed: {e}", self.label)),
                }
            }
            if input_done
                && pending_at == pending.len()
                && !eof_sent
                && keep_going.is_none()
                && frame.is_none()
            {
                match channel.send_eof() {
                    Ok(()) => eof_sent = true,
                    Err(e) if e.code() == EAGAIN => {}
                    Err(e) => break Err(anyhow!("{}: closing the script's input failed: {e}", self.label)),
                }
            }
            loop {
                match channel.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let seen = stdout.all.len();
                        match &marker {
                            // The end marker's line is the frame's, not the script's.
                            Some(m) => stdout.push(&buf[..n], &mut |line: &[u8]| {
                                if !line.starts_with(&m.as_bytes()[1..]) {
                                    on_line(line)
                                }
                            }),
                            None => stdout.push(&buf[..n], on_line),
                        }
                        progress = true;
                        if let (Some(m), None) = (&marker, out_end) {
                            (out_end, framed_status) = stdout_end(&stdout.all, seen, m);
                        }
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) => {
                        break 'run Err(anyhow!("{}: reading the script's output failed: {e}", self.label));
                    }
                }
            }
            loop {
                match channel.stderr().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let seen = stderr.len();
                        stderr.extend_from_slice(&buf[..n]);
                        progress = true;
                        if let (Some(m), None) = (&marker, err_end) {
                            let from = seen.saturating_sub(m.len() + 1);
                            err_end = memchr::memmem::find(&stderr[from..], format!("{m}\n").as_bytes())
                                .map(|at| from + at);
                        }
                    }
                    Err(e) if would_block(&e) => break,
                    Err(e) => {
                        break 'run Err(anyhow!("{}: reading the script's errors failed: {e}", self.label));
                    }
                }
            }
            if out_end.is_some() && err_end.is_some() {
                break Ok(());
            }
            // A resident shell that ended before its markers (sudo refused, a syntax error) ends
            // as any channel does.
            if channel.eof() && (eof_sent || keep_going.is_some() || frame.is_some()) {
                break Ok(());
            }
            if progress {
                last_progress = Instant::now();
            } else {
                if keep_going.is_none() && last_progress.elapsed() > self.timeout {
                    break Err(anyhow!(
                        "{}: no output for {:?}; giving up on the script",
                        self.label,
                        self.timeout
                    ));
                }
                if last_keepalive.elapsed() > Duration::from_secs(15) {
                    let _ = self.session.keepalive_send();
                    last_keepalive = Instant::now();
                }
                self.wait_socket(Duration::from_millis(200));
            }
        };
        if stopped {
            // The host side's stdin ends with the EOF, and the close frees the channel; a host
            // that does not answer within two seconds is left to sshd.
            let until = Instant::now() + Duration::from_secs(2);
            while matches!(channel.send_eof(), Err(ref e) if e.code() == EAGAIN) && Instant::now() < until {
                self.wait_socket(Duration::from_millis(50));
            }
            while matches!(channel.close(), Err(ref e) if e.code() == EAGAIN) && Instant::now() < until {
                self.wait_socket(Duration::from_millis(50));
            }
            self.session.set_blocking(true);
            return Ok((None, ScriptOutput { status: -1, stdout: Vec::new(), stderr }, None));
        }
        if let (Ok(()), Some(out_at), Some(err_at), Some(status)) = (&result, out_end, err_end, framed_status)
        {
            self.session.set_blocking(true);
            let (mut out, mut err) = (stdout.all, stderr);
            out.truncate(out_at);
            err.truncate(err_at);
            return Ok((Some(status), ScriptOutput { status, stdout: out, stderr: err }, Some(channel)));
        }
        if result.is_ok() {
            // The exit status follows the close; a server that drops the channel instead still
            // leaves what was read.
            let _ = self.without_blocking(|| channel.wait_close());
        }
        self.session.set_blocking(true);
        result?;
        if keep_going.is_some() {
            stdout.finish(on_line);
        }
        let status = channel.exit_status().unwrap_or(-1);
        let output = ScriptOutput { status, stdout: stdout.all, stderr };
        sudo_failure(&output, &self.label)?;
        Ok((Some(status), output, None))
    }
}

/// Where the resident shell's stdout end marker (`\n<nonce> <status>\n`) starts, searching from
/// about `seen`, and the status it gives.
fn stdout_end(all: &[u8], seen: usize, marker: &str) -> (Option<usize>, Option<i32>) {
    let from = seen.saturating_sub(marker.len() + 16);
    let Some(at) = memchr::memmem::find(&all[from..], format!("{marker} ").as_bytes()).map(|at| from + at)
    else {
        return (None, None);
    };
    let rest = &all[at + marker.len() + 1..];
    let Some(eol) = memchr::memchr(b'\n', rest) else { return (None, None) };
    let status = String::from_utf8_lossy(&rest[..eol]).trim().parse().ok();
    (status.map(|_| at), status)
}

/// How the resident shell runs a script: in a subshell of its own, or in place (a contained one).
#[derive(Clone, Copy)]
enum Frame {
    Subshell,
    InPlace,
}

/// Where a [`SshTransport::pump`] sends its input.
enum Leg<'a> {
    /// A new channel running this command line.
    Open(&'a str),
    /// The resident shell.
    Resident(ssh2::Channel),
}

impl SshTransport {
    /// A script in the resident shell (opened if there is none), after `setup` at the shell's top
    /// level unless this shell already ran it. A setup's output is dropped and it reads no input.
    fn run_framed(
        &mut self,
        setup: Option<&'static str>,
        frame: Frame,
        script: &[u8],
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput> {
        let nonce = crate::script::nonce();
        let mut framed = Vec::with_capacity(script.len() + 128);
        if self.resident.is_none() {
            self.setups.clear();
        }
        let setup = setup.filter(|s| !self.setups.contains(s));
        if let Some(setup) = setup {
            framed.extend_from_slice(b"{\n");
            framed.extend_from_slice(setup.as_bytes());
            // fd 5 keeps the channel for what the setup starts (the session's file helper writes
            // what it reads there).
            framed.extend_from_slice(b"\n} 5>&1 >/dev/null 2>&1 </dev/null\n");
        }
        let (open, close) = match frame {
            Frame::Subshell => ("(", ")"),
            Frame::InPlace => ("{", "}"),
        };
        framed.extend_from_slice(format!("{open}\n").as_bytes());
        framed.extend_from_slice(script);
        framed.extend_from_slice(
            format!("\n{close}\nprintf '\\n%s %s\\n' {nonce} \"$?\"\nprintf '\\n%s\\n' {nonce} >&2\n")
                .as_bytes(),
        );
        let (leg, what) = match self.resident.take() {
            Some(channel) => (Leg::Resident(channel), "ssh continue"),
            None => (Leg::Open(super::SCRIPT_SHELL), "ssh exec"),
        };
        // bench/deploy.nu counts the execs (channels) and the legs apart.
        let timer = crate::trace::Timer::start(what);
        let out = self.pump(leg, Box::new(std::io::Cursor::new(framed)), on_line, None, Some(&nonce));
        timer.done(&format!("{} {} bytes", self.label, script.len()));
        let (_, output, channel) = out?;
        self.resident = channel;
        match (&self.resident, setup) {
            (Some(_), Some(setup)) => self.setups.push(setup),
            (None, _) => self.setups.clear(),
            _ => {}
        }
        Ok(output)
    }
}

impl Transport for SshTransport {
    /// Every script runs in the session's resident shell (opened by the first), in a subshell of
    /// its own, followed by markers on stdout (with its status) and stderr: after the first, a
    /// script costs the host a fork, not an exec — no sshd session, login shell or `sudo`.
    fn run_script(&mut self, script: &[u8], on_line: &mut dyn FnMut(&[u8])) -> Result<ScriptOutput> {
        self.run_framed(None, Frame::Subshell, script, on_line)
    }

    fn run_contained(&mut self, script: &[u8], on_line: &mut dyn FnMut(&[u8])) -> Result<ScriptOutput> {
        self.run_framed(None, Frame::InPlace, script, on_line)
    }

    fn run_script_with_setup(
        &mut self,
        setup: &'static str,
        script: &[u8],
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput> {
        self.run_framed(Some(setup), Frame::Subshell, script, on_line)
    }

    fn exec(
        &mut self,
        command_line: &str,
        input: Box<dyn Read + Send>,
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput> {
        // One line per round trip: bench/deploy.nu counts a deploy's execs per host from these.
        let timer = crate::trace::Timer::start("ssh exec");
        let out = self.run_channel(command_line, input, on_line, None);
        timer.done(&format!("{} {} bytes", self.label, command_line.len()));
        Ok(out?.1)
    }

    fn follow(
        &mut self,
        command: &str,
        on_line: &mut dyn FnMut(&[u8]),
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<i32>> {
        Ok(self.run_channel(command, Box::new(std::io::empty()), on_line, Some(keep_going))?.0)
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

/// Acknowledge what arrives at once instead of after the delayed-ACK timer. sshd does not disable
/// Nagle's algorithm for non-interactive sessions, so when it answers in two small writes the second
/// waits for our ACK — without this, ≈40 ms on every channel a command opens.
fn quick_ack(socket: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the size given.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}
