//! `hk runs`: the tracked runs recorded on hosts, as a table; one run in full; pruning old ones.

use hk_core::engine::{self, fetch_runs};
use hk_core::runs::{RunRecord, of_project, prune_script};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, PipelineData, Record, Signature, Span, SyntaxShape, Type, Value,
};

use super::plan::{host_signature, roots, roots_flags};
use crate::HkPlugin;
use crate::convert::json_to_value;
use crate::error::LabelErr;
use crate::load::{credentials, select_with};

pub struct Runs;

fn summary(run: &RunRecord, verbose: bool, span: Span) -> Value {
    let mut r = Record::new();
    // What a person looks for first, so an 80-column terminal shows it: which run, how it ended,
    // what made it.
    r.push("id", Value::string(run.id.clone(), span));
    r.push("status", Value::string(format!("{:?}", run.status).to_lowercase(), span));
    r.push("made_by", Value::string(run.origin.describe(), span));
    r.push("n_changes", Value::int(run.changes.len() as i64, span));
    r.push("host", Value::string(run.host.clone(), span));
    r.push("direction", Value::string(format!("{:?}", run.direction).to_lowercase(), span));
    r.push("started_at", Value::date(run.started_at.fixed_offset(), span));
    let duration = run.finished_at.map(|f| (f - run.started_at).num_nanoseconds().unwrap_or(0));
    r.push("duration", duration.map_or(Value::nothing(span), |d| Value::duration(d, span)));
    // The changes as a list a person can read (`where`, `get`), and how many.
    let changes = run
        .changes
        .iter()
        .map(|c| {
            let mut x = Record::new();
            x.push("id", Value::string(c.id.clone(), span));
            x.push("action", Value::string(c.action.as_str(), span));
            x.push("status", Value::string(format!("{:?}", c.status).to_lowercase(), span));
            Value::record(x, span)
        })
        .collect();
    r.push("changes", Value::list(changes, span));
    r.push("project", run.origin.project.clone().map_or(Value::nothing(span), |p| Value::string(p, span)));
    if verbose {
        r.push("artifacts", json_to_value(&serde_json::to_value(&run.artifacts).unwrap_or_default(), span));
        r.push("backups", Value::string(run.backups.clone(), span));
    }
    Value::record(r, span)
}

/// The project whose runs a command sees: the config's, else the folder it runs in.
pub fn project_of(
    engine: &EngineInterface,
    config: &hk_core::config::Config,
) -> Result<String, LabeledError> {
    match &config.project {
        Some(p) => Ok(p.clone()),
        None => Ok(crate::load::current_dir(engine)?.display().to_string()),
    }
}

/// Piped input that names a run (its id, or a row of `hk runs`): the id, and no input left; any
/// other input is handed back (a config record).
fn piped_run_id(input: PipelineData, span: Span) -> Result<(PipelineData, Option<String>), LabeledError> {
    if matches!(input, PipelineData::Empty) {
        return Ok((input, None));
    }
    let value = input.into_value(span)?;
    let id = match &value {
        Value::String { val, .. } => Some(val.clone()),
        Value::Record { val, .. }
            if val.contains("id") && !val.contains("hosts") && !val.contains("resources") =>
        {
            val.get("id").and_then(|v| v.as_str().ok()).map(str::to_string)
        }
        _ => None,
    };
    match id {
        Some(id) => Ok((PipelineData::empty(), Some(id))),
        None => Ok((PipelineData::value(value, None), None)),
    }
}

/// The whole record, with typed times and the changes as a table.
fn full(run: &RunRecord, span: Span) -> Value {
    let json = serde_json::to_value(run).unwrap_or_default();
    let mut value = json_to_value(&json, span);
    if let Value::Record { val, .. } = &mut value {
        let record = val.to_mut();
        record.insert("started_at", Value::date(run.started_at.fixed_offset(), span));
        if let Some(f) = run.finished_at {
            record.insert("finished_at", Value::date(f.fixed_offset(), span));
        }
    }
    value
}

