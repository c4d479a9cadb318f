//! History checks against the real binary: concurrent clients set, read, compare-and-set and
//! delete a few keys while shards fail over or the server is killed with SIGKILL, and every
//! key's recorded history is then checked.
//!
//! - Across failovers (`--replicas 2`, `--shards 2`, every shard failed and recovered over and
//!   over, `ack=async` and `ack=all`; with `--features testing` also with replica queues of one
//!   write, so replicas go stale and re-sync throughout) each key's history must be
//!   linearizable against a register with versions (`history/model.rs`: a `stateright`
//!   `SequentialSpec` and a Wing & Gong search with a cache).
//! - Across kill -9 restarts with `--data-dir` and `--fsync always` (with `--features testing`
//!   also with a log queue of two writes and slowed snapshots), each run between two kills
//!   must be linearizable from the state read back after the restart; that state must keep
//!   every acknowledged write not replaced later and bring back no deleted key; and no version
//!   handed out before a crash (acknowledged or only read) may be handed out again after it
//!   (`history/crash.rs` says why this split rather than one history across the crash).
//!
//! Seeds are fixed; timing is not, so each run explores a different interleaving. `LONG=1`
//! runs many more rounds by hand.

mod common;
#[path = "history/crash.rs"]
mod crash;
#[path = "history/model.rs"]
mod model;
#[path = "history/recorder.rs"]
mod recorder;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::Server;
use model::{Call, Op, Register, Ret, ValueId};
use recorder::{Clock, Recorder};

const SEED: u64 = 0x5eed_1234;
const CLIENTS: usize = 4;
const KEYS: usize = 3;

fn long() -> bool {
    std::env::var_os("LONG").is_some()
}

/// What one client chooses next, from what it saw last on each key.
struct Workload {
    rng: StdRng,
    /// The last version this client saw per key, for its `If-Match`.
    seen: [Option<u64>; KEYS],
    /// Makes each write's value unique across clients and rounds.
    value_base: u64,
    written: u64,
}

impl Workload {
    fn new(round: usize, client: usize) -> Workload {
        Workload {
            rng: StdRng::seed_from_u64(SEED ^ ((round as u64) << 16) ^ client as u64),
            seen: [None; KEYS],
            value_base: ((round as u64) << 40) | ((client as u64) << 32),
            written: 0,
        }
    }

    fn next_value(&mut self) -> ValueId {
        self.written += 1;
        self.value_base | self.written
    }

    /// A key and an operation on it: reads and writes about equally, some CAS and deletes.
    fn next(&mut self) -> (usize, Call) {
        let key = self.rng.gen_range(0..KEYS);
        let call = match self.rng.gen_range(0..100) {
            0..=29 => Call::Set(self.next_value()),
            30..=59 => Call::Get,
            60..=84 => {
                // Mostly the version last seen; sometimes a stale or made-up one.
                let expected = match self.seen[key] {
                    Some(v) if self.rng.gen_bool(0.8) => v,
                    Some(v) => v.saturating_sub(self.rng.gen_range(1..4)),
                    None => self.rng.gen_range(1..50),
                };
                Call::Cas {
                    expected,
                    value: self.next_value(),
                }
            }
            _ => Call::Delete,
        };
        (key, call)
    }

    fn observe(&mut self, key: usize, ret: Ret) {
        match ret {
            Ret::Written(v) | Ret::Found(_, v) => self.seen[key] = Some(v),
            Ret::Missing | Ret::Deleted => self.seen[key] = None,
            Ret::Refused | Ret::Unknown => {}
        }
    }
}

fn post(http: &reqwest::blocking::Client, url: &str) -> bool {
    http.post(url).send().is_ok_and(|r| r.status().is_success())
}

/// Checks each key's history for linearizability from its initial state; panics with the
/// shortest failing prefix of the first key that fails.
fn assert_linearizable(label: &str, histories: &[Vec<Op>], initial: &[Register]) {
    for (key, ops) in histories.iter().enumerate() {
        if let Err(violation) = model::check_linearizable(ops, &initial[key]) {
            panic!("{label}, key {key}: {violation}");
        }
    }
}

