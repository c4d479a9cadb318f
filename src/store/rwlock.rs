//! `RwLockShard`: one shard as an `RwLock<HashMap>`, the baseline.
//!
//! This is the original Go tool's design (a `sync.RWMutex` around a map per shard) and
//! DashMap's: kept so benches and the server can compare it with `LockFreeShard` on the same
//! workload (`--store rwlock`). Every read takes the read lock, which writes the lock's reader
//! count: on many cores that cache line bounces, which is the cost papaya avoids.
//!
//! It is also the map the loom models run on: its lock comes from `crate::sync`, so under
//! `cfg(shardkv_loom)` loom sees it.
//!
//! Must never: call out to user code while holding the write lock.

use std::hash::BuildHasher;

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};

use super::entry::{Entry, EntryMeta};
use super::record::Record;
use super::shard::Walked;
use super::Shard;
use crate::sync::RwLock;

/// The slots and the hasher that places them. A `HashTable` rather than a `HashMap` because
/// a write replaces the whole slot, record (the key) included; `HashMap::insert` would keep the
/// old key, and with it the old value.
struct Map {
    table: HashTable<(Record, Entry)>,
    hasher: RandomState,
}

impl Map {
    #[inline]
    fn find(&self, key: &[u8]) -> Option<&(Record, Entry)> {
        self.table
            .find(self.hasher.hash_one(key), |(r, _)| r.key() == key)
    }
}

/// A shard behind a reader-writer lock.
pub struct RwLockShard {
    map: CachePadded<RwLock<Map>>,
}

impl RwLockShard {
    // A panic while holding the lock cannot leave the table half-updated (hashbrown's
    // operations are panic-safe), so poisoning is ignored rather than failing every request.
    fn read_map(&self) -> crate::sync::RwLockReadGuard<'_, Map> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_map(&self) -> crate::sync::RwLockWriteGuard<'_, Map> {
        self.map.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl Shard for RwLockShard {
    const KIND: &'static str = "rwlock";
    // RSS growth 214–228 B/key for 7 + 100 bytes of key and value, without a TTL: hashbrown
    // holds record pointer and entry (32 bytes) inline, at 44–87% load after doubling.
    const ENTRY_OVERHEAD: u64 = 112;

    fn with_capacity(capacity: usize, hasher: RandomState) -> Self {
        RwLockShard {
            map: CachePadded::new(RwLock::new(Map {
                table: HashTable::with_capacity(capacity),
                hasher,
            })),
        }
    }

    #[inline]
    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<(&Record, &Entry)>) -> R) -> R {
        let map = self.read_map();
        f(map.find(key).map(|(r, e)| (r, e)))
    }

    fn try_upsert<E>(
        &self,
        record: Record,
        mut make: impl FnMut(Option<&Entry>) -> Result<Entry, E>,
    ) -> Result<Option<EntryMeta>, E> {
        let mut guard = self.write_map();
        let map = &mut *guard;
        let hash = map.hasher.hash_one(record.key());
        let hasher = &map.hasher;
        match map.table.entry(
            hash,
            |(r, _)| r.key() == record.key(),
            |(r, _)| hasher.hash_one(r.key()),
        ) {
            TableEntry::Occupied(mut slot) => {
                let (old_record, old_entry) = slot.get_mut();
                let old = old_entry.meta(old_record);
                let entry = make(Some(old_entry))?;
                *slot.get_mut() = (record, entry);
                Ok(Some(old))
            }
            TableEntry::Vacant(slot) => {
                let entry = make(None)?;
                slot.insert((record, entry));
                Ok(None)
            }
        }
    }

    fn remove(&self, key: &[u8]) -> Option<EntryMeta> {
        let mut map = self.write_map();
        let hash = map.hasher.hash_one(key);
        let slot = map.table.find_entry(hash, |(r, _)| r.key() == key).ok()?;
        let ((record, entry), _) = slot.remove();
        Some(entry.meta(&record))
    }

    fn clear(&self) {
        self.write_map().table.clear();
    }

    fn len(&self) -> usize {
        self.read_map().table.len()
    }

    const WALK_BLOCKS_WRITERS: bool = true;

    fn walk(&self, skip: usize, f: impl FnMut(&Record, &Entry) -> bool) -> Walked {
        let map = self.read_map();
        Walked::through(map.table.iter().map(|(r, e)| (r, e)).skip(skip), f)
    }

    fn for_each(&self, mut f: impl FnMut(&Record, &Entry)) {
        let map = self.read_map();
        for (record, entry) in map.table.iter() {
            f(record, entry);
        }
    }
}
