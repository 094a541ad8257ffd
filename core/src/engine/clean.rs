//! `hk clean`: a plan removing inactive release versions (and their artifacts) beyond the newest N,
//! never the active one, the one before it, nor one that a link beside `current` still points at
//! (a deploy's `ports/<port>` links: an instance may still run it).

use anyhow::{Result, bail};

use super::plan::{PlanOptions, PlanOutcome, plan_over};
use crate::config::Config;
use crate::model::{HostPlan, PlanRow};
use crate::quote::q;
use crate::resources::{ReleaseArtifact, ReleaseUnpack, Resource};
use crate::script::stat_list;
use crate::transport::Target;

/// A release found on a host.
#[derive(Debug, Clone)]
pub struct Installed {
    pub version: String,
    /// When it was unpacked (seconds since the epoch).
    pub unpacked_at: i64,
}

fn semver_of(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v.trim_start_matches('v')).ok()
}

/// Oldest first: by semantic version when every version parses, else by unpack time (never as
/// plain strings: 9.0 < 10.0).
pub fn order_versions(mut versions: Vec<Installed>) -> Vec<Installed> {
    let all_semver = versions.iter().all(|v| semver_of(&v.version).is_some());
    versions.sort_by(|a, b| {
        if all_semver {
            semver_of(&a.version).cmp(&semver_of(&b.version))
        } else {
            a.unpacked_at.cmp(&b.unpacked_at).then_with(|| a.version.cmp(&b.version))
        }
    });
    versions
}

/// Versions to remove: all but the newest `keep`, sparing the active one, the one before it, and
/// those still `linked`.
pub fn removable(ordered: &[Installed], active: Option<&str>, linked: &[String], keep: usize) -> Vec<String> {
    let active_at = active.and_then(|a| ordered.iter().position(|v| v.version == a));
    let previous_at = active_at.and_then(|i| i.checked_sub(1));
    let cut = ordered.len().saturating_sub(keep);
    ordered
        .iter()
        .enumerate()
        .filter(|(i, v)| {
            *i < cut && Some(*i) != active_at && Some(*i) != previous_at && !linked.contains(&v.version)
        })
        .map(|(_, v)| v.version.clone())
        .collect()
}

/// `<root>/<name>` of each release in `config`, with its `keep`.
pub fn release_bases(config: &Config) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for r in &config.resources {
        if let Resource::ReleaseUnpack(u) = r
            && let Some((base, _)) = u.path.rsplit_once("/releases/")
            && !out.iter().any(|(b, _)| b == base)
        {
            out.push((base.to_string(), u.keep));
        }
    }
    out
}

/// One `stat` per base: its `current` link, its releases and its ports' links.
fn list_script(bases: &[(String, u64)], nonce: &str) -> Result<String> {
    let mut s = format!("set -u\nexport LC_ALL=C QUOTING_STYLE=literal\nHK={}\n", q(nonce)?);
    for (i, (base, _)) in bases.iter().enumerate() {
        let base = q(base)?;
        s.push_str(&format!("printf '%s base {i}\\n' \"$HK\"\n"));
        s.push_str(&stat_list::command(&format!("{base}/current {base}/releases/* {base}/ports/*")));
        s.push('\n');
    }
    s.push_str("printf '%s end\\n' \"$HK\"\n");
    Ok(s)
}

/// What the listing says of one base: the active version, the releases, the versions ports link to.
fn read_base(lines: &[&str], base: &str) -> (Option<String>, Vec<Installed>, Vec<String>) {
    let listing = stat_list::app_listing(lines, base);
    let installed = listing
        .releases
        .into_iter()
        .map(|(version, unpacked_at)| Installed { version, unpacked_at })
        .collect();
    let linked = listing.ports.iter().filter_map(|(_, target)| stat_list::release_version(target)).collect();
    (listing.current, installed, linked)
}

/// Plan the cleanup of the releases under `bases` (`<root>/<name>` with its `keep`) on these hosts,
/// in parallel.
pub fn clean(
    bases: &[(String, u64)],
    targets: &[(String, Target)],
    keep: Option<u64>,
    options: &PlanOptions,
) -> Result<PlanOutcome> {
    if bases.is_empty() {
        bail!("no release to clean: declare a release in the config or name its directory");
    }
    for (base, _) in bases {
        if !base.starts_with('/')
            || base.split('/').any(|p| p == "..")
            || base.trim_end_matches('/').is_empty()
        {
            bail!("{base:?} is not a release directory: give an absolute path such as /opt/hk/app");
        }
    }
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let results = super::for_each_host(&names, options.parallel, |host| {
        let target = targets
            .iter()
            .find(|(n, _)| n == host)
            .map(|(_, t)| t)
            .ok_or_else(|| anyhow::anyhow!("host {host} has no target"))?;
        clean_host(host, target, bases, keep, options)
    });
    let mut outcome = PlanOutcome {
        plan: crate::model::Plan {
            direction: crate::model::Direction::Up,
            hosts: Default::default(),
            rows: Vec::new(),
        },
        failures: Vec::new(),
        probed: Default::default(),
    };
    for (host, result) in results {
        match result {
            Ok((host_plan, rows)) => {
                outcome.plan.hosts.insert(host, host_plan);
                outcome.plan.rows.extend(rows);
            }
            Err(e) => outcome.failures.push((host, format!("{e:#}"))),
        }
    }
    Ok(outcome)
}

