//! `hk app audit`: an app's audit log from every host, merged into one table, newest first.

use hk_core::app::audit;
use hk_core::engine::{failed_hosts_error, for_each_host};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Signature, Span, Type, Value};

use super::app::{AppCall, app_call, app_signature};
use super::plan::parallel;
use crate::HkPlugin;
use crate::convert::json_to_value;
use crate::error::LabelErr;

pub struct AppAudit;

fn time_of(record: &serde_json::Value) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    record.get("time").and_then(|t| t.as_str()).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
}

/// An audit record as a row, its `time` as a date.
fn entry_value(record: &serde_json::Value, span: Span) -> Value {
    let mut value = json_to_value(record, span);
    if let (Some(time), Value::Record { val, .. }) = (time_of(record), &mut value) {
        val.to_mut().insert("time", Value::date(time, span));
    }
    value
}

/// Every host's entries as one list: an entry several hosts hold once, newest first.
pub fn merge(per_host: Vec<Vec<serde_json::Value>>) -> Vec<serde_json::Value> {
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<serde_json::Value> =
        per_host.into_iter().flatten().filter(|r| seen.insert(r.to_string())).collect();
    all.sort_by_key(|r| std::cmp::Reverse(time_of(r)));
    all
}

impl PluginCommand for AppAudit {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk app audit"
    }

    fn description(&self) -> &str {
        "Read an app's audit log (<root>/<app>/audit.log, JSON lines) from every host: one table, newest first."
    }

    fn extra_description(&self) -> &str {
        "An entry written to several hosts appears once. Lines that are not JSON records are skipped and counted on stderr."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["deploy", "history", "log", "audit"]
    }

    fn signature(&self) -> Signature {
        app_signature(self.name())
            .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk app audit --app nonexistent-hk-example --root /nonexistent-hk-example --local | length",
                description: "An app never deployed here has an empty log",
                result: Some(Value::test_int(0)),
            },
            Example {
                example: "hk app audit [web1 web2] --app hello | where action == deploy | first 5",
                description: "The last five deploys of hello",
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
        let AppCall { layout, targets, credentials, span } = app_call(engine, call, input)?;
        let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        let results = for_each_host(&names, parallel(call)?, |host| {
            let (_, target) =
                targets.iter().find(|(n, _)| n == host).ok_or_else(|| anyhow::anyhow!("no target"))?;
            let mut transport = target.connect(&credentials)?;
            audit::read(transport.as_mut(), &layout)
        });
        let mut per_host = Vec::new();
        let mut failures = Vec::new();
        for (host, result) in results {
            match result {
                Ok((records, damaged)) => {
                    if damaged > 0 {
                        eprintln!(
                            "hk app audit: {host}: skipped {damaged} line(s) of {} that are not records",
                            layout.path("audit.log")
                        );
                    }
                    per_host.push(records);
                }
                Err(e) => failures.push((host, format!("{e:#}"))),
            }
        }
        if !failures.is_empty() {
            return Err(failed_hosts_error(&failures)).at(span);
        }
        let rows = merge(per_host).iter().map(|r| entry_value(r, span)).collect();
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn merged_once_newest_first() {
        let a = json!({"time": "2026-01-01T00:00:00Z", "action": "deploy"});
        let b = json!({"time": "2026-01-02T00:00:00Z", "action": "rollback"});
        let merged = super::merge(vec![vec![a.clone(), b.clone()], vec![a.clone()]]);
        assert_eq!(merged, vec![b, a]);
    }
}
