//! loom model of the log's hold-and-publish rule, run on the real `persistence::progress` code:
//! a writer whose records overflow a one-slot log queue, the log thread appending, syncing and
//! landing a snapshot, and the snapshot taking its fence inside the writer section.
//!
//! The property: whatever the interleaving, every write of the shard at or below the published
//! durable sequence number is either in a synced log batch or at or below the fence of the
//! snapshot that landed. The broken variant (the old rule: at a landing publish
//! `max(fence, written)` whatever was dropped) must be caught.
//!
//! Stand-ins: the writer section is a loom `Mutex<u64>` holding the sequence number, and the
//! writer's overflow is `LogSink::append`'s (push; if full, record the drop inside the section);
//! `LogSink` itself is not built under loom (its consumer parks threads, which loom cannot
//! model), so the model calls the same `SharedProgress::record_dropped` it calls.
//!
//! Run: `RUSTFLAGS="--cfg shardkv_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release`.

#![cfg(shardkv_loom)]

use shardkv::persistence::progress::{Publisher, SharedProgress};
use shardkv::sync::{lock, Arc, BoundedQueue, Mutex};

/// Takes every queued record, as the log thread's batch does, and remembers it as appended.
fn drain(queue: &BoundedQueue<u64>, publisher: &mut Publisher, appended: &mut Vec<u64>) {
    while let Some(seq) = queue.pop() {
        publisher.appended(0, seq);
        appended.push(seq);
    }
}

/// Every write up to the published progress is in a synced batch or covered by the snapshot.
fn check(shared: &SharedProgress, synced: &[u64], covered: u64) {
    let durable = shared.durable(0);
    for seq in 1..=durable {
        assert!(
            seq <= covered || synced.contains(&seq),
            "write {seq} published durable (progress {durable}) but it is in neither the \
             snapshot (fence {covered}) nor a synced log batch {synced:?}"
        );
    }
}

fn hold_and_publish(broken: bool) {
    loom::model(move || {
        let shared = Arc::new(SharedProgress::new(1));
        let section = Arc::new(Mutex::new(0u64));
        let queue = Arc::new(BoundedQueue::new(1));

        let writer = {
            let (shared, section, queue) = (shared.clone(), section.clone(), queue.clone());
            loom::thread::spawn(move || {
                for _ in 0..3 {
                    let mut seq = lock(&section);
                    *seq += 1;
                    if queue.push(*seq).is_err() {
                        shared.record_dropped(0, *seq);
                    }
                }
            })
        };
        // The snapshot copies the shard inside its writer section: the fence.
        let snapshot = {
            let section = section.clone();
            loom::thread::spawn(move || *lock(&section))
        };

        // The log thread.
        let mut publisher = Publisher::new(1);
        if broken {
            publisher.break_publish_rule_for_model();
        }
        let mut appended = Vec::new();
        drain(&queue, &mut publisher, &mut appended);
        publisher.synced(&shared);
        check(&shared, &appended, 0);

        let fence = snapshot.join().unwrap();
        drain(&queue, &mut publisher, &mut appended);
        publisher.synced(&shared);
        check(&shared, &appended, 0);
        publisher.snapshot_landed(&shared, &[fence]);
        check(&shared, &appended, fence);

        writer.join().unwrap();
        drain(&queue, &mut publisher, &mut appended);
        publisher.synced(&shared);
        check(&shared, &appended, fence);
        // Whatever is still uncovered needs another snapshot; one after the writer is done
        // covers everything and releases all progress.
        let last = *lock(&section);
        if publisher.uncovered(&shared) {
            publisher.snapshot_landed(&shared, &[last]);
        }
        check(&shared, &appended, last);
        assert_eq!(
            shared.durable(0),
            last,
            "progress stuck below the last write"
        );
    });
}

#[test]
fn published_progress_never_passes_a_dropped_record_no_snapshot_covers() {
    hold_and_publish(false);
}

/// The same model with the old landing rule must fail: the model can catch the bug.
#[test]
fn the_old_landing_rule_is_caught() {
    let result = std::panic::catch_unwind(|| hold_and_publish(true));
    assert!(
        result.is_err(),
        "loom found no failing interleaving with the old rule: the model is too weak"
    );
}
