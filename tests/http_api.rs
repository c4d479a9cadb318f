//! Every route and every error case, against the real binary over real HTTP.

mod common;

use std::time::Duration;

use common::{client, Server};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::Value;

fn get(c: &Client, s: &Server, path: &str) -> (StatusCode, Vec<u8>) {
    let r = c.get(s.url(path)).send().unwrap();
    (r.status(), r.bytes().unwrap().to_vec())
}

fn error_of(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("error bodies are JSON");
    v["error"].as_str().expect("an error field").to_string()
}

fn original_tool_routes(store: &str) {
    let s = Server::start(&["--store", store]);
    let c = client();
    assert_eq!(
        get(&c, &s, "/set?key=a&value=1"),
        (StatusCode::OK, b"OK".to_vec())
    );
    assert_eq!(get(&c, &s, "/get?key=a"), (StatusCode::OK, b"1".to_vec()));
    let (status, body) = get(&c, &s, "/get?key=missing");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body), "Key not found or expired");
    // Overwrite.
    get(&c, &s, "/set?key=a&value=2");
    assert_eq!(get(&c, &s, "/get?key=a").1, b"2");
    // POST form body, for values too long for a URL.
    let big = "x".repeat(200_000);
    let r = c
        .post(s.url("/set"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key=big&value={big}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get(&c, &s, "/get?key=big").1.len(), 200_000);
}

#[test]
fn original_tool_routes_lockfree() {
    original_tool_routes("lockfree");
}

#[test]
fn original_tool_routes_rwlock() {
    original_tool_routes("rwlock");
}

#[test]
fn percent_decoding_is_exact_bytes() {
    let s = Server::start(&[]);
    let c = client();
    get(&c, &s, "/set?key=a%20b&value=x%26y");
    assert_eq!(get(&c, &s, "/get?key=a+b").1, b"x&y");
    assert_eq!(get(&c, &s, "/get?key=a%20b").1, b"x&y");
    get(&c, &s, "/set?key=plus&value=1%2B1+%3D+2");
    assert_eq!(get(&c, &s, "/get?key=plus").1, b"1+1 = 2");
    // Bytes that are not UTF-8 are stored and returned unchanged.
    get(&c, &s, "/set?key=bin&value=%FF%00%FE");
    assert_eq!(get(&c, &s, "/get?key=bin").1, vec![0xff, 0x00, 0xfe]);
    // The same key through REST: %2F and / are both a slash.
    assert_eq!(get(&c, &s, "/v1/kv/a%20b").1, b"x&y");
    get(&c, &s, "/set?key=a%2Fb&value=slash");
    assert_eq!(get(&c, &s, "/v1/kv/a/b").1, b"slash");
    assert_eq!(get(&c, &s, "/v1/kv/a%2Fb").1, b"slash");
}

#[test]
fn stored_html_is_never_served_as_html() {
    let s = Server::start(&[]);
    let c = client();
    get(
        &c,
        &s,
        "/set?key=x&value=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    );
    let r = c.get(s.url("/get?key=x")).send().unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.text().unwrap(), "<script>alert(1)</script>");
}

#[test]
fn ttl_expires_through_http() {
    let s = Server::start(&[]);
    let c = client();
    get(&c, &s, "/set?key=t&value=v&ttl=300ms");
    get(&c, &s, "/set?key=forever&value=v");
    assert_eq!(get(&c, &s, "/get?key=t").0, StatusCode::OK);
    let r = c.get(s.url("/v1/kv/t")).send().unwrap();
    let left: u64 = r.headers()["x-ttl-ms"].to_str().unwrap().parse().unwrap();
    assert!(left > 0 && left <= 300, "x-ttl-ms {left}");
    assert!(c
        .get(s.url("/v1/kv/forever"))
        .send()
        .unwrap()
        .headers()
        .get("x-ttl-ms")
        .is_none());
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(get(&c, &s, "/get?key=t").0, StatusCode::NOT_FOUND);
    // The wheel removes it: the dashboard stops counting it.
    std::thread::sleep(Duration::from_millis(100));
    let dash: Value = serde_json::from_slice(&get(&c, &s, "/dashboard").1).unwrap();
    assert_eq!(dash["keys"], 1);
    assert_eq!(dash["keysWithTtl"], 0);
    assert_eq!(dash["expiry"]["expiredByWheel"], 1);
}

