//! What a shard stores beside each [`Record`](super::Record): its version, deadline and timer.
//!
//! A map slot is the pair (record, entry): the record (key and value, shared and immutable) is
//! the map's key, the entry its value. 24 bytes, so a papaya node (record pointer + entry) is a
//! 32-byte allocation.
//!
//! An entry is immutable once published except for `timer_at`, the bookkeeping that keeps at
//! most one pending expiry timer per key; it is only written inside the shard's writer section.

use crate::clock::{Tick, NEVER};
use crate::sync::{AtomicU64, Ordering};

/// The metadata of a stored record.
pub struct Entry {
    /// The write that produced this entry: the shard's sequence number at that write. Versions
    /// of one key only grow, so `ETag`, compare-and-set, expiry and replicas all use it.
    pub version: u64,
    /// The tick at which the entry expires, or [`NEVER`].
    pub deadline: Tick,
    /// The deadline of the pending wheel timer that is responsible for this key, or [`NEVER`].
    /// It is at most `deadline`; when that timer fires before `deadline` (the TTL was extended
    /// or removed) it re-arms for `deadline`, or retires, instead of a second timer being
    /// added. So refreshing a TTL never adds a timer; only shortening it below the pending
    /// timer, or deleting the key and writing it again, leaves a superseded timer in the wheel
    /// until its deadline, where it is dropped as stale.
    timer_at: AtomicU64,
}

impl Entry {
    /// A new entry with no timer armed yet.
    pub fn new(version: u64, deadline: Tick) -> Entry {
        Entry {
            version,
            deadline,
            timer_at: AtomicU64::new(NEVER),
        }
    }

    /// Whether the entry has expired at `now`.
    #[inline]
    pub fn is_expired(&self, now: Tick) -> bool {
        self.deadline <= now
    }

    /// Whether the entry has a TTL.
    #[inline]
    pub fn has_ttl(&self) -> bool {
        self.deadline != NEVER
    }

    /// The deadline of the timer responsible for this key (see the field's doc).
    pub fn timer_at(&self) -> Tick {
        self.timer_at.load(Ordering::Acquire)
    }

    /// Records which timer is responsible for this key. Only inside the shard's writer section.
    pub(crate) fn set_timer_at(&self, tick: Tick) {
        self.timer_at.store(tick, Ordering::Release);
    }

    /// The metadata of this entry and its `record`, detached from the map.
    pub fn meta(&self, record: &super::Record) -> EntryMeta {
        EntryMeta {
            version: self.version,
            deadline: self.deadline,
            timer_at: self.timer_at(),
            value_len: record.value_len(),
            access: record.access(),
        }
    }
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        Entry {
            version: self.version,
            deadline: self.deadline,
            timer_at: AtomicU64::new(self.timer_at()),
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("version", &self.version)
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// An entry's metadata, copied out of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryMeta {
    /// See [`Entry::version`].
    pub version: u64,
    /// See [`Entry::deadline`].
    pub deadline: Tick,
    /// See [`Entry::timer_at`].
    pub timer_at: Tick,
    /// The value's length in bytes.
    pub value_len: usize,
    /// The record's access word (see `store::eviction::access`).
    pub access: u32,
}
