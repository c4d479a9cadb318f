//! Read-latency tails of the two shard kinds, `LockFreeShard` (papaya) against `RwLockShard`
//! (hashbrown behind an `RwLock`), while a writer works on the same shard.
//!
//! Throughput is level between the two kinds on 2 cores (`benches/store.rs`); what the
//! lock-free design promises is that a reader never waits for a writer or a resize. So this
//! measures the waits, not the averages: one reader thread times every `ShardedStore::get`
//! (`Instant` around the call, in ns, into an HDR histogram) while one writer thread writes,
//! on a store of one shard so that the two always meet. Reported per run: reads done, writes
//! done, p50, p99, p99.9, p99.99 and max of the reads, and the slowest single write.
//!
//! Scenarios:
//! - `flood`: 100k keys preloaded; the writer overwrites uniformly random keys as fast as it
//!   can for `--seconds`; the reader reads uniformly random preloaded keys (hits).
//! - `resize`: the store starts empty (default initial capacity, so its table grows by
//!   doubling); the writer inserts N new keys (`--keys`, default 1M then 8M); the reader reads
//!   keys already inserted (hits) until the writer is done. An `RwLock` shard rehashes its
//!   whole table under the write lock, which its readers wait out; papaya copies 64 entries per
//!   write and readers look in both tables meanwhile.
//! - `zipf`: 100k keys preloaded; reader and writer draw keys from the same Zipf(0.99), so they
//!   collide on the hot keys, for `--seconds`.
//!
//! Keys are `key:%012d` (16 bytes) and values 100 bytes, no TTL, as in `store_footprint` and
//! `benches/store.rs`. Key bytes and random draws are made outside the timed region; only the
//! `get` call is timed (with the two clock reads around it, which both kinds pay alike). Every
//! read must hit: a miss is reported and makes the run exit with status 1.
//!
//! Rounds: every scenario runs `--rounds` times per kind, alternating the order (lockfree then
//! rwlock, then rwlock then lockfree, ...) so that a drift in the machine's load does not
//! favour one kind; the summary gives, per percentile, the median over the rounds and the
//! min–max. With two or more cores the reader is pinned to core 0 and the writer to core 1
//! (`taskset -p` on each thread's id; `--no-pin` leaves them to the scheduler). Anything else
//! running on the machine shows up in the max and p99.99 of both kinds: compare kinds within
//! one run, and note the load average printed with the table.
//!
//! ```sh
//! cargo run --profile dist --example read_tails -- --scenario all --rounds 3
//! cargo run --release --example read_tails -- --quick          # tiny sizes, 0.5 s: a smoke run
//! cargo run --release --example read_tails -- --scenario resize --keys 1000000 --kind rwlock
//! ```
//!
//! `perf/tails.sh` builds it with the `dist` profile, runs it and writes `perf/out/tails.md`.
//! Progress goes to stderr; the summary table (markdown) to stdout, and appended to
//! `--markdown FILE` when given.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use shardkv::clock::Clock;
use shardkv::store::{
    Condition, LockFreeShard, Lookup, RwLockShard, Shard, ShardedStore, StoreConfig,
};

// The server's allocator (see src/main.rs): every write allocates a record.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keys preloaded for `flood` and `zipf` (with `--quick`: `QUICK_PRELOADED_KEYS`).
const PRELOADED_KEYS: usize = 100_000;
const QUICK_PRELOADED_KEYS: usize = 10_000;
/// Keys inserted by `resize` with `--quick`.
const QUICK_RESIZE_KEYS: usize = 100_000;
const QUICK_SECONDS: f64 = 0.5;
const ZIPF_EXPONENT: f64 = 0.99;
const VALUE: [u8; 100] = [b'v'; 100];
/// The histogram's range: 1 ns to 100 s, 3 significant digits.
const HISTOGRAM_MAX_NS: u64 = 100_000_000_000;
const READER_CORE: usize = 0;
const WRITER_CORE: usize = 1;

