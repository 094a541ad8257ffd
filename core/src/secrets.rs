//! Secret values for `env_file` entries: named by reference in the config (`{env: VAR}`,
//! `{command: "…"}`), resolved on the controller at plan and apply time, kept only in memory, and
//! compared through a keyed hash so no plan, record or event can reveal them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// An environment variable of the caller.
    Env(String),
    /// A command run on the controller (`sh -c`); its stdout without the final newline.
    Command(String),
}

impl SecretRef {
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("${name}"),
            SecretRef::Command(cmd) => format!("the command {cmd:?}"),
        }
    }
}

/// Resolved secret values and the key of the keyed hash. `Debug` never shows values.
#[derive(Clone, Default)]
pub struct Secrets {
    values: HashMap<SecretRef, String>,
    key: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

impl Secrets {
    pub fn insert(&mut self, reference: SecretRef, value: String) {
        self.values.insert(reference, value);
    }

    pub fn get(&self, reference: &SecretRef) -> Result<&str> {
        match self.values.get(reference) {
            Some(v) => Ok(v),
            None => bail!("{} was not resolved", reference.describe()),
        }
    }

    pub fn set_key(&mut self, key: Vec<u8>) {
        self.key = Some(Arc::new(key));
    }

    /// The key kept on this controller (created on first use, 0600): plans made here compare
    /// env files through HMAC-SHA256 with it.
    pub fn load_key(path: &Path) -> Result<Vec<u8>> {
        if let Ok(key) = std::fs::read(path)
            && key.len() >= 32
        {
            return Ok(key);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut key = vec![0u8; 32];
        let mut urandom = std::fs::File::open("/dev/urandom").context("cannot read /dev/urandom")?;
        std::io::Read::read_exact(&mut urandom, &mut key)?;
        crate::local_file::write_atomic(path, &key, 0o600)?;
        Ok(key)
    }

    /// HMAC-SHA256 of `data` under the controller key, as hex.
    pub fn keyed(&self, data: &str) -> Result<String> {
        let key = self.key.as_ref().context("no key for comparing secrets was loaded")?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).context("bad key")?;
        mac.update(data.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref().map(Vec::as_slice)
    }

    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }
}
