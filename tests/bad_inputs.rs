//! The bad-input catalogue: malformed, oversized, slow, abrupt and abusive requests
//! against the real binary, mostly as raw bytes over `TcpStream` (things reqwest will not send).
//!
//! Each case states exactly what the server must answer: our own 4xx with a JSON `{"error"}`
//! naming the problem, hyper's protocol rejection (400/414/431 with an empty body), or a clean
//! close without any response. After EVERY case the process must still run, must not have
//! logged a panic (tokio catches a panicking connection task, so only the log shows it), a
//! canary key must read back byte for byte, `/health` must answer 200 promptly (no stuck
//! worker), and a case that must change nothing must leave every shard's sequence number and
//! the key count as they were.
//!
//! Each `#[test]` has its own server with short timeouts; the file runs in about 15 s.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

/// Stored before any case and checked after every one. Not UTF-8 on purpose.
const CANARY_KEY: &str = "canary";
const CANARY_VALUE: &[u8] = b"canary \x00\xff\xfe value";

/// How long a case may take to be answered and closed before it counts as stuck.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Raw HTTP: sending bytes and parsing what comes back.
// ---------------------------------------------------------------------------------------------

/// One parsed response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server did with one raw exchange.
#[derive(Debug)]
struct Outcome {
    responses: Vec<Response>,
    /// The server closed the connection (EOF or reset) before `CASE_TIMEOUT`.
    closed: bool,
    /// Bytes after the last complete response (must be none).
    trailing: Vec<u8>,
    /// From the first byte written to the close (or the timeout).
    elapsed: Duration,
}

/// Sends `request` on a fresh connection, then reads until the server closes it or `timeout`
/// passes. Write errors are tolerated (the server may close early on purpose); what was read
/// decides the case.
fn exchange(addr: SocketAddr, request: &[u8], timeout: Duration) -> Outcome {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    let start = Instant::now();
    let _ = stream.write_all(request);
    let (raw, closed) = read_until_close(&mut stream, start + timeout);
    let (responses, trailing) = parse_responses(&raw);
    Outcome {
        responses,
        closed,
        trailing,
        elapsed: start.elapsed(),
    }
}

/// Reads until EOF, a reset, or `deadline`; returns the bytes and whether the peer closed.
fn read_until_close(stream: &mut TcpStream, deadline: Instant) -> (Vec<u8>, bool) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (raw, false);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (raw, true),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (raw, false)
            }
            // Reset or aborted: the server closed, with unread bytes of ours in its buffer.
            Err(_) => return (raw, true),
        }
    }
}

/// Splits `raw` into complete responses (Content-Length or chunked bodies; 204/304 have none);
/// returns them and the bytes left over.
fn parse_responses(mut raw: &[u8]) -> (Vec<Response>, Vec<u8>) {
    let mut out = Vec::new();
    while let Some(head_end) = find(raw, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let Some(status) = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok())
        else {
            break;
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let rest = &raw[head_end + 4..];
        let consumed = if status == 204 || status == 304 {
            0
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().expect("content-length is a number");
            if rest.len() < len {
                break;
            }
            response.body = rest[..len].to_vec();
            len
        } else if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            match dechunk(rest) {
                Some((body, used)) => {
                    response.body = body;
                    used
                }
                None => break,
            }
        } else {
            // Close-delimited.
            response.body = rest.to_vec();
            rest.len()
        };
        raw = &rest[consumed..];
        out.push(response);
    }
    (out, raw.to_vec())
}

