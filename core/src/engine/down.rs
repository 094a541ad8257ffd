//! Down plans: the way back from a tracked run (restoring what its record and backups kept) or from
//! a bare plan (what the plan itself recorded). A down plan is an ordinary plan, applied with apply.

use anyhow::{Context, Result, bail};
use indexmap::IndexMap;

use super::plan::{fingerprint, probe_host};
use super::probe::ProbeBatch;
use crate::model::{Action, Direction, FieldChange, HostPlan, Plan, PlanRow, Reason};
use crate::resources::{
    Dir, File, Link, Observed, PathAttrs, ReleaseArtifact, ReleaseUnpack, Resource, State,
};
use crate::runs::{ChangeRecord, ChangeStatus, Roots, RunRecord, list_script, parse_list};
use crate::transport::{Credentials, Target, Transport};

#[derive(Clone, Default)]
pub struct DownOptions {
    /// Keep only these ids (`type:name`); empty keeps all.
    pub only: Vec<String>,
    /// Leave these ids out.
    pub except: Vec<String>,
    pub credentials: Credentials,
}

impl DownOptions {
    fn keeps(&self, id: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == id)) && !self.except.iter().any(|e| e == id)
    }

    pub fn validate(&self) -> Result<()> {
        for id in self.only.iter().chain(&self.except) {
            if !id.contains(':') {
                bail!("{id:?}: --only/--except take type:name, e.g. file:/etc/app.conf");
            }
        }
        Ok(())
    }
}

/// One row of a down plan before it is checked against the host.
enum DownItem {
    /// Bring the host to this resource; `only_if_empty` for directories the run created; `left` is
    /// what the run left there (see `ChangeRecord::after`).
    Restore { resource: Resource, only_if_empty: bool, left: Option<String> },
    /// Cannot be undone; shown, never dropped.
    Irreversible { id: String, rtype: String, name: String, resource: Resource, note: String },
}

/// Read the run records of a host.
pub fn fetch_runs(transport: &mut dyn Transport, roots: &Roots) -> Result<(Vec<RunRecord>, String, String)> {
    roots.validate()?;
    let nonce = super::nonce();
    let out = transport.run_script(list_script(roots, &nonce)?.as_bytes(), &mut |_| {})?;
    if out.status != 0 {
        bail!("reading run records on {} failed: {}", transport.describe(), out.stderr_text());
    }
    parse_list(&out.stdout, &nonce)
}

