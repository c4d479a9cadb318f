//! The sharded store: routing a key to its shard, limits, versions and the writer section.
//!
//! A key is hashed with a keyed `foldhash` (seeded at start-up, so clients cannot aim
//! collisions at one shard) and the hash picks one of N shards (N a power of two). Every shard
//! is a [`Shard`]: [`LockFreeShard`] (papaya) by default, or [`RwLockShard`], the baseline, so
//! benches and the server can swap them.
//!
//! ## Reads
//! A read looks the key up in its shard and checks the entry's deadline against the coarse
//! clock: an expired entry is answered as absent and counted, never returned, and never
//! removed (reads do not write; only the expiry thread removes).
//!
//! ## Writes and the writer section
//! Each shard has a sequence number; every accepted write (set, delete, expiry) takes the next
//! one, and it becomes the entry's version. Writers to one shard pass through a short writer
//! section (a mutex per shard) that covers: checking a condition, taking the sequence number,
//! writing the map, arming the expiry timer and handing the write to consumers (replicas). This
//! is the answer to the ordering trap of a lock-free map: with `fetch_add` then insert, two
//! writers of one key could land in the map in the opposite order to their sequence numbers.
//! Under the section, map order = sequence order = the order consumers see. Reads never enter it,
//! so they stay lock-free with `LockFreeShard`.
//!
//! ## Expiry timers
//! A write with a TTL arms at most one timer per key: when the key already has a pending timer
//! that fires no later than the new deadline, the new entry inherits it (`Entry::timer_at`) and
//! the expiry thread re-arms it when it fires. The request goes on a bounded lock-free queue to
//! the expiry thread; when the queue is full the writer does not wait: it flags its shard for a
//! sweep, which the expiry thread runs.
//!
//! Must never: return an expired value, let a stale timer remove a newer write, or change
//! anything when a request is rejected (all validation happens before the writer section).

mod entry;
#[cfg(not(shardkv_loom))]
mod lockfree;
mod record;
mod rwlock;

use std::time::Duration;

use crossbeam_utils::CachePadded;
use foldhash::fast::RandomState;
use std::hash::BuildHasher;

pub use entry::{Entry, EntryMeta};
#[cfg(not(shardkv_loom))]
pub use lockfree::LockFreeShard;
#[cfg(shardkv_loom)]
pub use record::break_release_for_model;
pub use record::Record;
pub use rwlock::RwLockShard;

use crate::clock::{Clock, Tick, NEVER};
use crate::counter::StripedCounter;
use crate::replication::{Op, Replication, MAX_REPLICAS};
#[cfg(not(shardkv_loom))]
use crate::sync::Arc;
use crate::sync::{lock, AtomicBool, AtomicU64, AtomicUsize, BoundedQueue, Mutex, Ordering};

/// One shard's map. Both implementations sit behind this trait so the store, the benches and
/// the server can swap them.
///
/// Mutating methods (`upsert`, `remove`) are only called inside the store's writer section for
/// that shard, so an implementation never sees two concurrent writers; it must allow readers
/// concurrently with the writer.
pub trait Shard: Send + Sync + 'static {
    /// The name used on the command line and in the dashboard.
    const KIND: &'static str;
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
    /// Removes every entry (replica re-sync only; inside the writer section).
    fn clear(&self);
    /// Completes a table resize in progress, if the map resizes a little per write (so readers
    /// stop searching two tables). The expiry thread calls it every step, outside any writer
    /// section. A no-op for maps that resize in one go.
    fn finish_resize(&self) {}
    /// Visits every entry (a weak snapshot for `LockFreeShard`: concurrent writes may or may
    /// not be seen). `f` must not write to this shard.
    fn for_each(&self, f: impl FnMut(&Record, &Entry));
}

