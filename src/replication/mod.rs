//! Replication: every accepted write is handed, in sequence order, to the other copies of its
//! shard, each applied by its own thread; acknowledgements, lag, and failover build on that.
//!
//! ## Copies, not a primary and its replicas
//! With `--replicas R` every shard has R + 1 copies. Which copy is primary is per shard (an
//! atomic index in the shard's slot, read lock-free on every request and changed only inside
//! the shard's writer section); all other live copies are its replicas. Copy `c` of every shard
//! is applied by apply thread `c`, so a copy that was primary and is demoted after a failover
//! simply starts receiving writes on the queue its thread already drains.
//!
//! ## Order
//! Sequence number, map write and enqueue all happen inside the shard's writer section, so the
//! order of a shard's records in every queue is its sequence order, and a replica that applies
//! its queue in order holds, per key, the primary's state at some earlier sequence point. A
//! record at or below the copy's applied sequence for its shard is skipped: that is how a
//! re-sync snapshot and the records queued while it was taken fit together.
//!
//! ## Bounded memory
//! Each queue is bounded and the writer never waits for it: a write that does not fit marks the
//! replica *stale* and is not enqueued; the replica's thread then re-syncs every shard from its
//! primary (one shard at a time, copied outside the writer section: see `resync`) and goes back
//! to *live*.
//! A stale or syncing replica does not count for `ack=all` and is not chosen for promotion.
//!
//! ## Acknowledgement
//! [`Acked`] is a future that completes once every live replica of the shard has applied the
//! write's sequence number. It registers its waker and re-checks under the same mutex the apply
//! threads take after publishing progress, so a wake-up cannot be lost (loom model 2).
//!
//! Must never: apply a shard's records out of order, let a replica fall arbitrarily far behind
//! in memory, or block a writer on a replica.

mod apply;
mod failover;
mod resync;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::clock::Tick;
use crate::store::{Shard, ShardedStore};
use crate::sync::{AtomicBool, AtomicU64, AtomicU8, BoundedQueue, Ordering, WakerList};

#[cfg(not(shardkv_loom))]
pub use apply::ApplyThreads;
pub use failover::FailoverError;

/// The most replicas a shard may have (copies are tracked in a 64-bit mask).
pub const MAX_REPLICAS: usize = 63;

/// A replica's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Applying its queue; counts for acknowledgements.
    Live,
    /// Its queue overflowed; writes are not queued for it until it re-syncs.
    Stale,
    /// Re-syncing from the primaries.
    Syncing,
}

impl Health {
    fn from_u8(v: u8) -> Health {
        match v {
            0 => Health::Live,
            1 => Health::Stale,
            _ => Health::Syncing,
        }
    }

    /// The name shown in the dashboard.
    pub fn name(self) -> &'static str {
        match self {
            Health::Live => "live",
            Health::Stale => "stale",
            Health::Syncing => "syncing",
        }
    }
}

/// One replicated write.
#[derive(Debug, Clone)]
pub enum Op {
    /// The key now holds this value and deadline (its version is the write's sequence).
    Set {
        /// The key and value: the primary's own record, shared (replicas store the same
        /// immutable allocation, and the log writer encodes from it).
        record: crate::store::Record,
        /// The deadline tick, or `NEVER`.
        deadline: Tick,
    },
    /// The key was deleted or expired.
    Remove {
        /// The key.
        key: Box<[u8]>,
    },
}

/// A write on its way to a replica.
#[derive(Debug)]
pub struct QueuedWrite {
    /// The shard.
    pub shard: u32,
    /// The shard's sequence number of this write.
    pub seq: u64,
    /// When it was enqueued (for lag in ms).
    pub tick: Tick,
    /// What to apply.
    pub op: Op,
}

/// The replication state of one copy (its queue, progress and health).
pub struct CopyState {
    pub(crate) queue: BoundedQueue<QueuedWrite>,
    health: AtomicU8,
    /// Per shard: the last sequence number applied to this copy.
    pub(crate) applied: Box<[AtomicU64]>,
    /// The enqueue tick of the last record applied.
    pub(crate) applied_tick: AtomicU64,
    /// Per shard: a request to re-sync this copy of the shard (recovery after a failure).
    pub(crate) resync_requested: Box<[AtomicBool]>,
    /// The apply thread, parked while its queue is empty.
    #[cfg(not(shardkv_loom))]
    pub(crate) consumer: crate::sync::ParkedConsumer,
}

impl CopyState {
    fn new(shards: usize, queue_capacity: usize) -> Self {
        CopyState {
            queue: BoundedQueue::new(queue_capacity),
            health: AtomicU8::new(0),
            applied: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            applied_tick: AtomicU64::new(0),
            resync_requested: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            #[cfg(not(shardkv_loom))]
            consumer: crate::sync::ParkedConsumer::new(queue_capacity),
        }
    }

