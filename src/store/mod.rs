//! The sharded store: the one API every protocol calls, and the change stream every sink reads.
//!
//! ## Layout
//! - this file: [`ShardedStore`], routing a key to its shard, the read path, limits and counters;
//! - [`shard`](Shard): the map behind each copy of a shard: [`LockFreeShard`] (papaya, the
//!   default) or [`RwLockShard`] (the baseline);
//! - `record` and `entry`: what a map holds per key ([`Record`]: key and value in one shared
//!   allocation; [`Entry`]: version, deadline, timer);
//! - `slot`: one shard's copies, roles, writer section and counters;
//! - `write`: the write path and the writer section ([`ShardedStore::set`], `set_many`,
//!   `delete_if`), which returns a [`Receipt`];
//! - `change`: the change stream ([`Change`], [`ChangeSink`]) that replication and persistence
//!   consume;
//! - `receipt`: waiting for a write's acknowledgement ([`Receipt::acknowledged`]);
//! - `timers`: the timer protocol with the expiry thread;
//! - `copies`: the narrow API through which replication manages a shard's copies;
//! - `error`: [`StoreError`] and the conditions a write may carry.
//!
//! ## Routing and reads
//! A key is hashed with a keyed `foldhash` (seeded at start-up, so clients cannot aim
//! collisions at one shard) and the hash picks one of N shards (N a power of two). A read looks
//! the key up in the shard's primary copy and checks the entry's deadline against the coarse
//! clock: an expired entry is answered as absent and counted, never returned, and never removed
//! (reads do not write; only the expiry thread removes).
//!
//! ## Writes
//! Every write passes through its shard's writer section, takes the shard's next sequence
//! number as its version and is published, in that order, to the registered sinks (see
//! `write`). The store imports none of its consumers: replicas, the log and any future
//! follower are [`ChangeSink`]s registered at start-up.
//!
//! Must never: return an expired value, let a stale timer remove a newer write, or change
//! anything when a request is rejected (all validation happens before the map is written).

mod change;
mod copies;
mod entry;
mod error;
pub mod eviction;
crate::not_under_loom! {
    mod lockfree;
    pub use lockfree::LockFreeShard;
}
mod keyspace;
mod receipt;
mod record;
mod rwlock;
mod shard;
mod slot;
mod timers;
mod transaction;
mod write;

use foldhash::fast::RandomState;
use std::hash::BuildHasher;

pub use change::{
    AckPolicy, AckWait, Admission, Change, ChangeSink, Op, Published, Roles, TooManySinks,
    MAX_SINKS,
};
pub use copies::RolesSection;
pub use entry::{Entry, EntryMeta};
pub use error::{Condition, StoreError, Versions, MAX_CONDITION_VERSIONS};
pub use eviction::{AccessReport, EvictionPolicy, UnknownPolicy};
pub use keyspace::{ScanCursor, ScanPage};
pub use receipt::{Acknowledgement, BatchReceipt, Receipt};
#[cfg(feature = "testing")]
pub use record::break_release_for_model;
pub use record::Record;
pub use rwlock::RwLockShard;
pub use shard::Shard;
pub use shard::Walked;
pub use timers::{TimerOutcome, TimerRequest, TimerTarget, INLINE_KEY_BYTES};
pub use transaction::Transaction;

use crate::clock::{Clock, Tick};
use crate::counter::StripedCounter;
use crate::sync::{BoundedQueue, BrokenSwitch, Ordering};
use change::Sinks;
use eviction::Eviction;
use slot::Slot;
use timers::BrokenStep;

/// The most replica copies a shard may have (copies are tracked in a 64-bit mask).
pub const MAX_REPLICAS: usize = 63;

/// The most shards a store holds in all its databases together (the log numbers them in 16
/// bits, beside the database).
pub const MAX_TOTAL_SHARDS: usize = 1 << 16;

/// The most databases a store holds (Redis's database numbers are `int`s; ours fit the log's
/// 16-bit field).
pub const MAX_DATABASES: usize = 1 << 12;

