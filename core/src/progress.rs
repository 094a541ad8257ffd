//! Progress of long work in tenths: callers report every read, users see one line per 10%.

/// Tracks which tenth of `total` the work has reached.
#[derive(Default)]
pub struct Tenths {
    last: u64,
}

impl Tenths {
    /// The percentage to show when `done` has crossed into a new tenth of `total`, else `None`.
    pub fn step(&mut self, done: u64, total: u64) -> Option<u64> {
        let tenth = done.saturating_mul(10) / total.max(1);
        (tenth > self.last).then(|| {
            self.last = tenth;
            tenth.min(10) * 10
        })
    }
}

/// Reads `inner`, telling `on_read` how many bytes went through so far; when it answers `false`
/// the reading stops with an error (the caller was interrupted).
pub struct CountingReader<R, F> {
    pub inner: R,
    pub done: u64,
    pub on_read: F,
}

impl<R: std::io::Read, F: FnMut(u64) -> bool> std::io::Read for CountingReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if !(self.on_read)(self.done) {
            // Not `ErrorKind::Interrupted`: `io::copy` retries those.
            return Err(std::io::Error::other("interrupted"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_per_tenth() {
        let mut tenths = Tenths::default();
        let shown: Vec<u64> = (0..=100).filter_map(|done| tenths.step(done, 100)).collect();
        assert_eq!(shown, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(Tenths::default().step(5, 0), Some(100));
    }
}