/// Why the store refused a request. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key is empty.
    #[error("key must not be empty")]
    EmptyKey,
    /// The key is longer than the configured maximum.
    #[error("key is {len} bytes; the maximum is {max} bytes (--max-key-bytes)")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is larger than the configured maximum.
    #[error("value is {len} bytes; the maximum is {max} bytes (--max-value-bytes)")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Storing this would take the store past its memory limit.
    #[error("memory limit reached: about {used} of --max-memory {limit} bytes are in use; reads and deletes still work, delete keys or raise the limit to write more")]
    MemoryFull {
        /// Estimated bytes in use (all copies).
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// A TTL of zero was given.
    #[error("ttl must be positive")]
    TtlNotPositive,
    /// A conditional write found a different state than it required.
    #[error("precondition failed: the key's current version is {}", current.map_or("none (absent)".to_string(), |v| v.to_string()))]
    PreconditionFailed {
        /// The key's live version, or `None` when absent.
        current: Option<u64>,
    },
    /// The append-only log cannot be written, so writes are refused (as Redis's MISCONF).
    #[error("writes are refused because the append-only log cannot be written ({reason}); reads still work, and writes resume by themselves once a log write and a snapshot succeed (check free space and the disk under --data-dir)")]
    LogUnavailable {
        /// The I/O error and the file it happened on.
        reason: String,
    },
    /// The server is shutting down and takes no more writes.
    #[error("the server is shutting down and accepts no more writes; retry once it is back")]
    ShuttingDown,
}

/// What a conditional write requires of the key's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Write whatever is there.
    #[default]
    Always,
    /// Write only if the key is live with exactly this version (`If-Match`).
    IfVersion(u64),
    /// Write only if the key is absent or expired (`If-None-Match: *`).
    IfAbsent,
    /// Write only if the key is live, whatever its version (`If-Match: *`).
    IfPresent,
    /// Write only if the key is live with one of these versions (`If-Match` with a list).
    IfVersionIn(Versions),
    /// Write only if the key is absent or expired, or live with none of these versions
    /// (`If-None-Match` with entity tags).
    IfNoneOf(Versions),
}

impl Condition {
    /// Whether the condition holds for a key whose live version is `live` (`None`: absent or
    /// expired).
    pub fn holds(&self, live: Option<u64>) -> bool {
        match self {
            Condition::Always => true,
            Condition::IfVersion(v) => live == Some(*v),
            Condition::IfAbsent => live.is_none(),
            Condition::IfPresent => live.is_some(),
            Condition::IfVersionIn(set) => live.is_some_and(|v| set.contains(v)),
            Condition::IfNoneOf(set) => live.is_none_or(|v| !set.contains(v)),
        }
    }
}

/// The most versions a [`Versions`] list holds.
pub const MAX_CONDITION_VERSIONS: usize = 16;

/// A short list of versions (the entity tags of one conditional header), kept inline so a
/// [`Condition`] stays `Copy` and costs no allocation inside the writer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    len: usize,
    items: [u64; MAX_CONDITION_VERSIONS],
}

impl Versions {
    /// An empty list (a condition on it never matches a version).
    pub const fn new() -> Versions {
        Versions {
            len: 0,
            items: [0; MAX_CONDITION_VERSIONS],
        }
    }

    /// Adds `version`; returns `false` (and changes nothing) when the list is full.
    pub fn push(&mut self, version: u64) -> bool {
        if self.len == MAX_CONDITION_VERSIONS {
            return false;
        }
        self.items[self.len] = version;
        self.len += 1;
        true
    }

    /// Whether `version` is in the list.
    pub fn contains(&self, version: u64) -> bool {
        self.as_slice().contains(&version)
    }

    /// The versions, in the order they were added.
    pub fn as_slice(&self) -> &[u64] {
        &self.items[..self.len]
    }
}

