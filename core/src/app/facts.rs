//! One script reading everything a deploy decides from: the live port and release, the releases on
//! the host, which release each port runs and whether its instance is up, the lock, the ports other
//! apps claim, and the state of Caddy's main file.

use anyhow::Result;
use serde::Serialize;

use super::{AppLayout, run, sections};
use crate::engine::hash_cache::HashCache;
use crate::engine::read_ahead::Ahead;
use crate::quote::q;
use crate::script::stat_list;
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

/// Builtins and one or two processes on a set-up host — one `stat` for the links, releases and
/// lock, and for every port's instance and Caddy the session's file helper asking systemd (or one
/// `systemctl show`) — since on a slow host each process costs more than the reading itself.
/// Caddy's package checksum is only looked at when its main file does not import the apps' sites
/// yet (setup is then the one reader that needs it).
pub fn script(layout: &AppLayout, nonce: &str) -> Result<String> {
    let import = format!("import {}/*/Caddyfile", layout.root);
    Ok(format!(
        r#"set -u
export LC_ALL=C QUOTING_STYLE=literal
HK={nonce}
A={dir}
R={root}
APP={app}
F={main}
I={import}
printf '%s active_port\n' "$HK"; ap=; read -r ap < "$A/active_port" 2>/dev/null || :; printf '%s\n' "$ap"
printf '%s paths\n' "$HK"
{paths}
printf '%s instances\n' "$HK"
units=; ports=
for l in "$A"/ports/*; do [ -L "$l" ] || continue; ports="$ports ${{l##*/}}"; units="$units hk-$APP@${{l##*/}}.service"; done
printf '%s\n' "$ports"
# Each unit's state, in order; Caddy's last.
{states}printf '%s holder\n' "$HK"
if [ -d "$A/lock" ]; then while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done < "$A/lock/holder.json" 2>/dev/null || :; fi
printf '%s claims\n' "$HK"
for l in "$R"/*/ports/*; do [ -L "$l" ] || continue; a=${{l%/ports/*}}; a=${{a##*/}}; [ "$a" = "$APP" ] && continue; printf '%s %s\n' "$a" "${{l##*/}}"; done
printf '%s facts\n' "$HK"
[ -f "/etc/systemd/system/hk-$APP@.service" ] && echo template
command -v caddy >/dev/null 2>&1 && echo caddy_installed
if [ -f "$F" ]; then
  echo caddy_main
  imports=
  while IFS= read -r l || [ -n "$l" ]; do [ "$l" = "$I" ] && {{ imports=1; break; }}; done < "$F"
  if [ -n "$imports" ]; then echo caddy_imports; else
    md5=$(md5sum < "$F" | cut -d' ' -f1)
    dpkg-query -W -f='${{Conffiles}}\n' caddy 2>/dev/null | awk -v f="$F" -v m="$md5" '$1 == f && $2 == m {{ found = 1 }} END {{ exit !found }}' && echo caddy_pristine
  fi
fi
printf '%s end\n' "$HK"
"#,
        nonce = q(nonce)?,
        dir = q(&layout.dir())?,
        root = q(&layout.root)?,
        app = q(&layout.app)?,
        main = q(MAIN_CADDYFILE)?,
        import = q(&import)?,
        states = crate::script::steps::unit_query(
            "ActiveState",
            r#""ActiveState $units caddy.service""#,
            "$units caddy.service",
            nonce
        )?,
        paths = stat_list::command(r#""$A/current" "$A/lock" "$A"/releases/* "$A"/ports/*"#),
    ))
}

