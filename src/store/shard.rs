//! The map behind each copy of a shard: [`LockFreeShard`](super::LockFreeShard) (papaya) or
//! [`RwLockShard`](super::RwLockShard), the baseline, behind one trait so the store, the benches
//! and the server can swap them.
//!
//! Must never: allow two writers at once (the store calls the mutating methods only inside the
//! shard's writer section, or from the one thread that rebuilds a copy), or make a reader wait
//! for the writer in the lock-free implementation.

use foldhash::fast::RandomState;

use super::{Entry, EntryMeta, Record};

/// How far a [`Shard::walk`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// Entries visited (passed to `f`).
    pub visited: usize,
    /// Whether the walk reached the end of the map.
    pub finished: bool,
}

impl Walked {
    /// Passes `entries` to `f` until it returns `false` or they run out (both maps' walks).
    pub(crate) fn through<'a>(
        entries: impl Iterator<Item = (&'a Record, &'a Entry)>,
        mut f: impl FnMut(&Record, &Entry) -> bool,
    ) -> Walked {
        let mut visited = 0;
        for (record, entry) in entries {
            visited += 1;
            if !f(record, entry) {
                return Walked {
                    visited,
                    finished: false,
                };
            }
        }
        Walked {
            visited,
            finished: true,
        }
    }
}

/// One shard's map. Both implementations sit behind this trait so the store, the benches and
/// the server can swap them.
///
/// Mutating methods (`upsert`, `remove`) are only called inside the store's writer section for
/// that shard, so an implementation never sees two concurrent writers; it must allow readers
/// concurrently with the writer.
pub trait Shard: Send + Sync + 'static {
    /// The name used on the command line and in the dashboard.
    const KIND: &'static str;
    /// Bytes the memory estimate counts per entry and per copy beyond its key and value,
    /// calibrated against RSS growth per key for this map (`perf/memory.sh`, 1M and 10M keys of
    /// 100-byte values; README's "Memory" section has the table): the map's node and slot at
    /// its load, the record's header and allocator rounding. A replica shares the primary's
    /// record, so for a replica this errs high, by the record's share.
    const ENTRY_OVERHEAD: u64;
    /// An empty shard sized for about `capacity` keys.
    fn with_capacity(capacity: usize, hasher: RandomState) -> Self;
    /// Runs `f` on the record and entry stored under `key`, if any.
    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<(&Record, &Entry)>) -> R) -> R;
    /// Stores `record` (under its key, replacing any record there) with the entry `make` builds
    /// from the current one, in one lookup, unless `make` refuses (then nothing changes and its
    /// error is returned). `make` may be called more than once and must be pure. Returns the
    /// replaced entry's metadata.
    fn try_upsert<E>(
        &self,
        record: Record,
        make: impl FnMut(Option<&Entry>) -> Result<Entry, E>,
    ) -> Result<Option<EntryMeta>, E>;
    /// Stores `record` with the entry `make` builds from the current one; returns the replaced
    /// entry's metadata.
    fn upsert(
        &self,
        record: Record,
        mut make: impl FnMut(Option<&Entry>) -> Entry,
    ) -> Option<EntryMeta> {
        match self.try_upsert(record, |old| Ok::<_, std::convert::Infallible>(make(old))) {
            Ok(old) => old,
            Err(never) => match never {},
        }
    }
    /// Removes `key`; returns the removed entry's metadata.
    fn remove(&self, key: &[u8]) -> Option<EntryMeta>;
    /// Entries stored, expired-but-not-yet-removed ones included.
    fn len(&self) -> usize;
    /// Whether the shard holds no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Removes every entry (a copy being rebuilt, by the one thread that writes to it).
    fn clear(&self);
    /// Completes a table resize in progress, if the map resizes a little per write (so readers
    /// stop searching two tables). Part of the store's maintenance
    /// ([`ShardedStore::maintain`](super::ShardedStore::maintain)), outside any writer section.
    /// A no-op for maps that resize in one go.
    fn finish_resize(&self) {}
    /// Whether a [`Shard::walk`] keeps writers out while it runs (a lock), so walks must stay
    /// short; `false` when it blocks no one and may pause inside `f`.
    const WALK_BLOCKS_WRITERS: bool;
    /// Visits entries in the map's own order, from the `skip`-th on, until `f` returns `false`
    /// or the entries run out (the eviction sampler's walk; a weak snapshot, as `for_each`).
    /// `f` must not write to this shard. Skipping costs a step per slot passed, no entry read.
    fn walk(&self, skip: usize, f: impl FnMut(&Record, &Entry) -> bool) -> Walked;
    /// Visits every entry (a weak snapshot for `LockFreeShard`: concurrent writes may or may
    /// not be seen). `f` must not write to this shard.
    fn for_each(&self, f: impl FnMut(&Record, &Entry));
}
