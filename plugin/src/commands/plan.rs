//! `hk plan`: read hosts and diff them against the desired state; a table of changes.

use hk_core::engine::{self, PlanOptions, PlanOutcome};
use hk_core::plan_file;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, ListStream, PipelineData, Signals, Signature, Span, Spanned,
    SyntaxShape, Type, Value,
};

use crate::HkPlugin;
use crate::convert::{PlanColumns, row_to_value};
use crate::error::{LabelErr, labeled};
use crate::load::{credentials, resolve_path, select, string_list};
use crate::packages::{package_flags, package_naming, write_lock};
use hk_core::secrets::Secrets;

pub struct Plan;

/// A flag value that is one string or a list of them (a list literal must be tried first).
pub fn string_or_list() -> SyntaxShape {
    SyntaxShape::OneOf(vec![SyntaxShape::List(Box::new(SyntaxShape::String)), SyntaxShape::String])
}

/// Flags shared by every command that selects hosts and a config.
pub fn selection_signature(sig: Signature) -> Signature {
    package_flags(host_signature(sig).named(
        "ignore",
        string_or_list(),
        "resource id(s) type:name to leave alone, e.g. file:/etc/motd or [file:/a dir:/b]",
        Some('i'),
    ))
}

/// `[TARGET] [CONFIG]` with the host-choosing and host-reaching flags.
pub fn host_signature(sig: Signature) -> Signature {
    target_flags(
        sig.optional(
            "target",
            string_or_list(),
            "host(s) to work on: a declared name, a list of names, or `local`; or a config path",
        )
        .optional(
            "config",
            SyntaxShape::String,
            "config file: .nu, .nuon, .json or .toml (default ./hk.nu, then ./hk.nuon)",
        )
        .switch("local", "work on the machine hk runs on", Some('l'))
        .switch("all", "work on every declared host", Some('a'))
        .named(
            "require",
            string_or_list(),
            "Nu module(s) to `use` before evaluating a .nu config",
            Some('r'),
        ),
    )
}

/// Where run records and backups live (defaults on the target: /var/lib/hk/… for root,
/// ~/.local/state/hk/… otherwise).
/// What made a plan, as the runs it leads to say (`hk plan`, and `hk apply` planning inline).
pub fn made_by_flag(sig: Signature) -> Signature {
    sig.named(
        "made-by",
        SyntaxShape::String,
        "what made this plan, as `hk runs` will show it (default `plan`; e.g. `deploy v2: prepare`)",
        None,
    )
}

pub fn roots_flags(sig: Signature) -> Signature {
    sig.named("runs-root", SyntaxShape::String, "directory of run records on the target", None).named(
        "backups-root",
        SyntaxShape::String,
        "directory of backups on the target",
        None,
    )
}

pub fn roots(call: &EvaluatedCall) -> Result<hk_core::runs::Roots, LabeledError> {
    let roots =
        hk_core::runs::Roots { runs: call.get_flag("runs-root")?, backups: call.get_flag("backups-root")? };
    roots.validate().at(call.head)?;
    Ok(roots)
}

/// Flags that say how to reach hosts (they override what the config declares).
pub fn target_flags(sig: Signature) -> Signature {
    sig.named("remote", SyntaxShape::String, "reach this host over SSH without declaring it", None)
        .named("user", SyntaxShape::String, "SSH user", Some('u'))
        .named("port", SyntaxShape::Int, "SSH port", None)
        .named("identity-file", SyntaxShape::Filepath, "SSH private key file", None)
        .named("known-hosts", SyntaxShape::Filepath, "known_hosts file (default ~/.ssh/known_hosts)", None)
        .named("password", SyntaxShape::String, "SSH password (prefer --password-env)", None)
        .named(
            "password-env",
            SyntaxShape::String,
            "name of an environment variable holding the SSH password",
            None,
        )
        .switch(
            "silently-accept-hosts",
            "accept host keys that known_hosts does not list (never a changed one)",
            None,
        )
        .switch("sudo", "run the scripts under `sudo -n`", None)
        .named("parallel", SyntaxShape::Int, "hosts worked on at once (default 8)", Some('j'))
}

pub fn parallel(call: &EvaluatedCall) -> Result<usize, LabeledError> {
    match call.get_flag::<Spanned<i64>>("parallel")? {
        None => Ok(8),
        Some(n) if n.item >= 1 => Ok(n.item as usize),
        Some(n) => Err(LabeledError::new("hk: --parallel must be at least 1").with_label("here", n.span)),
    }
}