    /// This copy's health.
    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Acquire))
    }

    pub(crate) fn set_health(&self, health: Health) {
        self.health.store(health as u8, Ordering::Release);
    }

    /// A writer dropped a record for this copy. A read-modify-write, so it is ordered with the
    /// re-sync's syncing → live compare-and-swap: either the swap sees `Stale` and fails, or
    /// this lands after it and the copy is stale again.
    fn mark_stale(&self) {
        self.health.swap(Health::Stale as u8, Ordering::AcqRel);
    }

    /// Records waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Wakes the apply thread if it is parked and its queue is filling up. A writer calls this
    /// after every push: an apply thread wakes by itself every few milliseconds and applies the
    /// whole queue, so waking it per write would cost a futex call and a context switch per
    /// write for nothing. Writers that wait for the replicas (`ack=all`) wake it at once
    /// instead (see [`Acked`]).
    fn notify_if_filling(&self) {
        #[cfg(not(shardkv_loom))]
        self.consumer.wake_after_push(false, || self.queue.len());
    }

    /// Wakes the apply thread if it is parked.
    pub(crate) fn notify(&self) {
        #[cfg(not(shardkv_loom))]
        self.consumer.wake_if_parked();
    }
}

/// The replication state of all copies.
pub struct Replication {
    pub(crate) copies: Box<[CopyState]>,
    /// Writers waiting for `ack=all`.
    waiters: WakerList,
    /// Test-only switches for the loom models: each re-creates a known-broken protocol step,
    /// so a model run with it on must fail (showing the model can catch the bug).
    #[cfg(shardkv_loom)]
    broken: AtomicU8,
}

/// A loom model's broken variant of a protocol step (see [`Replication::break_for_model`]).
#[cfg(shardkv_loom)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenStep {
    /// A re-synced copy goes live with a check followed by a set, so a concurrent overflow's
    /// `Stale` can be overwritten.
    SyncingToLive = 1,
    /// Failover promotes after waiting for the replica without the writer section, so a write
    /// can land between the wait and the swap.
    FailoverDrain = 2,
}

impl Replication {
    pub(crate) fn new(copies: usize, shards: usize, queue_capacity: usize) -> Self {
        Replication {
            copies: (0..copies)
                .map(|_| CopyState::new(shards, queue_capacity))
                .collect(),
            waiters: WakerList::default(),
            #[cfg(shardkv_loom)]
            broken: AtomicU8::new(0),
        }
    }

    #[cfg(shardkv_loom)]
    pub(crate) fn is_broken(&self, step: BrokenStep) -> bool {
        self.broken.load(Ordering::Relaxed) & step as u8 != 0
    }

    /// A re-synced copy goes live, unless a writer marked it stale since it started syncing
    /// (then it stays stale and starts over). Returns whether it went live.
    pub(crate) fn finish_sync(&self, copy: usize) -> bool {
        let health = &self.copies[copy].health;
        #[cfg(shardkv_loom)]
        if self.is_broken(BrokenStep::SyncingToLive) {
            if health.load(Ordering::Acquire) == Health::Syncing as u8 {
                health.store(Health::Live as u8, Ordering::Release);
                return true;
            }
            return false;
        }
        health
            .compare_exchange(
                Health::Syncing as u8,
                Health::Live as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Wakes every writer waiting for an acknowledgement (they re-check their condition).
    pub(crate) fn wake_waiters(&self) {
        self.waiters.wake_all();
    }

    /// Wakes every parked apply thread (a writer is waiting for them).
    fn wake_apply_threads(&self) {
        for copy in self.copies.iter() {
            copy.notify();
        }
    }
}

/// Progress of one copy, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The copy's index.
    pub id: usize,
    /// Its health.
    pub health: Health,
    /// Shards this copy is primary for.
    pub primary_for: usize,
    /// Sum over shards it replicates of the last applied sequence number.
    pub applied_seq: u64,
    /// Writes accepted by primaries but not yet applied here.
    pub lag_ops: u64,
    /// Age of the oldest unapplied write, in ms (0 when caught up).
    pub lag_ms: u64,
    /// Records waiting in its queue.
    pub queue_depth: usize,
}

impl<S: Shard> ShardedStore<S> {
    /// Turns on a broken variant of a replication step (loom models only): a model run with it
    /// on must fail, which shows the model can catch that bug.
    #[cfg(shardkv_loom)]
    pub fn break_replication_for_model(&self, step: BrokenStep) {
        self.replication
            .broken
            .fetch_or(step as u8, Ordering::Relaxed);
    }

