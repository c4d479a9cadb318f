//! loom model of the eviction protocol, run on the real `ShardedStore` code: an eviction
//! decided on a sampled candidate races an overwrite of that key.
//!
//! The candidate pool is filled before the threads start (the main thread runs the sampling
//! walk), so the evicting thread never walks or waits: `make_room` pops candidates and evicts.
//! Two keys are sampled, `k` (older, so the LRU's first choice) and `j`; the cap is set so the
//! evictor needs exactly one eviction and the writer none. Whatever the interleaving, the
//! writer's `k = v2` must survive (a candidate sampled at v1 is stale once v2 is written, and
//! `j` goes instead), and the byte estimate must equal the entries' sizes at the end. A second
//! model adds k's expiry timer as a third party, with k@v1 already expired. Each model has a
//! broken variant (`break_eviction_check_for_model`) that must fail.
//!
//! Stand-ins (see `shardkv::sync`): the map is `RwLockShard` on loom's `RwLock`, the pool's
//! locks and condition variables are loom's, the clock is a manual loom-atomic clock.
//!
//! Run: `RUSTFLAGS="--cfg shardkv_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test eviction`.

#![cfg(shardkv_loom)]

use std::time::Duration;

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::expiry::Expirer;
use shardkv::store::{Condition, EvictionPolicy, RwLockShard, Shard, ShardedStore, StoreConfig};
use shardkv::sync::Arc;

/// Bytes an entry of a 1-byte key and a 2-byte value counts (key, value, one copy's overhead).
const ENTRY: u64 = 1 + 2 + <RwLockShard as Shard>::ENTRY_OVERHEAD;

fn set(store: &ShardedStore<RwLockShard>, key: &'static str, value: &'static str) -> u64 {
    set_ttl(store, key, value, None)
}

fn set_ttl(
    store: &ShardedStore<RwLockShard>,
    key: &'static str,
    value: &'static str,
    ttl_ms: Option<u64>,
) -> u64 {
    store
        .set(
            key.as_bytes(),
            Bytes::from_static(value.as_bytes()),
            ttl_ms.map(Duration::from_millis),
            Condition::Always,
        )
        .unwrap()
        .version
}

/// The estimate must be exactly what the entries held take.
fn assert_estimate_exact(store: &ShardedStore<RwLockShard>) {
    let mut held = 0u64;
    store.for_each_in_shard(0, |record, entry| {
        held += record.key().len() as u64
            + record.value_len() as u64
            + <RwLockShard as Shard>::ENTRY_OVERHEAD;
        if entry.has_ttl() {
            held += shardkv::store::TIMER_OVERHEAD;
        }
    });
    assert_eq!(store.memory_used(), held, "the byte estimate drifted");
}

/// `broken`: the check is dropped. `strict`: the evictor must also have evicted at least one
/// key (see [`an_overwrite_never_lets_make_room_pass_without_room`]).
fn evict_vs_overwrite(broken: bool, strict: bool) {
    loom::model(move || {
        let (clock, hand) = Clock::manual(0);
        let store = Arc::new(ShardedStore::<RwLockShard>::new(
            StoreConfig {
                shards: 1,
                timer_queue_capacity: 4,
                eviction_policy: EvictionPolicy::AllKeysLru,
                ..StoreConfig::default()
            },
            clock,
        ));
        if broken {
            store.break_eviction_check_for_model();
        }
        set(&store, "k", "v1");
        hand.set(100);
        set(&store, "j", "jj");
        // Both entries ranked into the pool, k first (idle longer).
        assert_eq!(store.sample_for_eviction(2).examined, 2);
        assert_eq!(store.memory_used(), 2 * ENTRY);
        // Room for the writer's overwrite (counted as a new entry) without evicting; the
        // evictor's request needs exactly one entry gone.
        store.set_max_memory(3 * ENTRY);
        let evictor_needs = ENTRY + 1;

        let writer = {
            let store = store.clone();
            loom::thread::spawn(move || set(&store, "k", "v2"))
        };
        let evictor = {
            let store = store.clone();
            loom::thread::spawn(move || store.make_room(evictor_needs, 0))
        };
        let v2 = writer.join().unwrap();
        evictor
            .join()
            .unwrap()
            .expect("the evictor found room: a candidate was evictable");

        let k = store
            .get(b"k")
            .found()
            .expect("the newer write of k was evicted on a candidate sampled before it");
        assert_eq!((k.value(), k.version), (&b"v2"[..], v2));
        // One eviction is needed; a second is right when the writer's v2 landed after the
        // first (it re-adds the entry the first eviction removed).
        let evicted = store.stats().evicted_keys.get();
        assert!(evicted <= 2, "{evicted} evictions of two keys");
        if strict {
            // Nothing but an eviction lowers the estimate below what the evictor needs.
            assert!(
                evicted >= 1,
                "make_room passed without the room it was asked for"
            );
        }
        assert_estimate_exact(&store);
    });
}

