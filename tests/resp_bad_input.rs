//! Hostile and broken input on the RESP listener, against the real binary: protocol errors
//! (compared byte for byte with redis-server, including whether the connection is closed),
//! half-sent commands, one-byte-at-a-time senders, binary garbage, a bulk above
//! --max-value-bytes (an error naming the flag, the connection stays usable, memory bounded),
//! a client that pipelines GETs of a big value and never reads (disconnected past
//! --resp-output-limit, memory bounded), and many idle connections up to --max-clients (then
//! Redis's "max number of clients reached"). After each, the server must answer PING.
//!
//! Tests named `*_redis_reference` run the same check against redis-server with its equivalent
//! settings, to prove the check (they must pass). `RESP_BAD_INPUT_BOTH_REDIS=1` puts a
//! redis-server where shardkv would be in the comparison tests.

mod common;

use common::resp::{rss_kib, RedisServer, RespConn, Target};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const BOTH_REDIS: &str = "RESP_BAD_INPUT_BOTH_REDIS";

/// Inputs whose outcome (bytes sent back, closed or not) must equal Redis's.
fn protocol_cases() -> Vec<(&'static str, Vec<u8>)> {
    let mut cases: Vec<(&'static str, Vec<u8>)> = vec![
        ("multibulk count 2^31", b"*2147483648\r\n".to_vec()),
        ("multibulk count INT_MAX waits", b"*2147483647\r\n".to_vec()),
        (
            "negative multibulk count is ignored",
            b"*-5\r\nPING\r\n".to_vec(),
        ),
        (
            "zero multibulk count is ignored",
            b"*0\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
        ),
        ("multibulk count not a number", b"*abc\r\n".to_vec()),
        ("multibulk count with +", b"*+1\r\n".to_vec()),
        ("negative bulk length", b"*1\r\n$-3\r\n".to_vec()),
        ("bulk length -1", b"*1\r\n$-1\r\n".to_vec()),
        (
            "600 MB bulk header",
            b"*2\r\n$3\r\nGET\r\n$629145600\r\n".to_vec(),
        ),
        ("bulk header without $", b"*1\r\nX\r\n".to_vec()),
        ("empty bulk header line", b"*1\r\n\r\n".to_vec()),
        ("unbalanced quotes", b"SET \"a b\r\n".to_vec()),
        (
            "closing quote not followed by space",
            b"ECHO \"foo\"bar\r\n".to_vec(),
        ),
        ("empty inline lines", b"\r\n\r\nPING\r\n".to_vec()),
        (
            "replies before the error are sent",
            b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n".to_vec(),
        ),
        (
            "terminators are not checked",
            b"*1\r\n$4\r\nPINGXY".to_vec(),
        ),
        (
            "host: closes with no reply",
            b"host: example.com\r\n".to_vec(),
        ),
        ("POST closes with no reply", b"POST / HTTP/1.1\r\n".to_vec()),
        ("QUIT replies then closes", b"QUIT\r\nPING\r\n".to_vec()),
        (
            "binary garbage",
            b"\x00\xff\xfe\x01*\x02$\r\n\x80\x81".to_vec(),
        ),
        ("binary garbage after a star", b"*\xff\xfe\r\n".to_vec()),
    ];
    let mut long_inline = vec![b'a'; 70_000];
    long_inline.extend_from_slice(b"");
    cases.push(("inline line past 64 KB", long_inline));
    let mut long_complete = vec![b'x'; 70_000];
    long_complete.extend_from_slice(b"\r\n");
    let mut ok_long = b"ECHO ".to_vec();
    ok_long.extend_from_slice(&long_complete);
    cases.push(("complete inline line past 64 KB", ok_long));
    let mut long_count = b"*".to_vec();
    long_count.extend(std::iter::repeat_n(b'1', 70_000));
    cases.push(("multibulk count line past 64 KB", long_count));
    cases
}

/// Sends `input` and collects what comes back: the bytes, and whether the server closed
/// within the wait.
fn outcome(addr: SocketAddr, input: &[u8]) -> (Vec<u8>, bool) {
    let mut conn = RespConn::connect(addr);
    // The server may close before everything is written; what it sent is what counts.
    let _ = conn.try_send_raw(input);
    match conn.read_until_close(Duration::from_millis(1500)) {
        Some(bytes) => (bytes, true),
        None => (Vec::new(), false),
    }
}

