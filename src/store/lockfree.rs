//! `LockFreeShard`: one shard as a `papaya::HashMap`, padded to its own cache lines.
//!
//! Why papaya: reads never block and never write to shared memory (no reader counter to
//! bounce between cores, unlike an `RwLock`), which is what a read-heavy cache wants. Memory is
//! reclaimed by `seize` once no reader holds a guard.
//!
//! The map's key is the [`Record`] (key and value in one allocation) and its value the 24-byte
//! [`Entry`], so papaya's node is 32 bytes and a lookup follows slot → node → record. Every
//! write stores a new record, so `compute` replaces the node (key included) in one lookup.
//!
//! Two settings matter more than anything else here (measured in `perf/RESULTS.md`):
//! - **Resizes that finish.** papaya resizes incrementally: each write copies 64 entries to the
//!   new table, and until the copy is complete every read probes the old table up to its probe
//!   limit and then the new one. With our writes serialised per shard, a preload that stopped
//!   mid-resize left lookups 15× slower (2.2 µs instead of 0.15 µs per miss at 1M keys) for as
//!   long as no further writes came. So the expiry thread completes any resize in progress on
//!   every step ([`Shard::finish_resize`]). papaya's blocking mode would avoid the slow window
//!   but makes the write that triggers a resize copy the whole table while that shard's writers
//!   wait: 53 ms at 125k keys per shard, 560 ms at 1M (measured with
//!   `examples/store_footprint`); here the writers never wait for more than their chunk.
//! - **Prompt reclamation.** seize retires old nodes and tables in per-thread batches (32 by
//!   default); an old table waits in a batch until 31 more objects are retired on that thread,
//!   which an insert-only load never does: 34 B/key were held that way after a 1M-key preload.
//!   Batches of one free them at once. That is affordable because papaya and seize are built
//!   without `fast-barrier`, whose reclamation barrier is a `membarrier` syscall (batches of one
//!   cost 30 % of `/set` throughput with it); without it the barrier is a fence, and readers pay
//!   a `SeqCst` store when they take a guard instead.
//!
//! Writes are serialised per shard by the store's writer section (see `store::ShardedStore`),
//! so `compute` here never races another writer; it may still retry during an incremental
//! resize, so the closure it runs must stay pure.
//!
//! Must never: hold a guard across a blocking call or an `.await` (it delays reclamation).

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;
use papaya::{Compute, Operation};

use super::entry::{Entry, EntryMeta};
use super::record::Record;
use super::shard::Walked;
use super::Shard;

/// Entries a write copies to the new table while a resize is in progress (papaya's default).
const RESIZE_CHUNK: usize = 64;

/// A lock-free shard.
pub struct LockFreeShard {
    map: CachePadded<papaya::HashMap<Record, Entry, RandomState>>,
}

impl Shard for LockFreeShard {
    const KIND: &'static str = "lockfree";
    // RSS growth 200 B/key for 7 + 100 bytes of key and value, without a TTL: a 32-byte node,
    // about 19 bytes of table at papaya's load, the record's 16-byte header and its size class,
    // and the tables resizes leave behind until mimalloc purges them.
    const ENTRY_OVERHEAD: u64 = 96;

    fn with_capacity(capacity: usize, hasher: RandomState) -> Self {
        let map = papaya::HashMap::builder()
            .capacity(capacity)
            .hasher(hasher)
            .resize_mode(papaya::ResizeMode::Incremental(RESIZE_CHUNK))
            // Reclaim each retired node and table at once (see the module documentation).
            .collector(seize::Collector::new().batch_size(1))
            .build();
        LockFreeShard {
            map: CachePadded::new(map),
        }
    }

    #[inline]
    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<(&Record, &Entry)>) -> R) -> R {
        let guard = self.map.guard();
        f(self.map.get_key_value(key, &guard))
    }

    fn try_upsert<E>(
        &self,
        record: Record,
        mut make: impl FnMut(Option<&Entry>) -> Result<Entry, E>,
    ) -> Result<Option<EntryMeta>, E> {
        let guard = self.map.guard();
        let result = self.map.compute(
            record,
            |old| match make(old.map(|(_, e)| e)) {
                Ok(entry) => Operation::Insert(entry),
                Err(refused) => Operation::Abort(refused),
            },
            &guard,
        );
        match result {
            Compute::Updated {
                old: (record, old), ..
            } => Ok(Some(old.meta(record))),
            Compute::Aborted(refused) => Err(refused),
            Compute::Inserted(..) | Compute::Removed(..) => Ok(None),
        }
    }

    fn remove(&self, key: &[u8]) -> Option<EntryMeta> {
        let guard = self.map.guard();
        self.map
            .remove_entry(key, &guard)
            .map(|(record, entry)| entry.meta(record))
    }

    fn clear(&self) {
        self.map.pin().clear();
    }

    fn finish_resize(&self) {
        // papaya completes an incremental resize in progress before it iterates (so no entry is
        // seen twice): creating the iterator does the copy, on the calling thread.
        let guard = self.map.guard();
        let _linearized = self.map.iter(&guard);
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    const WALK_BLOCKS_WRITERS: bool = false;

    fn walk(&self, skip: usize, f: impl FnMut(&Record, &Entry) -> bool) -> Walked {
        let guard = self.map.guard();
        Walked::through(self.map.iter(&guard).skip(skip), f)
    }

    fn for_each(&self, mut f: impl FnMut(&Record, &Entry)) {
        let guard = self.map.guard();
        for (record, entry) in self.map.iter(&guard) {
            f(record, entry);
        }
    }
}
