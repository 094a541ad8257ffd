//! `hk instance ensure`: bring a declared instance up (building its image when missing) and wait until
//! it answers SSH with systemd running.

use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Signature, Type};

use super::instance::{instance_signature, on_named_instance};
use crate::HkPlugin;

pub struct InstanceEnsure;

impl PluginCommand for InstanceEnsure {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk instance ensure"
    }

    fn description(&self) -> &str {
        "Make a declared instance run: build its image if missing, boot or resume it, wait for SSH and systemd."
    }

    fn extra_description(&self) -> &str {
        "Idempotent: a running instance is left alone. The first run on a machine builds the image and a ready snapshot (a few minutes under emulation); later ones resume from the snapshot in seconds. Then `hk plan HOST` works for every host declared with `instance: NAME`."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["vm", "qemu", "start", "boot", "up", "provision", "staging"]
    }

    fn signature(&self) -> Signature {
        instance_signature(self.name(), true)
            .input_output_types(vec![(Type::Nothing, Type::record()), (Type::record(), Type::record())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "hk instance ensure demo; hk plan demo | where action != noop",
            description: "Bring up the instance `demo` and plan the host that runs on it",
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
        on_named_instance(engine, call, input, |backend, instance, progress| {
            backend.ensure(instance, progress)
        })
    }
}
