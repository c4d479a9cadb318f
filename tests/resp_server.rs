//! The Redis front-end as one server with HTTP, against the real binary: one store seen through
//! both protocols, one password for both, `WATCH` seeing HTTP writes, `/metrics` counting RESP
//! traffic, and numbered databases surviving a restart through the log.

mod common;

use std::time::Duration;

use common::resp::RespConn;

trait ReadTtl {
    fn read_ttl(&mut self, args: &[&str]) -> i64;
}

impl ReadTtl for RespConn {
    /// Sends `args` and parses the integer reply.
    fn read_ttl(&mut self, args: &[&str]) -> i64 {
        let reply = self.call_str(args);
        let text = String::from_utf8_lossy(&reply);
        text.trim_start_matches(':')
            .trim_end()
            .parse()
            .unwrap_or_else(|_| panic!("not an integer reply: {text:?}"))
    }
}
use common::{client, temp_dir, Server};

#[test]
fn a_key_written_over_one_protocol_is_read_over_the_other() {
    let server = Server::start(&[]);
    let http = client();
    let mut redis = RespConn::connect(server.resp_addr());
    assert_eq!(redis.call_str(&["SET", "from-redis", "r1"]), b"+OK\r\n");
    let got = http.get(server.url("/v1/kv/from-redis")).send().unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().unwrap(), "r1");
    let put = http
        .put(server.url("/v1/kv/from-http"))
        .body("h1")
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(
        redis.call_str(&["GET", "from-http"]),
        b"$2\r\nh1\r\n",
        "HTTP writes database 0, which a new RESP connection selects"
    );
    // Another database is not HTTP's.
    assert_eq!(redis.call_str(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["GET", "from-http"]), b"$-1\r\n");
    // /metrics counts RESP traffic under its protocol label.
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("shardkv_protocol_requests_total{protocol=\"redis\"}"))
        .unwrap_or_else(|| panic!("no redis request counter in:\n{metrics}"));
    let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 4, "{line}");
}

#[test]
fn one_password_protects_both_front_ends() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let http = client();
    let refused = http.get(server.url("/v1/kv/a")).send().unwrap();
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().unwrap();
    assert!(
        body.to_string().contains("Authorization: Bearer"),
        "the error says how to authenticate: {body}"
    );
    let wrong = http
        .get(server.url("/v1/kv/a"))
        .header("Authorization", "Bearer nope")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let allowed = http
        .put(server.url("/v1/kv/a"))
        .header("Authorization", "Bearer s3cret")
        .body("1")
        .send()
        .unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());

    let mut redis = RespConn::connect(server.resp_addr());
    assert_eq!(
        redis.call_str(&["GET", "a"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        redis.call_str(&["AUTH", "nope"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(redis.call_str(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["GET", "a"]), b"$1\r\n1\r\n");
    // HELLO with AUTH logs a new connection in and switches it to RESP3 at once.
    let mut resp3 = RespConn::connect(server.resp_addr());
    let hello = resp3.call_str(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{}",
        common::resp::escape(&hello)
    );
    assert_eq!(resp3.call_str(&["GET", "missing"]), b"_\r\n");
}

#[test]
fn watch_sees_writes_made_over_http() {
    let server = Server::start(&[]);
    let http = client();
    let mut redis = RespConn::connect(server.resp_addr());
    assert_eq!(redis.call_str(&["SET", "w", "0"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["WATCH", "w"]), b"+OK\r\n");
    let put = http.put(server.url("/v1/kv/w")).body("1").send().unwrap();
    assert!(put.status().is_success());
    assert_eq!(redis.call_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["SET", "w", "2"]), b"+QUEUED\r\n");
    assert_eq!(
        redis.call_str(&["EXEC"]),
        b"*-1\r\n",
        "the HTTP write dirtied the watch"
    );
    assert_eq!(redis.call_str(&["GET", "w"]), b"$1\r\n1\r\n");
    // Without an interfering write, the same transaction goes through.
    assert_eq!(redis.call_str(&["WATCH", "w"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["INCR", "w"]), b"+QUEUED\r\n");
    assert_eq!(redis.call_str(&["EXEC"]), b"*1\r\n:2\r\n");
}

#[test]
fn databases_survive_a_restart_and_too_few_are_refused() {
    let dir = temp_dir("resp-databases");
    let data = dir.to_str().unwrap();
    let mut server = Server::start(&["--data-dir", data, "--fsync", "always"]);
    let mut redis = RespConn::connect(server.resp_addr());
    assert_eq!(redis.call_str(&["SET", "k", "zero"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["SET", "k", "three"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["MOVE", "k", "5"]), b":1\r\n");
    assert_eq!(redis.call_str(&["SET", "t", "x", "EX", "1000"]), b"+OK\r\n");
    drop(redis);
    assert!(server.terminate(Duration::from_secs(20)));

    let server = Server::start(&["--data-dir", data]);
    let mut redis = RespConn::connect(server.resp_addr());
    assert_eq!(redis.call_str(&["GET", "k"]), b"$4\r\nzero\r\n");
    assert_eq!(redis.call_str(&["SELECT", "5"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["GET", "k"]), b"$5\r\nthree\r\n");
    assert_eq!(redis.call_str(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(redis.call_str(&["GET", "k"]), b"$-1\r\n");
    let ttl = redis.read_ttl(&["TTL", "t"]);
    assert!(
        (990..=1000).contains(&ttl),
        "the TTL survived the restart: {ttl}"
    );
    drop(redis);
    drop(server);

    // The log holds keys of database 5: a server with 4 databases refuses to start, naming
    // the flag, instead of dropping them.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shardkv"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--resp-listen",
            "off",
            "--databases",
            "4",
            "--data-dir",
            data,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--databases 6"), "{stderr}");
}
