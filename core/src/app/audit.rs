//! The audit log of an app on each host: one JSON record per line, appended (a write of one short
//! line to a file opened for appending lands whole), read back as records.

use anyhow::{Result, bail};

use super::{AppLayout, run};
use crate::quote::q;
use crate::transport::Transport;

/// Append `record` to the app's `audit.log` (0640, made with the app's directory when missing).
pub fn append(transport: &mut dyn Transport, layout: &AppLayout, record: &serde_json::Value) -> Result<()> {
    let script = format!("set -eu\n{}", append_script(layout, record)?);
    run(transport, &script, "writing the audit log")?;
    Ok(())
}

/// The shell appending `record` (see [`append`]); it fails (status not 0) when the line was not written.
pub fn append_script(layout: &AppLayout, record: &serde_json::Value) -> Result<String> {
    if !record.is_object() {
        bail!("an audit entry is a record");
    }
    let line = serde_json::to_string(record)?;
    Ok(format!(
        "umask 027\n{{ [ -d {dir} ] || mkdir -p -- {dir}; }} && printf '%s\\n' {line} >> {log}\n",
        dir = q(&layout.dir())?,
        line = q(&line)?,
        log = q(&layout.path("audit.log"))?,
    ))
}

/// Every record of the app's `audit.log` in file order, and how many lines were not records.
pub fn read(transport: &mut dyn Transport, layout: &AppLayout) -> Result<(Vec<serde_json::Value>, usize)> {
    let script = format!("cat -- {} 2>/dev/null || :\n", q(&layout.path("audit.log"))?);
    let out = run(transport, &script, "reading the audit log")?;
    Ok(parse(&out))
}

fn parse(text: &str) -> (Vec<serde_json::Value>, usize) {
    let mut records = Vec::new();
    let mut damaged = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) if v.is_object() => records.push(v),
            _ => damaged += 1,
        }
    }
    (records, damaged)
}

#[cfg(test)]
mod tests {
    #[test]
    fn skips_damaged_lines() {
        let (records, damaged) = super::parse("{\"a\":1}\nnot json\n\n{\"b\":2}\n[1]\n");
        assert_eq!(records.len(), 2);
        assert_eq!(damaged, 2);
    }
}
