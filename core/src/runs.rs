//! Tracked runs on the target: run records, plan artifacts and backups under two roots, and the
//! scripts that read and prune them.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Action, Direction};
use crate::quote::q;
use crate::resources::Observed;

pub use crate::script::roots::Roots;

/// The state of one change in a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Ok,
    Failed,
    Skipped,
    Pending,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Ok,
    Failed,
    Partial,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ChangeRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub name: String,
    pub action: Action,
    pub status: ChangeStatus,
    /// What the resource looked like just before the change.
    pub before: Observed,
    /// Path on the target of the backed-up content, when there was content to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The desired resource, for types that are not paths: their way back depends on it (a service
    /// hk created is stopped and disabled, a command's `down` is run). Never holds secret values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<crate::resources::Resource>,
    /// What the run left, as a probe sees it (a file's sha256, a link's target): a way back that
    /// finds something else discards a change made by hand since, and says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RunRecord {
    pub format: String,
    pub id: String,
    pub host: String,
    pub direction: Direction,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub changes: Vec<ChangeRecord>,
    /// `{plan: <path of the up plan artifact>}`.
    pub artifacts: indexmap::IndexMap<String, String>,
    /// Directory of this run's backups.
    pub backups: String,
    /// The project the run was for and what made it (absent in records from before they said).
    #[serde(default)]
    pub origin: crate::model::Origin,
}

pub const RUN_FORMAT: &str = "hk-run";

/// The runs of host `host` made for `project` (records that predate projects count for every
/// project), or of every project with `all_projects`. Newest first, as given.
pub fn of_project<'a>(
    runs: &'a [RunRecord],
    host: &str,
    project: &str,
    all_projects: bool,
) -> Vec<&'a RunRecord> {
    runs.iter()
        .filter(|r| {
            all_projects || (r.host == host && r.origin.project.as_deref().is_none_or(|p| p == project))
        })
        .collect()
}

/// The run `hk down --last` undoes: the newest run that changed the host and that no later down
/// run undid — so a second `hk down --last` goes one further back instead of undoing the undo.
pub fn last_to_undo<'a>(runs: &[&'a RunRecord]) -> Option<&'a RunRecord> {
    let undone: Vec<&str> = runs.iter().filter_map(|r| r.origin.undoes.as_deref()).collect();
    runs.iter().copied().find(|r| {
        r.direction == Direction::Up && r.origin.undoes.is_none() && !undone.contains(&r.id.as_str())
    })
}

/// `YYYYmmddTHHMMSSZ-<host>-<up|down>-<8 hex>`.
pub fn run_id(host: &str, direction: Direction, now: DateTime<Utc>) -> String {
    let dir = match direction {
        Direction::Up => "up",
        Direction::Down => "down",
    };
    let host: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    format!("{}-{host}-{dir}-{}", now.format("%Y%m%dT%H%M%SZ"), &crate::script::nonce()[..8])
}

/// Run ids name files: only their own alphabet, never a path.
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() < 200
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.')
}

/// A resource id as one file name: `file:/etc/app.conf` → `file%3A%2Fetc%2Fapp.conf`.
pub fn escape_id(id: &str) -> String {
    let mut out = String::with_capacity(id.len() * 2);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A script printing every run record under the runs root, each after a `<nonce> record <file>` line
/// (an empty file has no line, and is not listed).
pub fn list_script(roots: &Roots, nonce: &str) -> Result<String> {
    let mut s = String::from("set -u\n");
    s.push_str(&roots.snippet()?);
    s.push_str(&format!("HK={}\n", q(nonce)?));
    s.push_str("printf '\\n%s roots\\n%s\\n%s\\n' \"$HK\" \"$hk_runs\" \"$hk_backups\"\n");
    // One awk for every record, not a cat each: on a slow host the processes cost more than the
    // reading.
    s.push_str("set --\nif [ -d \"$hk_runs\" ]; then for f in \"$hk_runs\"/*.json; do [ -f \"$f\" ] && set -- \"$@\" \"$f\"; done; fi\n");
    s.push_str("if [ $# -gt 0 ]; then awk -v hk=\"$HK\" 'FNR == 1 { n = FILENAME; sub(/.*\\//, \"\", n); printf \"\\n%s record %s\\n\", hk, n } { print }' \"$@\"; fi\n");
    s.push_str("printf '\\n%s end\\n' \"$HK\"\n");
    Ok(s)
}

/// Records parsed from [`list_script`] output, newest first, and the resolved roots.
pub fn parse_list(out: &[u8], nonce: &str) -> Result<(Vec<RunRecord>, String, String)> {
    let sections = sections_in_order(out, nonce);
    if !sections.iter().any(|(name, _)| name == "end") {
        bail!("the runs listing did not finish");
    }
    let mut runs_root = String::new();
    let mut backups_root = String::new();
    let mut records = Vec::new();
    for (name, body) in sections {
        if name == "roots" {
            let text = String::from_utf8_lossy(body);
            let mut lines = text.lines();
            runs_root = lines.next().unwrap_or_default().to_string();
            backups_root = lines.next().unwrap_or_default().to_string();
        } else if let Some(file) = name.strip_prefix("record ") {
            let record: RunRecord =
                serde_json::from_slice(body).with_context(|| format!("run record {file} is damaged"))?;
            records.push(record);
        }
    }
    records.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    Ok((records, runs_root, backups_root))
}

/// Sections in output order (names may repeat, unlike the probe's).
fn sections_in_order<'a>(out: &'a [u8], nonce: &str) -> Vec<(String, &'a [u8])> {
    let marker = format!("\n{nonce} ");
    let marker = marker.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(pos) = out[i..].windows(marker.len()).position(|w| w == marker) {
        starts.push(i + pos);
        i += pos + marker.len();
    }
    let mut found = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let name_start = start + marker.len();
        let Some(eol) = out[name_start..].iter().position(|&b| b == b'\n') else { continue };
        let name = String::from_utf8_lossy(&out[name_start..name_start + eol]).into_owned();
        let body_start = name_start + eol + 1;
        let body_end = starts.get(n + 1).copied().unwrap_or(out.len()).max(body_start);
        found.push((name, &out[body_start..body_end]));
    }
    found
}