#[test]
fn bad_requests_get_clear_errors_and_change_nothing() {
    let s = Server::start(&["--max-key-bytes", "16", "--max-value-bytes", "64"]);
    let c = client();
    get(&c, &s, "/set?key=keep&value=original");
    let cases: &[(&str, StatusCode, &str)] = &[
        ("/set?value=v", StatusCode::BAD_REQUEST, "missing parameter \"key\""),
        ("/set?key=keep", StatusCode::BAD_REQUEST, "missing parameter \"value\""),
        ("/set?key=&value=v", StatusCode::BAD_REQUEST, "key must not be empty"),
        ("/set?key=keep&value=v&ttl=5x", StatusCode::BAD_REQUEST, "unknown unit \"x\""),
        ("/set?key=keep&value=v&ttl=0s", StatusCode::BAD_REQUEST, "ttl must be positive"),
        ("/set?key=keep&value=v&ttl=-1s", StatusCode::BAD_REQUEST, "ttl must be positive"),
        ("/set?key=keep&value=v&ttl=87601h", StatusCode::BAD_REQUEST, "exceeds the maximum"),
        ("/set?key=keep&value=v&ttl=", StatusCode::BAD_REQUEST, "invalid duration"),
        ("/set?key=keep&value=%zz", StatusCode::BAD_REQUEST, "invalid percent-encoding"),
        ("/set?key=keep&key=other&value=v", StatusCode::BAD_REQUEST, "more than once"),
        ("/set?key=keep&value=v&ack=maybe", StatusCode::BAD_REQUEST, "invalid ack"),
        ("/set?key=0123456789abcdefX&value=v", StatusCode::BAD_REQUEST, "maximum is 16 bytes"),
        (
            "/set?key=keep&value=0123456789012345678901234567890123456789012345678901234567890123456789",
            StatusCode::PAYLOAD_TOO_LARGE,
            "maximum is 64 bytes",
        ),
        ("/get", StatusCode::BAD_REQUEST, "missing parameter \"key\""),
        ("/nope", StatusCode::NOT_FOUND, "no route"),
        ("/v1/kv/%g0", StatusCode::BAD_REQUEST, "invalid percent-encoding"),
    ];
    for (path, status, needle) in cases {
        let (got, body) = get(&c, &s, path);
        assert_eq!(got, *status, "{path}");
        let message = error_of(&body);
        assert!(
            message.contains(needle),
            "{path}: {message:?} lacks {needle:?}"
        );
    }
    // Wrong methods: 405 with Allow.
    let r = c.delete(s.url("/set")).send().unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, POST");
    let r = c.post(s.url("/get?key=keep")).send().unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = c.patch(s.url("/v1/kv/keep")).send().unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "GET, HEAD, PUT, DELETE");
    // A body over the limit is refused with 413.
    let r = c
        .put(s.url("/v1/kv/keep"))
        .body(vec![b'x'; 65])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing changed.
    assert_eq!(
        get(&c, &s, "/get?key=keep"),
        (StatusCode::OK, b"original".to_vec())
    );
    let dash: Value = serde_json::from_slice(&get(&c, &s, "/dashboard").1).unwrap();
    assert_eq!(dash["keys"], 1);
    assert!(
        s.log().lines().all(|l| !l.contains("original")),
        "logs must not hold values"
    );
}

