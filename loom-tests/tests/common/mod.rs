//! What the loom model files share: a small replicated store on loom's primitives, and running a
//! model's broken variant in a child process.

#![allow(dead_code)]

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::replication::Replicas;
use shardkv::store::{Condition, RwLockShard, ShardedStore, StoreConfig};
use shardkv::sync::Arc;

/// One shard with `replicas` replicas whose queues hold `queue` records; a manual clock. The
/// replication sink is registered as the server registers it.
pub fn replicated_store(replicas: usize, queue: usize) -> Arc<Replicas<RwLockShard>> {
    let (clock, _hand) = Clock::manual(0);
    let store = Arc::new(ShardedStore::new(
        StoreConfig {
            shards: 1,
            replicas,
            timer_queue_capacity: 4,
            ..StoreConfig::default()
        },
        clock,
    ));
    Arc::new(Replicas::attach(store, queue).unwrap())
}

/// Sets key `k` to `value` through the store; returns the write's version.
pub fn set(replicas: &Replicas<RwLockShard>, value: &'static str) -> u64 {
    replicas
        .store()
        .set(
            b"k",
            Bytes::from_static(value.as_bytes()),
            None,
            Condition::Always,
        )
        .unwrap()
        .version
}

/// Runs the ignored test `name` of this test binary alone, in a child process, and asserts it
/// fails with `reason` in its output. For broken variants whose failure loom reports by
/// panicking with threads still blocked (its clean-up then aborts the process), or that flip a
/// process-wide switch.
pub fn assert_child_fails(name: &str, reason: &str) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains(reason),
        "loom found no failure ({reason}) in the broken variant {name}: the model is too weak\n{stderr}"
    );
}
