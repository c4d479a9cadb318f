//! Durability: what was acknowledged survives a crash; torn tails are dropped, corruption
//! stops start-up; snapshots taken under concurrent writes lose and duplicate nothing.

mod common;

use common::{contents, new_store};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{client, Server};
use shardkv::persistence::format::{decode_record, log_path, Header};
use shardkv::persistence::recovery::recover;
use shardkv::persistence::{FsyncMode, LogThread, PersistenceError};
use shardkv::store::{Condition, LockFreeShard, ShardedStore};

/// Opens `dir` like the server does: recover, then start the log.
fn open(dir: &Path, fsync: FsyncMode) -> (Arc<ShardedStore<LockFreeShard>>, LogThread) {
    let store = new_store();
    let report = recover(dir, &store).unwrap();
    let log = LogThread::start(
        store.clone(),
        dir.to_path_buf(),
        report.next_gen,
        fsync,
        1 << 16,
    )
    .unwrap();
    (store, log)
}

fn set(store: &ShardedStore<LockFreeShard>, key: &str, value: &str, ttl: Option<Duration>) -> u64 {
    store
        .set(
            key.as_bytes(),
            Bytes::from(value.to_string()),
            ttl,
            Condition::Always,
        )
        .unwrap()
        .version
}

/// The offsets of every record in a log file.
fn record_offsets(path: &Path) -> (Vec<u8>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let (_, mut at) = Header::decode(&bytes).unwrap();
    let mut offsets = Vec::new();
    while at < bytes.len() {
        offsets.push(at);
        at = decode_record(&bytes, at).unwrap().1;
    }
    (bytes, offsets)
}

#[test]
fn restart_restores_values_ttls_and_deletes() {
    let dir = common::temp_dir("restart");
    {
        let (store, _log) = open(&dir, FsyncMode::Always);
        set(&store, "plain", "1", None);
        set(&store, "ttl", "2", Some(Duration::from_secs(3600)));
        set(&store, "short", "3", Some(Duration::from_millis(300)));
        set(&store, "gone", "4", None);
        store.delete(b"gone").unwrap();
        set(&store, "plain", "5", None);
    }
    std::thread::sleep(Duration::from_millis(400));
    let store = new_store();
    let report = recover(&dir, &store).unwrap();
    assert_eq!(store.get(b"plain").found().unwrap().value(), b"5");
    let ttl = store.get(b"ttl").found().unwrap();
    let left = ttl.deadline - store.clock().now();
    assert!(
        left > 3_590_000 && left <= 3_600_000,
        "remaining TTL {left} ms"
    );
    assert!(store.get(b"short").found().is_none(), "expired while down");
    assert!(store.get(b"gone").found().is_none());
    assert_eq!(report.keys, 2);
    assert!(report.torn.is_empty());
}

