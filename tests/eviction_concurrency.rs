//! Eviction under concurrent writers, in process: 8 writer threads against a cap with room for
//! about 500 entries, with the eviction thread running and without it (then writers walk
//! themselves), for both shard implementations. While they run, a sampler thread reads the
//! memory estimate and a reader thread reads keys.
//!
//! Checked: no write is refused while something evictable remains; the estimate never goes
//! past the cap by more than one in-flight entry per writer (each writer makes room before its
//! section, so at most the writers' own entries can be admitted on the same free bytes); every
//! value read is one a writer wrote for that key; under `volatile-lru`, keys without a TTL are
//! never evicted; and at the end the estimate is exactly the sum of the entries held.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardkv::clock::Clock;
use shardkv::eviction::EvictionThread;
use shardkv::store::{
    Condition, EvictionPolicy, LockFreeShard, Lookup, RwLockShard, Shard, ShardedStore,
    StoreConfig, TIMER_OVERHEAD,
};

const WRITERS: usize = 8;
/// Shared keys the writers overwrite at random (more than fit, so most writes evict).
const KEYS: u64 = 4_000;
/// Writes per writer thread (each run also stops after `RUN_FOR`).
const WRITES: usize = 40_000;
const RUN_FOR: Duration = Duration::from_secs(3);
const LONGEST_KEY: u64 = 5; // "k3999"
const LONGEST_VALUE: u64 = 64;
/// Room for about 500 entries of average size.
const CAP: u64 = 500 * (LONGEST_KEY + 40 + <RwLockShard as Shard>::ENTRY_OVERHEAD);
/// Keys without a TTL stored before the writers start, under `volatile-lru`.
const PINNED: u64 = 50;

fn key(n: u64) -> String {
    format!("k{n}")
}

/// The value writer `t`'s `seq`th write puts in `key`: `key|t|seq|` then padding up to a
/// length that depends on all three, so a torn or mixed-up value does not parse back.
fn value(key: &str, t: usize, seq: u64) -> Vec<u8> {
    let mut v = format!("{key}|{t}|{seq}|").into_bytes();
    let len = 24 + ((seq * 7 + t as u64) % (LONGEST_VALUE - 24 + 1)) as usize;
    while v.len() < len {
        v.push(b'a' + (v.len() % 26) as u8);
    }
    v
}

/// Checks a value read for `key` is one `value` produced for it, by a writer that had reached
/// at least that far.
fn check_read(key: &str, got: &[u8], progress: &[AtomicU64]) {
    let text = std::str::from_utf8(got).unwrap_or_else(|_| panic!("{key}: not UTF-8: {got:?}"));
    let mut parts = text.splitn(4, '|');
    let (k, t, seq) = (parts.next(), parts.next(), parts.next());
    assert_eq!(k, Some(key), "{key} holds another key's value: {text}");
    let t: usize = t.and_then(|t| t.parse().ok()).expect(text);
    let seq: u64 = seq.and_then(|s| s.parse().ok()).expect(text);
    assert!(t < WRITERS, "{text}");
    assert_eq!(got, &value(key, t, seq)[..], "{key}: mangled value");
    assert!(
        seq <= progress[t].load(Ordering::Acquire),
        "{key}: a value writer {t} has not written yet: {text}"
    );
}

struct Outcome {
    peak: u64,
    writes: u64,
}

