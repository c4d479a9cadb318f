//! One shard's slot: its copies (the primary and its replicas), their roles, the writer section
//! and the shard's counters.
//!
//! The fields every read touches (the copies and which one is primary) sit on their own cache
//! line, apart from the fields every write changes (the writer section, the sequence number,
//! the byte and TTL counts): a SET must not invalidate the line every GET of the shard loads.
//!
//! Must never: change which copy is primary, or which copies are failed, outside the writer
//! section (writers read the roles inside it and rely on them staying put).

use crossbeam_utils::CachePadded;

use super::change::Roles;
use super::{EntryMeta, Found, Shard, TIMER_OVERHEAD};
use crate::clock::{Tick, NEVER};
use crate::counter::StripedCounter;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};

/// What the read path loads: the copies and the primary's index.
pub(crate) struct ReadSide<S> {
    /// Copy `c` of this shard's map; `copies[primary]` serves reads and writes.
    pub(crate) copies: Box<[S]>,
    /// Which copy is primary. Read lock-free on every request; changed only inside the writer
    /// section (failover), so a writer always sees a stable value.
    pub(crate) primary: AtomicUsize,
    /// Bit `c` set: copy `c` of this shard is marked failed (takes no writes, serves nothing).
    pub(crate) failed: AtomicU64,
    /// Bit `c` set: failed copy `c` is being rebuilt, so this shard's changes are published to
    /// it again although it still counts as failed (changed only inside the writer section).
    pub(crate) joining: AtomicU64,
}

/// What every write changes.
pub(crate) struct WriteSide {
    /// The writer section; holds the shard's last sequence number.
    pub(crate) section: Mutex<u64>,
    /// The last sequence number taken, published for lag and acknowledgement checks.
    pub(crate) last_seq: AtomicU64,
    /// Live keys with a TTL (kept on insert/remove).
    pub(crate) keys_with_ttl: AtomicU64,
    /// Set by a writer whose timer request did not fit in the queue, or by a promotion (the
    /// new primary's entries need their timers armed).
    pub(crate) needs_sweep: AtomicBool,
}

/// One shard.
pub(crate) struct Slot<S> {
    pub(crate) read: CachePadded<ReadSide<S>>,
    pub(crate) write: CachePadded<WriteSide>,
}

impl<S: Shard> Slot<S> {
    pub(crate) fn new(copies: Box<[S]>) -> Self {
        Slot {
            read: CachePadded::new(ReadSide {
                copies,
                primary: AtomicUsize::new(0),
                failed: AtomicU64::new(0),
                joining: AtomicU64::new(0),
            }),
            write: CachePadded::new(WriteSide {
                section: Mutex::new(0),
                last_seq: AtomicU64::new(0),
                keys_with_ttl: AtomicU64::new(0),
                needs_sweep: AtomicBool::new(false),
            }),
        }
    }

    /// The copy that serves this shard now.
    #[inline]
    pub(crate) fn primary_map(&self) -> &S {
        &self.read.copies[self.read.primary.load(Ordering::Acquire)]
    }

    /// The copies' roles now (stable inside the writer section).
    #[inline]
    pub(crate) fn roles(&self) -> Roles {
        Roles {
            primary: self.read.primary.load(Ordering::Acquire),
            failed: self.read.failed.load(Ordering::Acquire),
            joining: self.read.joining.load(Ordering::Acquire),
        }
    }

    /// Every entry of the primary copy, copied outside the writer section: each entry is seen
    /// in some state at least as new as when the copy started (a weak snapshot), so a caller
    /// pairs it with a sequence fence taken before and the writes after that fence.
    ///
    /// Only the record handles are copied (a reference-count increment each), so the map is
    /// walked quickly; the fault layer can hold the copy midway.
    pub(crate) fn collect_primary(&self) -> Vec<Found> {
        let map = self.primary_map();
        let midpoint = map.len() / 2;
        let mut entries = Vec::with_capacity(map.len());
        map.for_each(|record, e| {
            if entries.len() == midpoint {
                crate::faults::pause_copy();
            }
            entries.push(Found {
                record: record.clone(),
                version: e.version,
                deadline: e.deadline,
            })
        });
        entries
    }

    /// Keeps the counters in step with a write (inside the writer section): `old` is the entry
    /// replaced or removed, `new` the stored value's length and deadline. The store's estimate
    /// of bytes held (all copies counted, keys and values once) is `bytes`, one striped counter
    /// for the whole store: summing a counter per shard would cost every write a load per shard
    /// of every database.
    pub(crate) fn account(
        &self,
        bytes: &StripedCounter,
        key_len: usize,
        old: Option<EntryMeta>,
        new: Option<(usize, Tick)>,
    ) {
        let copies = self.read.copies.len() as u64;
        let size = |value_len: usize, deadline: Tick| {
            let timer = if deadline == NEVER { 0 } else { TIMER_OVERHEAD };
            key_len as u64 + value_len as u64 + copies * S::ENTRY_OVERHEAD + timer
        };
        let w = &self.write;
        // One net change: an overwrite seen half-applied (old size gone, new not yet added)
        // would let a concurrent `make_room` pass without the room it needs.
        let before = old.map_or(0, |old| size(old.value_len, old.deadline));
        let after = new.map_or(0, |(value_len, deadline)| size(value_len, deadline));
        bytes.add(after.wrapping_sub(before));
        if old.is_some_and(|old| old.deadline != NEVER) {
            w.keys_with_ttl.fetch_sub(1, Ordering::Relaxed);
        }
        if new.is_some_and(|(_, deadline)| deadline != NEVER) {
            w.keys_with_ttl.fetch_add(1, Ordering::Relaxed);
        }
    }
}
