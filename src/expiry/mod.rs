//! Active expiry: one thread that moves a hierarchical timing wheel along the coarse clock and
//! removes keys whose TTL has passed, so their memory comes back even if nobody reads them.
//!
//! ## Path of a timer
//! 1. A write with a TTL pushes a `TimerRequest` on the store's bounded lock-free queue (it never
//!    blocks: when the queue is full the writer flags its shard and this thread sweeps it).
//! 2. Each step, this thread drains the queue into its [`wheel::TimingWheel`] (which it alone
//!    owns, so the wheel needs no lock), runs any flagged sweeps, and advances the wheel to
//!    `clock.now()`.
//! 3. For each due timer it calls `ShardedStore::on_timer`, which inside the shard's writer
//!    section removes the key if its deadline has passed, re-arms the timer if the TTL was
//!    extended, or drops it when a newer write made it stale. A removal is a write like any
//!    other (it takes a sequence number).
//!
//! One thread for all shards: a step costs O(due timers), and at 2–16 cores the thread sleeps
//! almost always (see `perf/RESULTS.md` for its CPU use with 10M keys).
//!
//! Each step the thread also runs the store's own upkeep (`ShardedStore::maintain`: completing
//! the lock-free shards' table resizes), since it already wakes every few milliseconds. That
//! work can delay expiry by as long as it takes (about 0.5 s for a shard of 1M keys); reads
//! never return an expired key meanwhile.
//!
//! Must never: remove a key whose current version was not the one that expired, or block a
//! writer.

pub mod wheel;

crate::not_under_loom! {
    mod thread;
    pub use thread::ExpiryThread;
}

use crate::clock::Tick;
use crate::store::{Shard, ShardedStore, TimerOutcome, TimerTarget};
use crate::sync::{Arc, AtomicU64, Ordering};
use wheel::TimingWheel;

/// At most this many fired timers are handled per step, so a mass expiry cannot starve
/// the queue drain (the rest are handled in the next step, without sleeping).
const MAX_FIRED_PER_STEP: usize = 65_536;

/// Stale timers (their key deleted, evicted or given another timer) wait in the wheel until
/// their deadline, where they are dropped. With long TTLs and churn they pile up: 3M evictions
/// under a 200 MB cap left 2M stale timers, half again the cap in RSS. So once the wheel holds
/// more than the keys with a TTL plus a quarter of them plus this many timers, a step drops
/// the stale ones (one lookup per pending timer, so at most five per stale one dropped).
const STALE_SLACK: u64 = 65_536;

/// Counters the expiry thread publishes for the dashboard.
#[derive(Debug, Default)]
pub struct ExpiryStats {
    /// Timers waiting in the wheel.
    pub pending_timers: AtomicU64,
    /// How far the wheel trailed the clock after its last step, in ticks.
    pub wheel_lag_ticks: AtomicU64,
    /// Sweeps run because the timer queue overflowed.
    pub sweeps: AtomicU64,
    /// Timers re-armed because a TTL was extended.
    pub rearmed: AtomicU64,
    /// Stale timers dropped before their deadline (see [`STALE_SLACK`]).
    pub stale_dropped: AtomicU64,
}

/// The wheel and the work of one expiry step. Owned by the expiry thread (or driven by hand in
/// tests and loom models).
pub struct Expirer<S: Shard> {
    store: Arc<ShardedStore<S>>,
    wheel: TimingWheel<TimerTarget>,
    stats: Arc<ExpiryStats>,
}

/// What one step did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    /// Timers that came due.
    pub fired: usize,
    /// Keys removed.
    pub expired: usize,
    /// Whether due timers were left for the next step.
    pub backlog: bool,
}

impl<S: Shard> Expirer<S> {
    /// An expirer for `store`, starting at the store clock's current tick.
    pub fn new(store: Arc<ShardedStore<S>>) -> Self {
        let now = store.clock().now();
        Expirer {
            store,
            wheel: TimingWheel::new(now),
            stats: Arc::new(ExpiryStats::default()),
        }
    }

    /// The counters this expirer publishes.
    pub fn stats(&self) -> Arc<ExpiryStats> {
        self.stats.clone()
    }

    /// Timers in the wheel.
    pub fn pending_timers(&self) -> usize {
        self.wheel.len()
    }

    /// Runs one step at the store clock's current tick.
    pub fn step(&mut self) -> StepReport {
        let now = self.store.clock().now();
        self.step_at(now)
    }

    /// Drops the wheel's stale timers when they outnumber the live ones (see [`STALE_SLACK`]).
    fn drop_stale_timers(&mut self) {
        let pending = self.wheel.len() as u64;
        let live = self.store.keys_with_ttl();
        if pending <= live + live / 4 + STALE_SLACK {
            return;
        }
        let store = &self.store;
        let dropped = self
            .wheel
            .retain(|at, target| store.timer_is_current(target.shard(), target.key(), at));
        self.stats
            .stale_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// Runs one step as if the time were `now`.
    pub fn step_at(&mut self, now: Tick) -> StepReport {
        while let Some(request) = self.store.pop_timer_request() {
            self.wheel.insert(request.at, request.target);
        }
        for shard in 0..self.store.shard_count() {
            let wheel = &mut self.wheel;
            let swept = self
                .store
                .sweep_if_flagged(shard, |target, at| wheel.insert(at, target));
            if swept {
                self.stats.sweeps.fetch_add(1, Ordering::Relaxed);
            }
        }

        self.drop_stale_timers();

        let mut report = StepReport::default();
        let mut rearm = Vec::new();
        let store = &self.store;
        let fired = self
            .wheel
            .advance_bounded(now, MAX_FIRED_PER_STEP, |at, target| {
                match store.on_timer(target.shard(), target.key(), at, now) {
                    TimerOutcome::Expired => report.expired += 1,
                    TimerOutcome::Rearm(deadline) => rearm.push((deadline, target)),
                    TimerOutcome::Gone | TimerOutcome::Stale => {}
                }
            });
        report.fired = fired;
        // Bounded steps may stop early (fires and cascade moves are both capped).
        report.backlog = self.wheel.next_expiration().is_some_and(|t| t <= now);
        self.stats
            .rearmed
            .fetch_add(rearm.len() as u64, Ordering::Relaxed);
        for (deadline, target) in rearm {
            self.wheel.insert(deadline, target);
        }
        self.stats
            .pending_timers
            .store(self.wheel.len() as u64, Ordering::Relaxed);
        self.stats
            .wheel_lag_ticks
            .store(now.saturating_sub(self.wheel.elapsed()), Ordering::Relaxed);
        report
    }
}
