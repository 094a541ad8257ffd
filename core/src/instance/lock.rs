//! Advisory file locks (`flock`): released by the kernel when the process ends, so a crash never leaves
//! a lock behind. The holder writes its pid into the file for messages.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Take the lock now or return `None` with the pid of the holder (when it wrote one).
    pub fn try_exclusive(path: &Path) -> Result<Result<FileLock, Option<u32>>> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Ok(Err(text.trim().parse().ok()));
            }
            return Err(err).with_context(|| format!("cannot lock {}", path.display()));
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(Ok(FileLock { file, path: path.to_path_buf() }))
    }

    /// Wait for the lock (telling `on_wait` once who holds it), up to `timeout`.
    pub fn wait(path: &Path, timeout: Duration, on_wait: &mut dyn FnMut(Option<u32>)) -> Result<FileLock> {
        let deadline = Instant::now() + timeout;
        let mut told = false;
        loop {
            match FileLock::try_exclusive(path)? {
                Ok(lock) => return Ok(lock),
                Err(holder) => {
                    if !told {
                        on_wait(holder);
                        told = true;
                    }
                    if Instant::now() > deadline {
                        bail!(
                            "gave up after {} s waiting for {} (held by pid {})",
                            timeout.as_secs(),
                            path.display(),
                            holder.map_or("?".to_string(), |p| p.to_string())
                        );
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock; empty the pid first so nobody names a dead holder.
        let _ = self.file.set_len(0);
    }
}
