//! Whole-database operations: iterating a database's keys (`SCAN`, `KEYS`), picking a random
//! key, and emptying a database (`FLUSHDB`).
//!
//! ## `SCAN` without a cursor in the map
//! papaya 0.2 iterates a table from its start only: it has no cursor and no random slot, and an
//! entry's place in the iteration moves when the table resizes or an earlier entry is deleted.
//! So a cursor cannot be "the n-th entry". Instead the cursor names a shard of the database and
//! a *slice* of the key-hash space: slice `i` of `2^L` holds the keys whose spread hash has
//! `i` as its top `L` bits. A call visits one shard (a weak snapshot) and returns the live keys
//! of one slice. Since every key belongs to exactly one (shard, slice) whatever the table does,
//! Redis's guarantee holds: a key present from the start to the end of a full iteration is
//! returned, once. A key added or removed during the iteration may or may not be.
//!
//! `L` is chosen when the iteration enters a shard (slice 0), from the shard's size and
//! `COUNT`, and travels in the cursor; it is at most [`MAX_SLICE_BITS`], so a full iteration
//! visits each entry at most `2^MAX_SLICE_BITS` times (COUNT is a hint, as in Redis: a call
//! returns about `max(COUNT, shard size / 64)` keys). The cursor's bits:
//! `shard << 32 | L << 24 | slice`; 0 starts and ends.
//!
//! `RANDOMKEY` picks a shard in proportion to its size and a position in it, and walks to it:
//! `O(shard size)`, against Redis's `O(1)`, for the same reason.
//!
//! ## Emptying a database
//! `flush_db` removes the keys shard by shard, in chunks of [`FLUSH_CHUNK`] under the writer
//! section, each chunk published as one group of removals (so replicas and the log follow, and
//! watchers of the keys are told). A writer is never held for more than a chunk. It is not
//! atomic: a key written into a shard the flush already passed survives it. Callers run it off
//! the async workers.
//!
//! Must never: return an expired key, or hold a writer section across a whole shard.

use super::change::{Admission, Published};
use super::{Condition, Entry, Record, Shard, ShardedStore, StoreError};

/// The most slice bits a `SCAN` cursor carries (at most 64 passes over a shard per iteration).
pub const MAX_SLICE_BITS: u32 = 6;

/// Keys removed per writer section by `flush_db`.
pub const FLUSH_CHUNK: usize = 512;

/// A decoded `SCAN` cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    /// The shard within the database.
    pub shard: u32,
    /// Slice bits (`L`).
    pub bits: u32,
    /// The slice within the shard.
    pub slice: u32,
}

impl ScanCursor {
    /// Decodes a cursor a client sent back.
    pub fn decode(cursor: u64) -> ScanCursor {
        ScanCursor {
            shard: (cursor >> 32) as u32,
            bits: ((cursor >> 24) & 0xff) as u32,
            slice: (cursor & 0x00ff_ffff) as u32,
        }
    }

    /// The number a client sees.
    pub fn encode(self) -> u64 {
        (u64::from(self.shard) << 32) | (u64::from(self.bits) << 24) | u64::from(self.slice)
    }
}

/// One `SCAN` call's answer.
#[derive(Debug)]
pub struct ScanPage {
    /// The cursor to send next; 0 when the iteration is complete.
    pub next: u64,
    /// Live keys that passed the filter.
    pub keys: Vec<Record>,
}

