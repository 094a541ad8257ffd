//! `hk instance destroy`: stop a declared instance and remove its own files (the shared image cache
//! stays for the next one).

use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Signature, Type, Value};

use super::instance::{instance_signature, on_named_instance};
use crate::HkPlugin;

pub struct InstanceDestroy;

impl PluginCommand for InstanceDestroy {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk instance destroy"
    }

    fn description(&self) -> &str {
        "Stop a declared instance and delete its disk and state; the shared image cache is kept."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["vm", "qemu", "stop", "down", "remove", "teardown"]
    }

    fn signature(&self) -> Signature {
        instance_signature(self.name(), true)
            .input_output_types(vec![(Type::Nothing, Type::record()), (Type::record(), Type::record())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "{instances: {demo: {backend: qemu}}} | hk instance destroy demo | get state",
            description: "Destroying an instance that is not there is a no-op",
            result: Some(Value::test_string("absent")),
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
        on_named_instance(engine, call, input, |backend, instance, progress| {
            backend.destroy(instance, progress)
        })
    }
}
