//! Store throughput: `LockFreeShard` (papaya) against `RwLockShard`, on the same workloads.
//!
//! What runs: every combination of
//! - workload: `get` (100% reads), `set` (100% writes), `mixed95` (95% reads, 5% writes) and
//!   `mixed50` (50/50);
//! - key distribution: `uniform` and `zipf` (Zipf, s = 0.99, over the 1M keys; rank → key
//!   through a fixed random permutation, so the hot keys are spread over all shards);
//! - threads: `t1`, `t2`, `t4` (4 threads on a 2-core machine oversubscribe it on purpose: that
//!   is what a loaded server sees);
//!
//! against two stores built once up front and reused by every benchmark: 1M keys
//! `key:%012d` (16 bytes) with 100-byte values, the default shard count (8 on 2 cores),
//! pre-sized. Reads are `ShardedStore::get`; writes are `ShardedStore::set` without TTL over
//! existing keys; the store copies the value (with the key) into a fresh record per write, as
//! it does for the HTTP handler.
//!
//! How to read it: group `store/<workload>/<dist>/t<threads>` holds the two ids `lockfree` and
//! `rwlock`; criterion's `thrpt:` line is the total operations per second of all threads
//! together (each of the T threads does `iters` operations from its own pre-generated key
//! sequence, starting together at a barrier; the time is the wall time from the first
//! thread's start to the last thread's end). The ratio lockfree/rwlock of the two middle
//! estimates is the number to look at; `perf/RESULTS.md` has the table.
//!
//! The operation sequences (key bytes and read/write choice per operation) are generated
//! before timing, so the RNG and the Zipf sampler are not measured, and the key is read
//! sequentially from the sequence rather than from a 16 MB key table (a request's key is in
//! cache; a random load from the table would add a cache miss the server does not pay).
//!
//! The bench runs on mimalloc, the server's global allocator (with the default `server`
//! feature), since every write allocates (the record and, for `lockfree`, papaya's 32-byte
//! node).
//!
//! Group `hash/route` compares hashing one 16-byte key with `foldhash::fast` (the router's
//! and the shards' hasher) and with std's SipHash `RandomState`.
//!
//! Run without `--bench` (as `cargo test --benches` does), criterion runs each benchmark once
//! as a smoke test; the stores are then built with 10k keys to keep that quick.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use shardkv::clock::Clock;
use shardkv::store::{
    Condition, LockFreeShard, Lookup, RwLockShard, Shard, ShardedStore, StoreConfig,
};

// The server's allocator (see src/main.rs), so that allocation and free costs, which every
// write and every expiry pays, are the ones the server pays.
#[cfg(feature = "server")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keys in each store for a real run.
const KEYS: usize = 1_000_000;
/// Keys in each store in smoke-test mode.
const SMOKE_KEYS: usize = 10_000;
/// Bytes per value.
const VALUE_LEN: usize = 100;
/// Pre-generated operations per thread; a thread wraps around when it reaches the end.
const SEQ_LEN: usize = 1 << 20;
const THREADS: [usize; 3] = [1, 2, 4];
const ZIPF_S: f64 = 0.99;

/// Whether criterion will only smoke-test (no `--bench`, or `--test`).
fn smoke_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

fn make_key(i: usize) -> [u8; 16] {
    let text = format!("key:{i:012}");
    let mut key = [0u8; 16];
    key.copy_from_slice(text.as_bytes());
    key
}

/// The value written by every set: 100 bytes, copied into a fresh record per write.
static VALUE: [u8; VALUE_LEN] = [b'v'; VALUE_LEN];

#[derive(Clone, Copy)]
enum Dist {
    Uniform,
    Zipf,
}

impl Dist {
    fn name(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Zipf => "zipf",
        }
    }
}

#[derive(Clone, Copy)]
struct Workload {
    name: &'static str,
    /// Operations (out of 100) that are writes.
    write_pct: u8,
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "get",
        write_pct: 0,
    },
    Workload {
        name: "set",
        write_pct: 100,
    },
    Workload {
        name: "mixed95",
        write_pct: 5,
    },
    Workload {
        name: "mixed50",
        write_pct: 50,
    },
];

/// One pre-generated operation: the key (copied in, so reading it is a sequential read, as
/// a request's key is already in cache) and a percentile in 0..100 that makes it a write when
/// below the workload's write percentage.
#[derive(Clone, Copy)]
struct Op {
    key: [u8; 16],
    percentile: u8,
}