impl PluginCommand for Runs {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk runs"
    }

    fn description(&self) -> &str {
        "List the tracked runs recorded on hosts, newest first; show one in full; prune old ones."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["history", "log", "audit", "record", "rollback"]
    }

    fn signature(&self) -> Signature {
        roots_flags(host_signature(Signature::build(self.name())))
            .switch("latest", "only the newest run", None)
            .switch("all-projects", "the runs of every project on the hosts, not only this one's", None)
            .named("id", SyntaxShape::String, "the whole record of this run", None)
            .switch("verbose", "add artifact and backup paths", Some('v'))
            .switch("prune", "remove older runs with their artifacts and backups", None)
            .named("keep", SyntaxShape::Int, "with --prune: how many of the newest runs to keep", Some('k'))
            .input_output_types(vec![
                (Type::Nothing, Type::table()),
                (Type::Nothing, Type::record()),
                (Type::record(), Type::table()),
                (Type::record(), Type::record()),
                (Type::String, Type::record()),
            ])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk runs prod | where status != ok",
                description: "Runs on prod that did not finish cleanly",
                result: None,
            },
            Example {
                example: "hk runs --local --latest",
                description: "The newest run recorded on this machine",
                result: None,
            },
            Example {
                example: "hk runs prod --latest | hk runs prod | get changes | where action == update",
                description: "What one run updated",
                result: None,
            },
            Example {
                example: "hk runs prod --prune --keep 10",
                description: "Keep the ten newest runs and remove the rest",
                result: None,
            },
        ]
    }

    fn run(
        &self,
        _plugin: &HkPlugin,
        engine: &EngineInterface,
        call: &EvaluatedCall,
        input: PipelineData,
    ) -> Result<PipelineData, LabeledError> {
        let call = &crate::load::without_null_flags(call);
        let span = call.head;
        // A run's id (or a row of `hk runs`) may come piped, for `--id`.
        let (input, piped_id) = piped_run_id(input, span)?;
        let config_input = super::plan::input_record(input, span)?;
        let selection = select_with(engine, call, config_input, true, 0)?;
        let creds = credentials(engine, call, selection.targets.iter().map(|(_, t)| t))?;
        let roots = roots(call)?;
        let keep: Option<nu_protocol::Spanned<i64>> = call.get_flag("keep")?;
        let prune = call.has_flag("prune")?;
        if prune != keep.is_some() {
            return Err(LabeledError::new("hk runs: --prune and --keep N go together")
                .with_label("add both to remove old runs", span));
        }
        let mut all: Vec<RunRecord> = Vec::new();
        let mut failures = Vec::new();
        let mut looked = Vec::new();
        let project = project_of(engine, &selection.config)?;
        let all_projects = call.has_flag("all-projects")?;
        for (host, target) in &selection.targets {
            // One connection per host serves both the listing and the pruning.
            // The flags, else where the config says this host keeps its runs.
            let roots = roots.or(&selection.config.roots.get(host).cloned().unwrap_or_default());
            let connected = target.connect(&creds);
            let fetched = connected.and_then(|mut t| fetch_runs(t.as_mut(), &roots).map(|runs| (t, runs)));
            match fetched {
                Ok((mut transport, (runs, runs_root, _))) => {
                    looked.push(format!("{runs_root} on {host}"));
                    // Only this host's runs for this project, unless asked for all.
                    let runs: Vec<RunRecord> =
                        of_project(&runs, host, &project, all_projects).into_iter().cloned().collect();
                    if let Some(keep) = &keep {
                        let n = usize::try_from(keep.item).map_err(|_| {
                            LabeledError::new("hk runs: --keep must be 0 or more")
                                .with_label("here", keep.span)
                        })?;
                        let old: Vec<String> = runs.iter().skip(n).map(|r| r.id.clone()).collect();
                        if !old.is_empty() {
                            let script = prune_script(&roots, &old).at(span)?;
                            let out = transport.run_script(script.as_bytes(), &mut |_| {}).at(span)?;
                            if out.status != 0 {
                                failures.push((host.clone(), out.stderr_text()));
                                continue;
                            }
                        }
                        all.extend(runs.into_iter().skip(n));
                        continue;
                    }
                    all.extend(runs);
                }
                Err(e) => failures.push((host.clone(), format!("{e:#}"))),
            }
        }
        if !failures.is_empty() {
            return Err(crate::error::labeled(engine::failed_hosts_error(&failures), span));
        }
        all.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        if prune {
            let removed = all.iter().map(|r| summary(r, false, span)).collect();
            return Ok(PipelineData::value(Value::list(removed, span), None));
        }
        let id = match (call.get_flag::<nu_protocol::Spanned<String>>("id")?, piped_id) {
            (Some(id), _) => Some(id),
            (None, Some(id)) => Some(nu_protocol::Spanned { item: id, span }),
            (None, None) => None,
        };
        if all.is_empty() {
            let whose = if all_projects {
                String::new()
            } else {
                format!(" for project {project} (--all-projects sees every project's)")
            };
            eprintln!("hk runs: no run recorded under {}{whose}", looked.join(", "));
        }
        if let Some(id) = id {
            let run = all.iter().find(|r| r.id == id.item).ok_or_else(|| {
                LabeledError::new(format!("hk runs: no run {:?}", id.item))
                    .with_label("not recorded on the selected hosts", id.span)
            })?;
            return Ok(PipelineData::value(full(run, span), None));
        }
        let verbose = call.has_flag("verbose")?;
        if call.has_flag("latest")? {
            return Ok(PipelineData::value(
                all.first().map_or(Value::nothing(span), |r| summary(r, verbose, span)),
                None,
            ));
        }
        let rows = all.iter().map(|r| summary(r, verbose, span)).collect();
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}
