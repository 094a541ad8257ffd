//! What the `hk instance …` commands share: the signature, finding the instance, the status record.

use hk_core::instance::{Backend, Instance, Status, backend};
use nu_plugin::{EngineInterface, EvaluatedCall};
use nu_protocol::{Category, LabeledError, Record, Signature, Span, Spanned, SyntaxShape, Value};

use super::plan::{input_record, string_or_list};
use crate::error::LabelErr;
use crate::load::load_config;

/// `NAME [CONFIG]` with `--require`.
pub fn instance_signature(name: &str, name_required: bool) -> Signature {
    let sig = Signature::build(name);
    let sig = if name_required {
        sig.required("name", SyntaxShape::String, "the instance, as declared under `instances`")
    } else {
        sig.optional("name", SyntaxShape::String, "the instance (default: every declared instance)")
    };
    sig.optional(
        "config",
        SyntaxShape::String,
        "config file: .nu, .nuon, .json or .toml (default ./hk.nu, then ./hk.nuon)",
    )
    .named("require", string_or_list(), "Nu module(s) to `use` before evaluating a .nu config", Some('r'))
    .category(Category::Custom("hk".into()))
}

/// A declared instance with the backend that runs it.
pub type WithBackend = (Instance, Box<dyn Backend>);

/// The declared instances named by the call (all of them when no name is given), with their backends.
pub fn instances(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: nu_protocol::PipelineData,
) -> Result<Vec<WithBackend>, LabeledError> {
    let span = call.head;
    let name: Option<Spanned<String>> = call.opt(0)?;
    let config_arg: Option<Spanned<String>> = call.opt(1)?;
    let require = crate::load::string_list(call, "require")?;
    let config = load_config(engine, call, input_record(input, span)?, config_arg.as_ref(), &require)?;
    let names: Vec<(String, Span)> = match &name {
        Some(n) => vec![(n.item.clone(), n.span)],
        None => config.instances.keys().map(|n| (n.clone(), span)).collect(),
    };
    names
        .into_iter()
        .map(|(n, s)| {
            let instance = config.instance(&n).at(s)?;
            let backend = backend(instance.spec.backend);
            Ok((instance, backend))
        })
        .collect()
}

pub fn status_to_value(status: &Status, span: Span) -> Value {
    let text = |v: &Option<String>| v.clone().map_or(Value::nothing(span), |s| Value::string(s, span));
    let mut r = Record::new();
    r.push("name", Value::string(status.name.clone(), span));
    r.push("backend", Value::string(status.backend.clone(), span));
    r.push("state", Value::string(status.state.clone(), span));
    r.push("address", text(&status.address));
    r.push("port", status.port.map_or(Value::nothing(span), |p| Value::int(p as i64, span)));
    r.push("pid", status.pid.map_or(Value::nothing(span), |p| Value::int(p as i64, span)));
    r.push("image", text(&status.image));
    let since = status
        .since
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or(Value::nothing(span), |d| Value::date(d, span));
    r.push("since", since);
    r.push("ssh", text(&status.ssh));
    let mut ports = Record::new();
    for (guest, local) in &status.ports {
        ports.push(guest.to_string(), Value::int(*local as i64, span));
    }
    r.push("ports", Value::record(ports, span));
    r.push("note", text(&status.note));
    Value::record(r, span)
}

/// Progress of long steps goes to stderr, which nu shows while the command runs.
pub fn progress(name: &str) -> impl FnMut(&str) + '_ {
    move |message: &str| eprintln!("hk instance {name}: {message}")
}

/// Run `op` (ensure, destroy) on the one named instance, with progress on stderr, as a status record.
pub fn on_named_instance(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: nu_protocol::PipelineData,
    op: impl FnOnce(&dyn Backend, &Instance, &mut dyn FnMut(&str)) -> anyhow::Result<Status>,
) -> Result<nu_protocol::PipelineData, LabeledError> {
    let span = call.head;
    let mut found = instances(engine, call, input)?;
    let (instance, backend) = found.remove(0);
    let status = op(backend.as_ref(), &instance, &mut progress(&instance.name)).at(span)?;
    Ok(nu_protocol::PipelineData::value(status_to_value(&status, span), None))
}
