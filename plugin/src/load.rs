//! Where the desired state and the host list come from: a piped record; a CONFIG argument (`.nu`
//! evaluated by nu, `.nuon`/`.toml` parsed by nu's own commands, `.json`); else ./hk.nu, ./hk.nuon.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hk_core::config::{Config, LOCAL_HOST};
use hk_core::transport::{Credentials, Target, TargetOverrides};
use nu_plugin::{EngineInterface, EvaluatedCall};
use nu_protocol::{LabeledError, PipelineData, Span, Spanned, Value};

use crate::convert::value_to_json;
use crate::error::{LabelErr, labeled};
use hk_core::config::ConfigError;

/// What a plan-like command works on: the desired state and the hosts with how to reach them.
pub struct Selection {
    pub config: Config,
    pub targets: Vec<(String, Target)>,
}

fn looks_like_config(arg: &str) -> bool {
    [".nu", ".nuon", ".json", ".toml"].iter().any(|ext| arg.ends_with(ext)) || arg.contains('/')
}

/// A string or a list of strings given to a flag such as `--ignore`.
pub fn string_list(call: &EvaluatedCall, flag: &str) -> Result<Vec<String>, LabeledError> {
    match call.get_flag_value(flag) {
        None => Ok(Vec::new()),
        Some(value) => strings_of(&value, &format!("--{flag}")),
    }
}

fn strings_of(value: &Value, what: &str) -> Result<Vec<String>, LabeledError> {
    match value {
        Value::String { val, .. } => Ok(vec![val.clone()]),
        Value::List { vals, .. } => {
            vals.iter().map(|v| v.as_str().map(str::to_string).map_err(LabeledError::from)).collect()
        }
        other => Err(LabeledError::new(format!("{what} takes a string or a list of strings"))
            .with_label(format!("got {}", other.get_type()), other.span())),
    }
}

pub fn current_dir(engine: &EngineInterface) -> Result<PathBuf, LabeledError> {
    Ok(PathBuf::from(engine.get_current_dir()?))
}

/// Resolve a user-given path against the caller's directory (the plugin process does not `cd`).
pub fn resolve_path(engine: &EngineInterface, raw: &str) -> Result<PathBuf, LabeledError> {
    let p = Path::new(raw);
    Ok(if p.is_absolute() { p.to_path_buf() } else { current_dir(engine)?.join(p) })
}

/// The raw-target flags that override how hosts are reached.
pub fn overrides(engine: &EngineInterface, call: &EvaluatedCall) -> Result<TargetOverrides, LabeledError> {
    let path_flag = |name: &str| -> Result<Option<String>, LabeledError> {
        match call.get_flag::<String>(name)? {
            Some(p) => Ok(Some(resolve_path(engine, &p)?.display().to_string())),
            None => Ok(None),
        }
    };
    let port =
        match call.get_flag::<Spanned<i64>>("port")? {
            Some(p) => Some(u16::try_from(p.item).map_err(|_| {
                LabeledError::new("hk: --port must be 1-65535").with_label("not a port", p.span)
            })?),
            None => None,
        };
    Ok(TargetOverrides {
        user: call.get_flag("user")?,
        port,
        identity_file: path_flag("identity-file")?,
        known_hosts: path_flag("known-hosts")?,
        password_env: call.get_flag("password-env")?,
        accept_unknown_host: call.has_flag("silently-accept-hosts")?,
        sudo: call.has_flag("sudo")?,
    })
}

/// Passwords for these targets: `--password`, else the variables named by `--password-env` or a
/// host's `password_env`, read from the caller's environment (never from arguments of a process).
pub fn credentials<'a>(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    targets: impl Iterator<Item = &'a Target>,
) -> Result<Credentials, LabeledError> {
    let mut creds = Credentials { password: call.get_flag("password")?, ..Credentials::default() };
    for name in targets.filter_map(|t| t.password_env()) {
        if creds.env.contains_key(name) {
            continue;
        }
        match engine.get_env_var(name)? {
            Some(value) => {
                creds.env.insert(name.to_string(), value.coerce_str()?.into_owned());
            }
            None => {
                return Err(LabeledError::new(format!("hk: ${name} is not set"))
                    .with_label(format!("a host takes its password from ${name}"), call.head)
                    .with_help(format!("set it first: $env.{name} = (input -s 'password: ')")));
            }
        }
    }
    Ok(creds)
}

/// Read the selection from positionals, flags and piped input.
pub fn select(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: Option<Value>,
) -> Result<Selection, LabeledError> {
    select_with(engine, call, input, false, 0)
}

