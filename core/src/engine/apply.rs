//! Apply: re-probe what the plan touches (refusing stale rows, changing nothing), then run every step
//! in ONE script per host, turning its marker lines into events as they arrive.

use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;

use super::hash_cache::HashCache;
use super::plan::{fingerprint, probe_host};
use super::probe::{Facts, ProbeBatch};
use super::script::{ApplyScript, Step};
use super::{dependency_order, failed_hosts_error, for_each_host, nonce};
use crate::model::{Action, Direction, Event, EventStatus, HostPlan, Plan, PlanArtifact, PlanRow, Reason};
use crate::quote::{q, quote_bytes};
use crate::resources::Observed;
use crate::resources::{Resource, StepContext, package};
use crate::runs::{
    ChangeRecord, ChangeStatus, RUN_FORMAT, Roots, RunRecord, RunStatus, escape_id, run_id, write_file_script,
};
use crate::secrets::Secrets;
use crate::transport::Credentials;

#[derive(Clone)]
pub struct ApplyOptions {
    pub dry_run: bool,
    /// Record the run (and back up before each change) under these roots.
    pub track: Option<Roots>,
    /// Hosts applied at once.
    pub parallel: usize,
    pub credentials: Credentials,
    /// Values of the secrets env files refer to, resolved by the caller (memory only).
    pub secrets: Secrets,
    /// Where plans remember content hashes: the files an apply changes are forgotten there.
    pub hash_cache: Option<std::path::PathBuf>,
    /// Told of every tenth of an upload: (host, row id, percent, bytes sent, total bytes).
    pub on_upload: Option<UploadProgress>,
    /// What a plan made at once before this apply read, by host: those hosts are not read again.
    pub probed: indexmap::IndexMap<String, super::Probed>,
    /// Whether the caller was interrupted (Ctrl-C): nothing new is started on a host then; a script
    /// already running there ends first.
    pub interrupted: Option<Interrupted>,
    /// The config of the plan that follows on these hosts (a deploy's next phase): on a session
    /// kept between commands, its reading is taken at the end of the script where every change
    /// went through, for that plan to use (see `read_ahead`).
    pub read_ahead: Option<std::sync::Arc<crate::config::Config>>,
    /// The command that follows on each host (a deploy's end, `app::finish`), as its script for a
    /// host and nonce (`None`: nothing for that host): on a kept session it runs at the end of
    /// this script where every change went through, and the command then finds its output there
    /// instead of running it (see `read_ahead`).
    pub then: Option<Then>,
}

/// A script for a host, written with a nonce (see [`ApplyOptions::then`]).
pub type Then = std::sync::Arc<dyn Fn(&str, &str) -> Result<Option<String>> + Send + Sync>;

pub type Interrupted = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

impl ApplyOptions {
    fn is_interrupted(&self) -> bool {
        self.interrupted.as_ref().is_some_and(|interrupted| interrupted())
    }
}

pub type UploadProgress = std::sync::Arc<dyn Fn(&str, &str, u64, u64, u64) + Send + Sync>;

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            dry_run: false,
            track: None,
            parallel: 8,
            credentials: Credentials::default(),
            secrets: Secrets::default(),
            hash_cache: None,
            on_upload: None,
            probed: Default::default(),
            interrupted: None,
            read_ahead: None,
            then: None,
        }
    }
}

