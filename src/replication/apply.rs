//! Apply threads: each drains one copy's queue in order, applies the records to that copy of
//! their shards, publishes its progress, and performs the re-syncs the copy needs.
//!
//! Only this copy's thread writes to this copy's replica maps (re-syncs included, see
//! `resync`), so applying needs no lock.
//!
//! Must never: apply a record at or below the copy's applied sequence for its shard, or write
//! to a shard of which this copy is the primary or a failed copy.

use super::resync::Reason;
use crate::replication::{Health, Op, QueuedWrite};
use crate::store::{Entry, Shard, ShardedStore};
use crate::sync::Ordering;

impl<S: Shard> ShardedStore<S> {
    /// Applies up to `max` queued records to copy `copy`, after any re-sync it needs; returns
    /// how many records it took (the apply thread's step; loom models call it directly).
    pub fn apply_pending(&self, copy: usize, max: usize) -> usize {
        let state = &self.replication.copies[copy];
        if state.health() == Health::Stale {
            self.resync_copy(copy);
        }
        for shard in 0..self.slots.len() {
            if state.health() == Health::Live
                && state.resync_requested[shard].load(Ordering::Acquire)
                && self.resync_shard(copy, shard, Reason::Recover)
            {
                state.resync_requested[shard].store(false, Ordering::Release);
                self.replication.wake_waiters();
            }
        }
        let mut taken = 0;
        while taken < max {
            let Some(record) = state.queue.pop() else {
                break;
            };
            self.apply_record(copy, record);
            taken += 1;
        }
        if taken > 0 {
            self.replication.wake_waiters();
        }
        taken
    }

    pub(crate) fn apply_record(&self, copy: usize, record: QueuedWrite) {
        let shard = record.shard as usize;
        let slot = &self.slots[shard];
        let state = &self.replication.copies[copy];
        if record.seq <= state.applied[shard].load(Ordering::Acquire)
            || slot.primary.load(Ordering::Acquire) == copy
            || slot.failed.load(Ordering::Acquire) & (1 << copy) != 0
        {
            return;
        }
        let map = &slot.copies[copy];
        match record.op {
            Op::Set {
                record: stored,
                deadline,
            } => {
                map.upsert(stored, |_| Entry::new(record.seq, deadline));
            }
            Op::Remove { key } => {
                map.remove(&key);
            }
        }
        state.applied_tick.store(record.tick, Ordering::Release);
        state.applied[shard].store(record.seq, Ordering::Release);
    }

    /// Reads `key` from copy `copy` of its shard, whatever that copy's role (tests and models
    /// compare replicas with primaries through this).
    pub fn read_copy(&self, copy: usize, key: &[u8]) -> Option<(Vec<u8>, u64, crate::clock::Tick)> {
        let slot = &self.slots[self.shard_of(key)];
        slot.copies[copy].read(key, |e| {
            e.map(|(r, e)| (r.value().to_vec(), e.version, e.deadline))
        })
    }

    /// Every entry of copy `copy` of `shard`, sorted by key (tests compare copies with this).
    pub fn copy_contents(&self, copy: usize, shard: usize) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
        let mut out = Vec::new();
        self.slots[shard].copies[copy]
            .for_each(|r, e| out.push((r.key().to_vec(), r.value().to_vec(), e.version)));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The running apply threads, one per copy; stops them when dropped.
#[cfg(not(shardkv_loom))]
pub struct ApplyThreads {
    _workers: Vec<crate::worker::Worker>,
}

#[cfg(not(shardkv_loom))]
impl ApplyThreads {
    /// Starts one apply thread per copy of `store` (none without replicas).
    pub fn start<S: Shard>(
        store: std::sync::Arc<ShardedStore<S>>,
    ) -> std::io::Result<ApplyThreads> {
        let mut workers = Vec::new();
        if store.replicas() > 0 {
            for copy in 0..store.replication.copies.len() {
                let store = store.clone();
                workers.push(crate::worker::Worker::spawn(
                    format!("shardkv-apply-{copy}"),
                    move |stop| apply_loop(&store, copy, stop),
                )?);
            }
        }
        Ok(ApplyThreads { _workers: workers })
    }
}

#[cfg(not(shardkv_loom))]
fn apply_loop<S: Shard>(
    store: &ShardedStore<S>,
    copy: usize,
    stop: &std::sync::atomic::AtomicBool,
) {
    let state = &store.replication.copies[copy];
    state.consumer.register_current();
    while !stop.load(Ordering::Acquire) {
        if store.apply_pending(copy, 4096) > 0 {
            continue;
        }
        state.consumer.nap(std::time::Duration::from_millis(5), || {
            state.queue.is_empty()
                && state.health() != Health::Stale
                && !state
                    .resync_requested
                    .iter()
                    .any(|r| r.load(Ordering::Acquire))
        });
    }
}