/// An entry handed out of a shard: a live value found by [`ShardedStore::get`], or one entry
/// of a shard's copy (snapshots and replica re-syncs; those may include expired entries).
#[derive(Debug, Clone)]
pub struct Found {
    /// The stored key and value: a handle to the store's own allocation (a reference-count
    /// increment, no copy), so the value can be sent after the map's guard is gone.
    pub record: Record,
    /// The entry's version.
    pub version: u64,
    /// The entry's deadline tick, or [`NEVER`](crate::clock::NEVER).
    pub deadline: Tick,
}

impl Found {
    /// The value.
    pub fn value(&self) -> &[u8] {
        self.record.value()
    }
}

impl PartialEq for Found {
    fn eq(&self, other: &Found) -> bool {
        // `Record`'s own equality looks at the key only (it is the map's key).
        self.record.key() == other.record.key()
            && self.value() == other.value()
            && self.version == other.version
            && self.deadline == other.deadline
    }
}

impl Eq for Found {}

/// The outcome of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The key is live.
    Hit(Found),
    /// The key is absent.
    Miss,
    /// The key is present but its deadline has passed; it is answered as absent.
    Expired,
}

impl Lookup {
    /// The value if live.
    pub fn found(self) -> Option<Found> {
        match self {
            Lookup::Hit(found) => Some(found),
            _ => None,
        }
    }
}

/// The store's limits and sizing.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Number of shards; rounded up to a power of two, at least 1.
    pub shards: usize,
    /// Longest key accepted, in bytes.
    pub max_key_bytes: usize,
    /// Largest value accepted, in bytes.
    pub max_value_bytes: usize,
    /// Keys to pre-size all shards for (papaya resizes poorly with few threads to help).
    pub initial_capacity: usize,
    /// Capacity of the writer → expiry-thread timer queue.
    pub timer_queue_capacity: usize,
    /// The most memory the stored data may take, estimated (see [`Shard::ENTRY_OVERHEAD`]), counting
    /// every copy; writes that would go past it are refused. `u64::MAX` for no limit.
    pub max_memory: u64,
    /// Copies of every shard besides its primary, kept for replicas (at most [`MAX_REPLICAS`]).
    pub replicas: usize,
    /// Numbered keyspaces (Redis's `SELECT`), each with `shards` shards of its own; at least 1.
    /// HTTP serves database 0.
    pub databases: usize,
    /// What a write that needs room past `max_memory` does (Redis's `maxmemory-policy`).
    pub eviction_policy: EvictionPolicy,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            shards: default_shard_count(),
            max_key_bytes: 4 * 1024,
            max_value_bytes: 1024 * 1024,
            initial_capacity: 0,
            timer_queue_capacity: 1 << 18,
            max_memory: u64::MAX,
            replicas: 0,
            databases: 1,
            eviction_policy: EvictionPolicy::NoEviction,
        }
    }
}

/// Bytes counted per key with a TTL for its timer in the expiry wheel (a 32-byte slot entry in
/// 1024-entry chunks: 39.7 B of RSS per key with a TTL, measured by `perf/memory.sh`; see
/// `store::timers`). Counted per key, not per timer: a key deleted or evicted leaves its timer
/// in the wheel, and charging those would let stale timers fill the cap and refuse writes.
/// The expiry thread drops stale timers once they pass a quarter of the keys with a TTL, so
/// they stay a small share of RSS (README's "Memory and eviction" has the measurement).
pub const TIMER_OVERHEAD: u64 = 40;

/// `(4 × available cores).next_power_of_two()`, DashMap's choice.
pub fn default_shard_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).next_power_of_two()
}

/// The size limits every protocol shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest key accepted, in bytes.
    pub max_key_bytes: usize,
    /// Largest value accepted, in bytes.
    pub max_value_bytes: usize,
}