fn assert_alive(addr: SocketAddr, what: &str) {
    let mut conn = RespConn::connect(addr);
    assert_eq!(conn.call_str(&["PING"]), b"+PONG\r\n", "PING after {what}");
}

#[test]
fn protocol_errors_match_redis() {
    let reference = RedisServer::start();
    let candidate = Target::shardkv_or_redis(BOTH_REDIS, &[]);
    let mut failures = Vec::new();
    for (name, input) in protocol_cases() {
        let want = outcome(reference.addr, &input);
        let got = outcome(candidate.addr(), &input);
        // Open connections send nothing we can see without closing: compare the open state.
        if want != got {
            failures.push(format!(
                "{name}: redis-server closed={} sent {}; {} closed={} sent {}",
                want.1,
                common::resp::escape(&want.0),
                candidate.name(),
                got.1,
                common::resp::escape(&got.0)
            ));
        }
        assert_alive(candidate.addr(), name);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Half-sent commands then a close, many times: nothing is applied, the server stays up.
fn check_half_sent(addr: SocketAddr) {
    let partials: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk",
        b"*3\r\n$3\r\nSE",
        b"*3\r",
        b"SET k v",
        b"*1\r\n$100000\r\nabc",
    ];
    for _ in 0..20 {
        for p in partials {
            let mut conn = RespConn::connect(addr);
            conn.send_raw(p);
            drop(conn);
        }
    }
    let mut conn = RespConn::connect(addr);
    assert_eq!(conn.call_str(&["EXISTS", "k"]), b":0\r\n");
    assert_alive(addr, "half-sent commands");
}

/// A command sent one byte at a time is answered as if sent at once.
fn check_slow_sender(addr: SocketAddr) {
    let mut conn = RespConn::connect(addr);
    let mut input = RespConn::encode_command(&[b"SET", b"slow", b"hello\r\nworld"]);
    input.extend_from_slice(b"GET slow\r\n");
    input.extend(RespConn::encode_command(&[b"STRLEN", b"slow"]));
    for b in &input {
        conn.send_raw(&[*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(conn.read_reply(), b"+OK\r\n");
    assert_eq!(conn.read_reply(), b"$12\r\nhello\r\nworld\r\n");
    assert_eq!(conn.read_reply(), b":12\r\n");
}

#[test]
fn half_sent_and_slow_senders_shardkv() {
    let server = Target::shardkv_or_redis(BOTH_REDIS, &[]);
    check_half_sent(server.addr());
    check_slow_sender(server.addr());
}

#[test]
fn half_sent_and_slow_senders_redis_reference() {
    let server = RedisServer::start();
    check_half_sent(server.addr);
    check_slow_sender(server.addr);
}

/// A value above --max-value-bytes: an error that names the flag, the connection stays
/// usable, and the server does not buffer the whole 100 MB.
#[test]
fn bulk_above_max_value_bytes() {
    let server = common::Server::start(&["--max-value-bytes", "1048576"]);
    let addr = server.resp_addr();
    let before = rss_kib(server.pid());
    let mut conn = RespConn::connect(addr);
    let size = 100 * 1024 * 1024;
    conn.send_raw(format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${size}\r\n").as_bytes());
    let chunk = vec![b'v'; 1024 * 1024];
    let mut peak = before;
    for _ in 0..100 {
        conn.send_raw(&chunk);
        peak = peak.max(rss_kib(server.pid()));
    }
    conn.send_raw(b"\r\n");
    let reply = conn.read_reply();
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("-ERR") && text.contains("max-value-bytes"),
        "reply to a too-big value: {text}"
    );
    assert_eq!(conn.call_str(&["PING"]), b"+PONG\r\n", "connection usable");
    assert_eq!(conn.call_str(&["EXISTS", "big"]), b":0\r\n");
    assert!(
        peak < before + 64 * 1024,
        "RSS grew from {before} KiB to {peak} KiB while a refused 100 MB value streamed in"
    );
    // A value at the limit is taken.
    let at_limit = vec![b'x'; 1048576];
    assert_eq!(conn.call(&[b"SET", b"ok", &at_limit]), b"+OK\r\n");
}

/// A client that pipelines GETs of a 1 MB value and never reads is disconnected, and the
/// server's memory stays bounded. Redis buffers replies up to its output limit, then closes;
/// shardkv stops reading a client whose replies are not being taken (backpressure: at most one
/// batch of replies is held), then closes it once a write has made no progress for
/// `--write-timeout-secs`. Either way the client, reading only after `quiet`, finds the
/// connection closed after far less than it asked for.
fn check_never_reading_client(addr: SocketAddr, pid: u32, quiet: Duration) {
    let mut setup = RespConn::connect(addr);
    let value = vec![b'x'; 1024 * 1024];
    assert_eq!(setup.call(&[b"SET", b"big", &value]), b"+OK\r\n");
    let before = rss_kib(pid);
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let get = RespConn::encode_command(&[b"GET", b"big"]);
    let mut batch = Vec::new();
    for _ in 0..100 {
        batch.extend_from_slice(&get);
    }
    let mut writer = &stream;
    let mut peak = before;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0;
    // 2000 GETs of 1 MB would be 2 GB of replies; the server must cut us off long before.
    while sent < 2000 && Instant::now() < deadline {
        if writer.write_all(&batch).is_err() {
            break;
        }
        sent += 100;
        peak = peak.max(rss_kib(pid));
    }
    std::thread::sleep(quiet);
    // Now read: the server must have closed, having sent far less than was asked.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let closed = loop {
        match std::io::Read::read(&mut &stream, &mut buf) {
            Ok(0) => break true,
            Ok(n) => received += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
        if received > 1500 * 1024 * 1024 {
            break false;
        }
    };
    assert!(
        closed,
        "a client that never reads was not disconnected (received {received} bytes)"
    );
    assert!(
        received < 1024 * 1024 * 1024,
        "it was sent {received} bytes"
    );
    assert!(
        peak < before + 256 * 1024,
        "RSS grew from {before} KiB to {peak} KiB for one client that never reads"
    );
    assert_alive(addr, "a client that never reads");
}

#[test]
fn never_reading_client_shardkv() {
    let server = common::Server::start(&[
        "--resp-output-limit",
        "8388608",
        "--write-timeout-secs",
        "2",
    ]);
    check_never_reading_client(server.resp_addr(), server.pid(), Duration::from_secs(4));
}

#[test]
fn never_reading_client_redis_reference() {
    let server = RedisServer::start_with(&["--client-output-buffer-limit", "normal 8mb 0 0"]);
    check_never_reading_client(server.addr, server.pid(), Duration::from_secs(4));
}

/// Many idle connections up to the limit, then one more: Redis's text, and a close.
fn check_max_clients(addr: SocketAddr, limit: usize) {
    let mut idle = Vec::new();
    // One PING on each proves it was accepted (not left in the backlog).
    for i in 0..limit {
        let mut conn = RespConn::connect(addr);
        if i % 100 == 0 || i + 1 == limit {
            assert_eq!(conn.call_str(&["PING"]), b"+PONG\r\n", "connection {i}");
        }
        idle.push(conn);
    }
    let mut extra = RespConn::connect(addr);
    let said = extra.read_until_close(Duration::from_secs(5));
    assert_eq!(
        said.as_deref(),
        Some(&b"-ERR max number of clients reached\r\n"[..]),
        "connection {limit}+1"
    );
    // Every idle connection still works, and freeing one makes room.
    assert_eq!(idle[0].call_str(&["PING"]), b"+PONG\r\n");
    drop(idle.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut conn = RespConn::connect(addr);
        conn.send_raw(b"PING\r\n");
        match conn.read_outcome(Duration::from_secs(2)) {
            common::resp::ReadOutcome::Frame(f) if f == b"+PONG\r\n" => break,
            other => assert!(
                Instant::now() < deadline,
                "no room after a close: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_connections_up_to_max_clients_shardkv() {
    let server = common::Server::start(&["--max-clients", "2000"]);
    check_max_clients(server.resp_addr(), 2000);
}

#[test]
fn idle_connections_up_to_max_clients_redis_reference() {
    let server = RedisServer::start_with(&["--maxclients", "2000"]);
    check_max_clients(server.addr, 2000);
}
