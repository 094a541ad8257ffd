//! `hk apply`: re-check and apply plan rows, streaming one event row per change.

use std::sync::mpsc;

use hk_core::engine::{self, ApplyOptions};
use hk_core::model::{Direction, EventStatus, Plan};
use hk_core::plan_file;
use indexmap::IndexMap;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, ListStream, PipelineData, Signature, Span, Spanned, SyntaxShape, Type,
    Value,
};

use super::plan::{
    input_record, made_by_flag, parallel, plan_selection, roots, roots_flags, selection_signature,
};
use crate::HkPlugin;
use crate::convert::{event_to_value, value_to_row};
use crate::error::{LabelErr, labeled};
use crate::load::{credentials, overrides, resolve_path};
use hk_core::secrets::Secrets;

pub struct Apply;

/// Plan rows piped in, back into a plan, and the (host, id) of those with nothing to do. Rows the
/// plan already knows cannot be applied (`action: error`) refuse the whole apply.
fn rows_to_plan(rows: Vec<Value>) -> Result<(Plan, Vec<(String, String)>), LabeledError> {
    let errors: Vec<String> = rows
        .iter()
        .filter_map(|v| v.as_record().ok())
        .filter(|r| r.get("action").and_then(|a| a.as_str().ok()) == Some("error"))
        .map(|r| {
            let text = |k: &str| r.get(k).and_then(|v| v.as_str().ok()).unwrap_or_default().to_string();
            format!("host {}: {}: {}", text("host"), text("id"), text("note"))
        })
        .collect();
    if !errors.is_empty() {
        let span = rows.first().map_or(Span::unknown(), |v| v.span());
        return Err(LabeledError::new(format!(
            "hk apply: {} row(s) of the plan cannot be applied; nothing was changed",
            errors.len()
        ))
        .with_label(errors.join("\n"), span)
        .with_help("fix what each row's note says and plan again, or leave those rows out with `where action != error`"));
    }
    let mut plan = Plan { direction: Direction::Up, hosts: IndexMap::new(), rows: Vec::new() };
    let mut in_sync = Vec::new();
    for (i, value) in rows.iter().enumerate() {
        let Some((row, host)) = value_to_row(value, i)? else {
            if let Ok(record) = value.as_record() {
                let text =
                    |k: &str| record.get(k).and_then(|v| v.as_str().ok()).unwrap_or_default().to_string();
                in_sync.push((text("host"), text("id")));
            }
            continue;
        };
        if let Some(known) = plan.hosts.get(&row.host) {
            if known.identity != host.identity {
                return Err(LabeledError::new("hk apply: rows for one host disagree on its identity")
                    .with_label(format!("row {i} ({})", row.id), value.span()));
            }
        } else {
            plan.hosts.insert(row.host.clone(), host);
        }
        plan.rows.push(row);
    }
    Ok((plan, in_sync))
}

