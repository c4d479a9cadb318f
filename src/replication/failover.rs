//! Failover: marking a shard's primary failed (to simulate a hardware fault) promotes its most
//! up-to-date live replica; recovery re-syncs the failed copy, which rejoins as a replica.
//!
//! The chosen replica first drains, outside the writer section, what the shard had accepted
//! when the failover began (writers keep going). Promotion then happens inside the section: no
//! write can land while the replica applies the few writes that arrived meanwhile, and the
//! routing index is swapped before the section is left, so every write the shard accepted before
//! the failover is on the new primary. Readers load the index lock-free and read either copy; copies are never
//! freed while the store lives, so a reader racing the swap reads valid memory either way.
//!
//! Must never: promote a replica that has not applied everything the shard acknowledged.

use crate::store::Shard;
use crate::sync::{wait_until, Deadline, Ordering};

use super::{BrokenStep, Health, Replicas};

/// Why a failover or recovery request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailoverError {
    /// The shard id is out of range.
    #[error("no shard {shard}: shards are numbered 0 to {}", shards - 1)]
    NoSuchShard {
        /// The id asked for.
        shard: usize,
        /// How many shards there are.
        shards: usize,
    },
    /// No live replica to promote.
    #[error("shard {shard} has no live replica to fail over to (start with --replicas N, or wait for replicas to re-sync)")]
    NoReplica {
        /// The shard.
        shard: usize,
    },
    /// The chosen replica did not catch up in time.
    #[error(
        "shard {shard}: the replica did not catch up within the drain timeout; nothing changed"
    )]
    DrainTimeout {
        /// The shard.
        shard: usize,
    },
    /// Recovery was asked for a shard with no failed copy.
    #[error("shard {shard} has no failed copy to recover")]
    NotFailed {
        /// The shard.
        shard: usize,
    },
}

impl<S: Shard> Replicas<S> {
    fn check_shard(&self, shard: usize) -> Result<(), FailoverError> {
        let shards = self.store.shard_count();
        if shard >= shards {
            return Err(FailoverError::NoSuchShard { shard, shards });
        }
        Ok(())
    }

    /// The copy that is primary for `shard` now.
    pub fn primary_of(&self, shard: usize) -> usize {
        self.store.primary_of(shard)
    }

    /// Bit `c` set: copy `c` of `shard` is failed.
    pub fn failed_copies(&self, shard: usize) -> u64 {
        self.store.failed_copies(shard)
    }

    /// Marks `shard`'s primary failed and promotes its most up-to-date live replica, after the
    /// replica has applied every write of the shard. Returns the new primary copy.
    ///
    /// Drains in two steps, so writers of the shard are not held for the drain: first, outside
    /// the writer section, until the replica has applied what the shard had accepted when the
    /// failover began; then, inside the section, only the few writes that landed meanwhile.
    /// Blocks the caller (at most about five seconds in all): call it off the async runtime.
    pub fn fail_primary(&self, shard: usize) -> Result<usize, FailoverError> {
        self.check_shard(shard)?;
        let copies = &self.state.copies;
        let choose = || {
            let roles = self.store.roles(shard);
            (0..copies.len())
                .filter(|&c| roles.serves_as_replica(c))
                .filter(|&c| copies[c].health() == Health::Live)
                .max_by_key(|&c| copies[c].applied[shard].load(Ordering::Acquire))
                .ok_or(FailoverError::NoReplica { shard })
        };
        let applied = |c: usize| copies[c].applied[shard].load(Ordering::Acquire);
        let deadline = Deadline::in_five_seconds();
        // Step 1: catch up without the writer section.
        let early = choose()?;
        let accepted = self.store.shard_seq(shard);
        if !wait_until(&deadline, || {
            copies[early].notify();
            applied(early) >= accepted
        }) {
            return Err(FailoverError::DrainTimeout { shard });
        }
        if self.state.is_broken(BrokenStep::FailoverDrain) {
            // Broken variant: promote on the first wait alone.
            self.store.lock_roles(shard).promote(early);
            self.state.wake_waiters();
            return Ok(early);
        }
        // Step 2: inside the writer section no write can land; wait for the last few.
        let section = self.store.lock_roles(shard);
        let candidate = choose()?;
        let target = section.seq();
        if !wait_until(&deadline, || {
            copies[candidate].notify();
            applied(candidate) >= target
        }) {
            return Err(FailoverError::DrainTimeout { shard });
        }
        section.promote(candidate);
        drop(section);
        self.state.wake_waiters();
        Ok(candidate)
    }

    /// Asks the apply threads of `shard`'s failed copies to re-sync them from the primary; they
    /// rejoin as replicas. Returns the copies asked. Poll [`Replicas::failed_copies`] for
    /// completion.
    pub fn request_recovery(&self, shard: usize) -> Result<Vec<usize>, FailoverError> {
        self.check_shard(shard)?;
        let failed = self.failed_copies(shard);
        if failed == 0 {
            return Err(FailoverError::NotFailed { shard });
        }
        let asked: Vec<usize> = (0..self.state.copies.len())
            .filter(|&c| failed & (1 << c) != 0)
            .collect();
        for &c in &asked {
            let copy = &self.state.copies[c];
            copy.resync_requested[shard].store(true, Ordering::Release);
            copy.notify();
        }
        Ok(asked)
    }
}