/// Plan from the command's selection (piped record or CONFIG); also the secrets it resolved, so an
/// apply that follows does not resolve them again (nor read the hosts again: with `track_roots`
/// the probe also reads where that apply records its run).
pub fn plan_selection(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: Option<Value>,
    track_roots: Option<hk_core::runs::Roots>,
) -> Result<(PlanOutcome, Secrets), LabeledError> {
    let timer = hk_core::trace::Timer::start("select");
    let selection = select(engine, call, input)?;
    timer.done("");
    let options = PlanOptions {
        ignore: string_list(call, "ignore")?,
        parallel: parallel(call)?,
        credentials: credentials(engine, call, selection.targets.iter().map(|(_, t)| t))?,
        packages: package_naming(engine, call)?,
        secrets: {
            let resources: Vec<&hk_core::resources::Resource> = selection.config.resources.iter().collect();
            crate::secrets::resolve_secrets(engine, call, &resources)?
        },
        hash_cache: hash_cache_dir(engine)?,
        project: selection.config.project.clone(),
        made_by: call.get_flag::<String>("made-by")?.unwrap_or_default(),
        track_roots,
    };
    let outcome = engine::plan(&selection.config, &selection.targets, &options).at(call.head)?;
    write_lock(engine, call, &outcome)?;
    Ok((outcome, options.secrets))
}

/// Where plans remember content hashes: `$env.HK_HASH_CACHE` (`off` disables), else
/// `$XDG_CACHE_HOME/hk/hashes`, else `~/.cache/hk/hashes`.
pub fn hash_cache_dir(engine: &EngineInterface) -> Result<Option<std::path::PathBuf>, LabeledError> {
    match crate::load::env_text(engine, "HK_HASH_CACHE")? {
        Some(v) if v == "off" || v.is_empty() => Ok(None),
        Some(dir) => Ok(Some(std::path::PathBuf::from(dir))),
        None => crate::load::xdg_path(engine, "XDG_CACHE_HOME", ".cache", "hashes"),
    }
}

/// `3 to create, 1 to update, 12 unchanged on 2 hosts`: a plan at a glance.
pub fn summary_line(outcome: &PlanOutcome) -> String {
    use hk_core::model::Action;
    let count = |a: Action| outcome.plan.rows.iter().filter(|r| r.action == a).count();
    let mut parts: Vec<String> = [
        (Action::Create, "to create"),
        (Action::Update, "to update"),
        (Action::Delete, "to delete"),
        (Action::Read, "to check"),
        (Action::Error, "that cannot be applied"),
        (Action::Noop, "unchanged"),
    ]
    .into_iter()
    .filter_map(|(a, words)| {
        let n = count(a);
        (n > 0).then(|| format!("{n} {words}"))
    })
    .collect();
    if parts.is_empty() {
        parts.push("nothing to do".into());
    }
    let hosts = outcome.plan.hosts.len();
    let mut line = format!("{} on {hosts} host{}", parts.join(", "), if hosts == 1 { "" } else { "s" });
    if !outcome.failures.is_empty() {
        line.push_str(&format!("; {} host(s) could not be read", outcome.failures.len()));
    }
    line
}

/// The plan's rows with a `diff` column (a unified diff, or nothing), after `summary`.
fn with_diffs(
    data: PipelineData,
    diffs: &std::collections::HashMap<(String, String), String>,
    span: Span,
) -> Result<PipelineData, LabeledError> {
    let rows: Vec<Value> = data
        .into_iter()
        .map(|row| {
            let Value::Record { val, internal_span, .. } = row else { return row };
            let text = |k: &str| val.get(k).and_then(|v| v.as_str().ok()).unwrap_or_default().to_string();
            let diff = diffs.get(&(text("host"), text("id")));
            let cell = diff.map_or(Value::nothing(span), |d| Value::string(d.clone(), span));
            let mut out = nu_protocol::Record::with_capacity(val.len() + 1);
            let mut cell = Some(cell);
            for (k, v) in val.into_owned() {
                let after = k == "summary";
                out.push(k, v);
                if after && let Some(c) = cell.take() {
                    out.push("diff", c);
                }
            }
            if let Some(c) = cell {
                out.push("diff", c);
            }
            Value::record(out, internal_span)
        })
        .collect();
    Ok(PipelineData::value(Value::list(rows, span), None))
}

