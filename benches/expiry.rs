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
//! Not criterion: with `SHARDKV_EXPIRY_CPU=1` the binary instead measures the CPU the real
//! expiry thread (`shardkv-expiry`) uses with 10M keys whose TTLs are uniform in
//! [1 s, 3600 s], over 30 s of steady state (`SHARDKV_EXPIRY_CPU_SECS` to change), and prints
//! it as % of one core, read from `/proc/self/task/<tid>/schedstat` (and `stat`). By default
//! the fill is paced so the timer queue never overflows (`SHARDKV_EXPIRY_CPU_PACE=0` fills flat
//! out), and it prints the queue, sweep and wheel counters every 1M keys. It needs a few GiB
//! of RAM: `SHARDKV_EXPIRY_CPU=1 cargo bench --bench expiry`.
//!
//! Run without `--bench` (as `cargo test --benches` does), criterion runs each benchmark once
//! as a smoke test, and the 1M/10M sizes shrink to 10k/20k to keep that quick.

use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shardkv::clock::{Clock, Tick};
use shardkv::expiry::wheel::TimingWheel;
use shardkv::expiry::{Expirer, ExpiryThread};
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

/// CPU time of one thread (or the whole process with `None`) so far, in ns: from `schedstat`
/// (exact) when the kernel has it, and from `stat`'s utime + stime (10 ms ticks) otherwise.
fn cpu_ns(tid: Option<u32>) -> (Option<u64>, u64) {
    let dir = match tid {
        Some(tid) => format!("/proc/self/task/{tid}"),
        None => "/proc/self".to_string(),
    };
    let schedstat = std::fs::read_to_string(format!("{dir}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    let stat = std::fs::read_to_string(format!("{dir}/stat")).expect("readable /proc stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat has a comm field") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on every Linux this runs on.
    (schedstat, ticks * 10_000_000)
}

/// Times thread `tid` has been scheduled in (the third field of its `schedstat`).
fn timeslices(tid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

/// CPU time of all this process's threads so far, in ns, summed from their `schedstat`.
fn process_sched_ns() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// The id of this process's thread named `name`, waiting up to a second for a new thread to
/// have named itself.
fn thread_id(name: &str) -> Option<u32> {
    for _ in 0..100 {
        if let Some(tid) = find_thread(name) {
            return Some(tid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn find_thread(name: &str) -> Option<u32> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(Result::ok)
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .and_then(|task| task.file_name().to_str()?.parse().ok())
}

fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib / 1024)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A one-line summary of the expiry thread's and the store's counters.
fn expiry_state(store: &ShardedStore<LockFreeShard>, thread: &ExpiryThread) -> String {
    let stats = thread.stats();
    format!(
        "keys {}, pending timers {}, queued requests {}, wheel lag {} ticks, sweeps {}, \
         queue overflows {}, expired {}, RSS {} MiB",
        store.len(),
        stats.pending_timers.load(Relaxed),
        store.pending_timer_requests(),
        stats.wheel_lag_ticks.load(Relaxed),
        stats.sweeps.load(Relaxed),
        store.stats().timer_queue_overflows.get(),
        store.stats().expired_by_wheel.get(),
        rss_mib(),
    )
}

/// The hand-run measurement: the expiry thread's CPU with 10M keys expiring over an hour.
///
/// Knobs: `SHARDKV_EXPIRY_CPU_KEYS` (10,000,000), `SHARDKV_EXPIRY_CPU_SECS` (30) and
/// `SHARDKV_EXPIRY_CPU_PACE` (1: the fill waits whenever the timer queue is half full, so no
/// request overflows it and the wheel holds one timer per key; 0: fill flat out, as a burst
/// of writes would, overflowing into sweeps if the expiry thread falls behind).
fn expiry_thread_cpu() {
    let n: usize = env_or("SHARDKV_EXPIRY_CPU_KEYS", 10_000_000);
    let secs: u64 = env_or("SHARDKV_EXPIRY_CPU_SECS", 30);
    let pace = env_or("SHARDKV_EXPIRY_CPU_PACE", 1u8) == 1;
    let config = StoreConfig {
        initial_capacity: n,
        ..StoreConfig::default()
    };
    let queue_capacity = config.timer_queue_capacity;
    let store = Arc::new(ShardedStore::<LockFreeShard>::new(config, Clock::coarse()));
    let thread = ExpiryThread::start(store.clone()).expect("spawn the expiry thread");
    let tid = thread_id("shardkv-expiry").expect("the expiry thread is named shardkv-expiry");
    let upkeep = thread_id("quanta-upkeep");

    let mut rng = StdRng::seed_from_u64(42);
    let start = Instant::now();
    for i in 0..n as u64 {
        if pace && i % 1024 == 0 {
            while store.pending_timer_requests() > queue_capacity / 2 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        let ttl = Duration::from_millis(rng.gen_range(1_000..=3_600_000));
        store
            .set(
                &i.to_le_bytes(),
                Bytes::copy_from_slice(&i.to_be_bytes()),
                Some(ttl),
                Condition::Always,
            )
            .expect("valid key and value");
        if (i + 1) % 1_000_000 == 0 {
            println!(
                "  {:>5.1} s: {} keys set; {}",
                start.elapsed().as_secs_f64(),
                i + 1,
                expiry_state(&store, &thread)
            );
        }
    }
    let fill = start.elapsed();
    println!(
        "filled {n} keys (paced: {pace}) in {:.1} s ({:.2} M sets/s)",
        fill.as_secs_f64(),
        n as f64 / fill.as_secs_f64() / 1e6,
    );
    println!("after the fill: {}", expiry_state(&store, &thread));
    // Steady state: the queue drained, no sweep for 2 s, the wheel caught up with the clock.
    let settle = Instant::now();
    let mut sweeps = thread.stats().sweeps.load(Relaxed);
    let mut quiet_since = Instant::now();
    while settle.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(100));
        let now_sweeps = thread.stats().sweeps.load(Relaxed);
        let busy = store.pending_timer_requests() > 0
            || now_sweeps != sweeps
            || thread.stats().wheel_lag_ticks.load(Relaxed) > 20;
        sweeps = now_sweeps;
        if busy {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_secs(2) {
            break;
        }
    }
    println!(
        "settled after {:.1} s more: {}",
        settle.elapsed().as_secs_f64(),
        expiry_state(&store, &thread)
    );

    let expired_before = store.stats().expired_by_wheel.get();
    let (t0_sched, t0_stat) = cpu_ns(Some(tid));
    let s0 = timeslices(tid);
    let (_, p0_stat) = cpu_ns(None);
    let p0_sched = process_sched_ns();
    let u0 = upkeep.map(|u| cpu_ns(Some(u)));
    let wall = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (t1_sched, t1_stat) = cpu_ns(Some(tid));
    let s1 = timeslices(tid);
    let (_, p1_stat) = cpu_ns(None);
    let p1_sched = process_sched_ns();
    let u1 = upkeep.map(|u| cpu_ns(Some(u)));
    let wall = wall.elapsed().as_nanos() as f64;
    let expired = store.stats().expired_by_wheel.get() - expired_before;

    let pct = |ns: u64| 100.0 * ns as f64 / wall;
    println!(
        "over {:.1} s of steady state: {expired} keys expired ({:.0}/s)",
        wall / 1e9,
        expired as f64 / (wall / 1e9)
    );
    println!("at the end: {}", expiry_state(&store, &thread));
    if let (Some(a), Some(b)) = (s0, s1) {
        println!(
            "expiry thread scheduled in {:.0} times/s",
            (b - a) as f64 / (wall / 1e9)
        );
    }
    match (t0_sched, t1_sched) {
        (Some(a), Some(b)) => println!(
            "expiry thread CPU (schedstat): {:.3}% of one core",
            pct(b - a)
        ),
        _ => println!("expiry thread CPU: no schedstat on this kernel"),
    }
    println!(
        "expiry thread CPU (stat utime+stime, 10 ms ticks): {:.2}% of one core",
        pct(t1_stat - t0_stat)
    );
    if let (Some((Some(a), _)), Some((Some(b), _))) = (u0, u1) {
        println!(
            "quanta-upkeep thread CPU (schedstat): {:.3}% of one core",
            pct(b - a)
        );
    }
    if let (Some(a), Some(b)) = (p0_sched, p1_sched) {
        println!(
            "whole process CPU (schedstat, all threads): {:.3}% of one core",
            pct(b - a)
        );
    }
    println!(
        "whole process CPU (stat): {:.2}% of one core",
        pct(p1_stat - p0_stat)
    );
    drop(thread);
}

fn main() {
    if std::env::var_os("SHARDKV_EXPIRY_CPU").is_some_and(|v| v == "1") {
        expiry_thread_cpu();
        return;
    }
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
