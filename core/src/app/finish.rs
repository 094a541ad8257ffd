//! The end of a deploy on one host, in one script: its audit entry appended, the app's older runs
//! pruned, and — on the primary host — the deploy lock released: one round trip, not three.

use anyhow::{Result, bail};

use super::lock::{Released, parse_release, release_script};
use super::{AppLayout, audit, run, sections};
use crate::quote::q;
use crate::runs::{Roots, prune_oldest_script};
use crate::transport::Transport;

/// What to do on one host.
pub struct Finish<'a> {
    pub entry: Option<&'a serde_json::Value>,
    /// Keep this many of the newest runs under these roots.
    pub prune_runs: Option<(usize, &'a Roots)>,
    /// Release the lock taken with this holder record (the primary host only).
    pub unlock: Option<&'a serde_json::Value>,
}

/// What it did.
#[derive(Debug, PartialEq)]
pub struct Finished {
    pub audited: bool,
    pub runs_removed: Option<usize>,
    pub lock: Option<Released>,
}

pub fn script(layout: &AppLayout, finish: &Finish<'_>, nonce: &str) -> Result<String> {
    let mut s = format!("set -u\nHK={}\n", q(nonce)?);
    if finish.prune_runs.is_some() || finish.unlock.is_some() {
        s.push_str(crate::script::steps::DIR_OPS.as_str());
    }
    if let Some(entry) = finish.entry {
        s.push_str(&format!(
            "{{\n{}}} && printf '%s audited\\n' \"$HK\"\n",
            audit::append_script(layout, entry)?
        ));
    }
    if let Some((keep, roots)) = finish.prune_runs {
        s.push_str(&roots.snippet()?);
        s.push_str(&prune_oldest_script(keep, nonce)?);
    }
    if let Some(holder) = finish.unlock {
        s.push_str(&release_script(layout, Some(holder), false, nonce)?);
    }
    s.push_str("printf '%s end\\n' \"$HK\"\n");
    Ok(s)
}

pub fn parse(out: &str, nonce: &str, finish: &Finish<'_>) -> Result<Finished> {
    let found = sections(out, nonce);
    if !found.iter().any(|(name, _)| *name == "end") {
        bail!("the end of the deploy did not finish");
    }
    let audited = found.iter().any(|(name, _)| *name == "audited");
    if finish.entry.is_some() && !audited {
        bail!("the audit entry could not be written");
    }
    let runs_removed = found.iter().find_map(|(name, _)| name.strip_prefix("pruned ")?.trim().parse().ok());
    let lock = if finish.unlock.is_some() { parse_release(out, nonce) } else { None };
    Ok(Finished { audited, runs_removed, lock })
}

/// Finish on one host (one script), unless the apply before it ran this very script at its end
/// (`ApplyOptions::then`): what it printed then is read instead.
pub fn finish(transport: &mut dyn Transport, layout: &AppLayout, finish: &Finish<'_>) -> Result<Finished> {
    if let Some((nonce, out)) = transport.take_output(&script(layout, finish, crate::transport::AHEAD_NONCE)?)
    {
        crate::trace::note(&format!(
            "{}: the end of the deploy ran with the apply before it",
            transport.describe()
        ));
        return parse(&String::from_utf8_lossy(&out), &nonce, finish);
    }
    let nonce = crate::script::nonce();
    let out = run(transport, &script(layout, finish, &nonce)?, "finishing the deploy")?;
    parse(&out, &nonce, finish)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::LocalTransport;

    /// Against a real app folder here: the entry lands, all but the newest two runs go (the oldest of three) with their
    /// artifacts and backups, a stray file stays, and the lock taken with the holder is released.
    #[test]
    fn audits_prunes_and_unlocks_in_one_script() {
        let dir = std::env::temp_dir().join(format!("hk-finish-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let app = dir.join("a");
        let runs = app.join("runs");
        for id in [
            "20260101T000000Z-h-up-aaaaaaaa",
            "20260102T000000Z-h-up-bbbbbbbb",
            "20260103T000000Z-h-up-cccccccc",
        ] {
            std::fs::create_dir_all(runs.join("artifacts").join(id)).expect("mkdir");
            std::fs::create_dir_all(runs.join("backups").join(id)).expect("mkdir");
            std::fs::write(runs.join(format!("{id}.json")), "{}").expect("write");
        }
        std::fs::write(runs.join("not a run.json"), "{}").expect("write");
        let holder = serde_json::json!({"who": "me", "pid": 1});
        std::fs::create_dir_all(app.join("lock")).expect("mkdir");
        std::fs::write(app.join("lock/holder.json"), serde_json::to_string(&holder).expect("json"))
            .expect("write");
        let layout = AppLayout::new(&dir.to_string_lossy(), "a").expect("layout");
        let roots = Roots {
            runs: Some(runs.to_string_lossy().into()),
            backups: Some(runs.join("backups").to_string_lossy().into()),
        };
        let entry = serde_json::json!({"action": "deploy", "result": "ok"});
        let asked = Finish { entry: Some(&entry), prune_runs: Some((2, &roots)), unlock: Some(&holder) };
        let done = finish(&mut LocalTransport::new(false), &layout, &asked).expect("finish");
        let left: Vec<bool> = ["20260101T000000Z-h-up-aaaaaaaa", "20260102T000000Z-h-up-bbbbbbbb"]
            .iter()
            .map(|id| runs.join(format!("{id}.json")).exists())
            .collect();
        let artifacts_gone = !runs.join("artifacts/20260101T000000Z-h-up-aaaaaaaa").exists()
            && !runs.join("backups/20260101T000000Z-h-up-aaaaaaaa").exists();
        let stray = runs.join("not a run.json").exists();
        let log = std::fs::read_to_string(app.join("audit.log")).unwrap_or_default();
        let locked = app.join("lock").exists();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(done, Finished { audited: true, runs_removed: Some(1), lock: Some(Released::Released) });
        assert_eq!(left, [false, true]);
        assert!(artifacts_gone && stray && !locked);
        assert_eq!(log.trim(), serde_json::to_string(&entry).expect("json"));
    }
}