#[test]
fn rest_round_trips_binary_values_with_etags_and_conditions() {
    let s = Server::start(&[]);
    let c = client();
    let value: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let r = c
        .put(s.url("/v1/kv/bin%00key"))
        .body(value.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = c.get(s.url("/v1/kv/bin%00key")).send().unwrap();
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(r.bytes().unwrap().to_vec(), value);
    // HEAD: headers, no body.
    let r = c.head(s.url("/v1/kv/bin%00key")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "10000");
    // Compare-and-set.
    let r = c
        .put(s.url("/v1/kv/bin%00key"))
        .header("if-match", "\"999\"")
        .body("lost")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = c
        .put(s.url("/v1/kv/bin%00key"))
        .header("if-match", &etag)
        .body("won")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .put(s.url("/v1/kv/bin%00key"))
        .header("if-none-match", "*")
        .body("again")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    let r = c
        .put(s.url("/v1/kv/fresh"))
        .header("if-none-match", "*")
        .body("first")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .put(s.url("/v1/kv/x"))
        .header("if-match", "nope")
        .body("v")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get(&c, &s, "/v1/kv/bin%00key").1, b"won");
    // Delete: 204, then 404.
    assert_eq!(
        c.delete(s.url("/v1/kv/fresh")).send().unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        c.delete(s.url("/v1/kv/fresh")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&c, &s, "/v1/kv/fresh").0, StatusCode::NOT_FOUND);
}

