//! Expiry cost: scheduling and firing timers in the timing wheel alone, and expiring keys
//! through the store.
//!
//! What runs (criterion, `cargo bench --bench expiry`):
//! - `expiry/wheel/1M` and `expiry/wheel/10M`: a `TimingWheel` starting at tick 0 gets 1M
//!   (10M) timers with deadlines uniform over 1 h (ticks 1..=3,600,000; pre-generated), each
//!   carrying a 24-byte payload like the expiry thread's `(shard, Box<[u8]>)`.
//!   - `insert`: inserting all of them into an empty wheel (slot `Vec` growth included).
//!   - `advance_once`: one `advance(3_600_000)` over a full wheel, firing all of them
//!     (cascades included; the fill is not timed).
//!   - `advance_10ms` (1M only): the same in 10 ms steps, the expiry thread's longest sleep.
//! - `expiry/store/1M`: a store with 1M keys whose TTLs are uniform over 1..=1000 ms of a
//!   manual clock, their timers already drained into an `Expirer`'s wheel (not timed); then,
//!   timed, `Expirer::step_at(t)` for t = 1..=1000 until no backlog: wheel + `on_timer`
//!   (lookup, the shard's writer section, removal) for every key. Ids `lockfree` and
//!   `rwlock`. The timer queue is sized to 1M for this bench so no request overflows it.
//!
//! The bench runs on mimalloc, the server's global allocator (with the default `server`
//! feature): an expiry frees the key, the value and the entry.
//!
//! How to read it: every benchmark's throughput is `Elements(timers or keys)`, so criterion's
//! `time:` divided by 1M (10M) is the ns per insert / per fired timer / per expired key, and
//! `thrpt:` is its inverse. The big ones use flat sampling with one iteration per sample;
//! criterion may warn that 10 samples do not fit the target time, which is expected.
//!
//! The CPU the real expiry thread uses with 10M keys is measured by
//! `examples/expiry_cpu.rs`, not here.
//!
//! Run without `--bench` (as `cargo test --benches` does), criterion runs each benchmark once
//! as a smoke test, and the 1M/10M sizes shrink to 10k/20k to keep that quick.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shardkv::clock::{Clock, Tick};
use shardkv::expiry::wheel::TimingWheel;
use shardkv::expiry::Expirer;
use shardkv::store::{Condition, LockFreeShard, RwLockShard, Shard, ShardedStore, StoreConfig};

// The server's allocator (see src/main.rs), so that allocation and free costs, which every
// write and every expiry pays, are the ones the server pays.
#[cfg(feature = "server")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One hour in ticks (1 ms each).
const HOUR: Tick = 3_600_000;

/// A payload of the size of the expiry thread's `(u32, Box<[u8]>)` (24 bytes).
type Payload = [u64; 3];

/// Whether criterion will only smoke-test (no `--bench`, or `--test`).
fn smoke_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

/// `n` deadlines uniform in `1..=span`.
fn deadlines(n: usize, span: Tick, seed: u64) -> Vec<Tick> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(1..=span)).collect()
}

fn payload(i: usize) -> Payload {
    [i as u64, 0, 0]
}

fn filled_wheel(deadlines: &[Tick]) -> TimingWheel<Payload> {
    let mut wheel = TimingWheel::new(0);
    for (i, &d) in deadlines.iter().enumerate() {
        wheel.insert(d, payload(i));
    }
    wheel
}

fn label(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{n}")
    }
}

