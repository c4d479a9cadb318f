//! The store against a plain `HashMap` model: random sequences of set/get/delete with and
//! without TTL on a manual clock, with the expiry thread's step run in between, for both shard
//! implementations through one generic test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use shardkv::clock::{Clock, ManualClock, Tick};
use shardkv::expiry::Expirer;
use shardkv::store::{
    Condition, LockFreeShard, Lookup, RwLockShard, Shard, ShardedStore, StoreConfig, StoreError,
};

#[derive(Debug, Clone)]
enum Op {
    Set {
        key: u8,
        value: u8,
        ttl_ms: Option<u64>,
    },
    SetIfVersionOfLast {
        key: u8,
        value: u8,
    },
    SetIfAbsent {
        key: u8,
        value: u8,
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
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..16, any::<u8>(), proptest::option::of(1u64..200))
            .prop_map(|(key, value, ttl_ms)| Op::Set { key, value, ttl_ms }),
        1 => (0u8..16, any::<u8>()).prop_map(|(key, value)| Op::SetIfVersionOfLast { key, value }),
        1 => (0u8..16, any::<u8>()).prop_map(|(key, value)| Op::SetIfAbsent { key, value }),
        4 => (0u8..16).prop_map(|key| Op::Get { key }),
        2 => (0u8..16).prop_map(|key| Op::Delete { key }),
        2 => (0u64..150).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Expire),
    ]
}

struct ModelEntry {
    value: Vec<u8>,
    deadline: Option<Tick>,
    version: u64,
}

fn key_of(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

fn run<S: Shard>(ops: &[Op]) {
    let (clock, hand): (Clock, ManualClock) = Clock::manual(1_000);
    let config = StoreConfig {
        shards: 4,
        ..StoreConfig::default()
    };
    let store = Arc::new(ShardedStore::<S>::new(config, clock.clone()));
    let mut expirer = Expirer::new(store.clone());
    let mut model: HashMap<Vec<u8>, ModelEntry> = HashMap::new();
    // Shortening a key's TTL, or deleting it and writing it again, can leave a superseded
    // timer pending (dropped as stale when it fires). Count TTL writes over an earlier entry
    // to bound the pending timers; the exact one-timer-per-key cases are tested separately.
    let mut rewrites = 0usize;
    let mut deleted = std::collections::HashSet::new();
    let live = |m: &HashMap<Vec<u8>, ModelEntry>, k: &[u8], now: Tick| {
        m.get(k)
            .filter(|e| e.deadline.is_none_or(|d| d > now))
            .map(|e| (e.value.clone(), e.version))
    };

    for op in ops {
        let now = clock.now();
        match *op {
            Op::Set { key, value, ttl_ms } => {
                let k = key_of(key);
                let ttl = ttl_ms.map(Duration::from_millis);
                if ttl_ms.is_some() && (model.contains_key(&k) || deleted.contains(&k)) {
                    rewrites += 1;
                }
                let version = store
                    .set(&k, Bytes::from(vec![value]), ttl, Condition::Always)
                    .unwrap()
                    .version;
                model.insert(
                    k,
                    ModelEntry {
                        value: vec![value],
                        deadline: ttl_ms.map(|ms| now + ms),
                        version,
                    },
                );
            }
            Op::SetIfVersionOfLast { key, value } => {
                let k = key_of(key);
                let expected = live(&model, &k, now).map(|(_, v)| v).unwrap_or(1);
                match store.set(
                    &k,
                    Bytes::from(vec![value]),
                    None,
                    Condition::IfVersion(expected),
                ) {
                    Ok(receipt) => {
                        let version = receipt.version;
                        assert!(live(&model, &k, now).is_some_and(|(_, v)| v == expected));
                        model.insert(
                            k,
                            ModelEntry {
                                value: vec![value],
                                deadline: None,
                                version,
                            },
                        );
                    }
                    Err(StoreError::PreconditionFailed { current }) => {
                        assert_eq!(current, live(&model, &k, now).map(|(_, v)| v));
                        assert_ne!(current, Some(expected));
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::SetIfAbsent { key, value } => {
                let k = key_of(key);
                let result = store.set(&k, Bytes::from(vec![value]), None, Condition::IfAbsent);
                match (result, live(&model, &k, now)) {
                    (Ok(receipt), None) => {
                        let version = receipt.version;
                        model.insert(
                            k,
                            ModelEntry {
                                value: vec![value],
                                deadline: None,
                                version,
                            },
                        );
                    }
                    (Err(StoreError::PreconditionFailed { current }), Some((_, v))) => {
                        assert_eq!(current, Some(v))
                    }
                    (r, m) => panic!("set-if-absent gave {r:?} with model {m:?}"),
                }
            }
            Op::Get { key } => {
                let k = key_of(key);
                let got = store
                    .get(&k)
                    .found()
                    .map(|f| (f.value().to_vec(), f.version));
                assert_eq!(got, live(&model, &k, now), "get {k:?} at {now}");
            }
            Op::Delete { key } => {
                let k = key_of(key);
                let existed = store.delete(&k).unwrap();
                let was_live = live(&model, &k, now).is_some();
                if model.remove(&k).is_some() {
                    deleted.insert(k);
                }
                assert_eq!(existed, was_live);
            }
            Op::Advance { ms } => hand.advance(ms),
            Op::Expire => {
                expirer.step();
                // The wheel removed exactly the expired keys (it is exact to the tick).
                model.retain(|_, e| e.deadline.is_none_or(|d| d > now));
                assert_eq!(store.len(), model.len(), "len after expiry step at {now}");
            }
        }
        // No expired key is ever returned, and live keys are.
        let now = clock.now();
        for k in 0..16u8 {
            let k = key_of(k);
            let got = store.get(&k);
            match live(&model, &k, now) {
                Some((value, version)) => match got {
                    Lookup::Hit(f) => {
                        assert_eq!((f.value().to_vec(), f.version), (value, version));
                    }
                    other => panic!("{k:?} should be live, got {other:?}"),
                },
                None => assert!(!matches!(got, Lookup::Hit(_)), "{k:?} served after expiry"),
            }
        }
        let with_ttl = model.values().filter(|e| e.deadline.is_some()).count() as u64;
        assert_eq!(store.keys_with_ttl(), with_ttl);
        assert!(expirer.pending_timers() + store.pending_timer_requests() <= 16 + rewrites);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn lockfree_shard_matches_hashmap_model(ops in proptest::collection::vec(op(), 1..200)) {
        run::<LockFreeShard>(&ops);
    }

    #[test]
    fn rwlock_shard_matches_hashmap_model(ops in proptest::collection::vec(op(), 1..200)) {
        run::<RwLockShard>(&ops);
    }
}
