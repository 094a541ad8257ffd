//! `hk instance status`: whether a declared instance is absent, stopped or running, and where.

use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Signature, Type, Value};

use super::instance::{instance_signature, instances, status_to_value};
use crate::HkPlugin;
use crate::error::LabelErr;

pub struct InstanceStatus;

impl PluginCommand for InstanceStatus {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk instance status"
    }

    fn description(&self) -> &str {
        "Show a declared instance: state (absent, stopped, running), address, port, pid, image, since."
    }

    fn extra_description(&self) -> &str {
        "Without a name, a table of every declared instance. Nothing is started or changed."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["vm", "qemu", "machine", "guest", "state"]
    }

    fn signature(&self) -> Signature {
        instance_signature(self.name(), false).input_output_types(vec![
            (Type::Nothing, Type::record()),
            (Type::Nothing, Type::table()),
            (Type::record(), Type::record()),
            (Type::record(), Type::table()),
        ])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "{instances: {demo: {backend: qemu}}} | hk instance status demo | get state",
                description: "An instance that was never brought up is absent",
                result: Some(Value::test_string("absent")),
            },
            Example {
                example: "hk instance status | where state == running",
                description: "The running instances declared in ./hk.nu",
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
        let named = call.opt::<Value>(0)?.is_some();
        let rows = instances(engine, call, input)?
            .iter()
            .map(|(instance, backend)| Ok(status_to_value(&backend.status(instance).at(span)?, span)))
            .collect::<Result<Vec<_>, LabeledError>>()?;
        Ok(PipelineData::value(
            match (named, rows.len()) {
                (true, 1) => rows.into_iter().next().unwrap_or(Value::nothing(span)),
                _ => Value::list(rows, span),
            },
            None,
        ))
    }
}
