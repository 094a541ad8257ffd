//! `hk target`: how hk reaches hosts, as OpenSSH arguments, for what needs a terminal of its own.

use hk_core::transport::Target;
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, PipelineData, Record, Signature, SyntaxShape, Type, Value,
};

use super::exec::{command_line, run_context};
use super::plan::{host_signature, input_record};
use crate::HkPlugin;
use crate::error::LabelErr;
use crate::load::select_with;

pub struct TargetCommand;

impl PluginCommand for TargetCommand {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk target"
    }

    fn description(&self) -> &str {
        "How hk reaches hosts: one row per host with the OpenSSH arguments (`ssh ...$row.ssh CMD`) that reach it as hk does."
    }

    fn extra_description(&self) -> &str {
        "Rows: host, kind (ssh or local), sudo, ssh (the arguments before the remote command: port, user, key, known_hosts, StrictHostKeyChecking=yes; null for the local machine). A host on an instance gets its instance's address, port and key. For an interactive session: `^ssh -t ...$row.ssh 'command'`."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["ssh", "terminal", "interactive", "address"]
    }

    fn signature(&self) -> Signature {
        host_signature(
            Signature::build(self.name())
                .named(
                    "run",
                    SyntaxShape::OneOf(vec![
                        SyntaxShape::List(Box::new(SyntaxShape::String)),
                        SyntaxShape::String,
                    ]),
                    "end the arguments with this remote command (a shell line, or words each quoted)",
                    None,
                )
                .named(
                    "sandbox",
                    SyntaxShape::Record(Default::default()),
                    "run it as a transient service with these unit properties (systemd-run)",
                    None,
                )
                .named(
                    "within",
                    SyntaxShape::String,
                    "run it inside this running service unit (nsenter into its namespaces, user and environment)",
                    None,
                )
                .switch(
                    "terminal",
                    "ask for a terminal (ssh -t; systemd-run --pty with --sandbox)",
                    Some('t'),
                ),
        )
        .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
        .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk target --local | get 0.kind",
                description: "The machine hk runs on is reached without SSH",
                result: Some(Value::test_string("local")),
            },
            Example {
                example: "let t = hk target web1 hk.nu | first; ^ssh -t ...$t.ssh htop",
                description: "An interactive program on a host, with hk's own host key checks",
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
        let selection = select_with(engine, call, input_record(input, span)?, true, 0)?;
        let terminal = call.has_flag("terminal")?;
        let remote = match call.get_flag::<Value>("run")? {
            None => None,
            Some(v) => {
                let line = command_line(v)?;
                Some(run_context(call)?.command_line(&line, terminal).at(span)?)
            }
        };
        let rows = selection
            .targets
            .iter()
            .map(|(host, target)| {
                let mut r = Record::new();
                r.push("host", Value::string(host, span));
                let (kind, sudo, ssh) = match target {
                    Target::Local { sudo } => ("local", *sudo, Value::nothing(span)),
                    Target::Ssh { ssh, sudo } => {
                        let mut args = ssh.openssh_args();
                        if terminal {
                            args.insert(0, "-t".into());
                        }
                        if let Some(line) = &remote {
                            // A host that works under sudo: asked on the terminal when it needs a password.
                            args.push(if *sudo { format!("sudo {line}") } else { line.clone() });
                        }
                        (
                            "ssh",
                            *sudo,
                            Value::list(args.into_iter().map(|a| Value::string(a, span)).collect(), span),
                        )
                    }
                };
                r.push("kind", Value::string(kind, span));
                r.push("sudo", Value::bool(sudo, span));
                r.push("ssh", ssh);
                Value::record(r, span)
            })
            .collect();
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}