fn text(seen: &Observed, key: &str) -> Option<String> {
    seen.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

/// The resource that brings `path` back to `before`.
fn from_before(
    rtype: &str,
    path: &str,
    before: &Observed,
    backup: Option<&str>,
) -> Result<(Resource, bool), String> {
    let attrs =
        || PathAttrs { mode: text(before, "mode"), owner: text(before, "uid"), group: text(before, "gid") };
    match text(before, "kind").as_deref().unwrap_or("missing") {
        "missing" => Ok(match rtype {
            "dir" => (Resource::Dir(Dir::with(path, PathAttrs::default(), State::Absent)), true),
            "link" => (
                Resource::Link(Link {
                    path: path.into(),
                    target: "-".into(),
                    state: State::Absent,
                    after: Vec::new(),
                }),
                false,
            ),
            "release_artifact" => (Resource::ReleaseArtifact(ReleaseArtifact::absent(path)), false),
            "release_unpack" => (Resource::ReleaseUnpack(ReleaseUnpack::absent(path)), false),
            _ => (Resource::File(File::absent(path)), false),
        }),
        "file" => match (backup, text(before, "sha256")) {
            (Some(backup), Some(sha)) => {
                let size = before.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
                Ok((Resource::File(File::restore(path, backup, &sha, size, attrs())), false))
            }
            _ => Err("the previous content was not backed up (apply with --track to keep it)".into()),
        },
        "directory" => Ok((Resource::Dir(Dir::with(path, attrs(), State::Present)), false)),
        "link" => match text(before, "target") {
            Some(target) => Ok((
                Resource::Link(Link { path: path.into(), target, state: State::Present, after: Vec::new() }),
                false,
            )),
            None => Err("the previous link target is unknown".into()),
        },
        other => Err(format!("it was a {other} before; hk does not recreate those")),
    }
}

/// The down plan of one tracked run: changes that ran, newest first.
/// `transport` is the connection the record was read over; the down plan reuses it.
pub fn down_from_run(
    host: &str,
    target: &Target,
    transport: &mut dyn Transport,
    record: &RunRecord,
    options: &DownOptions,
) -> Result<Plan> {
    let mut items = Vec::new();
    for change in record.changes.iter().rev() {
        if !matches!(change.status, ChangeStatus::Ok | ChangeStatus::Failed)
            || !change.action.mutates()
            || !options.keeps(&change.id)
        {
            continue;
        }
        if let Some(resource) = &change.resource
            && let Some(way_back) = resource.kind().down(&change.before)
        {
            items.push(non_path_item(resource, way_back));
            continue;
        }
        let way_back = if change.rtype == "release_unpack"
            && text(&change.before, "kind").as_deref() == Some("directory")
        {
            release_way_back(record, change)
        } else {
            from_before(&change.rtype, &change.name, &change.before, change.backup.as_deref())
        };
        items.push(match way_back {
            Ok((resource, only_if_empty)) => {
                DownItem::Restore { resource, only_if_empty, left: change.after.clone() }
            }
            Err(note) => DownItem::Irreversible {
                id: change.id.clone(),
                rtype: change.rtype.clone(),
                name: change.name.clone(),
                resource: Resource::File(File::absent(&change.name)),
                note,
            },
        });
    }
    let (mut host_plan, rows) = check_items(host, target, transport, items)?;
    host_plan.origin = crate::model::Origin {
        project: record.origin.project.clone(),
        made_by: "down".into(),
        undoes: Some(record.id.clone()),
    };
    let mut hosts = IndexMap::new();
    hosts.insert(host.to_string(), host_plan);
    Ok(Plan { direction: Direction::Down, hosts, rows })
}

/// A removed release directory comes back whole, unpacked again from its artifact: the marker
/// beside it names the artifact's bytes; without one, the hash the same run saw of the artifact it
/// removed.
fn release_way_back(record: &RunRecord, change: &ChangeRecord) -> Result<(Resource, bool), String> {
    let artifact = crate::resources::artifact_of(&change.name);
    let artifact_sha = record
        .changes
        .iter()
        .find(|c| c.rtype == "release_artifact" && Some(&c.name) == artifact.as_ref())
        .and_then(|c| text(&c.before, "sha256"));
    let restored = ReleaseUnpack::restore(&change.name, &change.before, artifact_sha)?;
    Ok((Resource::ReleaseUnpack(restored), false))
}

/// The down plan of a bare plan: what the plan recorded is enough to delete what it created and to
/// restore link targets and directory modes; file contents need a run's backups.
pub fn down_from_plan(plan: &Plan, options: &DownOptions) -> Result<Plan> {
    let mut down = Plan { direction: Direction::Down, hosts: IndexMap::new(), rows: Vec::new() };
    for (host, host_plan) in &plan.hosts {
        let mut items = Vec::new();
        for row in
            plan.rows.iter().rev().filter(|r| &r.host == host && r.action.mutates() && options.keeps(&r.id))
        {
            items.push(item_from_row(row));
        }
        let mut transport = host_plan
            .target
            .connect(&options.credentials)
            .with_context(|| format!("connecting to host {host}"))?;
        let (mut checked, rows) = check_items(host, &host_plan.target, transport.as_mut(), items)?;
        checked.origin = crate::model::Origin::new(host_plan.origin.project.clone(), "down");
        if checked.identity != host_plan.identity {
            bail!("host {host} is not the machine the plan was made for; refusing to plan its way back");
        }
        down.hosts.insert(host.clone(), checked);
        down.rows.extend(rows);
    }
    Ok(down)
}

/// A down item of a type that is not a path, from what its kind says the way back is.
fn non_path_item(resource: &Resource, way_back: Result<Resource, String>) -> DownItem {
    match way_back {
        Ok(resource) => DownItem::Restore { resource, only_if_empty: false, left: None },
        Err(note) => {
            let kind = resource.kind();
            DownItem::Irreversible {
                id: kind.id(),
                rtype: kind.type_name().to_string(),
                name: kind.name().to_string(),
                resource: resource.clone(),
                note,
            }
        }
    }
}

fn item_from_row(row: &PlanRow) -> DownItem {
    if row.resource.path().is_none() {
        // What the row's changes recorded is the state before: enough for accounts and commands.
        let mut before = Observed::new();
        before.insert("exists".into(), (row.action != Action::Create).into());
        for change in &row.changes {
            if let Some(from) = &change.from {
                before.insert(change.field.clone(), from.clone().into());
            }
        }
        if let Some(way_back) = row.resource.kind().down(&before) {
            return non_path_item(&row.resource, way_back);
        }
    }
    let from = |field: &str| row.changes.iter().find(|c| c.field == field).and_then(|c| c.from.clone());
    let only_attrs = row.changes.iter().all(|c| matches!(c.field.as_str(), "mode" | "owner" | "group"));
    let restored = match (row.action, row.rtype.as_str()) {
        (Action::Create, _) => {
            from_before(&row.rtype, &row.name, &Observed::new(), None).map_err(|e| e.to_string())
        }
        (Action::Update | Action::Delete, "link") if from("target").is_some() && from("kind").is_none() => {
            Ok((
                Resource::Link(Link {
                    path: row.name.clone(),
                    target: from("target").unwrap_or_default(),
                    state: State::Present,
                    after: Vec::new(),
                }),
                false,
            ))
        }
        (Action::Update, "dir") if only_attrs => Ok((
            Resource::Dir(Dir::with(
                &row.name,
                PathAttrs { mode: from("mode"), owner: from("owner"), group: from("group") },
                State::Present,
            )),
            false,
        )),
        _ => Err("needs a run's backups: apply with --track, then `hk down --run ID`".to_string()),
    };
    match restored {
        Ok((resource, only_if_empty)) => DownItem::Restore { resource, only_if_empty, left: None },
        Err(note) => DownItem::Irreversible {
            id: row.id.clone(),
            rtype: row.rtype.clone(),
            name: row.name.clone(),
            resource: row.resource.clone(),
            note,
        },
    }
}

/// Probe every restorable item in one script and turn all items into down rows.
fn check_items(
    host: &str,
    target: &Target,
    transport: &mut dyn Transport,
    items: Vec<DownItem>,
) -> Result<(HostPlan, Vec<PlanRow>)> {
    let mut batch = ProbeBatch::default();
    let mut resources: Vec<&Resource> = Vec::new();
    for item in &items {
        if let DownItem::Restore { resource, only_if_empty, .. } = item {
            if *only_if_empty && let Some(path) = resource.path() {
                batch.emptiness(path);
            }
            resources.push(resource);
        }
    }
    super::busy::wait_for(host);
    let (facts, observed) =
        probe_host(transport, &resources, batch).with_context(|| format!("reading host {host}"))?;
    // Paths this down plan deletes: a directory the run created may go once they are gone.
    let deleted: std::collections::HashSet<String> = resources
        .iter()
        .zip(&observed)
        .filter(|(r, seen)| r.kind().diff(seen).action == Action::Delete)
        .filter_map(|(r, _)| r.path().map(str::to_string))
        .collect();
    let mut seen_iter = observed.into_iter();
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        match item {
            DownItem::Restore { mut resource, only_if_empty, left } => {
                let seen = seen_iter.next().unwrap_or_default();
                let kind = resource.kind();
                let diff = kind.diff(&seen);
                let (id, rtype, name) = (kind.id(), kind.type_name().to_string(), kind.name().to_string());
                let busy_dir = only_if_empty
                    && diff.action == Action::Delete
                    && resource.path().is_some_and(|dir| {
                        let prefix = format!("{dir}/");
                        facts.children.iter().any(|c| c.starts_with(&prefix) && !deleted.contains(c))
                    });
                let (action, reversible, note) = if busy_dir {
                    (
                        Action::Noop,
                        false,
                        "the directory is not empty: hk removes only an empty directory it created"
                            .to_string(),
                    )
                } else {
                    (diff.action, true, hand_change(left.as_deref(), &seen).unwrap_or_default())
                };
                if !action.mutates() {
                    resource.strip_payload();
                }
                rows.push(PlanRow {
                    host: host.to_string(),
                    id,
                    rtype,
                    name,
                    action,
                    changes: if busy_dir { Vec::new() } else { diff.changes },
                    reason: if action.mutates() { Reason::Down } else { Reason::InSync },
                    reversible,
                    fingerprint: fingerprint(&seen),
                    resource,
                    note,
                });
            }
            DownItem::Irreversible { id, rtype, name, mut resource, note } => {
                resource.strip_payload();
                rows.push(PlanRow {
                    host: host.to_string(),
                    id,
                    rtype,
                    name,
                    action: Action::Noop,
                    changes: Vec::<FieldChange>::new(),
                    reason: Reason::Down,
                    reversible: false,
                    fingerprint: String::new(),
                    resource,
                    note,
                });
            }
        }
    }
    Ok((
        HostPlan {
            target: target.clone(),
            identity: facts.identity,
            release: None,
            origin: Default::default(),
            roots: Default::default(),
        },
        rows,
    ))
}

/// When what a run left (`left`: `sha256:…` or `target:…`) is no longer there, the way back
/// discards a change made since — by hand or by another tool — and the row says so.
fn hand_change(left: Option<&str>, seen: &Observed) -> Option<String> {
    let left = left?;
    let now = match left.split_once(':')? {
        ("sha256", _) => text(seen, "sha256").map(|s| format!("sha256:{s}")),
        ("target", _) => text(seen, "target").map(|t| format!("target:{t}")),
        _ => return None,
    };
    let kind = text(seen, "kind").unwrap_or_default();
    if kind == "missing" {
        return Some("it was removed since the run: the way back puts the earlier state back anyway".into());
    }
    (now.as_deref() != Some(left)).then(|| {
        "it changed since the run (by hand or by another tool): the way back discards that change".to_string()
    })
}
