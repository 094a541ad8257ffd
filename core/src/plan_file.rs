//! The plan artifact on disk: JSON, mode 0600, written atomically; read back with a format check.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::model::{PLAN_FORMAT, PLAN_VERSION, Plan, PlanArtifact};

pub use crate::local_file::{replace_file, write_atomic};

pub fn write(path: &Path, plan: &Plan) -> Result<PlanArtifact> {
    let artifact = PlanArtifact::new(plan);
    let json = serde_json::to_vec_pretty(&artifact)?;
    write_atomic(path, &json, 0o600)?;
    Ok(artifact)
}

pub fn read(path: &Path) -> Result<Plan> {
    let text = std::fs::read(path).with_context(|| format!("cannot read plan file {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or_default();
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or_default();
    if format != PLAN_FORMAT || version != PLAN_VERSION {
        bail!(
            "{} is not an hk plan this hk reads (format {format:?} version {version}; expected {PLAN_FORMAT:?} version {PLAN_VERSION})",
            path.display()
        );
    }
    let artifact: PlanArtifact =
        serde_json::from_value(value).with_context(|| format!("{} is a damaged hk plan", path.display()))?;
    Ok(artifact.into_plan())
}