impl Limits {
    /// Checks a key's length.
    pub fn check_key(&self, key: &[u8]) -> Result<(), StoreError> {
        if key.len() > self.max_key_bytes {
            return Err(StoreError::KeyTooLong {
                len: key.len(),
                max: self.max_key_bytes,
            });
        }
        Ok(())
    }

    /// Checks a key's and a value's lengths.
    pub fn check(&self, key: &[u8], value_len: usize) -> Result<(), StoreError> {
        self.check_key(key)?;
        if value_len > self.max_value_bytes {
            return Err(StoreError::ValueTooLarge {
                len: value_len,
                max: self.max_value_bytes,
            });
        }
        Ok(())
    }
}

/// Counters the store keeps for the dashboard.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Reads that found an expired entry (answered as absent).
    pub expired_on_read: StripedCounter,
    /// Entries removed by the expiry thread.
    pub expired_by_wheel: StripedCounter,
    /// Timer requests that did not fit the queue (their shard was swept instead).
    pub timer_queue_overflows: StripedCounter,
    /// Live keys removed to make room (Redis's `evicted_keys`).
    pub evicted_keys: StripedCounter,
    /// Expired entries the eviction walk reclaimed before the wheel did.
    pub expired_by_eviction: StripedCounter,
}

/// N shards of `S` per database behind one routing hash.
///
/// Databases are laid out one after the other: database `d`'s shards are the slots
/// `d × N .. (d + 1) × N`. A key's slot is its database's base plus its hash's shard, so
/// database 0 (HTTP's) routes exactly as a single keyspace would, and everything that works
/// per shard (the writer section, replicas, the log, expiry) works per database unchanged.
pub struct ShardedStore<S: Shard> {
    slots: Box<[Slot<S>]>,
    mask: u64,
    /// Shards per database (N).
    per_db: usize,
    router: RandomState,
    clock: Clock,
    config: StoreConfig,
    limits: Limits,
    timers: BoundedQueue<TimerRequest>,
    stats: StoreStats,
    sinks: Sinks,
    /// Estimated bytes held, all copies counted (see `Slot::account`).
    bytes: StripedCounter,
    /// The memory limit in force (`config.max_memory` at start, changed by `set_max_memory`).
    max_memory: std::sync::atomic::AtomicU64,
    /// The eviction policy, its sampling walk and candidate pool.
    eviction: Eviction,
    /// The loom models' broken variants of the timer and eviction protocols (off outside the
    /// loom build).
    broken: BrokenSwitch,
}

impl<S: Shard> ShardedStore<S> {
    /// A store with `config`, reading time from `clock`.
    pub fn new(config: StoreConfig, clock: Clock) -> Self {
        let shards = config.shards.max(1).next_power_of_two();
        let replicas = config.replicas.min(MAX_REPLICAS);
        let databases = config
            .databases
            .clamp(1, MAX_DATABASES)
            .min(MAX_TOTAL_SHARDS / shards)
            .max(1);
        let per_shard = config.initial_capacity.div_ceil(shards);
        // Only database 0 is pre-sized: the others start empty and grow if used.
        let slots = (0..shards * databases)
            .map(|slot| {
                let capacity = if slot < shards { per_shard } else { 0 };
                Slot::new(
                    (0..=replicas)
                        .map(|_| S::with_capacity(capacity, RandomState::default()))
                        .collect(),
                )
            })
            .collect();
        ShardedStore {
            slots,
            mask: shards as u64 - 1,
            per_db: shards,
            router: RandomState::default(),
            clock,
            timers: BoundedQueue::new(config.timer_queue_capacity),
            limits: Limits {
                max_key_bytes: config.max_key_bytes,
                max_value_bytes: config.max_value_bytes,
            },
            config: StoreConfig {
                shards,
                replicas,
                databases,
                ..config
            },
            stats: StoreStats::default(),
            sinks: Sinks::new(),
            bytes: StripedCounter::default(),
            max_memory: std::sync::atomic::AtomicU64::new(config.max_memory),
            eviction: Eviction::new(config.eviction_policy),
            broken: BrokenSwitch::default(),
        }
    }

