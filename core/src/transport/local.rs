//! The local transport: the same `sh -s` scripts as over SSH, run as a child process.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;

use anyhow::{Context, Result};

use super::{LineSplitter, SCRIPT_SHELL, ScriptOutput, Transport, sudo_failure};

pub struct LocalTransport {
    sudo: bool,
}

impl LocalTransport {
    pub fn new(sudo: bool) -> Self {
        LocalTransport { sudo }
    }
}

impl Transport for LocalTransport {
    fn exec(
        &mut self,
        command_line: &str,
        mut input: Box<dyn Read + Send>,
        on_line: &mut dyn FnMut(&[u8]),
    ) -> Result<ScriptOutput> {
        // A script shell is started directly; anything else goes through `sh -c`.
        let mut argv: Vec<&str> =
            if command_line == SCRIPT_SHELL { vec!["sh", "-s"] } else { vec!["sh", "-c", command_line] };
        if self.sudo {
            argv.splice(0..0, ["sudo", "-n"]);
        }
        let mut command = Command::new(argv[0]);
        command.args(&argv[1..]);
        // Never inherit the plugin's stdout: it is the Nushell protocol channel.
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().context("cannot start sh on the local host")?;
        let mut stdin = child.stdin.take().context("no stdin for sh")?;
        // Writer and stderr reader run beside the stdout reader: any one of the pipes may fill.
        let writer = thread::spawn(move || {
            let _ = std::io::copy(&mut input, &mut stdin);
        });
        let mut stderr_pipe = child.stderr.take().context("no stderr for sh")?;
        let err_reader = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr_pipe.read_to_end(&mut buf);
            buf
        });
        let mut stdout = child.stdout.take().context("no stdout for sh")?;
        let mut lines = LineSplitter::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout.read(&mut buf).context("reading the script's output")?;
            if n == 0 {
                break;
            }
            lines.push(&buf[..n], on_line);
        }
        let _ = writer.join();
        let stderr = err_reader.join().unwrap_or_default();
        let status = child.wait().context("waiting for sh")?;
        let output = ScriptOutput { status: status.code().unwrap_or(-1), stdout: lines.all, stderr };
        sudo_failure(&output, "the local host")?;
        Ok(output)
    }

    fn follow(
        &mut self,
        command_line: &str,
        on_line: &mut dyn FnMut(&[u8]),
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<i32>> {
        let mut argv: Vec<&str> = vec!["sh", "-c", command_line];
        if self.sudo {
            argv.splice(0..0, ["sudo", "-n"]);
        }
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start sh on the local host")?;
        // Held open until the follower stops: its end is the host side's signal.
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().context("no stdout for sh")?;
        let (chunks, arrived) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || chunks.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut lines = LineSplitter::streaming();
        loop {
            if !keep_going() {
                drop(stdin);
                // The wrapper ends its command when stdin closes; a command without one is ended here.
                let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < until {
                    thread::sleep(std::time::Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                return Ok(None);
            }
            match arrived.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(chunk) => lines.push(&chunk, on_line),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        lines.finish(on_line);
        drop(stdin);
        let _ = reader.join();
        let status = child.wait().context("waiting for sh")?;
        Ok(Some(status.code().unwrap_or(-1)))
    }

    fn describe(&self) -> String {
        if self.sudo { "local (sudo)".into() } else { "local".into() }
    }
}