/// A script writing `bytes` atomically to `path` (mode 0600), creating its directory.
pub fn write_file_script(path: &str, bytes: &[u8]) -> Result<String> {
    let dir = path.rsplit_once('/').map(|(d, _)| d).filter(|d| !d.is_empty()).unwrap_or("/");
    let tmp = format!("{path}.partial");
    Ok(format!(
        "set -eu\numask 077\nmkdir -p -- {dir}\nprintf '%s' {data} > {tmp}\nmv -f -- {tmp} {path}\n",
        dir = q(dir)?,
        data = crate::quote::quote_bytes(bytes)?,
        tmp = q(&tmp)?,
        path = q(path)?,
    ))
}

/// Shell removing all but the newest `keep` runs under the roots (set by [`Roots::snippet`]), with
/// their artifacts and backups, choosing by the time their ids start with (a run id's leading
/// `%Y%m%dT%H%M%SZ` sorts as its start): through the session's file helper when a script's
/// `DIR_OPS` found it, else one `rm` for all; none when nothing goes. It says
/// `<nonce> pruned N`. A file whose name is not a run id is left alone.
pub fn prune_oldest_script(keep: usize, nonce: &str) -> Result<String> {
    Ok(format!(
        "HK_P={nonce}\n\
         set --; for hk_f in \"$hk_runs\"/*.json; do\n\
           hk_id=${{hk_f##*/}}; hk_id=${{hk_id%.json}}\n\
           case $hk_id in ''|.*|*[!A-Za-z0-9._-]*) continue;; esac\n\
           [ -f \"$hk_f\" ] && set -- \"$@\" \"$hk_id\"\n\
         done\n\
         hk_drop=$(( $# - {keep} )); hk_gone=0; hk_paths=\n\
         for hk_id; do\n\
           [ \"$hk_gone\" -lt \"$hk_drop\" ] || break\n\
           hk_paths=\"$hk_paths\n$hk_runs/$hk_id.json\n$hk_runs/artifacts/$hk_id\n$hk_backups/$hk_id\"; hk_gone=$((hk_gone + 1))\n\
         done\n\
         if [ -n \"$hk_paths\" ]; then hk_ifs=$IFS; IFS='\n'; set -f\n\
           if [ -n \"${{hk_shared:-}}\" ]; then for hk_p in $hk_paths; do hk_dir_drop \"$hk_p\" || break; done; else rm -rf -- $hk_paths; fi\n\
           set +f; IFS=$hk_ifs\n\
         fi\n\
         printf '%s pruned %s\\n' \"$HK_P\" \"$hk_gone\"\n",
        nonce = q(nonce)?,
    ))
}

/// A script removing the given runs (record, artifacts, backups); ids are checked, paths built here.
pub fn prune_script(roots: &Roots, ids: &[String]) -> Result<String> {
    let mut s = String::from("set -eu\n");
    s.push_str(&roots.snippet()?);
    if ids.is_empty() {
        return Ok(s);
    }
    // One `rm` for every path: a process costs more than the removal on a slow host.
    s.push_str("rm -rf --");
    for id in ids {
        if !valid_run_id(id) {
            bail!("refusing to prune {id:?}: not a run id");
        }
        let id = q(id)?;
        s.push_str(&format!(
            " \\\n  \"$hk_runs\"/{id}.json \"$hk_runs\"/artifacts/{id} \"$hk_backups\"/{id}"
        ));
    }
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_is_one_rm_of_checked_ids() {
        let roots = Roots { runs: Some("/r".into()), backups: Some("/b".into()) };
        let ids = vec![run_id("web", Direction::Up, Utc::now()), run_id("web", Direction::Down, Utc::now())];
        let script = prune_script(&roots, &ids).unwrap_or_default();
        assert_eq!(script.matches("rm -rf").count(), 1, "{script}");
        for id in &ids {
            assert!(script.contains(&format!("\"$hk_backups\"/{id}")), "{script}");
        }
        assert!(prune_script(&roots, &["../etc".to_string()]).is_err());
        assert!(!prune_script(&roots, &[]).unwrap_or_default().contains("rm "));
    }

    #[test]
    fn ids_and_escapes() {
        let id = run_id("web 1", Direction::Up, Utc::now());
        assert!(valid_run_id(&id), "{id}");
        assert!(id.contains("-web_1-up-"));
        assert!(!valid_run_id("../etc"));
        assert!(!valid_run_id("a/b"));
        assert_eq!(escape_id("file:/etc/a b"), "file%3A%2Fetc%2Fa%20b");
    }
}
