//! Active expiry through the real store and expiry step: keys disappear on time without being
//! read, a stale timer never removes a newer write, and one key costs at most one timer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::expiry::{Expirer, ExpiryThread};
use shardkv::store::{Condition, LockFreeShard, RwLockShard, Shard, ShardedStore, StoreConfig};

fn manual_store<S: Shard>(
    config: StoreConfig,
) -> (Arc<ShardedStore<S>>, shardkv::clock::ManualClock) {
    let (clock, hand) = Clock::manual(0);
    (Arc::new(ShardedStore::new(config, clock)), hand)
}

fn set(store: &ShardedStore<impl Shard>, key: &str, ttl_ms: Option<u64>) -> u64 {
    store
        .set(
            key.as_bytes(),
            Bytes::from_static(b"v"),
            ttl_ms.map(Duration::from_millis),
            Condition::Always,
        )
        .unwrap()
        .version
}

#[test]
fn refreshing_a_ttl_many_times_costs_one_timer() {
    let (store, hand) = manual_store::<LockFreeShard>(StoreConfig::default());
    let mut expirer = Expirer::new(store.clone());
    for i in 0..100_000u64 {
        // Refresh, and every 10th write drop the TTL and put it back: still one timer.
        set(&store, "hot", if i % 10 == 5 { None } else { Some(1_000) });
        if i % 1000 == 0 {
            hand.advance(1);
            expirer.step();
        }
    }
    expirer.step();
    assert_eq!(expirer.pending_timers() + store.pending_timer_requests(), 1);
    assert_eq!(store.keys_with_ttl(), 1);
    // The one timer, re-armed as it fires early, still removes the key on time.
    hand.advance(999);
    expirer.step();
    assert_eq!(store.len(), 1, "not before its deadline");
    hand.advance(1);
    expirer.step();
    assert_eq!(store.len(), 0);
    assert_eq!(expirer.pending_timers(), 0);
    assert_eq!(store.stats().expired_by_wheel.get(), 1);
}

fn overwrite_survives_old_timer<S: Shard>() {
    let (store, hand) = manual_store::<S>(StoreConfig::default());
    let mut expirer = Expirer::new(store.clone());
    set(&store, "k", Some(10));
    expirer.step();
    hand.advance(5);
    let v2 = set(&store, "k", None);
    hand.advance(100);
    expirer.step();
    let found = store
        .get(b"k")
        .found()
        .expect("overwrite without TTL must survive");
    assert_eq!(found.version, v2);
    assert_eq!(store.keys_with_ttl(), 0);

    // Deleted then written again with a longer TTL: the old timer is stale, the new one fires.
    set(&store, "d", Some(10));
    expirer.step();
    store.delete(b"d").unwrap();
    set(&store, "d", Some(50));
    hand.advance(20);
    expirer.step();
    assert!(
        store.get(b"d").found().is_some(),
        "stale timer removed a newer write"
    );
    hand.advance(30);
    expirer.step();
    assert!(store.get(b"d").found().is_none());
    assert_eq!(store.len(), 1);
}

#[test]
fn lockfree_stale_timer_never_removes_newer_write() {
    overwrite_survives_old_timer::<LockFreeShard>();
}

#[test]
fn rwlock_stale_timer_never_removes_newer_write() {
    overwrite_survives_old_timer::<RwLockShard>();
}

#[test]
fn shortened_ttl_fires_at_the_new_deadline() {
    let (store, hand) = manual_store::<LockFreeShard>(StoreConfig::default());
    let mut expirer = Expirer::new(store.clone());
    set(&store, "k", Some(10_000));
    set(&store, "k", Some(10));
    hand.advance(10);
    expirer.step();
    assert_eq!(store.len(), 0);
    // The superseded timer is still pending, and is dropped as stale when it comes due.
    assert_eq!(expirer.pending_timers(), 1);
    hand.advance(10_000);
    expirer.step();
    assert_eq!(expirer.pending_timers(), 0);
}

#[test]
fn queue_overflow_falls_back_to_a_sweep_and_still_expires_everything() {
    let config = StoreConfig {
        shards: 4,
        timer_queue_capacity: 8,
        ..StoreConfig::default()
    };
    let (store, hand) = manual_store::<LockFreeShard>(config);
    let mut expirer = Expirer::new(store.clone());
    for i in 0..1_000 {
        set(&store, &format!("k{i}"), Some(100 + i % 50));
    }
    assert!(store.stats().timer_queue_overflows.get() > 0);
    expirer.step();
    assert_eq!(store.len(), 1_000);
    // The sweep armed only the keys whose request was lost: still one timer per key.
    assert_eq!(expirer.pending_timers(), 1_000);
    hand.advance(149);
    expirer.step();
    assert_eq!(store.len(), 0);
    assert_eq!(store.stats().expired_by_wheel.get(), 1_000);
}

/// 200k keys with ttl=1s, never read: the real expiry thread on the real coarse clock brings
/// the key count to 0 within about 1.5 s of the deadline.
#[test]
fn expiry_thread_frees_200k_unread_keys_on_time() {
    let store = Arc::new(ShardedStore::<LockFreeShard>::new(
        StoreConfig {
            initial_capacity: 200_000,
            ..StoreConfig::default()
        },
        Clock::coarse(),
    ));
    let expiry = ExpiryThread::start(store.clone()).unwrap();
    let started = Instant::now();
    for i in 0..200_000u32 {
        store
            .set(
                format!("key:{i:012}").as_bytes(),
                Bytes::from_static(b"0123456789"),
                Some(Duration::from_secs(1)),
                Condition::Always,
            )
            .unwrap();
    }
    let loaded = started.elapsed();
    assert_eq!(store.keys_with_ttl(), 200_000);
    // The last key's deadline is at most `loaded` + 1 s after `started`.
    let give_up = started + loaded + Duration::from_millis(1_000 + 1_500);
    while !store.is_empty() {
        assert!(
            Instant::now() < give_up,
            "{} keys left {:?} after the last deadline",
            store.len(),
            Instant::now() - (started + loaded + Duration::from_secs(1))
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(store.keys_with_ttl(), 0);
    assert_eq!(store.stats().expired_by_wheel.get(), 200_000);
    drop(expiry);
}

/// Keys deleted or evicted leave their timers in the wheel until their deadline. Once the stale
/// ones far outnumber the keys with a TTL, a step drops them early (memory the estimate does
/// not count), and the live keys' timers still fire on time.
#[test]
fn stale_timers_of_deleted_keys_are_dropped_before_their_deadline() {
    let (store, hand) = manual_store::<LockFreeShard>(StoreConfig::default());
    let mut expirer = Expirer::new(store.clone());
    for i in 0..100_000u64 {
        let key = format!("gone{i}");
        set(&store, &key, Some(3_600_000));
        assert!(store.delete(key.as_bytes()).unwrap());
    }
    for i in 0..1_000u64 {
        set(&store, &format!("live{i}"), Some(60_000));
    }
    expirer.step();
    assert_eq!(
        expirer.pending_timers(),
        1_000,
        "stale timers kept after a step"
    );
    assert_eq!(
        expirer
            .stats()
            .stale_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        100_000
    );
    hand.advance(60_000);
    expirer.step();
    assert_eq!(store.len(), 0, "the live keys expire on time");
    assert_eq!(store.stats().expired_by_wheel.get(), 1_000);
}
