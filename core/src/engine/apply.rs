//! Apply: re-probe what the plan touches (refusing stale rows, changing nothing), then run every step
//! in ONE script per host, turning its marker lines into events as they arrive.

use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;

use super::plan::{fingerprint, probe_host};
use super::script::ApplyScript;
use super::{dependency_order, failed_hosts_error, for_each_host, nonce};
use crate::model::{Action, Event, EventStatus, HostPlan, Plan, PlanRow};
use crate::resources::{Resource, StepContext};
use crate::transport::Credentials;

#[derive(Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// Hosts applied at once.
    pub parallel: usize,
    pub credentials: Credentials,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { dry_run: false, parallel: 8, credentials: Credentials::default() }
    }
}

/// Apply `plan`, calling `on_event` for every change as it finishes (from one thread per host).
/// Every host is attempted; the error names each host that failed.
pub fn apply(plan: Plan, options: &ApplyOptions, on_event: &(dyn Fn(Event) + Sync)) -> Result<()> {
    let mut hosts: Vec<String> = Vec::new();
    for row in &plan.rows {
        if row.action.mutates() && !hosts.contains(&row.host) {
            hosts.push(row.host.clone());
        }
    }
    for host in &hosts {
        if !plan.hosts.contains_key(host) {
            bail!("the plan has rows for host {host} but no entry for it in `hosts`");
        }
    }
    let results = for_each_host(&hosts, options.parallel, |host| {
        let host_plan = plan.hosts.get(host).context("host missing from plan")?;
        let rows: Vec<PlanRow> =
            plan.rows.iter().filter(|r| r.host == host && r.action.mutates()).cloned().collect();
        apply_host(host, host_plan, rows, options, on_event)
    });
    let failures: Vec<(String, String)> =
        results.into_iter().filter_map(|(host, r)| r.err().map(|e| (host, format!("{e:#}")))).collect();
    match failures.len() {
        0 => Ok(()),
        1 if hosts.len() == 1 => Err(anyhow!("{}", failures[0].1)),
        _ => Err(failed_hosts_error(&failures)),
    }
}

/// Creates and updates in dependency order, then deletes in reverse order (children first).
fn order_rows(rows: Vec<PlanRow>) -> Vec<PlanRow> {
    let (deletes, others): (Vec<PlanRow>, Vec<PlanRow>) =
        rows.into_iter().partition(|r| r.action == Action::Delete);
    let sort = |rows: Vec<PlanRow>| -> Vec<PlanRow> {
        let refs: Vec<&Resource> = rows.iter().map(|r| &r.resource).collect();
        let order = dependency_order(&refs);
        let mut slots: Vec<Option<PlanRow>> = rows.into_iter().map(Some).collect();
        order.into_iter().filter_map(|i| slots[i].take()).collect()
    };
    let mut ordered = sort(others);
    let mut deletes = sort(deletes);
    deletes.reverse();
    ordered.extend(deletes);
    ordered
}

fn apply_host(
    host: &str,
    host_plan: &HostPlan,
    rows: Vec<PlanRow>,
    options: &ApplyOptions,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<()> {
    let mut rows = order_rows(rows);
    for row in &mut rows {
        row.resource.resolve().with_context(|| format!("host {host}: {}", row.id))?;
    }
    let mut transport = host_plan
        .target
        .connect(&options.credentials)
        .with_context(|| format!("connecting to host {host}"))?;
    let resources: Vec<&Resource> = rows.iter().map(|r| &r.resource).collect();
    let (facts, observed) = probe_host(transport.as_mut(), &resources)
        .with_context(|| format!("re-reading host {host} before apply"))?;

    // Refuse before any change: another machine, or state that moved since the plan was made.
    let planned = &host_plan.identity;
    if facts.identity != *planned {
        bail!(
            "host {host} is not the machine this plan was made for (planned {} / machine-id {}, now {} / {}); nothing was changed. Plan again.",
            planned.hostname,
            planned.machine_id,
            facts.identity.hostname,
            facts.identity.machine_id
        );
    }
    let stale: Vec<String> = rows
        .iter()
        .zip(&observed)
        .filter(|(row, seen)| fingerprint(seen) != row.fingerprint)
        .map(|(row, seen)| format!("{} (planned {}, now {})", row.id, row.fingerprint, fingerprint(seen)))
        .collect();
    if !stale.is_empty() {
        bail!("the plan is stale on host {host}: {}; nothing was changed. Plan again.", stale.join(", "));
    }

    if options.dry_run {
        for row in &rows {
            on_event(event(host, row, EventStatus::DryRun, std::time::Duration::ZERO, "would apply".into()));
        }
        return Ok(());
    }

    let nonce = nonce();
    let cx = StepContext { nonce: &nonce };
    let mut script = ApplyScript::new(&nonce)?;
    for (i, (row, seen)) in rows.iter().zip(&observed).enumerate() {
        let kind = row.resource.kind();
        let diff = kind.diff(seen);
        let step =
            kind.step(&diff, seen, &cx).with_context(|| format!("host {host}: preparing {}", row.id))?;
        script.step(i, step);
    }
    let script = script.finish();

    let mut finished = 0usize;
    let mut failed: Option<usize> = None;
    let mut last = Instant::now();
    let prefix = format!("{nonce} ");
    let output = transport.run_script(script.as_bytes(), &mut |line| {
        let Some(rest) = line.strip_prefix(prefix.as_bytes()) else {
            return;
        };
        let rest = String::from_utf8_lossy(rest);
        let mut parts = rest.split(' ');
        let (status, index) =
            (parts.next().unwrap_or_default(), parts.next().and_then(|n| n.parse::<usize>().ok()));
        let Some(row) = index.and_then(|i| rows.get(i)) else {
            return;
        };
        let elapsed = last.elapsed();
        last = Instant::now();
        match status {
            "ok" => {
                finished += 1;
                on_event(event(host, row, EventStatus::Ok, elapsed, String::new()));
            }
            "failed" => failed = index,
            _ => {}
        }
    })?;
    if let Some(i) = failed {
        let row = &rows[i];
        let stderr = output.stderr_text();
        on_event(event(host, row, EventStatus::Failed, last.elapsed(), stderr.clone()));
        for rest in &rows[i + 1..] {
            on_event(event(
                host,
                rest,
                EventStatus::Skipped,
                std::time::Duration::ZERO,
                "not run: an earlier change failed".into(),
            ));
        }
        return Err(anyhow!("host {host}: {} {} failed: {stderr}", row.action.as_str(), row.id));
    }
    if output.status != 0 || finished != rows.len() {
        return Err(anyhow!(
            "host {host}: the apply script stopped after {finished} of {} changes (exit {}): {}",
            rows.len(),
            output.status,
            output.stderr_text()
        ));
    }
    Ok(())
}

fn event(
    host: &str,
    row: &PlanRow,
    status: EventStatus,
    duration: std::time::Duration,
    message: String,
) -> Event {
    Event {
        time: Utc::now(),
        host: host.to_string(),
        id: row.id.clone(),
        action: row.action,
        status,
        duration,
        message,
    }
}
