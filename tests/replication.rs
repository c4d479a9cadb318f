//! Replication through the real store and apply threads: replicas converge to the primary
//! exactly, a replica that overflows its queue re-syncs, and acknowledged writes survive a
//! failover.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::replication::{ApplyThreads, FailoverError, Health, Replicas};
use shardkv::store::{
    AckPolicy, Condition, LockFreeShard, RwLockShard, Shard, ShardedStore, StoreConfig,
};

/// A store of 8 shards with `replicas` replicas whose queues hold `queue` changes.
fn replicated<S: Shard>(replicas: usize, queue: usize) -> Arc<Replicas<S>> {
    let (clock, _hand) = Clock::manual(0);
    let store = Arc::new(ShardedStore::new(
        StoreConfig {
            shards: 8,
            replicas,
            ..StoreConfig::default()
        },
        clock,
    ));
    Arc::new(Replicas::attach(store, queue).unwrap())
}

/// Waits until every copy is live and has applied everything, then checks each copy of each
/// shard equals the primary, entry by entry (key, value, version).
fn assert_converged<S: Shard>(replicas: &Replicas<S>) {
    let store = replicas.store();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let caught_up = (0..store.shard_count())
            .all(|s| replicas.is_replicated(s, store.shard_seq(s)))
            && replicas
                .copy_reports()
                .iter()
                .all(|r| r.health == Health::Live && r.lag_ops == 0);
        if caught_up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas did not catch up: {:?}",
            replicas.copy_reports()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for shard in 0..store.shard_count() {
        let primary = store.primary_of(shard);
        let expected = store.copy_contents(primary, shard);
        for copy in 0..=store.replicas() {
            if copy == primary || store.failed_copies(shard) & (1 << copy) != 0 {
                continue;
            }
            let got = store.copy_contents(copy, shard);
            assert_eq!(
                got.len(),
                expected.len(),
                "copy {copy} of shard {shard}: entry count"
            );
            assert!(
                got == expected,
                "copy {copy} of shard {shard} differs from its primary"
            );
        }
    }
}