/// One operation sequence per thread for `dist` over `keys`.
fn sequences(dist: Dist, keys: &[[u8; 16]], threads: usize) -> Vec<Vec<Op>> {
    let n = keys.len();
    // One permutation for all threads: they agree on which keys are hot.
    let mut permutation: Vec<usize> = (0..n).collect();
    permutation.shuffle(&mut StdRng::seed_from_u64(0x5eed));
    let zipf = Zipf::new(n as u64, ZIPF_S).expect("valid Zipf parameters");
    (0..threads)
        .map(|t| {
            let mut rng = StdRng::seed_from_u64(1000 + t as u64);
            (0..SEQ_LEN)
                .map(|_| {
                    let index = match dist {
                        Dist::Uniform => rng.gen_range(0..n),
                        Dist::Zipf => {
                            let rank = zipf.sample(&mut rng) as usize; // 1..=n
                            permutation[rank.clamp(1, n) - 1]
                        }
                    };
                    Op {
                        key: keys[index],
                        percentile: rng.gen_range(0..100),
                    }
                })
                .collect()
        })
        .collect()
}

/// A store of `S` holding `keys` keys, each read back once.
fn populated<S: Shard>(keys: &[[u8; 16]]) -> Arc<ShardedStore<S>> {
    let config = StoreConfig {
        initial_capacity: keys.len(),
        ..StoreConfig::default()
    };
    let store = Arc::new(ShardedStore::<S>::new(config, Clock::coarse()));
    for key in keys {
        store
            .set(key, VALUE, None, Condition::Always)
            .expect("valid key and value");
    }
    for key in keys {
        assert!(matches!(store.get(key), Lookup::Hit(_)));
    }
    store
}

/// Runs `n` operations of `seq` from position `start`: writes where the percentile is below
/// `write_pct`, reads otherwise.
#[inline(never)]
fn run_ops<S: Shard>(store: &ShardedStore<S>, seq: &[Op], start: usize, n: u64, write_pct: u8) {
    let mut pos = start;
    for _ in 0..n {
        let op = seq[pos];
        pos += 1;
        if pos == seq.len() {
            pos = 0;
        }
        let key = &op.key[..];
        if op.percentile < write_pct {
            let version = store.set(key, VALUE, None, Condition::Always);
            black_box(version.expect("valid key and value"));
        } else {
            black_box(store.get(key));
        }
    }
}

/// `threads` threads each run `iters` operations of their own sequence, released together by
/// a barrier. Returns the wall time from the first start to the last end, and moves each
/// thread's cursor on so the next sample continues the sequence.
fn timed_run<S: Shard>(
    store: &ShardedStore<S>,
    seqs: &[Vec<Op>],
    cursors: &mut [usize],
    iters: u64,
    write_pct: u8,
) -> Duration {
    let threads = cursors.len();
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let seq = &seqs[t][..];
                let start = cursors[t];
                scope.spawn(move || {
                    barrier.wait();
                    let begin = Instant::now();
                    run_ops(store, seq, start, iters, write_pct);
                    (begin, Instant::now())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    for cursor in cursors.iter_mut() {
        *cursor = ((*cursor as u64 + iters) % SEQ_LEN as u64) as usize;
    }
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    last - first
}

fn bench_one<S: Shard>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    store: &ShardedStore<S>,
    seqs: &[Vec<Op>],
    threads: usize,
    workload: Workload,
) {
    let mut cursors = vec![0usize; threads];
    group.bench_function(BenchmarkId::from_parameter(S::KIND), |b| {
        b.iter_custom(|iters| timed_run(store, seqs, &mut cursors, iters, workload.write_pct))
    });
}

fn store_benches(c: &mut Criterion) {
    let n = if smoke_mode() { SMOKE_KEYS } else { KEYS };
    let keys: Vec<[u8; 16]> = (0..n).map(make_key).collect();
    let lockfree = populated::<LockFreeShard>(&keys);
    let rwlock = populated::<RwLockShard>(&keys);
    let max_threads = THREADS.iter().copied().max().unwrap_or(1);

    for dist in [Dist::Uniform, Dist::Zipf] {
        let seqs = sequences(dist, &keys, max_threads);
        for workload in WORKLOADS {
            for threads in THREADS {
                let name = format!("store/{}/{}/t{threads}", workload.name, dist.name());
                let mut group = c.benchmark_group(name);
                group
                    .sample_size(10)
                    .warm_up_time(Duration::from_millis(300))
                    .measurement_time(Duration::from_secs(1))
                    .throughput(Throughput::Elements(threads as u64));
                bench_one(&mut group, &lockfree, &seqs, threads, workload);
                bench_one(&mut group, &rwlock, &seqs, threads, workload);
                group.finish();
            }
        }
    }
}

fn hash_benches(c: &mut Criterion) {
    const BATCH: usize = 1024;
    let keys: Vec<[u8; 16]> = (0..BATCH).map(|i| make_key(i * 7919)).collect();
    let mask = 7u64; // 8 shards
    let mut group = c.benchmark_group("hash/route");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(BATCH as u64));
    let fold = foldhash::fast::RandomState::default();
    group.bench_function("foldhash", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(fold.hash_one(black_box(&key[..])) & mask);
            }
        })
    });
    let sip = std::collections::hash_map::RandomState::new();
    group.bench_function("siphash", |b| {
        b.iter(|| {
            for key in &keys {
                black_box(sip.hash_one(black_box(&key[..])) & mask);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, hash_benches, store_benches);
criterion_main!(benches);