/// An entry handed out of a shard: a live value found by [`ShardedStore::get`], or one entry
/// of a shard's copy (snapshots and replica re-syncs; those may include expired entries).
#[derive(Debug, Clone)]
pub struct Found {
    /// The stored key and value: a handle to the store's own allocation (a reference-count
    /// increment, no copy), so the value can be sent after the map's guard is gone.
    pub record: Record,
    /// The entry's version.
    pub version: u64,
    /// The entry's deadline tick, or [`NEVER`].
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

/// A request from a writer to the expiry thread: arm a timer for `key` at `at`.
#[derive(Debug)]
pub struct TimerRequest {
    /// The key's shard.
    pub shard: u32,
    /// The key.
    pub key: Box<[u8]>,
    /// The tick at which the timer fires.
    pub at: Tick,
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
    /// The most memory the stored data may take, estimated (see [`ENTRY_OVERHEAD`]), counting
    /// every copy; writes that would go past it are refused. `u64::MAX` for no limit.
    pub max_memory: u64,
    /// Replica copies of every shard besides its primary (at most 63).
    pub replicas: usize,
    /// Capacity of each replica's apply queue; a replica that falls further behind is marked
    /// stale and re-synced from the primary.
    pub replica_queue_capacity: usize,
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
            replica_queue_capacity: 1 << 16,
        }
    }
}

/// Bytes counted per entry and per copy beyond its key and value: papaya's 32-byte node, the
/// map slot at half load, the record's 12-byte header and allocator rounding (an estimate from
/// the bytes-per-key measurement in `perf/RESULTS.md`). A replica shares the primary's record,
/// so it costs this per entry and nothing for the key and value.
pub const ENTRY_OVERHEAD: u64 = 80;

/// `(4 × available cores).next_power_of_two()`, DashMap's choice.
pub fn default_shard_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).next_power_of_two()
}

/// One shard: its copies (the primary and its replicas), its writer section and counters.
pub(crate) struct Slot<S> {
    /// Copy `c` of this shard's map; `copies[primary]` serves reads and writes.
    pub(crate) copies: Box<[S]>,
    /// Which copy is primary. Read lock-free on every request; changed only inside the writer
    /// section (failover), so a writer always sees a stable value.
    pub(crate) primary: AtomicUsize,
    /// Bit `c` set: copy `c` of this shard is marked failed (takes no writes, serves nothing).
    pub(crate) failed: AtomicU64,
    /// The writer section; holds the shard's last sequence number.
    pub(crate) writer: CachePadded<Mutex<u64>>,
    /// The last sequence number taken, published for lag and acknowledgement checks.
    pub(crate) last_seq: AtomicU64,
    /// Live keys with a TTL (kept on insert/remove).
    keys_with_ttl: AtomicU64,
    /// Estimated bytes held by this shard, all copies counted (keys and values once,
    /// [`ENTRY_OVERHEAD`] per copy).
    bytes: AtomicU64,
    /// Set by a writer whose timer request did not fit in the queue, or by a failover (the new
    /// primary's entries need their timers armed).
    pub(crate) needs_sweep: AtomicBool,
    /// Bit `c` set: failed copy `c` is being re-synced, so writers queue this shard's writes to
    /// it again although it still counts as failed (changed only inside the writer section).
    pub(crate) joining: AtomicU64,
}

