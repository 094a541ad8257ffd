//! `hk release stale`: which releases a prune removes, from a listing already read — the choice of
//! `hk clean` (all but the newest `keep`, never the live one, the one before it, nor one a port's
//! instance still runs), reading no host.

use hk_core::engine::{Installed, order_versions, removable};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, PipelineData, Signature, Spanned, SyntaxShape, Type, Value,
};

use crate::HkPlugin;

pub struct ReleaseStale;

impl PluginCommand for ReleaseStale {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk release stale"
    }

    fn description(&self) -> &str {
        "The versions a prune removes from a host whose releases are piped in ({version, unpacked_at}), keeping the newest --keep, the --current one, the one before it and every --linked one."
    }

    fn extra_description(&self) -> &str {
        "Versions are ordered by semantic version when all of them parse, else by unpack time. Reads no host: give it what `hk deployment facts` read, as it will be once a deploy is done."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["prune", "clean", "releases", "retain"]
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .required_named("keep", SyntaxShape::Int, "how many of the newest to keep", None)
            .named("current", SyntaxShape::String, "the live version", None)
            .named(
                "linked",
                SyntaxShape::List(Box::new(SyntaxShape::String)),
                "versions instances still run",
                None,
            )
            .input_output_types(vec![(Type::table(), Type::List(Box::new(Type::String)))])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "[[version unpacked_at]; [v1 1] [v2 2] [v3 3]] | hk release stale --keep 1 --current v3",
            description: "Keep the newest and the one before the live one",
            result: Some(Value::test_list(vec![Value::test_string("v1")])),
        }]
    }

    fn run(
        &self,
        _plugin: &HkPlugin,
        _engine: &EngineInterface,
        call: &EvaluatedCall,
        input: PipelineData,
    ) -> Result<PipelineData, LabeledError> {
        let span = call.head;
        let keep: Spanned<i64> = call.get_flag("keep")?.ok_or_else(|| {
            LabeledError::new("hk release stale: --keep is required").with_label("how many to keep?", span)
        })?;
        if keep.item < 1 {
            return Err(LabeledError::new("hk release stale: --keep must be at least 1")
                .with_label("here", keep.span));
        }
        let current: Option<String> = call.get_flag("current")?;
        let linked: Vec<String> = call.get_flag("linked")?.unwrap_or_default();
        let mut installed = Vec::new();
        for row in input.into_value(span)?.into_list()? {
            let row_span = row.span();
            let record = row.as_record().map_err(|_| {
                LabeledError::new("hk release stale: each input row is {version, unpacked_at}")
                    .with_label("not a record", row_span)
            })?;
            let version = record.get("version").and_then(|v| v.as_str().ok()).ok_or_else(|| {
                LabeledError::new("hk release stale: a row without a version").with_label("here", row_span)
            })?;
            // A date (as `hk deployment facts` gives it) or seconds since the epoch.
            let unpacked_at = match record.get("unpacked_at") {
                Some(Value::Date { val, .. }) => val.timestamp(),
                Some(Value::Int { val, .. }) => *val,
                _ => 0,
            };
            installed.push(Installed { version: version.to_string(), unpacked_at });
        }
        let stale = removable(&order_versions(installed), current.as_deref(), &linked, keep.item as usize);
        Ok(PipelineData::value(
            Value::list(stale.into_iter().map(|v| Value::string(v, span)).collect(), span),
            None,
        ))
    }
}
