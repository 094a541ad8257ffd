//! `hk deployment lock`: take an app's deploy lock on its primary host, waiting for it when asked.

use std::time::{Duration, Instant};

use hk_core::app::lock::{self, Acquired};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Example, LabeledError, PipelineData, Record, Signature, Spanned, SyntaxShape, Type, Value,
};

use super::deployment::{app_call, app_signature, describe_holder, holder_gone};
use crate::HkPlugin;
use crate::convert::{json_to_value, value_to_json};
use crate::error::LabelErr;

pub struct AppLock;

/// How often a waiting lock looks again.
const POLL: Duration = Duration::from_secs(1);

impl PluginCommand for AppLock {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk deployment lock"
    }

    fn description(&self) -> &str {
        "Take an app's deploy lock (an atomic mkdir of <root>/<app>/lock) on its primary host, the first host given."
    }

    fn extra_description(&self) -> &str {
        "The holder record (e.g. {who, host, pid, version, message, since}) is written into the lock; release it with `hk deployment unlock` and the same record. When someone else holds it, the error names them; --wait keeps trying until then. Returns {host, app, holder}."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["deploy", "mutex", "lock"]
    }

    fn signature(&self) -> Signature {
        super::deployment::read_ahead_flags(app_signature(self.name()), "that host, with --facts")
            .named(
                "holder",
                SyntaxShape::Record(Default::default()),
                "who takes the lock (written into it)",
                None,
            )
            .named("wait", SyntaxShape::Duration, "keep trying this long while someone else holds it", None)
            .switch(
                "facts",
                "also read the app's facts on that host once the lock is taken, in the same exec (a `facts` column, as `hk deployment facts` gives them)",
                None,
            )
            .input_output_types(vec![(Type::Nothing, Type::record()), (Type::record(), Type::record())])
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "hk deployment lock web1 --app hello --holder {who: $env.USER, host: (sys host | get hostname), pid: $nu.pid, version: v2, message: '', since: (date now)} --wait 1min",
            description: "Take the lock of app hello on web1, waiting up to a minute",
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
        let holder_value: Value = call.get_flag("holder")?.ok_or_else(|| {
            LabeledError::new("hk deployment lock: --holder is required")
                .with_label("who takes the lock?", call.head)
        })?;
        let holder = value_to_json(&holder_value)?;
        let wait = match call.get_flag::<Spanned<i64>>("wait")? {
            Some(d) if d.item < 0 => {
                return Err(LabeledError::new("hk deployment lock: --wait cannot be negative")
                    .with_label("here", d.span));
            }
            Some(d) => Duration::from_nanos(d.item as u64),
            None => Duration::ZERO,
        };
        let app = app_call(engine, call, input)?;
        let (layout, span) = (&app.layout, app.span);
        let (host, mut transport) = app.primary()?;
        let deadline = Instant::now() + wait;
        let with_facts = call.has_flag("facts")?;
        let first = super::deployment::FirstReading::from_call(engine, call)?;
        let target =
            app.targets.first().map(|(_, t)| t.clone()).unwrap_or_else(hk_core::transport::Target::local);
        let facts = loop {
            let (acquired, facts) = if with_facts {
                let (acquired, facts) = match &first {
                    Some(first) => first.around(&host, &target, transport.as_mut(), |transport, ahead| {
                        lock::acquire_reading(transport, layout, &holder, ahead)
                    }),
                    None => lock::acquire_reading(transport.as_mut(), layout, &holder, None),
                }
                .at(span)?;
                (acquired, Some(facts))
            } else {
                (lock::acquire(transport.as_mut(), layout, &holder).at(span)?, None)
            };
            match acquired {
                Acquired::Taken => break facts,
                Acquired::Held { holder: other, since } => {
                    if Instant::now() < deadline && !engine.signals().interrupted() {
                        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
                        continue;
                    }
                    let help = if holder_gone(&other) {
                        "that process is gone (it ran on this machine): break the lock with `hk lock release --force`".to_string()
                    } else if wait.is_zero() {
                        "wait for it to finish (--lock-wait 5min), or, if it is stuck, `hk lock release --force`".to_string()
                    } else {
                        format!(
                            "still held after waiting {} s; if it is stuck: `hk lock release --force`",
                            wait.as_secs()
                        )
                    };
                    return Err(LabeledError::new(format!(
                        "hk: app {} is locked on host {host} by {}",
                        layout.app,
                        describe_holder(&other, since)
                    ))
                    .with_label("the deploy lock is held", span)
                    .with_help(help));
                }
            }
        };
        let mut r = Record::new();
        r.push("host", Value::string(host.clone(), span));
        r.push("app", Value::string(layout.app.clone(), span));
        r.push("holder", json_to_value(&holder, span));
        if let Some(facts) = facts {
            r.push("facts", super::deployment_facts::facts_to_value(&host, &facts, span));
        }
        Ok(PipelineData::value(Value::record(r, span), None))
    }
}
