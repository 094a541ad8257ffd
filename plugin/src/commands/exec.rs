//! `hk exec`: run one command line on hosts and get a table of what each printed.

use hk_core::app::context::RunContext;
use hk_core::engine::{self, failed_hosts_error};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::shell_error::generic::GenericError;
use nu_protocol::{
    Category, Example, LabeledError, PipelineData, Record, Signature, Spanned, SyntaxShape, Type, Value,
};

use super::plan::{host_signature, input_record, parallel};
use crate::HkPlugin;
use crate::error::LabelErr;
use crate::load::{credentials, select_with};

pub struct Exec;

impl PluginCommand for Exec {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk exec"
    }

    fn description(&self) -> &str {
        "Run a shell command line on hosts (sh -c, under sudo where the host uses it); one row per host."
    }

    fn extra_description(&self) -> &str {
        "Rows: host, exit_code, stdout, stderr. A non-zero exit is reported in its row, not raised; a host that cannot be reached is an error naming it. Secrets do not belong on the command line: it is visible to the host's process list."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["run", "ssh", "remote", "command", "shell", "adhoc"]
    }

    fn signature(&self) -> Signature {
        host_signature(
            Signature::build(self.name())
                .required(
                    "command",
                    SyntaxShape::OneOf(vec![SyntaxShape::List(Box::new(SyntaxShape::String)), SyntaxShape::String]),
                    "the command line to run, or a program and its arguments (each quoted for the host's shell)",
                )
                .named(
                    "sandbox",
                    SyntaxShape::Record(Default::default()),
                    "run it as a transient service with these unit properties (systemd-run): {DynamicUser: yes, EnvironmentFile: …}",
                    None,
                )
                .named(
                    "within",
                    SyntaxShape::String,
                    "run it inside this running service unit: its namespaces, user, environment, working folder and cgroup (nsenter)",
                    None,
                )
                .switch(
                    "follow",
                    "stream {host, line} from every host while the command runs (journalctl -f); Ctrl-C or the end of the stream stops it on every host",
                    Some('f'),
                ),
        )
        .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
        .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk exec 'echo hello' --local | get 0.stdout | str trim",
                description: "Run a command on the machine hk runs on",
                result: Some(Value::test_string("hello")),
            },
            Example {
                example: "hk exec [journalctl -f -u caddy] --all --follow | where line =~ error",
                description: "Follow Caddy's journal on every host as one stream",
                result: None,
            },
            Example {
                example: "hk exec 'systemctl is-system-running' --all | select host stdout",
                description: "Ask every declared host whether systemd is up",
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
        let command = command_line(call.req(0)?)?;
        let selection = select_with(engine, call, input_record(input, span)?, true, 1)?;
        let context = run_context(call)?;
        let creds = credentials(engine, call, selection.targets.iter().map(|(_, t)| t))?;
        if call.has_flag("follow")? {
            if !matches!(context, RunContext::Login) {
                return Err(LabeledError::new(
                    "hk exec: --follow runs the command itself, not in an app's context",
                )
                .with_label("drop --sandbox/--within or --follow", span));
            }
            return follow(engine, &selection.targets, &command, &creds, span);
        }
        let results = engine::exec(&selection.targets, &command, &context, parallel(call)?, &creds);
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        for (host, result) in results {
            match result {
                Ok(out) => {
                    let mut r = Record::new();
                    r.push("host", Value::string(host, span));
                    r.push("exit_code", Value::int(out.status as i64, span));
                    // Byte for byte: text when it is UTF-8, else binary.
                    let stdout = match String::from_utf8(out.stdout) {
                        Ok(text) => Value::string(text, span),
                        Err(e) => Value::binary(e.into_bytes(), span),
                    };
                    r.push("stdout", stdout);
                    r.push("stderr", Value::string(String::from_utf8_lossy(&out.stderr), span));
                    rows.push(Value::record(r, span));
                }
                Err(e) => failures.push((host, format!("{e:#}"))),
            }
        }
        if !failures.is_empty() {
            return Err(failed_hosts_error(&failures)).at(span);
        }
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}

