//! `hk deployment finish`: the end of a deploy on every host in one script each — the audit entry, the
//! older runs pruned, and the deploy lock released on the primary host.

use hk_core::app::finish::{self, Finish};
use hk_core::app::lock::Released;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Record, Signature, SyntaxShape, Type, Value};

use super::deployment::{app_call, app_signature, describe_holder};
use super::plan::{parallel, roots, roots_flags};
use crate::HkPlugin;
use crate::convert::value_to_json;

pub struct AppFinish;

impl PluginCommand for AppFinish {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk deployment finish"
    }

    fn description(&self) -> &str {
        "End a deploy on every host given, one script each: append the audit entry, prune the app's older runs, and release the deploy lock on the primary (first) host."
    }

    fn extra_description(&self) -> &str {
        "Each part is optional: --entry (the audit record), --keep-runs N with --runs-root and --backups-root (all but the newest N runs go, with their artifacts and backups, oldest by the time in their ids), --holder (the record the lock was taken with; a lock someone else holds is left alone). One row per host: {host, audited, runs_removed, lock} where lock is released, free, other or null."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["deploy", "audit", "unlock", "prune", "runs"]
    }

    fn signature(&self) -> Signature {
        roots_flags(app_signature(self.name()))
            .named("entry", SyntaxShape::Record(Default::default()), "the audit record to append", None)
            .named("keep-runs", SyntaxShape::Int, "prune all but this many of the newest runs", None)
            .named(
                "holder",
                SyntaxShape::Record(Default::default()),
                "release the lock taken with this record",
                None,
            )
            .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "hk deployment finish [web1 web2] --app hello --entry {action: deploy, version: v2, result: ok} --keep-runs 20 --runs-root /opt/hk/hello/runs --backups-root /opt/hk/hello/runs/backups --holder $held.holder",
            description: "Record the deploy, prune old runs and release the lock, one script per host",
            result: None,
        }]
    }

    fn run(
        &self,
        _plugin: &HkPlugin,
        engine: &EngineInterface,
        call: &EvaluatedCall,
        input: PipelineData,
    ) -> Result<PipelineData, LabeledError> {
        let call = &crate::load::without_null_flags(call);
        let json_flag = |name: &str| -> Result<Option<serde_json::Value>, LabeledError> {
            call.get_flag::<Value>(name)?.map(|v| value_to_json(&v)).transpose()
        };
        let (entry, holder) = (json_flag("entry")?, json_flag("holder")?);
        let keep: Option<nu_protocol::Spanned<i64>> = call.get_flag("keep-runs")?;
        let roots = roots(call)?;
        let keep = match keep {
            None => None,
            Some(k) if k.item < 1 => {
                return Err(LabeledError::new("hk deployment finish: --keep-runs must be at least 1")
                    .with_label("here", k.span));
            }
            Some(_) if roots.runs.is_none() || roots.backups.is_none() => {
                return Err(LabeledError::new("hk deployment finish: --keep-runs prunes where the runs are")
                    .with_label("give --runs-root and --backups-root too", call.head));
            }
            Some(k) => Some(k.item as usize),
        };
        let app = app_call(engine, call, input)?;
        let span = app.span;
        let primary = app.targets.first().map(|(h, _)| h.clone()).unwrap_or_default();
        let done = app.on_each_named_host(parallel(call)?, |host, transport, layout| {
            let asked = Finish {
                entry: entry.as_ref(),
                prune_runs: keep.map(|k| (k, &roots)),
                unlock: holder.as_ref().filter(|_| host == primary),
            };
            finish::finish(transport, layout, &asked)
        })?;
        let mut rows = Vec::new();
        for (host, finished) in done {
            let lock = match &finished.lock {
                None => Value::nothing(span),
                Some(Released::Released) => Value::string("released", span),
                Some(Released::Free) => Value::string("free", span),
                Some(Released::Other { holder: other }) => {
                    eprintln!(
                        "hk: the deploy lock of app {} on host {host} is held by {}, not by this deploy: left in place",
                        app.layout.app,
                        describe_holder(other, None)
                    );
                    Value::string("other", span)
                }
            };
            let mut r = Record::new();
            r.push("host", Value::string(host, span));
            r.push("audited", Value::bool(finished.audited, span));
            r.push(
                "runs_removed",
                finished.runs_removed.map_or(Value::nothing(span), |n| Value::int(n as i64, span)),
            );
            r.push("lock", lock);
            rows.push(Value::record(r, span));
        }
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}

/// `hk apply --then-finish {app, root, primary, entry, keep_runs, runs_root, backups_root, holder}`:
/// the end of a deploy as `hk deployment finish` would run it on each host (with `primary` first),
/// for the apply to run at the end of its script (`ApplyOptions::then`). `hk deployment finish`
/// with the same values then reads what it printed instead of running it again.
pub fn then_finish(value: &Value) -> Result<hk_core::engine::Then, LabeledError> {
    let span = value.span();
    let record =
        value.as_record().map_err(|e| LabeledError::new(e.to_string()).with_label("a record", span))?;
    let text = |key: &str| -> Result<Option<String>, LabeledError> {
        match record.get(key) {
            None | Some(Value::Nothing { .. }) => Ok(None),
            Some(v) => v.as_str().map(|s| Some(s.to_string())).map_err(|_| {
                LabeledError::new(format!("hk apply: --then-finish.{key} must be a string"))
                    .with_label("here", v.span())
            }),
        }
    };
    let json = |key: &str| -> Result<Option<serde_json::Value>, LabeledError> {
        record.get(key).filter(|v| !v.is_nothing()).map(value_to_json).transpose()
    };
    let required = |key: &str| -> Result<String, LabeledError> {
        text(key)?.ok_or_else(|| {
            LabeledError::new(format!("hk apply: --then-finish needs `{key}`"))
                .with_label("in this record", span)
        })
    };
    let layout = hk_core::app::AppLayout::new(&required("root")?, &required("app")?)
        .map_err(|e| LabeledError::new(format!("hk apply: --then-finish: {e:#}")).with_label("here", span))?;
    let primary = text("primary")?;
    let (entry, holder) = (json("entry")?, json("holder")?);
    let keep = match record.get("keep_runs") {
        None | Some(Value::Nothing { .. }) => None,
        Some(v) => match v.as_int() {
            Ok(n) if n >= 1 => Some(n as usize),
            _ => {
                return Err(LabeledError::new("hk apply: --then-finish.keep_runs must be at least 1")
                    .with_label("here", v.span()));
            }
        },
    };
    let roots = hk_core::runs::Roots { runs: text("runs_root")?, backups: text("backups_root")? };
    if keep.is_some() && (roots.runs.is_none() || roots.backups.is_none()) {
        return Err(LabeledError::new("hk apply: --then-finish.keep_runs prunes where the runs are")
            .with_label("give runs_root and backups_root too", span));
    }
    Ok(std::sync::Arc::new(move |host: &str, nonce: &str| {
        let asked = Finish {
            entry: entry.as_ref(),
            prune_runs: keep.map(|k| (k, &roots)),
            unlock: holder.as_ref().filter(|_| primary.as_deref() == Some(host)),
        };
        finish::script(&layout, &asked, nonce).map(Some)
    }))
}
