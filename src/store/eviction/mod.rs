//! Eviction: with a memory cap and a policy other than `noeviction`, a write that needs room
//! makes it by removing the keys the policy values least, instead of being refused.
//!
//! ## Design
//! Redis samples `maxmemory-samples` random keys per eviction and keeps the 16 best candidates
//! between rounds. papaya has no random slot to sample from (its only way in is an iterator
//! from the table's start), so here the sample is a **walk**: a cursor goes through each
//! shard's table in its own order — which is hash order, so consecutive entries are as good a
//! sample as random ones — ranks every entry it passes (`access::rank`) and offers them to a
//! small [`Pool`] of the best candidates. The walk runs on the eviction thread
//! (`crate::eviction`), ahead of the writers: every candidate a writer takes owes the walk
//! `maxmemory-samples` more entries, so each eviction is chosen from as many fresh samples as
//! Redis's, plus the pool.
//!
//! A writer that needs room ([`ShardedStore::make_room`], before it enters any writer section)
//! pops the best candidate and evicts it in the candidate's shard's writer section, **only if**
//! the entry there is still the version and access word that were sampled: a write or a read
//! since makes the candidate stale, and it is dropped. So eviction never removes a newer write
//! and never a key read after it was ranked. The removal is an ordinary one: it takes the
//! shard's next version and is published to the change stream, so replicas and the log apply
//! it and a restart cannot bring the key back.
//!
//! A writer holds at most the victim's section, and never its own shard's section while it
//! evicts: holding shard t's section while waiting for shard s's could deadlock. A writer
//! that finds the pool empty (the thread is behind, or the store runs without it) ranks a few
//! entries itself from the start of a random shard: a biased sample, but a bounded one.
//!
//! Expired entries rank above every live one, so a walk that meets them reclaims them first
//! (counted as expired, not evicted); the expiry wheel reclaims the rest within its lag.
//!
//! Reads keep each record's access word (`access`), a relaxed atomic written at most once per
//! 4 ms (recency) or when the logarithmic counter moves (frequency): the one exception to "the
//! read path never writes".
//!
//! Must never: evict while holding a writer section of the writer's own shard, evict an entry
//! other than the one sampled, evict a key without a TTL under a `volatile-*` policy, or make a
//! writer walk a whole shard.

pub mod access;
mod policy;
mod pool;

use std::time::{Duration, Instant};

pub use policy::{EvictionPolicy, Ranking, UnknownPolicy};
pub use pool::{Candidate, POOL_CAPACITY};

use super::change::Admission;
use super::{Record, Shard, ShardedStore, StoreError, TimerTarget};
use crate::sync::{lock, AtomicBool, AtomicU8, AtomicUsize, Mutex, Ordering};
use pool::Pool;

/// How long one write spends evicting, once it has evicted a key, before it goes ahead anyway
/// (Redis's limit at its default `maxmemory-eviction-tenacity`).
pub const EVICTION_TIME_LIMIT: Duration = Duration::from_micros(500);

/// Redis's `maxmemory-samples` default.
pub const DEFAULT_SAMPLES: usize = 5;

/// Redis's `maxmemory-samples` range.
pub const MAX_SAMPLES: usize = 64;

/// How long a writer that needs room waits, in all, for candidates while something is
/// evictable, before it is refused as if nothing were.
const WRITER_PATIENCE: Duration = Duration::from_secs(1);

/// The longest one walk keeps a shard's table open (a papaya guard delays the reclamation of
/// that shard's retired entries while it is held).
const WALK_HOLD: Duration = Duration::from_millis(20);

/// How long a writer that finds the pool empty waits for the eviction thread's candidates
/// before it ranks a few entries itself.
const THREAD_GRACE: Duration = Duration::from_millis(1);

/// Entries a lock-holding walk visits before it lets writers in again.
const SHORT_WALK: usize = 64;

/// The eviction state a store keeps. Every read loads `policy` (to keep its access word), so
/// the pool and the cursor, which writers and the walk lock, sit on cache lines of their own.
pub(crate) struct Eviction {
    policy: AtomicU8,
    samples: AtomicUsize,
    pool: crossbeam_utils::CachePadded<Pool>,
    cursor: crossbeam_utils::CachePadded<Mutex<Cursor>>,
    /// Whether an eviction thread runs for this store (writers then wait a moment for its
    /// candidates before ranking entries themselves).
    thread_running: AtomicBool,
}

/// Where the walk stands: the shard (slot index) and how many of its entries it has passed.
#[derive(Default)]
struct Cursor {
    slot: usize,
    position: usize,
}