impl PluginCommand for Apply {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk apply"
    }

    fn description(&self) -> &str {
        "Apply plan rows to their hosts, refusing stale rows, and stream one event per change."
    }

    fn extra_description(&self) -> &str {
        "Input: plan rows (a filtered plan applies only its rows), or --plan FILE, or neither to plan inline from TARGET/CONFIG. Exactly one of --confirm or --dry-run is required. Before changing anything the planned resources are read again; if any changed since planning, or the host is another machine, nothing is changed."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["converge", "execute", "run plan", "deploy", "provision"]
    }

    fn signature(&self) -> Signature {
        made_by_flag(roots_flags(selection_signature(Signature::build(self.name()))))
            .switch("confirm", "really change the hosts", Some('y'))
            .switch("dry-run", "check the plan against the hosts and report, changing nothing", Some('n'))
            .named("plan", SyntaxShape::Filepath, "apply a plan file written by `hk plan --out`", Some('p'))
            .switch("track", "record the run on the target, with backups before each change (default: $env.config.plugins.hk.track)", Some('t'))
            .switch("quiet", "stream only the changes that failed, and end with a summary line on stderr", Some('q'))
            .switch("verbose", "also a row (status skipped) for each planned row with nothing to do", Some('v'))
            .named(
                "read-ahead",
                SyntaxShape::Record(Default::default()),
                "the config of the plan that comes next on these hosts: on a kept SSH session, its reading is taken at the end of this apply where every change went through, and that plan uses it instead of reading again (anything else run on the session in between drops it)",
                None,
            )
            .named(
                "then-finish",
                SyntaxShape::Record(Default::default()),
                "the end of a deploy, {app, root, primary, entry, keep_runs, runs_root, backups_root, holder} as `hk deployment finish` takes them: on a kept SSH session it runs at the end of this apply where every change went through, and `hk deployment finish` with the same values then runs nothing there",
                None,
            )
            .input_output_types(vec![
                (Type::Nothing, Type::table()),
                (Type::table(), Type::table()),
                (Type::List(Box::new(Type::Any)), Type::table()),
                (Type::record(), Type::table()),
            ])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "{resources: [{type: dir, path: /nonexistent-hk-example/app}]} | hk plan local | hk apply --dry-run | get status | uniq",
                description: "Check a plan against the host without changing anything",
                result: Some(Value::test_list(vec![Value::test_string("dry-run")])),
            },
            Example {
                example: "hk plan local | where type == file | hk apply --confirm",
                description: "Apply only the file rows of a plan",
                result: None,
            },
            Example {
                example: "hk plan prod | hk apply --confirm --track",
                description: "Apply and record the run on the host, backing up before each change",
                result: None,
            },
            Example {
                example: "{resources: [{type: dir, path: /nonexistent-hk-example/app}]} | hk plan local | hk apply --dry-run --quiet | length",
                description: "Only failures in the table, a summary line on stderr",
                result: Some(Value::test_int(0)),
            },
            Example {
                example: "hk apply --plan plan.json --confirm",
                description: "Apply a saved plan (refused if the host changed since)",
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
        crate::keep_sessions(engine);
        let confirm = call.has_flag("confirm")?;
        let dry_run = call.has_flag("dry-run")?;
        if confirm == dry_run {
            return Err(LabeledError::new("hk apply needs exactly one of --confirm or --dry-run")
                .with_label("add --confirm to change the hosts, or --dry-run to only check", call.head));
        }
        let output = match (call.has_flag("quiet")?, call.has_flag("verbose")?) {
            (true, true) => {
                return Err(LabeledError::new("hk apply: --quiet and --verbose ask for opposite things")
                    .with_label("give one of them", call.head));
            }
            (true, false) => Output::Quiet,
            (false, true) => Output::Verbose,
            (false, false) => Output::Changes,
        };
        let plan_flag: Option<Spanned<String>> = call.get_flag("plan")?;
        let span = call.head;
        // A dry run changes nothing, so it is never recorded.
        let track = if (call.has_flag("track")? || track_by_default(engine)?) && !dry_run {
            Some(roots(call)?)
        } else {
            None
        };
        // What follows this apply, checked before any host is read.
        let read_ahead = match call.get_flag::<Value>("read-ahead")? {
            Some(next) if !dry_run => {
                Some(std::sync::Arc::new(crate::load::load_config(engine, call, Some(next), None, &[])?))
            }
            _ => None,
        };
        let then = match call.get_flag::<Value>("then-finish")? {
            Some(end) if !dry_run => Some(super::deployment_finish::then_finish(&end)?),
            _ => None,
        };
        // A plan made here brings the secrets it resolved and what it read on each host (not read
        // again: the plan is as fresh as a second read would be); rows and plan files do not.
        let mut probed = Default::default();
        let mut inline = |input: Option<Value>| -> Result<(Plan, Option<Secrets>), LabeledError> {
            let (outcome, secrets) = plan_selection(engine, call, input, track.clone())?;
            if !outcome.failures.is_empty() {
                return Err(labeled(engine::failed_hosts_error(&outcome.failures), span)
                    .with_help("nothing was applied; fix or leave out those hosts"));
            }
            probed = outcome.probed;
            Ok((outcome.plan, Some(secrets)))
        };
        let mut in_sync = Vec::new();
        let (mut plan, secrets) = match (plan_flag, input) {
            (Some(file), PipelineData::Empty) => {
                let path = resolve_path(engine, &file.item)?;
                (plan_file::read(&path).at(file.span)?, None)
            }
            (Some(file), _) => {
                return Err(LabeledError::new("hk apply: both piped rows and --plan given")
                    .with_label("drop this or the input", file.span));
            }
            (None, PipelineData::Empty) => inline(None)?,
            (None, input) => match input.into_value(span)? {
                Value::List { vals, .. } => {
                    let (plan, skipped) = rows_to_plan(vals.to_vec())?;
                    in_sync = skipped;
                    (plan, None)
                }
                Value::Nothing { .. } => inline(None)?,
                record @ Value::Record { .. } if record.as_record().is_ok_and(|r| r.contains("spec")) => {
                    let (plan, skipped) = rows_to_plan(vec![record])?;
                    in_sync = skipped;
                    (plan, None)
                }
                record @ Value::Record { .. } => {
                    inline(input_record(PipelineData::value(record, None), span)?)?
                }
                other => {
                    return Err(LabeledError::new("hk apply: input must be plan rows or a config record")
                        .with_label(format!("got {}", other.get_type()), other.span()));
                }
            },
        };
        // Flags such as --identity-file or --password-env also apply to rows and plan files.
        let overrides = overrides(engine, call)?;
        for host in plan.hosts.values_mut() {
            host.target.apply_overrides(&overrides);
        }
        let options = ApplyOptions {
            read_ahead,
            then,
            dry_run,
            track,
            probed,
            interrupted: Some(interrupted_since_now(engine)),
            parallel: parallel(call)?,
            hash_cache: crate::commands::plan::hash_cache_dir(engine)?,
            on_upload: Some(std::sync::Arc::new(|host: &str, id: &str, percent, done, total| {
                if total >= crate::PROGRESS_FROM {
                    eprintln!(
                        "hk apply: {host}: uploading {id}: {percent}% ({} of {} MiB)",
                        done >> 20,
                        total >> 20
                    );
                }
            })),
            credentials: credentials(engine, call, plan.hosts.values().map(|h| &h.target))?,
            secrets: match secrets {
                Some(secrets) => secrets,
                None => {
                    let resources: Vec<&hk_core::resources::Resource> =
                        plan.rows.iter().filter(|r| r.action.applies()).map(|r| &r.resource).collect();
                    crate::secrets::resolve_secrets(engine, call, &resources)?
                }
            },
        };
        // Rows with nothing to do: those piped in, and those of a plan made here or read from a file.
        in_sync
            .extend(plan.rows.iter().filter(|r| !r.action.applies()).map(|r| (r.host.clone(), r.id.clone())));
        Ok(stream_apply(plan, in_sync, options, output, engine, span))
    }
}

