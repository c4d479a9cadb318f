//! The candidate pool: the most evictable entries the sampling walk has seen, best last.
//!
//! Redis keeps 16 such candidates between eviction rounds (`EVPOOL_SIZE`), each round adding
//! `maxmemory-samples` random keys and evicting the best. Here the walk that adds candidates
//! runs ahead of the writers, on the eviction thread, and a writer that needs room pops the
//! best one and checks it is still what was sampled (see `ShardedStore::evict`). Every pop
//! owes the walk `maxmemory-samples` more entries to look at, so the pool's quality per
//! eviction is Redis's, while the writer itself looks at nothing.
//!
//! Must never: hold a record (a candidate names its key, so an overwritten value is freed at
//! once), or be locked across a writer section.

use crate::store::TimerTarget;
use crate::sync::{lock, Condvar, Mutex};

/// The most candidates the pool holds: four times Redis's, since writers on several threads
/// draw from it at once.
pub const POOL_CAPACITY: usize = 64;

/// Candidates taken between two wake-ups of the walk (see [`Pool::pop`]).
pub const WAKE_EVERY: usize = 16;

/// One sampled entry.
#[derive(Debug)]
pub struct Candidate {
    /// How much the policy wants it gone (see `access::rank`); higher goes first.
    pub rank: u64,
    /// Its shard and key.
    pub target: TimerTarget,
    /// The version sampled: a write since makes the candidate stale.
    pub version: u64,
    /// The access word sampled: a read since makes the candidate stale.
    pub access: u32,
}

/// The pool and the two ways its users wait for each other.
#[derive(Default)]
pub struct Pool {
    /// Sorted by rank, ascending: the best candidate is last.
    candidates: Mutex<PoolState>,
    /// Signalled when candidates were added (a writer may be waiting for one).
    supplied: Condvar,
    /// Signalled when the walk is owed work (the eviction thread may be waiting).
    wanted: Condvar,
}

#[derive(Default)]
struct PoolState {
    candidates: Vec<Candidate>,
    /// Entries the walk still owes: `maxmemory-samples` per candidate taken.
    owed: usize,
}

impl PoolState {
    /// Entries the walk should look at now: enough to refill a pool below half its capacity,
    /// or what it owes once that is [`WAKE_EVERY`] candidates' worth (so it works in batches).
    fn due(&self, samples: usize) -> usize {
        if self.candidates.len() < POOL_CAPACITY / 2 {
            self.owed
                .max((POOL_CAPACITY - self.candidates.len()) * samples)
        } else if self.owed >= samples * WAKE_EVERY {
            self.owed
        } else {
            0
        }
    }
}

impl Pool {
    /// Takes the best candidate, and owes the walk `samples` entries for it. The walk is woken
    /// once per [`WAKE_EVERY`] candidates taken (or when the pool runs low), not per candidate:
    /// a wake-up per eviction would cost a context switch per write.
    pub fn pop(&self, samples: usize) -> Option<Candidate> {
        let mut state = lock(&self.candidates);
        let best = state.candidates.pop()?;
        state.owed = state.owed.saturating_add(samples).min(POOL_CAPACITY * 64);
        let wake = state.due(samples) > 0;
        drop(state);
        if wake {
            self.wanted.notify_one();
        }
        Some(best)
    }

    /// Adds sampled candidates, keeping the best [`POOL_CAPACITY`]; counts them against what
    /// the walk owes.
    pub fn offer(&self, sampled: &mut Vec<Candidate>, examined: usize) {
        let mut state = lock(&self.candidates);
        state.owed = state.owed.saturating_sub(examined);
        state.candidates.append(sampled);
        state.candidates.sort_by_key(|c| c.rank);
        let len = state.candidates.len();
        if len > POOL_CAPACITY {
            state.candidates.drain(..len - POOL_CAPACITY);
        }
        drop(state);
        self.supplied.notify_all();
    }

    /// Entries the walk should look at now (see `PoolState::due`).
    pub fn wanted(&self, samples: usize) -> usize {
        lock(&self.candidates).due(samples)
    }

    /// Drops every candidate (the policy changed: they were ranked by the old one).
    pub fn clear(&self) {
        let mut state = lock(&self.candidates);
        state.candidates.clear();
        state.owed = 0;
    }

    /// Waits up to `timeout` for candidates to be added (a writer found the pool empty).
    pub fn wait_for_supply(&self, timeout: std::time::Duration) {
        let state = lock(&self.candidates);
        if !state.candidates.is_empty() {
            return;
        }
        self.wanted.notify_one();
        let _ = self.supplied.wait_timeout(state, timeout);
    }

    /// Waits up to `timeout`, or until a candidate is taken (the eviction thread while
    /// eviction is off: there is no demand to wait for, only a wake-up).
    pub fn sleep(&self, timeout: std::time::Duration) {
        let state = lock(&self.candidates);
        let _ = self.wanted.wait_timeout(state, timeout);
    }

    /// Waits up to `timeout` for the walk to be owed work (the eviction thread, idle). Returns
    /// at once if it is owed some; a pool that is merely short is the caller's to judge (it
    /// may be short because eviction is off).
    pub fn wait_for_demand(&self, samples: usize, timeout: std::time::Duration) {
        let state = lock(&self.candidates);
        if state.due(samples) > 0 {
            return;
        }
        let _ = self.wanted.wait_timeout(state, timeout);
    }
}
