//! Removing an app from a host in one script: every instance of its unit templates stopped and
//! disabled, the templates and their boot links removed, its folder (releases, env files, site,
//! audit log, lock) removed, and Caddy reloaded when it served the app's site. Removing an app that
//! is not there changes nothing. Storage under /var/lib is the app's data and stays.

use anyhow::{Result, bail};

use super::{AppLayout, run};
use crate::quote::q;
use crate::transport::Transport;

/// What was removed from one host.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Instance units stopped and disabled.
    pub units: Vec<String>,
    /// Templates removed.
    pub templates: Vec<String>,
    /// Whether the app's folder was there.
    pub folder: bool,
    /// Whether Caddy was reloaded (it served the app's site).
    pub reloaded: bool,
}

/// A template's base name (`hk-app` for `hk-app@.service`): letters, digits and `-`.
fn base_of(template: &str) -> Result<&str> {
    let base = template.strip_suffix("@.service").unwrap_or(template);
    let ok = !base.is_empty() && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("{template:?} is not a unit template (hk-<app>@.service)");
    }
    Ok(base)
}

pub fn script(layout: &AppLayout, templates: &[String]) -> Result<String> {
    let mut bases = Vec::new();
    for t in templates {
        bases.push(q(base_of(t)?)?);
    }
    let wants = "/etc/systemd/system/multi-user.target.wants";
    Ok(format!(
        r#"set -eu
dir={dir}
reload=0
for base in {bases}; do
  for unit in $(systemctl list-units --all --plain --no-legend --full -- "$base@*.service" | cut -d' ' -f1); do
    systemctl disable --now -- "$unit" >/dev/null 2>&1 || systemctl stop -- "$unit"
    echo "unit $unit"
  done
  for link in {wants}/"$base"@*.service; do
    if [ -L "$link" ]; then rm -f -- "$link"; echo "unit ${{link##*/}}"; reload=1; fi
  done
  if [ -e "/etc/systemd/system/$base@.service" ]; then
    rm -f -- "/etc/systemd/system/$base@.service"
    echo "template $base@.service"
    reload=1
  fi
done
if [ "$reload" = 1 ]; then systemctl daemon-reload; fi
if [ -d "$dir" ]; then
  site=0
  if [ -e "$dir/Caddyfile" ]; then site=1; fi
  rm -rf -- "$dir"
  echo folder
  if [ "$site" = 1 ] && systemctl is-active --quiet caddy.service; then
    systemctl reload caddy.service
    echo reloaded
  fi
fi
"#,
        dir = q(&layout.dir())?,
        bases = bases.join(" "),
    ))
}

/// Remove the app from the host `transport` reaches.
pub fn remove(transport: &mut dyn Transport, layout: &AppLayout, templates: &[String]) -> Result<Removed> {
    let out = run(transport, &script(layout, templates)?, &format!("removing {}", layout.app))?;
    Ok(parse(&out))
}

fn parse(out: &str) -> Removed {
    let mut removed = Removed::default();
    for line in out.lines() {
        match line.split_once(' ') {
            Some(("unit", unit)) if !removed.units.iter().any(|u| u == unit) => {
                removed.units.push(unit.into())
            }
            Some(("template", t)) => removed.templates.push(t.into()),
            _ if line == "folder" => removed.folder = true,
            _ if line == "reloaded" => removed.reloaded = true,
            _ => {}
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_names() {
        let layout = AppLayout::new("/opt/hk", "shop").expect("layout");
        assert!(script(&layout, &["hk-shop@.service".into(), "hk-shop-worker@.service".into()]).is_ok());
        assert!(script(&layout, &["hk-shop@.service; rm -rf /".into()]).is_err());
        assert!(script(&layout, &["".into()]).is_err());
    }

    #[test]
    fn reads_what_was_removed() {
        let got = parse(
            "unit hk-a@4000.service\nunit hk-a@4000.service\ntemplate hk-a@.service\nfolder\nreloaded\n",
        );
        assert_eq!(
            got,
            Removed {
                units: vec!["hk-a@4000.service".into()],
                templates: vec!["hk-a@.service".into()],
                folder: true,
                reloaded: true
            }
        );
    }
}
