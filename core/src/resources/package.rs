//! `package`: installed (optionally at a version) or absent, through whichever of apt, dnf, apk or
//! pacman the host has. Consecutive installs on a host run as one command.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::path_attrs::{State, text};
use super::{Diff, Observed, Resource, ResourceKind, StepContext};
use crate::change::{Action, FieldChange, Reason};
use crate::fields::Obj;
use crate::quote::q;
use crate::script::probe::{Facts, ProbeBatch};
use crate::script::steps::Step;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Package {
    /// The name as declared (a Repology project name or the distribution's own).
    pub name: String,
    /// The distribution's package name, when a lock or Repology mapped `name` to another one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default)]
    pub state: State,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_' | ':' | '@'))
}

impl Package {
    pub fn from_config(obj: &mut Obj) -> Result<Self> {
        let name = obj.req_str("name")?;
        if !valid_name(&name) {
            return obj.fail("name", &format!("{name:?} is not a package name"));
        }
        let version = obj.opt_str("version")?;
        if let Some(v) = &version
            && (v.is_empty() || v.contains(char::is_whitespace))
        {
            return obj.fail("version", &format!("{v:?} is not a version"));
        }
        let state = obj.state()?;
        Ok(Package { name, distro_name: None, version, state })
    }

    /// The name the host's package manager knows.
    pub fn package_name(&self) -> &str {
        self.distro_name.as_deref().unwrap_or(&self.name)
    }

    pub fn set_distro_name(&mut self, distro: &str) -> Result<()> {
        if !valid_name(distro) {
            bail!("{distro:?} (for package {}) is not a package name", self.name);
        }
        self.distro_name = (distro != self.name).then(|| distro.to_string());
        Ok(())
    }

    /// `name` or `name=version` as the package manager takes it.
    fn spec(&self, manager: &str) -> String {
        match (&self.version, manager) {
            (None, _) => self.package_name().to_string(),
            (Some(v), "dnf") => format!("{}-{v}", self.package_name()),
            (Some(v), "pacman") => self.package_name().to_string() + "=" + v,
            (Some(v), _) => format!("{}={v}", self.package_name()),
        }
    }
}

/// One command installing `packages` (non-interactive; apt refreshes its lists once if a package is
/// unknown, e.g. on a host that never ran `apt-get update`).
pub fn install_command(manager: &str, packages: &[&Package]) -> Result<String> {
    let mut names = String::new();
    for p in packages {
        names.push(' ');
        names.push_str(&q(&p.spec(manager))?);
    }
    Ok(match manager {
        "apt-get" => {
            let install = format!(
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends --allow-downgrades --{names} </dev/null"
            );
            format!("{{ {install} || {{ apt-get update -q && {install}; }}; }}")
        }
        "dnf" => format!("dnf install -y -q --{names}"),
        "apk" => format!("apk add --no-cache --{names}"),
        "pacman" => format!("pacman -S --noconfirm --needed --{names}"),
        other => {
            bail!("no supported package manager on this host ({other:?}; hk knows apt, dnf, apk, pacman)")
        }
    })
}

fn remove_command(manager: &str, name: &str) -> Result<String> {
    let name = q(name)?;
    Ok(match manager {
        "apt-get" => format!("DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -- {name} </dev/null"),
        "dnf" => format!("dnf remove -y -q -- {name}"),
        "apk" => format!("apk del -- {name}"),
        "pacman" => format!("pacman -R --noconfirm -- {name}"),
        other => {
            bail!("no supported package manager on this host ({other:?}; hk knows apt, dnf, apk, pacman)")
        }
    })
}

impl ResourceKind for Package {
    fn type_name(&self) -> &'static str {
        "package"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn probe(&self, batch: &mut ProbeBatch) {
        batch.package(self.package_name());
    }

    fn observe(&self, facts: &Facts) -> Observed {
        let mut seen = Observed::new();
        let os = facts.os.clone().unwrap_or_default();
        seen.insert("manager".into(), os.package_manager.clone().unwrap_or_default().into());
        match facts.packages.get(self.package_name()) {
            Some(version) => {
                seen.insert("installed".into(), true.into());
                seen.insert("version".into(), version.clone().into());
            }
            None => {
                seen.insert("installed".into(), false.into());
            }
        }
        seen
    }

    fn diff(&self, seen: &Observed) -> Diff {
        let installed = seen.get("installed").and_then(|v| v.as_bool()).unwrap_or(false);
        let have = text(seen, "version");
        match (self.state, installed) {
            (State::Absent, false) => Diff::noop(),
            (State::Absent, true) => Diff {
                action: Action::Delete,
                reason: Reason::Drift,
                changes: vec![FieldChange::new("version", have, None)],
            },
            (State::Present, false) => Diff {
                action: Action::Create,
                reason: Reason::Missing,
                changes: vec![FieldChange::new(
                    "version",
                    None,
                    Some(self.version.clone().unwrap_or_else(|| "(candidate)".into())),
                )],
            },
            (State::Present, true) => match &self.version {
                Some(want) if have.as_deref() != Some(want.as_str()) => Diff {
                    action: Action::Update,
                    reason: Reason::Drift,
                    changes: vec![FieldChange::new("version", have, Some(want.clone()))],
                },
                _ => Diff::noop(),
            },
        }
    }

    fn step(&self, diff: &Diff, seen: &Observed, _cx: &StepContext) -> Result<Step> {
        let manager = text(seen, "manager").unwrap_or_default();
        let mut step = Step::new();
        match diff.action {
            Action::Create | Action::Update => {
                step.run(install_command(&manager, &[self])?);
            }
            Action::Delete => {
                step.run(remove_command(&manager, self.package_name())?);
            }
            Action::Noop | Action::Read | Action::Error => {}
        }
        Ok(step)
    }

    fn depends_on(&self) -> Vec<String> {
        Vec::new()
    }

    fn rank(&self) -> u8 {
        super::RANK_PACKAGE
    }

    fn reversible(&self, diff: &Diff) -> bool {
        // A removed package comes back at whatever version the mirror has then.
        diff.action != Action::Delete
    }

    fn down(&self, before: &Observed) -> Option<Result<Resource, String>> {
        let installed = before.get("installed").and_then(|v| v.as_bool());
        let existed = installed.or_else(|| before.get("exists").and_then(|v| v.as_bool())).unwrap_or(false);
        Some(match (existed, self.state, text(before, "version")) {
            (false, _, _) => {
                Ok(Resource::Package(Package { state: State::Absent, version: None, ..self.clone() }))
            }
            (true, State::Absent, _) => Err("hk does not reinstall a removed package".into()),
            (true, State::Present, Some(version)) => {
                Ok(Resource::Package(Package { version: Some(version), ..self.clone() }))
            }
            (true, State::Present, None) => Err("the previous version is unknown".into()),
        })
    }
}

/// The package rows of one apply that can share a single install command: installs and upgrades of
/// consecutive rows.
pub fn batchable<'a>(resource: &'a Resource, diff: &Diff) -> Option<&'a Package> {
    match resource {
        Resource::Package(p) if matches!(diff.action, Action::Create | Action::Update) => Some(p),
        _ => None,
    }
}
