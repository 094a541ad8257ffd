//! Planning: one probe script per host, then a diff per resource.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use super::hash_cache::HashCache;
use super::probe::{Facts, ProbeBatch};
use super::{dependency_order, for_each_host, nonce};
use crate::config::Config;
use crate::model::{Action, Direction, HostPlan, Plan, PlanRow, Reason};
use crate::packages::PackageNaming;
use crate::resources::{Diff, Dir, Observed, Resource, State, ancestor_dir_ids};
use crate::secrets::Secrets;
use crate::transport::{Credentials, Target, Transport};

#[derive(Clone)]
pub struct PlanOptions {
    /// `type:name` ids to leave alone (shown as noop rows, reason `ignored`).
    pub ignore: Vec<String>,
    /// Hosts read at once.
    pub parallel: usize,
    pub credentials: Credentials,
    /// Package names from a lock or Repology.
    pub packages: PackageNaming,
    /// Values of the secrets env files refer to, resolved by the caller (memory only).
    pub secrets: Secrets,
    /// Where content hashes are remembered between plans (`None`: hash every file every time).
    pub hash_cache: Option<std::path::PathBuf>,
    /// The project the plan is for (recorded with its runs).
    pub project: Option<String>,
    /// What made the plan, as its runs will say (`plan` when empty; a workflow names itself).
    pub made_by: String,
    /// Also read where runs are kept (an apply that tracks, following at once, then reads nothing
    /// again); the host's own `runs_root`/`backups_root` fill what these leave unset.
    pub track_roots: Option<crate::runs::Roots>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            ignore: Vec::new(),
            parallel: 8,
            credentials: Credentials::default(),
            packages: PackageNaming::default(),
            secrets: Secrets::default(),
            hash_cache: None,
            project: None,
            made_by: String::new(),
            track_roots: None,
        }
    }
}

/// Observed fields that only help people read a plan (names next to numeric ids): a probe reads
/// them only when needed, so they never count in a fingerprint.
const DISPLAY_ONLY: &[&str] = &["owner", "group"];

/// Short hash of an observed state; a plan row carries it and apply compares it.
pub fn fingerprint(seen: &Observed) -> String {
    let essential: Vec<(&String, &serde_json::Value)> =
        seen.iter().filter(|(k, _)| !DISPLAY_ONLY.contains(&k.as_str())).collect();
    let json = serde_json::to_vec(&essential).unwrap_or_default();
    hex::encode(&Sha256::digest(&json)[..8])
}

/// The plan of every host that could be read, and why the others could not.
pub struct PlanOutcome {
    pub plan: Plan,
    pub failures: Vec<(String, String)>,
    /// What each host's probe read: an apply made at once from this plan reuses it.
    pub probed: IndexMap<String, Probed>,
}

/// What a plan's probe read on one host: its facts and each row's observed state by id.
#[derive(Clone, Debug, Default)]
pub struct Probed {
    pub facts: Facts,
    pub observed: HashMap<String, Observed>,
}

/// Plan the named hosts of `config` (with the given targets), in parallel.
pub fn plan(config: &Config, targets: &[(String, Target)], options: &PlanOptions) -> Result<PlanOutcome> {
    for ignore in &options.ignore {
        if !ignore.contains(':') {
            bail!("--ignore {ignore:?}: write it as type:name, e.g. file:/etc/app.conf");
        }
    }
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let timer = crate::trace::Timer::start("all hosts");
    let results = for_each_host(&names, options.parallel, |host| {
        let target =
            targets.iter().find(|(n, _)| n == host).map(|(_, t)| t).context("host without target")?;
        let roots = config.roots.get(host).cloned().unwrap_or_default();
        plan_host(host, target, &config.resources_for(host), options, &roots)
    });
    timer.done("");
    let mut outcome = PlanOutcome {
        plan: Plan { direction: Direction::Up, hosts: IndexMap::new(), rows: Vec::new() },
        failures: Vec::new(),
        probed: IndexMap::new(),
    };
    for (host, result) in results {
        match result {
            Ok((mut host_plan, rows, probed)) => {
                outcome.probed.insert(host.clone(), probed);
                let made_by = if options.made_by.is_empty() { "plan" } else { options.made_by.as_str() };
                host_plan.origin = crate::model::Origin::new(options.project.clone(), made_by);
                host_plan.roots = config.roots.get(&host).cloned().unwrap_or_default();
                outcome.plan.hosts.insert(host, host_plan);
                outcome.plan.rows.extend(rows);
            }
            Err(e) => outcome.failures.push((host, format!("{e:#}"))),
        }
    }
    Ok(outcome)
}

