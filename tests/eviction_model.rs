//! Eviction against a plain `HashMap` model: random sets (with and without TTL, some too large
//! to ever fit), gets, deletes, clock advances and policy changes on a store with a small
//! memory cap and no eviction thread (a writer that finds the candidate pool empty walks a
//! little itself), for both shard implementations through one generic test.
//!
//! After every operation the model is reconciled with what the store holds: a key the model
//! has and the store lost must have been removed by eviction (the only remover besides the
//! operations the model applies itself, since no expiry thread runs), and it is checked
//! against the policy in force; the store's counters must agree with the count, the memory
//! estimate must be the exact sum of the entries the store holds and stay under the cap, a
//! refusal must come only when nothing evictable is left, and every value read must be the
//! model's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use shardkv::clock::{Clock, ManualClock, Tick};
use shardkv::store::{
    Condition, EvictionPolicy, LockFreeShard, Lookup, RwLockShard, Shard, ShardedStore,
    StoreConfig, StoreError, TIMER_OVERHEAD,
};

/// Keys `key-0` .. `key-15`.
const KEYS: u8 = 16;

/// The cap: room for about six small entries, so most writes past the first few evict.
const CAP: u64 = 640;

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: u8,
        value_len: usize,
        fill: u8,
        ttl_ms: Option<u64>,
    },
    Get {
        key: u8,
    },
    Delete {
        key: u8,
    },
    Advance {
        ms: u64,
    },
    Policy(EvictionPolicy),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..KEYS, 1usize..48, any::<u8>(), proptest::option::of(1u64..300))
            .prop_map(|(key, value_len, fill, ttl_ms)| Op::Set { key, value_len, fill, ttl_ms }),
        // A value that can never fit under the cap, whatever is evicted.
        1 => (0..KEYS, any::<u8>())
            .prop_map(|(key, fill)| Op::Set { key, value_len: CAP as usize, fill, ttl_ms: None }),
        4 => (0..KEYS).prop_map(|key| Op::Get { key }),
        2 => (0..KEYS).prop_map(|key| Op::Delete { key }),
        2 => (0u64..120).prop_map(|ms| Op::Advance { ms }),
        1 => proptest::sample::select(EvictionPolicy::ALL.to_vec()).prop_map(Op::Policy),
    ]
}

fn policy() -> impl Strategy<Value = EvictionPolicy> {
    proptest::sample::select(EvictionPolicy::ALL.to_vec())
}

#[derive(Debug)]
struct ModelEntry {
    value: Vec<u8>,
    deadline: Option<Tick>,
}

impl ModelEntry {
    fn live(&self, now: Tick) -> bool {
        self.deadline.is_none_or(|d| d > now)
    }
}