/// Clients run against one server while every shard is failed and recovered over and over.
fn history_across_failovers(ack: &str, extra: &[&str]) {
    let rounds = if long() { 50 } else { 12 };
    let ops_per_client = 150;
    let mut args = vec!["--shards", "2", "--replicas", "2", "--ack", ack];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let base = server.url("");
    let clock = Clock::start();
    let mut failovers = 0;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let failover = {
            let (stop, base) = (stop.clone(), base.clone());
            std::thread::spawn(move || {
                let http = common::client();
                let mut rng = StdRng::seed_from_u64(SEED ^ 0xfa11 ^ round as u64);
                let mut done = 0;
                while !stop.load(Ordering::Relaxed) {
                    for shard in 0..2 {
                        if post(&http, &format!("{base}/admin/shards/{shard}/fail")) {
                            done += 1;
                        }
                        std::thread::sleep(Duration::from_millis(rng.gen_range(2..15)));
                        post(&http, &format!("{base}/admin/shards/{shard}/recover"));
                        std::thread::sleep(Duration::from_millis(rng.gen_range(2..15)));
                    }
                }
                done
            })
        };
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let base = base.clone();
                std::thread::spawn(move || {
                    let recorder = Recorder::new(client, clock, None, Duration::from_secs(10));
                    let mut work = Workload::new(round, client);
                    let mut ops = Vec::with_capacity(ops_per_client);
                    for _ in 0..ops_per_client {
                        let (key, call) = work.next();
                        let op = recorder.perform(&base, &format!("r{round}-k{key}"), call);
                        work.observe(key, op.ret);
                        ops.push((key, op));
                        let think = work.rng.gen_range(0..1500);
                        std::thread::sleep(Duration::from_micros(think));
                    }
                    ops
                })
            })
            .collect();
        let mut histories = vec![Vec::new(); KEYS];
        for client in clients {
            for (key, op) in client.join().expect("client thread") {
                histories[key].push(op);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let done = failover.join().expect("failover thread");
        failovers += done;
        let ops: Vec<&Op> = histories.iter().flatten().collect();
        eprintln!(
            "ack={ack} round {round}: {} ops ({} writes acknowledged, {} unanswered), {done} failovers",
            ops.len(),
            ops.iter().filter(|op| matches!(op.ret, Ret::Written(_) | Ret::Deleted)).count(),
            ops.iter().filter(|op| op.ret == Ret::Unknown).count(),
        );
        assert_linearizable(
            &format!("ack={ack}, round {round}"),
            &histories,
            &vec![Register::default(); KEYS],
        );
    }
    assert!(
        failovers >= rounds,
        "only {failovers} failovers happened in {rounds} rounds: the run did not test them"
    );
    let dashboard: serde_json::Value = common::client()
        .get(server.url("/dashboard"))
        .send()
        .and_then(|r| r.json())
        .expect("dashboard");
    let overflows = dashboard["replicaOverflows"].as_u64().unwrap_or(0);
    eprintln!("ack={ack}: {failovers} failovers, {overflows} replica queue overflows");
    if !extra.is_empty() {
        assert!(
            overflows > 0,
            "no replica queue overflowed with {extra:?}: the run did not test re-syncs"
        );
    }
}

#[test]
fn history_is_linearizable_across_failovers_with_ack_async() {
    history_across_failovers("async", &[]);
}

#[test]
fn history_is_linearizable_across_failovers_with_ack_all() {
    history_across_failovers("all", &[]);
}

/// Replica queues of one write: replicas go stale and re-sync all through the run.
#[test]
fn history_is_linearizable_across_failovers_and_resyncs_with_ack_async() {
    history_across_failovers("async", &["--fault-replica-queue", "1"]);
}

#[test]
fn history_is_linearizable_across_failovers_and_resyncs_with_ack_all() {
    history_across_failovers("all", &["--fault-replica-queue", "1"]);
}

/// Whether clients may send, and where to.
struct Gate {
    open: bool,
    stop: bool,
    epoch: usize,
    base: String,
    /// Operations each client may still send in this epoch (bounds each history).
    budget: [usize; CLIENTS],
}

/// Reads every key back from a freshly restarted server, before any client may send.
fn probe(base: &str, clock: Clock, epoch: usize) -> Vec<crash::Probe> {
    let recorder = Recorder::new(usize::MAX, clock, None, Duration::from_secs(10));
    (0..KEYS)
        .map(
            |key| match recorder.perform(base, &format!("k{key}"), Call::Get).ret {
                Ret::Found(value, version) => Some((value, version)),
                Ret::Missing => None,
                other => panic!("reading key {key} after restart {epoch} answered {other:?}"),
            },
        )
        .collect()
}

#[test]
fn acknowledged_writes_survive_kill_9_restarts_and_versions_never_go_back() {
    history_across_kill_9("kill9", 40, &[], None);
}

/// A log queue of two writes: it overflows all the time, so the log holds acknowledgements
/// and snapshots while writers keep coming; slowed snapshots keep writes applied in memory
/// but not yet on disk for longer, so reads see some of them before a kill.
#[test]
fn acknowledged_writes_survive_kill_9_restarts_with_an_overflowing_log_queue() {
    history_across_kill_9(
        "kill9-tiny-log",
        120,
        &["--fault-log-queue", "2"],
        Some("/admin/faults?snapshot_delay_ms=100"),
    );
}

