//! `hk exec --follow`: one long-running command on many hosts at once (`journalctl -f`), its lines
//! merged into one stream as they arrive, every host's command ended when the stream stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::quote::q;
use crate::transport::{Credentials, Target};

/// What a followed host sent.
#[derive(Debug)]
pub enum Followed {
    /// One line of its stdout, without the newline.
    Line { host: String, line: Vec<u8> },
    /// Its command ended by itself with this status.
    Ended { host: String, status: i32 },
    /// It could not be reached, or its connection broke.
    Failed { host: String, error: String },
}

/// The merged stream. Dropping it (or `keep_going` answering false) stops every host's command
/// and closes every channel before the drop returns.
pub struct Follower {
    events: Receiver<Followed>,
    stop: Arc<AtomicBool>,
    keep_going: Arc<dyn Fn() -> bool + Send + Sync>,
    threads: Vec<JoinHandle<()>>,
}

/// The host-side wrapper: the command in a session of its own (so one signal reaches the whole
/// pipeline), and a watcher that ends that session when the channel's stdin closes. A command
/// that ends by itself ends the script; the watcher keeps no output open, so the channel closes.
/// (An asynchronous list's stdin is /dev/null unless redirected, hence the copy on fd 3.)
pub fn follow_line(command: &str) -> anyhow::Result<String> {
    Ok(format!(
        "cd / && umask 022 && exec 3<&0 && {{ setsid sh -c {} </dev/null 3<&- & pid=$!; \
         {{ cat <&3 >/dev/null; kill -TERM -$pid 2>/dev/null; }} >/dev/null 2>&1 & \
         exec 3<&-; wait $pid; }}",
        q(command)?
    ))
}

/// Start `command` on every target, each over its own connection.
pub fn follow(
    targets: &[(String, Target)],
    command: &str,
    credentials: &Credentials,
    keep_going: Arc<dyn Fn() -> bool + Send + Sync>,
) -> anyhow::Result<Follower> {
    let line = follow_line(command)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (send, events) = channel();
    let mut threads = Vec::new();
    for (host, target) in targets {
        let (host, target, line, send) = (host.clone(), target.clone(), line.clone(), send.clone());
        let (stop, keep_going) = (stop.clone(), keep_going.clone());
        let credentials = credentials.clone();
        threads.push(std::thread::spawn(move || {
            let still = || !stop.load(Ordering::Relaxed) && keep_going();
            let result = target.connect(&credentials).and_then(|mut transport| {
                transport.follow(
                    &line,
                    &mut |bytes| {
                        let _ = send.send(Followed::Line { host: host.clone(), line: bytes.to_vec() });
                    },
                    &still,
                )
            });
            let _ = send.send(match result {
                Ok(Some(status)) => Followed::Ended { host, status },
                Ok(None) => return,
                Err(e) => Followed::Failed { host, error: format!("{e:#}") },
            });
        }));
    }
    Ok(Follower { events, stop, keep_going, threads })
}

impl Follower {
    /// Stop every host's command and wait until each channel is closed.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Iterator for Follower {
    type Item = Followed;

    /// The next event; `None` once every host has ended or the follower was told to stop.
    fn next(&mut self) -> Option<Followed> {
        loop {
            if !(self.keep_going)() {
                self.stop();
                return None;
            }
            match self.events.recv_timeout(Duration::from_millis(200)) {
                Ok(event) => return Some(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_lines_and_reports_the_end() {
        let targets = vec![("here".to_string(), Target::local())];
        let follower = follow(&targets, "echo one; echo two", &Credentials::default(), Arc::new(|| true))
            .expect("starts");
        let events: Vec<Followed> = follower.collect();
        let lines: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Followed::Line { line, .. } => Some(String::from_utf8_lossy(line).to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(lines, ["one", "two"]);
        assert!(matches!(events.last(), Some(Followed::Ended { status: 0, .. })));
    }

    #[test]
    fn dropping_the_stream_ends_the_command() {
        // A pipeline, so that ending only its shell would leave the sleep behind; its length is unique.
        let sleep = format!("sleep 9{}", std::process::id());
        let targets = vec![("here".to_string(), Target::local())];
        let command = format!("echo started; {sleep} | cat");
        let mut follower =
            follow(&targets, &command, &Credentials::default(), Arc::new(|| true)).expect("starts");
        assert!(matches!(follower.next(), Some(Followed::Line { .. })));
        drop(follower);
        std::thread::sleep(Duration::from_millis(300));
        let left = std::process::Command::new("pgrep").args(["-fx", &sleep]).output().expect("pgrep runs");
        assert!(left.stdout.is_empty(), "left running: {}", String::from_utf8_lossy(&left.stdout));
    }
}
