//! `hk deployment facts`: one row per host with what a deploy decides from.

use hk_core::app::facts::{self, AppFacts};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Example, LabeledError, PipelineData, Record, Signature, Span, Type, Value};

use super::deployment::{app_call, app_signature, epoch_date, holder_gone};
use super::plan::parallel;
use crate::HkPlugin;
use crate::convert::json_to_value;

pub struct AppFactsCommand;

pub(crate) fn facts_to_value(host: &str, f: &AppFacts, span: Span) -> Value {
    let mut r = Record::new();
    let opt = |v: Option<Value>| v.unwrap_or_else(|| Value::nothing(span));
    r.push("host", Value::string(host, span));
    r.push("active_port", opt(f.active_port.map(|p| Value::int(p as i64, span))));
    r.push("current", opt(f.current.clone().map(|v| Value::string(v, span))));
    let releases = f
        .releases
        .iter()
        .map(|rel| {
            let mut x = Record::new();
            x.push("version", Value::string(rel.version.clone(), span));
            x.push("unpacked_at", epoch_date(rel.unpacked_at, span));
            Value::record(x, span)
        })
        .collect();
    r.push("releases", Value::list(releases, span));
    let ports = f
        .ports
        .iter()
        .map(|p| {
            let mut x = Record::new();
            x.push("port", Value::int(p.port as i64, span));
            x.push("version", Value::string(p.version.clone(), span));
            x.push("instance", Value::string(p.instance.clone(), span));
            Value::record(x, span)
        })
        .collect();
    r.push("ports", Value::list(ports, span));
    r.push("lock", opt(f.lock.as_ref().map(|h| json_to_value(h, span))));
    r.push("locked_at", opt(f.locked_at.map(|t| epoch_date(t, span))));
    r.push("lock_gone", Value::bool(f.lock.as_ref().is_some_and(holder_gone), span));
    let claims = f
        .claims
        .iter()
        .map(|c| {
            let mut x = Record::new();
            x.push("app", Value::string(c.app.clone(), span));
            x.push("port", Value::int(c.port as i64, span));
            Value::record(x, span)
        })
        .collect();
    r.push("claims", Value::list(claims, span));
    r.push("template", Value::bool(f.template, span));
    let c = &f.caddy;
    let mut caddy = Record::new();
    for (k, v) in [
        ("installed", c.installed),
        ("running", c.running),
        ("main", c.main),
        ("pristine", c.pristine),
        ("imports", c.imports),
    ] {
        caddy.push(k, Value::bool(v, span));
    }
    r.push("caddy", Value::record(caddy, span));
    Value::record(r, span)
}

impl PluginCommand for AppFactsCommand {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk deployment facts"
    }

    fn description(&self) -> &str {
        "Read a deployed app's state on hosts (one script each): live port and release, releases, ports, lock, Caddy."
    }

    fn extra_description(&self) -> &str {
        "One row per host: host, active_port, current, releases [{version, unpacked_at}], ports [{port, version, instance}], lock (the holder record), locked_at, lock_gone (its process is provably gone: it ran on this machine and no longer exists), claims (ports of other apps under the same root), template (the systemd template unit exists), caddy {installed, running, main, pristine, imports}. The building block of `hk versions`, `hk lock status` and the deploy workflows."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["deploy", "state", "versions", "releases", "status"]
    }

    fn signature(&self) -> Signature {
        super::deployment::read_ahead_flags(app_signature(self.name()), "each host")
            .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk deployment facts --app nonexistent-hk-example --root /nonexistent-hk-example --local | get 0.releases | length",
                description: "An app that was never deployed here has no releases",
                result: Some(Value::test_int(0)),
            },
            Example {
                example: "{hosts: {web1: {address: 10.0.0.5}}} | hk deployment facts web1 --app hello | select host current active_port",
                description: "What runs on web1",
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
        let first = super::deployment::FirstReading::from_call(engine, call)?;
        let app = app_call(engine, call, input)?;
        let span = app.span;
        let targets = app.targets.clone();
        let rows = app
            .on_each_named_host(parallel(call)?, |host, transport, layout| match &first {
                None => facts::read(transport, layout),
                Some(first) => {
                    let target = targets.iter().find(|(h, _)| h == host).map(|(_, t)| t.clone());
                    let target = target.unwrap_or_else(hk_core::transport::Target::local);
                    first.around(host, &target, transport, |transport, ahead| match ahead {
                        Some(ahead) => facts::read_ahead(transport, layout, ahead),
                        None => facts::read(transport, layout),
                    })
                }
            })?
            .iter()
            .map(|(host, f)| facts_to_value(host, f, span))
            .collect();
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}