/// Probe `resources` on one host in one script: the observed state of each, and who the host is.
pub fn probe_host(
    transport: &mut dyn Transport,
    resources: &[&Resource],
    batch: ProbeBatch,
) -> Result<(Facts, Vec<Observed>)> {
    probe_host_cached(transport, resources, batch, None)
}

/// As [`probe_host`], reusing remembered content hashes of files that did not change.
pub fn probe_host_cached(
    transport: &mut dyn Transport,
    resources: &[&Resource],
    mut batch: ProbeBatch,
    cache: Option<&mut HashCache>,
) -> Result<(Facts, Vec<Observed>)> {
    for r in resources {
        r.kind().probe(&mut batch);
    }
    read_batch(transport, resources, batch, cache)
}

/// Read `batch` (what `resources` ask, and more) on the host: the facts and each resource's
/// observed state.
fn read_batch(
    transport: &mut dyn Transport,
    resources: &[&Resource],
    mut batch: ProbeBatch,
    cache: Option<&mut HashCache>,
) -> Result<(Facts, Vec<Observed>)> {
    let mut candidates = Vec::new();
    if let Some(cache) = cache.as_deref() {
        candidates = cache.candidates(batch.sha256_paths());
        batch.remember(&candidates);
    }
    let nonce = nonce();
    let script = batch.script(&nonce)?;
    let timer = crate::trace::Timer::start("probe script");
    let out = if batch.contained() {
        transport.run_contained(script.as_bytes(), &mut |_| {})?
    } else {
        transport.run_script(script.as_bytes(), &mut |_| {})?
    };
    timer.done(&format!(
        "{} bytes in, {} out, {} hashes remembered",
        script.len(),
        out.stdout.len(),
        candidates.len()
    ));
    if out.status != 0 {
        bail!(
            "the probe script failed on {} (exit {}): {}",
            transport.describe(),
            out.status,
            out.stderr_text()
        );
    }
    let mut facts = batch.parse(&out.stdout, &nonce).with_context(|| {
        format!("reading the probe output from {}: {}", transport.describe(), out.stderr_text())
    })?;
    if let Some(cache) = cache {
        let missing = cache.fill(&mut facts, &candidates);
        if !missing.is_empty() {
            hash_now(transport, &missing, &mut facts)?;
        }
        if let Some(clock) = facts.clock {
            cache.update(&facts, clock);
            cache.save();
        }
    }
    let timer = crate::trace::Timer::start("parse + observe");
    let observed: Vec<Observed> = resources.iter().map(|r| r.kind().observe(&facts)).collect();
    timer.done("");
    Ok((facts, observed))
}

/// Hash `paths` now (files whose remembered hash does not fit any more): one more small exec.
fn hash_now(transport: &mut dyn Transport, paths: &[String], facts: &mut Facts) -> Result<()> {
    let batch = ProbeBatch::hashes(paths, false);
    let nonce = nonce();
    let out = transport.run_script(batch.script(&nonce)?.as_bytes(), &mut |_| {})?;
    let fresh = batch.parse(&out.stdout, &nonce)?;
    for path in paths {
        if let (Some(seen), Some(sha)) =
            (facts.paths.get_mut(path), fresh.paths.get(path).and_then(|p| p.sha256.clone()))
        {
            seen.sha256 = Some(sha);
        }
    }
    Ok(())
}

