//! `hk clean`: a plan removing old release versions, applied with `hk apply`.

use hk_core::engine::{self, PlanOptions};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{Category, Example, LabeledError, PipelineData, Signature, Spanned, SyntaxShape, Type};

use super::plan::{host_signature, input_record, made_by_flag, outcome_to_pipeline, parallel};
use crate::HkPlugin;
use crate::error::LabelErr;
use crate::load::{credentials, select};

pub struct Clean;

impl PluginCommand for Clean {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk clean"
    }

    fn description(&self) -> &str {
        "Plan the removal of inactive release versions beyond the newest N (never the active one nor the one before it)."
    }

    fn extra_description(&self) -> &str {
        "Versions are ordered by semantic version when they all parse, else by when they were unpacked. A version that a link in the release's `ports/` folder points at (a deploy's running instance) is kept too. The releases are those the config declares, or the directories given with --releases. The result is a plan table: apply it with `hk apply --confirm`."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["prune", "cleanup", "old releases", "disk", "retention"]
    }

    fn signature(&self) -> Signature {
        made_by_flag(host_signature(Signature::build(self.name())))
            .named(
                "keep",
                SyntaxShape::Int,
                "versions to keep per release (default: the release's `keep`, 5)",
                Some('k'),
            )
            .named(
                "releases",
                super::plan::string_or_list(),
                "release directories on the hosts (<root>/<name>, e.g. /opt/hk/app) instead of the config's releases",
                None,
            )
            .input_output_types(vec![(Type::Nothing, Type::table()), (Type::record(), Type::table())])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk clean prod --keep 3 | hk apply --confirm",
                description: "Keep the three newest versions of each release on prod",
                result: None,
            },
            Example {
                example: "hk clean web1 --releases /opt/hk/hello --keep 5 | where action == delete",
                description: "What would go from a deployed app's releases on web1",
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
        let named = crate::load::string_list(call, "releases")?;
        let input = input_record(input, span)?;
        // Named release directories need no desired state: only hosts (a piped record or none).
        let selection = if named.is_empty() {
            select(engine, call, input)?
        } else {
            crate::load::select_with(engine, call, input, true, 0)?
        };
        let keep = match call.get_flag::<Spanned<i64>>("keep")? {
            Some(k) if k.item >= 1 => Some(k.item as u64),
            Some(k) => {
                return Err(
                    LabeledError::new("hk clean: --keep must be at least 1").with_label("here", k.span)
                );
            }
            None => None,
        };
        let options = PlanOptions {
            ignore: Vec::new(),
            parallel: parallel(call)?,
            credentials: credentials(engine, call, selection.targets.iter().map(|(_, t)| t))?,
            packages: Default::default(),
            secrets: Default::default(),
            hash_cache: None,
            project: selection
                .config
                .project
                .clone()
                .or(Some(crate::load::current_dir(engine)?.display().to_string())),
            made_by: call.get_flag::<String>("made-by")?.unwrap_or_default(),
            track_roots: None,
        };
        let mut bases = engine::release_bases(&selection.config);
        for dir in named {
            bases.push((dir.trim_end_matches('/').to_string(), 5));
        }
        let outcome = engine::clean(&bases, &selection.targets, keep, &options).at(span)?;
        Ok(outcome_to_pipeline(&outcome, span))
    }
}
