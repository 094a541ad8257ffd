//! One script reading everything a deploy decides from: the live port and release, the releases on
//! the host, which release each port runs and whether its instance is up, the lock, the ports other
//! apps claim, and the state of Caddy's main file.

use anyhow::Result;
use serde::Serialize;

use super::{AppLayout, run, sections};
use crate::quote::q;
use crate::transport::Transport;

/// Debian's main Caddy file, which imports the apps' sites.
pub const MAIN_CADDYFILE: &str = "/etc/caddy/Caddyfile";

#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct Release {
    pub version: String,
    /// When it was unpacked (seconds since the epoch).
    pub unpacked_at: i64,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct Port {
    pub port: u16,
    /// The release `ports/<port>` points at.
    pub version: String,
    /// systemd's word for `hk-<app>@<port>.service`: active, inactive, failed, …
    pub instance: String,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct Claim {
    pub app: String,
    pub port: u16,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct CaddyFacts {
    pub installed: bool,
    pub running: bool,
    /// The main file exists.
    pub main: bool,
    /// It is the distribution's untouched default (dpkg's checksum of the conffile).
    pub pristine: bool,
    /// It already imports every app's site (`import <root>/*/Caddyfile`).
    pub imports: bool,
}

#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct AppFacts {
    pub active_port: Option<u16>,
    /// The live version (`current` → `releases/<version>`).
    pub current: Option<String>,
    /// Oldest first.
    pub releases: Vec<Release>,
    pub ports: Vec<Port>,
    /// The holder record of the deploy lock, when it is held (`{}` when it holds no record).
    pub lock: Option<serde_json::Value>,
    /// When the lock was taken (seconds since the epoch).
    pub locked_at: Option<i64>,
    /// Ports that other apps under the same root use.
    pub claims: Vec<Claim>,
    /// The systemd template unit `hk-<app>@.service` exists.
    pub template: bool,
    pub caddy: CaddyFacts,
}

pub fn script(layout: &AppLayout, nonce: &str) -> Result<String> {
    let import = format!("import {}/*/Caddyfile", layout.root);
    Ok(format!(
        r#"set -u
HK={nonce}
A={dir}
R={root}
APP={app}
F={main}
printf '%s active_port\n' "$HK"; cat -- "$A/active_port" 2>/dev/null || :
printf '\n%s current\n' "$HK"; readlink -- "$A/current" 2>/dev/null || :
printf '%s releases\n' "$HK"
for d in "$A"/releases/*; do [ -d "$d" ] && [ ! -L "$d" ] || continue; case "$d" in *.partial) continue;; esac; printf '%s %s\n' "$(stat -c %Y -- "$d")" "${{d##*/}}"; done
printf '%s ports\n' "$HK"
for l in "$A"/ports/*; do [ -L "$l" ] || continue; p=${{l##*/}}; printf '%s %s %s\n' "$p" "$(systemctl is-active "hk-$APP@$p.service" 2>/dev/null || :)" "$(readlink -- "$l")"; done
printf '%s lock\n' "$HK"
if [ -d "$A/lock" ]; then stat -c %Y -- "$A/lock"; cat -- "$A/lock/holder.json" 2>/dev/null || :; echo; fi
printf '%s claims\n' "$HK"
for l in "$R"/*/ports/*; do [ -L "$l" ] || continue; a=${{l%/ports/*}}; a=${{a##*/}}; [ "$a" = "$APP" ] && continue; printf '%s %s\n' "$a" "${{l##*/}}"; done
printf '%s facts\n' "$HK"
[ -f "/etc/systemd/system/hk-$APP@.service" ] && echo template
command -v caddy >/dev/null 2>&1 && echo caddy_installed
systemctl is-active --quiet caddy 2>/dev/null && echo caddy_running
if [ -f "$F" ]; then
  echo caddy_main
  grep -qxF -- {import} "$F" && echo caddy_imports
  md5=$(md5sum < "$F" | cut -d' ' -f1)
  dpkg-query -W -f='${{Conffiles}}\n' caddy 2>/dev/null | awk -v f="$F" -v m="$md5" '$1 == f && $2 == m {{ found = 1 }} END {{ exit !found }}' && echo caddy_pristine