/// Whether Ctrl-C was pressed since this call began (nu may not have cleared an earlier one yet when
/// a `catch` runs this apply to undo what the interrupted one began).
pub(crate) fn interrupted_since_now(engine: &EngineInterface) -> hk_core::engine::Interrupted {
    let signals = engine.signals().clone();
    let already = signals.interrupted();
    std::sync::Arc::new(move || !already && signals.interrupted())
}

/// `$env.config.plugins.hk.track = true` makes every apply tracked.
fn track_by_default(engine: &EngineInterface) -> Result<bool, LabeledError> {
    Ok(engine
        .get_plugin_config()?
        .and_then(|config| config.as_record().ok().and_then(|r| r.get("track").cloned()))
        .and_then(|track| track.as_bool().ok())
        .unwrap_or(false))
}

/// Which events `hk apply` streams.
#[derive(Clone, PartialEq, Eq)]
enum Output {
    /// One row per change: ok, failed, or skipped after a failure (dry-run on a dry run).
    Changes,
    /// Failed changes only, then a summary line on stderr.
    Quiet,
    /// The changes, and a `skipped` row for each planned row with nothing to do.
    Verbose,
}

/// Run the apply on its own thread and stream its events as they happen; a failure ends the stream
/// with an error value.
fn stream_apply(
    plan: Plan,
    in_sync: Vec<(String, String)>,
    options: ApplyOptions,
    output: Output,
    engine: &EngineInterface,
    span: Span,
) -> PipelineData {
    let (tx, rx) = mpsc::sync_channel::<Value>(256);
    std::thread::spawn(move || {
        if output == Output::Verbose {
            for (host, id) in &in_sync {
                let event = hk_core::model::Event {
                    time: chrono::Utc::now(),
                    host: host.clone(),
                    id: id.clone(),
                    action: hk_core::model::Action::Noop,
                    status: EventStatus::Skipped,
                    duration: std::time::Duration::ZERO,
                    message: "in sync: nothing to do".into(),
                };
                let _ = tx.send(event_to_value(&event, span));
            }
        }
        let hosts = plan.hosts.len();
        let counts = std::sync::Mutex::new(IndexMap::<&'static str, usize>::new());
        let events = std::sync::Mutex::new(tx.clone());
        let result = engine::apply(plan, &options, &|event| {
            if let Ok(mut counts) = counts.lock() {
                *counts.entry(event.status.as_str()).or_default() += 1;
            }
            if (output != Output::Quiet || event.status == EventStatus::Failed)
                && let Ok(events) = events.lock()
            {
                let _ = events.send(event_to_value(&event, span));
            }
        });
        let counts = counts.into_inner().unwrap_or_default();
        if output == Output::Quiet {
            eprintln!("hk apply: {}", summary_line(&counts, hosts, result.is_err()));
        } else if output == Output::Changes && counts.is_empty() && result.is_ok() {
            // An empty table says why it is empty.
            let mut in_sync_hosts: Vec<&str> = in_sync.iter().map(|(host, _)| host.as_str()).collect();
            in_sync_hosts.sort();
            in_sync_hosts.dedup();
            match hosts.max(in_sync_hosts.len()) {
                0 => eprintln!("hk apply: nothing to do: no plan rows came in"),
                1 => eprintln!("hk apply: nothing to do: every planned row is in sync on its host"),
                n => eprintln!("hk apply: nothing to do: every planned row is in sync on its {n} hosts"),
            }
        }
        if let Err(err) = result {
            let _ = tx.send(Value::error(labeled(err, span).into(), span));
        }
    });
    PipelineData::list_stream(ListStream::new(rx.into_iter(), span, engine.signals().clone()), None)
}

/// `3 ok, 1 failed, 2 skipped on 2 hosts`: an apply at a glance.
fn summary_line(counts: &IndexMap<&'static str, usize>, hosts: usize, failed: bool) -> String {
    let mut parts: Vec<String> = ["ok", "failed", "skipped", "dry-run"]
        .into_iter()
        .filter_map(|status| counts.get(status).filter(|n| **n > 0).map(|n| format!("{n} {status}")))
        .collect();
    if parts.is_empty() {
        parts.push("nothing to do".into());
    }
    let mut line = format!("{} on {hosts} host{}", parts.join(", "), if hosts == 1 { "" } else { "s" });
    if failed && counts.get("failed").is_none_or(|n| *n == 0) {
        line.push_str("; the apply stopped with an error");
    }
    line
}
