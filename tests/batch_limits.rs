//! Batch limits that must hold on what is really sent, and all-or-nothing `mset` against
//! concurrent writers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{client, Server};
use reqwest::StatusCode;
use serde_json::Value;
use shardkv::clock::Clock;
use shardkv::store::{LockFreeShard, Shard, ShardedStore, StoreConfig, StoreError};

/// `--max-batch-answer-bytes` at its minimum, 1024.
const ANSWER_LIMIT: usize = 1024;

fn mget(
    c: &reqwest::blocking::Client,
    s: &Server,
    query: &str,
    keys: &[&str],
) -> (StatusCode, Vec<u8>) {
    let body = serde_json::json!({ "keys": keys }).to_string();
    let r = c
        .post(s.url(&format!("/v1/mget{query}")))
        .body(body)
        .send()
        .unwrap();
    (r.status(), r.bytes().unwrap().to_vec())
}

fn put(c: &reqwest::blocking::Client, s: &Server, key: &str, value: Vec<u8>) {
    let r = c
        .put(s.url(&format!("/v1/kv/{key}")))
        .body(value)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[test]
fn mget_answer_limit_counts_the_bytes_sent() {
    let s = Server::start(&["--max-batch-answer-bytes", &ANSWER_LIMIT.to_string()]);
    let c = client();
    // `{"values":{"k":"<value>"}}` is 19 bytes around the value.
    let frame = r#"{"values":{"k":""}}"#.len();
    let fits = ANSWER_LIMIT - frame;

    // Plain text: exactly at the limit is sent, one byte more is not.
    put(&c, &s, "k", vec![b'a'; fits]);
    let (status, body) = mget(&c, &s, "", &["k"]);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), ANSWER_LIMIT);
    put(&c, &s, "k", vec![b'a'; fits + 1]);
    assert_eq!(mget(&c, &s, "", &["k"]).0, StatusCode::PAYLOAD_TOO_LARGE);

    // Control bytes: 200 raw bytes fit the limit, but each is sent as `\u0001` (6 bytes).
    put(&c, &s, "k", vec![0x01; 200]);
    let (status, body) = mget(&c, &s, "", &["k"]);
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{} bytes sent",
        body.len()
    );
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("--max-batch-answer-bytes"));
    // Quotes and backslashes are 2 bytes each: 600 of them are 1200.
    put(&c, &s, "k", b"\"\\".repeat(300));
    assert_eq!(mget(&c, &s, "", &["k"]).0, StatusCode::PAYLOAD_TOO_LARGE);
    // A few escapes that do fit: the answer is exactly as long as counted, and under the limit.
    put(&c, &s, "k", [&b"\x01\n\"\\"[..], &[b'a'; 100]].concat());
    let (status, body) = mget(&c, &s, "", &["k"]);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.len(), frame + 6 + 2 + 2 + 2 + 100);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["values"]["k"].as_str().unwrap().len(), 104);

    // base64 sends 4 bytes for every 3: 765 raw bytes are 1020 sent, plus the frame.
    put(&c, &s, "k", vec![0xff; 765]);
    assert_eq!(
        mget(&c, &s, "?encoding=base64", &["k"]).0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let fits_b64 = (ANSWER_LIMIT - frame) / 4 * 3;
    put(&c, &s, "k", vec![0xff; fits_b64]);
    let (status, body) = mget(&c, &s, "?encoding=base64", &["k"]);
    assert_eq!(status, StatusCode::OK);
    assert!(body.len() <= ANSWER_LIMIT);

    // Keys count too: many absent keys answer `"key":null` each.
    let keys: Vec<String> = (0..60).map(|i| format!("absent-key-{i:04}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (status, _) = mget(&c, &s, "", &keys);
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = mget(&c, &s, "", &keys[..30]);
    assert_eq!(status, StatusCode::OK);
    assert!(body.len() <= ANSWER_LIMIT);
}

/// Each batch writes its own keys; a batch that was refused must have written none of them,
/// and one that was accepted all of them, while other threads write and delete single keys.
///
/// The memory limit holds one batch and two single keys: a batch passes its memory check when
/// at most two of the four single keys are stored, and a third written meanwhile would refuse
/// the batch's last items if they were checked again.
#[test]
fn set_many_writes_all_or_nothing_under_concurrent_writers() {
    const BATCHES: usize = 2;
    const TOGGLERS: usize = 4;
    const ROUNDS: usize = 2_000;
    const ITEMS: usize = 16;
    const VALUE: usize = 64;
    let key = |b: usize, round: usize, i: usize| format!("batch-{b}-{round:05}-{i:02}");
    let toggle_key = |t: usize| format!("toggle-{t}");
    let per_item = key(0, 0, 0).len() as u64 + VALUE as u64 + LockFreeShard::ENTRY_OVERHEAD;
    let per_toggle = toggle_key(0).len() as u64 + VALUE as u64 + LockFreeShard::ENTRY_OVERHEAD;
    let (clock, _hand) = Clock::manual(0);
    let config = StoreConfig {
        shards: 4,
        max_memory: per_item * ITEMS as u64 + 2 * per_toggle,
        ..StoreConfig::default()
    };
    let store = Arc::new(ShardedStore::<LockFreeShard>::new(config, clock));
    let refused = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let togglers: Vec<_> = (0..TOGGLERS)
        .map(|t| {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                let key = toggle_key(t);
                while done.load(Ordering::Relaxed) < BATCHES {
                    match store.set(key.as_bytes(), [b't'; VALUE], None, Default::default()) {
                        Ok(_) => assert!(store.delete(key.as_bytes()).unwrap()),
                        Err(StoreError::MemoryFull { .. }) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let batches: Vec<_> = (0..BATCHES)
        .map(|b| {
            let (store, done) = (store.clone(), done.clone());
            let (refused, accepted) = (refused.clone(), accepted.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let keys: Vec<String> = (0..ITEMS).map(|i| key(b, round, i)).collect();
                    let items: Vec<_> = keys
                        .iter()
                        .map(|k| (k.as_bytes(), [b'b'; VALUE], None))
                        .collect();
                    let result = store.set_many(&items).map(|receipt| receipt.versions);
                    let present = keys
                        .iter()
                        .filter(|k| store.get(k.as_bytes()).found().is_some())
                        .count();
                    match result {
                        Ok(versions) => {
                            assert_eq!(versions.len(), ITEMS);
                            assert_eq!(present, ITEMS, "an accepted batch is missing items");
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(StoreError::MemoryFull { .. }) => {
                            assert_eq!(
                                present, 0,
                                "a refused batch wrote {present} of {ITEMS} items"
                            );
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                    for key in &keys {
                        store.delete(key.as_bytes()).unwrap();
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    for t in batches {
        t.join().unwrap();
    }
    for t in togglers {
        t.join().unwrap();
    }
    // Both outcomes happened, so the race was exercised.
    assert!(
        accepted.load(Ordering::Relaxed) > 0,
        "no batch was accepted"
    );
    assert!(refused.load(Ordering::Relaxed) > 0, "no batch was refused");
}