#[test]
fn a_torn_last_record_is_dropped_at_every_cut_and_only_it_is_lost() {
    let dir = common::temp_dir("torn");
    {
        let (store, log) = open(&dir, FsyncMode::Always);
        // Wait for the start-up snapshot so the records below all land in one log.
        common::wait_for_first_snapshot(&log);
        for i in 0..5 {
            set(&store, &format!("k{i}"), &format!("value-{i}"), None);
        }
    }
    let log = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("log-"))
        .unwrap();
    let (bytes, offsets) = record_offsets(&log);
    assert_eq!(offsets.len(), 5);
    let last = *offsets.last().unwrap();
    for cut in last..bytes.len() {
        let copy = common::temp_dir("torn-copy");
        std::fs::copy(
            dir.join(snapshot_name(&dir)),
            copy.join(snapshot_name(&dir)),
        )
        .unwrap();
        std::fs::write(copy.join(log.file_name().unwrap()), &bytes[..cut]).unwrap();
        let store = new_store();
        let report = recover(&copy, &store).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(store.len(), 4, "cut at {cut}");
        assert!(store.get(b"k4").found().is_none());
        assert_eq!(store.get(b"k3").found().unwrap().value(), b"value-3");
        if cut > last {
            assert_eq!(
                report.torn,
                vec![(copy.join(log.file_name().unwrap()), last as u64)]
            );
        }
    }
    // A zero-filled tail (the file grew but the data never landed) is torn too.
    let copy = common::temp_dir("torn-zero");
    std::fs::copy(
        dir.join(snapshot_name(&dir)),
        copy.join(snapshot_name(&dir)),
    )
    .unwrap();
    let mut zeroed = bytes.clone();
    zeroed.extend_from_slice(&[0; 64]);
    std::fs::write(copy.join(log.file_name().unwrap()), &zeroed).unwrap();
    let store = new_store();
    recover(&copy, &store).unwrap();
    assert_eq!(store.len(), 5);

    // A flipped byte in a middle record, followed by valid records: corruption, named.
    let copy = common::temp_dir("corrupt");
    std::fs::copy(
        dir.join(snapshot_name(&dir)),
        copy.join(snapshot_name(&dir)),
    )
    .unwrap();
    let mut corrupt = bytes.clone();
    corrupt[offsets[2] + 12] ^= 0xff;
    let corrupt_path = copy.join(log.file_name().unwrap());
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    let store = new_store();
    match recover(&copy, &store) {
        Err(PersistenceError::Corrupt { path, offset }) => {
            assert_eq!(path, corrupt_path);
            assert_eq!(offset, offsets[2] as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(
        store.is_empty(),
        "nothing is loaded from a corrupt directory"
    );
    let message = recover(&copy, &new_store()).unwrap_err().to_string();
    assert!(
        message.contains("corrupt record at byte offset"),
        "{message}"
    );
}

fn snapshot_name(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| PathBuf::from(e.unwrap().file_name()))
        .find(|p| p.to_string_lossy().starts_with("snapshot-"))
        .expect("a snapshot")
}

#[test]
fn snapshots_under_concurrent_writes_lose_and_duplicate_nothing() {
    let dir = common::temp_dir("snapshot");
    let expected;
    {
        let (store, log) = open(&dir, FsyncMode::No);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let key = format!("t{t}-{}", i % 3_000);
                        if i % 7 == 3 {
                            store.delete(key.as_bytes()).unwrap();
                        } else {
                            set(&store, &key, &format!("{i}"), None);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        for _ in 0..5 {
            let done = log.sink().request_snapshot();
            done.recv_timeout(Duration::from_secs(60)).unwrap().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writers.into_iter().for_each(|w| w.join().unwrap());
        expected = contents(&store);
        assert!(expected.len() > 1_000);
    }
    let store = new_store();
    recover(&dir, &store).unwrap();
    assert_eq!(contents(&store), expected);
    // Old generations were deleted: one snapshot and its logs remain.
    let snapshots = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snapshot-")
        })
        .count();
    assert_eq!(snapshots, 1);
    assert!(
        !log_path(&dir, 1).exists(),
        "the first generation's log was not removed"
    );
}

#[test]
fn acknowledged_writes_survive_kill_9_with_fsync_always() {
    let dir = common::temp_dir("kill9");
    let dir_arg = dir.to_string_lossy().to_string();
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let server = Server::start(&["--data-dir", &dir_arg, "--fsync", "always"]);
        let url = server.url("");
        let stop_at = Instant::now() + Duration::from_millis(1_500);
        let writers: Vec<_> = (0..8)
            .map(|t| {
                let (url, acked) = (url.clone(), acked.clone());
                std::thread::spawn(move || {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .unwrap();
                    let mut i = 0;
                    while Instant::now() < stop_at {
                        let key = format!("w{t}-{i}");
                        let ttl = if i % 2 == 0 { "&ttl=1h" } else { "" };
                        match c.get(format!("{url}/set?key={key}&value=v{i}{ttl}")).send() {
                            Ok(r) if r.status().is_success() => {
                                acked
                                    .lock()
                                    .unwrap()
                                    .push((key, format!("v{i}"), i % 2 == 0))
                            }
                            _ => break, // the server died under us
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(800));
        drop(server); // SIGKILL mid-load
        writers.into_iter().for_each(|w| w.join().unwrap());
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "too few writes before the kill: {}",
        acked.len()
    );
    let server = Server::start(&["--data-dir", &dir_arg, "--fsync", "always"]);
    let c = client();
    for (key, value, has_ttl) in &acked {
        let r = c.get(server.url(&format!("/v1/kv/{key}"))).send().unwrap();
        assert_eq!(
            r.status(),
            reqwest::StatusCode::OK,
            "acknowledged {key} lost"
        );
        let ttl = r
            .headers()
            .get("x-ttl-ms")
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        assert_eq!(ttl.is_some(), *has_ttl, "{key}: TTL lost or invented");
        if let Some(ms) = ttl {
            assert!(
                ms > 3_500_000 && ms <= 3_600_000,
                "{key}: remaining TTL {ms}"
            );
        }
        assert_eq!(r.text().unwrap(), *value);
    }
    assert!(server.log().contains("loaded"), "{}", server.log());
}
