//! loom models of a replica's re-sync and of failover racing writers, on the real
//! `ShardedStore` code (`apply_pending` → `resync_copy`, `fail_primary`).
//!
//! Stand-ins as in `replication.rs`: the replica queue is a loom `Mutex<VecDeque>` standing in
//! for crossbeam's `ArrayQueue`, maps are `RwLockShard` on loom's `RwLock` standing in for
//! papaya, the apply thread is a loom thread calling the real `apply_pending` step.

#![cfg(shardkv_loom)]

mod common;

use common::set;

use shardkv::replication::{BrokenStep, Health, Replicas};
use shardkv::store::RwLockShard;
use shardkv::sync::Arc;

fn store(queue: usize) -> Arc<Replicas<RwLockShard>> {
    common::replicated_store(1, queue)
}

/// Stale → re-sync → live while a writer overflows the queue again: whatever the
/// interleaving, once the replica is live and has drained its queue it equals the primary.
fn resync_races_an_overflow(broken: bool) {
    loom::model(move || {
        let store = store(1);
        if broken {
            store.break_for_model(BrokenStep::SyncingToLive);
        }
        set(&store, "a"); // queued: the queue (1 record) is full
        set(&store, "b"); // overflows: the replica is stale
        assert_eq!(store.copy_health(1), Health::Stale);

        let apply = {
            let store = store.clone();
            loom::thread::spawn(move || {
                store.apply_pending(1, 8);
            })
        };
        let writer = {
            let store = store.clone();
            loom::thread::spawn(move || {
                set(&store, "c");
                set(&store, "d"); // may overflow again, at any point of the re-sync
            })
        };
        apply.join().unwrap();
        writer.join().unwrap();

        // Quiet now: step the apply thread until it is live with an empty queue.
        for _ in 0..4 {
            if store.copy_health(1) == Health::Live && store.copy_queue_depth(1) == 0 {
                break;
            }
            store.apply_pending(1, 8);
        }
        assert_eq!(store.copy_health(1), Health::Live);
        assert_eq!(
            store.store().read_copy(1, b"k"),
            store.store().read_copy(0, b"k"),
            "a live replica differs from its primary: {:?}",
            store.copy_reports()
        );
    });
}

#[test]
fn resync_never_goes_live_over_a_concurrent_overflow() {
    resync_races_an_overflow(false);
}

/// With live set by a check then a store (the old step), loom must find the lost write.
#[test]
fn resync_model_fails_when_going_live_is_check_then_set() {
    let result = std::panic::catch_unwind(|| resync_races_an_overflow(true));
    assert_fails_with(result, "differs from its primary");
}

/// A writer races a failover: the write the shard accepted is on the new primary, whether it
/// landed before the failover began, during the replica's drain, or after the swap.
fn writer_races_failover(broken: bool) {
    loom::model(move || {
        let store = store(8);
        if broken {
            store.break_for_model(BrokenStep::FailoverDrain);
        }
        let writer = {
            let store = store.clone();
            loom::thread::spawn(move || set(&store, "w"))
        };
        let failover = {
            let store = store.clone();
            loom::thread::spawn(move || store.fail_primary(0).unwrap())
        };
        // The apply thread's steps, interleaved with both. (A loop until the failover is done
        // would spin; loom's bounded scheduler need not switch away from a spinning thread.)
        store.apply_pending(1, 8);
        store.apply_pending(1, 8);
        // The writer never waits for the failover for long: inside the writer section the
        // failover waits only for writes that took a sequence number before it entered.
        writer.join().unwrap();
        // Every write is queued now; apply them, then the failover's waits can all complete.
        while store.apply_pending(1, 8) > 0 {}
        let promoted = failover.join().unwrap();

        assert_eq!(promoted, 1);
        let found = store
            .store()
            .get(b"k")
            .found()
            .expect("the accepted write was lost");
        assert_eq!(found.value(), b"w");
    });
}

#[test]
fn failover_keeps_a_write_that_races_the_drain() {
    writer_races_failover(false);
}

/// Promoting after the unlocked wait alone (no final catch-up inside the writer section) must
/// lose the write in some interleaving.
#[test]
fn failover_model_fails_without_the_final_catch_up() {
    let result = std::panic::catch_unwind(|| writer_races_failover(true));
    assert_fails_with(result, "the accepted write was lost");
}

/// The broken variant failed, and for the reason the model checks (not, say, a hang).
fn assert_fails_with(result: std::thread::Result<()>, reason: &str) {
    let payload = result.expect_err("loom found no failing interleaving: the model is too weak");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    assert!(
        message.contains(reason),
        "the broken variant failed for another reason: {message}"
    );
}
