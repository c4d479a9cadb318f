//! The RESP wire format (`shardkv::resp`) against a real Redis 7.0 (`redis-server`, Debian's
//! package): the same request bytes must give the same commands, arguments and protocol
//! errors, and the encoder must write the same bytes Redis writes.
//!
//! Each case starts from a fresh connection to one redis-server started here on a free
//! loopback port (with a second one that has a password, for the unauthenticated limits).
//! What Redis sends back is compared byte for byte with what our parser's outcome would make
//! a tiny executor (PING, ECHO) write. `redis-server` must be installed: .ci/run installs it.
#![cfg(feature = "server")]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use shardkv::resp::parse::{ParseLimits, Parsed, RequestParser};
use shardkv::resp::reply::{Protocol, Reply};

/// A redis-server on a free loopback port, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(extra: &[&str]) -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed (apt-get install redis-server)");
        let redis = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    /// Sends `input` on a new connection and returns everything Redis writes until it closes
    /// the connection or is quiet for a moment.
    fn exchange(&self, input: &[u8]) -> Vec<u8> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        // A protocol error may close the connection before all of a long input is written.
        let _ = conn.write_all(input);
        let mut out = Vec::new();
        let mut chunk = [0u8; 65536];
        loop {
            match conn.read(&mut chunk) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return out
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
                Err(e) => panic!("reading from redis-server: {e}"),
            }
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What Redis would answer to `input` according to our parser, for inputs whose commands are
/// only `PING` and `ECHO x`: each reply, then the protocol error's reply (and the end).
fn our_replies(input: &[u8], limits: &ParseLimits) -> Vec<u8> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::from(input);
    let mut args = Vec::new();
    let mut out = BytesMut::new();
    loop {
        match parser.next(&mut buf, &mut args, limits) {
            Ok(Parsed::Incomplete) => return out.to_vec(),
            Ok(Parsed::Command) => {
                let mut reply = Reply::new(&mut out, Protocol::Resp2);
                match &args[..] {
                    [cmd] if cmd.eq_ignore_ascii_case(b"ping") => reply.simple("PONG"),
                    [cmd, x] if cmd.eq_ignore_ascii_case(b"echo") => reply.bulk(x),
                    other => panic!("the test executor knows no {other:?}"),
                }
            }
            Ok(Parsed::Oversized { len }) => panic!("no case is oversized ({len})"),
            Err(e) => {
                out.extend_from_slice(&e.reply_bytes());
                return out.to_vec();
            }
        }
    }
}

/// Writes one reply.
type WriteReply = fn(&mut Reply<'_>);

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

fn compare(redis: &Redis, input: &[u8], limits: &ParseLimits) {
    let theirs = redis.exchange(input);
    let ours = our_replies(input, limits);
    assert_eq!(show(&ours), show(&theirs), "input {:?}", show(input));
    assert_eq!(ours, theirs, "input {:?}", show(input));
}

const OPEN: ParseLimits = ParseLimits {
    max_arg_bytes: 1 << 20,
    auth_required: false,
};

#[test]
fn requests_and_protocol_errors_match_redis() {
    let redis = Redis::start(&[]);
    let long = |prefix: &[u8], fill: u8| {
        let mut v = prefix.to_vec();
        v.extend(std::iter::repeat_n(fill, 70_000));
        v
    };
    let cases: Vec<Vec<u8>> = vec![
        b"PING\r\n\r\n\n   \r\n*0\r\n*-1\r\n*-9\r\nPING\n".to_vec(),
        b"*1\r\n$4\r\nPINGXY*2\r\n$4\r\nECHO\r\n$5\r\na\0b\r\n\r\n".to_vec(),
        b"*1\rX$4\rYPING\r\n".to_vec(),
        b"ECHO \"a\\x41b\"\r\nECHO \"\\x4g\"\r\nECHO 'it\\'s'\r\n".to_vec(),
        b"PING\r\n*1\r\n$x\r\n".to_vec(),
        b"*abc\r\n".to_vec(),
        b"*01\r\n".to_vec(),
        b"*-0\r\n".to_vec(),
        b"*2147483648\r\n".to_vec(),
        b"*2147483647\r\n$4\r\nPING\r\n".to_vec(),
        b"*1\r\n:3\r\n".to_vec(),
        b"*2\r\n$4\r\nECHO\r\n\r\n".to_vec(),
        b"*1\r\n\xff\r\n".to_vec(),
        b"*1\r\n$-1\r\n".to_vec(),
        b"*1\r\n$536870913\r\n".to_vec(),
        b"*1\r\n$536870912\r\n".to_vec(),
        b"ECHO \"foo\"bar\r\n".to_vec(),
        b"ECHO 'a\r\n".to_vec(),
        b"ECHO \"a\\\"\r\n".to_vec(),
        b"PI\0NG\r\nPING\r\n".to_vec(),
        long(b"", b'a'),
        long(b"*", b'1'),
        long(b"*1\r\n$", b'1'),
    ];
    for input in &cases {
        compare(&redis, input, &OPEN);
    }
}

#[test]
fn inline_arguments_match_redis() {
    let redis = Redis::start(&[]);
    let lines: &[&[u8]] = &[
        b"a \"b c\" 'd e'",
        b"\"a\\x41b\" \"\\x4g\" \"\\xfF\" \"\\x00\"",
        b"\"\\n\\r\\t\\b\\a\\\\\\\"\\q\"",
        b"'it\\'s' 'a\\nb' 'a\\\\b'",
        b"'\\\\'",
        b"\"a\"b",
        b"'a",
        b"a\"b c\" d'e f'",
        b"\"\" ''",
        b"a\x0bb \x0bc \"d\"\x0be",
        b"\tx\t\ty ",
        b"x\r",
    ];
    for (i, line) in lines.iter().enumerate() {
        let key = format!("list{i}");
        let mut input = format!("RPUSH {key} ").into_bytes();
        input.extend_from_slice(line);
        input.extend_from_slice(b"\r\n");
        // Ours: the arguments after RPUSH and the key, which LRANGE gives back; or the error.
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&input[..]);
        let mut args = Vec::new();
        let parsed = parser.next(&mut buf, &mut args, &OPEN);
        input.extend_from_slice(format!("LRANGE {key} 0 -1\r\n").as_bytes());
        let reply = redis.exchange(&input);
        let want = match parsed {
            Ok(Parsed::Command) => {
                let ours: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
                let mut want = format!(":{}\r\n", ours.len()).into_bytes();
                let mut out = BytesMut::new();
                let mut r = Reply::new(&mut out, Protocol::Resp2);
                r.array(ours.len());
                for a in &ours {
                    r.bulk(a);
                }
                want.extend_from_slice(&out);
                want
            }
            Err(e) => e.reply_bytes(),
            Ok(other) => panic!("{other:?} for {:?}", show(line)),
        };
        assert_eq!(show(&reply), show(&want), "line {:?}", show(line));
        assert_eq!(reply, want, "line {:?}", show(line));
    }
}

