//! What dirs, files and links share: path validation, state, mode/owner/group, and their diff and steps.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::Observed;
use crate::change::FieldChange;
use crate::fields::Obj;
use crate::quote::q;
use crate::script::probe::{PathFacts, PathKind};

pub use crate::change::State;

/// Mode, owner and group of a path; unset fields are not managed.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct PathAttrs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl PathAttrs {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let mode = match obj.take("mode") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(m)) => match parse_mode(&m) {
                Some(mode) => Some(mode),
                None => obj.fail("mode", &format!("{m:?} is not a file mode: write 3 or 4 octal digits, e.g. \"0644\""))?,
            },
            Some(serde_json::Value::Number(n)) => match n.as_u64().and_then(mode_from_int) {
                Some(mode) => Some(mode),
                None => obj.fail("mode", &format!("{n} is ambiguous as a mode: write a string like \"0644\" or an octal literal like 0o644"))?,
            },
            Some(_) => obj.fail("mode", "expected a string like \"0644\" or an octal literal like 0o644")?,
        };
        let owner = obj.opt_name("owner")?;
        let group = obj.opt_name("group")?;
        Ok(PathAttrs { mode, owner, group })
    }

    /// Ask the probe for names when this resource manages owner or group by name.
    pub fn probe(&self, batch: &mut crate::script::probe::ProbeBatch) {
        if self.owner.is_some() || self.group.is_some() {
            batch.need_names();
        }
    }

    /// Fields observed for a path resource.
    pub fn observe(facts: &PathFacts) -> Observed {
        let mut seen = Observed::new();
        seen.insert("kind".into(), facts.kind.label().into());
        if facts.kind != PathKind::Missing {
            seen.insert("mode".into(), facts.mode.clone().into());
            seen.insert("uid".into(), facts.uid.clone().into());
            seen.insert("gid".into(), facts.gid.clone().into());
            if let Some(owner) = &facts.owner {
                seen.insert("owner".into(), owner.clone().into());
            }
            if let Some(group) = &facts.group {
                seen.insert("group".into(), group.clone().into());
            }
        }
        seen
    }

    /// Changes of mode, owner and group against what was seen (`creating`: everything set counts).
    pub fn changes(&self, seen: &Observed, creating: bool, default_mode: &str) -> Vec<FieldChange> {
        let mut out = Vec::new();
        let mode = self.mode.clone().or_else(|| creating.then(|| default_mode.to_string()));
        let wanted = [
            ("mode", mode, None),
            ("owner", self.owner.clone(), Some("uid")),
            ("group", self.group.clone(), Some("gid")),
        ];
        for (field, want, numeric) in wanted {
            let Some(want) = want else { continue };
            if creating {
                out.push(FieldChange::new(field, None, Some(want)));
                continue;
            }
            let have = text(seen, field).or_else(|| numeric.and_then(|n| text(seen, n)));
            // A numeric owner or group compares with the numeric id.
            let have_id = numeric.map(|n| text(seen, n));
            let same = have.as_deref() == Some(want.as_str())
                || (want.chars().all(|c| c.is_ascii_digit())
                    && have_id.flatten().as_deref() == Some(want.as_str()));
            if !same {
                out.push(FieldChange::new(field, have, Some(want)));
            }
        }
        out
    }

    /// chown/chmod commands for the attribute changes listed in `changes`, applied to `path`. The
    /// owner changes first: chown clears setuid and setgid bits, so the mode is set after it (again,
    /// when only the owner changed and the mode holds such bits).
    pub fn commands(&self, changes: &[FieldChange], path: &str, no_deref: bool) -> Result<Vec<String>> {
        let mut cmds = Vec::new();
        let changed = |f: &str| changes.iter().any(|c| c.field == f);
        let owner = if changed("owner") { self.owner.clone() } else { None };
        let group = if changed("group") { self.group.clone() } else { None };
        let spec = match (owner, group) {
            (Some(o), Some(g)) => Some(format!("{o}:{g}")),
            (Some(o), None) => Some(o),
            (None, Some(g)) => Some(format!(":{g}")),
            (None, None) => None,
        };
        let chowned = spec.is_some();
        if let Some(spec) = spec {
            let flag = if no_deref { "-h " } else { "" };
            cmds.push(format!("chown {flag}{} -- {}", q(&spec)?, q(path)?));
        }
        let mode = changes
            .iter()
            .find(|c| c.field == "mode")
            .and_then(|c| c.to.clone())
            .or_else(|| self.mode.clone().filter(|m| chowned && has_special_bits(m)));
        if let Some(mode) = mode {
            cmds.push(format!("chmod {} -- {}", q(&mode)?, q(path)?));
        }
        Ok(cmds)
    }
}