fn load<S: Shard>(store: &Arc<ShardedStore<S>>, threads: usize, ops: usize) {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut x = t as u64 * 0x9E37_79B9 + 7;
                for i in 0..ops {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("k{}", x % 5_000);
                    match x % 10 {
                        0..=6 => {
                            let ttl = (x % 4 == 0).then(|| Duration::from_secs(3600));
                            store
                                .set(
                                    key.as_bytes(),
                                    Bytes::from(format!("{t}-{i}")),
                                    ttl,
                                    Condition::Always,
                                )
                                .unwrap();
                        }
                        _ => {
                            store.delete(key.as_bytes()).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
}

#[test]
fn lockfree_replicas_equal_the_primary_after_1m_concurrent_writes() {
    let replicas = replicated::<LockFreeShard>(2, 1 << 16);
    let store = replicas.store().clone();
    let _apply = ApplyThreads::start(replicas.clone()).unwrap();
    load(&store, 4, 250_000);
    // Four writers on two cores can outrun the apply threads and overflow a queue; whether
    // or not that happened, the replicas end equal to the primaries.
    assert_converged(&replicas);
}

#[test]
fn rwlock_replicas_equal_the_primary_after_concurrent_writes() {
    let replicas = replicated::<RwLockShard>(1, 1 << 16);
    let store = replicas.store().clone();
    let _apply = ApplyThreads::start(replicas.clone()).unwrap();
    load(&store, 4, 50_000);
    assert_converged(&replicas);
}

#[test]
fn a_replica_whose_queue_overflows_resyncs_and_converges() {
    // A queue of 16 records cannot keep up with four writers: the replica goes stale, re-syncs
    // from the primaries, and still ends equal to them.
    let replicas = replicated::<LockFreeShard>(1, 16);
    let store = replicas.store().clone();
    let _apply = ApplyThreads::start(replicas.clone()).unwrap();
    load(&store, 4, 50_000);
    assert!(
        replicas.stats().overflows.get() > 0,
        "the queue never overflowed"
    );
    assert_converged(&replicas);
}

#[test]
fn acknowledged_writes_survive_failover_under_load() {
    acknowledged_writes_survive_failover(1 << 16, 2_000);
}

#[test]
fn acknowledged_writes_survive_failover_with_tiny_queues() {
    // Queues of 8 records overflow all the time: replicas go stale and re-sync again and again
    // while primaries fail over and recover.
    acknowledged_writes_survive_failover(8, 1_000);
}

#[test]
fn a_resync_completes_while_writers_keep_overflowing_the_queue() {
    // Four writers never stop while a replica with a queue of 4 records keeps overflowing: a
    // re-sync that needed a quiet moment would never finish. It must, and more than once.
    let replicas = replicated::<LockFreeShard>(1, 4);
    let store = replicas.store().clone();
    let _apply = ApplyThreads::start(replicas.clone()).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                // Bounded even if the re-sync never completes.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2_000_000 {
                    let key = format!("k{}", (i * 7 + t) % 3_000);
                    if i % 5 == 4 {
                        store.delete(key.as_bytes()).unwrap();
                    } else {
                        store
                            .set(
                                key.as_bytes(),
                                Bytes::from(format!("{t}-{i}")),
                                None,
                                Condition::Always,
                            )
                            .unwrap();
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while replicas.stats().resyncs.get() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let resyncs_under_load = replicas.stats().resyncs.get();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writers.into_iter().for_each(|h| h.join().unwrap());
    assert!(
        replicas.stats().overflows.get() > 0,
        "the queue never overflowed"
    );
    assert!(
        resyncs_under_load >= 3,
        "only {resyncs_under_load} re-syncs completed while the writers ran"
    );
    assert_converged(&replicas);
}

fn acknowledged_writes_survive_failover(queue: usize, writes: usize) {
    let replicas = replicated::<LockFreeShard>(2, queue);
    let store = replicas.store().clone();
    let _apply = ApplyThreads::start(replicas.clone()).unwrap();
    // Background load on every shard while we fail primaries.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noise = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("noise{}", i % 1000);
                store
                    .set(
                        key.as_bytes(),
                        Bytes::from_static(b"n"),
                        None,
                        Condition::Always,
                    )
                    .unwrap();
                i += 1;
            }
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut acked = Vec::new();
    for i in 0..writes {
        let key = format!("acked{i}");
        let receipt = store
            .set(
                key.as_bytes(),
                Bytes::from(key.clone()),
                None,
                Condition::Always,
            )
            .unwrap();
        rt.block_on(async {
            let ack = receipt.acknowledged(AckPolicy::AllReplicas);
            tokio::time::timeout(Duration::from_secs(10), ack)
                .await
                .expect("ack=all timed out")
                .expect("the write was acknowledged")
        });
        acked.push(key);
        if i % 250 == 0 {
            let shard = (i / 250) % store.shard_count();
            let before = store.primary_of(shard);
            // Under this load a replica's queue can overflow; a stale or re-syncing replica is
            // never promoted, so wait (bounded) until one is live again.
            let deadline = Instant::now() + Duration::from_secs(30);
            let after = loop {
                match replicas.fail_primary(shard) {
                    Ok(promoted) => break promoted,
                    Err(FailoverError::NoReplica { .. }) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => panic!("failover of shard {shard}: {e}"),
                }
            };
            assert_ne!(before, after);
            // Every acknowledged write is readable right after the failover.
            for key in &acked {
                let found = store.get(key.as_bytes()).found();
                assert_eq!(
                    found.as_ref().map(|f| f.value()),
                    Some(key.as_bytes()),
                    "{key} lost"
                );
            }
            replicas.request_recovery(shard).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while store.failed_copies(shard) != 0 {
                assert!(Instant::now() < deadline, "recovery did not finish");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    noise.join().unwrap();
    assert_converged(&replicas);
}

#[test]
fn failover_without_a_replica_is_refused_and_changes_nothing() {
    let replicas = replicated::<LockFreeShard>(0, 16);
    let store = replicas.store().clone();
    store
        .set(b"k", Bytes::from_static(b"v"), None, Condition::Always)
        .unwrap();
    let shard = store.shard_of(b"k");
    let err = replicas.fail_primary(shard).unwrap_err();
    assert!(err.to_string().contains("no live replica"), "{err}");
    assert_eq!(store.primary_of(shard), 0);
    assert_eq!(store.get(b"k").found().unwrap().value(), b"v");
    assert!(replicas.request_recovery(shard).is_err());
    assert!(replicas.fail_primary(99).is_err());
}

#[test]
fn expiry_is_replicated_and_keeps_working_after_failover() {
    let (clock, hand) = Clock::manual(0);
    let store = Arc::new(ShardedStore::<LockFreeShard>::new(
        StoreConfig {
            shards: 2,
            replicas: 1,
            ..StoreConfig::default()
        },
        clock,
    ));
    let replicas = Arc::new(Replicas::attach(store.clone(), 1 << 16).unwrap());
    let _apply = ApplyThreads::start(replicas.clone()).unwrap();
    let mut expirer = shardkv::expiry::Expirer::new(store.clone());
    for i in 0..100 {
        let ttl = Duration::from_millis(if i < 50 { 10 } else { 1_000 });
        store
            .set(
                format!("k{i}").as_bytes(),
                Bytes::from_static(b"v"),
                Some(ttl),
                Condition::Always,
            )
            .unwrap();
    }
    expirer.step();
    hand.advance(10);
    expirer.step();
    assert_eq!(store.len(), 50);
    assert_converged(&replicas); // the replicas removed the expired keys too
                                 // Fail both shards over to the replica; the wheel keeps expiring on the new primaries.
    for shard in 0..2 {
        replicas.fail_primary(shard).unwrap();
    }
    expirer.step();
    hand.advance(990);
    expirer.step();
    assert_eq!(
        store.len(),
        0,
        "keys outlived their TTL on the promoted replica"
    );
}

#[test]
fn async_writes_lose_nothing_at_failover_because_promotion_drains_the_replica() {
    // The loss bound for ack=async is the lag reported at failure time; promotion drains the
    // chosen replica first, so the loss is in fact zero, whatever the lag was.
    let replicas = replicated::<LockFreeShard>(1, 1 << 16);
    let store = replicas.store().clone();
    let _apply = ApplyThreads::start(replicas.clone()).unwrap();
    for round in 0..20 {
        let keys: Vec<String> = (0..2_000).map(|i| format!("r{round}-{i}")).collect();
        for key in &keys {
            store
                .set(
                    key.as_bytes(),
                    Bytes::from(key.clone()),
                    None,
                    Condition::Always,
                )
                .unwrap();
        }
        let shard = round % store.shard_count();
        let lag_before: u64 = replicas.copy_reports().iter().map(|r| r.lag_ops).sum();
        replicas.fail_primary(shard).unwrap();
        let lost = keys
            .iter()
            .filter(|k| store.get(k.as_bytes()).found().is_none())
            .count() as u64;
        assert!(
            lost <= lag_before,
            "lost {lost} > reported lag {lag_before}"
        );
        assert_eq!(lost, 0);
        replicas.request_recovery(shard).unwrap();
        while store.failed_copies(shard) != 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