impl<S: Shard> Slot<S> {
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
    /// replaced or removed, `new` the stored value's length and deadline.
    fn account(&self, key_len: usize, old: Option<EntryMeta>, new: Option<(usize, Tick)>) {
        let copies = self.copies.len() as u64;
        let size = |value_len: usize| key_len as u64 + value_len as u64 + copies * ENTRY_OVERHEAD;
        if let Some(old) = old {
            self.bytes.fetch_sub(size(old.value_len), Ordering::Relaxed);
            if old.deadline != NEVER {
                self.keys_with_ttl.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if let Some((value_len, deadline)) = new {
            self.bytes.fetch_add(size(value_len), Ordering::Relaxed);
            if deadline != NEVER {
                self.keys_with_ttl.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The copy that serves this shard now.
    #[inline]
    pub(crate) fn primary_map(&self) -> &S {
        &self.copies[self.primary.load(Ordering::Acquire)]
    }
}

/// Counters the store keeps for the dashboard.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Reads that found an expired entry (answered as absent).
    pub expired_on_read: StripedCounter,
    /// Entries removed by the expiry thread.
    pub expired_by_wheel: StripedCounter,
    /// Writes a replica's full queue could not take (that replica was marked stale).
    pub replica_overflows: StripedCounter,
    /// Timer requests that did not fit the queue (their shard was swept instead).
    pub timer_queue_overflows: StripedCounter,
    /// Re-syncs of a stale replica that completed (it went live again).
    pub replica_resyncs: StripedCounter,
}

/// N shards of `S` behind one routing hash.
pub struct ShardedStore<S: Shard> {
    pub(crate) slots: Box<[Slot<S>]>,
    mask: u64,
    router: RandomState,
    clock: Clock,
    config: StoreConfig,
    timers: BoundedQueue<TimerRequest>,
    pub(crate) stats: StoreStats,
    pub(crate) replication: Replication,
    /// The append-only log, once persistence is on.
    #[cfg(not(shardkv_loom))]
    pub(crate) log: std::sync::OnceLock<Arc<crate::persistence::LogSink>>,
    #[cfg(shardkv_loom)]
    broken_expiry_check: AtomicBool,
}

impl<S: Shard> ShardedStore<S> {
    /// A store with `config`, reading time from `clock`.
    pub fn new(config: StoreConfig, clock: Clock) -> Self {
        let shards = config.shards.max(1).next_power_of_two();
        let replicas = config.replicas.min(MAX_REPLICAS);
        let per_shard = config.initial_capacity.div_ceil(shards);
        let slots = (0..shards)
            .map(|_| Slot {
                copies: (0..=replicas)
                    .map(|_| S::with_capacity(per_shard, RandomState::default()))
                    .collect(),
                primary: AtomicUsize::new(0),
                failed: AtomicU64::new(0),
                writer: CachePadded::new(Mutex::new(0)),
                last_seq: AtomicU64::new(0),
                keys_with_ttl: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                needs_sweep: AtomicBool::new(false),
                joining: AtomicU64::new(0),
            })
            .collect();
        ShardedStore {
            slots,
            mask: shards as u64 - 1,
            router: RandomState::default(),
            clock,
            timers: BoundedQueue::new(config.timer_queue_capacity),
            config: StoreConfig {
                shards,
                replicas,
                ..config
            },
            stats: StoreStats::default(),
            replication: Replication::new(replicas + 1, shards, config.replica_queue_capacity),
            #[cfg(not(shardkv_loom))]
            log: std::sync::OnceLock::new(),
            #[cfg(shardkv_loom)]
            broken_expiry_check: AtomicBool::new(false),
        }
    }

    /// The shard `key` lives in.
    #[inline]
    pub fn shard_of(&self, key: &[u8]) -> usize {
        (self.router.hash_one(key) & self.mask) as usize
    }

    /// The store's clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The configuration in force (shard count rounded to a power of two).
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The shard implementation's name.
    pub fn kind(&self) -> &'static str {
        S::KIND
    }

    /// Checks a key against the limits.
    pub fn validate_key(&self, key: &[u8]) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if key.len() > self.config.max_key_bytes {
            return Err(StoreError::KeyTooLong {
                len: key.len(),
                max: self.config.max_key_bytes,
            });
        }
        Ok(())
    }

    /// Checks a value's length against the limit.
    pub fn validate_value_len(&self, len: usize) -> Result<(), StoreError> {
        if len > self.config.max_value_bytes {
            return Err(StoreError::ValueTooLarge {
                len,
                max: self.config.max_value_bytes,
            });
        }
        Ok(())
    }

    /// Estimated bytes the stored data takes, all copies counted.
    pub fn memory_used(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Refuses writes of `entries` new entries holding `data_bytes` of keys and values in all
    /// that would take the estimate past the memory limit.
    pub fn check_memory(&self, data_bytes: u64, entries: u64) -> Result<(), StoreError> {
        let limit = self.config.max_memory;
        if limit == u64::MAX {
            return Ok(());
        }
        let used = self.memory_used();
        let copies = self.slots[0].copies.len() as u64;
        let additional = data_bytes
            .saturating_add(entries.saturating_mul(copies.saturating_mul(ENTRY_OVERHEAD)));
        if used.saturating_add(additional) > limit {
            return Err(StoreError::MemoryFull { used, limit });
        }
        Ok(())
    }

    /// Reads `key`. Never returns an entry whose deadline has been reached.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Lookup {
        let slot = &self.slots[self.shard_of(key)];
        let now = self.clock.now();
        let lookup = slot.primary_map().read(key, |entry| match entry {
            None => Lookup::Miss,
            Some((_, e)) if e.is_expired(now) => Lookup::Expired,
            Some((record, e)) => Lookup::Hit(Found {
                record: record.clone(),
                version: e.version,
                deadline: e.deadline,
            }),
        });
        if lookup == Lookup::Expired {
            self.stats.expired_on_read.incr();
        }
        lookup
    }

    /// Stores `value` under `key`, with an optional TTL, if `condition` holds. A write without
    /// a TTL removes any earlier TTL (as Redis `SET` does). Returns the new version.
    pub fn set(
        &self,
        key: &[u8],
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        condition: Condition,
    ) -> Result<u64, StoreError> {
        let value = value.as_ref();
        self.validate_key(key)?;
        self.validate_value_len(value.len())?;
        let deadline = match ttl {
            None => NEVER,
            Some(ttl) if ttl.is_zero() => return Err(StoreError::TtlNotPositive),
            Some(ttl) => self.clock.deadline_after(ttl),
        };
        self.check_memory((key.len() + value.len()) as u64, 1)?;
        // The one copy of the value: out of the request, into the store's own allocation.
        self.write(Record::new(key, value), deadline, condition)
    }

    /// Stores every `(key, value, ttl)` of a batch, or none of them: every item is validated
    /// and the memory limit is checked once, for the whole batch, before the first write; the
    /// writes then go through without checking memory again (as Redis checks `maxmemory` once
    /// per command), so other writers cannot make the batch stop half-way. The writer sections
    /// of every shard the batch touches are held for the whole batch, and the log admits the
    /// batch once, so a log failure or shutdown cannot split it either. Returns each item's
    /// new version, in order. Readers are not held: a reader may see some items before the
    /// others.
    pub fn set_all<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        items: &[(K, V, Option<Duration>)],
    ) -> Result<Vec<u64>, StoreError> {
        let mut data_bytes = 0u64;
        for (key, value, ttl) in items {
            let (key, value) = (key.as_ref(), value.as_ref());
            self.validate_key(key)?;
            self.validate_value_len(value.len())?;
            if ttl.is_some_and(|ttl| ttl.is_zero()) {
                return Err(StoreError::TtlNotPositive);
            }
            data_bytes = data_bytes.saturating_add((key.len() + value.len()) as u64);
        }
        self.check_memory(data_bytes, items.len() as u64)?;
        // Every shard the batch writes to, with how many versions it takes there.
        let mut per_shard = std::collections::BTreeMap::<usize, u64>::new();
        for (key, _, _) in items {
            *per_shard.entry(self.shard_of(key.as_ref())).or_default() += 1;
        }
        // Hold those shards' writer sections for the whole batch, taken in ascending order (the
        // only place that holds two: no deadlock), and ask the log once per shard, so it
        // cannot refuse half-way through either.
        let mut sections = std::collections::BTreeMap::new();
        for (&shard, &count) in &per_shard {
            let seq = lock(&self.slots[shard].writer);
            #[cfg(not(shardkv_loom))]
            if let Some(log) = self.log.get() {
                log.admit(*seq + count)?;
            }
            #[cfg(shardkv_loom)]
            let _ = count;
            sections.insert(shard, seq);
        }
        items
            .iter()
            .map(|(key, value, ttl)| {
                let deadline = ttl.map_or(NEVER, |ttl| self.clock.deadline_after(ttl));
                let record = Record::new(key.as_ref(), value.as_ref());
                let shard = self.shard_of(record.key());
                let seq = sections.get_mut(&shard).expect("locked above");
                self.write_in_section(seq, shard, record, deadline, Condition::Always)
            })
            .collect()
    }

    /// The writer section of a set, after validation.
    fn write(
        &self,
        record: Record,
        deadline: Tick,
        condition: Condition,
    ) -> Result<u64, StoreError> {
        let shard = self.shard_of(record.key());
        let mut seq = lock(&self.slots[shard].writer);
        #[cfg(not(shardkv_loom))]
        if let Some(log) = self.log.get() {
            // Inside the section: a write admitted here is queued before any shutdown drain.
            log.admit(*seq + 1)?;
        }
        self.write_in_section(&mut seq, shard, record, deadline, condition)
    }

    /// A set inside `shard`'s writer section (`seq` is the section's sequence number), already
    /// admitted by the log.
    fn write_in_section(
        &self,
        seq: &mut u64,
        shard: usize,
        record: Record,
        deadline: Tick,
        condition: Condition,
    ) -> Result<u64, StoreError> {
        let key = record.key();
        let value_len = record.value_len();
        let slot = &self.slots[shard];
        // Read inside the section: a `now` read before waiting for the lock could judge a key
        // live that expired while this writer waited.
        let now = self.clock.now();
        let version = *seq + 1;
        // One lookup: the condition is checked, and the pending timer inherited, on the entry
        // the map hands to `compute` (stable: writers of this shard are serialised here).
        let old = slot.primary_map().try_upsert(record.clone(), |current| {
            let live_version = current.filter(|e| e.deadline > now).map(|e| e.version);
            if !condition.holds(live_version) {
                return Err(StoreError::PreconditionFailed {
                    current: live_version,
                });
            }
            // One pending timer per key: inherit the current one if it fires no later than
            // ours (a write without TTL keeps tracking it too, so TTL/no-TTL alternation costs
            // nothing).
            let inherited = current.map_or(NEVER, |e| e.timer_at());
            let entry = Entry::new(version, deadline);
            entry.set_timer_at(inherited.min(deadline));
            Ok(entry)
        })?;
        *seq = version;
        let inherited = old.map_or(NEVER, |m| m.timer_at);
        let timer_at = inherited.min(deadline);
        slot.account(key.len(), old, Some((value_len, deadline)));
        if deadline != NEVER && timer_at != inherited {
            self.request_timer(shard, key, timer_at);
        }
        self.publish(shard, version, || Op::Set {
            record: record.clone(),
            deadline,
        });
        Ok(version)
    }

    /// Removes `key`. Returns whether a live entry was removed (an expired one is removed
    /// too, but reported as absent, as Redis `DEL` does).
    pub fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.delete_if(key, Condition::Always)?.is_some())
    }

    /// Removes `key` if it is live and `condition` holds for it, judged inside the writer
    /// section. Returns the removal's version (its sequence number: wait for exactly this one
    /// to acknowledge it), or `None` when no live entry was there (an expired one is removed
    /// but reported as absent). An absent key is absent whatever the condition: as RFC 9110
    /// §13.2.1 has it, a request that would fail anyway ignores its preconditions.
    pub fn delete_if(&self, key: &[u8], condition: Condition) -> Result<Option<u64>, StoreError> {
        self.validate_key(key)?;
        self.remove(key, condition)
    }

    /// The writer section of a delete, after validation.
    fn remove(&self, key: &[u8], condition: Condition) -> Result<Option<u64>, StoreError> {
        let shard = self.shard_of(key);
        let slot = &self.slots[shard];
        let mut seq = lock(&slot.writer);
        let now = self.clock.now();
        // Stable while the section is held: only writers of this shard change it.
        let current = slot
            .primary_map()
            .read(key, |e| e.map(|(_, e)| (e.version, e.deadline)));
        let Some((version, deadline)) = current else {
            return Ok(None);
        };
        let live = deadline > now;
        if live && !condition.holds(Some(version)) {
            return Err(StoreError::PreconditionFailed {
                current: Some(version),
            });
        }
        // A delete is a write: refused while the log is failed or the server shuts down. It
        // hands out no version (no ETag), so the version lease does not apply to it.
        #[cfg(not(shardkv_loom))]
        if let Some(log) = self.log.get() {
            log.check_writable()?;
        }
        let Some(old) = slot.primary_map().remove(key) else {
            return Ok(None);
        };
        *seq += 1;
        let removal = *seq;
        slot.account(key.len(), Some(old), None);
        self.record_removal(shard, removal, key);
        drop(seq);
        Ok(live.then_some(removal))
    }

    /// Publishes a removal that took sequence number `seq` (inside the writer section).
    fn record_removal(&self, shard: usize, seq: u64, key: &[u8]) {
        self.publish(shard, seq, || Op::Remove { key: key.into() });
    }

    /// Hands the write that took `seq` in `shard` to its consumers, in sequence order (inside
    /// the writer section): the published sequence number, the replicas and the log.
    fn publish(&self, shard: usize, seq: u64, op: impl Fn() -> Op) {
        self.slots[shard].last_seq.store(seq, Ordering::Release);
        self.replicate(shard, seq, &op);
        #[cfg(not(shardkv_loom))]
        if let Some(log) = self.log.get() {
            log.append(shard, seq, op());
        }
    }

    /// Loads one record from disk at start-up: a set with its absolute deadline (a deadline
    /// already passed removes the key), or a removal. Bypasses the size limits (what was stored
    /// stays loadable if the limits shrink) and takes a fresh version, above every version on
    /// disk once [`ShardedStore::raise_versions`] has run.
    pub fn restore(&self, key: &[u8], set: Option<(&[u8], Tick)>) {
        match set {
            Some((value, deadline)) if deadline > self.clock.now() => {
                // Condition::Always cannot fail.
                let _ = self.write(Record::new(key, value), deadline, Condition::Always);
            }
            _ => {
                // Condition::Always cannot fail.
                let _ = self.remove(key, Condition::Always);
            }
        }
    }

    /// A copy of `shard`'s entries and a sequence *fence* (snapshots): every write up to the
    /// fence is in the copy; later writes may or may not be, so the writes after the fence (the
    /// log from the fence on) must be replayed over it, in order.
    ///
    /// Only the fence is read inside the writer section; the copy runs outside it, so writers
    /// of the shard never wait for a copy of the whole shard.
    pub fn snapshot_shard(&self, shard: usize) -> (Vec<Found>, u64) {
        let slot = &self.slots[shard];
        // Every write up to the fence has finished its map write: it holds the section.
        let fence = *lock(&slot.writer);
        (slot.collect_primary(), fence)
    }

    /// Makes every shard's next version greater than `floor` (start-up, before restoring), so
    /// versions never repeat across a restart and a stale `ETag` can never match again. The
    /// replicas, as empty as their primaries, count as having applied everything up to it.
    pub fn raise_versions(&self, floor: u64) {
        for (shard, slot) in self.slots.iter().enumerate() {
            let mut seq = lock(&slot.writer);
            *seq = (*seq).max(floor);
            slot.last_seq.store(*seq, Ordering::Release);
            self.raise_applied(shard, *seq);
        }
    }

    fn request_timer(&self, shard: usize, key: &[u8], at: Tick) {
        let request = TimerRequest {
            shard: shard as u32,
            key: key.into(),
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
            slot.needs_sweep.store(true, Ordering::Release);
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
        let meta = |e: Option<(&Record, &Entry)>| e.map(|(r, e)| e.meta(r.value_len()));
        let Some(seen) = slot.primary_map().read(key, meta) else {
            return TimerOutcome::Gone;
        };
        let mut seq = lock(&slot.writer);
        let current = slot.primary_map().read(key, meta);
        // The decision is taken on the entry as it is inside the writer section, not on what
        // was seen before entering it (a write may have landed in between).
        let basis = if self.expiry_check_disabled() {
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
            slot.account(key.len(), Some(old), None);
            self.stats.expired_by_wheel.incr();
            self.record_removal(shard, *seq, key);
        }
        TimerOutcome::Expired
    }

    /// If `shard` was flagged (its timer requests overflowed the queue, or it was promoted by a
    /// failover), clears the flag and arms a timer for every key with a TTL and none
    /// responsible for it: calls `arm(key, tick)` for each. Returns whether the shard was swept.
    pub fn sweep_if_flagged(&self, shard: usize, mut arm: impl FnMut(Box<[u8]>, Tick)) -> bool {
        let slot = &self.slots[shard];
        if !slot.needs_sweep.swap(false, Ordering::AcqRel) {
            return false;
        }
        // Keys with a TTL and no responsible timer: their request overflowed the queue, or they
        // were promoted from a replica (replica entries carry no timer bookkeeping).
        let unarmed = |e: &Entry| e.has_ttl() && e.timer_at() == NEVER;
        let mut keys = Vec::new();
        slot.primary_map().for_each(|record, entry| {
            if unarmed(entry) {
                keys.push(Box::<[u8]>::from(record.key()));
            }
        });
        for key in keys {
            let _seq = lock(&slot.writer);
            let deadline = slot.primary_map().read(&key, |e| {
                e.map(|(_, e)| e).filter(|e| unarmed(e)).map(|e| {
                    e.set_timer_at(e.deadline);
                    e.deadline
                })
            });
            if let Some(deadline) = deadline {
                arm(key, deadline);
            }
        }
        true
    }

    /// Completes any table resize in progress in every copy of every shard (see
    /// [`Shard::finish_resize`]); the expiry thread calls this every step.
    pub fn finish_resizes(&self) {
        for slot in self.slots.iter() {
            for copy in slot.copies.iter() {
                copy.finish_resize();
            }
        }
    }

    /// Refuses every later write ("shutting down"), then waits until no write admitted before
    /// is still inside its writer section: after this returns, nothing new reaches the log.
    #[cfg(not(shardkv_loom))]
    pub fn close_writes(&self) {
        if let Some(log) = self.log.get() {
            log.refuse_writes_for_shutdown();
        }
        for slot in self.slots.iter() {
            drop(lock(&slot.writer));
        }
    }

    /// The append-only log, when persistence is on.
    #[cfg(not(shardkv_loom))]
    pub fn log_sink(&self) -> Option<&Arc<crate::persistence::LogSink>> {
        self.log.get()
    }

    /// Number of shards.
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
            .map(|s| s.keys_with_ttl.load(Ordering::Relaxed))
            .sum()
    }

    /// The last sequence number taken in `shard`.
    pub fn shard_seq(&self, shard: usize) -> u64 {
        self.slots[shard].last_seq.load(Ordering::Acquire)
    }

    /// The store's counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Visits every entry of `shard` (a weak snapshot; see [`Shard::for_each`]).
    pub fn for_each_in_shard(&self, shard: usize, f: impl FnMut(&Record, &Entry)) {
        self.slots[shard].primary_map().for_each(f)
    }

    #[cfg(shardkv_loom)]
    fn expiry_check_disabled(&self) -> bool {
        self.broken_expiry_check.load(Ordering::Relaxed)
    }

    #[cfg(not(shardkv_loom))]
    #[inline(always)]
    fn expiry_check_disabled(&self) -> bool {
        false
    }

    /// Test-only switch for the loom models: makes `on_timer` decide on the entry it saw
    /// before entering the writer section, i.e. drops the check that protects a newer write.
    /// A model run with it on must fail, which shows the model can catch the bug.
    #[cfg(shardkv_loom)]
    pub fn break_expiry_check_for_model(&self) {
        self.broken_expiry_check.store(true, Ordering::Relaxed);
    }
}
