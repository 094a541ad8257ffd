//! The deploy lock of an app: a directory made with one atomic `mkdir` on the primary host, holding
//! the holder's record. Whoever makes the directory holds the lock; everyone else is told who does.

use anyhow::{Result, bail};

use super::facts::AppFacts;
use super::{AppLayout, run, sections};
use crate::engine::hash_cache::HashCache;
use crate::engine::read_ahead::Ahead;
use crate::quote::q;
use crate::transport::Transport;

/// What trying to take the lock found.
#[derive(Debug, PartialEq)]
pub enum Acquired {
    /// Taken: our holder record is in place.
    Taken,
    /// Somebody holds it: their record (`{}` when it is unreadable) and since when (epoch seconds).
    Held { holder: serde_json::Value, since: Option<i64> },
}

/// What releasing found.
#[derive(Debug, PartialEq)]
pub enum Released {
    Released,
    /// Nobody held it.
    Free,
    /// Another holder's lock: left alone.
    Other {
        holder: serde_json::Value,
    },
}

fn holder_json(holder: &serde_json::Value) -> Result<String> {
    if !holder.is_object() {
        bail!("a lock holder is a record, e.g. {{who, host, pid, version, message, since}}");
    }
    Ok(serde_json::to_string(holder)?)
}

/// A holder record from its lines (`{}` when it cannot be read).
pub(super) fn holder_of(lines: &[&str]) -> serde_json::Value {
    serde_json::from_str(lines.join("\n").trim()).unwrap_or_else(|_| serde_json::json!({}))
}

/// Take the lock: make the app's directory if needed, then the lock directory (atomic), then write
/// the holder record in it.
pub fn acquire(
    transport: &mut dyn Transport,
    layout: &AppLayout,
    holder: &serde_json::Value,
) -> Result<Acquired> {
    let nonce = crate::script::nonce();
    let out = run(transport, &acquire_script(layout, holder, &nonce)?, "taking the deploy lock")?;
    acquired(&out, &nonce, transport)
}

/// Take the lock as [`acquire`] does and read the app's facts after it, in the same exec: what a
/// deploying command needs first of its primary host.
/// `ahead`: the first phase's reading, taken after the facts (see `engine::read_ahead`) and kept on
/// the session when the lock was taken.
pub fn acquire_reading(
    transport: &mut dyn Transport,
    layout: &AppLayout,
    holder: &serde_json::Value,
    ahead: Option<(Ahead, Option<&mut HashCache>)>,
) -> Result<(Acquired, AppFacts)> {
    let (lock_nonce, facts_nonce) = (crate::script::nonce(), crate::script::nonce());
    let mut script = format!(
        "{}{}",
        acquire_script(layout, holder, &lock_nonce)?,
        super::facts::script(layout, &facts_nonce)?
    );
    if let Some((ahead, _)) = &ahead {
        script.push_str(&ahead.script()?);
    }
    // The session's file helper starts here, for the lock's folder and every apply that follows.
    let out = super::run_with_setup(
        transport,
        crate::script::steps::SESSION_FILE_HELPER.as_str(),
        &script,
        "taking the deploy lock and reading the app's state",
    )?;
    let taken = acquired(&out, &lock_nonce, transport)?;
    let facts = super::facts::parse(&out, &facts_nonce, layout)?;
    if let (Acquired::Taken, Some((ahead, cache))) = (&taken, ahead) {
        let kept = ahead.keep(transport, out.as_bytes(), cache);
        crate::trace::note(&format!("lock: reading ahead {}", if kept { "kept" } else { "not kept" }));
    }
    Ok((taken, facts))
}

/// The lock is a new folder: `mkdir` takes it at once, while the session's file helper (which the
/// rest of the deploy uses) is still starting beside it.
fn acquire_script(layout: &AppLayout, holder: &serde_json::Value, nonce: &str) -> Result<String> {
    let lock = layout.path("lock");
    Ok(format!(
        "set -u\nHK={nonce}\numask 022\n[ -d {dir} ] || mkdir -p -- {dir}\n\
         if mkdir -m 0700 -- {lock} 2>/dev/null; then\n\
           printf '%s' {holder} > {lock}/holder.json && printf '%s taken\\n' \"$HK\"\n\
         else\n\
           printf '%s held\\n' \"$HK\"; stat -c %Y -- {lock} 2>/dev/null || echo; cat -- {lock}/holder.json 2>/dev/null || :; echo\n\
         fi\nprintf '%s end\\n' \"$HK\"\n",
        nonce = q(nonce)?,
        dir = q(&layout.dir())?,
        lock = q(&lock)?,
        holder = q(&holder_json(holder)?)?,
    ))
}

