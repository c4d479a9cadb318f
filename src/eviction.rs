//! The eviction thread: runs the store's sampling walk ahead of the writers, so a writer that
//! needs room finds ranked candidates waiting instead of walking a shard itself (see
//! `store::eviction` for the design).
//!
//! When the estimate is over the cap (the cap was just lowered, or a policy set on a full
//! store), it also evicts, down to the cap.
//!
//! It sleeps while eviction is not active (no cap, `noeviction`, or the estimate below three
//! quarters of the cap) and otherwise walks as much as the writers' evictions owe it:
//! `maxmemory-samples` entries per candidate taken.
//!
//! Must never: hold a writer section, or keep a shard's table open for more than the walk's
//! bound while nobody needs candidates.

use std::time::Duration;

use crate::store::{Shard, ShardedStore};
use crate::sync::Arc;

/// How long the thread waits for demand before it looks again whether eviction has become
/// active (a cap lowered, a policy set, the estimate grown), while it is active.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// The same while eviction is off (`noeviction`, no cap, or the estimate below three quarters
/// of it): a writer that needs room meanwhile walks a little itself.
const OFF_WAIT: Duration = Duration::from_millis(100);

/// The running eviction thread; stops it when dropped.
pub struct EvictionThread {
    _worker: crate::worker::Worker,
}

impl EvictionThread {
    /// Starts the eviction thread for `store`.
    pub fn start<S: Shard>(store: Arc<ShardedStore<S>>) -> std::io::Result<EvictionThread> {
        store.set_eviction_thread_running(true);
        let worker = crate::worker::Worker::spawn("shardkv-evict", move |stop| {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                if store.eviction_active() && store.memory_used() > store.max_memory() {
                    // The cap was lowered, or writes went ahead while eviction was running
                    // behind: bring the estimate under it.
                    store.evict_to_cap();
                }
                if !store.eviction_active() {
                    // Not a wait for demand: an empty pool would look like demand.
                    store.sleep_until_eviction_needed(OFF_WAIT);
                    continue;
                }
                let wanted = store.eviction_wanted();
                if wanted == 0 {
                    store.wait_for_eviction_demand(IDLE_WAIT);
                    continue;
                }
                let report = store.sample_for_eviction(wanted);
                if report.examined == 0 {
                    // Nothing the policy may evict is stored: writers get their OOM answer
                    // without waiting for us; look again later.
                    std::thread::sleep(IDLE_WAIT);
                }
            }
            store.set_eviction_thread_running(false);
        })?;
        Ok(EvictionThread { _worker: worker })
    }
}
