//! Hosts an apply of this process is working on. An apply whose caller went away (Ctrl-C) still
//! finishes the script it started on a host; a plan or apply of that host made meanwhile (a deploy
//! undoing what it began) waits for it, so it reads what that script left, not what was there before.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

struct Busy {
    hosts: Mutex<HashSet<String>>,
    freed: Condvar,
}

fn busy() -> &'static Busy {
    static BUSY: OnceLock<Busy> = OnceLock::new();
    BUSY.get_or_init(|| Busy { hosts: Mutex::new(HashSet::new()), freed: Condvar::new() })
}

/// The set of busy hosts once `host` is not among them (locked).
fn until_free(host: &str) -> MutexGuard<'static, HashSet<String>> {
    let busy = busy();
    let mut hosts = busy.hosts.lock().unwrap_or_else(|e| e.into_inner());
    if hosts.contains(host) {
        eprintln!("hk: host {host}: waiting for the script an earlier apply started there to end");
        while hosts.contains(host) {
            hosts = busy.freed.wait(hosts).unwrap_or_else(|e| e.into_inner());
        }
    }
    hosts
}

/// Work on `host` until the returned guard is dropped, after any apply already working on it.
pub fn working_on(host: &str) -> HostGuard {
    until_free(host).insert(host.to_string());
    HostGuard { host: host.to_string() }
}

/// Wait until no apply of this process works on `host`.
pub fn wait_for(host: &str) {
    drop(until_free(host));
}

/// Held while an apply works on a host.
pub struct HostGuard {
    host: String,
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let busy = busy();
        busy.hosts.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.host);
        busy.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_second_worker_waits_for_the_first() {
        let guard = working_on("busy-test-host");
        let started = Instant::now();
        let waiter = std::thread::spawn(move || {
            wait_for("busy-test-host");
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(100));
        drop(guard);
        let waited = waiter.join().unwrap_or_default();
        assert!(waited >= Duration::from_millis(100), "waited {waited:?}");
        // Free again: no wait at all.
        let started = Instant::now();
        drop(working_on("busy-test-host"));
        assert!(started.elapsed() < Duration::from_millis(100));
    }
}
