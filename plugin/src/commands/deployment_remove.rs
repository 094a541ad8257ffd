//! `hk deployment remove`: remove an app from every host given (units, templates, folder, site).

use hk_core::app::remove;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Record, Signature, SyntaxShape, Type, Value};

use super::deployment::{app_call, app_signature};
use super::plan::parallel;
use crate::HkPlugin;

pub struct AppRemove;

impl PluginCommand for AppRemove {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk deployment remove"
    }

    fn description(&self) -> &str {
        "Remove an app from every host given: its units stopped and disabled, its templates and folder removed, Caddy reloaded."
    }

    fn extra_description(&self) -> &str {
        "One script per host. Rows {host, units, templates, folder, reloaded} say what was there; an app that is not there changes nothing. Storage under /var/lib stays. The workflow `hk app remove` asks first."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["delete", "uninstall", "destroy", "app"]
    }

    fn signature(&self) -> Signature {
        app_signature(self.name())
            .named(
                "templates",
                SyntaxShape::List(Box::new(SyntaxShape::String)),
                "the app's unit templates (hk-<app>@.service, hk-<app>-<role>@.service)",
                None,
            )
            .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "hk deployment remove [web1 web2] --app hello --templates [hk-hello@.service]",
            description: "Remove the app hello from both hosts",
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
        let templates: Vec<String> = call.get_flag("templates")?.ok_or_else(|| {
            LabeledError::new("hk deployment remove: --templates is required")
                .with_label("which units are the app's?", call.head)
        })?;
        let app = app_call(engine, call, input)?;
        let span = app.span;
        let rows = app
            .on_each_host(parallel(call)?, |transport, layout| remove::remove(transport, layout, &templates))?
            .into_iter()
            .map(|(host, r)| {
                let mut rec = Record::new();
                let texts = |v: Vec<String>| {
                    Value::list(v.into_iter().map(|s| Value::string(s, span)).collect(), span)
                };
                rec.push("host", Value::string(host, span));
                rec.push("units", texts(r.units));
                rec.push("templates", texts(r.templates));
                rec.push("folder", Value::bool(r.folder, span));
                rec.push("reloaded", Value::bool(r.reloaded, span));
                Value::record(rec, span)
            })
            .collect();
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}
