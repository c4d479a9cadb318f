//! What the RESP tests share: a raw RESP client over TCP that returns each reply as its exact
//! bytes, a parsed view of a reply (to normalise what is not deterministic), Debian's real
//! `redis-server` started on a free loopback port as the reference, and either server behind
//! one type.
//!
//! Design: reply boundaries are found by our own small frame scanner (`parse_reply`), which
//! takes any byte in simple strings and errors (Redis echoes binary keys in some error texts)
//! and knows every RESP2 and RESP3 type, so one scanner serves both protocols. The
//! `redis-protocol` crate is the independent check: `decode_with_redis_protocol` decodes a
//! frame with it, and the differential tests assert that it agrees on every frame's length.
//!
//! It must never skip: a missing `redis-server` fails the test and says what to install. Every
//! read has a time-out, so a server that stops answering fails the test instead of hanging it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long one reply may take before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed reply frame.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reply {
    /// A line-shaped frame: `+` `-` `:` `_` `,` `#` `(` and its text (without CRLF).
    Line(u8, Vec<u8>),
    /// A length-prefixed frame: `$` `!` `=`; `None` is RESP2's `$-1`.
    Blob(u8, Option<Vec<u8>>),
    /// An aggregate: `*` `~` `>` (elements) or `%` `|` (keys and values interleaved); `None` is
    /// RESP2's `*-1`.
    Aggregate(u8, Option<Vec<Reply>>),
}

impl Reply {
    /// The exact wire bytes of this frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Line(kind, text) => {
                out.push(*kind);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Blob(kind, None) => {
                out.push(*kind);
                out.extend_from_slice(b"-1\r\n");
            }
            Reply::Blob(kind, Some(data)) => {
                out.push(*kind);
                out.extend_from_slice(format!("{}\r\n", data.len()).as_bytes());
                out.extend_from_slice(data);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Aggregate(kind, None) => {
                out.push(*kind);
                out.extend_from_slice(b"-1\r\n");
            }
            Reply::Aggregate(kind, Some(items)) => {
                out.push(*kind);
                let count = if matches!(kind, b'%' | b'|') {
                    items.len() / 2
                } else {
                    items.len()
                };
                out.extend_from_slice(format!("{count}\r\n").as_bytes());
                for item in items {
                    item.encode_into(out);
                }
            }
        }
    }

    /// Whether this is an error reply (`-` or RESP3's `!`).
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Line(b'-', _) | Reply::Blob(b'!', _))
    }

    /// The integer of a `:` reply.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Reply::Line(b':', text) => std::str::from_utf8(text).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The payload of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Blob(b'$' | b'=', Some(data)) => Some(data),
            Reply::Line(b'+', text) => Some(text),
            _ => None,
        }
    }

    /// The elements of an aggregate.
    pub fn items(&self) -> Option<&[Reply]> {
        match self {
            Reply::Aggregate(_, Some(items)) => Some(items),
            _ => None,
        }
    }
}

/// Why `parse_reply` could not return a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes are needed.
    Incomplete,
    /// The bytes are not RESP at `offset`.
    Malformed { offset: usize, why: &'static str },
}

/// Parses one complete frame at the start of `buf`: the frame and how many bytes it took.
pub fn parse_reply(buf: &[u8]) -> Result<(Reply, usize), ParseError> {
    parse_at(buf, 0, 0)
}

fn line_at(buf: &[u8], start: usize) -> Result<(&[u8], usize), ParseError> {
    let rest = buf.get(start..).ok_or(ParseError::Incomplete)?;
    match rest.windows(2).position(|w| w == b"\r\n") {
        Some(at) => Ok((&rest[..at], start + at + 2)),
        None => Err(ParseError::Incomplete),
    }
}

fn length_at(buf: &[u8], start: usize) -> Result<(i64, usize), ParseError> {
    let (line, next) = line_at(buf, start)?;
    let n = std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(ParseError::Malformed {
            offset: start,
            why: "length is not an integer",
        })?;
    if n < -1 {
        return Err(ParseError::Malformed {
            offset: start,
            why: "negative length",
        });
    }
    Ok((n, next))
}

