//! Apply threads: each drains one copy's queue in order, applies the changes to that copy of
//! their shards, publishes its progress, and performs the re-syncs the copy needs.
//!
//! Only this copy's thread writes to this copy's replica maps (re-syncs included, see
//! `resync`), so applying needs no lock.
//!
//! Must never: apply a change at or below the copy's applied sequence for its shard, or write
//! to a shard of which this copy is the primary or a failed copy.

use super::resync::Reason;
use super::{Health, QueuedChange, Replicas};
use crate::store::{Entry, Op, Shard};
use crate::sync::Ordering;

impl<S: Shard> Replicas<S> {
    /// Applies up to `max` queued changes to copy `copy`, after any re-sync it needs; returns
    /// how many it took (the apply thread's step; loom models call it directly).
    pub fn apply_pending(&self, copy: usize, max: usize) -> usize {
        let state = &self.state.copies[copy];
        if state.health() == Health::Stale {
            self.resync_copy(copy);
        }
        for shard in 0..self.store.shard_count() {
            if state.health() == Health::Live
                && state.resync_requested[shard].load(Ordering::Acquire)
                && self.resync_shard(copy, shard, Reason::Recover)
            {
                state.resync_requested[shard].store(false, Ordering::Release);
                self.state.wake_waiters();
            }
        }
        let mut taken = 0;
        while taken < max {
            let Some(queued) = state.queue.pop() else {
                break;
            };
            self.apply_change(copy, queued);
            taken += 1;
        }
        if taken > 0 {
            self.state.wake_waiters();
        }
        taken
    }

    pub(super) fn apply_change(&self, copy: usize, queued: QueuedChange) {
        let QueuedChange { change, tick } = queued;
        let shard = change.shard as usize;
        let state = &self.state.copies[copy];
        if change.seq <= state.applied[shard].load(Ordering::Acquire)
            || !self.store.roles(shard).serves_as_replica(copy)
        {
            return;
        }
        let map = self.store.copy(shard, copy);
        match change.op {
            Op::Set { record, deadline } => {
                map.upsert(record, |_| Entry::new(change.seq, deadline));
            }
            Op::Remove { key } => {
                map.remove(&key);
            }
        }
        state.applied_tick.store(tick, Ordering::Release);
        state.applied[shard].store(change.seq, Ordering::Release);
    }
}

crate::not_under_loom! {
    /// The running apply threads, one per copy; stops them when dropped.
    pub struct ApplyThreads {
        _workers: Vec<crate::worker::Worker>,
    }

    impl ApplyThreads {
        /// Starts one apply thread per copy of `replicas`' store (none without replicas).
        pub fn start<S: Shard>(replicas: std::sync::Arc<Replicas<S>>) -> std::io::Result<ApplyThreads> {
            let mut workers = Vec::new();
            if replicas.replicas() > 0 {
                for copy in 0..replicas.state.copies.len() {
                    let replicas = replicas.clone();
                    workers.push(crate::worker::Worker::spawn(
                        format!("shardkv-apply-{copy}"),
                        move |stop| apply_loop(&replicas, copy, stop),
                    )?);
                }
            }
            Ok(ApplyThreads { _workers: workers })
        }
    }

    fn apply_loop<S: Shard>(replicas: &Replicas<S>, copy: usize, stop: &std::sync::atomic::AtomicBool) {
        let state = &replicas.state.copies[copy];
        state.consumer.register_current();
        while !stop.load(Ordering::Acquire) {
            if replicas.apply_pending(copy, 4096) > 0 {
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
}
