//! `hk exec`: run one command line on hosts and get a table of what each printed.

use hk_core::engine::{self, failed_hosts_error};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
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
        host_signature(Signature::build(self.name()).required(
            "command",
            SyntaxShape::String,
            "the command line to run",
        ))
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
        let command: Spanned<String> = call.req(0)?;
        let selection = select_with(engine, call, input_record(input, span)?, true, 1)?;
        let creds = credentials(engine, call, selection.targets.iter().map(|(_, t)| t))?;
        let results = engine::exec(&selection.targets, &command.item, parallel(call)?, &creds);
        let mut rows = Vec::new();
        let mut failures = Vec::new();
        for (host, result) in results {
            match result {
                Ok(out) => {
                    let mut r = Record::new();
                    r.push("host", Value::string(host, span));
                    r.push("exit_code", Value::int(out.status as i64, span));
                    r.push("stdout", Value::string(String::from_utf8_lossy(&out.stdout), span));
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