fn plan_host(
    host: &str,
    target: &Target,
    all: &[Resource],
    options: &PlanOptions,
    host_roots: &crate::runs::Roots,
) -> Result<(HostPlan, Vec<PlanRow>, Probed)> {
    let batch = || {
        let mut batch = ProbeBatch::default();
        if let Some(roots) = &options.track_roots {
            batch.roots(&roots.or(host_roots));
        }
        batch
    };
    super::busy::wait_for(host);
    let mut transport =
        target.connect(&options.credentials).with_context(|| format!("connecting to host {host}"))?;
    let naming = &options.packages;
    let has_packages = all.iter().any(|r| matches!(r, Resource::Package(_)));
    let renames_packages = has_packages && (naming.lock.is_some() || naming.repology.is_some());
    let has_env_files = all.iter().any(|r| matches!(r, Resource::EnvFile(_)));
    if !renames_packages && !has_env_files {
        return plan_over(
            host,
            target,
            transport.as_mut(),
            all,
            &options.ignore,
            options.hash_cache.as_deref(),
            batch(),
        );
    }
    let mut resources = all.to_vec();
    for resource in resources.iter_mut().filter(|r| matches!(r, Resource::EnvFile(_))) {
        resource.resolve(&options.secrets)?;
    }
    if !renames_packages {
        // Nothing to rename.
    } else if naming.lock.is_some() {
        naming.apply_lock(&mut resources)?;
    } else {
        // Repology names depend on the host's exact release: read it first (one small exec).
        let release = read_release(transport.as_mut()).with_context(|| format!("host {host}"))?;
        naming.apply_repology(&release, &mut resources).with_context(|| format!("host {host}"))?;
    }
    let (host_plan, rows, probed) = plan_over(
        host,
        target,
        transport.as_mut(),
        &resources,
        &options.ignore,
        options.hash_cache.as_deref(),
        batch(),
    )?;
    if let Some(release) = &host_plan.release {
        naming.check_release(host, release)?;
    }
    Ok((host_plan, rows, probed))
}

/// `debian_12`: the host's `ID` and major `VERSION_ID` from /etc/os-release.
fn read_release(transport: &mut dyn Transport) -> Result<String> {
    let out = transport.run_script(super::probe::OS_RELEASE.as_bytes(), &mut |_| {})?;
    let os = super::probe::OsFacts::parse(&String::from_utf8_lossy(&out.stdout));
    if os.id.is_empty() {
        bail!("cannot tell the host's release: /etc/os-release has no ID");
    }
    Ok(os.release())
}