impl Eviction {
    pub(crate) fn new(policy: EvictionPolicy) -> Eviction {
        Eviction {
            policy: AtomicU8::new(policy as u8),
            samples: AtomicUsize::new(DEFAULT_SAMPLES),
            pool: Default::default(),
            cursor: crossbeam_utils::CachePadded::new(Mutex::new(Cursor::default())),
            thread_running: AtomicBool::new(false),
        }
    }
}

/// What one sampling walk did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleReport {
    /// Entries ranked.
    pub examined: usize,
}

impl<S: Shard> ShardedStore<S> {
    /// The eviction policy in force.
    #[inline]
    pub fn eviction_policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_u8(self.eviction.policy.load(Ordering::Relaxed))
    }

    /// Changes the eviction policy (Redis's `CONFIG SET maxmemory-policy`). Candidates ranked
    /// by the old policy are dropped.
    pub fn set_eviction_policy(&self, policy: EvictionPolicy) {
        self.eviction.policy.store(policy as u8, Ordering::Relaxed);
        self.eviction.pool.clear();
    }

    /// Entries the walk ranks per eviction (Redis's `maxmemory-samples`).
    pub fn eviction_samples(&self) -> usize {
        self.eviction.samples.load(Ordering::Relaxed)
    }

    /// Sets `maxmemory-samples`, clamped to Redis's range 1..=64.
    pub fn set_eviction_samples(&self, samples: usize) {
        self.eviction
            .samples
            .store(samples.clamp(1, MAX_SAMPLES), Ordering::Relaxed);
    }

    /// Keeps `record`'s access word after a read at `now` (see [`access`]).
    #[inline]
    pub(crate) fn touch(&self, record: &Record, now: crate::clock::Tick) {
        if let Some(word) = access::word_after_read(self.eviction_policy(), record.access(), now) {
            record.set_access(word);
        }
    }

    /// Whether eviction could make room now: a policy that evicts, a cap, and an estimate
    /// within a quarter of it (below that, the walk does not run).
    pub fn eviction_active(&self) -> bool {
        let limit = self.max_memory();
        limit != u64::MAX
            && self.eviction_policy().evicts()
            && self.memory_used() >= limit - limit / 4
    }

    /// Makes room for a write of `entries` new entries holding `data_bytes` of keys and values
    /// (the same figures as the memory check): while the estimate plus the write would pass
    /// the cap and the policy evicts, evicts the best candidate. Refuses the write, as the
    /// memory check does, when the policy is `noeviction` or nothing evictable remains.
    ///
    /// Called before the writer enters any writer section (see the module documentation).
    ///
    /// A writer evicts for at most [`EVICTION_TIME_LIMIT`] once it has evicted something: far
    /// over the cap (it was just lowered), the write then goes ahead while the eviction thread
    /// and later writes bring the estimate down, as Redis accepts writes while its eviction
    /// is in progress.
    pub fn make_room(&self, data_bytes: u64, entries: u64) -> Result<(), StoreError> {
        self.make_room_within(data_bytes, entries, Some(EVICTION_TIME_LIMIT))
    }

    /// Evicts until the estimate is under the cap, however long it takes (the eviction
    /// thread, after the cap was lowered or a policy set). Returns whether it got there.
    pub fn evict_to_cap(&self) -> bool {
        self.make_room_within(0, 0, None).is_ok()
    }

    fn make_room_within(
        &self,
        data_bytes: u64,
        entries: u64,
        time_limit: Option<Duration>,
    ) -> Result<(), StoreError> {
        let limit = self.max_memory();
        if limit == u64::MAX {
            return Ok(());
        }
        let mut waited = Duration::ZERO;
        let started = Instant::now();
        let mut evicted = false;
        loop {
            let Err(full) = self.check_memory(data_bytes, entries) else {
                return Ok(());
            };
            if evicted && time_limit.is_some_and(|t| started.elapsed() >= t) {
                return Ok(());
            }
            let policy = self.eviction_policy();
            if !policy.evicts()
                || !self.holds_evictable(policy)
                || self.never_fits(data_bytes, entries)
            {
                return Err(full);
            }
            match self.eviction.pool.pop(self.eviction_samples()) {
                Some(candidate) => {
                    evicted |= self.evict(policy, candidate)?;
                }
                None => {
                    // Give the eviction thread, if one runs (and this is not it), a moment:
                    // its candidates come from an unbiased walk.
                    if time_limit.is_some()
                        && self.eviction.thread_running.load(Ordering::Relaxed)
                        && waited < THREAD_GRACE
                    {
                        self.eviction.pool.wait_for_supply(THREAD_GRACE);
                        waited += THREAD_GRACE;
                        continue;
                    }
                    // The eviction thread is behind (or there is none): rank a few entries
                    // ourselves, from the start of a shard picked at random. Never from the
                    // thread's cursor, which could mean skipping most of a shard to reach it.
                    let mut own = Cursor {
                        slot: fastrand::usize(..self.slots.len()),
                        position: 0,
                    };
                    let walked = self.walk_with(&mut own, self.eviction_samples() * 4, false);
                    if walked.examined == 0 {
                        if waited >= WRITER_PATIENCE {
                            return Err(full);
                        }
                        let nap = Duration::from_millis(1);
                        self.eviction.pool.wait_for_supply(nap);
                        waited += nap;
                    }
                }
            }
        }
    }

    /// Whether a write is larger than the cap by itself: evicting everything would not make
    /// room, so nothing is evicted for it.
    fn never_fits(&self, data_bytes: u64, entries: u64) -> bool {
        self.write_bytes(data_bytes, entries) > self.max_memory()
    }

    /// Whether anything the policy may evict is stored.
    fn holds_evictable(&self, policy: EvictionPolicy) -> bool {
        if policy.volatile_only() {
            self.keys_with_ttl() > 0
        } else {
            self.slots.iter().any(|s| !s.primary_map().is_empty())
        }
    }

    /// Evicts `candidate` if its entry is still the one sampled, inside its shard's writer
    /// section. Returns whether it removed it.
    fn evict(&self, policy: EvictionPolicy, candidate: Candidate) -> Result<bool, StoreError> {
        let shard = candidate.target.shard();
        let key = candidate.target.key();
        let slot = &self.slots[shard];
        let mut seq = self.section(shard);
        let now = self.clock().now();
        // Decided on the entry as it is inside the section: a write or a read since the sample
        // makes the candidate stale.
        let basis = if self.broken.is_on(super::BrokenStep::EvictionCheck as u8) {
            Some((candidate.version, candidate.access, now + 1))
        } else {
            slot.primary_map()
                .read(key, |e| e.map(|(r, e)| (e.version, r.access(), e.deadline)))
        };
        let Some((version, word, deadline)) = basis else {
            return Ok(false);
        };
        let expired = deadline <= now;
        if !expired
            && (version != candidate.version
                || word != candidate.access
                || (policy.volatile_only() && deadline == crate::clock::NEVER))
        {
            return Ok(false);
        }
        self.admit(shard, Admission::Removal)?;
        let Some(old) = slot.primary_map().remove(key) else {
            return Ok(false);
        };
        *seq += 1;
        slot.account(&self.bytes, key.len(), Some(old), None);
        if expired {
            self.stats.expired_by_eviction.incr();
        } else {
            self.stats.evicted_keys.incr();
        }
        self.publish_removal(shard, *seq, key);
        Ok(true)
    }

    /// Entries the walk should rank now (0 when eviction is not active or the pool is full).
    pub fn eviction_wanted(&self) -> usize {
        if !self.eviction_active() {
            return 0;
        }
        self.eviction.pool.wanted(self.eviction_samples())
    }

    /// Sleeps up to `timeout`, or until a writer takes a candidate (the eviction thread while
    /// eviction is off).
    pub fn sleep_until_eviction_needed(&self, timeout: Duration) {
        self.eviction.pool.sleep(timeout)
    }

    /// Waits up to `timeout` until the walk is owed work (the eviction thread, idle).
    pub fn wait_for_eviction_demand(&self, timeout: Duration) {
        self.eviction
            .pool
            .wait_for_demand(self.eviction_samples(), timeout)
    }

    /// Says whether an eviction thread runs for this store (it says so when it starts and
    /// stops).
    pub fn set_eviction_thread_running(&self, running: bool) {
        self.eviction
            .thread_running
            .store(running, Ordering::Relaxed);
    }

    /// One sampling walk, for the eviction thread: ranks at least `at_least` entries from the
    /// cursor on, offering them to the pool. A walk over a lock-free map keeps its table open
    /// while more work is owed (up to [`WALK_HOLD`]), so it does not pay to skip back to its
    /// place for every few candidates.
    pub fn sample_for_eviction(&self, at_least: usize) -> SampleReport {
        let mut cursor = lock(&self.eviction.cursor);
        self.walk_with(&mut cursor, at_least, true)
    }

    /// The walk itself; `linger`: keep a lock-free table open while work is owed.
    fn walk_with(&self, cursor: &mut Cursor, at_least: usize, linger: bool) -> SampleReport {
        let policy = self.eviction_policy();
        let mut report = SampleReport::default();
        if !policy.evicts() {
            return report;
        }
        let samples = self.eviction_samples();
        let started = Instant::now();
        let mut goal = at_least;
        let mut batch: Vec<Candidate> = Vec::with_capacity(16);
        // One lap over the shards at most: a store with nothing to offer stops here.
        for _ in 0..=self.slots.len() {
            if report.examined >= goal {
                break;
            }
            if cursor.slot >= self.slots.len() {
                cursor.slot = 0;
                cursor.position = 0;
            }
            let shard = cursor.slot;
            let slot = &self.slots[shard];
            let map = slot.primary_map();
            let nothing_here = map.is_empty()
                || (policy.volatile_only()
                    && slot.write.keys_with_ttl.load(Ordering::Relaxed) == 0);
            if nothing_here {
                cursor.slot += 1;
                cursor.position = 0;
                continue;
            }
            let now = self.clock().now();
            let mut pending = 0;
            let mut visited_here = 0;
            let walked = map.walk(cursor.position, |record, entry| {
                visited_here += 1;
                pending += 1;
                if !policy.volatile_only() || entry.has_ttl() {
                    batch.push(Candidate {
                        rank: access::rank(policy, record.access(), entry.deadline, now),
                        target: TimerTarget::new(shard, record.key()),
                        version: entry.version,
                        access: record.access(),
                    });
                }
                if batch.len() >= 16 || report.examined + pending >= goal {
                    self.eviction.pool.offer(&mut batch, pending);
                    report.examined += pending;
                    pending = 0;
                }
                if S::WALK_BLOCKS_WRITERS && visited_here >= SHORT_WALK {
                    // Let this shard's writers in; the next walk skips back to here.
                    return false;
                }
                if report.examined < goal {
                    return true;
                }
                if !linger || S::WALK_BLOCKS_WRITERS || started.elapsed() >= WALK_HOLD {
                    return false;
                }
                // Keep the table open while writers keep owing work.
                self.eviction
                    .pool
                    .wait_for_demand(samples, Duration::from_millis(2));
                let more = self.eviction_wanted();
                goal = report.examined + more;
                more > 0
            });
            if pending > 0 || !batch.is_empty() {
                self.eviction.pool.offer(&mut batch, pending);
                report.examined += pending;
            }
            if walked.finished {
                cursor.slot += 1;
                cursor.position = 0;
            } else {
                cursor.position += walked.visited;
            }
        }
        report
    }
}

