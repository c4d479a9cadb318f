//! Failover: marking a shard's primary failed (to simulate a hardware fault) promotes its most
//! up-to-date live replica; recovery re-syncs the failed copy, which rejoins as a replica.
//!
//! Promotion happens inside the shard's writer section: no write can land while the chosen
//! replica drains its queue up to the shard's last sequence number, and the routing index is
//! swapped before the section is left, so every write acknowledged before the failover is on
//! the new primary. Readers load the index lock-free and read either copy; copies are never
//! freed while the store lives, so a reader racing the swap reads valid memory either way.
//!
//! Must never: promote a replica that has not applied everything the shard acknowledged.

use crate::store::{Shard, ShardedStore};
use crate::sync::{lock, Ordering};

use super::Health;

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

impl<S: Shard> ShardedStore<S> {
    fn check_shard(&self, shard: usize) -> Result<(), FailoverError> {
        if shard >= self.slots.len() {
            return Err(FailoverError::NoSuchShard {
                shard,
                shards: self.slots.len(),
            });
        }
        Ok(())
    }

    /// The copy that is primary for `shard` now.
    pub fn primary_of(&self, shard: usize) -> usize {
        self.slots[shard].primary.load(Ordering::Acquire)
    }

    /// Bit `c` set: copy `c` of `shard` is failed.
    pub fn failed_copies(&self, shard: usize) -> u64 {
        self.slots[shard].failed.load(Ordering::Acquire)
    }

    /// Marks `shard`'s primary failed and promotes its most up-to-date live replica, after the
    /// replica has applied every write of the shard. Returns the new primary copy.
    ///
    /// Blocks the shard's writers (and the caller) while the replica drains its queue, at most
    /// about five seconds: call it off the async runtime.
    pub fn fail_primary(&self, shard: usize) -> Result<usize, FailoverError> {
        self.check_shard(shard)?;
        let slot = &self.slots[shard];
        let seq = lock(&slot.writer);
        let primary = slot.primary.load(Ordering::Acquire);
        let failed = slot.failed.load(Ordering::Acquire);
        let copies = &self.replication.copies;
        let candidate = (0..copies.len())
            .filter(|&c| c != primary && failed & (1 << c) == 0)
            .filter(|&c| copies[c].health() == Health::Live)
            .max_by_key(|&c| copies[c].applied[shard].load(Ordering::Acquire))
            .ok_or(FailoverError::NoReplica { shard })?;
        let target = *seq;
        if !wait_until(|| copies[candidate].applied[shard].load(Ordering::Acquire) >= target) {
            return Err(FailoverError::DrainTimeout { shard });
        }
        slot.failed.fetch_or(1 << primary, Ordering::AcqRel);
        slot.primary.store(candidate, Ordering::Release);
        // The new primary's entries carry no timer bookkeeping: have the expiry thread arm them.
        slot.needs_sweep.store(true, Ordering::Release);
        drop(seq);
        self.replication.wake_waiters();
        Ok(candidate)
    }

    /// Asks the apply threads of `shard`'s failed copies to re-sync them from the primary; they
    /// rejoin as replicas. Returns the copies asked. Poll [`ShardedStore::failed_copies`] for
    /// completion.
    pub fn request_recovery(&self, shard: usize) -> Result<Vec<usize>, FailoverError> {
        self.check_shard(shard)?;
        let failed = self.failed_copies(shard);
        if failed == 0 {
            return Err(FailoverError::NotFailed { shard });
        }
        let asked: Vec<usize> = (0..self.replication.copies.len())
            .filter(|&c| failed & (1 << c) != 0)
            .collect();
        for &c in &asked {
            let copy = &self.replication.copies[c];
            copy.resync_requested[shard].store(true, Ordering::Release);
            copy.notify();
        }
        Ok(asked)
    }
}

/// Waits, without holding anything but what the caller holds, until `done` or a timeout.
#[cfg(not(shardkv_loom))]
fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    true
}

#[cfg(shardkv_loom)]
fn wait_until(done: impl Fn() -> bool) -> bool {
    while !done() {
        crate::sync::thread::yield_now();
    }
    true
}