fn parse_at(buf: &[u8], start: usize, depth: usize) -> Result<(Reply, usize), ParseError> {
    if depth > 64 {
        return Err(ParseError::Malformed {
            offset: start,
            why: "nesting deeper than 64",
        });
    }
    let kind = *buf.get(start).ok_or(ParseError::Incomplete)?;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {
            let (line, next) = line_at(buf, start + 1)?;
            Ok((Reply::Line(kind, line.to_vec()), next))
        }
        b'$' | b'!' | b'=' => {
            let (len, next) = length_at(buf, start + 1)?;
            if len == -1 {
                return Ok((Reply::Blob(kind, None), next));
            }
            let end = next + len as usize;
            if buf.len() < end + 2 {
                return Err(ParseError::Incomplete);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ParseError::Malformed {
                    offset: end,
                    why: "blob not followed by CRLF",
                });
            }
            Ok((Reply::Blob(kind, Some(buf[next..end].to_vec())), end + 2))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let (count, mut next) = length_at(buf, start + 1)?;
            if count == -1 {
                return Ok((Reply::Aggregate(kind, None), next));
            }
            let elements = if matches!(kind, b'%' | b'|') {
                count * 2
            } else {
                count
            };
            let mut items = Vec::new();
            for _ in 0..elements {
                let (item, after) = parse_at(buf, next, depth + 1)?;
                items.push(item);
                next = after;
            }
            Ok((Reply::Aggregate(kind, Some(items)), next))
        }
        _ => Err(ParseError::Malformed {
            offset: start,
            why: "unknown frame type byte",
        }),
    }
}

/// Decodes `frame` (one complete frame's bytes) with the independent `redis-protocol` crate,
/// RESP2 or RESP3 by `protocol`: how many bytes it says the frame took, or its error.
pub fn decode_with_redis_protocol(frame: &[u8], protocol: u8) -> Result<usize, String> {
    let decoded = if protocol == 3 {
        redis_protocol::resp3::decode::complete::decode(frame).map(|d| d.map(|(_, n)| n))
    } else {
        redis_protocol::resp2::decode::decode(frame).map(|d| d.map(|(_, n)| n))
    };
    match decoded {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err("redis-protocol says the frame is incomplete".into()),
        Err(e) => Err(format!("redis-protocol: {e:?}")),
    }
}

/// `bytes` as a quoted string, escaped the way redis-cli prints binary (`"a\r\n\x00"`).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// How a read that may legitimately fail ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// One complete frame.
    Frame(Vec<u8>),
    /// The server closed the connection; what it sent before that is kept.
    Closed { partial: Vec<u8> },
    /// Nothing complete within the time-out.
    TimedOut { partial: Vec<u8> },
    /// The bytes are not RESP.
    Malformed { bytes: Vec<u8>, why: &'static str },
}

/// A raw RESP connection: commands go out as multibulks (or raw bytes), replies come back as
/// the exact bytes of one frame.
pub struct RespConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where it is connected.
    pub addr: SocketAddr,
}

