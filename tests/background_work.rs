//! Long work on a shard never holds up the requests to it, and failover works at once after a
//! restart: against the real binary, with the fault layer (`--features testing`) holding a
//! snapshot or a replica re-sync copy at its midpoint while a client writes to that shard.

mod common;

use std::time::{Duration, Instant};

use common::{client, Server};

/// Writes `n` keys `k0..` with 100-byte values through `/v1/mset`.
fn preload(server: &Server, n: usize) {
    let http = client();
    for start in (0..n).step_by(1000) {
        let items: Vec<_> = (start..(start + 1000).min(n))
            .map(|i| serde_json::json!({"key": format!("k{i}"), "value": "v".repeat(100)}))
            .collect();
        let reply = http
            .post(server.url("/v1/mset"))
            .json(&serde_json::json!({ "items": items }))
            .send()
            .unwrap();
        assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
    }
}

fn faults(server: &Server, query: &str) -> serde_json::Value {
    let reply = client()
        .post(server.url(&format!("/admin/faults?{query}")))
        .send()
        .expect("the fault layer answers (build with --features testing)");
    assert_eq!(reply.status(), 200, "{}", reply.text().unwrap());
    reply.json().unwrap()
}

/// Waits (bounded) until a shard copy is held at its midpoint by the fault layer.
fn wait_for_paused_copy(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while faults(server, "")["copies_waiting"].as_u64() == Some(0) {
        assert!(Instant::now() < deadline, "no copy reached the pause point");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A client that gives up after 3 s: a write held behind a whole-shard copy would hang for as
/// long as the copy is paused (up to a minute), so a timeout here is the failure.
fn impatient() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

fn put_and_get(server: &Server, key: &str, value: &str) {
    let http = impatient();
    let put = http
        .put(server.url(&format!("/v1/kv/{key}")))
        .body(value.to_string())
        .send()
        .unwrap_or_else(|e| panic!("a write to the shard being copied did not complete: {e}"));
    assert_eq!(put.status(), 204);
    let got = http
        .get(server.url(&format!("/v1/kv/{key}")))
        .send()
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().unwrap(), value);
}

#[test]
fn a_write_completes_while_a_snapshot_copy_of_its_shard_is_paused() {
    let dir = common::temp_dir("snapshot");
    let args = [
        "--shards",
        "1",
        "--fsync",
        "always",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    let server = Server::start(&args);
    preload(&server, 4_000);
    faults(&server, "copy_pause=on");
    let snapshot = {
        let url = server.url("/admin/snapshot");
        std::thread::spawn(move || client().post(url).send().unwrap().status())
    };
    wait_for_paused_copy(&server);
    put_and_get(&server, "written-during-copy", "fresh");
    faults(&server, "copy_pause=off");
    assert_eq!(snapshot.join().unwrap(), 200);

    // The snapshot and the log after its fence restore the write made during the copy, even
    // after a kill -9 (`always`: it was on disk when acknowledged).
    drop(server);
    let server = Server::start(&args);
    let got = client()
        .get(server.url("/v1/kv/written-during-copy"))
        .send()
        .unwrap();
    assert_eq!(got.text().unwrap(), "fresh");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_write_completes_while_a_resync_copy_of_its_shard_is_paused() {
    let server = Server::start(&["--shards", "1", "--replicas", "1"]);
    preload(&server, 4_000);
    let http = client();
    let fail = http
        .post(server.url("/admin/shards/0/fail"))
        .send()
        .unwrap();
    assert_eq!(fail.status(), 200, "{}", fail.text().unwrap());
    faults(&server, "copy_pause=on");
    let recover = {
        let url = server.url("/admin/shards/0/recover");
        std::thread::spawn(move || client().post(url).send().unwrap().status())
    };
    wait_for_paused_copy(&server);
    put_and_get(&server, "written-during-resync", "fresh");
    let delete = impatient()
        .delete(server.url("/v1/kv/k7"))
        .send()
        .expect("a delete during the re-sync completes");
    assert_eq!(delete.status(), 204);
    faults(&server, "copy_pause=off");
    assert_eq!(recover.join().unwrap(), 200);

    // The re-synced copy holds the writes made during its copy: fail over to it and read.
    let fail = http
        .post(server.url("/admin/shards/0/fail"))
        .send()
        .unwrap();
    assert_eq!(fail.status(), 200, "{}", fail.text().unwrap());
    let got = http
        .get(server.url("/v1/kv/written-during-resync"))
        .send()
        .unwrap();
    assert_eq!(got.text().unwrap(), "fresh");
    let gone = http.get(server.url("/v1/kv/k7")).send().unwrap();
    assert_eq!(
        gone.status(),
        404,
        "a key deleted during the re-sync came back"
    );
    let kept = http.get(server.url("/v1/kv/k8")).send().unwrap();
    assert_eq!(kept.status(), 200);
}

#[test]
fn failover_of_an_idle_shard_right_after_a_restart_answers() {
    // After a restart every shard's sequence starts above the versions on disk; a replica that
    // has not seen a write since must count as caught up, or failing over an idle shard waits
    // for a write that never comes and times out.
    let dir = common::temp_dir("failover-restart");
    let args = [
        "--shards",
        "4",
        "--replicas",
        "1",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    {
        let mut server = Server::start(&args);
        let put = client()
            .put(server.url("/v1/kv/only"))
            .body("one")
            .send()
            .unwrap();
        assert_eq!(put.status(), 204);
        assert!(server.terminate(Duration::from_secs(20)));
    }
    let server = Server::start(&args);
    let http = client();
    for shard in 0..4 {
        let fail = http
            .post(server.url(&format!("/admin/shards/{shard}/fail")))
            .send()
            .unwrap();
        let status = fail.status();
        assert_eq!(status, 200, "shard {shard}: {}", fail.text().unwrap());
    }
    let got = http.get(server.url("/v1/kv/only")).send().unwrap();
    assert_eq!(got.text().unwrap(), "one");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replica_that_overflows_resyncs_and_the_counters_say_so() {
    // A queue of one record overflows at once under a batch; the replica re-syncs without
    // holding the writers, goes live again, and /dashboard and /metrics count both.
    let server = Server::start(&[
        "--shards",
        "2",
        "--replicas",
        "1",
        "--fault-replica-queue",
        "1",
    ]);
    preload(&server, 3_000);
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(20);
    let dashboard = loop {
        let d: serde_json::Value = http
            .get(server.url("/dashboard"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let resynced = d["replicaResyncs"].as_u64().unwrap_or(0) > 0;
        // Every copy live: an earlier round's re-sync may have completed while a later one
        // (after another overflow) still runs.
        let copies = d["replicas"].as_array().cloned().unwrap_or_default();
        let live = !copies.is_empty() && copies.iter().all(|c| c["state"] == "live");
        if resynced && live {
            break d;
        }
        assert!(Instant::now() < deadline, "no completed re-sync: {d}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(dashboard["replicaOverflows"].as_u64().unwrap() > 0);
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for name in [
        "shardkv_replica_overflows_total",
        "shardkv_replica_resyncs_total",
    ] {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from /metrics"));
        let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 0, "{line}");
    }
    // The re-synced replica holds every key: fail both shards over to it and read them all.
    for shard in 0..2 {
        let fail = http
            .post(server.url(&format!("/admin/shards/{shard}/fail")))
            .send()
            .unwrap();
        assert_eq!(fail.status(), 200, "{}", fail.text().unwrap());
    }
    for i in (0..3_000).step_by(7) {
        let got = http
            .get(server.url(&format!("/v1/kv/k{i}")))
            .send()
            .unwrap();
        assert_eq!(got.status(), 200, "k{i} missing on the promoted replica");
    }
}