#[derive(Parser)]
#[command(
    about = "Read-latency tails of the lock-free and RwLock shards under a concurrent writer"
)]
struct Args {
    /// Which shard kind to measure.
    #[arg(long, value_enum, default_value_t = KindChoice::Both)]
    kind: KindChoice,
    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = ScenarioChoice::All)]
    scenario: ScenarioChoice,
    /// Length of the `flood` and `zipf` runs, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Keys the `resize` writer inserts, one run per count (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000000,8000000")]
    keys: Vec<usize>,
    /// Runs per scenario and kind; the summary takes the median over them.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Tiny sizes and 0.5 s runs (10k preloaded keys, 100k inserted): a smoke run.
    #[arg(long)]
    quick: bool,
    /// Also append the summary table to this markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Leave the reader and writer threads unpinned.
    #[arg(long)]
    no_pin: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindChoice {
    Lockfree,
    Rwlock,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScenarioChoice {
    Flood,
    Resize,
    Zipf,
    All,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    LockFree,
    RwLock,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::LockFree => LockFreeShard::KIND,
            Kind::RwLock => RwLockShard::KIND,
        }
    }
}

/// What the writer does, and which keys the reader picks.
#[derive(Clone, Copy)]
enum Scenario {
    /// Uniform overwrites of `keys` preloaded keys, uniform reads, for `seconds`.
    Flood { keys: usize, seconds: f64 },
    /// `keys` inserts into an empty shard; uniform reads of the keys inserted so far.
    Resize { keys: usize },
    /// Zipf overwrites and Zipf reads of `keys` preloaded keys, for `seconds`.
    Zipf { keys: usize, seconds: f64 },
}

impl Scenario {
    fn label(self) -> String {
        match self {
            Scenario::Flood { keys, .. } => format!("flood {}", count(keys as u64)),
            Scenario::Resize { keys } => format!("resize to {}", count(keys as u64)),
            Scenario::Zipf { keys, .. } => format!("zipf {}", count(keys as u64)),
        }
    }

    fn preloaded_keys(self) -> usize {
        match self {
            Scenario::Flood { keys, .. } | Scenario::Zipf { keys, .. } => keys,
            Scenario::Resize { .. } => 0,
        }
    }
}

/// How the reader and the writer pick a key index.
enum KeyPicker {
    Uniform,
    Zipf(Zipf<f64>),
}

impl KeyPicker {
    /// A key index below `bound`.
    #[inline]
    fn pick(&self, rng: &mut StdRng, bound: usize) -> usize {
        match self {
            KeyPicker::Uniform => rng.gen_range(0..bound),
            // Rank 1 is the hottest key, `key:000000000000`.
            KeyPicker::Zipf(zipf) => (zipf.sample(rng) as usize - 1).min(bound - 1),
        }
    }
}

/// One run of one scenario on one kind.
struct RunResult {
    reads: u64,
    misses: u64,
    writes: u64,
    slowest_write: Duration,
    elapsed: Duration,
    read_ns: Histogram<u64>,
}

/// The figures a summary cell shows, in the table's column order.
const COLUMNS: [&str; 8] = [
    "reads",
    "writes",
    "p50 µs",
    "p99 µs",
    "p99.9 µs",
    "p99.99 µs",
    "max µs",
    "slowest write µs",
];
/// Which columns are latencies (shown in µs; the rest are counts).
const IS_LATENCY: [bool; 8] = [false, false, true, true, true, true, true, true];

impl RunResult {
    /// The figures of `COLUMNS`: counts as they are, latencies in ns.
    fn figures(&self) -> [f64; 8] {
        let h = &self.read_ns;
        [
            self.reads as f64,
            self.writes as f64,
            h.value_at_quantile(0.5) as f64,
            h.value_at_quantile(0.99) as f64,
            h.value_at_quantile(0.999) as f64,
            h.value_at_quantile(0.9999) as f64,
            h.max() as f64,
            self.slowest_write.as_nanos() as f64,
        ]
    }
}