impl RespConn {
    /// Connects, with the read time-out set.
    pub fn connect(addr: SocketAddr) -> RespConn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        RespConn {
            stream,
            buf: Vec::new(),
            addr,
        }
    }

    /// The multibulk encoding of `args`.
    pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Sends `args` as one multibulk command.
    pub fn send(&mut self, args: &[&[u8]]) {
        self.send_raw(&Self::encode_command(args));
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.addr));
    }

    /// Sends bytes, reporting an error instead of panicking (the server may have closed).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The exact bytes of the next complete reply; panics on close, time-out or garbage.
    pub fn read_reply(&mut self) -> Vec<u8> {
        match self.read_outcome(READ_TIMEOUT) {
            ReadOutcome::Frame(frame) => frame,
            other => panic!("{}: expected a reply, got {other:?}", self.addr),
        }
    }

    /// The next reply, parsed.
    pub fn read_parsed(&mut self) -> Reply {
        let frame = self.read_reply();
        parse_reply(&frame).expect("a frame just read parses").0
    }

    /// Sends `args` and returns the exact bytes of its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// `call` with string arguments.
    pub fn call_str(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.call(&args)
    }

    /// The next frame, or how reading ended, waiting at most `within`.
    pub fn read_outcome(&mut self, within: Duration) -> ReadOutcome {
        let deadline = Instant::now() + within;
        loop {
            match parse_reply(&self.buf) {
                Ok((_, used)) => {
                    let frame: Vec<u8> = self.buf.drain(..used).collect();
                    return ReadOutcome::Frame(frame);
                }
                Err(ParseError::Malformed { why, .. }) => {
                    return ReadOutcome::Malformed {
                        bytes: std::mem::take(&mut self.buf),
                        why,
                    }
                }
                Err(ParseError::Incomplete) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return ReadOutcome::TimedOut {
                    partial: std::mem::take(&mut self.buf),
                };
            }
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return ReadOutcome::Closed {
                        partial: std::mem::take(&mut self.buf),
                    }
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    return ReadOutcome::Closed {
                        partial: std::mem::take(&mut self.buf),
                    }
                }
            }
        }
    }

    /// Waits up to `within` for the server to close the connection, returning every byte it
    /// sent before closing; `None` if it was still open at the deadline.
    pub fn read_until_close(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + within;
        let mut all = std::mem::take(&mut self.buf);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Some(all),
                Ok(n) => all.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Some(all),
            }
        }
    }

    /// The underlying stream (to shut down one half, or set options).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// A free loopback port (bound, then released; the caller binds it right away).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's `redis-server` on a free loopback port, with no persistence; killed on drop.
pub struct RedisServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl RedisServer {
    /// Starts `redis-server` with the defaults and waits until it answers PING.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts `redis-server` with `extra` arguments (e.g. `["--maxclients", "10"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut last_error = String::new();
        // A port taken between `free_port` and the bind makes redis-server exit: try again.
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&binary)
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "no",
                    "--logfile",
                    "",
                    "--loglevel",
                    "warning",
                    "--dir",
                    &std::env::temp_dir().to_string_lossy(),
                ])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match child {
                Ok(child) => child,
                Err(e) => panic!(
                    "cannot run {binary}: {e}; these tests compare with the real Redis: \
                     apt-get install redis-server"
                ),
            };
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().unwrap() {
                    last_error = format!("redis-server on port {port} exited: {status}");
                    break;
                }
                if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut stream = stream;
                    let mut reply = [0u8; 7];
                    if stream.write_all(b"PING\r\n").is_ok()
                        && stream.read_exact(&mut reply).is_ok()
                        && &reply == b"+PONG\r\n"
                    {
                        return RedisServer { child, addr };
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last_error.is_empty() {
                last_error = format!("redis-server on port {port} never answered PING");
            }
        }
        panic!("{last_error}");
    }

    /// The process id (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The resident set size of process `pid` in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Either server, behind one type: the tests name what they compare, not how it was started.
pub enum Target {
    /// The real Redis.
    Redis(RedisServer),
    /// shardkv's RESP listener.
    Shardkv(super::Server),
}

impl Target {
    /// Starts shardkv with `args`, or, when `env_switch` is set to 1, a second redis-server (to
    /// prove a harness against Redis itself).
    pub fn shardkv_or_redis(env_switch: &str, args: &[&str]) -> Target {
        if std::env::var(env_switch).as_deref() == Ok("1") {
            Target::Redis(RedisServer::start())
        } else {
            Target::Shardkv(super::Server::start(args))
        }
    }

    /// Where it takes RESP connections.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Redis(r) => r.addr,
            Target::Shardkv(s) => s.resp_addr(),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        match self {
            Target::Redis(r) => r.pid(),
            Target::Shardkv(s) => s.pid(),
        }
    }

    /// "redis-server" or "shardkv", for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Target::Redis(_) => "redis-server",
            Target::Shardkv(_) => "shardkv",
        }
    }

    /// What the server logged (empty for redis-server, whose log is discarded).
    pub fn log(&self) -> String {
        match self {
            Target::Redis(_) => String::new(),
            Target::Shardkv(s) => s.log(),
        }
    }
}
