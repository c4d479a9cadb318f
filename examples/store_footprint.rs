//! The store alone, without HTTP: loads keys into a `ShardedStore` and prints the resident
//! memory per key, the slowest write (a table resize) and the single-thread cost of a lookup
//! (miss and hit), before and after completing any resize in progress. It backs the numbers
//! in `src/store/lockfree.rs` and `perf/RESULTS.md` ("store footprint").
//!
//! ```sh
//! cargo run --release --example store_footprint -- lockfree   # or rwlock; optional key count
//! ```
//!
//! Keys are `key:%012d` (16 bytes), values 100 bytes, no TTL, default shard count: the same
//! shape as the HTTP memory measurement in `perf/run.sh`. RSS is read from `/proc/self/statm`
//! before and half a second after the load.

use std::time::{Duration, Instant};

use shardkv::clock::Clock;
use shardkv::store::{Condition, LockFreeShard, RwLockShard, Shard, ShardedStore, StoreConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0
}

fn ns_per_lookup<S: Shard>(store: &ShardedStore<S>, prefix: &str, n: usize) -> (f64, usize) {
    let start = Instant::now();
    let mut found = 0;
    for i in 0..n {
        // A stride co-prime with n visits every key once, in an order the cache cannot follow.
        let key = format!("{prefix}:{:012}", (i * 7919) % n);
        found += store.get(key.as_bytes()).found().is_some() as usize;
    }
    (start.elapsed().as_nanos() as f64 / n as f64, found)
}

fn run<S: Shard>(n: usize) {
    let store = ShardedStore::<S>::new(StoreConfig::default(), Clock::coarse());
    let before = rss_bytes();
    let value = [b'v'; 100];
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let key = format!("key:{i:012}");
        let start = Instant::now();
        store
            .set(key.as_bytes(), value, None, Condition::Always)
            .expect("within the default limits");
        slowest = slowest.max(start.elapsed());
    }
    std::thread::sleep(Duration::from_millis(500));
    let per_key = (rss_bytes() - before) / n as f64;
    println!(
        "{} shards, {n} keys: {per_key:.1} B/key (RSS delta)",
        S::KIND
    );
    // A write that grows a shard's table copies it (papaya's blocking resize; hashbrown's
    // rehash): the slowest write shows that pause.
    println!("  slowest set: {:.2} ms", slowest.as_secs_f64() * 1e3);
    let lookups = |label: &str| {
        let (miss, none) = ns_per_lookup(&store, "miss", n);
        let (hit, all) = ns_per_lookup(&store, "key", n);
        assert_eq!((none, all), (0, n));
        println!("  {label}: {miss:.0} ns per miss, {hit:.0} ns per hit");
    };
    // Right after the load a lock-free shard may be mid-resize; in the server the expiry
    // thread completes it within one step (`ShardedStore::finish_resizes`).
    lookups("as loaded");
    let start = Instant::now();
    store.maintain();
    println!(
        "  finish_resizes: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    lookups("resizes finished");
    lookups("again");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "lockfree".into());
    let n = args
        .next()
        .map_or(1_000_000, |n| n.parse().expect("a key count"));
    match kind.as_str() {
        "lockfree" => run::<LockFreeShard>(n),
        "rwlock" => run::<RwLockShard>(n),
        other => eprintln!("unknown store {other:?}: lockfree or rwlock"),
    }
}
