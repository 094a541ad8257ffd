//! The one quoting helper: every value interpolated into a generated shell script goes through here.

use anyhow::{Result, bail};

/// Quote bytes as one POSIX shell word. NUL bytes cannot be passed through a shell word and are refused.
pub fn quote_bytes(value: &[u8]) -> Result<String> {
    match shlex::bytes::Quoter::new().quote(value) {
        Ok(quoted) => Ok(String::from_utf8_lossy(&quoted).into_owned()),
        Err(_) => bail!("value contains a NUL byte and cannot be passed to the shell"),
    }
}

/// Quote a string as one POSIX shell word.
pub fn q(value: &str) -> Result<String> {
    quote_bytes(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `printf %s <quoted>` through sh and returns what the shell saw.
    fn through_sh(value: &str) -> String {
        let script = format!("printf '%s' {}", q(value).expect("quotable"));
        let out = Command::new("sh").arg("-c").arg(script).output().expect("sh runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn metacharacters_are_data() {
        let dir = std::env::temp_dir().join(format!("hk-quote-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let canary = dir.join("pwned");
        let canary_s = canary.display().to_string();
        for nasty in [
            format!("$(touch {canary_s})"),
            format!("`touch {canary_s}`"),
            format!("'; touch {canary_s}; '"),
            format!("\"; touch {canary_s}; \""),
            format!("a\nb; touch {canary_s}"),
            "; rm -rf /nonexistent-hk".to_string(),
            "*".to_string(),
            "~root".to_string(),
            "$HOME ${HOME} \\ ^ ! # & | < > ( ) { } [ ]".to_string(),
            String::new(),
            "ünïcødé ✓".to_string(),
        ] {
            assert_eq!(through_sh(&nasty), nasty);
        }
        assert!(!canary.exists(), "a quoted value was executed");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn nul_is_refused() {
        assert!(quote_bytes(b"a\0b").is_err());
    }
}
