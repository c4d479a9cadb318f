//! Re-sync: rebuilding one copy of a shard from its primary while writers keep writing.
//!
//! A copy needs it when its queue overflowed (the copy is *stale*: writes were dropped for it)
//! or when it failed and is recovered. The copy is rebuilt by its own apply thread, the only
//! thread that writes to it, in three steps:
//!
//! 1. **Fence**, inside the shard's writer section, for an instant: read the shard's sequence
//!    number F and make sure every later write is queued to this copy (a stale copy is already
//!    *syncing*, which writers queue to; a failed copy is marked *joining*).
//! 2. **Copy** the primary outside the writer section: every entry is seen in some state at least
//!    as new as F (see `ShardedStore::copy_primary`). Meanwhile the thread keeps draining its queue
//!    every few hundred entries, so a long copy does not overflow it: this shard's writes after
//!    F are replayed into the new copy, other shards' writes applied as usual.
//! 3. **Publish**: the copy has applied F and every replayed write; the queue brings the rest
//!    in order.
//!
//! Copy and replay interleave, so both are version-checked: an entry from the copy never
//! replaces a newer replayed write, and a replayed removal leaves a tombstone (version) that an
//! older copied entry cannot resurrect. A key the copy saw in a state newer than the replay has
//! reached is briefly ahead of the stream; the queue's own record of that write arrives later
//! and leaves it where it is. Once the copy has applied every write up to the primary's last one,
//! it equals the primary, which is what failover waits for.
//!
//! Writers never wait for a copy: the writer section is held only to read the fence and to flip
//! the copy's marks. If the queue still overflows, the copy is stale again and starts over.
//!
//! Must never: make a copy live while a write it has not applied was dropped for it (the
//! syncing → live step is a compare-and-swap that a concurrent overflow defeats), let a failed
//! copy rejoin without a recovery request, or hold the writer section across a copy.

use std::collections::HashMap;

use super::{Health, QueuedChange, Replicas};
use crate::store::{Entry, Op, Shard};
use crate::sync::Ordering;

/// Entries copied between two drains of the copy's queue.
const DRAIN_EVERY: usize = 256;

/// Why a re-sync of a shard is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The copy is stale or syncing: re-sync every shard it does not hold as failed.
    Stale,
    /// The copy failed for this shard and recovery was requested: it rejoins as a replica.
    Recover,
}

/// One shard being re-synced: how far its writes are replayed, and the removals replayed so far.
struct Rebuild {
    shard: usize,
    /// The last write of the shard reflected in the copy: the fence, then each replayed write.
    replayed: u64,
    /// Keys removed by replayed writes, with the removal's version.
    tombstones: HashMap<Box<[u8]>, u64>,
}

impl<S: Shard> Replicas<S> {
    /// Re-syncs every shard of a stale copy from its primary, then marks it live again, unless it
    /// overflowed meanwhile (then the next step starts over).
    pub(super) fn resync_copy(&self, copy: usize) {
        let state = &self.state.copies[copy];
        // From here on writers queue to this copy again (they skip only stale copies); each
        // shard's fence below orders its writes after this store.
        state.set_health(Health::Syncing);
        for shard in 0..self.store.shard_count() {
            if !self.resync_shard(copy, shard, Reason::Stale) {
                return;
            }
        }
        if self.state.finish_sync(copy) {
            self.state.stats.resyncs.incr();
            self.state.wake_waiters();
        }
    }

    /// Rebuilds copy `copy` of `shard` from the primary (see the module doc). Returns `false` if
    /// the copy overflowed meanwhile (the work is void; it is stale again).
    pub(super) fn resync_shard(&self, copy: usize, shard: usize, reason: Reason) -> bool {
        let state = &self.state.copies[copy];
        let bit = 1u64 << copy;
        // 1. Fence (inside the writer section, so the failed mark and the fence agree).
        let fence = {
            let section = self.store.lock_roles(shard);
            let roles = section.roles();
            if roles.primary == copy {
                return true;
            }
            let failed = roles.failed & bit != 0;
            match reason {
                // A failed copy of a shard stays out until it is recovered.
                Reason::Stale if failed => return true,
                Reason::Stale => {}
                Reason::Recover if !failed => return true,
                Reason::Recover => section.set_joining(copy),
            }
            section.seq()
        };
        // 2. Copy, outside the writer section.
        let mut rebuild = Rebuild {
            shard,
            replayed: fence,
            tombstones: HashMap::new(),
        };
        let entries = self.store.copy_primary(shard);
        let target = self.store.copy(shard, copy);
        target.clear();
        for (i, e) in entries.into_iter().enumerate() {
            if i % DRAIN_EVERY == 0 {
                self.drain_during_rebuild(copy, &mut rebuild);
            }
            let version = e.version;
            if rebuild
                .tombstones
                .get(e.record.key())
                .is_some_and(|&removed| removed > version)
            {
                continue;
            }
            let _ = target.try_upsert(e.record, |current| match current {
                Some(newer) if newer.version >= version => Err(()),
                _ => Ok(Entry::new(version, e.deadline)),
            });
        }
        self.drain_during_rebuild(copy, &mut rebuild);
        // 3. Publish (the writer section again, for the marks).
        let section = self.store.lock_roles(shard);
        if state.health() == Health::Stale {
            // Writes were dropped for this copy during the copy: void. A recovering copy leaves
            // its request in place and retries after the copy has re-synced.
            section.clear_joining(copy);
            return false;
        }
        state.applied[shard].fetch_max(rebuild.replayed, Ordering::AcqRel);
        if reason == Reason::Recover {
            section.rejoin(copy);
        }
        drop(section);
        true
    }

    /// Applies what the copy's queue holds: the rebuilt shard's writes after the fence are
    /// replayed version-checked, other shards' writes applied as usual.
    fn drain_during_rebuild(&self, copy: usize, rebuild: &mut Rebuild) {
        let state = &self.state.copies[copy];
        while let Some(queued) = state.queue.pop() {
            if queued.change.shard as usize == rebuild.shard {
                self.replay(copy, rebuild, queued);
            } else {
                self.apply_change(copy, queued);
            }
        }
    }

    fn replay(&self, copy: usize, rebuild: &mut Rebuild, queued: QueuedChange) {
        let QueuedChange { change, tick } = queued;
        let seq = change.seq;
        if seq <= rebuild.replayed {
            return;
        }
        let map = self.store.copy(rebuild.shard, copy);
        match change.op {
            Op::Set { record, deadline } => {
                rebuild.tombstones.remove(record.key());
                let _ = map.try_upsert(record, |current| match current {
                    Some(newer) if newer.version >= seq => Err(()),
                    _ => Ok(Entry::new(seq, deadline)),
                });
            }
            Op::Remove { key } => {
                let newer = map.read(&key, |e| e.is_some_and(|(_, e)| e.version > seq));
                if !newer {
                    map.remove(&key);
                }
                rebuild.tombstones.insert(key, seq);
            }
        }
        rebuild.replayed = seq;
        self.state.copies[copy]
            .applied_tick
            .store(tick, Ordering::Release);
    }
}
