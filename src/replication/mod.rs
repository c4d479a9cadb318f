//! Replication: every accepted write is handed, in sequence order, to the other copies of its
//! shard, each applied by its own thread; acknowledgements, lag, and failover build on that.
//!
//! ## A sink of the store's change stream
//! With `--replicas R` every shard has R + 1 copies. The store keeps them and which one is
//! primary (its roles); this module is a [`ChangeSink`]: it queues each change to the other
//! copies, applies the queues, and changes roles only through the store's narrow copies API
//! (`ShardedStore::lock_roles`, `copy`, `copy_primary`). [`Replicas`] is the handle that holds
//! the store and this state together.
//!
//! ## Copies, not a primary and its replicas
//! Which copy is primary is per shard; all other live copies are its replicas. Copy `c` of every shard
//! is applied by apply thread `c`, so a copy that was primary and is demoted after a failover
//! simply starts receiving writes on the queue its thread already drains.
//!
//! ## Order
//! Sequence number, map write and enqueue (the store publishes inside the shard's writer section), so the
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
//! [`Acked`] (and a receipt's acknowledgement, through this sink) is a future that completes once every live replica of the shard has applied the
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

use crate::clock::{Clock, Tick};
use crate::counter::StripedCounter;
use crate::store::{
    AckPolicy, AckWait, Change, ChangeSink, Published, Roles, Shard, ShardedStore, StoreError,
    TooManySinks,
};
use crate::sync::{
    Arc, AtomicBool, AtomicU64, AtomicU8, BoundedQueue, BrokenSwitch, Ordering, WakerList,
};

pub use crate::store::MAX_REPLICAS;
crate::not_under_loom! {
    pub use apply::ApplyThreads;
}
pub use failover::FailoverError;

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

/// A change on its way to a replica.
#[derive(Debug)]
pub struct QueuedChange {
    /// The change.
    pub change: Change,
    /// When it was queued (for lag in ms).
    pub tick: Tick,
}

/// The replication state of one copy (its queue, progress and health).
pub struct CopyState {
    queue: BoundedQueue<QueuedChange>,
    health: AtomicU8,
    /// Per shard: the last sequence number applied to this copy.
    applied: Box<[AtomicU64]>,
    /// The enqueue tick of the last record applied.
    applied_tick: AtomicU64,
    /// Per shard: a request to re-sync this copy of the shard (recovery after a failure).
    resync_requested: Box<[AtomicBool]>,
    /// The apply thread, parked while its queue is empty.
    consumer: crate::sync::ParkedConsumer,
}

impl CopyState {
    fn new(shards: usize, queue_capacity: usize) -> Self {
        CopyState {
            queue: BoundedQueue::new(queue_capacity),
            health: AtomicU8::new(0),
            applied: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            applied_tick: AtomicU64::new(0),
            resync_requested: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            consumer: crate::sync::ParkedConsumer::new(queue_capacity),
        }
    }

    /// This copy's health.
    pub fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Acquire))
    }

    fn set_health(&self, health: Health) {
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
        self.consumer.wake_after_push(false, || self.queue.len());
    }

    /// Wakes the apply thread if it is parked.
    fn notify(&self) {
        self.consumer.wake_if_parked();
    }
}

/// Counters of the replication sink, for the dashboard.
#[derive(Debug, Default)]
pub struct ReplicationStats {
    /// Writes a replica's full queue could not take (that replica was marked stale).
    pub overflows: StripedCounter,
    /// Re-syncs of a stale replica that completed (it went live again).
    pub resyncs: StripedCounter,
}

/// The replication state of all copies: the sink the store publishes to.
pub struct Replication {
    copies: Box<[CopyState]>,
    /// Writers waiting for `ack=all`.
    waiters: WakerList,
    clock: Clock,
    stats: ReplicationStats,
    /// The loom models' broken variants (off outside the loom build).
    broken: BrokenSwitch,
}

/// A loom model's broken variant of a protocol step (see [`Replicas::break_for_model`]).
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
    fn new(copies: usize, shards: usize, queue_capacity: usize, clock: Clock) -> Self {
        Replication {
            copies: (0..copies)
                .map(|_| CopyState::new(shards, queue_capacity))
                .collect(),
            waiters: WakerList::default(),
            clock,
            stats: ReplicationStats::default(),
            broken: BrokenSwitch::default(),
        }
    }

    fn is_broken(&self, step: BrokenStep) -> bool {
        self.broken.is_on(step as u8)
    }

    /// A re-synced copy goes live, unless a writer marked it stale since it started syncing
    /// (then it stays stale and starts over). Returns whether it went live.
    fn finish_sync(&self, copy: usize) -> bool {
        let health = &self.copies[copy].health;
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
    fn wake_waiters(&self) {
        self.waiters.wake_all();
    }

    /// Wakes every parked apply thread (a writer is waiting for them).
    fn wake_apply_threads(&self) {
        for copy in self.copies.iter() {
            copy.notify();
        }
    }

    /// Hands one change to every other copy that takes the shard's changes. A full queue marks
    /// that replica stale instead of waiting.
    fn replicate(&self, change: &Change, roles: Roles, tick: Tick) {
        for (c, copy) in self.copies.iter().enumerate() {
            if !roles.receives(c) || copy.health() == Health::Stale {
                continue;
            }
            let queued = QueuedChange {
                change: change.clone(),
                tick,
            };
            if copy.queue.push(queued).is_err() {
                copy.mark_stale();
                self.stats.overflows.incr();
                self.wake_waiters();
            }
            copy.notify_if_filling();
        }
    }

    /// Whether every live replica in service has applied `seq` of `shard`.
    fn is_replicated(&self, shard: usize, seq: u64, roles: Roles) -> bool {
        self.copies
            .iter()
            .enumerate()
            .filter(|&(c, copy)| roles.serves_as_replica(c) && copy.health() == Health::Live)
            .all(|(_, copy)| copy.applied[shard].load(Ordering::Acquire) >= seq)
    }
}