/// Whether a mode such as `4755` holds setuid, setgid or sticky bits (which chown may clear).
pub fn has_special_bits(mode: &str) -> bool {
    mode.len() == 4 && !mode.starts_with('0')
}

/// Fields observed for a regular file: its attributes plus content hash and size.
pub fn observe_file(facts: &PathFacts) -> Observed {
    let mut seen = PathAttrs::observe(facts);
    if let Some(sha) = &facts.sha256 {
        seen.insert("sha256".into(), sha.clone().into());
        seen.insert("size".into(), facts.size.into());
    }
    seen
}

/// Content as plan rows show it: `sha256:<12 hex> (<size> B)`.
pub fn describe_content(sha: &str, size: u64) -> String {
    format!("sha256:{} ({size} B)", &sha[..sha.len().min(12)])
}

pub fn text(seen: &Observed, field: &str) -> Option<String> {
    seen.get(field).and_then(|v| v.as_str()).map(str::to_string)
}

/// An integer mode as Nushell's `0o644` gives it (420). A decimal-looking 644 would silently mean
/// 0o1204, so integers that read as octal digits and set bits above 0o777 are refused.
pub fn mode_from_int(value: u64) -> Option<String> {
    let digits = value.to_string();
    let looks_octal = digits.len() >= 3 && digits.chars().all(|c| ('0'..='7').contains(&c));
    if value > 0o7777 || (looks_octal && value > 0o777) {
        return None;
    }
    Some(format!("{value:04o}"))
}

/// "644" / "0644" / "04755" → "0644" / "0644" / "4755".
pub fn parse_mode(raw: &str) -> Option<String> {
    let digits = raw.trim();
    if digits.is_empty() || digits.len() > 5 || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
        return None;
    }
    let value = u32::from_str_radix(digits, 8).ok()?;
    (value <= 0o7777).then(|| format!("{value:04o}"))
}

/// Validate an absolute path and bring it to one spelling (no trailing slash, no `//`).
pub fn normalize_path(obj: &Obj, field: &str, raw: &str) -> Result<String> {
    if !raw.starts_with('/') {
        obj.fail(field, &format!("{raw:?} is not an absolute path; target paths must start with /"))?;
    }
    if raw.contains('\0') {
        obj.fail(field, "path contains a NUL byte")?;
    }
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        obj.fail(field, &format!("{raw:?} contains '..'; write the path without it"))?;
    }
    if parts.is_empty() {
        obj.fail(field, "the root directory / cannot be managed")?;
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The temp name a new file or link is prepared under, in the same directory (so rename is atomic).
pub fn temp_sibling(path: &str, nonce: &str) -> String {
    let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
    let short = &nonce[..nonce.len().min(12)];
    // A name must fit the file system's 255 bytes, with room for a suffix (`.old`): a long base is
    // cut (at a character boundary) in the temp name only, never in the target's.
    let room = NAME_MAX - ".".len() - ".hk-".len() - short.len() - ".old".len();
    let mut end = base.len().min(room);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{dir}/.{}.hk-{short}", &base[..end])
}

/// The longest file name most Linux file systems take, in bytes.
const NAME_MAX: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_fit_the_file_system() {
        let long = "é".repeat(127) + "x";
        let tmp = temp_sibling(&format!("/srv/{long}"), "0123456789abcdef");
        let name = tmp.rsplit('/').next().unwrap_or_default();
        assert!(name.len() + ".old".len() <= 255, "{} bytes", name.len());
        assert!(name.ends_with(".hk-0123456789ab"));
        assert_eq!(temp_sibling("/a/b.txt", "0123456789abcdef"), "/a/.b.txt.hk-0123456789ab");
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("644").as_deref(), Some("0644"));
        assert_eq!(parse_mode("0755").as_deref(), Some("0755"));
        assert_eq!(parse_mode("4755").as_deref(), Some("4755"));
        assert_eq!(parse_mode("0o644"), None);
        assert_eq!(parse_mode("999"), None);
        assert_eq!(parse_mode("77777"), None);
        assert_eq!(mode_from_int(0o644).as_deref(), Some("0644"));
        assert_eq!(mode_from_int(0o755).as_deref(), Some("0755"));
        assert_eq!(mode_from_int(644), None);
    }

    #[test]
    fn temp_names_stay_in_the_directory() {
        assert_eq!(temp_sibling("/etc/app.conf", "0123456789abcdef"), "/etc/.app.conf.hk-0123456789ab");
    }
}
