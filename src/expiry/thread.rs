//! The expiry thread: steps the [`Expirer`] every few milliseconds, sleeping until the wheel's
//! next timer is due (within bounds), and runs the store's upkeep on the same wake-ups.
//!
//! Must never: sleep past a due timer by more than [`MIN_SLEEP`], or hold a writer section while
//! it sleeps.

use std::time::Duration;

use super::{ExpiryStats, Expirer};
use crate::clock::Tick;
use crate::store::{Shard, ShardedStore};
use crate::sync::Arc;

/// The shortest the thread sleeps between steps (unless a step left work behind). Waking every
/// millisecond for timers due every millisecond cost about 3% of a core with 10M keys over an
/// hour; removing a key up to 10 ms late is invisible, since reads already hide expired keys.
const MIN_SLEEP: Duration = Duration::from_millis(10);

/// The longest the thread sleeps, so timer requests from new writes are drained promptly.
const MAX_SLEEP: Duration = Duration::from_millis(100);

impl<S: Shard> Expirer<S> {
    /// How long the thread may sleep before the next step.
    fn sleep_hint(&self, now: Tick) -> Duration {
        match self.wheel.next_expiration() {
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => Duration::from_millis(at - now).min(MAX_SLEEP),
            None => MAX_SLEEP,
        }
    }
}

/// The running expiry thread; stops it when dropped.
pub struct ExpiryThread {
    stats: Arc<ExpiryStats>,
    _worker: crate::worker::Worker,
}

impl ExpiryThread {
    /// Starts the expiry thread for `store`.
    pub fn start<S: Shard>(store: Arc<ShardedStore<S>>) -> std::io::Result<ExpiryThread> {
        let mut expirer = Expirer::new(store);
        let stats = expirer.stats();
        let worker = crate::worker::Worker::spawn("shardkv-expiry", move |stop| {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let report = expirer.step();
                // Housekeeping that shares this thread: a shard whose table is growing is slow
                // to read until the copy completes (see `store::lockfree`).
                expirer.store.maintain();
                if !report.backlog {
                    let now = expirer.store.clock().now();
                    let nap = expirer.sleep_hint(now).clamp(MIN_SLEEP, MAX_SLEEP);
                    std::thread::park_timeout(nap);
                }
            }
        })?;
        Ok(ExpiryThread {
            stats,
            _worker: worker,
        })
    }

    /// The thread's counters.
    pub fn stats(&self) -> &Arc<ExpiryStats> {
        &self.stats
    }
}
