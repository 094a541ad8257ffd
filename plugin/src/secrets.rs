//! Secrets of env files, resolved here on the controller from the caller's environment or by running
//! a command; held in memory for one command and handed to the engine.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use hk_core::resources::Resource;
use hk_core::resources::{needs_key, secret_refs};
use hk_core::secrets::{SecretRef, Secrets};
use nu_plugin::{EngineInterface, EvaluatedCall};
use nu_protocol::LabeledError;

use crate::load::{current_dir, env_text, xdg_path};

/// The controller key for keyed hashes: `$env.HK_SECRET_KEY_FILE`, else
/// `$XDG_STATE_HOME/hk/secret.key`, else `~/.local/state/hk/secret.key`.
fn key_path(engine: &EngineInterface) -> Result<PathBuf, LabeledError> {
    if let Some(path) = env_text(engine, "HK_SECRET_KEY_FILE")?.filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    xdg_path(engine, "XDG_STATE_HOME", ".local/state", "secret.key")?
        .ok_or_else(|| LabeledError::new("hk: HOME is not set; set $env.HK_SECRET_KEY_FILE"))
}

pub fn resolve_secrets(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    resources: &[&Resource],
) -> Result<Secrets, LabeledError> {
    let mut secrets = Secrets::default();
    if !needs_key(resources) {
        return Ok(secrets);
    }
    let path = key_path(engine)?;
    let key = Secrets::load_key(&path).map_err(|e| {
        LabeledError::new(format!("hk: cannot load the secret key {}", path.display()))
            .with_label(format!("{e:#}"), call.head)
    })?;
    secrets.set_key(key);
    for reference in secret_refs(resources) {
        let value = match &reference {
            SecretRef::Env(name) => match engine.get_env_var(name)? {
                Some(v) => v.coerce_str()?.into_owned(),
                None => {
                    return Err(LabeledError::new(format!(
                        "hk: an env file needs ${name}, which is not set"
                    ))
                    .with_label("secrets are read from your environment", call.head)
                    .with_help(format!("set it first, e.g. $env.{name} = (input -s '{name}: ')")));
                }
            },
            SecretRef::Command(command) => {
                let out = Command::new("sh")
                    .args(["-c", command])
                    .current_dir(current_dir(engine)?)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .output()
                    .map_err(|e| LabeledError::new(format!("hk: cannot run a secret command: {e}")))?;
                if !out.status.success() {
                    // Its stderr is shown, never its stdout (that would be the secret).
                    return Err(LabeledError::new("hk: a secret command failed").with_label(
                        format!(
                            "{command:?} exited with {}: {}",
                            out.status,
                            String::from_utf8_lossy(&out.stderr).trim()
                        ),
                        call.head,
                    ));
                }
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                if text.ends_with('\n') {
                    text.pop();
                }
                text
            }
        };
        secrets.insert(reference, value);
    }
    Ok(secrets)
}
