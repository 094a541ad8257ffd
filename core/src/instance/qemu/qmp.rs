//! A minimal QMP client: JSON commands on qemu's control socket, one answer each (events skipped).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect (waiting up to `wait` for the socket to appear) and leave capabilities negotiation.
    pub fn connect(socket: &Path, wait: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + wait;
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot reach qemu at {}", socket.display()));
                }
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let writer = stream.try_clone()?;
        let mut qmp = Qmp { reader: BufReader::new(stream), writer };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            bail!("{} is not a QMP socket (it said {greeting})", socket.display());
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).context("reading from qemu's control socket")? == 0 {
            bail!("qemu closed its control socket");
        }
        serde_json::from_str(&line).with_context(|| format!("qemu sent {line:?}"))
    }

    /// Run one command and return its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let mut message = json!({"execute": command});
        if let Some(args) = arguments {
            message["arguments"] = args;
        }
        let mut text = message.to_string();
        text.push('\n');
        self.writer.write_all(text.as_bytes()).with_context(|| format!("sending {command} to qemu"))?;
        loop {
            let answer = self.read_message()?;
            if answer.get("event").is_some() {
                continue;
            }
            if let Some(error) = answer.get("error") {
                let desc = error.get("desc").and_then(Value::as_str).unwrap_or("unknown error");
                return Err(anyhow!("qemu refused {command}: {desc}"));
            }
            return Ok(answer.get("return").cloned().unwrap_or(Value::Null));
        }
    }

    /// The VM's run state (`running`, `paused`, `inmigrate`, …).
    pub fn run_state(&mut self) -> Result<String> {
        let status = self.execute("query-status", None)?;
        Ok(status.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string())
    }

    /// Poll `query-migrate` until the migration ends; fail with qemu's reason when it failed.
    pub fn wait_migration(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.execute("query-migrate", None)?;
            match info.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(()),
                Some("failed") | Some("cancelled") => {
                    let why = info.get("error-desc").and_then(Value::as_str).unwrap_or("no reason given");
                    bail!("saving the VM state failed: {why}");
                }
                _ if Instant::now() > deadline => bail!("saving the VM state took over {timeout:?}"),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}
