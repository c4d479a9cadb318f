//! `StripedCounter`: a statistics counter that many threads bump without sharing a cache line.
//!
//! A single `AtomicU64` bumped on every request would bounce its cache line between cores on
//! every operation, a cost the lock-free read path exists to avoid. Each thread adds to its own
//! padded stripe instead; reading the total sums the stripes (rare: dashboards and metrics).
//!
//! Must never: be used for anything that needs an exact, ordered value (sequence numbers are
//! not counters).

use std::cell::Cell;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

const STRIPES: usize = 16;

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn stripe_index() -> usize {
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

/// A monotonically increasing statistics counter.
pub struct StripedCounter {
    stripes: Box<[CachePadded<AtomicU64>]>,
}

impl Default for StripedCounter {
    fn default() -> Self {
        StripedCounter {
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        }
    }
}

impl StripedCounter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.stripes[stripe_index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// Sets the counter back to zero (`CONFIG RESETSTAT`; increments racing with it may survive).
    pub fn reset(&self) {
        for stripe in self.stripes.iter() {
            stripe.store(0, Ordering::Relaxed);
        }
    }

    /// The total so far (a sum of relaxed loads: exact once writers are quiet).
    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.get())
    }
}

#[cfg(all(test, not(shardkv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn sums_across_threads() {
        let c = std::sync::Arc::new(StripedCounter::default());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.incr()))
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(c.get(), 8000);
    }
}
