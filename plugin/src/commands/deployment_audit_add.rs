//! `hk deployment audit-add`: append one entry to an app's audit log on every host.

use hk_core::app::audit;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Signature, SyntaxShape, Type, Value};

use super::deployment::{app_call, app_signature};
use super::plan::parallel;
use crate::HkPlugin;
use crate::convert::value_to_json;

pub struct AppAuditAdd;

impl PluginCommand for AppAuditAdd {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk deployment audit-add"
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
            example: "hk deployment audit-add [web1 web2] --app hello --entry {time: (date now), action: deploy, version: v2, result: ok}",
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
            LabeledError::new("hk deployment audit-add: --entry is required")
                .with_label("what to record?", call.head)
        })?;
        let entry = value_to_json(&entry)?;
        let app = app_call(engine, call, input)?;
        let span = app.span;
        let written = app
            .on_each_host(parallel(call)?, |transport, layout| audit::append(transport, layout, &entry))?
            .into_iter()
            .map(|(host, ())| Value::string(host, span))
            .collect();
        Ok(PipelineData::value(Value::list(written, span), None))
    }
}