impl<S: Shard> ShardedStore<S> {
    /// Test-only switch for the loom models: makes eviction decide on the candidate as it was
    /// sampled instead of the entry inside the writer section, i.e. drops the check that
    /// protects a newer write. A model run with it on must fail. Panics outside the loom build.
    #[cfg(feature = "testing")]
    pub fn break_eviction_check_for_model(&self) {
        self.broken.turn_on(super::BrokenStep::EvictionCheck as u8);
    }
}

/// What a key's access word says (Redis's `OBJECT IDLETIME` and `OBJECT FREQ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessReport {
    /// Under a recency policy (or `noeviction`): milliseconds since the last read or write.
    IdleMs(u64),
    /// Under an LFU policy: the logarithmic counter, decayed to now.
    Frequency(u8),
}

impl<S: Shard> ShardedStore<S> {
    /// Reads `key` in `db` without counting the read as an access (Redis's `OBJECT`, which
    /// looks a key up with `LOOKUP_NOTOUCH`); `None` when absent or expired.
    pub fn peek_in(&self, db: usize, key: &[u8]) -> Option<super::Found> {
        let now = self.clock().now();
        self.slots[self.shard_in(db, key)]
            .primary_map()
            .read(key, |e| {
                let (record, entry) = e?;
                (!entry.is_expired(now)).then(|| super::Found {
                    record: record.clone(),
                    version: entry.version,
                    deadline: entry.deadline,
                })
            })
    }

    /// What `key`'s access word in `db` says under the policy in force, without counting this
    /// look as an access (`OBJECT` does not touch the key); `None` when the key is absent or
    /// expired.
    pub fn access_in(&self, db: usize, key: &[u8]) -> Option<AccessReport> {
        let now = self.clock().now();
        let frequency = self.eviction_policy().counts_frequency();
        self.slots[self.shard_in(db, key)]
            .primary_map()
            .read(key, |e| {
                let (record, entry) = e?;
                if entry.is_expired(now) {
                    return None;
                }
                let word = record.access();
                Some(if frequency {
                    AccessReport::Frequency(access::decayed_counter(word, now))
                } else {
                    AccessReport::IdleMs(access::idle_ms(word, now))
                })
            })
    }
}
