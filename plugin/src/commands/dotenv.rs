//! `hk dotenv`: read secrets files (dotenv form) on this machine into rows of key, value and where
//! each was defined. What the deploy workflows' secrets are made of.

use std::path::PathBuf;
use std::time::Duration;

use hk_core::dotenv::{self, Options};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, PipelineData, Record, Signature, Spanned, SyntaxShape, Type, Value,
};

use crate::HkPlugin;
use crate::error::LabelErr;
use crate::load::{caller_env, current_dir, resolve_path};

pub struct Dotenv;

/// How long one `$(…)` may run unless --timeout says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl PluginCommand for Dotenv {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk dotenv"
    }

    fn description(&self) -> &str {
        "Read secrets files (KEY=value lines) here: one row per key with its final value and where it was defined."
    }

    fn extra_description(&self) -> &str {
        "Files are read in order and later ones win; a missing file is skipped. Comments (#), 'single' quotes (as written), \"double\" quotes (escapes, expansions, several lines), `export KEY=…`. ${VAR} and $VAR come from earlier lines, else the environment. $(command) runs with sh here, all of them at once, each within --timeout; one that names earlier keys gets their values as environment variables, never on its command line. What a command prints is never expanded again. Rows: key, value, file, line."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["secrets", "env", "dotenv", "vault"]
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .rest("files", SyntaxShape::Filepath, "the files, read in this order (later ones win)")
            .named("timeout", SyntaxShape::Duration, "how long one $(command) may run (default 1min)", None)
            .input_output_types(vec![(Type::Nothing, Type::table())])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![Example {
            example: "hk dotenv .hk/secrets-common .hk/secrets | select key file",
            description: "Which secrets a project's files define, and where",
            result: None,
        }]
    }

    fn run(
        &self,
        _plugin: &HkPlugin,
        engine: &EngineInterface,
        call: &EvaluatedCall,
        _input: PipelineData,
    ) -> Result<PipelineData, LabeledError> {
        let call = &crate::load::without_null_flags(call);
        let span = call.head;
        let files: Vec<Spanned<String>> = call.rest(0)?;
        let files: Vec<PathBuf> =
            files.iter().map(|f| resolve_path(engine, &f.item)).collect::<Result<_, _>>()?;
        let timeout = match call.get_flag::<Spanned<i64>>("timeout")? {
            Some(d) if d.item <= 0 => {
                return Err(
                    LabeledError::new("hk dotenv: --timeout must be positive").with_label("here", d.span)
                );
            }
            Some(d) => Duration::from_nanos(d.item as u64),
            None => DEFAULT_TIMEOUT,
        };
        let options = Options { env: caller_env(engine)?, cwd: current_dir(engine)?, timeout };
        let entries = dotenv::load(&files, &options).at(span)?;
        let rows = entries
            .into_iter()
            .map(|e| {
                let mut r = Record::new();
                r.push("key", Value::string(e.key, span));
                r.push("value", Value::string(e.value, span));
                r.push("file", Value::string(e.file.display().to_string(), span));
                r.push("line", Value::int(e.line as i64, span));
                Value::record(r, span)
            })
            .collect();
        Ok(PipelineData::value(Value::list(rows, span), None))
    }
}