fi
printf '%s end\n' "$HK"
"#,
        nonce = q(nonce)?,
        dir = q(&layout.dir())?,
        root = q(&layout.root)?,
        app = q(&layout.app)?,
        main = q(MAIN_CADDYFILE)?,
        import = q(&import)?,
    ))
}

/// The version a link into `releases/` names.
fn version_in(target: &str) -> Option<String> {
    let (_, version) = target.trim_end_matches('/').rsplit_once("releases/")?;
    (!version.is_empty() && !version.contains('/')).then(|| version.to_string())
}

pub fn parse(text: &str, nonce: &str) -> Result<AppFacts> {
    let found = sections(text, nonce);
    if !found.iter().any(|(name, _)| *name == "end") {
        anyhow::bail!("the app's state could not be read in full");
    }
    let mut facts = AppFacts::default();
    for (name, lines) in found {
        let mut words = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.trim());
        match name {
            "active_port" => facts.active_port = words.next().and_then(|w| w.parse().ok()),
            "current" => facts.current = words.next().and_then(version_in),
            "releases" => {
                for line in words {
                    if let Some((time, version)) = line.split_once(' ') {
                        facts.releases.push(Release {
                            version: version.to_string(),
                            unpacked_at: time.parse().unwrap_or(0),
                        });
                    }
                }
                facts
                    .releases
                    .sort_by(|a, b| a.unpacked_at.cmp(&b.unpacked_at).then(a.version.cmp(&b.version)));
            }
            "ports" => {
                for line in words {
                    let mut parts = line.splitn(3, ' ');
                    if let (Some(port), Some(instance), Some(target)) =
                        (parts.next(), parts.next(), parts.next())
                        && let Ok(port) = port.parse()
                    {
                        facts.ports.push(Port {
                            port,
                            version: version_in(target).unwrap_or_else(|| target.to_string()),
                            instance: instance.to_string(),
                        });
                    }
                }
            }
            "lock" => {
                if let Some(time) = words.next() {
                    facts.locked_at = time.parse().ok();
                    let holder = words.collect::<Vec<_>>().join("\n");
                    facts.lock =
                        Some(serde_json::from_str(&holder).unwrap_or_else(|_| serde_json::json!({})));
                }
            }
            "claims" => {
                for line in words {
                    if let Some((app, port)) = line.split_once(' ')
                        && let Ok(port) = port.parse()
                    {
                        facts.claims.push(Claim { app: app.to_string(), port });
                    }
                }
            }
            "facts" => {
                for word in words {
                    match word {
                        "template" => facts.template = true,
                        "caddy_installed" => facts.caddy.installed = true,
                        "caddy_running" => facts.caddy.running = true,
                        "caddy_main" => facts.caddy.main = true,
                        "caddy_imports" => facts.caddy.imports = true,
                        "caddy_pristine" => facts.caddy.pristine = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// Read an app's facts on one host (one exec).
pub fn read(transport: &mut dyn Transport, layout: &AppLayout) -> Result<AppFacts> {
    let nonce = crate::script::nonce();
    let out = run(transport, &script(layout, &nonce)?, "reading the app's state")?;
    parse(&out, &nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section() {
        let out = "noise\nN active_port\n4001\n\nN current\nreleases/v2\nN releases\n20 v2\n10 v1\n\
                   N ports\n4000 inactive /opt/hk/a/releases/v1\n4001 active /opt/hk/a/releases/v2\n\
                   N lock\n1700000000\n{\"who\": \"me\"}\n\nN claims\nb 4002\nN facts\ntemplate\ncaddy_installed\ncaddy_main\nN end\n";
        let facts = parse(out, "N").expect("parse");
        assert_eq!(facts.active_port, Some(4001));
        assert_eq!(facts.current.as_deref(), Some("v2"));
        assert_eq!(facts.releases.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(), ["v1", "v2"]);
        assert_eq!(facts.ports[1], Port { port: 4001, version: "v2".into(), instance: "active".into() });
        assert_eq!(facts.lock, Some(serde_json::json!({"who": "me"})));
        assert_eq!(facts.claims, vec![Claim { app: "b".into(), port: 4002 }]);
        assert!(facts.template && facts.caddy.installed && facts.caddy.main && !facts.caddy.pristine);
        assert!(parse("N active_port\n", "N").is_err());
    }
}