impl<S: Shard> ShardedStore<S> {
    /// One step of a `SCAN` over database `db` from `cursor`, asking for about `count` keys and
    /// keeping those `keep` accepts. See the module doc for the guarantee.
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        mut keep: impl FnMut(&Record, &Entry) -> bool,
    ) -> ScanPage {
        let at = ScanCursor::decode(cursor);
        let shards = self.shards_of_db(db);
        let per_db = shards.len() as u32;
        if at.shard >= per_db || at.bits > MAX_SLICE_BITS || at.slice >= 1 << at.bits {
            return ScanPage {
                next: 0,
                keys: Vec::new(),
            };
        }
        let shard = shards.start + at.shard as usize;
        let map = self.slots[shard].primary_map();
        let bits = if at.slice == 0 {
            // Entering the shard: as many slices as make a call return about `count` keys.
            let slices = map.len().div_ceil(count.max(1)).max(1);
            slices
                .next_power_of_two()
                .trailing_zeros()
                .min(MAX_SLICE_BITS)
        } else {
            at.bits
        };
        let now = self.clock().now();
        let mut keys = Vec::new();
        map.for_each(|record, entry| {
            if entry.is_expired(now) {
                return;
            }
            let slice = if bits == 0 {
                0
            } else {
                (self.spread(record.key()) >> (64 - bits)) as u32
            };
            if slice == at.slice && keep(record, entry) {
                keys.push(record.clone());
            }
        });
        let next = if at.slice + 1 < 1 << bits {
            ScanCursor {
                shard: at.shard,
                bits,
                slice: at.slice + 1,
            }
            .encode()
        } else if at.shard + 1 < per_db {
            ScanCursor {
                shard: at.shard + 1,
                bits: 0,
                slice: 0,
            }
            .encode()
        } else {
            0
        };
        ScanPage { next, keys }
    }

    /// Every live key of database `db` that `keep` accepts (a weak snapshot, shard by shard).
    pub fn keys_where(
        &self,
        db: usize,
        mut keep: impl FnMut(&Record, &Entry) -> bool,
    ) -> Vec<Record> {
        let now = self.clock().now();
        let mut keys = Vec::new();
        for shard in self.shards_of_db(db) {
            self.slots[shard].primary_map().for_each(|record, entry| {
                if !entry.is_expired(now) && keep(record, entry) {
                    keys.push(record.clone());
                }
            });
        }
        keys
    }

    /// A live key of database `db` chosen at random, or `None` when it holds none. `seed`
    /// picks it (the caller's randomness).
    pub fn random_key(&self, db: usize, seed: u64) -> Option<Record> {
        let now = self.clock().now();
        let mut seed = seed;
        // Expired entries not yet removed can be picked: try a few positions, then fall back
        // to the first live key.
        for _ in 0..8 {
            let total = self.db_len(db);
            if total == 0 {
                return None;
            }
            seed = seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(0x2545_F491_4F6C_DD1D);
            let mut pick = (seed >> 11) as usize % total;
            for shard in self.shards_of_db(db) {
                let map = self.slots[shard].primary_map();
                let len = map.len();
                if pick >= len {
                    pick -= len;
                    continue;
                }
                let mut found = None;
                let mut index = 0;
                map.for_each(|record, entry| {
                    if index == pick && !entry.is_expired(now) {
                        found = Some(record.clone());
                    }
                    index += 1;
                });
                if found.is_some() {
                    return found;
                }
                break;
            }
        }
        self.scan_first_live(db, now)
    }

    fn scan_first_live(&self, db: usize, now: crate::clock::Tick) -> Option<Record> {
        for shard in self.shards_of_db(db) {
            let mut found = None;
            self.slots[shard].primary_map().for_each(|record, entry| {
                if found.is_none() && !entry.is_expired(now) {
                    found = Some(record.clone());
                }
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Removes every key of database `db`, in chunks (see the module doc). Returns how many
    /// live keys were removed. A refusal (the log cannot record) stops it part-way.
    pub fn flush_db(&self, db: usize) -> Result<usize, StoreError> {
        let mut removed = 0;
        for shard in self.shards_of_db(db) {
            let mut keys = Vec::new();
            self.slots[shard]
                .primary_map()
                .for_each(|record, _| keys.push(record.clone()));
            for chunk in keys.chunks(FLUSH_CHUNK) {
                removed += self.remove_chunk(shard, chunk)?;
            }
        }
        Ok(removed)
    }

    /// Removes `keys` (all of `shard`) under one writer section, published as one group.
    fn remove_chunk(&self, shard: usize, keys: &[Record]) -> Result<usize, StoreError> {
        let mut seq = self.section(shard);
        self.admit(shard, Admission::Removal)?;
        let mut changes = Vec::with_capacity(keys.len());
        let mut live = 0;
        for record in keys {
            let key = record.key();
            if let Some((removal, was_live)) =
                self.remove_in_section(&mut seq, shard, key, Condition::Always, false)?
            {
                live += usize::from(was_live);
                if !self.sinks.is_empty() {
                    changes.push(self.removal_change(shard, removal, key));
                }
            }
        }
        if !changes.is_empty() {
            let roles = vec![self.slots[shard].roles(); changes.len()];
            self.publish(Published::group(&changes, &roles));
        }
        drop(seq);
        Ok(live)
    }
}
