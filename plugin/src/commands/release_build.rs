//! `hk release build`: a reproducible tarball and manifest of an app folder.

use hk_core::release::{BuildRequest, build};
use nu_plugin::{EngineInterface, EvaluatedCall, PluginCommand};
use nu_protocol::{
    Category, Example, LabeledError, PipelineData, Signature, Spanned, SyntaxShape, Type, Value,
};

use crate::HkPlugin;
use crate::convert::json_to_value;
use crate::error::LabelErr;
use crate::load::{current_dir, resolve_path};

pub struct ReleaseBuild;

impl PluginCommand for ReleaseBuild {
    type Plugin = HkPlugin;

    fn name(&self) -> &str {
        "hk release build"
    }

    fn description(&self) -> &str {
        "Pack an app folder into a reproducible <name>-<version>.tar.gz with its manifest."
    }

    fn extra_description(&self) -> &str {
        "Entries are sorted, owned by 0:0 with mtime 0 and their modes kept, and gzip carries no timestamp: the same folder always gives the same sha256. The name defaults to the one in Cargo.toml, package.json or mix.exs (else the folder's), the version to `git describe --always --dirty`."
    }

    fn search_terms(&self) -> Vec<&str> {
        vec!["package", "artifact", "tarball", "bundle", "deploy"]
    }

    fn signature(&self) -> Signature {
        Signature::build(self.name())
            .optional("dir", SyntaxShape::Directory, "the folder to pack (default: the current one)")
            .named("name", SyntaxShape::String, "release name", None)
            .named("version", SyntaxShape::String, "release version", None)
            .named(
                "out-dir",
                SyntaxShape::Directory,
                "where to write the tarball and manifest (default: here)",
                Some('o'),
            )
            .input_output_types(vec![(Type::Nothing, Type::record())])
            .category(Category::Custom("hk".into()))
    }

    fn examples(&self) -> Vec<Example<'_>> {
        vec![
            Example {
                example: "hk release build examples/app --version 1.0.0 --out-dir dist",
                description: "Build dist/app-1.0.0.tar.gz and dist/app-1.0.0.json",
                result: None,
            },
            Example {
                example: "hk release build | get sha256",
                description: "Pack the current folder, versioned by git describe",
                result: None,
            },
        ]
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
        let dir: Option<Spanned<String>> = call.opt(0)?;
        let dir_span = dir.as_ref().map_or(span, |d| d.span);
        let dir = match dir {
            Some(d) => resolve_path(engine, &d.item)?,
            None => current_dir(engine)?,
        };
        let out_dir = match call.get_flag::<String>("out-dir")? {
            Some(o) => resolve_path(engine, &o)?,
            None => current_dir(engine)?,
        };
        let request =
            BuildRequest { dir, name: call.get_flag("name")?, version: call.get_flag("version")?, out_dir };
        let mut tenths = hk_core::progress::Tenths::default();
        let (manifest, tarball, manifest_path) = build(&request, &mut |done, total| {
            if total >= crate::PROGRESS_FROM
                && let Some(percent) = tenths.step(done, total)
            {
                eprintln!("hk release build: {percent}% ({} of {} MiB)", done >> 20, total >> 20);
            }
        })
        .at(dir_span)?;
        let json = serde_json::to_value(&manifest).unwrap_or_default();
        let mut value = json_to_value(&json, span);
        if let Value::Record { val, .. } = &mut value {
            let record = val.to_mut();
            record.insert("built_at", Value::date(manifest.built_at.fixed_offset(), span));
            record.insert("size", Value::filesize(manifest.size as i64, span));
            record.insert("tarball", Value::string(tarball.display().to_string(), span));
            record.insert("manifest", Value::string(manifest_path.display().to_string(), span));
        }
        Ok(PipelineData::value(value, None))
    }
}