/// Apply `plan`, calling `on_event` for every change as it finishes (from one thread per host).
/// Every host is attempted; the error names each host that failed.
pub fn apply(plan: Plan, options: &ApplyOptions, on_event: &(dyn Fn(Event) + Sync)) -> Result<()> {
    // A plan that knows a row cannot be applied is not applied at all.
    let errors: Vec<String> = plan
        .rows
        .iter()
        .filter(|r| r.action == Action::Error)
        .map(|r| format!("host {}: {}: {}", r.host, r.id, r.note))
        .collect();
    if !errors.is_empty() {
        bail!(
            "the plan has {} row(s) that cannot be applied; nothing was changed:\n{}",
            errors.len(),
            errors.join("\n")
        );
    }
    let mut hosts: Vec<String> = Vec::new();
    for row in &plan.rows {
        if row.action.applies() && !hosts.contains(&row.host) {
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
            plan.rows.iter().filter(|r| r.host == host && r.action.applies()).cloned().collect();
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

/// A probe of the content hashes a plan of `rows` reads (the files they write), with the clock.
/// Uploaded artifacts are in it too: the probe that retires one, releases later, then needs not
/// hash it (its renaming into place changed its ctime, so the hash taken as it arrived cannot be
/// remembered). It is read once either way, here while it is still in the page cache, and by the
/// sha256sum that runs anyway.
fn rehash_probe(rows: &[PlanRow]) -> Option<ProbeBatch> {
    let mut wanted = ProbeBatch::default();
    for row in rows {
        row.resource.kind().probe(&mut wanted);
    }
    let paths = wanted.sha256_paths();
    (!paths.is_empty()).then(|| ProbeBatch::hashes(paths, true))
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

/// What the plan made at once before this apply read for `rows` on `host` (an apply that tracks
/// also needs where the runs go): the host is not read a second time. Checks below still run.
fn just_probed(host: &str, rows: &[PlanRow], options: &ApplyOptions) -> Option<(Facts, Vec<Observed>)> {
    let probed = options.probed.get(host)?;
    if options.track.is_some() && probed.facts.roots.is_none() {
        return None;
    }
    let observed: Option<Vec<Observed>> = rows.iter().map(|r| probed.observed.get(&r.id).cloned()).collect();
    Some((probed.facts.clone(), observed?))
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
        row.resource.resolve(&options.secrets).with_context(|| format!("host {host}: {}", row.id))?;
    }
    let _working = super::busy::working_on(host);
    let stop_if_interrupted = || -> Result<()> {
        if options.is_interrupted() {
            bail!("interrupted before anything was changed on host {host}");
        }
        Ok(())
    };
    stop_if_interrupted()?;
    let timer = crate::trace::Timer::start("connect");
    let mut transport = host_plan
        .target
        .connect(&options.credentials)
        .with_context(|| format!("connecting to host {host}"))?;
    timer.done(host);
    let (facts, observed) = match just_probed(host, &rows, options) {
        Some(probed) => probed,
        None => {
            let resources: Vec<&Resource> = rows.iter().map(|r| &r.resource).collect();
            probe_host(transport.as_mut(), &resources, {
                let mut batch = ProbeBatch::default();
                if let Some(roots) = &options.track {
                    batch.roots(&roots.or(&host_plan.roots));
                }
                batch
            })
            .with_context(|| format!("re-reading host {host} before apply"))?
        }
    };

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

    // Large payloads (release artifacts) travel first, each on one exec channel in large writes; the
    // script then checks them before anything depends on them.
    let mut uploaded = Vec::new();
    // Past this point the host is changed: the uploads, then the script that checks them.
    stop_if_interrupted()?;
    for row in &rows {
        if let Some(upload) = row.resource.kind().upload()? {
            let timer = crate::trace::Timer::start("upload");
            let report = options.on_upload.clone();
            let (host_name, id) = (host.to_string(), row.id.clone());
            let mut tenths = crate::progress::Tenths::default();
            // Ctrl-C stops an upload where it is: its bytes are only ever a `.partial` file, which
            // the upload itself, or the next one, removes.
            let interrupted = options.interrupted.clone();
            let progress = Box::new(move |done: u64, total: u64| {
                if let (Some(report), Some(percent)) = (&report, tenths.step(done, total)) {
                    report(&host_name, &id, percent, done, total);
                }
                interrupted.as_ref().is_none_or(|interrupted| !interrupted())
            });
            let sent = transport.upload(std::path::Path::new(&upload.local), &upload.command, progress);
            if sent.is_err() && options.is_interrupted() {
                bail!("host {host}: {}: interrupted while uploading; the partial upload was removed", row.id);
            }
            sent.with_context(|| format!("host {host}: {}", row.id))?;
            timer.done(&row.id);
            uploaded.push(row.id.clone());
        }
    }

    let nonce = nonce();
    let cx = StepContext { nonce: &nonce, uploaded: &uploaded };
    let mut script = ApplyScript::new(&nonce)?;
    let mut record = match (&options.track, &facts.roots) {
        (Some(_), Some((runs_root, backups_root))) => {
            let mut record = new_record(host, &rows, &observed, runs_root, backups_root);
            record.origin = host_plan.origin.clone();
            script.prologue(tracking_prologue(&record, host_plan, &rows, runs_root)?);
            Some(record)
        }
        _ => None,
    };
    let diffs: Vec<_> =
        rows.iter().zip(&observed).map(|(row, seen)| row.resource.kind().diff(seen)).collect();
    // Consecutive package installs run as one command in the first row's step; the others report ok
    // with it.
    let mut batched_until = 0;
    for (i, (row, seen)) in rows.iter().zip(&observed).enumerate() {
        let kind = row.resource.kind();
        let diff = &diffs[i];
        if i < batched_until {
            let mut done_with_first = Step::new();
            done_with_first.run(":".into());
            script.step(i, done_with_first);
            continue;
        }
        let mut step = match package::batchable(&row.resource, diff) {
            Some(first) => {
                let mut batch = vec![first];
                let mut j = i + 1;
                while let Some(next) = rows.get(j).and_then(|r| package::batchable(&r.resource, &diffs[j])) {
                    batch.push(next);
                    j += 1;
                }
                batched_until = j;
                let manager = seen.get("manager").and_then(|m| m.as_str()).unwrap_or_default();
                let mut step = Step::new();
                step.run(package::install_command(manager, &batch)?);
                step
            }
            None => {
                kind.step(diff, seen, &cx).with_context(|| format!("host {host}: preparing {}", row.id))?
            }
        };
        // Content about to be replaced or removed is copied first, inside the same step.
        if let Some(backup) = record.as_ref().and_then(|r| r.changes[i].backup.clone())
            && let Some(path) = row.resource.path()
        {
            let (path, backup) = (q(path)?, q(&backup)?);
            let copy = format!("hk_cp {path} {backup}");
            step.commands.insert(
                0,
                if row.resource.kind().backs_up_by_link() {
                    // Across file systems a link cannot be made: copy then.
                    format!("{{ hk_link {path} {backup} 2>/dev/null || {copy}; }}")
                } else {
                    copy
                },
            );
        }
        script.step(i, step);
    }
    // A run that gets through every step records itself as done at the end of its own script (no
    // exec of its own); one that fails or is cut off is recorded by the controller below.
    if let (Some(record), Some((runs_root, _))) = (&record, &facts.roots) {
        script.after_steps(&done_record_script(record, runs_root)?);
    }
    // The files written are hashed again at the end, as a probe would, so the next plan reuses them.
    let rehash = options.hash_cache.as_ref().and_then(|_| rehash_probe(&rows));
    let rehash_nonce = super::nonce();
    if let Some(batch) = &rehash {
        script.epilogue(&batch.script(&rehash_nonce)?);
    }
    let changed_paths: Vec<&str> = rows.iter().filter_map(|r| r.resource.path()).collect();
    // Read only when something here uses it: the files written, or a reading ahead.
    let wants_cache =
        !changed_paths.is_empty() || (options.read_ahead.is_some() && transport.keeps_readings());
    let mut cache = options
        .hash_cache
        .as_ref()
        .filter(|_| wants_cache)
        .map(|dir| HashCache::load(dir, &host_plan.target));
    // The next plan's reading, after everything else (the files just written hashed first).
    let ahead = match &options.read_ahead {
        Some(next) if transport.keeps_readings() => {
            let roots = options.track.as_ref().map(|roots| roots.or(&host_plan.roots));
            let rehashed = rehash.as_ref().map(|b| b.sha256_paths().to_vec()).unwrap_or_default();
            let ahead = super::read_ahead::Ahead::new(
                &next.resources_for(host),
                roots.as_ref(),
                cache.as_ref(),
                &rehashed,
            );
            script.epilogue(&ahead.script()?);
            Some(ahead)
        }
        _ => None,
    };
    let then = match &options.then {
        Some(then) if transport.keeps_readings() => {
            let nonce = super::nonce();
            match (then(host, crate::transport::AHEAD_NONCE)?, then(host, &nonce)?) {
                (Some(canonical), Some(text)) => {
                    // In the state the command would find on its own: no noclobber, no -u.
                    script.epilogue(&format!("set +uC\n{text}"));
                    Some((canonical, nonce))
                }
                _ => None,
            }
        }
        _ => None,
    };
    let script = script.finish();

    let mut finished = 0usize;
    let mut failed: Option<usize> = None;
    let mut recorded = false;
    let mut last = Instant::now();
    let prefix = format!("{nonce} ");
    let timer = crate::trace::Timer::start("apply script");
    let session_helper: &'static str = super::script::SESSION_FILE_HELPER.as_str();
    let run = transport.run_script_with_setup(session_helper, script.as_bytes(), &mut |line| {
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
    });
    if let Ok(out) = &run {
        recorded = out
            .stdout
            .windows(RECORDED.len() + prefix.len())
            .any(|w| w.starts_with(prefix.as_bytes()) && &w[prefix.len()..] == RECORDED.as_bytes());
    }
    timer.done(&format!("{} bytes", script.len()));
    if let (Some(cache), false) = (&mut cache, changed_paths.is_empty()) {
        cache.forget(changed_paths);
        let rehashed = match (&rehash, &run) {
            (Some(batch), Ok(out)) if out.status == 0 => batch.parse(&out.stdout, &rehash_nonce).ok(),
            _ => None,
        };
        if let Some(facts) = rehashed
            && let Some(clock) = facts.clock
        {
            cache.update(&facts, clock);
        }
    }
    if let Ok(out) = &run
        && out.status == 0
        && failed.is_none()
        && finished == rows.len()
    {
        if let Some(ahead) = ahead {
            let kept = ahead.keep(transport.as_mut(), &out.stdout, cache.as_mut());
            crate::trace::note(&format!(
                "host {host}: reading ahead {}",
                if kept { "kept" } else { "not kept" }
            ));
        }
        if let Some((script, nonce)) = then {
            transport.keep(crate::transport::Kept::Output { script, nonce, stdout: out.stdout.clone() });
        }
    }
    if let Some(cache) = &cache {
        cache.save();
    }
    // Whatever happened, the record says what did and did not run.
    let done_by_script =
        recorded && failed.is_none() && finished == rows.len() && run.as_ref().is_ok_and(|o| o.status == 0);
    if let Some(record) = record.as_mut().filter(|_| !done_by_script) {
        for (i, change) in record.changes.iter_mut().enumerate() {
            change.status = match failed {
                _ if i < finished => ChangeStatus::Ok,
                Some(f) if f == i => ChangeStatus::Failed,
                Some(_) => ChangeStatus::Skipped,
                None => ChangeStatus::Pending,
            };
        }
        record.status = match (&run, failed) {
            (Ok(out), None) if out.status == 0 && finished == rows.len() => RunStatus::Ok,
            (_, Some(_)) => RunStatus::Failed,
            _ => RunStatus::Partial,
        };
        record.finished_at = Some(Utc::now());
        let runs_root = facts.roots.as_ref().map(|r| r.0.as_str()).unwrap_or_default();
        let path = format!("{runs_root}/{}.json", record.id);
        let json = serde_json::to_vec_pretty(&record)?;
        let timer = crate::trace::Timer::start("run record");
        let written = transport.run_script(write_file_script(&path, &json)?.as_bytes(), &mut |_| {});
        timer.done(&path);
        match written {
            Ok(o) if o.status == 0 => {}
            Ok(o) => bail!("host {host}: cannot write the run record {path}: {}", o.stderr_text()),
            Err(e) => return Err(e.context(format!("host {host}: cannot write the run record {path}"))),
        }
    }
    let output = run?;
    if let Some(i) = failed {
        let row = &rows[i];
        // The step's words, speaking of the resource rather than of hk's temp names for it.
        let mut stderr = output.stderr_text();
        if let Some(path) = row.resource.path() {
            stderr = stderr.replace(&crate::resources::temp_sibling(path, &nonce), path);
        }
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
        return Err(anyhow!(
            "host {host}: {} {} failed: {stderr}\n{}",
            row.action.as_str(),
            row.id,
            statuses(&rows, i)
        ));
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

/// What an apply that stopped at row `failed` did: `ok: …; failed: …; skipped: …`.
fn statuses(rows: &[PlanRow], failed: usize) -> String {
    let ids = |rows: &[PlanRow]| rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if failed > 0 {
        parts.push(format!("ok: {}", ids(&rows[..failed])));
    }
    parts.push(format!("failed: {}", rows[failed].id));
    if failed + 1 < rows.len() {
        parts.push(format!("skipped: {}", ids(&rows[failed + 1..])));
    }
    parts.join("; ")
}

/// The record of a tracked run as it starts: every change pending, backups named.
fn new_record(
    host: &str,
    rows: &[PlanRow],
    observed: &[Observed],
    runs_root: &str,
    backups_root: &str,
) -> RunRecord {
    let started_at = Utc::now();
    let direction =
        if rows.iter().all(|r| r.reason == Reason::Down) { Direction::Down } else { Direction::Up };
    let id = run_id(host, direction, started_at);
    let backups = format!("{backups_root}/{id}");
    let changes = rows
        .iter()
        .zip(observed)
        .map(|(row, seen)| ChangeRecord {
            id: row.id.clone(),
            rtype: row.rtype.clone(),
            name: row.name.clone(),
            action: row.action,
            status: ChangeStatus::Pending,
            before: seen.clone(),
            // Only regular files have content to keep; everything else is described by `before`.
            backup: (seen.get("kind").and_then(|k| k.as_str()) == Some("file")
                && row.resource.kind().backs_up())
            .then(|| format!("{backups}/{}", escape_id(&row.id))),
            resource: row.resource.path().is_none().then(|| row.resource.clone()),
            after: left_behind(&row.resource),
        })
        .collect();
    let mut artifacts = indexmap::IndexMap::new();
    artifacts.insert("plan".to_string(), format!("{runs_root}/artifacts/{id}/plan.json"));
    RunRecord {
        format: RUN_FORMAT.to_string(),
        id,
        host: host.to_string(),
        direction,
        status: RunStatus::Partial,
        started_at,
        finished_at: None,
        changes,
        artifacts,
        backups,
        origin: Default::default(),
    }
}

/// What applying `resource` leaves at its path as a probe sees it: a file's content hash, a link's
/// target (`None` for what is removed, for env files — their hashes are keyed — and for the rest).
pub fn left_behind(resource: &Resource) -> Option<String> {
    match resource {
        Resource::File(f) if f.state == crate::resources::State::Present && f.restore_from.is_none() => {
            Some(format!("sha256:{}", f.sha256))
        }
        Resource::Link(l) if l.state == crate::resources::State::Present => {
            Some(format!("target:{}", l.target))
        }
        _ => None,
    }
}

/// The marker the script prints once it wrote the final record of a run that went through.
const RECORDED: &str = "recorded";

/// After the last step: the run's final record (every change ok), written atomically with the host's
/// clock as `finished_at`; then the marker. A failure to write it is left to the controller.
fn done_record_script(record: &RunRecord, runs_root: &str) -> Result<String> {
    const WHEN: &str = "@@hk-finished-at@@";
    let mut done = record.clone();
    for change in &mut done.changes {
        change.status = ChangeStatus::Ok;
    }
    done.status = RunStatus::Ok;
    let json = serde_json::to_string_pretty(&done)?.replacen(
        "\"finished_at\": null",
        &format!("\"finished_at\": \"{WHEN}\""),
        1,
    );
    let Some((before, after)) = json.split_once(WHEN) else {
        bail!("the run record has no finished_at");
    };
    let path = format!("{runs_root}/{}.json", record.id);
    let tmp = format!("{path}.partial");
    Ok(format!(
        "{{ hk_now; printf '%s%s%s' {} \"$hk_when\" {} >| {tmp} && hk_mv {tmp} {path} && printf '%s {RECORDED}\\n' \"$HK\"; }} || :",
        quote_bytes(before.as_bytes())?,
        quote_bytes(after.as_bytes())?,
        tmp = q(&tmp)?,
        path = q(&path)?,
    ))
}

/// Before any step: the run's directories, its plan artifact (0600) and a first record saying
/// `partial`, so even a run cut off mid-way is on record.
fn tracking_prologue(
    record: &RunRecord,
    host_plan: &HostPlan,
    rows: &[PlanRow],
    runs_root: &str,
) -> Result<Vec<String>> {
    let mut hosts = indexmap::IndexMap::new();
    hosts.insert(record.host.clone(), host_plan.clone());
    let plan = Plan { direction: record.direction, hosts, rows: rows.to_vec() };
    let artifact = serde_json::to_vec_pretty(&PlanArtifact::new(&plan))?;
    let artifact_path = record.artifacts.get("plan").cloned().unwrap_or_default();
    let artifact_dir = format!("{runs_root}/artifacts/{}", record.id);
    let record_path = format!("{runs_root}/{}.json", record.id);
    let record_json = serde_json::to_vec_pretty(record)?;
    let artifacts = format!("{runs_root}/artifacts");
    let backups_root = record.backups.rsplit_once('/').map(|(dir, _)| dir).unwrap_or(runs_root);
    Ok(vec![
        // The roots exist after the first run: then only the run's own two folders are made, by
        // the file helper.
        format!(
            "{{ [ -d {artifacts} ] && [ -d {backups_root} ] || mkdir -p -m 0700 -- {runs} {artifacts} {backups_root}; }}",
            artifacts = q(&artifacts)?,
            backups_root = q(backups_root)?,
            runs = q(runs_root)?,
        ),
        crate::script::steps::mkdir(&artifact_dir, "0700")?,
        crate::script::steps::mkdir(&record.backups, "0700")?,
        format!("printf '%s' {} > {}", quote_bytes(&artifact)?, q(&artifact_path)?),
        format!("printf '%s' {} > {}", quote_bytes(&record_json)?, q(&record_path)?),
    ])
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Every file below `dir`, for what an apply left behind.
    fn files_below(dir: &std::path::Path) -> Vec<String> {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                found.push(path.display().to_string());
                if path.is_dir() && !path.is_symlink() {
                    found.extend(files_below(&path));
                }
            }
        }
        found
    }

    #[test]
    fn an_interrupted_upload_leaves_nothing_and_the_next_apply_goes_through() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("hk-interrupted-{}", super::nonce()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("bin"))?;
        std::fs::write(src.join("bin/run"), "#!/bin/sh\necho 1.0.0\n")?;
        let request = crate::release::BuildRequest {
            dir: src,
            name: Some("demo".into()),
            version: Some("1.0.0".into()),
            out_dir: dir.join("dist"),
        };
        let (_, _, manifest) = crate::release::build(&request, &mut |_, _| {})?;
        let root = dir.join("opt");
        let config = crate::config::Config::from_value(
            serde_json::json!({
                "hosts": {"local": {"local": true}},
                "resources": [{"type": "release", "name": "demo", "version": "1.0.0",
                               "artifact": manifest.display().to_string(), "root": root.display().to_string()}]
            }),
            &dir,
        )?;
        let targets = vec![("local".to_string(), super::super::target(&config, "local")?)];
        let plan = || super::super::plan(&config, &targets, &Default::default()).map(|outcome| outcome.plan);
        // Checked before connecting, before the uploads, then as the upload reads: Ctrl-C then.
        let checks = Arc::new(AtomicUsize::new(0));
        let counted = checks.clone();
        let options = ApplyOptions {
            interrupted: Some(Arc::new(move || counted.fetch_add(1, Ordering::SeqCst) >= 2)),
            ..Default::default()
        };
        let err = apply(plan()?, &options, &|_| {}).err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(err.contains("interrupted while uploading"), "{err}");
        assert!(checks.load(Ordering::SeqCst) >= 3);
        let left = files_below(&root);
        assert!(!left.iter().any(|p| p.contains("partial") || p.ends_with("releases/1.0.0")), "{left:?}");
        // Nothing stands in the way of the next apply.
        apply(plan()?, &ApplyOptions::default(), &|_| {})?;
        assert!(root.join("demo/releases/1.0.0/bin/run").is_file());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
