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

/// Exactly `left` bytes of `inner`: an error where it ends sooner, and nothing past them.
pub struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R> ExactReader<R> {
    pub fn new(inner: R, len: u64) -> ExactReader<R> {
        ExactReader { inner, left: len }
    }
}

impl<R: std::io::Read> std::io::Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the file ended {} bytes short of its size when the upload began", self.left),
            ));
        }
        self.left -= n as u64;
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

    #[test]
    fn exact_reader_stops_at_its_length_and_refuses_a_short_input() {
        use std::io::Read;
        let mut got = Vec::new();
        ExactReader::new(&b"abcdef"[..], 4).read_to_end(&mut got).expect("four bytes");
        assert_eq!(got, b"abcd");
        let short = ExactReader::new(&b"ab"[..], 4).read_to_end(&mut Vec::new());
        assert_eq!(short.map_err(|e| e.kind()), Err(std::io::ErrorKind::UnexpectedEof));
    }
}
