//! Package naming flags shared by `hk plan` and `hk apply`: a lock to read or write, Repology's cache.

use std::time::Duration;

use hk_core::engine::PlanOutcome;
use hk_core::packages::{LOCK_VERSION, PackageLock, PackageNaming, Repology};
use hk_core::resources::Resource;
use nu_plugin::{EngineInterface, EvaluatedCall};
use nu_protocol::{LabeledError, Signature, Spanned, SyntaxShape};

use crate::error::LabelErr;
use crate::load::resolve_path;

pub fn package_flags(sig: Signature) -> Signature {
    sig.named(
        "package-lock",
        SyntaxShape::Filepath,
        "take package names from this lock (deterministic plans)",
        None,
    )
    .named(
        "write-package-lock",
        SyntaxShape::Filepath,
        "write the package names this plan used to a lock file",
        None,
    )
    .named(
        "repology-cache",
        SyntaxShape::Directory,
        "map package names to the host's release through Repology, caching answers here",
        None,
    )
    .named(
        "repology-cache-ttl",
        SyntaxShape::Int,
        "seconds a cached Repology answer stays fresh (default 86400)",
        None,
    )
    .switch("repology-no-cache", "map names through Repology without reading or writing a cache", None)
}

pub fn package_naming(engine: &EngineInterface, call: &EvaluatedCall) -> Result<PackageNaming, LabeledError> {
    let mut naming = PackageNaming::default();
    if let Some(lock) = call.get_flag::<Spanned<String>>("package-lock")? {
        let path = resolve_path(engine, &lock.item)?;
        naming.lock = Some(PackageLock::read(&path).at(lock.span)?);
    }
    let cache: Option<Spanned<String>> = call.get_flag("repology-cache")?;
    let no_cache = call.has_flag("repology-no-cache")?;
    if cache.is_some() || no_cache {
        let ttl = match call.get_flag::<Spanned<i64>>("repology-cache-ttl")? {
            Some(t) if t.item >= 0 => t.item as u64,
            Some(t) => {
                return Err(LabeledError::new("hk: --repology-cache-ttl must be 0 or more seconds")
                    .with_label("here", t.span));
            }
            None => 86_400,
        };
        let dir = match &cache {
            Some(c) => Some(resolve_path(engine, &c.item)?),
            None => None,
        };
        naming.repology = Some(Repology::new(dir, Duration::from_secs(ttl), no_cache));
    }
    Ok(naming)
}

/// `--write-package-lock FILE`: the names every planned package resolved to, for the hosts' release.
pub fn write_lock(
    engine: &EngineInterface,
    call: &EvaluatedCall,
    outcome: &PlanOutcome,
) -> Result<(), LabeledError> {
    let Some(out) = call.get_flag::<Spanned<String>>("write-package-lock")? else { return Ok(()) };
    let mut releases: Vec<&str> = outcome.plan.hosts.values().filter_map(|h| h.release.as_deref()).collect();
    releases.sort();
    releases.dedup();
    let target = match releases.as_slice() {
        [one] => one.to_string(),
        [] => {
            return Err(LabeledError::new("hk: no package was planned, so there is no lock to write")
                .with_label("here", out.span));
        }
        many => {
            return Err(LabeledError::new(
                "hk: the hosts run different releases; write one lock per release",
            )
            .with_label(format!("releases: {}", many.join(", ")), out.span));
        }
    };
    let packages = outcome
        .plan
        .rows
        .iter()
        .filter_map(|row| match &row.resource {
            Resource::Package(p) => Some((p.name.clone(), p.package_name().to_string())),
            _ => None,
        })
        .collect();
    let lock = PackageLock { version: LOCK_VERSION, target, packages };
    lock.write(&resolve_path(engine, &out.item)?).at(out.span)
}