#[test]
fn unauthenticated_limits_match_redis() {
    let redis = Redis::start(&["--requirepass", "secret"]);
    let locked = ParseLimits {
        max_arg_bytes: 1 << 20,
        auth_required: true,
    };
    for input in [
        &b"*11\r\n"[..],
        b"*10\r\n",
        b"*1\r\n$16385\r\n",
        b"*1\r\n$16384\r\n",
    ] {
        compare(&redis, input, &locked);
    }
}

#[test]
fn encoded_replies_match_redis() {
    let redis = Redis::start(&[]);
    // Everything Redis writes after its HELLO 3 reply, which ends with the empty module list.
    let resp3 = |input: &[u8]| {
        let all = redis.exchange(&[&b"HELLO 3\r\n"[..], input].concat());
        let end = b"$7\r\nmodules\r\n*0\r\n";
        let at = all
            .windows(end.len())
            .position(|w| w == end)
            .expect("a HELLO 3 reply");
        all[at + end.len()..].to_vec()
    };

    // Doubles (ZSCORE is addReplyDouble), in both protocols.
    for (i, d) in [
        0.1,
        1.0 / 3.0,
        -2.5,
        1e17,
        1.5e-7,
        0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ]
    .into_iter()
    .enumerate()
    {
        let score = if d.is_infinite() {
            if d > 0.0 {
                "inf".to_owned()
            } else {
                "-inf".to_owned()
            }
        } else {
            format!("{d:e}")
        };
        let setup = format!("ZADD z{i} {score} m\r\n");
        let _ = redis.exchange(setup.as_bytes());
        let get = format!("ZSCORE z{i} m\r\n");
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let theirs = match proto {
                Protocol::Resp2 => redis.exchange(get.as_bytes()),
                Protocol::Resp3 => resp3(get.as_bytes()),
            };
            let mut ours = BytesMut::new();
            Reply::new(&mut ours, proto).double(d);
            assert_eq!(show(&ours), show(&theirs), "{d} in {proto:?}");
            assert_eq!(&ours[..], &theirs[..]);
        }
    }

    // A null and the empty map and set headers.
    let cases: [(&[u8], WriteReply); 3] = [
        (b"GET missing\r\n", |r| r.null()),
        (b"HGETALL missing\r\n", |r| r.map(0)),
        (b"SMEMBERS missing\r\n", |r| r.set(0)),
    ];
    for (input, write) in cases {
        for proto in [Protocol::Resp2, Protocol::Resp3] {
            let theirs = match proto {
                Protocol::Resp2 => redis.exchange(input),
                Protocol::Resp3 => resp3(input),
            };
            let mut ours = BytesMut::new();
            write(&mut Reply::new(&mut ours, proto));
            assert_eq!(show(&ours), show(&theirs), "{} in {proto:?}", show(input));
            assert_eq!(&ours[..], &theirs[..]);
        }
    }

    // INFO is a verbatim "txt" string in RESP3 and a bulk string in RESP2; re-encode the text
    // Redis sent and compare the framing.
    let info = resp3(b"INFO server\r\n");
    let colon = info
        .iter()
        .position(|&b| b == b':')
        .expect("a verbatim string");
    let text = &info[colon + 1..info.len() - 2];
    let mut ours = BytesMut::new();
    Reply::new(&mut ours, Protocol::Resp3).verbatim("txt", text);
    assert_eq!(show(&ours), show(&info));
    assert_eq!(&ours[..], &info[..]);
    let mut ours2 = BytesMut::new();
    Reply::new(&mut ours2, Protocol::Resp2).verbatim("txt", text);
    assert!(ours2.starts_with(format!("${}\r\n", text.len()).as_bytes()));
}
