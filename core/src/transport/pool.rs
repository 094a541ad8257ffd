//! Authenticated SSH sessions kept for reuse by later commands of the same process (the Nushell
//! plugin lives as long as its nu): a deploy's many plans and applies then cost one connection per
//! host. Off unless [`enable`] is called. A session is checked before a command starts (a dead one is
//! replaced then, never mid-command), closed after an idle timeout, and kept alive meanwhile.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::ssh::SshTransport;
use super::{ScriptOutput, Transport};

/// How often idle sessions are looked at (keepalive, idle timeout).
const TICK: Duration = Duration::from_secs(5);
/// An idle session sends a keepalive this often, so NAT and firewalls keep it.
const KEEPALIVE: Duration = Duration::from_secs(15);

struct Idle {
    key: String,
    transport: SshTransport,
    since: Instant,
    last_keepalive: Instant,
}

struct Pool {
    idle_timeout: Duration,
    sessions: Vec<Idle>,
}

fn pool() -> &'static Mutex<Option<Pool>> {
    static POOL: OnceLock<Mutex<Option<Pool>>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(None))
}

static OPENED: AtomicU64 = AtomicU64::new(0);

/// SSH connections this process has opened so far (for traces and benchmarks).
pub fn connections_opened() -> u64 {
    OPENED.load(Ordering::Relaxed)
}

pub(crate) fn count_connection() {
    OPENED.fetch_add(1, Ordering::Relaxed);
}

/// Keep sessions for reuse, each at most `idle_timeout` after its last command.
pub fn enable(idle_timeout: Duration) {
    let Ok(mut guard) = pool().lock() else { return };
    if guard.is_none() {
        std::thread::spawn(tend);
    }
    match guard.as_mut() {
        Some(p) => p.idle_timeout = idle_timeout,
        None => *guard = Some(Pool { idle_timeout, sessions: Vec::new() }),
    }
}

/// Keepalives and idle timeouts, in the background.
fn tend() {
    loop {
        std::thread::sleep(TICK);
        let Ok(mut guard) = pool().lock() else { return };
        let Some(p) = guard.as_mut() else { return };
        let timeout = p.idle_timeout;
        p.sessions.retain_mut(|s| s.since.elapsed() < timeout && s.transport.alive());
        for s in &mut p.sessions {
            if s.last_keepalive.elapsed() >= KEEPALIVE {
                s.transport.keepalive();
                s.last_keepalive = Instant::now();
            }
        }
    }
}

/// A kept session for `key`, checked to be alive; `None` when there is none (or pooling is off).
pub(crate) fn take(key: &str) -> Option<SshTransport> {
    let mut guard = pool().lock().ok()?;
    let p = guard.as_mut()?;
    while let Some(at) = p.sessions.iter().position(|s| s.key == key) {
        let mut idle = p.sessions.swap_remove(at);
        if idle.transport.alive() {
            return Some(idle.transport);
        }
    }
    None
}

pub(crate) fn enabled() -> bool {
    pool().lock().map(|g| g.is_some()).unwrap_or(false)
}

fn give_back(key: String, transport: SshTransport) {
    if let Ok(mut guard) = pool().lock()
        && let Some(p) = guard.as_mut()
    {
        let now = Instant::now();
        p.sessions.push(Idle { key, transport, since: now, last_keepalive: now });
    }
}

/// A session on loan from the pool: it goes back when dropped, unless a command on it failed in a
/// way that may have broken it.
pub(crate) struct Pooled {
    key: String,
    inner: Option<SshTransport>,
    broken: bool,
}

impl Pooled {
    pub fn new(key: String, transport: SshTransport) -> Pooled {
        Pooled { key, inner: Some(transport), broken: false }
    }
}

impl Pooled {
    /// `work` on the session; one that fails may have broken it, so it is not given back. A reading
    /// kept for the next command is dropped first: whatever runs now may change what it saw.
    fn on_inner<T>(&mut self, work: impl FnOnce(&mut SshTransport) -> Result<T>) -> Result<T> {
        let Some(inner) = self.inner.as_mut() else { anyhow::bail!("the SSH session was closed") };
        inner.kept.clear();
        let result = work(inner);
        if result.is_err() {
            self.broken = true;
        }
        result
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(transport) = self.inner.take()
            && !self.broken
        {
            give_back(std::mem::take(&mut self.key), transport);
        }
    }
}

impl Transport for Pooled {
    fn exec(
        &mut self,
        command: &str,
        input: Box<dyn std::io::Read + Send>,
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput> {
        self.on_inner(|inner| inner.exec(command, input, on_line))
    }

    fn follow(
        &mut self,
        command: &str,
        on_line: &mut dyn FnMut(&[u8]),
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<i32>> {
        self.on_inner(|inner| inner.follow(command, on_line, keep_going))
    }

    fn run_script(&mut self, script: &[u8], on_line: &mut dyn FnMut(&[u8])) -> Result<ScriptOutput> {
        self.on_inner(|inner| inner.run_script(script, on_line))
    }

    fn run_script_with_setup(
        &mut self,
        setup: &'static str,
        script: &[u8],
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput> {
        self.on_inner(|inner| inner.run_script_with_setup(setup, script, on_line))
    }

    fn run_contained(&mut self, script: &[u8], on_line: &mut dyn FnMut(&[u8])) -> Result<ScriptOutput> {
        self.on_inner(|inner| inner.run_contained(script, on_line))
    }

    fn describe(&self) -> String {
        self.inner.as_ref().map(|t| t.describe()).unwrap_or_default()
    }

    fn keep(&mut self, kept: super::Kept) -> bool {
        match self.inner.as_mut() {
            Some(inner) if !self.broken => {
                inner.kept.push(kept);
                true
            }
            _ => false,
        }
    }

    fn take_kept(&mut self, wanted: &dyn Fn(&super::Kept) -> bool) -> Option<super::Kept> {
        let kept = &mut self.inner.as_mut()?.kept;
        let at = kept.iter().position(wanted)?;
        Some(kept.remove(at))
    }

    fn keeps_readings(&self) -> bool {
        !self.broken
    }
}

/// Whether the peer closed or broke the connection: an idle session's socket has nothing to read,
/// so anything readable (an EOF, a reset, a disconnect message) means it is gone.
pub(crate) fn socket_alive(socket: &std::net::TcpStream) -> bool {
    let mut fd = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready == 0
}
