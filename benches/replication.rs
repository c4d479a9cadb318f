//! Write throughput with 0, 1 and 2 replicas, acknowledged `async` (after the primary) or
//! `all` (after every live replica applied the write), through the real store and apply
//! threads.
//!
//! Read it as: the `async` rows show what replication costs a writer (record building and one
//! queue push per replica inside the writer section, plus apply threads competing for the
//! cores); the `all` rows add the round trip to the apply threads for every write. Each sample
//! is 2 writer threads × `iters` sets of a 100-byte value over 100k keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shardkv::clock::Clock;
use shardkv::replication::{ApplyThreads, Replicas};
use shardkv::store::{AckPolicy, Condition, LockFreeShard, ShardedStore, StoreConfig};

const KEYS: u64 = 100_000;
const WRITERS: u64 = 2;

fn writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("replication/set");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(WRITERS));
    let keys: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..KEYS)
            .map(|i| format!("key:{i:012}").into_bytes())
            .collect(),
    );
    let value = Bytes::from(vec![b'v'; 100]);
    for replicas in [0usize, 1, 2] {
        let store = Arc::new(ShardedStore::<LockFreeShard>::new(
            StoreConfig {
                replicas,
                initial_capacity: KEYS as usize,
                ..StoreConfig::default()
            },
            Clock::coarse(),
        ));
        let copies = Arc::new(Replicas::attach(store.clone(), 1 << 16).unwrap());
        let _apply = ApplyThreads::start(copies).unwrap();
        for ack_all in [false, true] {
            if replicas == 0 && ack_all {
                continue;
            }
            let mode = if ack_all { "all" } else { "async" };
            group.bench_function(
                BenchmarkId::new(mode, format!("replicas={replicas}")),
                |b| {
                    b.iter_custom(|iters| {
                        let start = Instant::now();
                        std::thread::scope(|scope| {
                            for w in 0..WRITERS {
                                let (store, keys, value) = (&store, &keys, &value);
                                scope.spawn(move || {
                                    let rt = tokio::runtime::Builder::new_current_thread()
                                        .build()
                                        .unwrap();
                                    let mut i = w * 7919;
                                    for _ in 0..iters {
                                        i = (i + 104_729) % KEYS;
                                        let key = &keys[i as usize];
                                        let receipt = store
                                            .set(key, value.clone(), None, Condition::Always)
                                            .unwrap();
                                        if ack_all {
                                            let ack = receipt.acknowledged(AckPolicy::AllReplicas);
                                            rt.block_on(ack).unwrap();
                                        }
                                    }
                                });
                            }
                        });
                        start.elapsed()
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, writes);
criterion_main!(benches);
