//! Eviction is an ordinary removal for replication and persistence, against the real binary:
//! with `--replicas 2`, a small `--max-memory`, `allkeys-lru` and `--data-dir`, writes well past
//! the cap evict keys on the primary; every replica copy, promoted in turn, must then serve
//! exactly the primary's keys and values, and after a kill -9 and a restart on the same data
//! directory the server must hold exactly those keys again (an evicted key never comes back).

mod common;

use common::{client, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Keys written: `k0000` .. `k1999`.
const KEYS: usize = 2_000;

/// Items per `/v1/mset`.
const BATCH: usize = 40;

const SHARDS: usize = 2;

/// Room for a few hundred of the written entries (each counts its key, its value and three
/// copies' overhead).
const CAP: &str = "65536";

fn key(i: usize) -> String {
    format!("k{i:04}")
}

fn value(i: usize) -> String {
    format!("{i:04}-{}", "v".repeat(96))
}

/// Every written key the server holds now, with its value (one `/v1/mget` per 1000 keys).
fn held(http: &reqwest::blocking::Client, server: &Server) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    for chunk in keys.chunks(1_000) {
        let r = http
            .post(server.url("/v1/mget"))
            .body(json!({ "keys": chunk }).to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        let answer: Value = r.json().unwrap();
        for (k, v) in answer["values"].as_object().unwrap() {
            if let Some(v) = v.as_str() {
                out.insert(k.clone(), v.to_string());
            }
        }
    }
    out
}

fn dashboard(http: &reqwest::blocking::Client, server: &Server) -> Value {
    http.get(server.url("/dashboard"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn evictions_reach_every_replica_and_survive_a_kill_9() {
    let dir = common::temp_dir("eviction-durability");
    let args = [
        "--shards",
        "2",
        "--replicas",
        "2",
        "--max-memory",
        CAP,
        "--maxmemory-policy",
        "allkeys-lru",
        "--data-dir",
        dir.to_str().unwrap(),
        "--fsync",
        "always",
    ];
    let server = Server::start(&args);
    let http = client();
    for start in (0..KEYS).step_by(BATCH) {
        let items: Vec<Value> = (start..start + BATCH)
            .map(|i| json!({ "key": key(i), "value": value(i) }))
            .collect();
        let r = http
            .post(server.url("/v1/mset"))
            .body(json!({ "items": items }).to_string())
            .send()
            .unwrap();
        let status = r.status();
        assert_eq!(status, 200, "mset at {start}: {}", r.text().unwrap());
    }

    let primary = held(&http, &server);
    assert!(
        !primary.is_empty() && primary.len() < KEYS / 2,
        "{} of {KEYS} keys held: the writes did not evict",
        primary.len()
    );
    for (k, v) in &primary {
        assert_eq!(v, &value(k[1..].parse().unwrap()), "{k} changed");
    }
    let d = dashboard(&http, &server);
    let used = d["memory"]["dataBytesEstimate"].as_u64().unwrap();
    assert!(used <= CAP.parse().unwrap(), "estimate {used} past the cap");
    // The HTTP dashboard's eviction counter counts exactly the keys that went (no key was
    // deleted or expired).
    let evicted = d["memory"]["evictedKeys"]
        .as_u64()
        .expect("memory.evictedKeys");
    assert_eq!(evicted as usize, KEYS - primary.len(), "evictedKeys");

    // (a) Every replica copy: promote each in turn and read through it. Copy 0 is the first
    // primary; each round must promote a copy not served from before.
    let mut served = vec![vec![0u64]; SHARDS];
    for round in 1..=2 {
        for (shard, served) in served.iter_mut().enumerate() {
            let fail = http
                .post(server.url(&format!("/admin/shards/{shard}/fail")))
                .send()
                .unwrap();
            let status = fail.status();
            let answer: Value = fail.json().unwrap();
            assert_eq!(status, 200, "fail {shard}: {answer}");
            let promoted = answer["primary"].as_u64().unwrap();
            assert!(
                !served.contains(&promoted),
                "round {round} promoted copy {promoted} of shard {shard} again ({served:?})"
            );
            served.push(promoted);
        }
        let promoted = held(&http, &server);
        assert_eq!(
            promoted.keys().collect::<Vec<_>>(),
            primary.keys().collect::<Vec<_>>(),
            "promoted replica (round {round}) holds other keys than the primary did"
        );
        assert_eq!(promoted, primary, "promoted replica (round {round}) values");
    }

    // (b) kill -9, restart on the same data directory.
    drop(server);
    let server = Server::start(&args);
    let restarted = held(&http, &server);
    let came_back: Vec<_> = restarted
        .keys()
        .filter(|k| !primary.contains_key(*k))
        .collect();
    assert!(
        came_back.is_empty(),
        "evicted keys came back: {came_back:?}"
    );
    assert_eq!(restarted, primary, "the restarted server lost keys");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same writes under `noeviction` are refused once the cap is reached (HTTP 507) and
/// nothing is removed: the durability test above cannot pass by losing keys some other way.
#[test]
fn noeviction_refuses_instead_of_removing() {
    let server = Server::start(&["--shards", "2", "--replicas", "2", "--max-memory", CAP]);
    let http = client();
    let mut accepted = 0;
    for i in 0..KEYS / 4 {
        let r = http
            .put(server.url(&format!("/v1/kv/{}", key(i))))
            .body(value(i))
            .send()
            .unwrap();
        match r.status().as_u16() {
            204 => accepted += 1,
            507 => {}
            other => panic!("put {}: {other} {}", key(i), r.text().unwrap()),
        }
    }
    assert!(accepted > 0 && accepted < KEYS / 4, "{accepted} accepted");
    assert_eq!(held(&http, &server).len(), accepted);
}
