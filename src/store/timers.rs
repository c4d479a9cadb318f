//! The timer protocol between writers and the expiry thread: a write with a TTL asks for a
//! timer; a fired timer is judged inside the shard's writer section against the entry there.
//!
//! A write with a TTL arms at most one timer per key: when the key already has a pending timer
//! that fires no later than the new deadline, the new entry inherits it (`Entry::timer_at`) and
//! the expiry thread re-arms it when it fires. The request goes on a bounded lock-free queue to
//! the expiry thread; when the queue is full the writer does not wait: it flags its shard for a
//! sweep, which the expiry thread runs.
//!
//! Must never: let a stale timer remove a newer write (the decision is taken on the entry as it
//! is inside the writer section), or make a writer wait for the expiry thread.

use super::{Entry, Record, Shard, ShardedStore};
use crate::clock::{Tick, NEVER};
use crate::sync::{lock, Ordering};

/// The loom models' broken variant of the timer protocol (see
/// [`ShardedStore::break_expiry_check_for_model`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokenStep {
    /// `on_timer` decides on the entry it saw before entering the writer section.
    ExpiryCheck = 1,
    /// `evict` decides on the candidate as sampled, not on the entry inside the section.
    EvictionCheck = 2,
}

/// A request from a writer to the expiry thread: arm a timer for `target` at `at`.
#[derive(Debug)]
pub struct TimerRequest {
    /// The key and its shard.
    pub target: TimerTarget,
    /// The tick at which the timer fires.
    pub at: Tick,
}

/// Keys up to this many bytes are kept inside a timer; longer ones in an allocation of their own.
pub const INLINE_KEY_BYTES: usize = 20;

/// Which key a timer is for: its shard and its bytes, in 24 bytes. A pending timer is one per
/// key with a TTL, so its size is part of every such key's cost (with the deadline, a wheel
/// slot holds 32 bytes). Keys up to [`INLINE_KEY_BYTES`] sit inline, so most timers cost no
/// allocation; a timer never holds the key's record, which would keep an overwritten or
/// deleted value alive until the timer fired.
pub struct TimerTarget(Target);

enum Target {
    Inline {
        shard: u16,
        len: u8,
        bytes: [u8; INLINE_KEY_BYTES],
    },
    Boxed {
        shard: u16,
        key: Box<[u8]>,
    },
}

impl TimerTarget {
    /// The timer target for `key` in `shard` (shard indices stay below
    /// [`MAX_TOTAL_SHARDS`](super::MAX_TOTAL_SHARDS), so they fit 16 bits).
    pub fn new(shard: usize, key: &[u8]) -> TimerTarget {
        let shard = u16::try_from(shard).expect("shard indices are below MAX_TOTAL_SHARDS");
        if key.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0; INLINE_KEY_BYTES];
            bytes[..key.len()].copy_from_slice(key);
            TimerTarget(Target::Inline {
                shard,
                len: key.len() as u8,
                bytes,
            })
        } else {
            TimerTarget(Target::Boxed {
                shard,
                key: key.into(),
            })
        }
    }

    /// The key's shard.
    pub fn shard(&self) -> usize {
        match &self.0 {
            Target::Inline { shard, .. } | Target::Boxed { shard, .. } => usize::from(*shard),
        }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        match &self.0 {
            Target::Inline { len, bytes, .. } => &bytes[..usize::from(*len)],
            Target::Boxed { key, .. } => key,
        }
    }
}

impl std::fmt::Debug for TimerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are never logged: the length says enough.
        f.debug_struct("TimerTarget")
            .field("shard", &self.shard())
            .field("key_len", &self.key().len())
            .finish()
    }
}

/// What the expiry thread's handling of one fired timer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerOutcome {
    /// The key is gone or no longer has a TTL: nothing to do.
    Gone,
    /// Another timer is responsible for the key now (its TTL was shortened, or it was deleted
    /// and written again): dropped.
    Stale,
    /// The key had expired and was removed (a replicated write).
    Expired,
    /// The key's TTL was extended: re-arm the timer at this tick.
    Rearm(Tick),
}

impl<S: Shard> ShardedStore<S> {
    pub(crate) fn request_timer(&self, shard: usize, key: &[u8], at: Tick) {
        let request = TimerRequest {
            target: TimerTarget::new(shard, key),
            at,
        };
        if self.timers.push(request).is_err() {
            // No timer answers for this key now: say so on the entry, so the sweep arms exactly
            // the keys whose request was lost (and never a second timer for the others).
            let slot = &self.slots[shard];
            slot.primary_map().read(key, |e| {
                if let Some((_, e)) = e {
                    e.set_timer_at(NEVER)
                }
            });
            slot.write.needs_sweep.store(true, Ordering::Release);
            self.stats.timer_queue_overflows.incr();
        }
    }

    /// Takes the next timer request (the expiry thread drains these into its wheel).
    pub fn pop_timer_request(&self) -> Option<TimerRequest> {
        self.timers.pop()
    }

