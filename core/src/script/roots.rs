//! Where tracked runs and their backups live on a target, as the shell that finds them there.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::quote::q;

/// Where runs and backups live on a target; unset roots take the defaults there
/// (`/var/lib/hk/{runs,backups}` for root, `~/.local/state/hk/{runs,backups}` otherwise).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Roots {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<String>,
}

impl Roots {
    /// Neither root given.
    pub fn is_unset(&self) -> bool {
        self.runs.is_none() && self.backups.is_none()
    }

    /// These roots where given, else `fallback`'s.
    pub fn or(&self, fallback: &Roots) -> Roots {
        Roots {
            runs: self.runs.clone().or_else(|| fallback.runs.clone()),
            backups: self.backups.clone().or_else(|| fallback.backups.clone()),
        }
    }

    /// Shell lines that set `$hk_runs` and `$hk_backups` on the target.
    pub fn snippet(&self) -> Result<String> {
        let mut s = String::new();
        if self.runs.is_none() || self.backups.is_none() {
            // The shell's own uid from /proc, without starting `id` (a process costs on slow hosts).
            s.push_str(
                "hk_uid=; while read -r hk_k hk_v hk_rest; do if [ \"$hk_k\" = Uid: ]; then hk_uid=$hk_v; break; fi; done 2>/dev/null < /proc/self/status || :\n\
                 [ -n \"$hk_uid\" ] || hk_uid=$(id -u)\n\
                 if [ \"$hk_uid\" = 0 ]; then hk_state=/var/lib/hk; else hk_state=\"${HOME:-/tmp}/.local/state/hk\"; fi\n",
            );
        }
        match &self.runs {
            Some(r) => s.push_str(&format!("hk_runs={}\n", q(r)?)),
            None => s.push_str("hk_runs=\"$hk_state/runs\"\n"),
        }
        match &self.backups {
            Some(b) => s.push_str(&format!("hk_backups={}\n", q(b)?)),
            None => s.push_str("hk_backups=\"$hk_state/backups\"\n"),
        }
        Ok(s)
    }

    pub fn validate(&self) -> Result<()> {
        for root in [&self.runs, &self.backups].into_iter().flatten() {
            if !root.starts_with('/') || root.split('/').any(|p| p == "..") || root == "/" {
                bail!("{root:?} cannot be a runs or backups root: give an absolute path without '..'");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(roots: &Roots) -> String {
        let script =
            format!("{}printf '%s %s' \"$hk_runs\" \"$hk_backups\"\n", roots.snippet().expect("snippet"));
        let out = std::process::Command::new("sh").arg("-c").arg(script).output().expect("sh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn defaults_follow_the_shells_uid() {
        let id = std::process::Command::new("id").arg("-u").output().expect("id");
        let state = if String::from_utf8_lossy(&id.stdout).trim() == "0" {
            "/var/lib/hk".to_string()
        } else {
            format!("{}/.local/state/hk", std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
        };
        assert_eq!(resolved(&Roots::default()), format!("{state}/runs {state}/backups"));
        let given = Roots { runs: Some("/r".into()), backups: Some("/b".into()) };
        assert!(!given.snippet().expect("snippet").contains("hk_uid"));
        assert_eq!(resolved(&given), "/r /b");
    }
}