/// `key:%012d` into `buf`, without allocating.
#[inline]
fn write_key(buf: &mut [u8; 16], index: usize) {
    buf[..4].copy_from_slice(b"key:");
    let mut rest = index;
    for digit in buf[4..].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

/// Pins the calling thread to `core` with `taskset -p` on its thread id (std has no affinity
/// call, and this example adds no dependency for one). Returns whether it worked.
fn pin_current_thread(core: usize) -> bool {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return false;
    };
    // "PID/task/TID"
    let Some(tid) = link.file_name().and_then(|t| t.to_str()).map(str::to_owned) else {
        return false;
    };
    Command::new("taskset")
        .args(["-p", "-c", &core.to_string(), &tid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn measure<S: Shard>(scenario: Scenario, pin: bool, seed: u64) -> (RunResult, bool) {
    let store = ShardedStore::<S>::new(
        StoreConfig {
            shards: 1,
            ..StoreConfig::default()
        },
        Clock::coarse(),
    );
    let mut key = [0u8; 16];
    for index in 0..scenario.preloaded_keys() {
        write_key(&mut key, index);
        store
            .set(&key, VALUE, None, Condition::Always)
            .expect("within the default limits");
    }
    // Complete any resize the preload left in progress, as the server's expiry thread would.
    store.maintain();

    let picker = match scenario {
        Scenario::Zipf { keys, .. } => {
            KeyPicker::Zipf(Zipf::new(keys as u64, ZIPF_EXPONENT).expect("valid Zipf parameters"))
        }
        _ => KeyPicker::Uniform,
    };
    let stop = AtomicBool::new(false);
    // Keys the reader may pick: all preloaded ones, or those the resize writer has inserted.
    let readable = AtomicUsize::new(scenario.preloaded_keys());
    let pinned_threads = AtomicUsize::new(0);
    let start_line = Barrier::new(3);

    let (reader, writer, elapsed) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            if pin && pin_current_thread(READER_CORE) {
                pinned_threads.fetch_add(1, Ordering::Relaxed);
            }
            let mut rng = StdRng::seed_from_u64(seed);
            let mut read_ns = Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX_NS, 3)
                .expect("valid histogram bounds");
            let (mut reads, mut misses) = (0u64, 0u64);
            let mut key = [0u8; 16];
            start_line.wait();
            while !stop.load(Ordering::Relaxed) {
                let bound = readable.load(Ordering::Acquire);
                if bound == 0 {
                    std::hint::spin_loop();
                    continue;
                }
                write_key(&mut key, picker.pick(&mut rng, bound));
                let started = Instant::now();
                let lookup = black_box(store.get(black_box(&key)));
                let took = started.elapsed();
                read_ns.saturating_record(took.as_nanos() as u64);
                reads += 1;
                misses += u64::from(!matches!(lookup, Lookup::Hit(_)));
            }
            (reads, misses, read_ns)
        });
        let writer = scope.spawn(|| {
            if pin && pin_current_thread(WRITER_CORE) {
                pinned_threads.fetch_add(1, Ordering::Relaxed);
            }
            let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
            let mut key = [0u8; 16];
            let mut writes = 0u64;
            let mut slowest = Duration::ZERO;
            let mut write = |index: usize| {
                write_key(&mut key, index);
                let started = Instant::now();
                store
                    .set(&key, VALUE, None, Condition::Always)
                    .expect("within the default limits");
                slowest = slowest.max(started.elapsed());
                writes += 1;
            };
            start_line.wait();
            match scenario {
                Scenario::Resize { keys } => {
                    for index in 0..keys {
                        write(index);
                        readable.store(index + 1, Ordering::Release);
                    }
                    stop.store(true, Ordering::Relaxed);
                }
                Scenario::Flood { keys, .. } | Scenario::Zipf { keys, .. } => {
                    while !stop.load(Ordering::Relaxed) {
                        write(picker.pick(&mut rng, keys));
                    }
                }
            }
            (writes, slowest)
        });
        start_line.wait();
        let started = Instant::now();
        if let Scenario::Flood { seconds, .. } | Scenario::Zipf { seconds, .. } = scenario {
            std::thread::sleep(Duration::from_secs_f64(seconds));
            stop.store(true, Ordering::Relaxed);
        }
        let reader = reader.join().expect("the reader thread panicked");
        let writer = writer.join().expect("the writer thread panicked");
        (reader, writer, started.elapsed())
    });
    let (reads, misses, read_ns) = reader;
    let (writes, slowest_write) = writer;
    let result = RunResult {
        reads,
        misses,
        writes,
        slowest_write,
        elapsed,
        read_ns,
    };
    (result, pinned_threads.load(Ordering::Relaxed) == 2)
}

