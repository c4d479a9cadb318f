//! loom models of the replication protocol, run on the real `ShardedStore` replication code
//! (writer section → queue → `apply_pending`, the `Acked` future, `fail_primary`).
//!
//! Stand-ins (see `shardkv::sync`): each replica queue is a loom `Mutex<VecDeque>` standing in
//! for crossbeam's `ArrayQueue`; maps are `RwLockShard` on loom's `RwLock` standing in for
//! papaya; the apply thread is a loom thread calling the real `apply_pending` step in a loop (the
//! production loop around it only adds parking); the clock is a manual loom-atomic clock.

#![cfg(shardkv_loom)]

mod common;

use common::set;

use shardkv::replication::Replicas;
use shardkv::store::RwLockShard;
use shardkv::sync::{Arc, AtomicBool, Ordering};

fn store(replicas: usize) -> Arc<Replicas<RwLockShard>> {
    common::replicated_store(replicas, 8)
}

/// Model 1: two writers on the same key and one apply thread. In every interleaving the
/// replica ends with exactly the primary's entry (same value, same version).
#[test]
fn model1_replica_equals_primary_with_two_writers_on_one_key() {
    loom::model(|| {
        let store = store(1);
        let w1 = {
            let store = store.clone();
            loom::thread::spawn(move || set(&store, "a"))
        };
        let w2 = {
            let store = store.clone();
            loom::thread::spawn(move || set(&store, "b"))
        };
        let apply = {
            let store = store.clone();
            loom::thread::spawn(move || {
                // Apply until both writes (sequence numbers 1 and 2) are in.
                while !store.is_replicated(0, 2) {
                    if store.apply_pending(1, 8) == 0 {
                        loom::thread::yield_now();
                    }
                }
            })
        };
        let v1 = w1.join().unwrap();
        let v2 = w2.join().unwrap();
        apply.join().unwrap();
        assert_ne!(v1, v2);
        let primary = store.store().read_copy(0, b"k").unwrap();
        let replica = store.store().read_copy(1, b"k").unwrap();
        assert_eq!(primary, replica);
        assert_eq!(
            primary.1,
            v1.max(v2),
            "the map holds the later sequence number"
        );
    });
}

/// Model 2: a writer waiting for `ack=all` is woken once its sequence number is applied (no
/// lost wake-up: a missed wake would leave `block_on` parked and loom reports the deadlock),
/// and never before (the replica holds the write when the future completes).
#[test]
fn model2_ack_all_wakes_exactly_when_applied() {
    loom::model(|| {
        let store = store(1);
        let apply = {
            let store = store.clone();
            loom::thread::spawn(move || {
                while store.apply_pending(1, 8) == 0 {
                    loom::thread::yield_now();
                }
            })
        };
        let version = set(&store, "v");
        loom::future::block_on(store.acked(0, version));
        let replica = store
            .store()
            .read_copy(1, b"k")
            .expect("acked before the replica applied it");
        assert_eq!(replica.1, version);
        apply.join().unwrap();
    });
}

/// Model 4: a reader racing the routing swap of a failover reads the old or the new primary,
/// both valid, and an `ack=all` write completed before the failover is seen either way.
#[test]
fn model4_failover_swap_keeps_acked_writes_readable() {
    loom::model(|| {
        let store = store(1);
        let stop = Arc::new(AtomicBool::new(false));
        let apply = {
            let (store, stop) = (store.clone(), stop.clone());
            loom::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    if store.apply_pending(1, 8) == 0 {
                        loom::thread::yield_now();
                    }
                }
            })
        };
        let version = set(&store, "acked");
        loom::future::block_on(store.acked(0, version));

        let failover = {
            let store = store.clone();
            loom::thread::spawn(move || store.fail_primary(0).unwrap())
        };
        let reader = {
            let store = store.clone();
            loom::thread::spawn(move || {
                store
                    .store()
                    .get(b"k")
                    .found()
                    .map(|f| (f.value().to_vec(), f.version))
            })
        };
        let promoted = failover.join().unwrap();
        let seen = reader.join().unwrap();
        stop.store(true, Ordering::Release);
        apply.join().unwrap();

        assert_eq!(promoted, 1);
        assert_eq!(seen, Some((b"acked".to_vec(), version)));
        let after = store.store().get(b"k").found().unwrap();
        assert_eq!((after.value(), after.version), (&b"acked"[..], version));
    });
}
