//! loom models of the expiry protocol, run on the real `ShardedStore` and `Expirer` code.
//!
//! Stand-ins (see `shardkv::sync`): the map is `RwLockShard` on loom's `RwLock` (papaya is
//! invisible to loom), the timer queue is a loom `Mutex<VecDeque>` standing in for
//! crossbeam's `ArrayQueue`, and the clock is a manual loom-atomic clock standing in for quanta.
//!
//! Run: `RUSTFLAGS="--cfg shardkv_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release`.

#![cfg(shardkv_loom)]

use std::time::Duration;

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::expiry::Expirer;
use shardkv::store::{Condition, RwLockShard, ShardedStore, StoreConfig};
use shardkv::sync::Arc;

fn store() -> (Arc<ShardedStore<RwLockShard>>, shardkv::clock::ManualClock) {
    let (clock, hand) = Clock::manual(0);
    let config = StoreConfig {
        shards: 1,
        timer_queue_capacity: 4,
        ..StoreConfig::default()
    };
    (Arc::new(ShardedStore::new(config, clock)), hand)
}

fn set(store: &ShardedStore<RwLockShard>, value: &'static str, ttl_ms: Option<u64>) -> u64 {
    store
        .set(
            b"k",
            Bytes::from_static(value.as_bytes()),
            ttl_ms.map(Duration::from_millis),
            Condition::Always,
        )
        .unwrap()
        .version
}

/// Model 3: an expiry scheduled for version v races an overwrite (version v+1, no TTL). In
/// every interleaving the newer write survives.
fn expire_vs_overwrite(broken: bool) {
    loom::model(move || {
        let (store, hand) = store();
        if broken {
            store.break_expiry_check_for_model();
        }
        set(&store, "old", Some(5));
        let mut expirer = Expirer::new(store.clone());
        expirer.step_at(0); // the timer is now in the wheel
        hand.set(10);

        let writer = {
            let store = store.clone();
            loom::thread::spawn(move || set(&store, "new", None))
        };
        let expiry = loom::thread::spawn(move || {
            expirer.step_at(10);
        });
        let new_version = writer.join().unwrap();
        expiry.join().unwrap();

        let found = store
            .get(b"k")
            .found()
            .expect("the newer write was removed");
        assert_eq!(found.version, new_version);
        assert_eq!(found.value(), b"new");
    });
}

#[test]
fn model3_expiry_never_removes_a_newer_version() {
    expire_vs_overwrite(false);
}

/// The same model with the version check switched off must fail: the model can catch the bug.
#[test]
fn model3_fails_when_the_version_check_is_dropped() {
    let result = std::panic::catch_unwind(|| expire_vs_overwrite(true));
    assert!(
        result.is_err(),
        "loom found no failing interleaving without the check: the model is too weak"
    );
}

/// A timer that fires early (the TTL was extended) re-arms while a writer extends the TTL
/// again: whatever the interleaving, the key is still there before its last deadline and gone
/// after it, and no timer is lost or left behind.
#[test]
fn rearm_races_a_refresh_and_the_key_still_expires_on_time() {
    loom::model(|| {
        let (store, hand) = store();
        set(&store, "a", Some(5));
        set(&store, "b", Some(20)); // inherits the timer at 5
        let mut expirer = Expirer::new(store.clone());
        expirer.step_at(0);
        hand.set(10);

        let writer = {
            let store = store.clone();
            loom::thread::spawn(move || set(&store, "c", Some(20))) // deadline 30
        };
        let expiry = loom::thread::spawn(move || {
            expirer.step_at(10); // fires the timer at 5: re-arm
            expirer
        });
        writer.join().unwrap();
        let mut expirer = expiry.join().unwrap();

        expirer.step_at(29);
        assert_eq!(store.len(), 1, "removed before its deadline");
        assert_eq!(store.get(b"k").found().unwrap().value(), b"c");
        expirer.step_at(30);
        assert!(store.is_empty(), "the key outlived its deadline");
        expirer.step_at(1_000);
        assert_eq!(expirer.pending_timers(), 0, "a timer was left behind");
    });
}