/// `kills` in CI (five times more with `LONG=1`); `faults`: an admin request sent to each
/// server once it has started.
fn history_across_kill_9(name: &str, kills: usize, extra: &[&str], faults: Option<&str>) {
    let kills = if long() { 5 * kills } else { kills };
    let per_epoch = 150;
    let dir = common::temp_dir(name);
    let dir_arg = dir.to_string_lossy().to_string();
    let mut args = vec!["--data-dir", &dir_arg, "--fsync", "always", "--shards", "2"];
    args.extend_from_slice(extra);
    let clock = Clock::start();
    let start = || {
        let server = Server::start(&args);
        if let Some(path) = faults {
            assert!(
                post(&common::client(), &server.url(path)),
                "{path} was refused"
            );
        }
        server
    };
    let mut server = start();
    let gate = Arc::new((
        Mutex::new(Gate {
            open: true,
            stop: false,
            epoch: 0,
            base: server.url(""),
            budget: [per_epoch; CLIENTS],
        }),
        Condvar::new(),
    ));
    let sent = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (gate, sent) = (gate.clone(), sent.clone());
            std::thread::spawn(move || {
                let recorder = Recorder::new(client, clock, None, Duration::from_secs(5));
                let mut work = Workload::new(0, client);
                let mut ops = Vec::new();
                loop {
                    let (epoch, base) = {
                        let (lock, wake) = &*gate;
                        let mut g = lock.lock().unwrap();
                        while !g.stop && (!g.open || g.budget[client] == 0) {
                            g = wake.wait(g).unwrap();
                        }
                        if g.stop {
                            return ops;
                        }
                        g.budget[client] -= 1;
                        (g.epoch, g.base.clone())
                    };
                    let (key, call) = work.next();
                    let op = recorder.perform(&base, &format!("k{key}"), call);
                    work.observe(key, op.ret);
                    sent.fetch_add(1, Ordering::Relaxed);
                    ops.push((epoch, key, op));
                    let think = work.rng.gen_range(0..500);
                    std::thread::sleep(Duration::from_micros(think));
                }
            })
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(SEED ^ 0x9);
    let mut kill_times = Vec::new();
    // probes[e] is what the server held when epoch e started (e ≥ 1).
    let mut probes = vec![vec![None; KEYS]];
    for epoch in 0..kills {
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..100)));
        // SIGKILL, mid-load, and wait until the process is gone. The kill's time is taken once
        // it is: a request sent between reading the clock and the signal landing may still
        // have been answered, so reading it first made the check below flaky.
        drop(server);
        kill_times.push(clock.now());
        gate.0.lock().unwrap().open = false;
        server = start();
        probes.push(probe(&server.url(""), clock, epoch + 1));
        let (lock, wake) = &*gate;
        let mut g = lock.lock().unwrap();
        g.epoch = epoch + 1;
        g.base = server.url("");
        g.budget = [per_epoch; CLIENTS];
        g.open = epoch + 1 < kills;
        g.stop = epoch + 1 == kills;
        wake.notify_all();
    }
    let mut by_epoch = vec![vec![Vec::new(); KEYS]; kills];
    for client in clients {
        for (epoch, key, op) in client.join().expect("client thread") {
            let killed = kill_times[epoch];
            if op.invoked >= killed {
                // Sent after the kill: it reached no server.
                assert_eq!(op.ret, Ret::Unknown, "answered after the kill: {op}");
                continue;
            }
            by_epoch[epoch][key].push(op);
        }
    }
    let acked = by_epoch
        .iter()
        .flatten()
        .flatten()
        .filter(|op| matches!(op.ret, Ret::Written(_) | Ret::Deleted))
        .count();
    let unanswered = by_epoch
        .iter()
        .flatten()
        .flatten()
        .filter(|op| op.ret == Ret::Unknown)
        .count();
    eprintln!(
        "{kills} kills: {} ops sent, {acked} writes acknowledged, {unanswered} cut off by a kill",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        acked > 20 * kills,
        "too few acknowledged writes ({acked} of {} sent) to test the crashes",
        sent.load(Ordering::Relaxed)
    );

    for key in 0..KEYS {
        let mut before: Vec<(Op, u64)> = Vec::new();
        for epoch in 0..kills {
            let ops = &by_epoch[epoch][key];
            let earlier: Vec<Op> = before.iter().map(|(op, _)| *op).collect();
            if let Err(e) = crash::check_versions_rise(&earlier, ops) {
                panic!("key {key}, run {epoch} (after restart {epoch}): {e}");
            }
            let floor = earlier
                .iter()
                .filter_map(|op| match op.ret {
                    Ret::Written(v) | Ret::Found(_, v) => Some(v),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            let initial = Register::holding(probes[epoch][key], floor);
            if let Err(violation) = model::check_linearizable(ops, &initial) {
                panic!(
                    "key {key}, run {epoch} (between restarts), starting from {:?}: {violation}",
                    probes[epoch][key]
                );
            }
            before.extend(ops.iter().map(|op| (*op, kill_times[epoch])));
            if let Err(e) = crash::check_restart(&before, probes[epoch + 1][key]) {
                panic!("key {key}, kill {}: {e}", epoch + 1);
            }
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