/// Rows of the hosts that were read; when some could not be, the list ends with an error naming them.
pub fn outcome_to_pipeline(outcome: &PlanOutcome, span: Span) -> PipelineData {
    let rows = plan_rows(&outcome.plan, span);
    if outcome.failures.is_empty() {
        return PipelineData::value(Value::list(rows, span), None);
    }
    let mut items = rows;
    items.push(Value::error(labeled(engine::failed_hosts_error(&outcome.failures), span).into(), span));
    PipelineData::list_stream(ListStream::new(items.into_iter(), span, Signals::empty()), None)
}

fn plan_rows(plan: &hk_core::model::Plan, span: Span) -> Vec<Value> {
    let columns = PlanColumns::of(&plan.rows);
    plan.rows
        .iter()
        .filter_map(|row| plan.hosts.get(&row.host).map(|host| row_to_value(row, host, columns, span)))
        .collect()
}

/// Piped input as an optional config record (nothing piped → None).
pub fn input_record(input: PipelineData, span: Span) -> Result<Option<Value>, LabeledError> {
    match input {
        PipelineData::Empty => Ok(None),
        other => match other.into_value(span)? {
            Value::Nothing { .. } => Ok(None),
            v @ Value::Record { .. } => Ok(Some(v)),
            v => Err(LabeledError::new("hk: piped input must be a config record")
                .with_label(format!("got {}", v.get_type()), v.span())),
        },
    }
}

impl PluginCommand for Plan {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk plan"
    }

    fn description(&self) -> &str {
        "Read hosts in one round trip each and show what applying the desired state would change."
    }

    fn extra_description(&self) -> &str {
        "Each row is one resource on one host. Filter rows with `where` and pipe them into `hk apply`: only those rows are applied. The `spec` column carries what apply needs; keep it."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["diff", "converge", "desired state", "dry run", "infrastructure", "deploy"]
    }

    fn signature(&self) -> Signature {
        made_by_flag(selection_signature(Signature::build(self.name())))
            .named(
                "out",
                SyntaxShape::Filepath,
                "also write the plan to this JSON file (mode 0600)",
                Some('o'),
            )
            .switch("quiet", "no summary line on stderr", Some('q'))
            .switch(
                "diff",
                "a `diff` column: what changes in text files, as unified diffs (one more read per host)",
                Some('d'),
            )
            .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "{resources: [{type: dir, path: /nonexistent-hk-example/app}]} | hk plan local | select reason action",
                description: "Plan a piped desired state on this machine: the missing parent folder is a row of its own",
                result: Some(Value::test_list(vec![
                    Value::test_record(nu_protocol::record! {
                        "reason" => Value::test_string("parent"),
                        "action" => Value::test_string("create"),
                    }),
                    Value::test_record(nu_protocol::record! {
                        "reason" => Value::test_string("missing"),
                        "action" => Value::test_string("create"),
                    }),
                ])),
            },
            Example {
                example: "hk plan prod | where action != noop",
                description: "Show only what would change on the declared host prod (config from ./hk.nu)",
                result: None,
            },
            Example {
                example: "hk plan [web1 web2] --parallel 2 | where action != noop | group-by host",
                description: "Plan several declared hosts at once",
                result: None,
            },
            Example {
                example: "hk plan --remote 10.0.0.5 --user deploy --sudo app.nuon",
                description: "Plan an undeclared host over SSH, running the probe under sudo",
                result: None,
            },
            Example {
                example: "hk plan --local examples/quickstart/hk.nu --out plan.json",
                description: "Plan a config file on this machine and save the plan for `hk apply --plan`",
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
        let timer = hk_core::trace::Timer::start("hk plan");
        let input = input_record(input, call.head)?;
        let (outcome, _) = plan_selection(engine, call, input, None)?;
        if let Some(out) = call.get_flag::<Spanned<String>>("out")? {
            if !outcome.failures.is_empty() {
                return Err(labeled(engine::failed_hosts_error(&outcome.failures), call.head)
                    .with_help("no plan file was written"));
            }
            let path = resolve_path(engine, &out.item)?;
            plan_file::write(&path, &outcome.plan).at(out.span)?;
        }
        if !call.has_flag("quiet")? {
            eprintln!("hk plan: {}", summary_line(&outcome));
        }
        let table_timer = hk_core::trace::Timer::start("table");
        let data = if call.has_flag("diff")? {
            let creds = credentials(engine, call, outcome.plan.hosts.values().map(|h| &h.target))?;
            let diffs = engine::text_diffs(&outcome.plan, &creds, parallel(call)?);
            with_diffs(outcome_to_pipeline(&outcome, call.head), &diffs, call.head)?
        } else {
            outcome_to_pipeline(&outcome, call.head)
        };
        table_timer.done("");
        timer.done("until the table is built");
        Ok(data)
    }
}