pub fn parse(text: &str, nonce: &str, layout: &AppLayout) -> Result<AppFacts> {
    let found = sections(text, nonce);
    if !found.iter().any(|(name, _)| *name == "end") {
        anyhow::bail!("the app's state could not be read in full");
    }
    let mut facts = AppFacts::default();
    let mut linked: Vec<(u16, String)> = Vec::new();
    let mut holder: Option<serde_json::Value> = None;
    for (name, lines) in found {
        let mut words = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| l.trim());
        match name {
            "active_port" => facts.active_port = words.next().and_then(|w| w.parse().ok()),
            "paths" => {
                let listing = stat_list::app_listing(&lines, &layout.dir());
                facts.current = listing.current;
                facts.locked_at = listing.locked_at;
                facts.releases = listing
                    .releases
                    .into_iter()
                    .map(|(version, unpacked_at)| Release { version, unpacked_at })
                    .collect();
                facts
                    .releases
                    .sort_by(|a, b| a.unpacked_at.cmp(&b.unpacked_at).then(a.version.cmp(&b.version)));
                linked = listing
                    .ports
                    .into_iter()
                    .filter_map(|(port, target)| Some((port.parse().ok()?, target)))
                    .collect();
            }
            "instances" => {
                // The ports in the order their units were asked about, then each unit's state,
                // Caddy's last.
                let mut lines = lines.iter().map(|l| l.trim());
                let asked: Vec<u16> = lines
                    .next()
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect();
                // `ActiveState=…`, a blank line after each unit.
                let states: Vec<&str> = lines.filter_map(|l| l.strip_prefix("ActiveState=")).collect();
                for (i, port) in asked.iter().enumerate() {
                    let Some((_, target)) = linked.iter().find(|(p, _)| p == port) else { continue };
                    facts.ports.push(Port {
                        port: *port,
                        version: stat_list::release_version(target).unwrap_or_else(|| target.clone()),
                        instance: states.get(i).map(|s| s.to_string()).unwrap_or_default(),
                    });
                }
                facts.caddy.running =
                    states.len() == asked.len() + 1 && states.last().is_some_and(|s| *s == "active");
            }
            "holder" => holder = Some(super::lock::holder_of(&lines)),
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
    if facts.locked_at.is_some() {
        facts.lock = Some(holder.unwrap_or_else(|| serde_json::json!({})));
    }
    Ok(facts)
}

/// Read an app's facts on one host (one script).
pub fn read(transport: &mut dyn Transport, layout: &AppLayout) -> Result<AppFacts> {
    let nonce = crate::script::nonce();
    let out = run(transport, &script(layout, &nonce)?, "reading the app's state")?;
    parse(&out, &nonce, layout)
}

/// [`read`], with the first phase's reading taken after the facts in the same script and kept on
/// the session (see `engine::read_ahead`); the session's file helper starts here, as with the lock.
pub fn read_ahead(
    transport: &mut dyn Transport,
    layout: &AppLayout,
    ahead: (Ahead, Option<&mut HashCache>),
) -> Result<AppFacts> {
    let nonce = crate::script::nonce();
    let text = format!("{}{}", script(layout, &nonce)?, ahead.0.script()?);
    let setup = crate::script::steps::SESSION_FILE_HELPER.as_str();
    let out = super::run_with_setup(transport, setup, &text, "reading the app's state")?;
    let facts = parse(&out, &nonce, layout)?;
    let kept = ahead.0.keep(transport, out.as_bytes(), ahead.1);
    crate::trace::note(&format!("facts: reading ahead {}", if kept { "kept" } else { "not kept" }));
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_section() {
        let layout = AppLayout::new("/opt/hk", "a").expect("layout");
        let out = "noise\nN active_port\n4001\nN paths\n\
                   symbolic link\t5\t/opt/hk/a/current -> releases/v2\n\
                   directory\t1700000000\t/opt/hk/a/lock\n\
                   directory\t20\t/opt/hk/a/releases/v2\n\
                   directory\t10\t/opt/hk/a/releases/v1\n\
                   directory\t30\t/opt/hk/a/releases/v3.partial\n\
                   regular file\t30\t/opt/hk/a/releases/stray\n\
                   symbolic link\t7\t/opt/hk/a/ports/4000 -> /opt/hk/a/releases/v1\n\
                   symbolic link\t8\t/opt/hk/a/ports/4001 -> /opt/hk/a/releases/v2\n\
                   N instances\n 4000 4001\nActiveState=inactive\n\nActiveState=active\n\nActiveState=active\n\n\
                   N holder\n{\"who\": \"me\"}\nN claims\nb 4002\nN facts\ntemplate\ncaddy_installed\ncaddy_main\nN end\n";
        let facts = parse(out, "N", &layout).expect("parse");
        assert_eq!(facts.active_port, Some(4001));
        assert_eq!(facts.current.as_deref(), Some("v2"));
        assert_eq!(facts.releases.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(), ["v1", "v2"]);
        assert_eq!(facts.ports[0], Port { port: 4000, version: "v1".into(), instance: "inactive".into() });
        assert_eq!(facts.ports[1], Port { port: 4001, version: "v2".into(), instance: "active".into() });
        assert_eq!(facts.lock, Some(serde_json::json!({"who": "me"})));
        assert_eq!(facts.locked_at, Some(1_700_000_000));
        assert_eq!(facts.claims, vec![Claim { app: "b".into(), port: 4002 }]);
        assert!(facts.template && facts.caddy.installed && facts.caddy.main && !facts.caddy.pristine);
        assert!(facts.caddy.running);
        assert!(parse("N active_port\n", "N", &layout).is_err());
    }

    /// The script against a real folder on this machine, through the local transport.
    #[test]
    fn reads_a_real_layout() {
        let dir = std::env::temp_dir().join(format!("hk-facts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let app = dir.join("a");
        for sub in ["releases/v1", "releases/v2", "releases/v3.partial", "ports", "lock"] {
            std::fs::create_dir_all(app.join(sub)).expect("mkdir");
        }
        std::fs::write(app.join("active_port"), "4001\n").expect("write");
        std::fs::write(app.join("lock/holder.json"), "{\"who\":\"me\"}").expect("write");
        std::os::unix::fs::symlink("releases/v2", app.join("current")).expect("link");
        std::os::unix::fs::symlink(app.join("releases/v2"), app.join("ports/4001")).expect("link");
        let layout = AppLayout::new(&dir.to_string_lossy(), "a").expect("layout");
        let mut local = crate::transport::LocalTransport::new(false);
        let facts = read(&mut local, &layout).expect("read");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(facts.active_port, Some(4001));
        assert_eq!(facts.current.as_deref(), Some("v2"));
        let mut versions: Vec<&str> = facts.releases.iter().map(|r| r.version.as_str()).collect();
        versions.sort();
        assert_eq!(versions, ["v1", "v2"]);
        assert_eq!(facts.ports.len(), 1);
        assert_eq!((facts.ports[0].port, facts.ports[0].version.as_str()), (4001, "v2"));
        assert_eq!(facts.lock, Some(serde_json::json!({"who": "me"})));
        assert!(facts.locked_at.is_some());
    }
}