/// `--follow`: every host's lines as they arrive; a host that fails or ends with a non-zero status is
/// an error in the stream, naming it.
fn follow(
    engine: &EngineInterface,
    targets: &[(String, hk_core::transport::Target)],
    command: &str,
    creds: &hk_core::transport::Credentials,
    span: nu_protocol::Span,
) -> Result<PipelineData, LabeledError> {
    let interrupted = super::apply::interrupted_since_now(engine);
    let engine_gone = engine_watch(engine);
    let keep_going = move || !interrupted() && !engine_gone.load(std::sync::atomic::Ordering::Relaxed);
    let follower = engine::follow(targets, command, creds, std::sync::Arc::new(keep_going))
        .map_err(|e| LabeledError::new(format!("hk exec: {e:#}")).with_label("this command", span))?;
    let rows = follower.filter_map(move |event| match event {
        engine::Followed::Line { host, line } => {
            let mut r = Record::new();
            r.push("host", Value::string(host, span));
            r.push("line", Value::string(String::from_utf8_lossy(&line), span));
            Some(Value::record(r, span))
        }
        engine::Followed::Ended { status: 0, .. } => None,
        engine::Followed::Ended { host, status } => Some(stream_error(
            GenericError::new(
                format!("hk exec --follow: the command on {host} ended with status {status}"),
                "ended here",
                span,
            )
            .with_help("run it without --follow to see what it printed on stderr"),
            span,
        )),
        engine::Followed::Failed { host, error } => Some(stream_error(
            GenericError::new(
                format!("hk exec --follow: {host}: {error}"),
                "following this host failed",
                span,
            ),
            span,
        )),
    });
    Ok(PipelineData::list_stream(
        nu_protocol::ListStream::new(rows, span, nu_protocol::Signals::empty()),
        None,
    ))
}

/// A flag set once nu no longer answers (it exited): a quiet stream is only written to when a line
/// arrives, so without this its hosts' commands would outlive the shell that started them.
fn engine_watch(engine: &EngineInterface) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (flag, engine) = (gone.clone(), engine.clone());
    std::thread::spawn(move || {
        while engine.get_current_dir().is_ok() {
            std::thread::sleep(std::time::Duration::from_secs(1));
            if std::sync::Arc::strong_count(&flag) == 1 {
                return; // the follower ended
            }
        }
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    gone
}

fn stream_error(error: GenericError, span: nu_protocol::Span) -> Value {
    Value::error(nu_protocol::ShellError::Generic(error), span)
}

/// A command given as a shell line, or as a program and its arguments, each quoted by hk's one helper.
pub fn command_line(value: Value) -> Result<String, LabeledError> {
    let span = value.span();
    match value {
        Value::String { val, .. } => Ok(val),
        Value::List { vals, .. } => {
            let mut words = Vec::with_capacity(vals.len());
            for v in vals.iter() {
                let word = v.as_str().map_err(|_| {
                    LabeledError::new("hk: a command's words are text").with_label("this word", v.span())
                })?;
                words.push(hk_core::quote::q(word).map_err(|e| {
                    LabeledError::new(format!("hk: {e:#}")).with_label("this word", v.span())
                })?);
            }
            if words.is_empty() {
                return Err(LabeledError::new("hk: no command to run").with_label("an empty list", span));
            }
            Ok(words.join(" "))
        }
        other => Err(LabeledError::new("hk: a command is text or a list of words")
            .with_label(format!("got {}", other.get_type()), span)),
    }
}

/// Where the command runs: `--sandbox` (beside an app's instance), `--within` (inside it), or as a
/// login would; the two flags exclude each other.
pub fn run_context(call: &EvaluatedCall) -> Result<RunContext, LabeledError> {
    let sandbox = sandbox_properties(call)?;
    let within = call.get_flag::<Spanned<String>>("within")?;
    match (sandbox, within) {
        (Some(_), Some(unit)) => Err(LabeledError::new("hk: --sandbox and --within exclude each other")
            .with_label("a new transient service, or this running one: not both", unit.span)),
        (Some(properties), None) => Ok(RunContext::Sandbox(properties)),
        (None, Some(unit)) => Ok(RunContext::Within(unit.item)),
        (None, None) => Ok(RunContext::Login),
    }
}

/// `--sandbox {Name: value, Name: [v1 v2]}` as ordered `(name, value)` pairs (a list repeats the name).
fn sandbox_properties(call: &EvaluatedCall) -> Result<Option<Vec<(String, String)>>, LabeledError> {
    let Some(value) = call.get_flag::<Value>("sandbox")? else { return Ok(None) };
    let span = value.span();
    let record = value.into_record().map_err(|e| {
        LabeledError::new(format!("hk: --sandbox: {e}")).with_label("a record of unit properties", span)
    })?;
    let mut out = Vec::new();
    for (name, v) in record.iter() {
        let items = match v {
            Value::List { vals, .. } => vals.to_vec(),
            other => vec![other.clone()],
        };
        for item in items {
            let text = match &item {
                Value::String { val, .. } => val.clone(),
                Value::Bool { val, .. } => {
                    if *val {
                        "yes".into()
                    } else {
                        "no".into()
                    }
                }
                Value::Int { val, .. } => val.to_string(),
                other => {
                    return Err(LabeledError::new(format!(
                        "hk: --sandbox: {name} must be text, got {}",
                        other.get_type()
                    ))
                    .with_label("this value", other.span()));
                }
            };
            out.push((name.clone(), text));
        }
    }
    Ok(Some(out))
}
