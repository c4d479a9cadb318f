//! Many threads on overlapping keys, then the final state is checked; and the limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::store::{
    Condition, LockFreeShard, Lookup, RwLockShard, Shard, ShardedStore, StoreConfig, StoreError,
};

const THREADS: usize = 8;
const OPS: usize = 20_000;
const SHARED_KEYS: usize = 32;

fn hammer<S: Shard>() {
    let (clock, _hand) = Clock::manual(0);
    let store = Arc::new(ShardedStore::<S>::new(StoreConfig::default(), clock));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut rng = t as u64 * 0x9E37_79B9_7F4A_7C15 + 1;
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                for i in 0..OPS {
                    // Owned keys: thread t writes owned-t-i, deletes every third one.
                    let own = format!("owned-{t}-{i}");
                    store
                        .set(
                            own.as_bytes(),
                            Bytes::from(own.clone()),
                            None,
                            Condition::Always,
                        )
                        .unwrap();
                    if i % 3 == 0 {
                        assert!(store.delete(own.as_bytes()).unwrap());
                    }
                    // Shared keys: every thread writes values tagged with its id.
                    let shared = format!("shared-{}", next() as usize % SHARED_KEYS);
                    match next() % 3 {
                        0 => {
                            let value = format!("t{t}-{i}");
                            store
                                .set(
                                    shared.as_bytes(),
                                    Bytes::from(value),
                                    None,
                                    Condition::Always,
                                )
                                .unwrap();
                        }
                        1 => {
                            store.delete(shared.as_bytes()).unwrap();
                        }
                        _ => {
                            if let Lookup::Hit(found) = store.get(shared.as_bytes()) {
                                let v = std::str::from_utf8(found.value()).unwrap();
                                assert!(v.starts_with('t') && v.contains('-'), "torn value {v}");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());

    for t in 0..THREADS {
        for i in 0..OPS {
            let own = format!("owned-{t}-{i}");
            let got = store.get(own.as_bytes()).found();
            if i % 3 == 0 {
                assert!(got.is_none(), "{own} was deleted");
            } else {
                assert_eq!(got.unwrap().value(), own.as_bytes());
            }
        }
    }
    let mut shared_live = 0;
    for k in 0..SHARED_KEYS {
        if let Some(found) = store.get(format!("shared-{k}").as_bytes()).found() {
            shared_live += 1;
            let v = std::str::from_utf8(found.value()).unwrap();
            let (t, i) = v[1..].split_once('-').unwrap();
            assert!(t.parse::<usize>().unwrap() < THREADS && i.parse::<usize>().unwrap() < OPS);
        }
    }
    let owned_live = THREADS * (OPS - OPS.div_ceil(3));
    assert_eq!(store.len(), owned_live + shared_live);
    // Versions are unique per shard and the shard sequences account for every write.
    let total_seq: u64 = (0..store.shard_count()).map(|s| store.shard_seq(s)).sum();
    assert!(total_seq >= (THREADS * OPS) as u64);
}

#[test]
fn lockfree_concurrent_mixed_ops_end_in_a_consistent_state() {
    hammer::<LockFreeShard>();
}

#[test]
fn rwlock_concurrent_mixed_ops_end_in_a_consistent_state() {
    hammer::<RwLockShard>();
}

fn limits<S: Shard>() {
    let (clock, _hand) = Clock::manual(0);
    let config = StoreConfig {
        max_key_bytes: 8,
        max_value_bytes: 16,
        ..StoreConfig::default()
    };
    let store = ShardedStore::<S>::new(config, clock);
    store
        .set(b"k", Bytes::from_static(b"v"), None, Condition::Always)
        .unwrap();
    let cases: [(&[u8], usize, StoreError); 2] = [
        (b"123456789", 1, StoreError::KeyTooLong { len: 9, max: 8 }),
        (b"k", 17, StoreError::ValueTooLarge { len: 17, max: 16 }),
    ];
    for (key, len, expected) in cases {
        let err = store
            .set(key, Bytes::from(vec![b'x'; len]), None, Condition::Always)
            .unwrap_err();
        assert_eq!(err, expected);
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(
        store
            .set(
                b"k",
                Bytes::from_static(b"z"),
                Some(Duration::ZERO),
                Condition::Always
            )
            .unwrap_err(),
        StoreError::TtlNotPositive
    );
    assert_eq!(
        store.delete(b"123456789").unwrap_err(),
        StoreError::KeyTooLong { len: 9, max: 8 }
    );
    // Nothing changed: the one key is still there with its value and first version.
    assert_eq!(store.len(), 1);
    let found = store.get(b"k").found().unwrap();
    assert_eq!((found.value(), found.version), (&b"v"[..], 1));
    // Exactly at the limits is accepted.
    store
        .set(
            b"12345678",
            Bytes::from(vec![0u8; 16]),
            None,
            Condition::Always,
        )
        .unwrap();
    // An empty key is a key, as in Redis (HTTP refuses it by its own rule, in its adapter).
    store
        .set(b"", Bytes::from_static(b"e"), None, Condition::Always)
        .unwrap();
    assert_eq!(store.get(b"").found().unwrap().value(), b"e");
    assert!(store.delete(b"").unwrap());
}

#[test]
fn lockfree_limits_reject_and_change_nothing() {
    limits::<LockFreeShard>();
}

#[test]
fn rwlock_limits_reject_and_change_nothing() {
    limits::<RwLockShard>();
}

/// Resizes completed by another thread (as the expiry thread does) while writers grow the map
/// and readers read it: nothing is lost, duplicated or read wrong.
fn resizes_finished_concurrently<S: Shard>() {
    const KEYS: usize = 200_000;
    let (clock, _hand) = Clock::manual(0);
    let config = StoreConfig {
        shards: 2,
        ..StoreConfig::default()
    };
    let store = Arc::new(ShardedStore::<S>::new(config, clock));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finisher = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let mut calls = 0u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                store.maintain();
                calls += 1;
            }
            calls
        })
    };
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in (w..KEYS).step_by(2) {
                    let key = format!("grow-{i}");
                    store
                        .set(key.as_bytes(), key.as_bytes(), None, Condition::Always)
                        .unwrap();
                    // Read back an earlier key of this writer while tables move.
                    let earlier = format!("grow-{}", i / 2 / 2 * 2 + w);
                    let found = store
                        .get(earlier.as_bytes())
                        .found()
                        .expect("written before");
                    assert_eq!(found.value(), earlier.as_bytes());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    assert!(finisher.join().unwrap() > 0);
    store.maintain();
    assert_eq!(store.len(), KEYS);
    for i in 0..KEYS {
        let key = format!("grow-{i}");
        assert_eq!(
            store.get(key.as_bytes()).found().unwrap().value(),
            key.as_bytes()
        );
    }
}

#[test]
fn lockfree_resizes_finished_concurrently_lose_nothing() {
    resizes_finished_concurrently::<LockFreeShard>();
}

#[test]
fn rwlock_resizes_finished_concurrently_lose_nothing() {
    resizes_finished_concurrently::<RwLockShard>();
}