fn run<S: Shard>(policy: EvictionPolicy, with_thread: bool) -> Outcome {
    let (clock, _hand) = Clock::manual(1_000);
    let store = Arc::new(ShardedStore::<S>::new(
        StoreConfig {
            shards: 8,
            max_memory: CAP,
            eviction_policy: policy,
            ..StoreConfig::default()
        },
        clock,
    ));
    let volatile = policy.volatile_only();
    if volatile {
        for n in 0..PINNED {
            let k = format!("pin{n}");
            store
                .set(
                    k.as_bytes(),
                    Bytes::from(k.clone()),
                    None,
                    Condition::Always,
                )
                .unwrap();
        }
    }
    let evictor = with_thread.then(|| EvictionThread::start(store.clone()).unwrap());
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let bound =
        CAP + WRITERS as u64 * (LONGEST_VALUE + LONGEST_KEY + S::ENTRY_OVERHEAD + TIMER_OVERHEAD);

    let sampler = {
        let (store, done) = (store.clone(), done.clone());
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Acquire) {
                let used = store.memory_used();
                assert!(used <= bound, "estimate {used} past {bound}");
                peak = peak.max(used);
                std::thread::yield_now();
            }
            peak
        })
    };
    let reader = {
        let (store, done, progress) = (store.clone(), done.clone(), progress.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut hits = 0u64;
            while !done.load(Ordering::Acquire) {
                n = (n + 7919) % KEYS;
                let k = key(n);
                if let Lookup::Hit(found) = store.get(k.as_bytes()) {
                    check_read(&k, found.value(), &progress);
                    hits += 1;
                }
            }
            hits
        })
    };
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (store, progress) = (store.clone(), progress.clone());
            std::thread::spawn(move || {
                let mut rng = (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut writes = 0u64;
                for seq in 1..=WRITES as u64 {
                    if started.elapsed() >= RUN_FOR {
                        break;
                    }
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let k = key(rng % KEYS);
                    progress[t].store(seq, Ordering::Release);
                    let ttl = volatile.then_some(Duration::from_secs(3_600));
                    if let Err(e) = store.set(
                        k.as_bytes(),
                        Bytes::from(value(&k, t, seq)),
                        ttl,
                        Condition::Always,
                    ) {
                        panic!("writer {t}: write {seq} of {k} refused: {e}");
                    }
                    writes += 1;
                }
                writes
            })
        })
        .collect();
    let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, Ordering::Release);
    let peak = sampler.join().unwrap();
    let hits = reader.join().unwrap();
    drop(evictor);

    assert!(hits > 0, "the reader never found a key");
    assert!(
        store.stats().evicted_keys.get() > 0,
        "{writes} writes past the cap evicted nothing"
    );
    let used = store.memory_used();
    assert!(used <= bound, "final estimate {used} past {bound}");
    let mut held = 0u64;
    for shard in 0..store.shard_count() {
        store.for_each_in_shard(shard, |record, entry| {
            held += record.key().len() as u64 + record.value_len() as u64 + S::ENTRY_OVERHEAD;
            if entry.has_ttl() {
                held += TIMER_OVERHEAD;
            }
        });
    }
    assert_eq!(
        used, held,
        "the estimate is not the sum of the entries held"
    );
    if volatile {
        for n in 0..PINNED {
            let k = format!("pin{n}");
            assert!(
                store.get(k.as_bytes()).found().is_some(),
                "{k} (no TTL) was evicted under {policy}"
            );
        }
    }
    Outcome { peak, writes }
}

fn report(name: &str, outcome: Outcome) {
    eprintln!(
        "{name}: {} writes, peak estimate {} (cap {CAP})",
        outcome.writes, outcome.peak
    );
}

#[test]
fn lockfree_writers_with_the_eviction_thread() {
    report(
        "lockfree+thread",
        run::<LockFreeShard>(EvictionPolicy::AllKeysLru, true),
    );
}

#[test]
fn lockfree_writers_walking_themselves() {
    report(
        "lockfree alone",
        run::<LockFreeShard>(EvictionPolicy::AllKeysLfu, false),
    );
}

#[test]
fn rwlock_writers_with_the_eviction_thread() {
    report(
        "rwlock+thread",
        run::<RwLockShard>(EvictionPolicy::AllKeysRandom, true),
    );
}

#[test]
fn rwlock_writers_walking_themselves() {
    report(
        "rwlock alone",
        run::<RwLockShard>(EvictionPolicy::AllKeysLru, false),
    );
}

#[test]
fn volatile_lru_never_evicts_keys_without_a_ttl_under_concurrent_writers() {
    report(
        "volatile lockfree+thread",
        run::<LockFreeShard>(EvictionPolicy::VolatileLru, true),
    );
}

/// This process's threads named `name`, by task id.
fn threads_named(name: &str) -> Vec<std::path::PathBuf> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok().map(|t| t.path()))
        .filter(|path| {
            std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect()
}

/// CPU time (utime + stime, in clock ticks) of the thread at `task`.
fn ticks(task: &std::path::Path) -> u64 {
    let stat = std::fs::read_to_string(task.join("stat")).unwrap();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// The eviction thread sleeps while eviction is off (`noeviction`, or far below the cap): an
/// empty candidate pool must not look like demand. A spinning thread takes a whole core; a
/// sleeping one wakes ten times a second.
#[test]
fn the_eviction_thread_sleeps_while_eviction_is_off() {
    for policy in [EvictionPolicy::NoEviction, EvictionPolicy::AllKeysLru] {
        let store = Arc::new(ShardedStore::<LockFreeShard>::new(
            StoreConfig {
                max_memory: CAP,
                eviction_policy: policy,
                ..StoreConfig::default()
            },
            Clock::coarse(),
        ));
        // Other tests in this process may run eviction threads of their own.
        let others = threads_named("shardkv-evict");
        let _evictor = EvictionThread::start(store.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let ours: Vec<_> = threads_named("shardkv-evict")
            .into_iter()
            .filter(|t| !others.contains(t))
            .collect();
        assert_eq!(ours.len(), 1, "the new eviction thread");
        let before = ticks(&ours[0]);
        std::thread::sleep(Duration::from_millis(1_000));
        let used = ticks(&ours[0]) - before;
        // 100 ticks a second is a whole core.
        assert!(
            used <= 10,
            "{policy}: the idle eviction thread used {used} ticks in 1 s"
        );
    }
}
