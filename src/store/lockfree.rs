//! `LockFreeShard`: one shard as a `papaya::HashMap`, padded to its own cache lines.
//!
//! Why papaya: reads never block and never write to shared memory (no reader counter to
//! bounce between cores, unlike an `RwLock`), which is what a read-heavy cache wants. Memory is
//! reclaimed by `seize` once no reader holds a guard.
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
use super::Shard;

/// A lock-free shard.
pub struct LockFreeShard {
    map: CachePadded<papaya::HashMap<Box<[u8]>, Entry, RandomState>>,
}

impl Shard for LockFreeShard {
    const KIND: &'static str = "lockfree";

    fn with_capacity(capacity: usize, hasher: RandomState) -> Self {
        let map = papaya::HashMap::builder()
            .capacity(capacity)
            .hasher(hasher)
            .build();
        LockFreeShard {
            map: CachePadded::new(map),
        }
    }

    #[inline]
    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&Entry>) -> R) -> R {
        let guard = self.map.guard();
        f(self.map.get(key, &guard))
    }

    fn try_upsert<E>(
        &self,
        key: &[u8],
        mut make: impl FnMut(Option<&Entry>) -> Result<Entry, E>,
    ) -> Result<Option<EntryMeta>, E> {
        let guard = self.map.guard();
        let result = self.map.compute(
            Box::<[u8]>::from(key),
            |old| match make(old.map(|(_, e)| e)) {
                Ok(entry) => Operation::Insert(entry),
                Err(refused) => Operation::Abort(refused),
            },
            &guard,
        );
        match result {
            Compute::Updated { old: (_, old), .. } => Ok(Some(old.meta())),
            Compute::Aborted(refused) => Err(refused),
            Compute::Inserted(..) | Compute::Removed(..) => Ok(None),
        }
    }

    fn remove(&self, key: &[u8]) -> Option<EntryMeta> {
        let guard = self.map.guard();
        self.map.remove(key, &guard).map(Entry::meta)
    }

    fn clear(&self) {
        self.map.pin().clear();
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], &Entry)) {
        let guard = self.map.guard();
        for (key, entry) in self.map.iter(&guard) {
            f(key, entry);
        }
    }
}
