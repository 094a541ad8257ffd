//! `hk down`: the plan that undoes a tracked run (or a bare plan), applied with `hk apply`.

use hk_core::engine::{self, DownOptions, down_from_plan, down_from_run, fetch_runs};
use hk_core::model::{Direction, Plan};
use hk_core::plan_file;
use hk_core::runs::{last_to_undo, of_project};
use indexmap::IndexMap;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Category, Example, LabeledError, PipelineData, Signature, Spanned, SyntaxShape, Type};

use super::plan::{host_signature, outcome_to_pipeline, roots, roots_flags};
use crate::HkPlugin;
use crate::error::{LabelErr, labeled};
use crate::load::{credentials, resolve_path, select_with, string_list};

pub struct Down;

/// Whether `path` holds an hk plan (rather than a JSON config).
fn is_plan_file(path: &std::path::Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(|f| f == hk_core::model::PLAN_FORMAT))
        .unwrap_or(false)
}

impl PluginCommand for Down {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk down"
    }

    fn description(&self) -> &str {
        "Plan the way back from a tracked run (or a plan file): a plan table for `hk apply`."
    }

    fn extra_description(&self) -> &str {
        "Created files and links are deleted, directories only if the run created them and they are empty; updated and deleted ones are restored from the run's backups (content, mode, owner, link target). Rows that cannot be undone stay in the table with reversible: false and a note."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["rollback", "undo", "revert", "restore", "backup"]
    }

    fn signature(&self) -> Signature {
        roots_flags(host_signature(Signature::build(self.name())))
            .named(
                "plan",
                SyntaxShape::Filepath,
                "undo what this plan file describes (no run needed)",
                Some('p'),
            )
            .switch(
                "last",
                "undo the newest run of this host and project not undone yet (again: one further back)",
                None,
            )
            .switch("all-projects", "with --last: the newest run of any project on the host", None)
            .named("run", SyntaxShape::String, "undo this run (an id from `hk runs`)", None)
            .named(
                "only",
                crate::commands::plan::string_or_list(),
                "only these resource ids (type:name)",
                None,
            )
            .named(
                "except",
                crate::commands::plan::string_or_list(),
                "leave these resource ids (type:name) out",
                None,
            )
            .named(
                "out",
                SyntaxShape::Filepath,
                "also write the down plan to this JSON file (mode 0600)",
                Some('o'),
            )
            .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk down prod --last | hk apply --confirm",
                description: "Undo the newest run on prod",
                result: None,
            },
            Example {
                example: "hk down --local --run $id --except [file:/etc/motd]",
                description: "Plan the way back from one run, leaving one file as it is",
                result: None,
            },
            Example {
                example: "hk down plan.json | hk apply --dry-run",
                description: "Check the way back from a saved plan without changing anything",
                result: None,
            },
            Example {
                example: "hk down --plan plan.json | where reversible == false",
                description: "What a bare plan file cannot undo without a run's backups",
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
        let config_input = super::plan::input_record(input, span)?;
        let options = DownOptions {
            only: string_list(call, "only")?,
            except: string_list(call, "except")?,
            credentials: Default::default(),
        };
        options.validate().at(span)?;
        // `hk down plan.json`: a positional plan file works like --plan.
        let positional_plan = match call.opt::<Spanned<String>>(0) {
            Ok(Some(arg))
                if arg.item.ends_with(".json") && is_plan_file(&resolve_path(engine, &arg.item)?) =>
            {
                Some(arg)
            }
            _ => None,
        };
        let plan_flag: Option<Spanned<String>> = call.get_flag("plan")?.or(positional_plan);
        let run_flag: Option<Spanned<String>> = call.get_flag("run")?;
        let last = call.has_flag("last")?;
        let chosen = [plan_flag.is_some(), run_flag.is_some(), last].iter().filter(|b| **b).count();
        if chosen != 1 {
            return Err(LabeledError::new("hk down needs exactly one of --last, --run ID or --plan FILE")
                .with_label("say what to undo", span));
        }
        let (plan, failures) = if let Some(file) = plan_flag {
            let path = resolve_path(engine, &file.item)?;
            let up = plan_file::read(&path).at(file.span)?;
            let creds = credentials(engine, call, up.hosts.values().map(|h| &h.target))?;
            let options = DownOptions { credentials: creds, ..options };
            (down_from_plan(&up, &options).at(span)?, Vec::new())
        } else {
            let selection = select_with(engine, call, config_input, true, 0)?;
            let creds = credentials(engine, call, selection.targets.iter().map(|(_, t)| t))?;
            let options = DownOptions { credentials: creds, ..options };
            let roots = roots(call)?;
            let project = super::runs::project_of(engine, &selection.config)?;
            let all_projects = call.has_flag("all-projects")?;
            let mut plan = Plan { direction: Direction::Down, hosts: IndexMap::new(), rows: Vec::new() };
            let mut failures = Vec::new();
            for (host, target) in &selection.targets {
                let roots = roots.or(&selection.config.roots.get(host).cloned().unwrap_or_default());
                let result = target.connect(&options.credentials).and_then(|mut transport| {
                    let (runs, runs_root, _) = fetch_runs(transport.as_mut(), &roots)?;
                    let record = match &run_flag {
                        Some(id) => runs.iter().find(|r| r.id == id.item),
                        None => last_to_undo(&of_project(&runs, host, &project, all_projects)),
                    };
                    let Some(record) = record else {
                        anyhow::bail!(
                            "no {} recorded under {runs_root} on host {host}{} (apply with --track to record runs)",
                            run_flag.as_ref().map_or("run to undo".to_string(), |id| format!("run {:?}", id.item)),
                            if all_projects { String::new() } else { format!(" for project {project} (--all-projects sees every project's)") }
                        );
                    };
                    down_from_run(host, target, transport.as_mut(), record, &options)
                });
                match result {
                    Ok(down) => {
                        plan.hosts.extend(down.hosts);
                        plan.rows.extend(down.rows);
                    }
                    Err(e) => failures.push((host.clone(), format!("{e:#}"))),
                }
            }
            (plan, failures)
        };
        if let Some(out) = call.get_flag::<Spanned<String>>("out")? {
            if !failures.is_empty() {
                return Err(labeled(engine::failed_hosts_error(&failures), span)
                    .with_help("no plan file was written"));
            }
            plan_file::write(&resolve_path(engine, &out.item)?, &plan).at(out.span)?;
        }
        if failures.len() == 1 && plan.rows.is_empty() {
            return Err(labeled(anyhow::anyhow!("{}", failures[0].1), span));
        }
        Ok(outcome_to_pipeline(&engine::PlanOutcome { plan, failures, probed: Default::default() }, span))
    }
}
