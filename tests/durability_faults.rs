//! The log under faults, against the real binary: kill -9 while the log queue overflows, versions
//! across a crash with `everysec`, a full disk, a failing fsync and a failing snapshot, all
//! injected through the fault layer (feature `testing`).

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, Server};
use reqwest::StatusCode;

fn faults(server: &Server, query: &str) {
    let r = client()
        .post(server.url(&format!("/admin/faults?{query}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().unwrap());
}

fn dashboard(server: &Server) -> serde_json::Value {
    client()
        .get(server.url("/dashboard"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn put(
    c: &reqwest::blocking::Client,
    server: &Server,
    key: &str,
    value: &str,
) -> (StatusCode, String, Option<String>) {
    let r = c
        .put(server.url(&format!("/v1/kv/{key}")))
        .body(value.to_string())
        .send()
        .unwrap();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status(), r.text().unwrap(), etag)
}

fn get(c: &reqwest::blocking::Client, server: &Server, key: &str) -> Option<String> {
    let r = c.get(server.url(&format!("/v1/kv/{key}"))).send().unwrap();
    match r.status() {
        StatusCode::OK => Some(r.text().unwrap()),
        StatusCode::NOT_FOUND => None,
        other => panic!("GET {key}: {other}"),
    }
}

/// Polls `f` every 20 ms for at most `within`; returns whether it held.
fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// What a key may hold after the crash: its last acknowledged state, or the effect of an
/// operation sent after it that was not acknowledged (in flight when the server died, or
/// answered 503). Each key has one writer, one request at a time.
#[derive(Debug, Default, Clone)]
struct KeyHistory {
    acked: Option<Option<String>>,
    maybe: Vec<Option<String>>,
}

#[test]
fn kill_9_under_overflow_with_fsync_always_loses_no_acknowledged_write_or_delete() {
    let dir = common::temp_dir("always");
    let dir_arg = dir.to_string_lossy().to_string();
    let args = [
        "--data-dir",
        &dir_arg,
        "--fsync",
        "always",
        "--shards",
        "2",
        "--fault-log-queue",
        "4",
    ];
    let histories: Arc<Mutex<HashMap<String, KeyHistory>>> = Default::default();
    let overflows;
    {
        let server = Server::start(&args);
        // Slow snapshots: records overflow while one runs, so progress is held and released
        // around snapshot landings again and again.
        faults(&server, "snapshot_delay_ms=100");
        // Waves of expiry during the run (mass expiry on a slow disk): removals that nobody
        // waits for keep arriving in the log queue, overflow it, and follow dropped records.
        let c = client();
        for batch in 0..4 {
            let items: Vec<_> = (0..1000)
                .map(|i| {
                    let n = batch * 1000 + i;
                    serde_json::json!({
                        "key": format!("exp-{n}"),
                        "value": "x",
                        "ttl": format!("{}ms", 300 + (n % 12) * 100),
                    })
                })
                .collect();
            let r = c
                .post(server.url("/v1/mset"))
                .json(&serde_json::json!({ "items": items }))
                .send()
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().unwrap());
        }
        let url = server.url("");
        let stop_at = Instant::now() + Duration::from_millis(2_500);
        let writers: Vec<_> = (0..16)
            .map(|t| {
                let (url, histories) = (url.clone(), histories.clone());
                std::thread::spawn(move || {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    for i in 0..1_250 {
                        if Instant::now() > stop_at {
                            break;
                        }
                        let key = format!("t{t}-k{}", i % 16);
                        let effect = (i % 4 != 3).then(|| format!("v{i}"));
                        histories
                            .lock()
                            .unwrap()
                            .entry(key.clone())
                            .or_default()
                            .maybe
                            .push(effect.clone());
                        let sent = match &effect {
                            Some(value) => c
                                .put(format!("{url}/v1/kv/{key}"))
                                .body(value.clone())
                                .send(),
                            None => c.delete(format!("{url}/v1/kv/{key}")).send(),
                        };
                        // Think time: writes spread over the snapshot cycle instead of all
                        // arriving the moment a landing releases them.
                        let think = (t as u64 * 7919 + i as u64 * 104_729) % 150;
                        let acked = match sent {
                            Ok(r) => {
                                r.status().is_success()
                                    || (effect.is_none() && r.status() == StatusCode::NOT_FOUND)
                            }
                            Err(_) => return, // the server died under us: stays in flight
                        };
                        let mut h = histories.lock().unwrap();
                        let entry = h.get_mut(&key).unwrap();
                        // Not acknowledged (503): it may or may not have happened.
                        if acked {
                            entry.acked = Some(effect);
                            entry.maybe.clear();
                        }
                        drop(h);
                        std::thread::sleep(Duration::from_millis(think));
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1_300));
        overflows = dashboard(&server)["persistence"]["overflows"]
            .as_u64()
            .unwrap();
        drop(server); // SIGKILL mid-load
        writers.into_iter().for_each(|w| w.join().unwrap());
    }
    assert!(
        overflows > 0,
        "the log queue never overflowed: the hold path did not run"
    );
    let histories = histories.lock().unwrap().clone();
    let server = Server::start(&args);
    let c = client();
    let mut acked_keys = 0;
    for (key, h) in &histories {
        let Some(acked) = &h.acked else { continue };
        acked_keys += 1;
        let now = get(&c, &server, key);
        let ok = now == *acked || h.maybe.contains(&now);
        assert!(
            ok,
            "{key}: after the crash holds {now:?}; last acknowledged {acked:?}, not acknowledged since {:?}",
            h.maybe
        );
    }
    assert!(acked_keys > 50, "too few keys written: {acked_keys}");
}

/// The exact sequence that acknowledged a write on disk nowhere: a snapshot is running and has
/// copied shard 0; a batch then overflows the log queue (records of shard 0 dropped, later ones
/// logged); the snapshot lands. The batch may be acknowledged only once a snapshot that covers
/// the dropped records is on disk, so a kill -9 right after the acknowledgement loses none of it.
#[test]
fn kill_9_right_after_a_batch_that_overflowed_during_a_snapshot_is_acknowledged_loses_none_of_it() {
    let dir = common::temp_dir("overflow-during-snapshot");
    let dir_arg = dir.to_string_lossy().to_string();
    let args = [
        "--data-dir",
        &dir_arg,
        "--fsync",
        "always",
        "--shards",
        "2",
        "--fault-log-queue",
        "4",
    ];
    let items: Vec<_> = (0..1000)
        .map(|i| serde_json::json!({ "key": format!("b{i}"), "value": format!("v{i}") }))
        .collect();
    {
        let server = Server::start(&args);
        let snapshots = |s: &Server| dashboard(s)["persistence"]["snapshots"].as_u64().unwrap();
        assert!(eventually(Duration::from_secs(10), || snapshots(&server) >= 1));
        // Each shard's copy waits 400 ms first: shard 0 is copied at ~400 ms, shard 1 at
        // ~800 ms, and the snapshot lands right after.
        faults(&server, "snapshot_delay_ms=400");
        let url = server.url("/admin/snapshot");
        let snapshot = std::thread::spawn(move || {
            let _ = client().post(url).send();
        });
        std::thread::sleep(Duration::from_millis(600));
        let url = server.url("/v1/mset");
        let batch = std::thread::spawn(move || {
            let r = client()
                .post(url)
                .json(&serde_json::json!({ "items": items }))
                .send()
                .unwrap();
            r.status()
        });
        // Later single writes, once the queue has room again: logged after the dropped records
        // (each waits for its own acknowledgement; their answers do not matter here).
        std::thread::sleep(Duration::from_millis(100));
        let later: Vec<_> = (0..20)
            .map(|i| {
                let url = server.url(&format!("/v1/kv/later{i}"));
                std::thread::spawn(move || {
                    let _ = client().put(url).body("x").send();
                })
            })
            .collect();
        assert_eq!(batch.join().unwrap(), StatusCode::OK);
        drop(server); // SIGKILL the moment the batch is acknowledged
        let _ = snapshot.join();
        later.into_iter().for_each(|t| t.join().unwrap());
    }
    let server = Server::start(&args);
    let c = client();
    let lost: Vec<_> = (0..1000)
        .filter(|i| get(&c, &server, &format!("b{i}")).as_deref() != Some(&format!("v{i}")))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. b{}",
        lost.len(),
        lost[0]
    );
}

#[test]
fn versions_acknowledged_before_a_kill_9_with_everysec_never_match_again() {
    let dir = common::temp_dir("everysec");
    let dir_arg = dir.to_string_lossy().to_string();
    let args = [
        "--data-dir",
        &dir_arg,
        "--fsync",
        "everysec",
        "--shards",
        "1",
        "--fault-version-lease",
        "4000",
    ];
    let keys: Vec<String> = (0..4).map(|k| format!("k{k}")).collect();
    let before: Arc<Mutex<HashMap<String, HashSet<String>>>> = Default::default();
    {
        let server = Server::start(&args);
        let url = server.url("");
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (url, before, keys) = (url.clone(), before.clone(), keys.clone());
                std::thread::spawn(move || {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .unwrap();
                    for i in 0..4_000 {
                        let key = &keys[(t + i) % keys.len()];
                        let Ok(r) = c
                            .put(format!("{url}/v1/kv/{key}"))
                            .body(format!("before-{t}-{i}"))
                            .send()
                        else {
                            return; // killed
                        };
                        if let Some(etag) = r.headers().get("etag") {
                            let etag = etag.to_str().unwrap().to_string();
                            let mut b = before.lock().unwrap();
                            let seen = b.entry(key.clone()).or_default();
                            assert!(seen.insert(etag.clone()), "{key}: {etag} handed out twice");
                        }
                    }
                })
            })
            .collect();
        let acked = || {
            before
                .lock()
                .unwrap()
                .values()
                .map(HashSet::len)
                .sum::<usize>()
        };
        let busy = eventually(Duration::from_secs(30), || acked() >= 2_000);
        assert!(busy, "the writers stopped early");
        // A snapshot lands (little is left to replay after it), then the disk fails under the
        // load: writes acknowledged from then on are on disk nowhere, and their versions are
        // above everything on disk. The kill -9 loses them.
        let r = client().post(server.url("/admin/snapshot")).send().unwrap();
        assert!(r.status().is_success());
        faults(&server, "log_write=eio&snapshot=eio");
        std::thread::sleep(Duration::from_millis(300));
        drop(server); // SIGKILL mid-load
        writers.into_iter().for_each(|w| w.join().unwrap());
    }
    let before = before.lock().unwrap().clone();
    assert!(before.values().map(HashSet::len).sum::<usize>() > 100);
    let server = Server::start(&args);
    let c = client();
    for key in &keys {
        let r = c.get(server.url(&format!("/v1/kv/{key}"))).send().unwrap();
        if let Some(etag) = r.headers().get("etag") {
            let etag = etag.to_str().unwrap();
            assert!(
                !before[key].contains(etag),
                "{key}: restored with {etag}, an ETag handed out before the crash"
            );
        }
        for stale in before[key].iter().take(200) {
            let r = c
                .put(server.url(&format!("/v1/kv/{key}")))
                .header("if-match", stale)
                .body("conditional")
                .send()
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::PRECONDITION_FAILED,
                "{key}: If-Match {stale} from before the crash matched"
            );
        }
        for i in 0..300 {
            // A tiny lease can run out for a moment under load (503 until renewed): retry.
            let mut answer = put(&c, &server, key, &format!("after-{i}"));
            for _ in 0..100 {
                if answer.0 != StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
                answer = put(&c, &server, key, &format!("after-{i}"));
            }
            let (status, body, etag) = answer;
            assert!(status.is_success(), "{status}: {body}");
            let etag = etag.unwrap();
            assert!(
                !before[key].contains(&etag),
                "{key}: {etag} handed out again after the crash"
            );
        }
    }
}

#[test]
fn a_full_disk_refuses_writes_clearly_keeps_reads_and_recovers() {
    let dir = common::temp_dir("enospc");
    let dir_arg = dir.to_string_lossy().to_string();
    let args = [
        "--data-dir",
        &dir_arg,
        "--fsync",
        "everysec",
        "--shards",
        "2",
    ];
    let mut server = Server::start(&args);
    let c = client();
    let mut acked: HashMap<String, String> = HashMap::new();
    for i in 0..200 {
        let (status, body, _) = put(&c, &server, &format!("k{i}"), &format!("v{i}"));
        assert!(status.is_success(), "{status}: {body}");
        acked.insert(format!("k{i}"), format!("v{i}"));
    }
    faults(&server, "log_write=enospc");
    // The next batch the log thread writes fails; from then on writes are refused.
    let mut refusal = None;
    let mut i = 200;
    let refused = eventually(Duration::from_secs(10), || {
        let key = format!("k{}", i % 300);
        let (status, body, _) = put(&c, &server, &key, &format!("v{i}"));
        i += 1;
        if status.is_success() {
            acked.insert(key, format!("v{}", i - 1));
            return false;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        refusal = Some(body);
        true
    });
    assert!(refused, "writes were never refused with the disk full");
    let refusal = refusal.unwrap();
    assert!(
        refusal.contains("append-only log cannot be written")
            && refusal.contains("No space left on device")
            && refusal.contains("reads still work"),
        "{refusal}"
    );
    let error: serde_json::Value = serde_json::from_str(&refusal).unwrap();
    assert!(error["error"].is_string());
    // Reads keep working.
    for (key, value) in acked.iter().take(50) {
        assert_eq!(get(&c, &server, key).as_deref(), Some(value.as_str()));
    }
    let d = dashboard(&server);
    assert_eq!(d["persistence"]["health"], "failed", "{d}");
    assert!(
        d["persistence"]["failureReason"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{d}"
    );
    assert!(d["persistence"]["failures"].as_u64().unwrap() >= 1);
    let metrics = c
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("shardkv_log_healthy 0"), "{metrics}");
    // Still refused a while later (the backoff retries fail too).
    std::thread::sleep(Duration::from_millis(300));
    let (status, _, _) = put(&c, &server, "still-full", "x");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    faults(&server, "log_write=off");
    let resumed = eventually(Duration::from_secs(20), || {
        let (status, _, _) = put(&c, &server, "after", "resumed");
        status.is_success()
    });
    assert!(
        resumed,
        "writes did not resume after the disk had room again"
    );
    acked.insert("after".into(), "resumed".into());
    assert_eq!(dashboard(&server)["persistence"]["health"], "ok");
    for i in 0..100 {
        let (status, body, _) = put(&c, &server, &format!("late{i}"), "late");
        assert!(status.is_success(), "{status}: {body}");
        acked.insert(format!("late{i}"), "late".into());
    }
    assert!(
        server.terminate(Duration::from_secs(20)),
        "{}",
        server.log()
    );
    drop(server);

    let server = Server::start(&args);
    for (key, value) in &acked {
        assert_eq!(
            get(&c, &server, key).as_deref(),
            Some(value.as_str()),
            "{key} lost across the restart"
        );
    }
}

#[test]
fn a_write_waiting_on_a_failed_fsync_is_not_acknowledged() {
    let dir = common::temp_dir("fsync-eio");
    let dir_arg = dir.to_string_lossy().to_string();
    let server = Server::start(&["--data-dir", &dir_arg, "--fsync", "always", "--shards", "2"]);
    let c = client();
    let (status, _, _) = put(&c, &server, "before", "ok");
    assert!(status.is_success());
    faults(&server, "log_sync=eio");
    let url = server.url("/v1/kv/victim");
    let waiting = std::thread::spawn(move || {
        let r = client().put(url).body("maybe").send().unwrap();
        (r.status(), r.text().unwrap())
    });
    // Let the sync fail, then let the disk work again while the write is still waiting: a later
    // successful fsync proves nothing about the pages of the failed one.
    std::thread::sleep(Duration::from_millis(300));
    faults(&server, "log_sync=off");
    let (status, body) = waiting.join().unwrap();
    assert!(
        !status.is_success(),
        "a write whose fsync failed was acknowledged with {status}"
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // The log heals by itself: a new generation, a snapshot, then writes are acknowledged.
    let resumed = eventually(Duration::from_secs(20), || {
        put(&c, &server, "after", "ok").0.is_success()
    });
    assert!(resumed, "writes did not resume after the fsync failure");
}

#[test]
fn a_failing_snapshot_is_retried_with_backoff_and_succeeds_once_the_fault_is_gone() {
    let dir = common::temp_dir("snapshot-eio");
    let dir_arg = dir.to_string_lossy().to_string();
    let server = Server::start(&[
        "--data-dir",
        &dir_arg,
        "--fsync",
        "everysec",
        "--shards",
        "2",
    ]);
    let c = client();
    let snapshots = |s: &Server| dashboard(s)["persistence"]["snapshots"].as_u64().unwrap();
    assert!(eventually(Duration::from_secs(10), || snapshots(&server) >= 1));
    let landed = snapshots(&server);
    let generation = dashboard(&server)["persistence"]["generation"]
        .as_u64()
        .unwrap();
    faults(&server, "snapshot=eio");
    let r = c.post(server.url("/admin/snapshot")).send().unwrap();
    assert!(
        !r.status().is_success(),
        "a failing snapshot was reported as written"
    );
    // Retried with a backoff (100 ms doubling): a few attempts in a second, not thousands, and
    // the log is not rotated once per attempt.
    std::thread::sleep(Duration::from_millis(1_200));
    let d = dashboard(&server);
    let failures = d["persistence"]["failures"].as_u64().unwrap();
    assert!(
        (2..=10).contains(&failures),
        "{failures} failed attempts in 1.2 s: {d}"
    );
    assert_eq!(
        d["persistence"]["generation"].as_u64().unwrap(),
        generation + 1,
        "the log rotated for retries: {d}"
    );
    assert_eq!(snapshots(&server), landed);
    // Writes and reads go on meanwhile (a snapshot failure is not a log failure).
    assert!(put(&c, &server, "during", "ok").0.is_success());
    faults(&server, "snapshot=off");
    assert!(
        eventually(Duration::from_secs(15), || snapshots(&server) > landed),
        "the snapshot was not retried after the fault went away"
    );
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.iter().any(|f| f.starts_with("snapshot-")),
        "{files:?}"
    );
}

/// Shutdown: once `close_writes` returns, every write is refused with "shutting down", and no
/// write admitted before it is still on its way to the log, so the log's last drain sees all
/// that was acknowledged. Writers racing the close either succeed (and survive a restart) or are
/// refused; none is accepted and lost.
#[test]
fn writes_racing_shutdown_are_either_logged_or_refused() {
    use shardkv::clock::Clock;
    use shardkv::persistence::recovery::recover;
    use shardkv::persistence::{FsyncMode, LogThread};
    use shardkv::store::{Condition, LockFreeShard, ShardedStore, StoreConfig, StoreError};

    let dir = common::temp_dir("shutdown");
    std::fs::create_dir_all(&dir).unwrap();
    let open = || {
        let store: Arc<ShardedStore<LockFreeShard>> =
            Arc::new(ShardedStore::new(StoreConfig::default(), Clock::coarse()));
        let report = recover(&dir, &store).unwrap();
        let log = LogThread::start(
            store.clone(),
            dir.clone(),
            report.next_gen,
            FsyncMode::No,
            1 << 16,
        )
        .unwrap();
        (store, log)
    };
    let (store, log) = open();
    let accepted: Arc<Mutex<Vec<String>>> = Default::default();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (store, accepted) = (store.clone(), accepted.clone());
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    let key = format!("t{t}-{i}");
                    match store.set(key.as_bytes(), b"v", None, Condition::Always) {
                        Ok(_) => accepted.lock().unwrap().push(key),
                        Err(StoreError::ShuttingDown) => return,
                        Err(other) => panic!("{other}"),
                    }
                }
            })
        })
        .collect();
    while accepted.lock().unwrap().len() < 1_000 {
        std::thread::yield_now();
    }
    store.close_writes();
    let refused = store
        .set(b"late", b"v", None, Condition::Always)
        .map(|receipt| receipt.version);
    assert_eq!(refused, Err(StoreError::ShuttingDown));
    assert!(refused.unwrap_err().to_string().contains("shutting down"));
    drop(log); // the last drain and sync, as the server's shutdown does
    writers.into_iter().for_each(|w| w.join().unwrap());
    let accepted = accepted.lock().unwrap().clone();
    drop(store);

    let (store, _log) = open();
    for key in &accepted {
        assert!(
            store.get(key.as_bytes()).found().is_some(),
            "{key} was accepted during shutdown but is not on disk"
        );
    }
    assert!(store.get(b"late").found().is_none());
}

