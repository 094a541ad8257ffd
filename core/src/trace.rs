//! Timings on stderr when HK_TRACE is set: where a slow plan or apply spends its time.

use std::sync::OnceLock;
use std::time::Instant;

pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("HK_TRACE").is_some())
}

pub struct Timer {
    what: &'static str,
    start: Instant,
}

impl Timer {
    pub fn start(what: &'static str) -> Timer {
        Timer { what, start: Instant::now() }
    }

    pub fn done(self, detail: &str) {
        if enabled() {
            eprintln!(
                "hk trace: {:<16} {:>9.2} ms {detail}",
                self.what,
                self.start.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
}

/// A line on stderr when tracing: something worth knowing that took no time of its own.
pub fn note(text: &str) {
    if enabled() {
        eprintln!("hk trace: {text}");
    }
}