/// Plan `all` on one host over an open connection.
pub fn plan_over(
    host: &str,
    target: &Target,
    transport: &mut dyn Transport,
    all: &[Resource],
    ignore: &[String],
    hash_cache: Option<&std::path::Path>,
    batch: ProbeBatch,
) -> Result<(HostPlan, Vec<PlanRow>, Probed)> {
    // Directories missing above the paths the plan puts in place become rows of their own.
    let parents = parent_dirs(all);
    let refs: Vec<&Resource> = all.iter().chain(&parents).collect();
    let ordered: Vec<&Resource> = dependency_order(&refs).into_iter().map(|i| refs[i]).collect();
    let (ignored, probed): (Vec<&Resource>, Vec<&Resource>) =
        ordered.iter().partition(|r| ignore.contains(&r.kind().id()));
    let batch = reading_batch(all, &probed, batch);
    // What the script before this plan read ahead for it (`read_ahead`), when it holds all of it.
    let (facts, observed) = match transport.take_reading().filter(|r| r.batch.covers(&batch)) {
        Some(reading) => {
            crate::trace::note(&format!("host {host}: planned from the reading taken ahead"));
            let observed = probed.iter().map(|r| r.kind().observe(&reading.facts)).collect();
            (reading.facts, observed)
        }
        None => {
            let mut cache = hash_cache.map(|dir| HashCache::load(dir, target));
            read_batch(transport, &probed, batch, cache.as_mut())
                .with_context(|| format!("planning host {host}"))?
        }
    };
    let declared: HashSet<String> = all.iter().map(|r| r.kind().id()).collect();
    // Paths this plan deletes: a directory to remove may hold them.
    let deleted: HashSet<&str> = probed
        .iter()
        .zip(&observed)
        .filter(|(r, seen)| r.kind().diff(seen).action == Action::Delete)
        .filter_map(|(r, _)| r.path())
        .collect();
    let diff_timer = crate::trace::Timer::start("diff");
    let mut rows = Vec::with_capacity(ordered.len());
    // Ids changed by this plan so far: a service restarts after a dependency that changed.
    let mut changed: Vec<String> = Vec::new();
    // Ids of rows that cannot be applied: rows that need them cannot be either.
    let mut failing: HashSet<String> = HashSet::new();
    for (resource, seen) in probed.iter().zip(&observed) {
        let mut resource = (*resource).clone();
        if let Resource::Service(service) = &mut resource {
            service.restart_after(&changed);
        }
        let kind = resource.kind();
        let mut diff = kind.diff(seen);
        let is_parent = matches!(&resource, Resource::Dir(d) if d.parent);
        if is_parent && diff.action == Action::Noop {
            // Already there: not part of the plan.
            continue;
        }
        let conflict = kind
            .conflict(seen)
            .or_else(|| busy_dir(&resource, &diff, &facts, &deleted))
            .or_else(|| missing_owner(&resource, &facts, &declared, host))
            .or_else(|| {
                // What needs a row that cannot be applied cannot be applied either.
                let blocked = kind.depends_on().into_iter().find(|d| failing.contains(d))?;
                Some(format!("needs {blocked}, which cannot be applied (see its row)"))
            });
        let note = match conflict {
            Some(why) => {
                diff = Diff { action: Action::Error, reason: Reason::Conflict, changes: diff.changes };
                why
            }
            None => String::new(),
        };
        if is_parent && diff.action == Action::Create {
            diff.reason = Reason::Parent;
        }
        let (id, rtype, name) = (kind.id(), kind.type_name().to_string(), kind.name().to_string());
        let reversible = kind.reversible(&diff) && diff.action != Action::Error;
        if diff.action == Action::Error {
            failing.insert(id.clone());
        }
        if diff.action.mutates() {
            changed.push(id.clone());
        } else if !diff.action.applies() {
            // A row that changes nothing never needs its payload: keep plans of big trees small.
            resource.strip_payload();
        }
        rows.push(PlanRow {
            host: host.to_string(),
            id,
            rtype,
            name,
            action: diff.action,
            reversible,
            changes: diff.changes,
            reason: diff.reason,
            fingerprint: fingerprint(seen),
            resource,
            note,
        });
    }
    for resource in ignored {
        let kind = resource.kind();
        rows.push(PlanRow {
            host: host.to_string(),
            id: kind.id(),
            rtype: kind.type_name().to_string(),
            name: kind.name().to_string(),
            action: Action::Noop,
            changes: Vec::new(),
            reason: Reason::Ignored,
            reversible: true,
            fingerprint: String::new(),
            resource: resource.clone(),
            note: String::new(),
        });
    }
    diff_timer.done(&format!("{} rows", rows.len()));
    let release = facts.os.as_ref().map(|os| os.release());
    let host_plan = HostPlan {
        target: target.clone(),
        identity: facts.identity.clone(),
        release,
        origin: Default::default(),
        roots: Default::default(),
    };
    let observed = probed.iter().map(|r| r.kind().id()).zip(observed).collect();
    Ok((host_plan, rows, Probed { facts, observed }))
}

