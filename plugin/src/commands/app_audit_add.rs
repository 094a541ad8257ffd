//! `hk app audit-add`: append one entry to an app's audit log on every host.

use hk_core::app::audit;
use hk_core::engine::{failed_hosts_error, for_each_host};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Signature, SyntaxShape, Type, Value};

use super::app::{AppCall, app_call, app_signature};
use super::plan::parallel;
use crate::HkPlugin;
use crate::convert::value_to_json;
use crate::error::LabelErr;

pub struct AppAuditAdd;

impl PluginCommand for AppAuditAdd {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk app audit-add"
    }

    fn description(&self) -> &str {
        "Append one entry (a record) to an app's audit log on every host given, as one JSON line."
    }

    fn extra_description(&self) -> &str {
        "Returns the hosts written to. Entries hold no secrets: write only what the audit should show."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["deploy", "history", "log", "audit"]
    }

    fn signature(&self) -> Signature {
        app_signature(self.name())
            .named("entry", SyntaxShape::Record(Default::default()), "the record to append", None)
            .input_output_types(vec![
                (Type::Nothing, Type::List(Box::new(Type::String))),
                (Type::record(), Type::List(Box::new(Type::String))),
            ])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "hk app audit-add [web1 web2] --app hello --entry {time: (date now), action: deploy, version: v2, result: ok}",
            description: "Record a deploy on both hosts",
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
        let entry: Value = call.get_flag("entry")?.ok_or_else(|| {
            LabeledError::new("hk app audit-add: --entry is required")
                .with_label("what to record?", call.head)
        })?;
        let entry = value_to_json(&entry)?;
        let AppCall { layout, targets, credentials, span } = app_call(engine, call, input)?;
        let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
        let results = for_each_host(&names, parallel(call)?, |host| {
            let (_, target) =
                targets.iter().find(|(n, _)| n == host).ok_or_else(|| anyhow::anyhow!("no target"))?;
            let mut transport = target.connect(&credentials)?;
            audit::append(transport.as_mut(), &layout, &entry)
        });
        let mut written = Vec::new();
        let mut failures = Vec::new();
        for (host, result) in results {
            match result {
                Ok(()) => written.push(Value::string(host, span)),
                Err(e) => failures.push((host, format!("{e:#}"))),
            }
        }
        if !failures.is_empty() {
            return Err(failed_hosts_error(&failures)).at(span);
        }
        Ok(PipelineData::value(Value::list(written, span), None))
    }
}