/// Under `everysec` a kill -9 loses at most about the last second (plus the log queue); under
/// `no` only what had not reached the OS (the log thread hands writes to it every few ms). Both
/// keep every write acknowledged well before the kill, while writes continue up to the kill.
#[test]
fn kill_9_with_everysec_or_no_keeps_writes_older_than_about_a_second() {
    for mode in ["everysec", "no"] {
        let dir = common::temp_dir(&format!("loss-bound-{mode}"));
        let dir_arg = dir.to_string_lossy().to_string();
        let args = ["--data-dir", &dir_arg, "--fsync", mode];
        let c = client();
        {
            let server = Server::start(&args);
            for i in 0..2_000 {
                let (status, body, _) = put(&c, &server, &format!("old{i}"), &format!("v{i}"));
                assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
            }
            // Well past the one-second sync (and the log thread's few-ms batches)...
            std::thread::sleep(Duration::from_millis(2_500));
            // ...then writes keep coming right up to the kill.
            let url = server.url("");
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let writer = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let c = client();
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if c.put(format!("{url}/v1/kv/new{i}"))
                            .body("x")
                            .send()
                            .is_err()
                        {
                            return;
                        }
                        i += 1;
                    }
                })
            };
            std::thread::sleep(Duration::from_millis(300));
            drop(server); // kill -9
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            writer.join().unwrap();
        }
        let server = Server::start(&args);
        for i in 0..2_000 {
            assert_eq!(
                get(&c, &server, &format!("old{i}")).as_deref(),
                Some(format!("v{i}").as_str()),
                "--fsync {mode}: old{i}, acknowledged 2.5 s before the kill, was lost"
            );
        }
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A batch the log can admit only in part (here: a version lease of 16 and batches of 40 on one
/// shard) is refused whole, never written half-way; batches that fit go through.
#[test]
fn an_mset_the_log_cannot_admit_whole_writes_nothing() {
    let dir = common::temp_dir("mset-admit");
    let dir_arg = dir.to_string_lossy().to_string();
    let server = Server::start(&[
        "--data-dir",
        &dir_arg,
        "--shards",
        "1",
        "--fault-version-lease",
        "16",
    ]);
    let c = client();
    let mset = |prefix: &str, n: usize| {
        let items: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"key": format!("{prefix}{i}"), "value": "v"}))
            .collect();
        c.post(server.url("/v1/mset"))
            .json(&serde_json::json!({ "items": items }))
            .send()
            .unwrap()
            .status()
    };
    let mut small_ok = 0;
    for round in 0..20 {
        let status = mset(&format!("big{round}-"), 40);
        let written = (0..40)
            .filter(|i| get(&c, &server, &format!("big{round}-{i}")).is_some())
            .count();
        match status {
            StatusCode::OK => assert_eq!(written, 40),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(written, 0, "a refused batch wrote {written} of 40 items")
            }
            other => panic!("mset answered {other}"),
        }
        if mset(&format!("small{round}-"), 4) == StatusCode::OK {
            small_ok += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(small_ok > 0, "no batch within the lease was ever admitted");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