/// What a plan of `all` reads to plan `probed` (those of `all` and their parent folders that it
/// does not ignore): each one's own reading, the accounts when owners are named, the entries of
/// folders to remove.
fn reading_batch(all: &[Resource], probed: &[&Resource], mut batch: ProbeBatch) -> ProbeBatch {
    if !named_owners(all).is_empty() {
        batch.accounts();
    }
    for r in probed {
        if let Resource::Dir(d) = r
            && d.state == State::Absent
        {
            batch.emptiness(&d.path);
        }
        r.kind().probe(&mut batch);
    }
    batch
}

/// What planning `all` on a host reads, with the runs' `roots` of a tracked apply: the batch a
/// reading taken ahead for that plan asks (see `read_ahead`).
pub(crate) fn planned_reading(all: &[Resource], roots: Option<&crate::runs::Roots>) -> ProbeBatch {
    let parents = parent_dirs(all);
    let refs: Vec<&Resource> = all.iter().chain(&parents).collect();
    let mut batch = ProbeBatch::default();
    if let Some(roots) = roots {
        batch.roots(roots);
    }
    reading_batch(all, &refs, batch)
}

/// The directories above every path `all` puts in place that it does not declare, as directories
/// to create when missing (mode 0755, no owner).
fn parent_dirs(all: &[Resource]) -> Vec<Resource> {
    let declared: HashSet<&str> = all
        .iter()
        .filter_map(|r| match r {
            Resource::Dir(d) => Some(d.path.as_str()),
            _ => None,
        })
        .collect();
    let mut seen = HashSet::new();
    let mut parents = Vec::new();
    for path in all.iter().filter(|r| r.puts_path()).filter_map(Resource::path) {
        for id in ancestor_dir_ids(path) {
            let dir = id.trim_start_matches("dir:").to_string();
            if !declared.contains(dir.as_str()) && seen.insert(dir.clone()) {
                parents.push(Resource::Dir(Dir::parent(&dir)));
            }
        }
    }
    parents
}

/// Owner and group names (not numeric ids) the path resources set: (`user`|`group`, name).
fn named_owners(all: &[Resource]) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for r in all.iter().filter(|r| r.path().is_some()) {
        for id in r.kind().depends_on() {
            if let Some((kind @ ("user" | "group"), name)) = id.split_once(':')
                && !name.chars().all(|c| c.is_ascii_digit())
            {
                names.push((kind.to_string(), name.to_string()));
            }
        }
    }
    names
}

/// A directory to remove that holds entries this plan does not remove: the apply would fail.
fn busy_dir(
    resource: &Resource,
    diff: &Diff,
    facts: &super::probe::Facts,
    deleted: &HashSet<&str>,
) -> Option<String> {
    let Resource::Dir(dir) = resource else { return None };
    if diff.action != Action::Delete {
        return None;
    }
    let prefix = format!("{}/", dir.path);
    let left: Vec<&String> =
        facts.children.iter().filter(|c| c.starts_with(&prefix) && !deleted.contains(c.as_str())).collect();
    let first = left.first()?;
    Some(format!(
        "{} is not empty ({} entr{}, e.g. {first}): hk removes only empty directories; remove its content in the same plan, or leave the directory",
        dir.path,
        left.len(),
        if left.len() == 1 { "y" } else { "ies" }
    ))
}

/// An owner or group the resource names that the host lacks and the config does not declare.
fn missing_owner(
    resource: &Resource,
    facts: &super::probe::Facts,
    declared: &HashSet<String>,
    host: &str,
) -> Option<String> {
    for (kind, name) in named_owners(std::slice::from_ref(resource)) {
        let id = format!("{kind}:{name}");
        let exists =
            if kind == "user" { facts.users.contains_key(&name) } else { facts.groups.contains_key(&name) };
        if !exists && !declared.contains(&id) {
            return Some(format!(
                "{kind} {name} does not exist on host {host}: declare it in the config ({{type: {kind}, name: {name}}}) or create it first"
            ));
        }
    }
    None
}