/// As [`select`]; with `config_optional`, a missing default config means "no declared hosts" (for
/// commands such as `hk runs --local` that need no desired state). TARGET and CONFIG are the
/// positionals at `at` and `at + 1` (after a command's own leading positionals).
pub fn select_with(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: Option<Value>,
    config_optional: bool,
    at: usize,
) -> Result<Selection, LabeledError> {
    crate::keep_sessions(engine);
    let first: Option<Value> = call.opt(at)?;
    let second: Option<Spanned<String>> = call.opt(at + 1)?;
    let (host_arg, config_arg) = match (first, second) {
        (Some(Value::String { val, internal_span, .. }), None) if looks_like_config(&val) => {
            (None, Some(Spanned { item: val, span: internal_span }))
        }
        (first, second) => (first, second),
    };
    let require = string_list(call, "require")?;
    let cwd = current_dir(engine)?;
    let has_default = ["hk.nu", "hk.nuon"].iter().any(|n| cwd.join(n).is_file());
    let config = if config_optional && input.is_none() && config_arg.is_none() && !has_default {
        Config::default()
    } else {
        load_config(engine, call, input, config_arg.as_ref(), &require)?
    };
    let remote: Option<Spanned<String>> = call.get_flag("remote")?;
    let all = call.has_flag("all")?;
    let local = call.has_flag("local")?;
    let chosen = [host_arg.is_some(), remote.is_some(), all, local].iter().filter(|b| **b).count();
    if chosen > 1 {
        return Err(LabeledError::new("hk: choose hosts one way")
            .with_label("give a host list, --remote, --all or --local, not several", call.head));
    }
    let names: Vec<String> = if let Some(remote) = &remote {
        vec![remote.item.clone()]
    } else if local {
        vec![LOCAL_HOST.to_string()]
    } else if all {
        if config.hosts.is_empty() {
            vec![LOCAL_HOST.to_string()]
        } else {
            config.hosts.keys().cloned().collect()
        }
    } else if let Some(hosts) = &host_arg {
        let names = strings_of(hosts, "the host argument")?;
        for name in &names {
            hk_core::engine::target(&config, name).at(hosts.span())?;
        }
        names
    } else {
        match config.hosts.len() {
            0 => vec![LOCAL_HOST.to_string()],
            1 => config.hosts.keys().cloned().collect(),
            _ => {
                let names: Vec<&str> = config.hosts.keys().map(String::as_str).collect();
                return Err(LabeledError::new("hk: which host?")
                    .with_label(format!("the config declares several hosts: {}", names.join(", ")), call.head)
                    .with_help(
                        "name one or a list, e.g. `hk plan prod` or `hk plan [web1 web2]`, or use --all",
                    ));
            }
        }
    };
    let overrides = overrides(engine, call)?;
    let mut targets = Vec::with_capacity(names.len());
    for name in names {
        let mut target = match &remote {
            Some(r) => Target::remote(&r.item),
            None => hk_core::engine::target(&config, &name).at(call.head)?,
        };
        target.apply_overrides(&overrides);
        targets.push((name, target));
    }
    Ok(Selection { config, targets })
}

pub fn load_config(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    input: Option<Value>,
    config_arg: Option<&Spanned<String>>,
    require: &[String],
) -> Result<Config, LabeledError> {
    let cwd = current_dir(engine)?;
    if let Some(value) = input {
        if config_arg.is_some() {
            return Err(LabeledError::new("hk: both a piped config and a CONFIG argument")
                .with_label("drop this or the piped record", config_arg.map_or(call.head, |c| c.span)));
        }
        let timer = hk_core::trace::Timer::start("read config");
        let json = value_to_json(&value)?;
        timer.done("piped");
        return check_config(engine, json, &cwd, Source::Piped(&value), value.span());
    }
    let (path, span) = match config_arg {
        Some(arg) => {
            let path = resolve_path(engine, &arg.item)?;
            if !path.is_file() {
                return Err(LabeledError::new(format!("hk: config file {} not found", path.display()))
                    .with_label("no such file", arg.span));
            }
            (path, arg.span)
        }
        None => match ["hk.nu", "hk.nuon"].iter().map(|n| cwd.join(n)).find(|p| p.is_file()) {
            Some(path) => (path, call.head),
            None => {
                return Err(LabeledError::new("hk: no config")
                    .with_label(format!("no hk.nu or hk.nuon in {}", cwd.display()), call.head)
                    .with_help("pipe a record, give a CONFIG path, or create ./hk.nu"));
            }
        },
    };
    let timer = hk_core::trace::Timer::start("read config");
    let json = read_config_file(engine, call, &path, require, span)?;
    timer.done(&path.display().to_string());
    check_config(engine, json, path.parent().unwrap_or(&cwd), Source::File(&path, require), span)
}

/// Where a config came from, to point at the offending field when it is wrong.
enum Source<'a> {
    /// A record piped in: its values carry the spans of the code that made them.
    Piped(&'a Value),
    /// A file, with the modules a `.nu` config needs.
    File(&'a Path, &'a [String]),
}