#[test]
fn eviction_never_removes_a_write_newer_than_its_sample() {
    evict_vs_overwrite(false, false);
}

/// The same model with the check inside the writer section dropped (eviction decides on the
/// candidate as sampled) must fail, and for that reason: the model can catch the bug.
#[test]
fn eviction_model_fails_when_the_check_is_dropped() {
    assert_model_fails(
        || evict_vs_overwrite(true, false),
        "the newer write of k was evicted",
    );
}

/// Runs a broken variant and asserts loom found an interleaving that fails with `reason`.
fn assert_model_fails(model: impl FnOnce() + std::panic::UnwindSafe, reason: &str) {
    let message = std::panic::catch_unwind(model)
        .err()
        .map(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
        .expect("loom found no failing interleaving without the check: the model is too weak");
    assert!(
        message.contains(reason),
        "the broken variant failed for another reason: {message}"
    );
}

/// An overwrite updates the byte estimate in one step (`Slot::account` adds the net change):
/// were it two (the old entry's size subtracted, then the new one's added), a `make_room`
/// running between them would see the estimate one entry low and return without evicting,
/// although the room it was asked for would not be there once the overwrite finished. Loom
/// found that interleaving before the change.
#[test]
fn an_overwrite_never_lets_make_room_pass_without_room() {
    evict_vs_overwrite(false, true);
}

/// Three parties on one key: k = v1 has expired (its timer is in the wheel, and the walk ranked
/// it first, as expired entries are), and an overwrite k = v2 without a TTL races both the
/// eviction of the expired candidate and the expiry timer. The overwrite must survive both,
/// k@v1 is reclaimed at most once (by whichever gets there first, or by no one if the
/// overwrite does), and the estimate ends exact.
fn evict_and_expire_vs_overwrite(broken: bool) {
    loom::model(move || {
        let (clock, hand) = Clock::manual(0);
        let store = Arc::new(ShardedStore::<RwLockShard>::new(
            StoreConfig {
                shards: 1,
                timer_queue_capacity: 4,
                eviction_policy: EvictionPolicy::AllKeysLru,
                ..StoreConfig::default()
            },
            clock,
        ));
        if broken {
            store.break_eviction_check_for_model();
        }
        set_ttl(&store, "k", "v1", Some(5));
        set(&store, "j", "jj");
        let mut expirer = Expirer::new(store.clone());
        expirer.step_at(0); // k's timer is now in the wheel
        hand.set(10);
        assert_eq!(store.sample_for_eviction(2).examined, 2);
        store.set_max_memory(3 * ENTRY);
        let evictor_needs = ENTRY + 1;

        let writer = {
            let store = store.clone();
            loom::thread::spawn(move || set(&store, "k", "v2"))
        };
        let evictor = {
            let store = store.clone();
            loom::thread::spawn(move || store.make_room(evictor_needs, 0))
        };
        let expiry = loom::thread::spawn(move || expirer.step_at(10));
        let v2 = writer.join().unwrap();
        evictor.join().unwrap().expect("the evictor found room");
        expiry.join().unwrap();

        let k = store
            .get(b"k")
            .found()
            .expect("the newer write of k was removed");
        assert_eq!((k.value(), k.version), (&b"v2"[..], v2));
        let stats = store.stats();
        let reclaimed = stats.expired_by_eviction.get() + stats.expired_by_wheel.get();
        assert!(reclaimed <= 1, "k@v1 reclaimed {reclaimed} times");
        assert_eq!(store.keys_with_ttl(), 0);
        assert_estimate_exact(&store);
    });
}

#[test]
fn an_overwrite_survives_both_the_eviction_and_the_expiry_of_its_expired_predecessor() {
    evict_and_expire_vs_overwrite(false);
}

/// Its broken variant must fail too.
#[test]
fn the_three_party_model_fails_when_the_check_is_dropped() {
    assert_model_fails(
        || evict_and_expire_vs_overwrite(true),
        "the newer write of k was removed",
    );
}