#[test]
fn batch_operations_are_all_or_nothing() {
    let s = Server::start(&["--max-batch", "3"]);
    let c = client();
    let r = c
        .post(s.url("/v1/mset"))
        .body(r#"{"items":[{"key":"a","value":"1"},{"key":"b","value":"2","ttl":"1h"}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r: Value = c
        .post(s.url("/v1/mget"))
        .body(r#"{"keys":["a","b","c"]}"#)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        r["values"],
        serde_json::json!({"a": "1", "b": "2", "c": null})
    );
    // One bad item: nothing written.
    let r = c
        .post(s.url("/v1/mset"))
        .body(r#"{"items":[{"key":"a","value":"changed"},{"key":"z","value":"v","ttl":"soon"}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(get(&c, &s, "/get?key=a").1, b"1");
    assert_eq!(get(&c, &s, "/get?key=z").0, StatusCode::NOT_FOUND);
    // Too many items, malformed JSON.
    let r = c
        .post(s.url("/v1/mget"))
        .body(r#"{"keys":["a","b","c","d"]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = c.post(s.url("/v1/mget")).body("{").send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(error_of(&r.bytes().unwrap()).contains("invalid JSON"));
    // base64 both ways, for binary values.
    let r = c
        .post(s.url("/v1/mset?encoding=base64"))
        .body(r#"{"items":[{"key":"bin","value":"/wD+"}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get(&c, &s, "/get?key=bin").1, vec![0xff, 0x00, 0xfe]);
    let r: Value = c
        .post(s.url("/v1/mget?encoding=base64"))
        .body(r#"{"keys":["bin"]}"#)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["values"]["bin"], "/wD+");
    // A binary value asked for as text: refused, not mangled.
    let r = c
        .post(s.url("/v1/mget"))
        .body(r#"{"keys":["bin"]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = c
        .post(s.url("/v1/mset?encoding=base64"))
        .body(r#"{"items":[{"key":"x","value":"not base64!"}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn dashboard_metrics_health_and_page() {
    let s = Server::start(&["--shards", "4"]);
    let c = client();
    get(&c, &s, "/set?key=a&value=1");
    get(&c, &s, "/set?key=b&value=2&ttl=1h");
    get(&c, &s, "/get?key=a");
    get(&c, &s, "/get?key=zz");
    let dash: Value = serde_json::from_slice(&get(&c, &s, "/dashboard").1).unwrap();
    assert_eq!(dash["numShards"], 4);
    assert_eq!(dash["numReplicas"], 0);
    assert_eq!(dash["keys"], 2);
    assert_eq!(dash["keysWithTtl"], 1);
    let per_shard: u64 = dash["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["numKeys"].as_u64().unwrap())
        .sum();
    assert_eq!(per_shard, 2);
    assert_eq!(dash["ops"]["set"], 2);
    assert_eq!(dash["ops"]["getHit"], 1);
    assert_eq!(dash["ops"]["getMiss"], 1);
    assert!(dash["memory"]["rssBytes"].as_u64().unwrap() > 0);
    let (status, metrics) = get(&c, &s, "/metrics");
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("shardkv_ops_total{op=\"set\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("shardkv_keys_with_ttl 1"));
    assert!(metrics.contains("shardkv_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert_eq!(get(&c, &s, "/health").0, StatusCode::OK);
    let r = c.get(s.url("/")).send().unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().unwrap().contains("id=\"total-keys\""));
}

#[test]
fn concurrent_clients_see_their_own_writes() {
    let s = Server::start(&[]);
    let url = s.url("");
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = client();
                for i in 0..200 {
                    let key = format!("c{t}-{i}");
                    let r = c
                        .get(format!("{url}/set?key={key}&value={i}"))
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK);
                    let r = c.get(format!("{url}/get?key={key}")).send().unwrap();
                    assert_eq!(r.text().unwrap(), i.to_string());
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let dash: Value = serde_json::from_slice(&get(&client(), &s, "/dashboard").1).unwrap();
    assert_eq!(dash["keys"], 1600);
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let mut s = Server::start(&[]);
    let c = client();
    get(&c, &s, "/set?key=a&value=1");
    assert!(
        s.terminate(Duration::from_secs(15)),
        "server did not exit cleanly on SIGTERM"
    );
    assert!(!s.is_running());
    assert!(s.log().contains("shut down"));
}

#[test]
fn bad_cli_arguments_are_refused_with_a_message() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardkv"))
        .args(["--shards", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shards"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardkv"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--shards",
        "--store",
        "--max-key-bytes",
        "--max-value-bytes",
        "--workers",
        "--log",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(help.contains("[default: 127.0.0.1:8080]"));
}

#[test]
fn replicas_ack_all_failover_and_recovery_over_http() {
    let s = Server::start(&["--replicas", "2", "--shards", "4"]);
    let c = client();
    for i in 0..100 {
        let (status, _) = get(&c, &s, &format!("/set?key=k{i}&value=v{i}&ack=all"));
        assert_eq!(status, StatusCode::OK);
    }
    let r = c
        .put(s.url("/v1/kv/rest?ack=all"))
        .body("r")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let dash: Value = serde_json::from_slice(&get(&c, &s, "/dashboard").1).unwrap();
    assert_eq!(dash["numReplicas"], 2);
    let replicas = dash["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 3, "the primary copy and two replicas");
    assert!(replicas.iter().all(|r| r["state"] == "live"));
    // Fail every shard's primary: every acknowledged write is still readable.
    for shard in 0..4 {
        let r: Value = c
            .post(s.url(&format!("/admin/shards/{shard}/fail")))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(r["failed"], 0);
        assert_ne!(r["primary"], 0);
    }
    for i in 0..100 {
        assert_eq!(
            get(&c, &s, &format!("/get?key=k{i}")).1,
            format!("v{i}").into_bytes()
        );
    }
    // Writes keep working on the promoted copies; recovery brings the old primaries back.
    assert_eq!(
        get(&c, &s, "/set?key=after&value=1&ack=all").0,
        StatusCode::OK
    );
    for shard in 0..4 {
        let r = c
            .post(s.url(&format!("/admin/shards/{shard}/recover")))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let dash: Value = serde_json::from_slice(&get(&c, &s, "/dashboard").1).unwrap();
    assert!(dash["shards"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["failed"] == false));
    // Refusals: unknown shard, nothing to recover, wrong method, bad id.
    let r = c.post(s.url("/admin/shards/99999/fail")).send().unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = c.post(s.url("/admin/shards/0/recover")).send().unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = c.get(s.url("/admin/shards/0/fail")).send().unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let r = c.post(s.url("/admin/shards/x/fail")).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (_, metrics) = get(&c, &s, "/metrics");
    assert!(String::from_utf8(metrics)
        .unwrap()
        .contains("shardkv_replica_lag_ops{copy=\"1\"}"));
}

#[test]
fn admin_routes_need_the_token_when_one_is_set() {
    let s = Server::start(&["--replicas", "1", "--admin-token", "s3cret"]);
    let c = client();
    let r = c.post(s.url("/admin/shards/0/fail")).send().unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(s.url("/admin/shards/0/fail"))
        .header("authorization", "Bearer wrong")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(s.url("/admin/shards/0/fail"))
        .header("authorization", "Bearer s3cret")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn failover_without_replicas_is_a_clear_conflict() {
    let s = Server::start(&[]);
    let c = client();
    get(&c, &s, "/set?key=a&value=1");
    let r = c.post(s.url("/admin/shards/0/fail")).send().unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(error_of(&r.bytes().unwrap()).contains("--replicas"));
    assert_eq!(get(&c, &s, "/get?key=a").1, b"1");
}

#[test]
fn memory_guard_refuses_writes_with_507_and_keeps_reads_and_deletes() {
    // Room for a few dozen small entries (each counts key + value + 80 bytes of overhead).
    let s = Server::start(&["--max-memory", "8000"]);
    let c = client();
    let mut stored = 0;
    let refused = loop {
        let (status, body) = get(&c, &s, &format!("/set?key=k{stored}&value=0123456789"));
        if status != StatusCode::OK {
            break (status, body);
        }
        stored += 1;
        assert!(stored < 1_000, "the limit never applied");
    };
    assert_eq!(refused.0, StatusCode::INSUFFICIENT_STORAGE);
    assert!(error_of(&refused.1).contains("--max-memory 8000"));
    assert!(stored > 10);
    // Nothing stored was lost; reads and deletes work; a delete makes room again.
    for i in 0..stored {
        assert_eq!(get(&c, &s, &format!("/get?key=k{i}")).1, b"0123456789");
    }
    let r = c
        .post(s.url("/v1/mset"))
        .body(r#"{"items":[{"key":"a","value":"1"},{"key":"b","value":"2"}]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(
        get(&c, &s, "/get?key=a").0,
        StatusCode::NOT_FOUND,
        "mset wrote part of a batch"
    );
    assert_eq!(
        c.delete(s.url("/v1/kv/k0")).send().unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get(&c, &s, "/set?key=again&value=0123456789").0,
        StatusCode::OK
    );
}

#[test]
fn a_body_slower_than_the_timeout_gets_408() {
    use std::io::{Read, Write};
    let s = Server::start(&["--body-timeout-secs", "1"]);
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    stream
        .write_all(b"PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&answer);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert_eq!(get(&client(), &s, "/get?key=slow").0, StatusCode::NOT_FOUND);
}

#[test]
fn a_client_that_stops_reading_loses_its_connection_after_the_write_timeout() {
    use std::io::Write;
    let s = Server::start(&["--write-timeout-secs", "1", "--max-connections", "2"]);
    let c = client();
    let big = vec![b'x'; 1 << 20];
    let keys: Vec<String> = (0..24).map(|i| format!("\"big{i}\"")).collect();
    for i in 0..24 {
        let r = c
            .put(s.url(&format!("/v1/kv/big{i}")))
            .body(big.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    // Two clients take both connection slots with 24 MiB answers they never read.
    let body = format!("{{\"keys\":[{}]}}", keys.join(","));
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
            let head = format!(
                "POST /v1/mget HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Without a write timeout this would wait forever for a slot.
    let started = std::time::Instant::now();
    assert_eq!(get(&c, &s, "/health").0, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(stuck);
}

#[test]
fn batch_answers_are_bounded_and_if_match_star_means_present() {
    let s = Server::start(&["--max-batch-answer-bytes", "1024"]);
    let c = client();
    for k in ["a", "b", "c"] {
        c.put(s.url(&format!("/v1/kv/{k}")))
            .body(vec![b'v'; 400])
            .send()
            .unwrap();
    }
    let r = c
        .post(s.url("/v1/mget"))
        .body(r#"{"keys":["a","b"]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(s.url("/v1/mget"))
        .body(r#"{"keys":["a","b","c"]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(&r.bytes().unwrap()).contains("ask for fewer keys"));
    // If-Match: * writes only over a live key.
    let r = c
        .put(s.url("/v1/kv/a"))
        .header("if-match", "*")
        .body("new")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = c
        .put(s.url("/v1/kv/zz"))
        .header("if-match", "*")
        .body("new")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(get(&c, &s, "/v1/kv/a").1, b"new");
    assert_eq!(get(&c, &s, "/v1/kv/zz").0, StatusCode::NOT_FOUND);
}