/// The config read from `source`, checked, with relative paths resolved against `base`. An error
/// points at the offending field: at its span in the code that made a piped record, or by file,
/// line and column in a `.nu`, `.nuon` or `.json` file.
fn check_config(
    engine: &EngineInterface,
    json: serde_json::Value,
    base: &Path,
    source: Source,
    span: Span,
) -> Result<Config, LabeledError> {
    let timer = hk_core::trace::Timer::start("check config");
    let lookup = json.clone();
    let mut config = match Config::from_value(json, base) {
        Ok(config) => config,
        Err(e) => {
            let field = e.downcast_ref::<ConfigError>().map(|c| c.location().to_string());
            return Err(match (source, field) {
                (Source::Piped(value), Some(field)) => {
                    let at = crate::locate::span_of(value, &field).unwrap_or(span);
                    labeled(e, at)
                }
                (Source::File(path, require), Some(field)) => {
                    let mut error = labeled(e.context(format!("in {}", path.display())), span);
                    if let Some(place) = locate_in_file(engine, path, require, &lookup, &field) {
                        error.msg.push_str(&format!(" ({place})"));
                    }
                    error
                }
                (Source::File(path, _), None) => labeled(e.context(format!("in {}", path.display())), span),
                (Source::Piped(_), None) => labeled(e, span),
            });
        }
    };
    timer.done("");
    place_instances(engine, &mut config)?;
    Ok(config)
}

/// `FILE:LINE:COLUMN` of `field` in a config file nu can read as code (`.nu`, `.nuon`, `.json`),
/// from nu's own parser: the file is evaluated again (only when it is wrong) and the span of the
/// field's value looked up among the files nu read.
fn locate_in_file(
    engine: &EngineInterface,
    path: &Path,
    require: &[String],
    json: &serde_json::Value,
    field: &str,
) -> Option<String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if !matches!(ext, "nu" | "nuon" | "json") {
        return None;
    }
    let cell_path = crate::locate::cell_path(json, field);
    let body = format!(
        "let v = $hk_config{cell_path}\nlet s = (metadata $v).span\n\
         view files | where {{|f| $s.start >= $f.start and $s.start < $f.end }} \
         | each {{|f| {{file: $f.filename, offset: ($s.start - $f.start)}} }} | to json --raw\n"
    );
    let output = run_nu_config(engine, path, require, Span::unknown(), &body).ok()?;
    let found: serde_json::Value = serde_json::from_slice(&output).ok()?;
    let found = found.as_array()?.first()?;
    let file = found.get("file")?.as_str()?;
    let offset = usize::try_from(found.get("offset")?.as_u64()?).ok()?;
    let text = std::fs::read(file).ok()?;
    let (line, column) = crate::locate::line_column(&text, offset);
    Some(format!("{file}:{line}:{column}"))
}

/// `$env.HK_INSTANCES_DIR` (instances' own files) and `$env.HK_IMAGE_CACHE` (shared images) from the
/// caller's environment, which may differ from the one this plugin process started with.
fn place_instances(engine: &EngineInterface, config: &mut Config) -> Result<(), LabeledError> {
    if let Some(dir) = env_text(engine, "HK_INSTANCES_DIR")? {
        config.instances_dir = resolve_path(engine, &dir)?;
    }
    if let Some(dir) = env_text(engine, "HK_IMAGE_CACHE")? {
        config.image_cache = resolve_path(engine, &dir)?;
    }
    Ok(())
}

/// One of the caller's environment variables as text (`None` when unset).
pub fn env_text(engine: &EngineInterface, name: &str) -> Result<Option<String>, LabeledError> {
    Ok(engine.get_env_var(name)?.and_then(|v| v.coerce_str().ok().map(|s| s.into_owned())))
}

/// `$XDG_…_HOME/hk/<leaf>` (`xdg_var`), else `~/<home_dir>/hk/<leaf>`; `None` without either.
pub fn xdg_path(
    engine: &EngineInterface,
    xdg_var: &str,
    home_dir: &str,
    leaf: &str,
) -> Result<Option<PathBuf>, LabeledError> {
    if let Some(base) = env_text(engine, xdg_var)?.filter(|s| !s.is_empty()) {
        return Ok(Some(PathBuf::from(base).join("hk").join(leaf)));
    }
    Ok(env_text(engine, "HOME")?.map(|home| PathBuf::from(home).join(home_dir).join("hk").join(leaf)))
}

