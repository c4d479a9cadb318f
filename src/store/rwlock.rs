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

use std::collections::HashMap;

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;

use super::entry::{Entry, EntryMeta};
use super::Shard;
use crate::sync::RwLock;

type Map = HashMap<Box<[u8]>, Entry, RandomState>;

/// A shard behind a reader-writer lock.
pub struct RwLockShard {
    map: CachePadded<RwLock<Map>>,
}

impl RwLockShard {
    // A panic while holding the lock cannot leave the map half-updated (std's HashMap
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

    fn with_capacity(capacity: usize, hasher: RandomState) -> Self {
        RwLockShard {
            map: CachePadded::new(RwLock::new(HashMap::with_capacity_and_hasher(
                capacity, hasher,
            ))),
        }
    }

    #[inline]
    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let map = self.read_map();
        f(map.get(key))
    }

    fn try_upsert<E>(
        &self,
        key: &[u8],
        mut make: impl FnMut(Option<&Entry>) -> Result<Entry, E>,
    ) -> Result<Option<EntryMeta>, E> {
        let mut map = self.write_map();
        match map.get_mut(key) {
            Some(slot) => {
                let old = slot.meta();
                *slot = make(Some(slot))?;
                Ok(Some(old))
            }
            None => {
                let entry = make(None)?;
                map.insert(Box::from(key), entry);
                Ok(None)
            }
        }
    }

    fn remove(&self, key: &[u8]) -> Option<EntryMeta> {
        self.write_map().remove(key).map(|e| e.meta())
    }

    fn clear(&self) {
        self.write_map().clear();
    }

    fn len(&self) -> usize {
        self.read_map().len()
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], &Entry)) {
        let map = self.read_map();
        for (key, entry) in map.iter() {
            f(key, entry);
        }
    }
}
