//! loom model of `ParkedConsumer`, the parking protocol of the log thread and the replica apply
//! threads: a producer's wake-up is never lost.
//!
//! The real protocol naps with a timeout (5 ms), which would hide a lost wake-up as a short
//! delay; under loom the nap is an untimed park (see `shardkv::sync`), so a lost wake-up is a
//! deadlock that loom reports. The queue is `BoundedQueue`'s loom stand-in.

#![cfg(shardkv_loom)]

mod common;

use std::time::Duration;

use shardkv::sync::{Arc, BoundedQueue, ParkedConsumer};

fn producer_wakes_consumer(broken: bool) {
    loom::model(move || {
        let queue = Arc::new(BoundedQueue::<u32>::new(4));
        let consumer = Arc::new(ParkedConsumer::new(4));
        if broken {
            consumer.break_order_for_model();
        }
        let drain = {
            let (queue, consumer) = (queue.clone(), consumer.clone());
            loom::thread::spawn(move || {
                consumer.register_current();
                let mut taken = 0;
                while taken < 1 {
                    if queue.pop().is_some() {
                        taken += 1;
                        continue;
                    }
                    consumer.nap(Duration::from_millis(5), || queue.is_empty());
                }
            })
        };
        queue.push(1).unwrap();
        // Urgent: a client waits for this item (as with --fsync always or ack=all).
        consumer.wake_after_push(true, || queue.len());
        drain.join().unwrap();
    });
}

#[test]
fn a_wake_up_is_never_lost() {
    producer_wakes_consumer(false);
}

/// Looking at the queue before announcing the nap must deadlock in some interleaving. loom
/// reports a deadlock by panicking with threads still blocked, and its clean-up then aborts the
/// process, so the broken model runs in a child process whose failure is asserted.
#[test]
fn parked_model_fails_when_the_look_precedes_the_announcement() {
    common::assert_child_fails("broken_look_first", "deadlock");
}

/// The broken variant itself (run by the test above, in a child process).
#[test]
#[ignore = "run by parked_model_fails_when_the_look_precedes_the_announcement"]
fn broken_look_first() {
    producer_wakes_consumer(true);
}