/// Benchmarks the wheel alone with `n` timers over one hour.
fn wheel_group(c: &mut Criterion, n: usize, with_steps: bool) {
    let ds = deadlines(n, HOUR, n as u64);
    let mut group = c.benchmark_group(format!("expiry/wheel/{}", label(n)));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(n as u64));

    group.bench_function("insert", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut wheel = TimingWheel::new(0);
                let start = Instant::now();
                for (i, &d) in ds.iter().enumerate() {
                    wheel.insert(d, payload(i));
                }
                total += start.elapsed();
                assert_eq!(wheel.len(), n);
                drop(black_box(wheel));
            }
            total
        })
    });

    group.bench_function("advance_once", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut wheel = filled_wheel(&ds);
                let mut fired = 0usize;
                let start = Instant::now();
                wheel.advance(HOUR, |_, item| {
                    black_box(item);
                    fired += 1;
                });
                total += start.elapsed();
                assert_eq!(fired, n);
                drop(black_box(wheel));
            }
            total
        })
    });

    if with_steps {
        group.bench_function("advance_10ms", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut wheel = filled_wheel(&ds);
                    let mut fired = 0usize;
                    let start = Instant::now();
                    let mut now = 0;
                    while now < HOUR {
                        now = (now + 10).min(HOUR);
                        wheel.advance(now, |_, item| {
                            black_box(item);
                            fired += 1;
                        });
                    }
                    total += start.elapsed();
                    assert_eq!(fired, n);
                    drop(black_box(wheel));
                }
                total
            })
        });
    }
    group.finish();
}

fn ttl_key(i: usize) -> [u8; 16] {
    let text = format!("key:{i:012}");
    let mut key = [0u8; 16];
    key.copy_from_slice(text.as_bytes());
    key
}

/// A store of `n` keys with TTLs `ttls` (ms) on a manual clock at 0, and an expirer whose
/// wheel already holds every key's timer.
fn store_with_timers<S: Shard>(
    keys: &[[u8; 16]],
    ttls: &[Tick],
) -> (Arc<ShardedStore<S>>, Expirer<S>) {
    let (clock, _hand) = Clock::manual(0);
    let config = StoreConfig {
        initial_capacity: keys.len(),
        timer_queue_capacity: keys.len(),
        ..StoreConfig::default()
    };
    let store = Arc::new(ShardedStore::<S>::new(config, clock));
    for (key, &ttl) in keys.iter().zip(ttls) {
        store
            .set(
                key,
                Bytes::copy_from_slice(b"12345678"),
                Some(Duration::from_millis(ttl)),
                Condition::Always,
            )
            .expect("valid key and value");
    }
    let mut expirer = Expirer::new(store.clone());
    let report = expirer.step_at(0);
    assert_eq!(report.fired, 0);
    assert_eq!(
        expirer.pending_timers(),
        keys.len(),
        "every key has one timer"
    );
    assert_eq!(store.stats().timer_queue_overflows.get(), 0);
    (store, expirer)
}

fn bench_store_expiry<S: Shard>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    keys: &[[u8; 16]],
    ttls: &[Tick],
    span: Tick,
) {
    group.bench_function(BenchmarkId::from_parameter(S::KIND), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (store, mut expirer) = store_with_timers::<S>(keys, ttls);
                let mut expired = 0;
                let start = Instant::now();
                for now in 1..=span {
                    loop {
                        let report = expirer.step_at(now);
                        expired += report.expired;
                        if !report.backlog {
                            break;
                        }
                    }
                }
                total += start.elapsed();
                assert_eq!(expired, keys.len());
                assert!(store.is_empty());
                drop(black_box((store, expirer)));
            }
            total
        })
    });
}

fn store_group(c: &mut Criterion, n: usize) {
    const SPAN: Tick = 1000;
    let keys: Vec<[u8; 16]> = (0..n).map(ttl_key).collect();
    let ttls = deadlines(n, SPAN, 7);
    let mut group = c.benchmark_group(format!("expiry/store/{}", label(n)));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(n as u64));
    bench_store_expiry::<LockFreeShard>(&mut group, &keys, &ttls, SPAN);
    bench_store_expiry::<RwLockShard>(&mut group, &keys, &ttls, SPAN);
    group.finish();
}

fn main() {
    let smoke = smoke_mode();
    let (one, ten) = if smoke {
        (10_000, 20_000)
    } else {
        (1_000_000, 10_000_000)
    };
    let mut c = Criterion::default().configure_from_args();
    wheel_group(&mut c, one, true);
    wheel_group(&mut c, ten, false);
    store_group(&mut c, one);
    c.final_summary();
}