fn acquired(out: &str, nonce: &str, transport: &dyn Transport) -> Result<Acquired> {
    for (name, lines) in sections(out, nonce) {
        match name {
            "taken" => return Ok(Acquired::Taken),
            "held" => {
                let since = lines.first().and_then(|l| l.trim().parse().ok());
                return Ok(Acquired::Held { holder: holder_of(lines.get(1..).unwrap_or_default()), since });
            }
            _ => {}
        }
    }
    bail!("taking the deploy lock on {} gave no answer", transport.describe())
}

/// Release the lock when `holder` holds it (byte for byte the record it was taken with), or whoever
/// holds it with `force`. The directory is renamed away first, so it disappears at once.
pub fn release(
    transport: &mut dyn Transport,
    layout: &AppLayout,
    holder: Option<&serde_json::Value>,
    force: bool,
) -> Result<Released> {
    let nonce = crate::script::nonce();
    let out = run(transport, &release_script(layout, holder, force, &nonce)?, "releasing the deploy lock")?;
    match parse_release(&out, &nonce) {
        Some(released) => Ok(released),
        None => bail!("releasing the deploy lock on {} gave no answer", transport.describe()),
    }
}

/// The shell releasing the lock (see [`release`]); it says `<nonce> free|released|other` and never
/// exits, so other work may follow it in one script.
pub fn release_script(
    layout: &AppLayout,
    holder: Option<&serde_json::Value>,
    force: bool,
    nonce: &str,
) -> Result<String> {
    let lock = layout.path("lock");
    let gone = format!("{lock}.released-{}", &nonce[..nonce.len().min(12)]);
    let ours = match (holder, force) {
        (_, true) => "true".to_string(),
        // The holder file has one line: read by a builtin.
        (Some(h), false) => format!(
            "{{ hk_h=; IFS= read -r hk_h < {}/holder.json 2>/dev/null; [ \"$hk_h\" = {} ]; }}",
            q(&lock)?,
            q(&holder_json(h)?)?
        ),
        (None, false) => bail!("say whose lock to release (the holder record), or force it"),
    };
    Ok(format!(
        "HK_L={nonce}\nHK=${{HK:-$HK_L}}\n{ops}\
         if [ ! -d {lock} ]; then printf '%s free\\n' \"$HK_L\"\n\
         elif {ours}; then hk_dir_move {lock} {gone} && hk_dir_drop {gone} && printf '%s released\\n' \"$HK_L\"\n\
         else printf '%s other\\n' \"$HK_L\"; cat -- {lock}/holder.json 2>/dev/null || :; echo; fi\n",
        nonce = q(nonce)?,
        ops = crate::script::steps::DIR_OPS.as_str(),
        lock = q(&lock)?,
        gone = q(&gone)?,
    ))
}

/// What [`release_script`] said, if it ran.
pub fn parse_release(out: &str, nonce: &str) -> Option<Released> {
    for (name, lines) in sections(out, nonce) {
        match name {
            "released" => return Some(Released::Released),
            "free" => return Some(Released::Free),
            "other" => return Some(Released::Other { holder: holder_of(&lines) }),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{Credentials, Target};

    #[test]
    fn the_lock_and_the_facts_in_one_exec() {
        let root = std::env::temp_dir().join(format!("hk-lock-test-{}", crate::script::nonce()));
        let layout = AppLayout::new(root.to_str().expect("utf-8 temp dir"), "demo").expect("layout");
        let mut transport = Target::local().connect(&Credentials::default()).expect("local");
        let ours = serde_json::json!({"who": "me", "pid": 1});
        let (taken, facts) = acquire_reading(transport.as_mut(), &layout, &ours, None).expect("first");
        assert_eq!(taken, Acquired::Taken);
        // The facts were read after the lock was taken: they show it held by us.
        assert_eq!(facts.lock, Some(ours.clone()));
        assert_eq!(facts.active_port, None);
        let theirs = serde_json::json!({"who": "someone else"});
        let (held, facts) = acquire_reading(transport.as_mut(), &layout, &theirs, None).expect("second");
        assert!(matches!(&held, Acquired::Held { holder, since: Some(_) } if holder == &ours), "{held:?}");
        assert_eq!(facts.lock, Some(ours.clone()));
        assert_eq!(
            release(transport.as_mut(), &layout, Some(&ours), false).expect("release"),
            Released::Released
        );
        std::fs::remove_dir_all(&root).ok();
    }
}