impl ChangeSink for Replication {
    fn waits_for(&self) -> AckWait {
        AckWait::Replicated
    }

    fn publish(&self, published: Published<'_>) {
        let tick = self.clock.now();
        for (change, roles) in published.iter() {
            self.replicate(change, roles, tick);
        }
    }

    /// The replicas, as empty as their primaries at start-up, count as having applied
    /// everything up to `seq`.
    fn versions_raised(&self, shard: usize, seq: u64) {
        for copy in self.copies.iter() {
            copy.applied[shard].fetch_max(seq, Ordering::AcqRel);
        }
    }

    fn poll_acknowledged(
        &self,
        cx: &mut Context<'_>,
        shard: usize,
        seq: u64,
        roles: &dyn Fn() -> Roles,
        policy: AckPolicy,
    ) -> Poll<Result<(), StoreError>> {
        if policy != AckPolicy::AllReplicas {
            return Poll::Ready(Ok(()));
        }
        let poll = self
            .waiters
            .poll_until(cx, || self.is_replicated(shard, seq, roles()));
        if poll.is_pending() {
            // Registered: now make the apply threads run rather than wait for their next nap
            // to end (writers do not wake them per write).
            self.wake_apply_threads();
        }
        poll.map(Ok)
    }
}

/// A store and its replicas' state: the handle through which replicas are applied, re-synced,
/// failed over and reported.
pub struct Replicas<S: Shard> {
    store: Arc<ShardedStore<S>>,
    state: std::sync::Arc<Replication>,
}

impl<S: Shard> Replicas<S> {
    /// Starts replicating `store`'s changes to its replica copies, with apply queues of
    /// `queue_capacity` records (a replica that falls further behind is marked stale and
    /// re-synced). Registers a sink only when the store keeps replica copies, so a store
    /// without replicas pays nothing per write.
    pub fn attach(
        store: Arc<ShardedStore<S>>,
        queue_capacity: usize,
    ) -> Result<Replicas<S>, TooManySinks> {
        let state = std::sync::Arc::new(Replication::new(
            store.copies_per_shard(),
            store.shard_count(),
            queue_capacity,
            store.clock().clone(),
        ));
        if store.replicas() > 0 {
            store.register_sink(state.clone())?;
        }
        Ok(Replicas { store, state })
    }

    /// The store.
    pub fn store(&self) -> &Arc<ShardedStore<S>> {
        &self.store
    }

    /// Replica copies per shard.
    pub fn replicas(&self) -> usize {
        self.store.replicas()
    }

    /// The replication counters.
    pub fn stats(&self) -> &ReplicationStats {
        &self.state.stats
    }

    /// Turns on a broken variant of a replication step (loom models only): a model run with it
    /// on must fail, which shows the model can catch that bug. Panics outside the loom build.
    #[cfg(feature = "testing")]
    pub fn break_for_model(&self, step: BrokenStep) {
        self.state.broken.turn_on(step as u8);
    }

    /// The health of copy `copy`.
    pub fn copy_health(&self, copy: usize) -> Health {
        self.state.copies[copy].health()
    }

    /// Records waiting in copy `copy`'s queue.
    pub fn copy_queue_depth(&self, copy: usize) -> usize {
        self.state.copies[copy].queue_depth()
    }

    /// Whether every live replica of `shard` has applied `seq`.
    pub fn is_replicated(&self, shard: usize, seq: u64) -> bool {
        self.state
            .is_replicated(shard, seq, self.store.roles(shard))
    }

    /// A future that completes once every live replica of `shard` has applied `seq` (a
    /// receipt's acknowledgement under [`AckPolicy::AllReplicas`] waits for the same).
    pub fn acked(&self, shard: usize, seq: u64) -> Acked<'_, S> {
        Acked {
            replicas: self,
            shard,
            seq,
        }
    }

    /// The progress of every copy.
    pub fn copy_reports(&self) -> Vec<CopyReport> {
        let now = self.store.clock().now();
        self.state
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
                for s in 0..self.store.shard_count() {
                    let roles = self.store.roles(s);
                    if roles.primary == c {
                        report.primary_for += 1;
                        continue;
                    }
                    if roles.failed & (1 << c) != 0 {
                        continue;
                    }
                    let applied = copy.applied[s].load(Ordering::Acquire);
                    report.applied_seq += applied;
                    report.lag_ops += self.store.shard_seq(s).saturating_sub(applied);
                }
                if report.lag_ops > 0 {
                    report.lag_ms = now.saturating_sub(copy.applied_tick.load(Ordering::Acquire));
                }
                report
            })
            .collect()
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

/// Completes once every live replica of a shard has applied a sequence number (`ack=all`).
/// Never completes early; never misses the apply thread's wake-up.
pub struct Acked<'a, S: Shard> {
    replicas: &'a Replicas<S>,
    shard: usize,
    seq: u64,
}

impl<S: Shard> Future for Acked<'_, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let store = &self.replicas.store;
        let roles = || store.roles(self.shard);
        self.replicas
            .state
            .poll_acknowledged(cx, self.shard, self.seq, &roles, AckPolicy::AllReplicas)
            .map(|_| ())
    }
}
