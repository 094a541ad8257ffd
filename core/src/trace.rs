//! Timings on stderr when HK_TRACE is set: where a slow plan or apply spends its time.

use std::sync::OnceLock;
use std::time::Instant;

pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        since_start();
        std::env::var_os("HK_TRACE").is_some()
    })
}

/// Milliseconds since tracing was first asked about (about when the process started): each line
/// ends with it, so the gaps between commands show.
fn since_start() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
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
                "hk trace: {:<16} {:>9.2} ms {detail} @{:.0}",
                self.what,
                self.start.elapsed().as_secs_f64() * 1000.0,
                since_start()
            );
        }
    }
}

/// A line on stderr when tracing: something worth knowing that took no time of its own.
pub fn note(text: &str) {
    if enabled() {
        eprintln!("hk trace: {text} @{:.0}", since_start());
    }
}
