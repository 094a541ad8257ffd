//! `hk deployment audit`: an app's audit log from every host, merged into one table, newest first.

use hk_core::app::audit;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Signature, Span, Type, Value};

use super::deployment::{app_call, app_signature};
use super::plan::parallel;
use crate::HkPlugin;
use crate::convert::json_to_value;

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
        "hk deployment audit"
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
                example: "hk deployment audit --app nonexistent-hk-example --root /nonexistent-hk-example --local | length",
                description: "An app never deployed here has an empty log",
                result: Some(Value::test_int(0)),
            },
            Example {
                example: "hk deployment audit [web1 web2] --app hello | where action == deploy | first 5",
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
        let app = app_call(engine, call, input)?;
        let span = app.span;
        let log = app.layout.path("audit.log");
        let mut per_host = Vec::new();
        for (host, (records, damaged)) in app.on_each_host(parallel(call)?, audit::read)? {
            if damaged > 0 {
                eprintln!(
                    "hk deployment audit: {host}: skipped {damaged} line(s) of {log} that are not records"
                );
            }
            per_host.push(records);
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
