//! Deployed apps on a host: the layout under `<root>/<app>/` that hk's deploy workflows keep, and the
//! host work they need besides plans — reading an app's state in one script ([`facts`]), the deploy
//! lock ([`lock`]) and the audit log ([`audit`]). Everything else a deploy does is ordinary plans.
//!
//! ```text
//! <root>/<app>/releases/<version>/   unpacked releases        artifacts/   their tarballs
//!              ports/<port>          → the release that port's instance runs
//!              current               → the live release        active_port  the live port
//!              env/<role>.env        environment (0600)        Caddyfile    this app's site
//!              audit.log             JSON lines                lock/        the deploy lock
//!              runs/                 this app's run records and backups
//! ```

pub mod audit;
pub mod context;
pub mod facts;
pub mod finish;
pub mod lock;
pub mod remove;
pub mod sandbox;
pub mod within;

use anyhow::{Result, bail};

use crate::transport::Transport;

/// Where one app lives on a host.
#[derive(Clone, Debug)]
pub struct AppLayout {
    pub root: String,
    pub app: String,
}

impl AppLayout {
    /// An app id is `[a-z0-9-]+` (it names directories, units and Caddy files); the root an absolute
    /// path without `..`.
    pub fn new(root: &str, app: &str) -> Result<AppLayout> {
        let app_ok = !app.is_empty()
            && app.len() <= 64
            && app.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !app.starts_with('-');
        if !app_ok {
            bail!("{app:?} is not an app id: use lowercase letters, digits and '-'");
        }
        let root = root.trim_end_matches('/');
        if !root.starts_with('/') || root.split('/').any(|p| p == "..") {
            bail!("{root:?} cannot be the apps' root: give an absolute path without '..' (default /opt/hk)");
        }
        Ok(AppLayout { root: root.to_string(), app: app.to_string() })
    }

    pub fn dir(&self) -> String {
        format!("{}/{}", self.root, self.app)
    }

    pub fn path(&self, leaf: &str) -> String {
        format!("{}/{}/{leaf}", self.root, self.app)
    }
}

/// Run `script` on a host; its stdout, or an error naming what failed.
pub(crate) fn run(transport: &mut dyn Transport, script: &str, what: &str) -> Result<String> {
    let out = transport.run_script(script.as_bytes(), &mut |_| {})?;
    output_of(transport, out, what)
}

/// [`run`] after `setup` in the session's resident shell (see [`Transport::run_script_with_setup`]).
pub(crate) fn run_with_setup(
    transport: &mut dyn Transport,
    setup: &'static str,
    script: &str,
    what: &str,
) -> Result<String> {
    let out = transport.run_script_with_setup(setup, script.as_bytes(), &mut |_| {})?;
    output_of(transport, out, what)
}

fn output_of(transport: &dyn Transport, out: crate::transport::ScriptOutput, what: &str) -> Result<String> {
    if out.status != 0 {
        bail!("{what} failed on {}: {}", transport.describe(), out.stderr_text());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The lines after `<nonce> <name>` up to the next marker, for every marker in output order.
pub(crate) fn sections<'a>(text: &'a str, nonce: &str) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut found: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix(nonce).and_then(|rest| rest.strip_prefix(' ')) {
            Some(name) => found.push((name, Vec::new())),
            None => {
                if let Some((_, body)) = found.last_mut() {
                    body.push(line);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_roots() {
        assert!(AppLayout::new("/opt/hk", "hello-staging").is_ok());
        assert!(AppLayout::new("/opt/hk", "Hello").is_err());
        assert!(AppLayout::new("/opt/hk", "../x").is_err());
        assert!(AppLayout::new("opt", "a").is_err());
        assert_eq!(
            AppLayout::new("/opt/hk/", "a").map(|l| l.path("lock")).ok().as_deref(),
            Some("/opt/hk/a/lock")
        );
    }

    #[test]
    fn sections_in_order() {
        let out = "junk\nN a\n1\n2\nN b\nN a\n3\n";
        let found = sections(out, "N");
        assert_eq!(found, vec![("a", vec!["1", "2"]), ("b", vec![]), ("a", vec!["3"])]);
    }
}