fn dechunk(mut raw: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = raw.len();
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            let end = find(raw, b"\r\n")?;
            raw = &raw[end + 2..];
            return Some((body, total - raw.len()));
        }
        if raw.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `METHOD target HTTP/1.1` with `headers`, a Content-Length when `body` is not empty (or the
/// method carries one) unless `headers` frame the body themselves, `Connection: close`, and
/// `body`.
fn req(method: &str, target: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n").into_bytes();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let framed = headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("content-length:"));
    if !framed && (!body.is_empty() || matches!(method, "PUT" | "POST")) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

fn get(target: &str) -> Vec<u8> {
    req("GET", target, &[], b"")
}

fn post(target: &str, body: &[u8]) -> Vec<u8> {
    req("POST", target, &[], body)
}

fn put(target: &str, body: &[u8]) -> Vec<u8> {
    req("PUT", target, &[], body)
}

/// A chunked request head (no Content-Length) followed by `chunks`, each framed, and the
/// terminator if `finish`.
fn chunked(method: &str, target: &str, chunks: &[&[u8]], finish: bool) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes();
    for c in chunks {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    if finish {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------------------------
// Expectations and the after-every-case checks.
// ---------------------------------------------------------------------------------------------

/// What one response must be.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Our code's rejection: this status, `application/json`, `{"error"}` containing the text.
    Error(u16, &'static str),
    /// 405 from our code, with this `Allow` header.
    NotAllowed(&'static str),
    /// hyper's own protocol rejection, before our code runs: this status and an empty body.
    Protocol(u16),
    /// Accepted: this status, and this body when given.
    Ok(u16, Option<&'static [u8]>),
}

/// How the whole exchange must end.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// These responses, in order, then the server closes the connection.
    Responses(&'static [Expect]),
    /// No response at all: the server just closes the connection.
    Close,
    /// hyper may manage to send its 400 before it closes, or the reset may swallow it: either a
    /// 400 with an empty body or a close without a response.
    ProtocolOrClose(u16),
}

/// What a case may do to the store.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// Nothing: every shard's sequence number and the key count are unchanged.
    Nothing,
    /// It stores `value` under `key` (checked through `/v1/kv/{key}`).
    Stored(&'static str, &'static [u8]),
}

struct Case {
    name: &'static str,
    request: Vec<u8>,
    ending: Ending,
    effect: Effect,
}

fn case(name: &'static str, request: Vec<u8>, expect: &'static [Expect]) -> Case {
    Case {
        name,
        request,
        ending: Ending::Responses(expect),
        effect: Effect::Nothing,
    }
}

fn check_response(name: &str, i: usize, got: &Response, want: Expect) {
    let body = String::from_utf8_lossy(&got.body);
    let status = match want {
        Expect::Error(status, _) | Expect::Ok(status, _) | Expect::Protocol(status) => status,
        Expect::NotAllowed(_) => 405,
    };
    assert_eq!(
        got.status, status,
        "{name}: response {i}: status (want {want:?}), body {body:?}"
    );
    match want {
        Expect::Error(_, needle) => check_json_error(name, got, needle),
        Expect::NotAllowed(allow) => {
            assert_eq!(got.header("allow"), Some(allow), "{name}: Allow header");
            check_json_error(name, got, "is not allowed here");
        }
        Expect::Protocol(_) => {
            assert!(got.body.is_empty(), "{name}: hyper's body: {body:?}");
        }
        Expect::Ok(_, Some(expected)) => {
            assert_eq!(got.body, expected, "{name}: response {i} body");
        }
        Expect::Ok(_, None) => {}
    }
}

fn check_json_error(name: &str, got: &Response, needle: &str) {
    assert_eq!(
        got.header("content-type"),
        Some("application/json"),
        "{name}: content-type"
    );
    let v: Value = serde_json::from_slice(&got.body)
        .unwrap_or_else(|e| panic!("{name}: error body is not JSON ({e}): {:?}", got.body));
    let message = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no \"error\" string in {v}"));
    assert!(
        message.contains(needle),
        "{name}: error {message:?} lacks {needle:?}"
    );
}

fn check_outcome(name: &str, outcome: &Outcome, ending: Ending) {
    assert!(
        outcome.closed,
        "{name}: connection still open after {CASE_TIMEOUT:?} (stuck?), got {:?}",
        outcome.responses
    );
    assert!(
        outcome.trailing.is_empty(),
        "{name}: unparsable bytes after the responses: {:?}",
        String::from_utf8_lossy(&outcome.trailing)
    );
    match ending {
        Ending::Responses(want) => {
            let got: Vec<u16> = outcome.responses.iter().map(|r| r.status).collect();
            assert_eq!(
                got.len(),
                want.len(),
                "{name}: got statuses {got:?}, want {want:?}"
            );
            for (i, (r, w)) in outcome.responses.iter().zip(want).enumerate() {
                check_response(name, i, r, *w);
            }
        }
        Ending::Close => assert!(
            outcome.responses.is_empty(),
            "{name}: want a close without a response, got {:?}",
            outcome.responses
        ),
        Ending::ProtocolOrClose(status) => {
            assert!(
                outcome.responses.len() <= 1,
                "{name}: {:?}",
                outcome.responses
            );
            if let Some(r) = outcome.responses.first() {
                check_response(name, 0, r, Expect::Protocol(status));
            }
        }
    }
}

/// A client for the checks: no pooled connections (the servers here close idle ones after a
/// second, and a check must never race a close), and a timeout short enough to call a slow
/// answer stuck.
fn check_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(CASE_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// The store's fingerprint: every shard's sequence number, and the key count.
fn fingerprint(c: &reqwest::blocking::Client, s: &Server) -> (Vec<u64>, u64) {
    let dash: Value = c
        .get(s.url("/dashboard"))
        .send()
        .and_then(|r| r.json())
        .expect("dashboard");
    let seqs = dash["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| s["seq"].as_u64().expect("seq"))
        .collect();
    (seqs, dash["keys"].as_u64().expect("keys"))
}

fn open_connections(c: &reqwest::blocking::Client, s: &Server) -> u64 {
    let dash: Value = c
        .get(s.url("/dashboard"))
        .send()
        .and_then(|r| r.json())
        .expect("dashboard");
    dash["connections"]["open"].as_u64().expect("open")
}

fn store_canary(s: &Server) {
    let r = check_client()
        .put(s.url(&format!("/v1/kv/{CANARY_KEY}")))
        .body(CANARY_VALUE)
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// The checks after every case: alive, no panic logged, canary intact, `/health` prompt.
fn check_intact(s: &mut Server, c: &reqwest::blocking::Client, name: &str) {
    assert!(s.is_running(), "{name}: the server process exited");
    let log = s.log();
    assert!(
        !log.contains("panicked"),
        "{name}: the server logged a panic:\n{log}"
    );
    let start = Instant::now();
    let r = c
        .get(s.url(&format!("/get?key={CANARY_KEY}")))
        .send()
        .unwrap_or_else(|e| panic!("{name}: canary read failed: {e}"));
    assert_eq!(r.status(), 200, "{name}: canary status");
    assert_eq!(r.bytes().unwrap(), CANARY_VALUE, "{name}: canary changed");
    let r = c
        .get(s.url("/health"))
        .send()
        .unwrap_or_else(|e| panic!("{name}: /health failed: {e}"));
    assert_eq!(r.status(), 200, "{name}: /health");
    assert_eq!(r.text().unwrap(), r#"{"status":"ok"}"#, "{name}: /health");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{name}: the checks took {:?} (a stuck worker?)",
        start.elapsed()
    );
}

fn run_case(s: &mut Server, c: &reqwest::blocking::Client, case: &Case) {
    let before = fingerprint(c, s);
    let outcome = exchange(s.addr, &case.request, CASE_TIMEOUT);
    check_outcome(case.name, &outcome, case.ending);
    check_intact(s, c, case.name);
    match case.effect {
        Effect::Nothing => assert_eq!(
            fingerprint(c, s),
            before,
            "{}: a rejected request changed the store",
            case.name
        ),
        Effect::Stored(key, value) => {
            let r = c.get(s.url(&format!("/v1/kv/{key}"))).send().unwrap();
            assert_eq!(r.status(), 200, "{}: {key} not stored", case.name);
            assert_eq!(r.bytes().unwrap(), value, "{}: {key}", case.name);
        }
    }
}

/// Waits until the server reports at most `at_most` open connections (the dashboard request
/// itself is one), so no task is left behind by an abrupt client.
fn wait_connections_drain(
    c: &reqwest::blocking::Client,
    s: &Server,
    at_most: u64,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let open = open_connections(c, s);
        if open <= at_most {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} connections still open after {within:?} (want <= {at_most})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// The catalogue.
// ---------------------------------------------------------------------------------------------

/// Limits of the catalogue's server.
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 1024;
/// The server's body limit: 3 × the value limit + 64 KiB (see src/server.rs).
const MAX_BODY: usize = 3 * MAX_VALUE + 64 * 1024;
const MAX_HEAD: usize = 8192;

/// A request of exactly `total` head bytes (`GET /health`, one padding header).
fn head_of_size(total: usize) -> Vec<u8> {
    let fixed = "GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Pad: \r\n\r\n".len();
    let pad = "p".repeat(total - fixed);
    format!("GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Pad: {pad}\r\n\r\n")
        .into_bytes()
}

// One case a line: a table reads better than rustfmt's one-argument-a-line layout.
#[rustfmt::skip]
fn catalogue() -> Vec<Case> {
    use Expect::*;
    let long_key = "k".repeat(MAX_KEY + 1);
    let big_value = vec![b'v'; MAX_VALUE + 1];
    let big_json_value = format!(
        r#"{{"items":[{{"key":"a","value":"{}"}}]}}"#,
        "v".repeat(MAX_VALUE + 1)
    );
    // 1025 bytes of base64 payload: 1025 = 3 × 341 + 2.
    let big_b64 = format!(
        r#"{{"items":[{{"key":"a","value":"{}QUI="}}]}}"#,
        "QUJD".repeat(341)
    );
    let six_items = format!(
        r#"{{"items":[{}]}}"#,
        (0..6)
            .map(|i| format!(r#"{{"key":"k{i}","value":"v"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let chunk = vec![b'x'; 16 * 1024];
    let over_limit_chunks: Vec<&[u8]> = vec![&chunk; MAX_BODY / chunk.len() + 1];
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let hundred_headers: String = (0..98).map(|i| format!("X-H{i}: v\r\n")).collect();
    let pipelined_health: Vec<u8> = (0..50)
        .flat_map(|_| b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n".to_vec())
        .chain(get("/health"))
        .collect();
    let garbage: Vec<u8> = (0..=255u8).cycle().take(4096).collect();

    vec![
        // --- Missing parameters (http_api covers /set and /get without key/value). ---
        case("form POST /set without value", post("/set", b"key=k"), &[Error(400, "missing parameter \"value\"")]),
        case("form POST /set, empty body", post("/set", b""), &[Error(400, "missing parameter \"key\"")]),
        case("/set with only unknown params", get("/set?kee=k&valu=v"), &[Error(400, "missing parameter \"key\"")]),
        case("mset item without value", post("/v1/mset", br#"{"items":[{"key":"a"}]}"#), &[Error(400, "missing field `value`")]),
        case("mget without keys", post("/v1/mget", b"{}"), &[Error(400, "missing field `keys`")]),
        // --- Empty key. ---
        case("GET /get?key=", get("/get?key="), &[Error(400, "key must not be empty")]),
        case("GET /v1/kv/ (empty key)", get("/v1/kv/"), &[Error(400, "key must not be empty")]),
        case("PUT /v1/kv/ (empty key)", put("/v1/kv/", b"v"), &[Error(400, "key must not be empty")]),
        case("DELETE /v1/kv/ (empty key)", req("DELETE", "/v1/kv/", &[], b""), &[Error(400, "key must not be empty")]),
        case("mset with an empty key", post("/v1/mset", br#"{"items":[{"key":"","value":"v"}]}"#), &[Error(400, "key must not be empty")]),
        case("mget with an empty key", post("/v1/mget", br#"{"keys":["a",""]}"#), &[Error(400, "key must not be empty")]),
        // --- Key and value over the limits. ---
        case("GET /get key over the limit", get(&format!("/get?key={long_key}")), &[Error(400, "the maximum is 64 bytes")]),
        case("PUT /v1/kv key over the limit", put(&format!("/v1/kv/{long_key}"), b"v"), &[Error(400, "the maximum is 64 bytes")]),
        case("DELETE /v1/kv key over the limit", req("DELETE", &format!("/v1/kv/{long_key}"), &[], b""), &[Error(400, "the maximum is 64 bytes")]),
        case("percent-encoded key: 65 decoded bytes", get(&format!("/v1/kv/{}", "%41".repeat(MAX_KEY + 1))), &[Error(400, "key is 65 bytes")]),
        case("percent-encoded key: 64 decoded bytes is fine", get(&format!("/v1/kv/{}", "%41".repeat(MAX_KEY))), &[Error(404, "Key not found")]),
        case("mget key over the limit", post("/v1/mget", format!(r#"{{"keys":["{long_key}"]}}"#).as_bytes()), &[Error(400, "the maximum is 64 bytes")]),
        case("PUT value over the limit", put("/v1/kv/k", &big_value), &[Error(413, "the maximum is 1024 bytes")]),
        case("form POST /set value over the limit", post("/set", &cat(&[b"key=k&value=", &big_value])), &[Error(413, "the maximum is 1024 bytes")]),
        case("form value over the limit once decoded", post("/set", format!("key=k&value={}", "%41".repeat(MAX_VALUE + 1)).as_bytes()), &[Error(413, "value is 1025 bytes")]),
        case("mset value over the limit", post("/v1/mset", big_json_value.as_bytes()), &[Error(413, "the maximum is 1024 bytes")]),
        case("mset base64 value over the limit once decoded", post("/v1/mset?encoding=base64", big_b64.as_bytes()), &[Error(413, "value is 1025 bytes")]),
        // --- Invalid percent-encoding, in the query, the path and a form body. ---
        case("query: lone %", get("/get?key=%"), &[Error(400, "invalid percent-encoding at byte 4")]),
        case("query: %4 at the end", get("/get?key=a%4"), &[Error(400, "invalid percent-encoding at byte 5")]),
        case("query: bad escape in an ignored param", get("/get?key=ok&unused=%zz"), &[Error(400, "invalid percent-encoding")]),
        case("query: bad escape in a name", get("/get?k%zzey=1"), &[Error(400, "invalid percent-encoding")]),
        case("query: bad escape in ttl", get("/set?key=k&value=v&ttl=%g1"), &[Error(400, "invalid percent-encoding")]),
        case("path: trailing %", get("/v1/kv/abc%"), &[Error(400, "invalid percent-encoding")]),
        case("path: %4 at the end", req("DELETE", "/v1/kv/%4", &[], b""), &[Error(400, "invalid percent-encoding")]),
        case("PUT query: bad escape", put("/v1/kv/ok?ttl=%zz", b"v"), &[Error(400, "invalid percent-encoding")]),
        case("form body: lone %", post("/set", b"key=k&value=%"), &[Error(400, "invalid percent-encoding at byte 12")]),
        // --- Invalid UTF-8 where text is required. ---
        case("ttl=%FF", get("/set?key=k&value=v&ttl=%FF"), &[Error(400, "parameter \"ttl\" must be valid UTF-8")]),
        case("PUT ttl=%C3%28", put("/v1/kv/k?ttl=%C3%28", b"v"), &[Error(400, "parameter \"ttl\" must be valid UTF-8")]),
        case("encoding=%FF", post("/v1/mget?encoding=%FF", br#"{"keys":["a"]}"#), &[Error(400, "invalid encoding")]),
        case("ack=%FF", get("/set?key=k&value=v&ack=%FF"), &[Error(400, "invalid ack")]),
        case("DELETE ack=%FF", req("DELETE", &format!("/v1/kv/{CANARY_KEY}?ack=%FF"), &[], b""), &[Error(400, "invalid ack")]),
        case("mget body with a raw 0xFF byte", post("/v1/mget", b"{\"keys\":[\"\xff\"]}"), &[Error(400, "invalid JSON")]),
        case("mset body with a raw 0xFF byte", post("/v1/mset", b"{\"items\":[{\"key\":\"k\",\"value\":\"\xff\"}]}"), &[Error(400, "invalid JSON")]),
        case("mset with a lone surrogate escape", post("/v1/mset", br#"{"items":[{"key":"\ud800","value":"v"}]}"#), &[Error(400, "invalid JSON")]),
        case("raw UTF-8 in the query is the key's bytes", get("/get?key=\u{ff}"), &[Error(404, "Key not found")]),
        case("raw invalid UTF-8 in the target", cat(&[b"GET /v1/kv/\xff\xfe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"]), &[Protocol(400)]),
        // --- TTLs: bad, zero, negative, huge. ---
        case("ttl=-1s (REST)", put("/v1/kv/k?ttl=-1s", b"v"), &[Error(400, "ttl must be positive")]),
        case("ttl=0", get("/set?key=k&value=v&ttl=0"), &[Error(400, "ttl must be positive")]),
        case("ttl=0.0000001ns (rounds to zero)", get("/set?key=k&value=v&ttl=0.0000001ns"), &[Error(400, "ttl must be positive")]),
        case("ttl=1d", get("/set?key=k&value=v&ttl=1d"), &[Error(400, "unknown unit \"d\"")]),
        case("ttl=99999999999999h", get("/set?key=k&value=v&ttl=99999999999999h"), &[Error(400, "exceeds the maximum")]),
        case("ttl=1e3s", get("/set?key=k&value=v&ttl=1e3s"), &[Error(400, "invalid duration \"1e3s\"")]),
        case("ttl=1.5.5s", get("/set?key=k&value=v&ttl=1.5.5s"), &[Error(400, "invalid duration")]),
        case("ttl with a leading space", get("/set?key=k&value=v&ttl=%205s"), &[Error(400, "invalid duration")]),
        case("ttl=315360001s (10 years + 1 s)", put("/v1/kv/k?ttl=315360001s", b"v"), &[Error(400, "exceeds the maximum of 315360000s")]),
        case("ttl=9999999999999999999999s (overflow)", get("/set?key=k&value=v&ttl=9999999999999999999999s"), &[Error(400, "exceeds the maximum")]),
        case("ttl given twice", get("/set?key=k&value=v&ttl=1s&ttl=2s"), &[Error(400, "given more than once")]),
        case("mset item with ttl -5m", post("/v1/mset", br#"{"items":[{"key":"a","value":"v"},{"key":"b","value":"v","ttl":"-5m"}]}"#), &[Error(400, "ttl must be positive")]),
        case("mset item with ttl as a number", post("/v1/mset", br#"{"items":[{"key":"a","value":"v","ttl":5}]}"#), &[Error(400, "invalid JSON")]),
        // --- Unknown routes. ---
        case("/v1/kv without a slash", get("/v1/kv"), &[Error(404, "no route")]),
        case("/v1/kvx/a", get("/v1/kvx/a"), &[Error(404, "no route")]),
        case("//get", get(&format!("//get?key={CANARY_KEY}")), &[Error(404, "no route")]),
        case("/get/", get("/get/"), &[Error(404, "no route")]),
        case("/admin/shards/0/explode", post("/admin/shards/0/explode", b""), &[Error(404, "no route")]),
        case("/admin/shards/0 (no action)", post("/admin/shards/0", b""), &[Error(404, "no route")]),
        case("OPTIONS *", req("OPTIONS", "*", &[], b""), &[Error(404, "no route for OPTIONS *")]),
        // --- Wrong methods: 405 with Allow. ---
        case("PUT /get", put("/get?key=k", b"v"), &[NotAllowed("GET, HEAD")]),
        case("GET /v1/mget", get("/v1/mget"), &[NotAllowed("POST")]),
        case("DELETE /v1/mset", req("DELETE", "/v1/mset", &[], b""), &[NotAllowed("POST")]),
        case("POST /health", post("/health", b""), &[NotAllowed("GET")]),
        case("PUT /dashboard", put("/dashboard", b""), &[NotAllowed("GET")]),
        case("DELETE /metrics", req("DELETE", "/metrics", &[], b""), &[NotAllowed("GET")]),
        case("POST /", post("/", b""), &[NotAllowed("GET, HEAD")]),
        case("POST /v1/kv/k", post("/v1/kv/k", b"v"), &[NotAllowed("GET, HEAD, PUT, DELETE")]),
        case("GET /admin/snapshot", get("/admin/snapshot"), &[NotAllowed("POST")]),
        case("GET /admin/shards/0/fail", get("/admin/shards/0/fail"), &[NotAllowed("POST")]),
        case("extension method BREW /set", req("BREW", "/set", &[], b""), &[NotAllowed("GET, POST")]),
        case("lower-case method get /health", req("get", "/health", &[], b""), &[NotAllowed("GET")]),
        // --- Admin routes with bad input. ---
        case("shard id overflowing usize", post("/admin/shards/99999999999999999999999/fail", b""), &[Error(400, "invalid shard id")]),
        case("shard id -1", post("/admin/shards/-1/fail", b""), &[Error(400, "invalid shard id")]),
        case("fail a shard without replicas", post("/admin/shards/0/fail", b""), &[Error(409, "--replicas")]),
        case("snapshot without --data-dir", post("/admin/snapshot", b""), &[Error(409, "--data-dir")]),
        // --- Heads: size, count, syntax. ---
        case("head exactly --max-header-bytes", head_of_size(MAX_HEAD), &[Ok(200, Some(br#"{"status":"ok"}"#))]),
        case("head one byte over --max-header-bytes", head_of_size(MAX_HEAD + 1), &[Protocol(431)]),
        case("one 70 KB header", head_of_size(70_000), &[Protocol(431)]),
        case("200 small headers", req("GET", "/health", &[many_headers.trim_end()], b""), &[Protocol(431)]),
        case("100 headers (hyper's maximum)", req("GET", "/health", &[hundred_headers.trim_end()], b""), &[Ok(200, None)]),
        case("space in a header name", req("GET", "/health", &["Bad Header: x"], b""), &[Protocol(400)]),
        case("NUL in a header value", req("GET", "/health", &["X-A: a\u{0}b"], b""), &[Protocol(400)]),
        case("header line without a colon", req("GET", "/health", &["NoColonHere"], b""), &[Protocol(400)]),
        case("no Host header", b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), &[Ok(200, None)]),
        case("absolute-form target", req("GET", &format!("http://elsewhere/get?key={CANARY_KEY}"), &[], b""), &[Ok(200, Some(CANARY_VALUE))]),
        // --- Bodies: oversized, malformed framing, mismatched lengths. ---
        case("Content-Length 100 MB, body never sent", req("PUT", "/v1/kv/k", &["Content-Length: 100000000"], b""), &[Error(413, "larger than the limit of 68608 bytes")]),
        case("chunked body streaming past the limit", chunked("PUT", "/v1/kv/k", &over_limit_chunks, true), &[Error(413, "larger than the limit")]),
        case("chunked mset streaming past the limit", chunked("POST", "/v1/mset", &over_limit_chunks, false), &[Error(413, "larger than the limit")]),
        case("chunk size not hex", cat(&[&chunked("PUT", "/v1/kv/k", &[], false), b"zz\r\nhello\r\n0\r\n\r\n"]), &[Error(400, "could not read the request body")]),
        case("chunk longer than its size", cat(&[&chunked("PUT", "/v1/kv/k", &[], false), b"3\r\nabcdef\r\n0\r\n\r\n"]), &[Error(400, "could not read the request body")]),
        case("chunk size overflowing u64", cat(&[&chunked("PUT", "/v1/kv/k", &[], false), b"ffffffffffffffffff\r\nab\r\n0\r\n\r\n"]), &[Error(400, "could not read the request body")]),
        case("two different Content-Lengths", b"PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd".to_vec(), &[Protocol(400)]),
        case("Content-Length list 3, 4", b"PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 3, 4\r\nConnection: close\r\n\r\nabcd".to_vec(), &[Protocol(400)]),
        case("Content-Length -1", b"PUT /v1/kv/k HTTP/1.1\r\nContent-Length: -1\r\nConnection: close\r\n\r\nabcd".to_vec(), &[Protocol(400)]),
        case("Content-Length abc", b"PUT /v1/kv/k HTTP/1.1\r\nContent-Length: abc\r\nConnection: close\r\n\r\nabcd".to_vec(), &[Protocol(400)]),
        case("Content-Length over u64", b"PUT /v1/kv/k HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\nConnection: close\r\n\r\nabcd".to_vec(), &[Protocol(400)]),
        case("Transfer-Encoding gzip (not chunked)", b"PUT /v1/kv/k HTTP/1.1\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nabc".to_vec(), &[Protocol(400)]),
        Case {
            name: "the same Content-Length twice",
            request: b"PUT /v1/kv/dupcl HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc".to_vec(),
            ending: Ending::Responses(&[Ok(204, None)]),
            effect: Effect::Stored("dupcl", b"abc"),
        },
        Case {
            // RFC 9112 6.3: chunked wins, and the server must close after it (no smuggling:
            // the GET glued behind it is never served).
            name: "Content-Length and chunked together, a request glued behind",
            request: b"PUT /v1/kv/clte HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\nGET /health HTTP/1.1\r\n\r\n".to_vec(),
            ending: Ending::Responses(&[Ok(204, None)]),
            effect: Effect::Stored("clte", b"xyz"),
        },
        Case {
            // The surplus "def" is the start of a next request head, which never completes:
            // the header timeout (1 s here) closes the connection.
            name: "Content-Length smaller than the body",
            request: b"PUT /v1/kv/short HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcdef".to_vec(),
            ending: Ending::Responses(&[Ok(204, None)]),
            effect: Effect::Stored("short", b"abc"),
        },
        // --- Batch JSON of the wrong shape, too many items, base64 garbage. ---
        case("mset {\"items\": 5}", post("/v1/mset", br#"{"items": 5}"#), &[Error(400, "invalid JSON")]),
        case("mset with an extra top-level field", post("/v1/mset", br#"{"items": [], "extra": 1}"#), &[Error(400, "unknown field `extra`")]),
        case("mset item with an extra field", post("/v1/mset", br#"{"items":[{"key":"a","value":"v","nx":true}]}"#), &[Error(400, "unknown field `nx`")]),
        case("mset items given twice", post("/v1/mset", br#"{"items":[],"items":[]}"#), &[Error(400, "duplicate field `items`")]),
        case("mset key as a number", post("/v1/mset", br#"{"items":[{"key":1,"value":"v"}]}"#), &[Error(400, "invalid JSON")]),
        case("mset top-level array", post("/v1/mset", br#"[{"key":"a","value":"v"}]"#), &[Error(400, "invalid JSON")]),
        case("mset null", post("/v1/mset", b"null"), &[Error(400, "invalid JSON")]),
        case("mset empty body", post("/v1/mset", b""), &[Error(400, "invalid JSON")]),
        case("mset trailing garbage", post("/v1/mset", br#"{"items":[{"key":"a","value":"v"}]} xyz"#), &[Error(400, "trailing characters")]),
        case("mset 50,000 nested brackets", post("/v1/mset", "[".repeat(50_000).as_bytes()), &[Error(400, "invalid JSON")]),
        case("mget 10,000 nested objects", post("/v1/mget", format!(r#"{{"keys":[{}"#, "{\"a\":".repeat(10_000)).as_bytes()), &[Error(400, "invalid JSON")]),
        case("mset 6 items over --max-batch 5", post("/v1/mset", six_items.as_bytes()), &[Error(413, "the maximum is 5 (--max-batch)")]),
        case("mget keys as a string", post("/v1/mget", br#"{"keys":"a"}"#), &[Error(400, "invalid JSON")]),
        case("base64 with invalid bytes", post("/v1/mset?encoding=base64", br#"{"items":[{"key":"a","value":"@@@@"}]}"#), &[Error(400, "standard base64")]),
        case("base64 without padding", post("/v1/mset?encoding=base64", br#"{"items":[{"key":"a","value":"QQ"}]}"#), &[Error(400, "correct padding")]),
        case("base64, bad item after a good one", post("/v1/mset?encoding=base64", br#"{"items":[{"key":"a","value":"QQ=="},{"key":"b","value":"Q"}]}"#), &[Error(400, "item 1")]),
        case("encoding=hex", post("/v1/mset?encoding=hex", br#"{"items":[]}"#), &[Error(400, "invalid encoding \"hex\"")]),
        // --- Conditional headers with garbage. ---
        case("If-Match garbage", req("PUT", "/v1/kv/k", &["If-Match: garbage"], b"v"), &[Error(400, "invalid If-Match")]),
        case("If-Match version over u64", req("PUT", "/v1/kv/k", &["If-Match: \"18446744073709551616\""], b"v"), &[Error(400, "invalid If-Match")]),
        case("If-Match negative version", req("PUT", "/v1/kv/k", &["If-Match: \"-1\""], b"v"), &[Error(400, "invalid If-Match")]),
        case("If-Match weak tag", req("PUT", "/v1/kv/k", &["If-Match: W/\"1\""], b"v"), &[Error(400, "invalid If-Match")]),
        case("If-Match list on an absent key", req("PUT", "/v1/kv/k", &["If-Match: \"1\", \"2\""], b"v"), &[Error(412, "precondition failed")]),
        case("If-Match * in a list", req("PUT", "/v1/kv/k", &["If-Match: \"1\", *"], b"v"), &[Error(400, "invalid If-Match")]),
        case("If-Match * on an absent key", req("PUT", "/v1/kv/k", &["If-Match: *"], b"v"), &[Error(412, "precondition failed")]),
        case("If-Match with a raw 0xFF byte", cat(&[b"PUT /v1/kv/k HTTP/1.1\r\nIf-Match: \"\xff\"\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv"]), &[Error(400, "invalid If-Match")]),
        case("If-None-Match with a malformed tag", req("PUT", "/v1/kv/k", &["If-None-Match: \"1\", x"], b"v"), &[Error(400, "invalid If-None-Match")]),
        case("DELETE with a stale If-Match on the canary", req("DELETE", &format!("/v1/kv/{CANARY_KEY}"), &["If-Match: \"999999\""], b""), &[Error(412, "precondition failed")]),
        case("DELETE with If-None-Match * on the canary", req("DELETE", &format!("/v1/kv/{CANARY_KEY}"), &["If-None-Match: *"], b""), &[Error(412, "precondition failed")]),
        case("If-Match stale on the canary", req("PUT", &format!("/v1/kv/{CANARY_KEY}"), &["If-Match: \"999999\""], b"lost"), &[Error(412, "precondition failed")]),
        case("If-None-Match * on the canary", req("PUT", &format!("/v1/kv/{CANARY_KEY}"), &["If-None-Match: *"], b"lost"), &[Error(412, "precondition failed")]),
        // --- Protocol oddities. ---
        case("garbage bytes with a blank line", b"\x00\x01\x02\x03\r\n\r\n".to_vec(), &[Protocol(400)]),
        Case {
            name: "4 KiB of garbage bytes",
            request: garbage,
            ending: Ending::ProtocolOrClose(400),
            effect: Effect::Nothing,
        },
        case("HTTP/0.9 request line", b"GET /\r\n".to_vec(), &[Protocol(400)]),
        case("HTTP/3.0 version", b"GET /health HTTP/3.0\r\nConnection: close\r\n\r\n".to_vec(), &[Protocol(400)]),
        Case {
            name: "HTTP/2 preface to an HTTP/1 server",
            request: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            ending: Ending::Close,
            effect: Effect::Nothing,
        },
        // HTTP/1.0 closes after the response without being asked to.
        case("HTTP/1.0 GET", format!("GET /get?key={CANARY_KEY} HTTP/1.0\r\n\r\n").into_bytes(), &[Ok(200, Some(CANARY_VALUE))]),
        Case {
            name: "HTTP/1.0 PUT",
            request: b"PUT /v1/kv/http10 HTTP/1.0\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            ending: Ending::Responses(&[Ok(204, None)]),
            effect: Effect::Stored("http10", b"ok"),
        },
        Case {
            name: "pipelined: write, read, bad escape, read canary",
            request: cat(&[
                b"GET /set?key=pipe&value=1 HTTP/1.1\r\nHost: t\r\n\r\n",
                b"GET /get?key=pipe HTTP/1.1\r\nHost: t\r\n\r\n",
                b"GET /get?key=%zz HTTP/1.1\r\nHost: t\r\n\r\n",
                &get(&format!("/get?key={CANARY_KEY}")),
            ]),
            ending: Ending::Responses(&[
                Ok(200, Some(b"OK")),
                Ok(200, Some(b"1")),
                Error(400, "invalid percent-encoding"),
                Ok(200, Some(CANARY_VALUE)),
            ]),
            effect: Effect::Stored("pipe", b"1"),
        },
        case("pipelined: 51 health checks in one write", pipelined_health, &[Ok(200, Some(br#"{"status":"ok"}"#)); 51]),
        case("pipelined: a malformed request ends the connection", cat(&[b"GET /health HTTP/1.1\r\nBad Header: x\r\n\r\n", &get("/health")]), &[Protocol(400)]),
    ]
}

#[test]
fn catalogue_of_bad_requests() {
    let mut s = Server::start(&[
        "--max-key-bytes",
        &MAX_KEY.to_string(),
        "--max-value-bytes",
        &MAX_VALUE.to_string(),
        "--max-batch",
        "5",
        "--max-header-bytes",
        &MAX_HEAD.to_string(),
        "--header-timeout-secs",
        "1",
        "--body-timeout-secs",
        "1",
    ]);
    let c = check_client();
    store_canary(&s);
    check_intact(&mut s, &c, "start");
    let cases = catalogue();
    let names: std::collections::HashSet<_> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    for case in &cases {
        run_case(&mut s, &c, case);
    }
    // Every connection the catalogue opened is gone (only the dashboard request itself).
    wait_connections_drain(&c, &s, 1, Duration::from_secs(3));
    eprintln!("catalogue: {} cases passed", cases.len());
}

/// Bodies and heads that arrive too slowly, and clients that hang up half-way.
#[test]
fn slow_and_abrupt_clients() {
    let mut s = Server::start(&["--header-timeout-secs", "1", "--body-timeout-secs", "1"]);
    let c = check_client();
    store_canary(&s);

    // A body slower than --body-timeout-secs: 408 with a JSON error, nothing written.
    let before = fingerprint(&c, &s);
    for (name, request) in [
        (
            "chunked mset that stalls after one chunk",
            chunked("POST", "/v1/mset", &[b"{\"items\":"], false),
        ),
        (
            "form POST /set that sends 10 of 100 bytes",
            req("POST", "/set", &["Content-Length: 100"], b"")
                .into_iter()
                .chain(b"key=k&val=".iter().copied())
                .collect(),
        ),
    ] {
        let outcome = exchange(s.addr, &request, CASE_TIMEOUT);
        check_outcome(
            name,
            &outcome,
            Ending::Responses(&[Expect::Error(408, "did not arrive within 1s")]),
        );
        assert!(
            outcome.elapsed >= Duration::from_millis(900)
                && outcome.elapsed < Duration::from_secs(3),
            "{name}: answered after {:?}",
            outcome.elapsed
        );
        check_intact(&mut s, &c, name);
    }
    // A body dribbled one byte every 200 ms: the timeout is for the whole body, not per read.
    {
        let name = "body dribbled a byte every 200 ms";
        let mut stream = TcpStream::connect(s.addr).unwrap();
        stream
            .write_all(
                b"PUT /v1/kv/drip HTTP/1.1\r\nContent-Length: 50\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
        let start = Instant::now();
        let mut writer = stream.try_clone().unwrap();
        let dripper = std::thread::spawn(move || {
            for _ in 0..50 {
                if writer.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let (raw, closed) = read_until_close(&mut stream, start + CASE_TIMEOUT);
        let (responses, _) = parse_responses(&raw);
        assert!(closed, "{name}: not closed");
        assert_eq!(responses.len(), 1, "{name}: {responses:?}");
        check_response(
            name,
            0,
            &responses[0],
            Expect::Error(408, "did not arrive within 1s"),
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{name}: {:?}",
            start.elapsed()
        );
        drop(stream);
        dripper.join().unwrap();
        check_intact(&mut s, &c, name);
    }
    assert_eq!(
        fingerprint(&c, &s),
        before,
        "a timed-out body wrote something"
    );

    // Heads slower than --header-timeout-secs (slowloris): closed within a second or two of
    // the timeout, without a response; also a connection that never sends a byte, and one that
    // keeps dribbling header lines (the timeout covers the whole head, not each read).
    for (name, request) in [
        ("connect and send nothing", &b""[..]),
        ("partial request line", &b"GET /get?key=canary HT"[..]),
        (
            "request line and one header, no blank line",
            &b"GET /health HTTP/1.1\r\nHost: t\r\n"[..],
        ),
    ] {
        let outcome = exchange(s.addr, request, CASE_TIMEOUT);
        check_outcome(name, &outcome, Ending::Close);
        assert!(
            outcome.elapsed >= Duration::from_millis(800)
                && outcome.elapsed < Duration::from_millis(3500),
            "{name}: closed after {:?} (header timeout 1 s)",
            outcome.elapsed
        );
        check_intact(&mut s, &c, name);
    }
    {
        let name = "header lines dribbled every 100 ms";
        let mut stream = TcpStream::connect(s.addr).unwrap();
        let start = Instant::now();
        let mut writer = stream.try_clone().unwrap();
        let dripper = std::thread::spawn(move || {
            let _ = writer.write_all(b"GET /health HTTP/1.1\r\n");
            for i in 0..100 {
                if writer
                    .write_all(format!("X-{i}: v\r\n").as_bytes())
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let (raw, closed) = read_until_close(&mut stream, start + CASE_TIMEOUT);
        assert!(closed, "{name}: still open after {:?}", start.elapsed());
        assert!(
            raw.is_empty(),
            "{name}: {:?}",
            String::from_utf8_lossy(&raw)
        );
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(3500),
            "{name}: closed after {took:?}"
        );
        drop(stream);
        dripper.join().unwrap();
        check_intact(&mut s, &c, name);
    }

    // Clients that hang up mid-request: after the head, half-way through a body (by length and
    // chunked), and mid-head. Nothing is written and no connection is left behind.
    let before = fingerprint(&c, &s);
    for (name, request) in [
        (
            "hang up after the head",
            b"PUT /v1/kv/gone HTTP/1.1\r\nContent-Length: 1000\r\n\r\n".to_vec(),
        ),
        (
            "hang up half-way through a body",
            cat(&[
                b"PUT /v1/kv/gone HTTP/1.1\r\nContent-Length: 1000\r\n\r\n",
                &[b'x'; 500],
            ]),
        ),
        (
            "hang up half-way through a chunked mset",
            chunked(
                "POST",
                "/v1/mset",
                &[br#"{"items":[{"key":"gone","value":"#],
                false,
            ),
        ),
        (
            "hang up mid-head",
            b"PUT /v1/kv/gone HTTP/1.1\r\nContent-Len".to_vec(),
        ),
    ] {
        for _ in 0..20 {
            let mut stream = TcpStream::connect(s.addr).unwrap();
            stream.write_all(&request).unwrap();
            drop(stream);
        }
        check_intact(&mut s, &c, name);
    }
    // Clients that hang up mid-response: a 1 MiB value requested twice on each of 40
    // connections, of which 20 read 100 bytes and 20 read nothing before closing (closing with
    // unread bytes makes the kernel send a reset, not a FIN).
    let big: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        c.put(s.url("/v1/kv/big"))
            .body(big.clone())
            .send()
            .unwrap()
            .status(),
        204
    );
    let before_reads = fingerprint(&c, &s);
    for i in 0..40 {
        let mut stream = TcpStream::connect(s.addr).unwrap();
        stream
            .write_all(b"GET /v1/kv/big HTTP/1.1\r\nHost: t\r\n\r\nGET /v1/kv/big HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        if i % 2 == 0 {
            let mut buf = [0u8; 100];
            stream.read_exact(&mut buf).unwrap();
            assert!(buf.starts_with(b"HTTP/1.1 200"));
        }
        drop(stream);
    }
    check_intact(&mut s, &c, "hang up mid-response");
    assert_eq!(fingerprint(&c, &s), before_reads, "reads changed the store");
    let r = c.get(s.url("/v1/kv/big")).send().unwrap();
    assert!(r.bytes().unwrap() == big, "the big value changed");
    let r = c.get(s.url("/v1/kv/gone")).send().unwrap();
    assert_eq!(r.status(), 404, "a hung-up write was stored");
    assert_eq!(
        fingerprint(&c, &s).1,
        before.1 + 1,
        "only the big value was added"
    );
    wait_connections_drain(&c, &s, 1, Duration::from_secs(3));
}

/// The request-target and head limits at their defaults: hyper's 414 above 65,534 bytes, 431
/// far above `--max-header-bytes` (see the note on its overshoot below).
#[test]
fn request_target_and_head_limits_at_defaults() {
    let mut s = Server::start(&[]);
    let c = check_client();
    store_canary(&s);
    let target = |len: usize| format!("/get?key={}", "k".repeat(len - "/get?key=".len()));
    let cases = vec![
        case(
            "target of 65,534 bytes reaches our code",
            get(&target(65_534)),
            &[Expect::Error(400, "the maximum is 4096 bytes")],
        ),
        case(
            "target of 65,535 bytes",
            get(&target(65_535)),
            &[Expect::Protocol(414)],
        ),
        case(
            "target of 100,000 bytes",
            get(&target(100_000)),
            &[Expect::Protocol(414)],
        ),
        case(
            "head of 4 × --max-header-bytes",
            head_of_size(4 * 65536),
            &[Expect::Protocol(431)],
        ),
        case(
            "head of 60,000 bytes is within the default",
            head_of_size(60_000),
            &[Expect::Ok(200, None)],
        ),
    ];
    for case in &cases {
        run_case(&mut s, &c, case);
    }
    // Not asserted, reported instead: hyper checks `--max-header-bytes` only before each read,
    // and a read may add up to the limit again, so at the default of 65,536 a head of up to
    // 114,688 bytes is accepted (at 8,192 the limit is exact: see the catalogue).
}

/// Reads the soft limit on open files from /proc (no libc in the dev-dependencies).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(1024)
}

/// 2,000 connections that send nothing: requests are still served promptly, and the server
/// really holds them (they are not just waiting in the kernel's backlog).
#[test]
fn thousands_of_idle_connections() {
    let mut s = Server::start(&["--header-timeout-secs", "20"]);
    let c = check_client();
    store_canary(&s);
    let limit = open_files_limit();
    let want = 2_000.min(limit.saturating_sub(100));
    if want < 2_000 {
        eprintln!("open-files limit is {limit}: opening {want} idle connections, not 2,000");
    }
    let start = Instant::now();
    let idle: Vec<TcpStream> = (0..want)
        .map(|i| TcpStream::connect(s.addr).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    eprintln!(
        "opened {} idle connections in {:?}",
        idle.len(),
        start.elapsed()
    );
    // The server accepts all of them (the dashboard request is one more).
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_connections(&c, &s) < want as u64 + 1 {
        assert!(
            Instant::now() < deadline,
            "the server did not accept {want} connections"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Normal requests are served promptly while they sit there.
    let start = Instant::now();
    for i in 0..100 {
        let key = format!("busy{i}");
        let r = c
            .put(s.url(&format!("/v1/kv/{key}")))
            .body("v")
            .send()
            .unwrap();
        assert_eq!(r.status(), 204);
        let r = c.get(s.url(&format!("/get?key={key}"))).send().unwrap();
        assert_eq!(r.text().unwrap(), "v");
    }
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "200 requests took {took:?} beside idle connections"
    );
    check_intact(&mut s, &c, "2,000 idle connections");
    drop(idle);
    wait_connections_drain(&c, &s, 1, Duration::from_secs(5));
    check_intact(&mut s, &c, "after the idle connections left");
}

/// `--max-connections 50` held by 200 connections that send nothing: requests wait (the limit
/// holds) until the header timeout frees the slots, then are served; every idle connection is
/// closed by the server.
#[test]
fn connection_limit_recovers_after_the_header_timeout() {
    let mut s = Server::start(&["--max-connections", "50", "--header-timeout-secs", "1"]);
    let c = check_client();
    store_canary(&s);
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(s.addr).unwrap())
        .collect();
    let start = Instant::now();
    let patient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let r = patient
        .get(s.url(&format!("/get?key={CANARY_KEY}")))
        .send()
        .expect("the request is served once the header timeout frees the slots");
    let waited = start.elapsed();
    eprintln!("served after {waited:?} behind 200 idle connections at --max-connections 50");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().unwrap(), CANARY_VALUE);
    // 200 idle connections, 50 at a time, 1 s each: about 4 s in the queue.
    assert!(
        waited >= Duration::from_millis(800),
        "served after {waited:?}: the connection limit did not hold"
    );
    assert!(
        waited < Duration::from_secs(12),
        "served only after {waited:?}"
    );
    // Every idle connection was closed by the server, none answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, mut stream) in idle.into_iter().enumerate() {
        let (raw, closed) = read_until_close(&mut stream, deadline);
        assert!(
            closed,
            "idle connection {i} still open after {:?}",
            start.elapsed()
        );
        assert!(raw.is_empty(), "idle connection {i} got {raw:?}");
    }
    check_intact(&mut s, &c, "after the connection limit");
    wait_connections_drain(&c, &s, 1, Duration::from_secs(3));
}
