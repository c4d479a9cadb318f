//! Eviction as the two front-ends show it, against the real binary: writes past `--max-memory`
//! over HTTP and RESP under an evicting policy and under `noeviction`, the settings changed at
//! run time (`POST /admin/config`, `CONFIG SET`), what `/dashboard`, `/metrics` and `INFO`
//! report, and, where the reply is Redis's, the same commands sent to Debian's redis-server
//! 7.0.15 with the replies compared byte for byte.

mod common;

use std::time::Duration;

use common::resp::{escape, RedisServer, RespConn};
use common::{client, Server};
use serde_json::Value;

/// Redis's reply to a write it cannot make room for.
const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

/// A small cap: about 300 of the 1 KB values below, so the loads write several times it.
const CAP: u64 = 300_000;

/// Keys each load writes (about 1.1 MB of values and overhead: over three times [`CAP`]).
const LOAD: usize = 1_000;

fn value() -> String {
    "v".repeat(1_000)
}

fn dashboard(s: &Server) -> Value {
    client()
        .get(s.url("/dashboard"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn set(s: &Server, c: &reqwest::blocking::Client, key: &str) -> reqwest::blocking::Response {
    c.post(s.url("/set"))
        .form(&[("key", key), ("value", &value())])
        .send()
        .unwrap()
}

/// `POST /admin/config` with `body` (and the bearer token, if given): status and JSON.
fn admin_config(s: &Server, body: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = client()
        .post(s.url("/admin/config"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn http_writes_past_the_cap_evict_under_allkeys_lru_and_every_one_is_accepted() {
    let s = Server::start(&[
        "--max-memory",
        &CAP.to_string(),
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    let c = client();
    for i in 0..LOAD {
        let r = set(&s, &c, &format!("key:{i}"));
        assert_eq!(r.status().as_u16(), 200, "write {i}: {:?}", r.text());
    }
    let d = dashboard(&s);
    let memory = &d["memory"];
    let evicted = memory["evictedKeys"].as_u64().unwrap();
    assert!(evicted > 0, "{d}");
    assert_eq!(memory["maxmemoryPolicy"], "allkeys-lru", "{d}");
    assert!(
        memory["dataBytesEstimate"].as_u64().unwrap() <= memory["maxMemory"].as_u64().unwrap(),
        "{d}"
    );
    // Everything written is either still there or evicted.
    assert_eq!(d["keys"].as_u64().unwrap() + evicted, LOAD as u64, "{d}");
    // The latest write is there: LRU evicts the oldest first.
    let r = c
        .get(s.url(&format!("/get?key=key:{}", LOAD - 1)))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let metrics = c.get(s.url("/metrics")).send().unwrap().text().unwrap();
    // No writes since the dashboard was read: the counter is the same.
    assert!(
        metrics.contains(&format!("\nshardkv_evicted_keys_total {evicted}\n")),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE shardkv_evicted_keys_total counter\n"));
    assert!(
        metrics.contains("shardkv_maxmemory_policy{policy=\"allkeys-lru\"} 1\n"),
        "{metrics}"
    );
}

#[test]
fn http_admin_config_switches_between_refusing_and_evicting() {
    let token = "t0ken";
    let s = Server::start(&["--max-memory", &CAP.to_string(), "--admin-token", token]);
    let c = client();

    // The settings route keeps the admin routes' rule.
    let r = c.get(s.url("/admin/config")).send().unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let (status, _) = admin_config(&s, r#"{"maxmemory_policy": "allkeys-lru"}"#, None);
    assert_eq!(status, 403);
    let r = c
        .get(s.url("/admin/config"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let current: Value = r.json().unwrap();
    assert_eq!(
        current,
        serde_json::json!({"maxmemory_policy": "noeviction", "maxmemory_samples": 5, "max_memory": CAP})
    );

    // noeviction: the same load is refused with 507 and a JSON error once the cap is reached.
    let mut refused = None;
    for i in 0..LOAD {
        let r = set(&s, &c, &format!("key:{i}"));
        if r.status().as_u16() != 200 {
            refused = Some((i, r.status().as_u16(), r.json::<Value>().unwrap()));
            break;
        }
    }
    let (at, status, body) = refused.expect("noeviction never refused a write past the cap");
    assert_eq!(status, 507, "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert!(at > 100, "refused too early, at write {at}");

    // A bad field changes nothing, even beside good ones, and the error names it.
    for (body, named) in [
        (
            r#"{"maxmemory_policy": "lru", "maxmemory_samples": 7}"#,
            "\"lru\"",
        ),
        (
            r#"{"maxmemory_policy": "allkeys-lru", "maxmemory_samples": 0}"#,
            "maxmemory_samples",
        ),
        (
            r#"{"maxmemory_policy": "allkeys-lru", "max_memory": "big"}"#,
            "max_memory",
        ),
        (r#"{"policy": "allkeys-lru"}"#, "\"policy\""),
        ("not json", "JSON"),
    ] {
        let (status, reply) = admin_config(&s, body, Some(token));
        assert_eq!(status, 400, "{body}: {reply}");
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains(named), "{body}: {error}");
    }
    let (_, reply) = admin_config(&s, r#"{"maxmemory_policy": "lru"}"#, Some(token));
    assert!(
        reply["error"].as_str().unwrap().contains("allkeys-lru"),
        "the error lists the accepted names: {reply}"
    );
    assert_eq!(dashboard(&s)["memory"]["maxmemoryPolicy"], "noeviction");
    assert_eq!(set(&s, &c, "still-full").status().as_u16(), 507);

    // Switch to allkeys-lru: the writes go through, evicting.
    let (status, reply) = admin_config(
        &s,
        r#"{"maxmemory_policy": "ALLKEYS-LRU", "maxmemory_samples": 10}"#,
        Some(token),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        serde_json::json!({"maxmemory_policy": "allkeys-lru", "maxmemory_samples": 10, "max_memory": CAP})
    );
    for i in 0..LOAD / 2 {
        let r = set(&s, &c, &format!("more:{i}"));
        assert_eq!(r.status().as_u16(), 200, "write {i} after the switch");
    }
    let d = dashboard(&s);
    assert!(d["memory"]["evictedKeys"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["memory"]["maxmemorySamples"], 10, "{d}");

    // volatile-lru with no key holding a TTL: nothing may be evicted, so 507 again.
    let (status, _) = admin_config(&s, r#"{"maxmemory_policy": "volatile-lru"}"#, Some(token));
    assert_eq!(status, 200);
    let r = set(&s, &c, "no-room");
    assert_eq!(r.status().as_u16(), 507);
    assert!(r.json::<Value>().unwrap()["error"].is_string());

    // Raising the cap through the same route lets writes in again.
    let (status, reply) = admin_config(&s, r#"{"max_memory": 0}"#, Some(token));
    assert_eq!(status, 200);
    assert_eq!(reply["max_memory"], 0, "0 reads back as no limit: {reply}");
    assert_eq!(set(&s, &c, "room-again").status().as_u16(), 200);
}

/// The `name:` line of an INFO reply, e.g. `maxmemory_policy:allkeys-lru`.
fn info_field(reply: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(reply);
    text.split("\r\n")
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_string()
}

/// Sends every command to both servers and compares the replies byte for byte.
fn same_replies(redis: &mut RespConn, shardkv: &mut RespConn, commands: &[&[&str]]) {
    for args in commands {
        let expected = redis.call_str(args);
        let got = shardkv.call_str(args);
        assert_eq!(
            escape(&got),
            escape(&expected),
            "{args:?}: shardkv (left) and redis-server (right) differ"
        );
    }
}

#[test]
fn resp_eviction_settings_and_object_errors_match_redis() {
    let reference = RedisServer::start();
    let server = Server::start(&[]);
    let mut redis = RespConn::connect(reference.addr);
    let mut ours = RespConn::connect(server.resp_addr());
    same_replies(
        &mut redis,
        &mut ours,
        &[
            &["CONFIG", "GET", "maxmemory-policy"],
            &["CONFIG", "GET", "maxmemory-samples"],
            // Unknown names, a name's wrong case, several pairs at once (one bad: none applied).
            &["CONFIG", "SET", "maxmemory-policy", "foo"],
            &["CONFIG", "SET", "maxmemory-policy", "LRU"],
            &["CONFIG", "SET", "maxmemory-policy", ""],
            &["CONFIG", "SET", "maxmemory-policy", "volatile-TTL"],
            &["CONFIG", "GET", "maxmemory-policy"],
            &[
                "CONFIG",
                "SET",
                "maxmemory-policy",
                "allkeys-lru",
                "maxmemory-samples",
                "0",
            ],
            &["CONFIG", "GET", "maxmemory-policy"],
            &["CONFIG", "SET", "maxmemory-samples", "-1"],
            &["CONFIG", "SET", "maxmemory-samples", "2147483648"],
            &["CONFIG", "SET", "maxmemory-samples", "9223372036854775808"],
            &["CONFIG", "SET", "maxmemory-samples", "abc"],
            &["CONFIG", "SET", "maxmemory-samples", "05"],
            &["CONFIG", "SET", "maxmemory-samples", "10"],
            &[
                "CONFIG",
                "SET",
                "MAXMEMORY-SAMPLES",
                "7",
                "maxmemory-samples",
                "8",
            ],
            &["CONFIG", "GET", "maxmemory-samples"],
            &[
                "CONFIG",
                "SET",
                "maxmemory-samples",
                "3",
                "maxmemory-policy",
                "allkeys-lfu",
            ],
            &["CONFIG", "GET", "maxmemory-samples"],
            &["CONFIG", "GET", "MAXMEMORY-POLICY"],
            // Under LFU: FREQ counts (a new key starts at 5, a read below 5 always counts, and
            // OBJECT itself is not an access); IDLETIME is Redis's error; missing keys are nil
            // before any policy check.
            &["SET", "k", "v"],
            &["OBJECT", "FREQ", "k"],
            &["OBJECT", "FREQ", "k"],
            &["GET", "k"],
            &["OBJECT", "FREQ", "k"],
            &["OBJECT", "IDLETIME", "k"],
            &["OBJECT", "IDLETIME", "missing"],
            &["OBJECT", "FREQ", "missing"],
            &["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"],
            &["OBJECT", "IDLETIME", "k"],
            // Every policy that is not LFU refuses FREQ.
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
            &["OBJECT", "FREQ", "k"],
            &["CONFIG", "SET", "maxmemory-policy", "volatile-random"],
            &["OBJECT", "FREQ", "k"],
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
            &["OBJECT", "FREQ", "k"],
            &["OBJECT", "FREQ", "missing"],
            &["SET", "fresh", "v"],
            &["OBJECT", "IDLETIME", "fresh"],
        ],
    );
    for policy in [
        "volatile-lru",
        "allkeys-random",
        "volatile-ttl",
        "allkeys-lfu",
        "noeviction",
    ] {
        same_replies(
            &mut redis,
            &mut ours,
            &[&["CONFIG", "SET", "maxmemory-policy", policy]],
        );
        let expected = info_field(&redis.call_str(&["INFO", "memory"]), "maxmemory_policy");
        let got = info_field(&ours.call_str(&["INFO", "memory"]), "maxmemory_policy");
        assert_eq!(got, expected);
        assert_eq!(got, format!("maxmemory_policy:{policy}"));
    }
    let stats = ours.call_str(&["INFO", "stats"]);
    assert_eq!(info_field(&stats, "evicted_keys"), "evicted_keys:0");
}

#[test]
fn resp_idle_time_counts_whole_seconds_and_object_does_not_touch_the_key() {
    let reference = RedisServer::start();
    let server = Server::start(&[]);
    let mut redis = RespConn::connect(reference.addr);
    let mut ours = RespConn::connect(server.resp_addr());
    same_replies(&mut redis, &mut ours, &[&["SET", "idle", "v"]]);
    std::thread::sleep(Duration::from_millis(2_200));
    // Whole seconds on both, within one of each other: the two SETs and the two reads are not
    // simultaneous, and Redis's LRU clock moves every 100 ms.
    let idle = |conn: &mut RespConn| -> i64 {
        let reply = conn.call_str(&["OBJECT", "IDLETIME", "idle"]);
        let text = String::from_utf8_lossy(&reply).to_string();
        text.strip_prefix(':')
            .and_then(|t| t.trim_end().parse().ok())
            .unwrap_or_else(|| panic!("OBJECT IDLETIME answered {text:?}"))
    };
    let (theirs, mine) = (idle(&mut redis), idle(&mut ours));
    assert!(
        mine >= 2 && (mine - theirs).abs() <= 1,
        "idle {mine} s, Redis {theirs} s"
    );
    // No OBJECT subcommand counts as an access, in Redis or here.
    same_replies(
        &mut redis,
        &mut ours,
        &[
            &["OBJECT", "ENCODING", "idle"],
            &["OBJECT", "REFCOUNT", "idle"],
        ],
    );
    let (theirs, mine) = (idle(&mut redis), idle(&mut ours));
    assert!(
        mine >= 2 && (mine - theirs).abs() <= 1,
        "idle {mine} s, Redis {theirs} s after OBJECT"
    );
    // A read does.
    same_replies(&mut redis, &mut ours, &[&["GET", "idle"]]);
    let (theirs, mine) = (idle(&mut redis), idle(&mut ours));
    assert!(
        mine <= 1 && theirs <= 1,
        "idle {mine} s, Redis {theirs} s after GET"
    );
}

#[test]
fn resp_writes_past_the_cap_evict_under_allkeys_lru_and_get_redis_oom_text_when_nothing_may_go() {
    let server = Server::start(&[
        "--max-memory",
        &CAP.to_string(),
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    let mut conn = RespConn::connect(server.resp_addr());
    let value = value();
    for i in 0..LOAD {
        let key = format!("key:{i}");
        let reply = conn.call_str(&["SET", &key, &value]);
        assert_eq!(reply, b"+OK\r\n", "write {i}: {}", escape(&reply));
    }
    let stats = conn.call_str(&["INFO", "stats"]);
    let evicted: u64 = info_field(&stats, "evicted_keys")["evicted_keys:".len()..]
        .parse()
        .unwrap();
    assert!(evicted > 0, "{}", String::from_utf8_lossy(&stats));
    let memory = conn.call_str(&["INFO", "memory"]);
    let field =
        |name: &str| -> u64 { info_field(&memory, name)[name.len() + 1..].parse().unwrap() };
    assert!(field("used_memory") <= field("maxmemory"));
    assert_eq!(
        info_field(&memory, "maxmemory_policy"),
        "maxmemory_policy:allkeys-lru"
    );
    let dbsize = conn.call_str(&["DBSIZE"]);
    assert_eq!(dbsize, format!(":{}\r\n", LOAD as u64 - evicted).as_bytes());

    // volatile-ttl with no key holding a TTL: Redis's OOM text, and the same from Redis itself.
    assert_eq!(
        conn.call_str(&["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]),
        b"+OK\r\n"
    );
    assert_eq!(conn.call_str(&["SET", "one-more", &value]), OOM);
    // Reads and deletes still run.
    assert_eq!(conn.call_str(&["EXISTS", "one-more"]), b":0\r\n");
    let reference = RedisServer::start();
    let mut redis = RespConn::connect(reference.addr);
    redis.call_str(&["SET", "a", "1"]);
    redis.call_str(&["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"]);
    redis.call_str(&["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(redis.call_str(&["SET", "one-more", &value]), OOM);

    // Back to allkeys-lru: writes succeed again.
    assert_eq!(
        conn.call_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]),
        b"+OK\r\n"
    );
    assert_eq!(conn.call_str(&["SET", "one-more", &value]), b"+OK\r\n");
}

/// Read-modify-write commands run as store transactions, where nothing may be evicted: they
/// make room before they run, as Redis evicts before each command, so at the cap under
/// allkeys-lru `INCR`, `APPEND`, `SETRANGE` and `MSET` on new keys all succeed, and the
/// estimate comes back under the cap with the next writes.
#[test]
fn resp_read_modify_write_commands_at_the_cap_evict_instead_of_failing() {
    let server = Server::start(&[
        "--max-memory",
        &CAP.to_string(),
        "--maxmemory-policy",
        "allkeys-lru",
    ]);
    let mut conn = RespConn::connect(server.resp_addr());
    let value = value();
    for i in 0..LOAD {
        let reply = conn.call_str(&["SET", &format!("key:{i}"), &value]);
        assert_eq!(reply, b"+OK\r\n", "fill {i}");
    }
    for i in 0..LOAD {
        let n = format!("n:{i}");
        assert_eq!(conn.call_str(&["INCR", &n]), b":1\r\n", "INCR {n}");
        let a = format!("a:{i}");
        let appended = conn.call_str(&["APPEND", &a, &value]);
        assert_eq!(
            appended,
            format!(":{}\r\n", value.len()).as_bytes(),
            "APPEND {a}"
        );
        let r = format!("r:{i}");
        let ranged = conn.call_str(&["SETRANGE", &r, "2", "xy"]);
        assert_eq!(ranged, b":4\r\n", "SETRANGE {r}");
        let (m1, m2) = (format!("m1:{i}"), format!("m2:{i}"));
        assert_eq!(conn.call_str(&["MSET", &m1, "1", &m2, "2"]), b"+OK\r\n");
    }
    for i in 0..10 {
        conn.call_str(&["SET", &format!("last:{i}"), &value]);
    }
    let memory = conn.call_str(&["INFO", "memory"]);
    let field =
        |name: &str| -> u64 { info_field(&memory, name)[name.len() + 1..].parse().unwrap() };
    assert!(
        field("used_memory") <= field("maxmemory"),
        "{}",
        String::from_utf8_lossy(&memory)
    );
}
