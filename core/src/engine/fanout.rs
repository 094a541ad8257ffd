//! Many hosts at once: one worker per host up to a bound; a failing host never stops the others.

use std::collections::VecDeque;
use std::sync::Mutex;

use anyhow::{Result, anyhow};

/// Run `work` for every host with at most `parallel` at a time. Results keep the hosts' order.
pub fn for_each_host<T: Send>(
    hosts: &[String],
    parallel: usize,
    work: impl Fn(&str) -> Result<T> + Sync,
) -> Vec<(String, Result<T>)> {
    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..hosts.len()).collect());
    let results: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..hosts.len()).map(|_| None).collect());
    let workers = parallel.clamp(1, hosts.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(i) = next else { break };
                    let outcome = work(&hosts[i]);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(outcome);
                    }
                }
            });
        }
    });
    let slots = results.into_inner().unwrap_or_default();
    hosts
        .iter()
        .cloned()
        .zip(slots)
        .map(|(host, slot)| (host, slot.unwrap_or_else(|| Err(anyhow!("the worker for this host stopped")))))
        .collect()
}

/// One error naming every failed host with its reason.
pub fn failed_hosts_error(failures: &[(String, String)]) -> anyhow::Error {
    let names: Vec<&str> = failures.iter().map(|(h, _)| h.as_str()).collect();
    let details: Vec<String> = failures.iter().map(|(h, e)| format!("{h}: {e}")).collect();
    anyhow!("{} host(s) failed: {}\n{}", failures.len(), names.join(", "), details.join("\n"))
}