    /// Timer requests waiting for the expiry thread.
    pub fn pending_timer_requests(&self) -> usize {
        self.timers.len()
    }

    /// Handles a fired timer for `key` in `shard` that was armed for tick `fired_at`, at `now`.
    ///
    /// Runs inside the shard's writer section and decides on the entry found there, so a
    /// write that landed after the timer was armed wins: an expiry scheduled for version v
    /// never removes version v+1.
    pub fn on_timer(&self, shard: usize, key: &[u8], fired_at: Tick, now: Tick) -> TimerOutcome {
        let slot = &self.slots[shard];
        // Cheap lock-free look first: most fired timers are either due or stale.
        let meta = |e: Option<(&Record, &Entry)>| e.map(|(r, e)| e.meta(r));
        let Some(seen) = slot.primary_map().read(key, meta) else {
            return TimerOutcome::Gone;
        };
        let mut seq = lock(&slot.write.section);
        let current = slot.primary_map().read(key, meta);
        // The decision is taken on the entry as it is inside the writer section, not on what
        // was seen before entering it (a write may have landed in between).
        let basis = if self.broken.is_on(BrokenStep::ExpiryCheck as u8) {
            Some(seen)
        } else {
            current
        };
        let Some(entry) = basis else {
            return TimerOutcome::Gone;
        };
        if entry.timer_at != fired_at {
            return TimerOutcome::Stale;
        }
        if entry.deadline > now {
            // The TTL was extended or removed: this timer now answers for the new deadline.
            slot.primary_map().read(key, |e| {
                if let Some((_, e)) = e {
                    e.set_timer_at(entry.deadline)
                }
            });
            return if entry.deadline == NEVER {
                TimerOutcome::Gone
            } else {
                TimerOutcome::Rearm(entry.deadline)
            };
        }
        if let Some(old) = slot.primary_map().remove(key) {
            *seq += 1;
            slot.account(&self.bytes, key.len(), Some(old), None);
            self.stats.expired_by_wheel.incr();
            self.publish_removal(shard, *seq, key);
        }
        TimerOutcome::Expired
    }

    /// Whether the timer armed for `key` in `shard` at `at` is still the one responsible for
    /// it (the test `on_timer` applies when the timer fires): `false` once the key is gone or
    /// another timer answers for it. For dropping stale timers early; a lock-free look, since
    /// only a write can make a timer responsible, and a write that does arms its own.
    pub fn timer_is_current(&self, shard: usize, key: &[u8], at: Tick) -> bool {
        self.slots[shard]
            .primary_map()
            .read(key, |e| e.is_some_and(|(_, e)| e.timer_at() == at))
    }

    /// If `shard` was flagged (its timer requests overflowed the queue, or it was promoted by a
    /// failover), clears the flag and arms a timer for every key with a TTL and none
    /// responsible for it: calls `arm(target, tick)` for each. Returns whether the shard was
    /// swept.
    pub fn sweep_if_flagged(&self, shard: usize, mut arm: impl FnMut(TimerTarget, Tick)) -> bool {
        let slot = &self.slots[shard];
        if !slot.write.needs_sweep.swap(false, Ordering::AcqRel) {
            return false;
        }
        // Keys with a TTL and no responsible timer: their request overflowed the queue, or they
        // were promoted from a replica (replica entries carry no timer bookkeeping).
        let unarmed = |e: &Entry| e.has_ttl() && e.timer_at() == NEVER;
        let mut keys = Vec::new();
        slot.primary_map().for_each(|record, entry| {
            if unarmed(entry) {
                keys.push(TimerTarget::new(shard, record.key()));
            }
        });
        for target in keys {
            let _seq = lock(&slot.write.section);
            let deadline = slot.primary_map().read(target.key(), |e| {
                e.map(|(_, e)| e).filter(|e| unarmed(e)).map(|e| {
                    e.set_timer_at(e.deadline);
                    e.deadline
                })
            });
            if let Some(deadline) = deadline {
                arm(target, deadline);
            }
        }
        true
    }

    /// Test-only switch for the loom models: makes `on_timer` decide on the entry it saw
    /// before entering the writer section, i.e. drops the check that protects a newer write.
    /// A model run with it on must fail, which shows the model can catch the bug. Panics
    /// outside the loom build, where broken variants do not exist.
    #[cfg(feature = "testing")]
    pub fn break_expiry_check_for_model(&self) {
        self.broken.turn_on(BrokenStep::ExpiryCheck as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_target_is_24_bytes_and_a_wheel_slot_32() {
        assert_eq!(std::mem::size_of::<TimerTarget>(), 24);
        assert_eq!(std::mem::size_of::<(Tick, TimerTarget)>(), 32);
    }

    #[test]
    fn short_and_long_keys_come_back_as_they_went_in() {
        for len in [0, 1, 7, INLINE_KEY_BYTES, INLINE_KEY_BYTES + 1, 4096] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let target = TimerTarget::new(65_535, &key);
            assert_eq!(target.key(), &key[..]);
            assert_eq!(target.shard(), 65_535);
        }
    }
}