fn key_of(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

fn size_of<S: Shard>(key: &[u8], value_len: usize) -> u64 {
    key.len() as u64 + value_len as u64 + S::ENTRY_OVERHEAD
}

/// What the model saw eviction remove during one operation.
#[derive(Default)]
struct Removed {
    live: u64,
    expired: u64,
}

/// Drops from the model every key the store no longer holds, checking each may have been
/// evicted under `policy`; returns how many were live and how many expired.
fn reconcile<S: Shard>(
    store: &ShardedStore<S>,
    model: &mut HashMap<Vec<u8>, ModelEntry>,
    policy: EvictionPolicy,
    now: Tick,
) -> Removed {
    let mut removed = Removed::default();
    model.retain(|key, entry| {
        if store.entry_bytes_in(0, key).is_some() {
            return true;
        }
        if entry.live(now) {
            assert!(
                policy.evicts(),
                "{key:?} disappeared under noeviction ({entry:?})"
            );
            assert!(
                !policy.volatile_only() || entry.deadline.is_some(),
                "{key:?} without a TTL was evicted under {policy}"
            );
            removed.live += 1;
        } else {
            removed.expired += 1;
        }
        false
    });
    removed
}

fn run<S: Shard>(initial: EvictionPolicy, ops: &[Op]) {
    let (clock, hand): (Clock, ManualClock) = Clock::manual(1_000);
    let config = StoreConfig {
        shards: 4,
        max_memory: CAP,
        eviction_policy: initial,
        ..StoreConfig::default()
    };
    let store = Arc::new(ShardedStore::<S>::new(config, clock.clone()));
    let mut model: HashMap<Vec<u8>, ModelEntry> = HashMap::new();
    let mut policy = initial;
    let (mut seen_evicted, mut seen_expired) = (0u64, 0u64);

    for op in ops {
        let now = clock.now();
        let evicted_before = store.stats().evicted_keys.get();
        let expired_before = store.stats().expired_by_eviction.get();
        match *op {
            Op::Set {
                key,
                value_len,
                fill,
                ttl_ms,
            } => {
                let k = key_of(key);
                let value = vec![fill; value_len];
                let used_before = store.memory_used();
                let len_before = store.len();
                // The key being overwritten may itself be evicted to make room for its new
                // value; the model cannot see that, so it is allowed for once.
                let own = model.get(&k).map(|e| (e.live(now), e.deadline.is_some()));
                let result = store.set(
                    &k,
                    Bytes::from(value.clone()),
                    ttl_ms.map(Duration::from_millis),
                    Condition::Always,
                );
                let removed = reconcile(&store, &mut model, policy, now);
                let evicted = store.stats().evicted_keys.get() - evicted_before;
                let expired = store.stats().expired_by_eviction.get() - expired_before;
                match result {
                    Ok(_) => {
                        assert!(
                            store.memory_used() <= CAP,
                            "estimate {} past the cap {CAP} after a write returned Ok",
                            store.memory_used()
                        );
                        let (own_live, own_expired) = match own {
                            Some((true, ttl)) if policy.evicts() => {
                                (u64::from(!policy.volatile_only() || ttl), 0)
                            }
                            Some((false, _)) => (0, 1),
                            _ => (0, 0),
                        };
                        assert!(
                            (removed.live..=removed.live + own_live).contains(&evicted),
                            "evicted_keys rose by {evicted}, the model saw {} keys go",
                            removed.live
                        );
                        assert!(
                            (removed.expired..=removed.expired + own_expired).contains(&expired),
                            "expired_by_eviction rose by {expired}, the model saw {} go",
                            removed.expired
                        );
                        model.insert(
                            k,
                            ModelEntry {
                                value,
                                deadline: ttl_ms.map(|ms| now + ms),
                            },
                        );
                    }
                    Err(StoreError::MemoryFull { .. }) => {
                        assert_eq!(evicted, removed.live, "a refused write's evictions");
                        assert_eq!(expired, removed.expired, "a refused write's expiries");
                        let timer = if ttl_ms.is_some() { TIMER_OVERHEAD } else { 0 };
                        let needed = size_of::<S>(&k, value_len) + timer;
                        if needed > CAP {
                            // Larger than the cap by itself: refused before anything is evicted.
                            assert_eq!(evicted, 0, "keys evicted for a write that can never fit");
                            assert_eq!(
                                store.len(),
                                len_before,
                                "a write that can never fit removed keys"
                            );
                        } else if !policy.evicts() {
                            assert_eq!(store.len(), len_before, "noeviction removed keys");
                            assert!(
                                used_before + needed > CAP,
                                "noeviction refused a write that fit: {used_before} + {needed}"
                            );
                        } else if policy.volatile_only() {
                            assert_eq!(
                                store.keys_with_ttl(),
                                0,
                                "{policy} refused a write with keys with a TTL left"
                            );
                        } else {
                            assert!(store.is_empty(), "{policy} refused a write with keys left");
                        }
                        assert!(
                            store.memory_used() + needed > CAP,
                            "refused but it fits now"
                        );
                    }
                    Err(e) => panic!("set {k:?}: unexpected {e}"),
                }
                seen_evicted += evicted;
                seen_expired += expired;
            }
            Op::Get { key } => {
                let k = key_of(key);
                let got = store.get(&k).found().map(|f| f.value().to_vec());
                let want = model
                    .get(&k)
                    .filter(|e| e.live(now))
                    .map(|e| e.value.clone());
                assert_eq!(got, want, "get {k:?} at {now}");
            }
            Op::Delete { key } => {
                let k = key_of(key);
                let existed = store.delete(&k).unwrap();
                let was_live = model.remove(&k).is_some_and(|e| e.live(now));
                assert_eq!(existed, was_live, "delete {k:?}");
            }
            Op::Advance { ms } => hand.advance(ms),
            Op::Policy(next) => {
                store.set_eviction_policy(next);
                policy = next;
            }
        }
        if !matches!(op, Op::Set { .. }) {
            // Only a write makes room: nothing else may evict.
            let removed = reconcile(&store, &mut model, policy, now);
            assert_eq!((removed.live, removed.expired), (0, 0), "{op:?} evicted");
            assert_eq!(store.stats().evicted_keys.get(), evicted_before);
            assert_eq!(store.stats().expired_by_eviction.get(), expired_before);
        }
        assert_eq!(store.stats().evicted_keys.get(), seen_evicted);
        assert_eq!(store.stats().expired_by_eviction.get(), seen_expired);

        // The store holds exactly the model's keys, with the model's values, and the estimate
        // is exactly their sizes.
        let now = clock.now();
        assert_eq!(
            store.len(),
            model.len(),
            "the store holds keys the model lost"
        );
        let mut estimate = 0;
        for k in 0..KEYS {
            let k = key_of(k);
            let got = store.get(&k);
            match model.get(&k) {
                Some(entry) => {
                    estimate += size_of::<S>(&k, entry.value.len());
                    if entry.deadline.is_some() {
                        estimate += TIMER_OVERHEAD;
                    }
                    if entry.live(now) {
                        match got {
                            Lookup::Hit(f) => assert_eq!(f.value(), &entry.value[..], "{k:?}"),
                            other => panic!("{k:?} should be live, got {other:?}"),
                        }
                    } else {
                        assert!(!matches!(got, Lookup::Hit(_)), "{k:?} served after expiry");
                    }
                }
                None => assert!(!matches!(got, Lookup::Hit(_)), "{k:?} should be gone"),
            }
        }
        assert_eq!(store.memory_used(), estimate, "the memory estimate drifted");
        let with_ttl = model.values().filter(|e| e.deadline.is_some()).count() as u64;
        assert_eq!(store.keys_with_ttl(), with_ttl, "keys with a TTL");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn lockfree_shard_evicts_only_what_the_policy_allows(
        initial in policy(),
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        run::<LockFreeShard>(initial, &ops);
    }

    #[test]
    fn rwlock_shard_evicts_only_what_the_policy_allows(
        initial in policy(),
        ops in proptest::collection::vec(op(), 1..150),
    ) {
        run::<RwLockShard>(initial, &ops);
    }
}

/// The model's operations do evict: a fixed sequence under each evicting policy fills the
/// store past the cap and must see evictions counted (so the properties above are not
/// vacuously true).
#[test]
fn writes_past_the_cap_evict_under_every_evicting_policy() {
    for policy in EvictionPolicy::ALL.into_iter().filter(|p| p.evicts()) {
        let ops: Vec<Op> = (0..40)
            .map(|i| Op::Set {
                key: i % KEYS,
                value_len: 20,
                fill: i,
                ttl_ms: Some(10_000),
            })
            .collect();
        let (clock, _hand) = Clock::manual(1_000);
        let store = ShardedStore::<LockFreeShard>::new(
            StoreConfig {
                shards: 4,
                max_memory: CAP,
                eviction_policy: policy,
                ..StoreConfig::default()
            },
            clock,
        );
        for op in &ops {
            if let Op::Set {
                key,
                value_len,
                fill,
                ttl_ms,
            } = *op
            {
                store
                    .set(
                        &key_of(key),
                        Bytes::from(vec![fill; value_len]),
                        ttl_ms.map(Duration::from_millis),
                        Condition::Always,
                    )
                    .unwrap_or_else(|e| panic!("{policy}: {e}"));
            }
        }
        assert!(
            store.stats().evicted_keys.get() > 0,
            "{policy} never evicted"
        );
        assert!(store.memory_used() <= CAP);
        run::<LockFreeShard>(policy, &ops);
    }
}