    /// Adds a consumer of the change stream: every write that starts after this returns is
    /// published to it, after the sinks registered before it.
    pub fn register_sink(&self, sink: std::sync::Arc<dyn ChangeSink>) -> Result<(), TooManySinks> {
        self.sinks.register(sink)
    }

    /// The shard `key` lives in, in database 0.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.shard_in(0, key)
    }

    /// The shard `key` lives in, in database `db` (below [`ShardedStore::databases`]).
    #[inline]
    pub fn shard_in(&self, db: usize, key: &[u8]) -> usize {
        debug_assert!(db < self.databases());
        db * self.per_db + (self.router.hash_one(key) & self.mask) as usize
    }

    /// A second, independent spread of `key`'s hash (its high bits), for orders that must not
    /// follow the shard choice (`SCAN`'s slices).
    #[inline]
    pub(crate) fn spread(&self, key: &[u8]) -> u64 {
        self.router.hash_one(key).rotate_right(32)
    }

    /// The database shard `shard` belongs to.
    #[inline]
    pub fn db_of(&self, shard: usize) -> usize {
        shard / self.per_db
    }

    /// How many databases the store holds.
    #[inline]
    pub fn databases(&self) -> usize {
        self.config.databases
    }

    /// The shards of database `db`.
    pub fn shards_of_db(&self, db: usize) -> std::ops::Range<usize> {
        db * self.per_db..(db + 1) * self.per_db
    }

    /// Entries in database `db` (expired ones not yet removed by the wheel included, as
    /// Redis's `DBSIZE` counts them).
    pub fn db_len(&self, db: usize) -> usize {
        self.shards_of_db(db)
            .map(|s| self.slots[s].primary_map().len())
            .sum()
    }

    /// Entries with a TTL in database `db`.
    pub fn db_keys_with_ttl(&self, db: usize) -> u64 {
        self.shards_of_db(db)
            .map(|s| self.slots[s].write.keys_with_ttl.load(Ordering::Relaxed))
            .sum()
    }

    /// The store's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The configuration in force (shard count rounded to a power of two).
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The size limits.
    #[inline]
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The shard implementation's name.
    pub fn kind(&self) -> &'static str {
        S::KIND
    }

    /// The memory limit in force (`u64::MAX`: none).
    pub fn max_memory(&self) -> u64 {
        self.max_memory.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes the memory limit (Redis's `CONFIG SET maxmemory`); writes already admitted are
    /// not undone.
    pub fn set_max_memory(&self, limit: u64) {
        self.max_memory
            .store(limit, std::sync::atomic::Ordering::Relaxed);
    }

    /// Estimated bytes the stored data takes, all copies counted.
    pub fn memory_used(&self) -> u64 {
        self.bytes.get()
    }

    /// Refuses writes of `entries` new entries holding `data_bytes` of keys and values in all
    /// that would take the estimate past the memory limit.
    pub(crate) fn check_memory(&self, data_bytes: u64, entries: u64) -> Result<(), StoreError> {
        let limit = self.max_memory();
        if limit == u64::MAX {
            return Ok(());
        }
        let used = self.memory_used();
        if used.saturating_add(self.write_bytes(data_bytes, entries)) > limit {
            return Err(StoreError::MemoryFull { used, limit });
        }
        Ok(())
    }

    /// What a write of `entries` new entries holding `data_bytes` of keys and values adds to
    /// the estimate: the bytes and each entry's overhead in every copy.
    pub(crate) fn write_bytes(&self, data_bytes: u64, entries: u64) -> u64 {
        let copies = self.copies_per_shard() as u64;
        data_bytes.saturating_add(entries.saturating_mul(copies.saturating_mul(S::ENTRY_OVERHEAD)))
    }

    /// Reads `key` in database 0. Never returns an entry whose deadline has been reached.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Lookup {
        self.get_in(0, key)
    }

    /// Reads `key` in database `db`. Never returns an entry whose deadline has been reached.
    #[inline]
    pub fn get_in(&self, db: usize, key: &[u8]) -> Lookup {
        let slot = &self.slots[self.shard_in(db, key)];
        let now = self.clock.now();
        let lookup = slot.primary_map().read(key, |entry| match entry {
            None => Lookup::Miss,
            Some((_, e)) if e.is_expired(now) => Lookup::Expired,
            Some((record, e)) => {
                self.touch(record, now);
                Lookup::Hit(Found {
                    record: record.clone(),
                    version: e.version,
                    deadline: e.deadline,
                })
            }
        });
        if lookup == Lookup::Expired {
            self.stats.expired_on_read.incr();
        }
        lookup
    }

    /// The estimated bytes `key` in `db` takes (key, value and [`Shard::ENTRY_OVERHEAD`]), whether
    /// or not it has expired (Redis's `MEMORY USAGE` looks at the table, not at the TTL).
    pub fn entry_bytes_in(&self, db: usize, key: &[u8]) -> Option<usize> {
        self.slots[self.shard_in(db, key)]
            .primary_map()
            .read(key, |entry| {
                entry.map(|(record, _)| {
                    record.key().len() + record.value_len() + S::ENTRY_OVERHEAD as usize
                })
            })
    }

    /// Reads every key of a batch, after checking them all against the key limit (one bad
    /// key refuses the batch). The answers come in the keys' order.
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Lookup>, StoreError> {
        for key in keys {
            self.limits.check_key(key.as_ref())?;
        }
        Ok(keys.iter().map(|key| self.get(key.as_ref())).collect())
    }

    /// The store's own upkeep, outside any writer section: completes any table resize in
    /// progress in every copy of every shard (see [`Shard::finish_resize`]), so a shard is never
    /// left half-copied (and slower to read) when writes stop. Called every few milliseconds
    /// by a background thread (the expiry thread's loop).
    pub fn maintain(&self) {
        for slot in self.slots.iter() {
            for copy in slot.read.copies.iter() {
                copy.finish_resize();
            }
        }
    }

    /// Number of shards, in all databases.
    pub fn shard_count(&self) -> usize {
        self.slots.len()
    }

    /// Entries in each shard (expired ones not yet removed by the wheel included).
    pub fn shard_lens(&self) -> Vec<usize> {
        self.slots.iter().map(|s| s.primary_map().len()).collect()
    }

    /// Entries in all shards.
    pub fn len(&self) -> usize {
        self.slots.iter().map(|s| s.primary_map().len()).sum()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries with a TTL in all shards.
    pub fn keys_with_ttl(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.write.keys_with_ttl.load(Ordering::Relaxed))
            .sum()
    }

    /// The last sequence number taken in `shard`.
    pub fn shard_seq(&self, shard: usize) -> u64 {
        self.slots[shard].write.last_seq.load(Ordering::Acquire)
    }

    /// The store's counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }
}

/// Inspection for tests and models (feature `testing`): what a copy holds, whatever its role.
#[cfg(feature = "testing")]
impl<S: Shard> ShardedStore<S> {
    /// Reads `key` from copy `copy` of its shard: its value, version and deadline.
    pub fn read_copy(&self, copy: usize, key: &[u8]) -> Option<(Vec<u8>, u64, Tick)> {
        self.copy(self.shard_of(key), copy).read(key, |e| {
            e.map(|(r, e)| (r.value().to_vec(), e.version, e.deadline))
        })
    }

    /// Every entry of copy `copy` of `shard` as (key, value, version), sorted by key.
    pub fn copy_contents(&self, copy: usize, shard: usize) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
        let mut out = Vec::new();
        self.copy(shard, copy)
            .for_each(|r, e| out.push((r.key().to_vec(), r.value().to_vec(), e.version)));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Visits every entry of `shard`'s primary (a weak snapshot; see [`Shard::for_each`]).
    pub fn for_each_in_shard(&self, shard: usize, f: impl FnMut(&Record, &Entry)) {
        self.slots[shard].primary_map().for_each(f)
    }
}
