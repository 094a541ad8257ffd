//! Reading ahead: a deploy's next phase plans what the phase before it has just left, so its
//! reading rides at the end of that phase's apply script (after the last step, when every change
//! went through) instead of costing a leg of its own. The reading is kept on the SSH session
//! (`Transport::keep_reading`) and taken by the next plan on that session that asks nothing it
//! lacks (`ProbeBatch::covers`); anything else that runs on the session first drops it. So a
//! reading taken ahead is never older than the apply that took it, and no script of hk's ran on
//! the host since: it is what the plan's own probe would read, a moment earlier. What runs on a
//! host outside hk (a hook's commands) is the caller's to rule out: a deploy asks for a reading
//! ahead only where no hook runs in between.

use anyhow::Result;

use super::hash_cache::HashCache;
use super::probe::{ProbeBatch, Reading};
use crate::resources::Resource;
use crate::runs::Roots;
use crate::transport::{Kept, Transport};

/// A reading to take at the end of a script.
pub struct Ahead {
    /// What the plan will ask.
    wanted: ProbeBatch,
    /// What the script reads: the same, less the hashes remembered here or taken by the script
    /// just before (its rehash of the files it wrote).
    read: ProbeBatch,
    candidates: Vec<String>,
    nonce: String,
}

impl Ahead {
    /// The reading a plan of `resources` (tracked under `roots`) makes; `rehashed`: the files the
    /// script hashes anyway before it, whose hashes are then remembered.
    pub fn new(
        resources: &[Resource],
        roots: Option<&Roots>,
        cache: Option<&HashCache>,
        rehashed: &[String],
    ) -> Ahead {
        let wanted = super::plan::planned_reading(resources, roots);
        let mut read = wanted.clone();
        let mut candidates = Vec::new();
        if let Some(cache) = cache {
            candidates = cache.candidates(wanted.sha256_paths());
            let hashed_before: Vec<String> = wanted
                .sha256_paths()
                .iter()
                .filter(|p| rehashed.contains(p) && !candidates.contains(p))
                .cloned()
                .collect();
            candidates.extend(hashed_before);
            read.remember(&candidates);
        }
        Ahead { wanted, read, candidates, nonce: super::nonce() }
    }

    /// The shell to append to the script.
    pub fn script(&self) -> Result<String> {
        self.read.script(&self.nonce)
    }

    /// Keep what the script read on the session (its hashes completed from `cache`); false when it
    /// could not be read whole, and the next plan reads for itself.
    pub fn keep(self, transport: &mut dyn Transport, out: &[u8], cache: Option<&mut HashCache>) -> bool {
        let Ok(mut facts) = self.read.parse(out, &self.nonce) else { return false };
        if let Some(cache) = cache {
            if !cache.fill(&mut facts, &self.candidates).is_empty() {
                return false;
            }
            if let Some(clock) = facts.clock {
                cache.update(&facts, clock);
            }
        }
        transport.keep(Kept::Reading(Box::new(Reading { batch: self.wanted, facts })))
    }
}
