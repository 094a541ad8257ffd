//! `hk deployment unlock`: release an app's deploy lock — the caller's own, or anyone's with --force.

use hk_core::app::lock::{self, Released};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Record, Signature, SyntaxShape, Type, Value};

use super::deployment::{app_call, app_signature, describe_holder};
use crate::HkPlugin;
use crate::convert::{json_to_value, value_to_json};
use crate::error::LabelErr;

pub struct AppUnlock;

impl PluginCommand for AppUnlock {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk deployment unlock"
    }

    fn description(&self) -> &str {
        "Release an app's deploy lock on its primary host: the one taken with this holder record, or any with --force."
    }

    fn extra_description(&self) -> &str {
        "Returns {host, app, released (bool), holder}: released is false when nobody held the lock. A lock held by someone else is left alone and reported as an error unless --force."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["deploy", "mutex", "lock", "release"]
    }

    fn signature(&self) -> Signature {
        app_signature(self.name())
            .named(
                "holder",
                SyntaxShape::Record(Default::default()),
                "the record the lock was taken with",
                None,
            )
            .switch("force", "release whoever holds it", None)
            .input_output_types(vec![(Type::Nothing, Type::record()), (Type::record(), Type::record())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "hk deployment unlock web1 --app hello --force",
            description: "Break a stuck deploy lock of app hello on web1",
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
        let holder = match call.get_flag::<Value>("holder")? {
            Some(v) => Some(value_to_json(&v)?),
            None => None,
        };
        let force = call.has_flag("force")?;
        if holder.is_none() && !force {
            return Err(LabeledError::new("hk deployment unlock: whose lock?")
                .with_label("give --holder (the record it was taken with) or --force", call.head));
        }
        let app = app_call(engine, call, input)?;
        let (layout, span) = (&app.layout, app.span);
        let (host, mut transport) = app.primary()?;
        let released = match lock::release(transport.as_mut(), layout, holder.as_ref(), force).at(span)? {
            Released::Released => true,
            Released::Free => false,
            Released::Other { holder: other } => {
                return Err(LabeledError::new(format!(
                    "hk: the deploy lock of app {} on host {host} is held by {}, not by this holder",
                    layout.app,
                    describe_holder(&other, None)
                ))
                .with_label("left in place", span)
                .with_help("to break someone else's lock: `hk lock release --force`"));
            }
        };
        let mut r = Record::new();
        r.push("host", Value::string(host, span));
        r.push("app", Value::string(layout.app.clone(), span));
        r.push("released", Value::bool(released, span));
        r.push("holder", holder.map_or(Value::nothing(span), |h| json_to_value(&h, span)));
        Ok(PipelineData::value(Value::record(r, span), None))
    }
}