    /// The health of copy `copy` (models and tests).
    pub fn copy_health(&self, copy: usize) -> Health {
        self.replication.copies[copy].health()
    }

    /// Records waiting in copy `copy`'s queue (models and tests).
    pub fn copy_queue_depth(&self, copy: usize) -> usize {
        self.replication.copies[copy].queue_depth()
    }

    /// Replica copies per shard.
    pub fn replicas(&self) -> usize {
        self.replication.copies.len() - 1
    }

    /// Hands the write that took `seq` in `shard` to every other live copy (inside the writer
    /// section). A full queue marks that replica stale instead of waiting.
    pub(crate) fn replicate(&self, shard: usize, seq: u64, op: impl Fn() -> Op) {
        let copies = &self.replication.copies;
        if copies.len() == 1 {
            return;
        }
        let slot = &self.slots[shard];
        let primary = slot.primary.load(Ordering::Relaxed);
        // A failed copy that is re-syncing (joining) takes the writes after its fence.
        let excluded = slot.failed.load(Ordering::Relaxed) & !slot.joining.load(Ordering::Relaxed);
        let tick = self.clock().now();
        for (c, copy) in copies.iter().enumerate() {
            if c == primary || excluded & (1 << c) != 0 || copy.health() == Health::Stale {
                continue;
            }
            let record = QueuedWrite {
                shard: shard as u32,
                seq,
                tick,
                op: op(),
            };
            if copy.queue.push(record).is_err() {
                copy.mark_stale();
                self.stats.replica_overflows.incr();
                self.replication.wake_waiters();
            }
            copy.notify_if_filling();
        }
    }

    /// Marks every replica of `shard` as having applied everything up to `seq` (start-up: the
    /// store is empty and the shard's sequence was raised above the versions on disk).
    pub(crate) fn raise_applied(&self, shard: usize, seq: u64) {
        for copy in self.replication.copies.iter() {
            copy.applied[shard].fetch_max(seq, Ordering::AcqRel);
        }
    }

    /// Whether every live replica of `shard` has applied `seq`.
    pub fn is_replicated(&self, shard: usize, seq: u64) -> bool {
        let slot = &self.slots[shard];
        let primary = slot.primary.load(Ordering::Acquire);
        let failed = slot.failed.load(Ordering::Acquire);
        self.replication
            .copies
            .iter()
            .enumerate()
            .filter(|&(c, copy)| {
                c != primary && failed & (1 << c) == 0 && copy.health() == Health::Live
            })
            .all(|(_, copy)| copy.applied[shard].load(Ordering::Acquire) >= seq)
    }

    /// A future that completes once every live replica of `shard` has applied `seq`.
    pub fn acked(&self, shard: usize, seq: u64) -> Acked<'_, S> {
        Acked {
            store: self,
            shard,
            seq,
        }
    }

    /// The progress of every copy.
    pub fn copy_reports(&self) -> Vec<CopyReport> {
        let now = self.clock().now();
        self.replication
            .copies
            .iter()
            .enumerate()
            .map(|(c, copy)| {
                let mut report = CopyReport {
                    id: c,
                    health: copy.health(),
                    primary_for: 0,
                    applied_seq: 0,
                    lag_ops: 0,
                    lag_ms: 0,
                    queue_depth: copy.queue_depth(),
                };
                for (s, slot) in self.slots.iter().enumerate() {
                    if slot.primary.load(Ordering::Acquire) == c {
                        report.primary_for += 1;
                        continue;
                    }
                    if slot.failed.load(Ordering::Acquire) & (1 << c) != 0 {
                        continue;
                    }
                    let applied = copy.applied[s].load(Ordering::Acquire);
                    report.applied_seq += applied;
                    report.lag_ops += slot
                        .last_seq
                        .load(Ordering::Acquire)
                        .saturating_sub(applied);
                }
                if report.lag_ops > 0 {
                    report.lag_ms = now.saturating_sub(copy.applied_tick.load(Ordering::Acquire));
                }
                report
            })
            .collect()
    }
}

/// Completes once every live replica of a shard has applied a sequence number (`ack=all`).
/// Never completes early; never misses the apply thread's wake-up.
pub struct Acked<'a, S: Shard> {
    store: &'a ShardedStore<S>,
    shard: usize,
    seq: u64,
}

impl<S: Shard> Future for Acked<'_, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let replication = &self.store.replication;
        let poll = replication
            .waiters
            .poll_until(cx, || self.store.is_replicated(self.shard, self.seq));
        if poll.is_pending() {
            // Registered: now make the apply threads run rather than wait for their next nap
            // to end (writers do not wake them per write).
            replication.wake_apply_threads();
        }
        poll
    }
}
