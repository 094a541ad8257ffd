//! Transports run generated scripts on a host: `sh -s` with the script on stdin, stdout streamed back
//! line by line, stderr collected. Nothing outside this module touches processes or channels.

mod local;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use local::LocalTransport;

use crate::config::Obj;

/// How to reach a host.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Target {
    Local {
        #[serde(default)]
        sudo: bool,
    },
}

impl Target {
    pub fn local() -> Target {
        Target::Local { sudo: false }
    }

    pub fn from_config(obj: &mut Obj) -> Result<Target> {
        let local = obj.opt_bool("local")?.unwrap_or(false);
        let sudo = obj.opt_bool("sudo")?.unwrap_or(false);
        if !local {
            return obj.fail(
                "local",
                "set `local: true` (this hk reaches the local host only)",
            );
        }
        Ok(Target::Local { sudo })
    }

    /// Open a connection (for SSH: one authenticated session reused for every script).
    pub fn connect(&self) -> Result<Box<dyn Transport>> {
        match self {
            Target::Local { sudo } => Ok(Box::new(LocalTransport::new(*sudo))),
        }
    }

    pub fn sudo(&self) -> bool {
        match self {
            Target::Local { sudo } => *sudo,
        }
    }
}

/// What a script printed and how it ended.
#[derive(Debug, Default)]
pub struct ScriptOutput {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ScriptOutput {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

pub trait Transport: Send {
    /// Run `script` through `sh -s`. `on_line` sees every complete stdout line as soon as it arrives.
    fn run_script(&mut self, script: &[u8], on_line: &mut dyn FnMut(&[u8]))
    -> Result<ScriptOutput>;

    /// How this transport reaches its host, for messages.
    fn describe(&self) -> String;
}

/// Splits a byte stream into lines for `on_line` while keeping every byte.
pub(crate) struct LineSplitter {
    pub all: Vec<u8>,
    consumed: usize,
}

impl LineSplitter {
    pub fn new() -> Self {
        LineSplitter {
            all: Vec::new(),
            consumed: 0,
        }
    }

    pub fn push(&mut self, chunk: &[u8], on_line: &mut dyn FnMut(&[u8])) {
        self.all.extend_from_slice(chunk);
        while let Some(pos) = self.all[self.consumed..].iter().position(|&b| b == b'\n') {
            let end = self.consumed + pos;
            on_line(&self.all[self.consumed..end]);
            self.consumed = end + 1;
        }
    }
}
