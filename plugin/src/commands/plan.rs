//! `hk plan`: read hosts and diff them against the desired state; a table of changes.

use hk_core::engine::{self, PlanOptions};
use hk_core::plan_file;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, PipelineData, Signature, Span, SyntaxShape, Type, Value,
};

use crate::HkPlugin;
use crate::convert::row_to_value;
use crate::error::LabelErr;
use crate::load::{resolve_path, select, string_list};

pub struct Plan;

/// A flag value that is one string or a list of them (a list literal must be tried first).
pub fn string_or_list() -> SyntaxShape {
    SyntaxShape::OneOf(vec![
        SyntaxShape::List(Box::new(SyntaxShape::String)),
        SyntaxShape::String,
    ])
}

/// Flags shared by every command that selects hosts and a config.
pub fn selection_signature(sig: Signature) -> Signature {
    sig.optional(
        "target",
        SyntaxShape::String,
        "host to plan (a declared name, or `local`), or a config path",
    )
    .optional(
        "config",
        SyntaxShape::String,
        "config file: .nu, .nuon, .json or .toml (default ./hk.nu, then ./hk.nuon)",
    )
    .switch("local", "plan the machine hk runs on", Some('l'))
    .named(
        "require",
        string_or_list(),
        "Nu module(s) to `use` before evaluating a .nu config",
        Some('r'),
    )
    .named(
        "ignore",
        string_or_list(),
        "resource id(s) type:name to leave alone, e.g. file:/etc/motd or [file:/a dir:/b]",
        Some('i'),
    )
}

/// Plan from the command's selection (piped record or CONFIG) and turn the rows into a table value.
pub fn plan_selection(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: Option<Value>,
) -> Result<hk_core::model::Plan, LabeledError> {
    let selection = select(engine, call, input)?;
    let options = PlanOptions {
        ignore: string_list(call, "ignore")?,
    };
    engine::plan(&selection.config, &selection.hosts, &options).at(call.head)
}

pub fn plan_to_value(plan: &hk_core::model::Plan, span: Span) -> Value {
    let rows = plan
        .rows
        .iter()
        .filter_map(|row| {
            plan.hosts
                .get(&row.host)
                .map(|host| row_to_value(row, host, span))
        })
        .collect();
    Value::list(rows, span)
}

/// Piped input as an optional config record (nothing piped → None).
pub fn input_record(input: PipelineData, span: Span) -> Result<Option<Value>, LabeledError> {
    match input {
        PipelineData::Empty => Ok(None),
        other => match other.into_value(span)? {
            Value::Nothing { .. } => Ok(None),
            v @ Value::Record { .. } => Ok(Some(v)),
            v => Err(LabeledError::new("hk: piped input must be a config record")
                .with_label(format!("got {}", v.get_type()), v.span())),
        },
    }
}

impl PluginCommand for Plan {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk plan"
    }

    fn description(&self) -> &str {
        "Read hosts in one round trip each and show what applying the desired state would change."
    }

    fn extra_description(&self) -> &str {
        "Each row is one resource on one host. Filter rows with `where` and pipe them into `hk apply`: only those rows are applied. The `spec` column carries what apply needs; keep it."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec![
            "diff",
            "converge",
            "desired state",
            "dry run",
            "infrastructure",
            "deploy",
        ]
    }

    fn signature(&self) -> Signature {
        selection_signature(Signature::build(self.name()))
            .named(
                "out",
                SyntaxShape::Filepath,
                "also write the plan to this JSON file (mode 0600)",
                Some('o'),
            )
            .input_output_types(vec![
                (Type::Nothing, Type::table()),
                (Type::record(), Type::table()),
            ])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "{resources: [{type: dir, path: /nonexistent-hk-example/app}]} | hk plan local | get action",
                description: "Plan a piped desired state on this machine",
                result: Some(Value::test_list(vec![Value::test_string("create")])),
            },
            Example {
                example: "hk plan prod | where action != noop",
                description: "Show only what would change on the declared host prod (config from ./hk.nu)",
                result: None,
            },
            Example {
                example: "hk plan --local examples/quickstart/hk.nu --out plan.json",
                description: "Plan a config file on this machine and save the plan for `hk apply --plan`",
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
        let timer = hk_core::trace::Timer::start("hk plan");
        let input = input_record(input, call.head)?;
        let plan = plan_selection(engine, call, input)?;
        if let Some(out) = call.get_flag::<nu_protocol::Spanned<String>>("out")? {
            let path = resolve_path(engine, &out.item)?;
            plan_file::write(&path, &plan).at(out.span)?;
        }
        let value = plan_to_value(&plan, call.head);
        timer.done("until the table is built");
        Ok(PipelineData::value(value, None))
    }
}