/// One connection: the listing, then the probe of what would be removed.
fn clean_host(
    host: &str,
    target: &Target,
    bases: &[(String, u64)],
    keep: Option<u64>,
    options: &PlanOptions,
) -> Result<(HostPlan, Vec<PlanRow>)> {
    super::busy::wait_for(host);
    let mut transport = target.connect(&options.credentials)?;
    let nonce = super::nonce();
    let out = transport.run_script(list_script(bases, &nonce)?.as_bytes(), &mut |_| {})?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status != 0 || !text.contains(&format!("{nonce} end")) {
        bail!("listing releases failed: {}", out.stderr_text());
    }
    let sections = crate::app::sections(&text, &nonce);
    let mut resources = Vec::new();
    for (i, (base, declared_keep)) in bases.iter().enumerate() {
        let name_i = format!("base {i}");
        let lines: Vec<&str> = sections
            .iter()
            .filter(|(name, _)| *name == name_i)
            .flat_map(|(_, lines)| lines.iter().copied())
            .collect();
        let (active, installed, linked) = read_base(&lines, base);
        let keep = keep.unwrap_or(*declared_keep).max(1) as usize;
        let name = base.rsplit('/').next().unwrap_or_default();
        for version in removable(&order_versions(installed), active.as_deref(), &linked, keep) {
            resources
                .push(Resource::ReleaseUnpack(ReleaseUnpack::absent(&format!("{base}/releases/{version}"))));
            resources.push(Resource::ReleaseArtifact(ReleaseArtifact::absent(
                &crate::resources::artifact_path(base, name, &version),
            )));
        }
    }
    if resources.is_empty() {
        // Nothing to remove: no rows, so no probe (and no host identity to bind them to).
        let host_plan = HostPlan {
            target: target.clone(),
            identity: Default::default(),
            release: None,
            origin: crate::model::Origin::new(options.project.clone(), made_by(options)),
            roots: Default::default(),
        };
        return Ok((host_plan, Vec::new()));
    }
    let (mut host_plan, rows, _) =
        plan_over(host, target, transport.as_mut(), &resources, &[], None, Default::default())?;
    host_plan.origin = crate::model::Origin::new(options.project.clone(), made_by(options));
    Ok((host_plan, rows))
}

/// What made a clean, as its run will say: `clean`, or what the caller names (a deploy's prune).
fn made_by(options: &PlanOptions) -> &str {
    if options.made_by.is_empty() { "clean" } else { &options.made_by }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: &str, at: i64) -> Installed {
        Installed { version: version.into(), unpacked_at: at }
    }

    #[test]
    fn semantic_order_not_string_order() {
        let ordered = order_versions(vec![v("10.0.0", 1), v("9.0.0", 2), v("9.1.0", 3)]);
        let names: Vec<&str> = ordered.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(names, ["9.0.0", "9.1.0", "10.0.0"]);
    }

    #[test]
    fn unpack_time_when_versions_are_not_semver() {
        let ordered = order_versions(vec![v("abc123", 30), v("9.0", 10), v("10.0", 20)]);
        let names: Vec<&str> = ordered.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(names, ["9.0", "10.0", "abc123"]);
    }

    #[test]
    fn never_the_active_one_nor_the_one_before() {
        let ordered = order_versions(vec![v("1.0.0", 1), v("2.0.0", 2), v("3.0.0", 3), v("4.0.0", 4)]);
        // Active is an old one (after a rollback): it and its predecessor stay.
        assert_eq!(removable(&ordered, Some("2.0.0"), &[], 1), ["3.0.0"]);
        assert_eq!(removable(&ordered, Some("4.0.0"), &[], 2), ["1.0.0", "2.0.0"]);
        assert_eq!(removable(&ordered, Some("4.0.0"), &[], 1), ["1.0.0", "2.0.0"]);
    }

    #[test]
    fn never_one_a_port_still_runs() {
        let ordered = order_versions(vec![v("1.0.0", 1), v("2.0.0", 2), v("3.0.0", 3), v("4.0.0", 4)]);
        assert_eq!(removable(&ordered, Some("4.0.0"), &["1.0.0".into()], 1), ["2.0.0"]);
    }

    /// The listing script against a real folder here (local transport).
    #[test]
    fn lists_a_real_base() {
        use crate::transport::Transport;
        let base = std::env::temp_dir().join(format!("hk-clean-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for sub in ["releases/v1", "releases/v2", "releases/v3", "releases/v4.partial", "ports"] {
            std::fs::create_dir_all(base.join(sub)).expect("mkdir");
        }
        std::os::unix::fs::symlink("releases/v3", base.join("current")).expect("link");
        std::os::unix::fs::symlink(base.join("releases/v1"), base.join("ports/4000")).expect("link");
        let name = base.to_string_lossy().to_string();
        let bases = vec![(name.clone(), 5)];
        let script = list_script(&bases, "N").expect("script");
        let out = crate::transport::LocalTransport::new(false)
            .run_script(script.as_bytes(), &mut |_| {})
            .expect("run");
        let _ = std::fs::remove_dir_all(&base);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let sections = crate::app::sections(&text, "N");
        let (active, installed, linked) = read_base(&sections[0].1, &name);
        assert_eq!(active.as_deref(), Some("v3"));
        let mut versions: Vec<&str> = installed.iter().map(|v| v.version.as_str()).collect();
        versions.sort();
        assert_eq!(versions, ["v1", "v2", "v3"]);
        assert_eq!(linked, ["v1"]);
    }
}
