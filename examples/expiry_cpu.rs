//! The CPU the real expiry thread (`shardkv-expiry`) uses with 10M keys whose TTLs are uniform
//! in [1 s, 3600 s], over 30 s of steady state, as % of one core, read from
//! `/proc/self/task/<tid>/schedstat` (and `stat`).
//!
//! ```text
//! cargo run --release --example expiry_cpu [-- --keys N] [--secs S] [--flat]
//! ```
//!
//! By default the fill is paced so the timer queue never overflows (`--flat` fills flat out),
//! and it prints the queue, sweep and wheel counters every 1M keys. It needs a few GiB of RAM.
//! Linux only (it reads `/proc`). Results are in `perf/RESULTS.md`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shardkv::clock::Clock;
use shardkv::expiry::ExpiryThread;
use shardkv::store::{Condition, LockFreeShard, ShardedStore, StoreConfig};

// The server's allocator (see src/main.rs), so that allocation and free costs are the ones the
// server pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    expiry_thread_cpu();
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

/// The value after `--flag` on the command line, or `default`.
fn arg_or<T: std::str::FromStr>(flag: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} needs a number, not {v:?}"))
        })
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
/// Options: `--keys N` (10,000,000), `--secs S` (30) and `--flat` (by default the fill waits
/// whenever the timer queue is half full, so no request overflows it and the wheel holds one
/// timer per key; `--flat` fills flat out, as a burst of writes would, overflowing into sweeps
/// if the expiry thread falls behind).
fn expiry_thread_cpu() {
    let n: usize = arg_or("--keys", 10_000_000);
    let secs: u64 = arg_or("--secs", 30);
    let pace = !std::env::args().any(|a| a == "--flat");
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