fn read_config_file(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    path: &Path,
    require: &[String],
    span: Span,
) -> Result<serde_json::Value, LabeledError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if ext == "nu" {
        return eval_nu_config(engine, path, require, span);
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        LabeledError::new(format!("hk: cannot read {}: {e}", path.display())).with_label("here", span)
    })?;
    match ext {
        "json" => serde_json::from_str(&text).map_err(|e| {
            LabeledError::new(format!("hk: {} is not valid JSON: {e}", path.display()))
                .with_label("here", span)
        }),
        "nuon" | "toml" => {
            let decl = format!("from {ext}");
            let id = engine.find_decl(&decl)?.ok_or_else(|| {
                LabeledError::new(format!("hk: this nu has no `{decl}` command"))
                    .with_label("needed here", span)
            })?;
            let parsed = engine
                .call_decl(
                    id,
                    EvaluatedCall::new(call.head),
                    PipelineData::value(Value::string(text, span), None),
                    true,
                    false,
                )
                .and_then(|data| data.into_value(span))
                .map_err(|e| {
                    LabeledError::new(format!("hk: cannot parse {}", path.display()))
                        .with_label(e.to_string(), span)
                })?;
            value_to_json(&parsed)
        }
        other => Err(LabeledError::new(format!("hk: unknown config format {other:?}"))
            .with_label("use .nu, .nuon, .json or .toml", span)),
    }
}

/// The nu that started this plugin (its parent process), so `.nu` configs see the same language.
fn nu_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("HK_NU") {
        return Some(PathBuf::from(path));
    }
    let parent = std::fs::read_link(format!("/proc/{}/exe", std::os::unix::process::parent_id())).ok()?;
    let name = parent.file_name()?.to_string_lossy().to_string();
    name.starts_with("nu").then_some(parent)
}

fn nu_raw_string(s: &str, span: Span) -> Result<String, LabeledError> {
    if s.contains("'#") {
        return Err(LabeledError::new(format!("hk: path {s:?} contains '#, which hk cannot pass to nu"))
            .with_label("here", span));
    }
    Ok(format!("r#'{s}'#"))
}

fn eval_nu_config(
    engine: &EngineInterface,
    path: &Path,
    require: &[String],
    span: Span,
) -> Result<serde_json::Value, LabeledError> {
    let stdout = run_nu_config(engine, path, require, span, "$hk_config | to json --raw\n")?;
    serde_json::from_slice(&stdout).map_err(|e| {
        LabeledError::new(format!("hk: {} did not produce a record", path.display()))
            .with_label(format!("its last expression must be the config record ({e})"), span)
    })
}

/// Run `body` in the nu that started this plugin, after `let hk_config = (source PATH)` (and the
/// `use` of each required module), in the caller's directory and environment; its stdout.
fn run_nu_config(
    engine: &EngineInterface,
    path: &Path,
    require: &[String],
    span: Span,
    body: &str,
) -> Result<Vec<u8>, LabeledError> {
    let nu = nu_binary().ok_or_else(|| {
        LabeledError::new("hk: cannot find the nu binary to evaluate a .nu config")
            .with_label("this config", span)
            .with_help("set $env.HK_NU to the path of nu")
    })?;
    let mut script = String::new();
    for module in require {
        let module_path = resolve_path(engine, module)?;
        script.push_str(&format!("use {} *\n", nu_raw_string(&module_path.display().to_string(), span)?));
    }
    script.push_str(&format!(
        "let hk_config = (source {})\n{body}",
        nu_raw_string(&path.display().to_string(), span)?
    ));
    let mut command = Command::new(&nu);
    command.args(["-n", "--no-std-lib", "-c", &script]);
    command.current_dir(current_dir(engine)?);
    command.envs(caller_env(engine)?);
    // The plugin's stdout is the protocol channel: capture the child's output, never inherit it.
    let output =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output().map_err(|e| {
            LabeledError::new(format!("hk: cannot run {}: {e}", nu.display()))
                .with_label("evaluating this config", span)
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(LabeledError::new(format!("hk: evaluating {} failed", path.display()))
            .with_label(stderr.trim().to_string(), span));
    }
    Ok(output.stdout)
}

/// The caller's environment as a child process gets it: text values as they are, lists (PATH)
/// joined with `:`.
pub fn caller_env(engine: &EngineInterface) -> Result<Vec<(String, String)>, LabeledError> {
    let mut vars = Vec::new();
    for (name, value) in engine.get_env_vars()? {
        if let Ok(text) = value.coerce_str() {
            vars.push((name, text.into_owned()));
        } else if let Value::List { vals, .. } = &value {
            let parts: Vec<String> =
                vals.iter().filter_map(|v| v.coerce_str().ok().map(|s| s.into_owned())).collect();
            vars.push((name, parts.join(":")));
        }
    }
    Ok(vars)
}

/// The call without flags whose value is `null`, so Nu wrappers can pass their own optional flags
/// straight through (`hk plan --out=$out` with `$out` unset means no `--out`).
pub fn without_null_flags(call: &EvaluatedCall) -> EvaluatedCall {
    let mut call = call.clone();
    call.named.retain(|(_, value)| !matches!(value, Some(Value::Nothing { .. })));
    call
}