/// `1.2M`, `100k`, `950`.
fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n if n >= 1_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// A latency in µs from ns, with a precision that suits its size.
fn micros(ns: f64) -> String {
    let us = ns / 1e3;
    if us < 10.0 {
        format!("{us:.2}")
    } else {
        format!("{us:.0}")
    }
}

fn show(column: usize, value: f64) -> String {
    if IS_LATENCY[column] {
        micros(value)
    } else {
        count(value as u64)
    }
}

fn median(sorted: &[f64]) -> f64 {
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Per column: (median, min, max) over the rounds.
fn summarise(runs: &[RunResult]) -> Vec<(f64, f64, f64)> {
    (0..COLUMNS.len())
        .map(|column| {
            let mut values: Vec<f64> = runs.iter().map(|run| run.figures()[column]).collect();
            values.sort_by(f64::total_cmp);
            (median(&values), values[0], values[values.len() - 1])
        })
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (seconds, preloaded, resize_keys) = if args.quick {
        (QUICK_SECONDS, QUICK_PRELOADED_KEYS, vec![QUICK_RESIZE_KEYS])
    } else {
        (args.seconds, PRELOADED_KEYS, args.keys.clone())
    };
    assert!(seconds > 0.0, "--seconds must be positive");
    assert!(args.rounds > 0, "--rounds must be at least 1");
    assert!(
        resize_keys.iter().all(|&k| k > 0),
        "--keys must be positive"
    );

    let mut scenarios = Vec::new();
    let wants = |choice| args.scenario == choice || args.scenario == ScenarioChoice::All;
    if wants(ScenarioChoice::Flood) {
        scenarios.push(Scenario::Flood {
            keys: preloaded,
            seconds,
        });
    }
    if wants(ScenarioChoice::Resize) {
        scenarios.extend(resize_keys.iter().map(|&keys| Scenario::Resize { keys }));
    }
    if wants(ScenarioChoice::Zipf) {
        scenarios.push(Scenario::Zipf {
            keys: preloaded,
            seconds,
        });
    }
    let kinds: Vec<Kind> = match args.kind {
        KindChoice::Lockfree => vec![Kind::LockFree],
        KindChoice::Rwlock => vec![Kind::RwLock],
        KindChoice::Both => vec![Kind::LockFree, Kind::RwLock],
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let try_pin = !args.no_pin && cores >= 2;
    let load_before = load_average();
    eprintln!(
        "read_tails: {} scenario(s), {} round(s), kinds {}, {cores} cores, \
         load average {load_before}",
        scenarios.len(),
        args.rounds,
        kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
    );

    let mut all_pinned = try_pin;
    let mut any_misses = false;
    // Per scenario, per kind (in `kinds` order): the runs.
    let mut results: Vec<(Scenario, Vec<Vec<RunResult>>)> = Vec::new();
    for &scenario in &scenarios {
        let mut per_kind: Vec<Vec<RunResult>> = kinds.iter().map(|_| Vec::new()).collect();
        for round in 0..args.rounds {
            // lockfree, rwlock, then rwlock, lockfree, ...
            let mut order: Vec<usize> = (0..kinds.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for slot in order {
                let kind = kinds[slot];
                let seed = 0x5eed + round as u64;
                let (run, pinned) = match kind {
                    Kind::LockFree => measure::<LockFreeShard>(scenario, try_pin, seed),
                    Kind::RwLock => measure::<RwLockShard>(scenario, try_pin, seed),
                };
                all_pinned &= pinned;
                let f = run.figures();
                eprintln!(
                    "[round {}/{}] {} {}: {} reads, {} writes in {:.2} s; read µs p50 {} p99 {} \
                     p99.9 {} p99.99 {} max {}; slowest write {} µs{}",
                    round + 1,
                    args.rounds,
                    scenario.label(),
                    kind.name(),
                    count(run.reads),
                    count(run.writes),
                    run.elapsed.as_secs_f64(),
                    micros(f[2]),
                    micros(f[3]),
                    micros(f[4]),
                    micros(f[5]),
                    micros(f[6]),
                    micros(f[7]),
                    if run.misses > 0 {
                        format!("; {} MISSES", run.misses)
                    } else {
                        String::new()
                    },
                );
                any_misses |= run.misses > 0;
                per_kind[slot].push(run);
            }
        }
        results.push((scenario, per_kind));
    }

    let mut table = String::new();
    let _ = writeln!(
        table,
        "One shard, one reader timing every `get`, one writer. Median of {} round(s){}; \
         threads {}; {cores} cores; load average (1, 5, 15 min) {load_before} before, \
         {} after.{}\n",
        args.rounds,
        if args.rounds > 1 {
            ", (min–max) beside it"
        } else {
            ""
        },
        if all_pinned {
            "pinned (reader core 0, writer core 1)"
        } else {
            "not pinned"
        },
        load_average(),
        if scenarios.iter().any(|s| s.preloaded_keys() > 0) {
            format!(
                " flood and zipf: {seconds} s each over {} preloaded keys.",
                count(preloaded as u64)
            )
        } else {
            String::new()
        },
    );
    let _ = writeln!(table, "| scenario | kind | {} |", COLUMNS.join(" | "));
    let _ = writeln!(table, "|---|---|{}", "---:|".repeat(COLUMNS.len()));
    for (scenario, per_kind) in &results {
        let summaries: Vec<_> = per_kind.iter().map(|runs| summarise(runs)).collect();
        for (kind, summary) in kinds.iter().zip(&summaries) {
            let cells: Vec<String> = summary
                .iter()
                .enumerate()
                .map(|(column, &(mid, low, high))| {
                    if args.rounds > 1 {
                        format!(
                            "{} ({}–{})",
                            show(column, mid),
                            show(column, low),
                            show(column, high)
                        )
                    } else {
                        show(column, mid)
                    }
                })
                .collect();
            let _ = writeln!(
                table,
                "| {} | {} | {} |",
                scenario.label(),
                kind.name(),
                cells.join(" | ")
            );
        }
        if let [lockfree, rwlock] = &summaries[..] {
            let ratios: Vec<String> = lockfree
                .iter()
                .zip(rwlock)
                .map(|(&(lf, _, _), &(rw, _, _))| {
                    if lf > 0.0 {
                        format!("{:.2}×", rw / lf)
                    } else {
                        "–".into()
                    }
                })
                .collect();
            let _ = writeln!(
                table,
                "| {} | rwlock/lockfree | {} |",
                scenario.label(),
                ratios.join(" | ")
            );
        }
    }
    print!("{table}");
    if let Some(path) = &args.markdown {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| writeln!(file, "{table}"));
        if let Err(error) = appended {
            eprintln!("read_tails: cannot append to {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if any_misses {
        eprintln!("read_tails: some reads of keys already written missed (see MISSES above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
