//! Differential tests: `shardkv::redis_value` against a live Redis 7.0 `redis-server`.
//!
//! Each test starts its own `redis-server` on a free loopback port (no persistence), drives it
//! with a tiny RESP2 client written here (pipelined: all commands written, then every reply
//! read), and compares each reply with what our pure functions compute. Inputs are random from
//! a fixed seed, so a failure reproduces. If `redis-server` is not installed the tests fail
//! (install it with `apt-get install redis-server`); they never skip.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shardkv::redis_value::bits::{bit_offset, bitcount, bitpos, getbit, setbit, setbit_value};
use shardkv::redis_value::encoding::{string_encoding, ValueOrigin};
use shardkv::redis_value::glob::glob_match;
use shardkv::redis_value::integer::{apply_increment, decrby_increment, incrby_increment};
use shardkv::redis_value::lcs::{lcs, parse_lcs_options, LcsReply};
use shardkv::redis_value::long_double::incr_by_float;
use shardkv::redis_value::range::{
    getrange, getrange_arguments, setrange, setrange_offset, SetRange,
};
use shardkv::redis_value::{ValueError, PROTO_MAX_BULK_LEN};

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Status(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

/// A `redis-server` child process, killed on drop, and a connection to it.
struct Redis {
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pending: Vec<u8>,
    queued: usize,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// Starts a private `redis-server`. Other processes on this machine may start servers on
    /// loopback ports too, so a port that turns out to be taken (our child exits, or the server
    /// that answers is not our child) is given up and another one tried.
    fn start() -> Redis {
        for _attempt in 0..10 {
            if let Some(redis) = Redis::try_start() {
                return redis;
            }
        }
        panic!("could not start a private redis-server after 10 attempts");
    }

    fn try_start() -> Option<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required for these tests: apt-get install redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            if child.try_wait().ok().flatten().is_some() {
                return None; // Exited: most likely the port was taken.
            }
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(error) => panic!("redis-server did not start on port {port}: {error}"),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let writer = stream.try_clone().expect("clone stream");
        let pid = child.id();
        let mut redis = Redis {
            child,
            reader: BufReader::new(stream),
            writer,
            pending: Vec::new(),
            queued: 0,
        };
        let version = redis.call(&[&b"INFO"[..], b"server"]);
        let Reply::Bulk(Some(info)) = version else {
            panic!("INFO failed: {version:?}");
        };
        let info = String::from_utf8_lossy(&info).to_string();
        if !info.contains(&format!("process_id:{pid}\r\n")) {
            return None; // Someone else's server on that port; dropping kills our child.
        }
        assert!(
            info.contains("redis_version:7.0."),
            "need Redis 7.0, got: {info}"
        );
        Some(redis)
    }

    /// Queues one command (sent at the next `replies`).
    fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.pending
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            let arg = arg.as_ref();
            self.pending
                .extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            self.pending.extend_from_slice(arg);
            self.pending.extend_from_slice(b"\r\n");
        }
        self.queued += 1;
    }

    /// Sends the queued commands and reads one reply each.
    fn replies(&mut self) -> Vec<Reply> {
        self.writer.write_all(&self.pending).expect("write");
        self.pending.clear();
        let count = std::mem::take(&mut self.queued);
        (0..count).map(|_| self.read_reply()).collect()
    }

    fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.queue(args);
        self.replies().pop().expect("one reply")
    }

    fn read_line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader
            .read_until(b'\n', &mut line)
            .expect("read a reply from redis-server");
        assert!(line.ends_with(b"\r\n"), "bad line {line:?}");
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("utf8 header")
    }

    fn read_reply(&mut self) -> Reply {
        let line = self.read_line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(rest.parse().expect("integer")),
            "$" => {
                let len: i64 = rest.parse().expect("bulk length");
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut body = vec![0u8; len as usize + 2];
                self.reader.read_exact(&mut body).expect("bulk");
                body.truncate(len as usize);
                Reply::Bulk(Some(body))
            }
            "*" => {
                let len: i64 = rest.parse().expect("array length");
                if len < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..len).map(|_| self.read_reply()).collect()))
            }
            _ => panic!("unknown reply {line}"),
        }
    }
}

/// A reply for failure messages, bulk strings as (lossy) text.
fn show(reply: &Reply) -> String {
    match reply {
        Reply::Bulk(Some(bytes)) => format!("{:?}", String::from_utf8_lossy(bytes)),
        other => format!("{other:?}"),
    }
}

fn error(error: ValueError) -> Reply {
    Reply::Error(error.to_string())
}

fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
    Reply::Bulk(Some(bytes.into()))
}

/// `count` random decimal digits.
fn digits(rng: &mut StdRng, count: std::ops::Range<usize>) -> String {
    let count = rng.gen_range(count);
    (0..count)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

/// Random float text: mostly valid in many shapes, some edge and invalid forms.
fn random_float_text(rng: &mut StdRng) -> String {
    const SPECIAL: &[&str] = &[
        "0",
        "-0",
        "0.0",
        "-0.0",
        "1e4932",
        "1.18973149535723176502e4932",
        "-1.18973149535723176502e4932",
        "1.18973149535723176508e4932",
        "1.2e4932",
        "3.64519953188247460253e-4951",
        "1.82259976594123730126e-4951",
        "1.8225997659412373012e-4951",
        "1.8225997659412373013e-4951",
        "1e-4951",
        "1e-4952",
        "2e-4951",
        "0x1p-16445",
        "0x1p-16446",
        "0x1.8p-16446",
        "0x1p16383",
        "0x1.fffffffffffffffep16383",
        "0x1.ffffffffffffffffp16383",
        "0x1.FFFFFFFFFFFFFFFEP16383",
        "inf",
        "-inf",
        "Infinity",
        "-INFINITY",
        "infinit",
        "nan",
        "NaN",
        "-nan",
        "nan(123)",
        "+5",
        ".5",
        "5.",
        "1e",
        " 1",
        "1 ",
        "\t1",
        "0x",
        "0x1p",
        "0x.8",
        "0x1.8p1",
        "-0x10",
        "1e+5",
        "1E5",
        "1e-5",
        "00001.5",
        "-.5e1",
        "+.e1",
        ".",
        "-",
        "+",
        "",
        "1e99999999999999999999",
        "0e99999999999999999999",
        "1e-99999999999999999999",
        "1..2",
        "1e5.5",
        "1_0",
        "١",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "0.1",
        "0.2",
        "0.3",
        "1.1",
        "2.2",
        "3.3",
        "10.5",
        "5.0e3",
        "2.0e2",
        "3.0e3",
        "1.5e-7",
        "123456789.123456789",
        "1\0",
        "\x001",
        "1\n",
        "0x1P-16445",
        "-0x0p99999999999999999",
    ];
    let sign = if rng.gen_bool(0.3) { "-" } else { "" };
    match rng.gen_range(0..12) {
        0 => rng.gen::<i64>().to_string(),
        1..=3 => {
            let whole = rng.gen_range(1..8);
            let frac = rng.gen_range(0..8);
            format!(
                "{sign}{}.{}",
                digits(rng, whole..whole + 1),
                digits(rng, frac..frac + 1)
            )
        }
        4 => format!("{sign}{}e{}", digits(rng, 1..6), rng.gen_range(-30..30)),
        5 => format!(
            "{sign}{}.{}e{}",
            digits(rng, 1..1 + 1),
            digits(rng, 0..25),
            rng.gen_range(-4960..4940)
        ),
        6 => {
            let value = f64::from_bits(rng.gen::<u64>());
            if value.is_finite() {
                format!("{value:e}")
            } else {
                "1".to_string()
            }
        }
        7 | 8 => SPECIAL[rng.gen_range(0..SPECIAL.len())].to_string(),
        9 => format!("{sign}{}.{}", digits(rng, 1..30), digits(rng, 1..40)),
        10 => format!("{sign}0.{}", digits(rng, 15..22)),
        _ => format!(
            "{sign}0x{:x}.{:x}p{}",
            rng.gen::<u32>(),
            rng.gen::<u64>(),
            rng.gen_range(-200..200)
        ),
    }
}

/// The exact decimal text of `odd * 2^-shift` (`shift` >= 0), via `odd * 5^shift / 10^shift`.
fn exact_dyadic_text(odd: u128, shift: u32) -> String {
    const BASE: u64 = 1_000_000_000;
    let mut limbs = vec![(odd % 1_000_000_000) as u64];
    let mut rest = odd / 1_000_000_000;
    while rest > 0 {
        limbs.push((rest % 1_000_000_000) as u64);
        rest /= 1_000_000_000;
    }
    for _ in 0..shift {
        let mut carry = 0;
        for limb in &mut limbs {
            let wide = *limb * 5 + carry;
            *limb = wide % BASE;
            carry = wide / BASE;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut digits = limbs.last().map(u64::to_string).unwrap_or_default();
    for limb in limbs.iter().rev().skip(1) {
        digits.push_str(&format!("{limb:09}"));
    }
    let shift = shift as usize;
    if digits.len() <= shift {
        digits = format!("{}{digits}", "0".repeat(shift + 1 - digits.len()));
    }
    let (whole, fraction) = digits.split_at(digits.len() - shift);
    format!("{whole}.{fraction}")
}

/// Texts at and just past the midpoint of two adjacent 80-bit values (a 65-bit odd numerator),
/// which only a correctly rounding, ties-to-even parser gets right, and dyadic values whose
/// 18th decimal is an exact 5 (ties for "%.17Lf").
fn hard_float_text(rng: &mut StdRng) -> String {
    let sign = if rng.gen_bool(0.3) { "-" } else { "" };
    match rng.gen_range(0..4) {
        0 | 1 => {
            let odd = (1u128 << 64) | (u128::from(rng.gen::<u64>()) | 1);
            let text = exact_dyadic_text(odd, rng.gen_range(0..120));
            let tail = if rng.gen_bool(0.5) {
                ""
            } else {
                "000000000001"
            };
            format!("{sign}{text}{tail}")
        }
        2 if rng.gen_bool(0.3) => {
            // Around the subnormal underflow boundary (half the smallest subnormal).
            if rng.gen_bool(0.5) {
                format!(
                    "{sign}1.8225997659412373{:04}e-4951",
                    rng.gen_range(0..10_000)
                )
            } else {
                format!(
                    "{sign}0x{:x}p-{}",
                    rng.gen::<u16>(),
                    rng.gen_range(16440..16470)
                )
            }
        }
        2 => {
            let odd = u128::from(rng.gen::<u32>() | 1);
            format!("{sign}{}", exact_dyadic_text(odd, 18))
        }
        _ => format!(
            "{sign}0x{:x}p-{}",
            rng.gen::<u64>() | 1,
            rng.gen_range(18..30)
        ),
    }
}

#[test]
fn incrbyfloat_matches_redis() {
    let mut redis = Redis::start();
    let mut rng = StdRng::seed_from_u64(0x1f80);
    let mut cases = Vec::new();
    for index in 0..9000 {
        let (current, increment) = if index % 3 == 0 {
            (hard_float_text(&mut rng), hard_float_text(&mut rng))
        } else {
            (random_float_text(&mut rng), random_float_text(&mut rng))
        };
        let key = format!("f{index}");
        redis.queue(&[&b"SET"[..], key.as_bytes(), current.as_bytes()]);
        redis.queue(&[&b"INCRBYFLOAT"[..], key.as_bytes(), increment.as_bytes()]);
        cases.push((current, increment));
    }
    // Long texts around Redis's 5 KiB buffer.
    for len in [5118usize, 5119, 5120, 5121, 6000] {
        for text in [
            format!("0.{}", "3".repeat(len - 2)),
            format!("1{}", "0".repeat(len - 1)),
        ] {
            let key = format!("long{len}{}", &text[..2]);
            redis.queue(&[&b"SET"[..], key.as_bytes(), b"1"]);
            redis.queue(&[&b"INCRBYFLOAT"[..], key.as_bytes(), text.as_bytes()]);
            cases.push(("1".to_string(), text));
        }
    }
    let replies = redis.replies();
    let mut mismatches = Vec::new();
    for ((current, increment), pair) in cases.iter().zip(replies.chunks(2)) {
        assert_eq!(pair[0], Reply::Status("OK".into()));
        let ours = match incr_by_float(Some(current.as_bytes()), increment.as_bytes()) {
            Ok(text) => bulk(text),
            Err(e) => error(e),
        };
        if ours != pair[1] {
            mismatches.push(format!(
                "{current:?} + {increment:?}: redis {}, ours {}",
                show(&pair[1]),
                show(&ours)
            ));
        }
    }
    // A running total, each step reparsing the text the previous step stored.
    let mut ours = None::<String>;
    let mut increments = Vec::new();
    for _ in 0..1000 {
        let increment = format!("{}", rng.gen_range(-1000.0..1000.0f64) / 7.0);
        redis.queue(&[&b"INCRBYFLOAT"[..], b"running", increment.as_bytes()]);
        increments.push(increment);
    }
    for (increment, reply) in increments.iter().zip(redis.replies()) {
        let step = incr_by_float(ours.as_deref().map(str::as_bytes), increment.as_bytes());
        let expected = step.clone().map_or_else(error, bulk);
        if expected != reply {
            mismatches.push(format!(
                "running + {increment:?}: redis {reply:?}, ours {expected:?}"
            ));
            break;
        }
        ours = step.ok();
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn integer_commands_match_redis() {
    let mut redis = Redis::start();
    let mut rng = StdRng::seed_from_u64(64);
    const TEXTS: &[&str] = &[
        "0",
        "-0",
        "1",
        "-1",
        "01",
        "+1",
        " 1",
        "1 ",
        "",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "-9223372036854775809",
        "1.0",
        "1e3",
        "99999999999999999999",
        "-9999999999999999999",
        "abc",
        "00",
        "0x10",
    ];
    let text = |rng: &mut StdRng| -> String {
        match rng.gen_range(0..4) {
            0 => TEXTS[rng.gen_range(0..TEXTS.len())].to_string(),
            1 => rng.gen::<i64>().to_string(),
            2 => (i64::MAX - rng.gen_range(0..3)).to_string(),
            _ => rng.gen_range(-100i64..100).to_string(),
        }
    };
    let mut cases = Vec::new();
    for index in 0..3000 {
        let (current, argument) = (text(&mut rng), text(&mut rng));
        let command: &[u8] = [&b"INCRBY"[..], b"DECRBY", b"INCR", b"DECR"][index % 4];
        let key = format!("i{index}");
        redis.queue(&[&b"SET"[..], key.as_bytes(), current.as_bytes()]);
        if command.len() > 4 {
            redis.queue(&[command, key.as_bytes(), argument.as_bytes()]);
        } else {
            redis.queue(&[command, key.as_bytes()]);
        }
        cases.push((command, current, argument));
    }
    let replies = redis.replies();
    for ((command, current, argument), pair) in cases.iter().zip(replies.chunks(2)) {
        let increment = match *command {
            b"INCRBY" => incrby_increment(argument.as_bytes()),
            b"DECRBY" => decrby_increment(argument.as_bytes()),
            b"INCR" => Ok(1),
            _ => Ok(-1),
        };
        let ours = increment
            .and_then(|increment| apply_increment(Some(current.as_bytes()), increment))
            .map_or_else(error, Reply::Integer);
        assert_eq!(
            ours,
            pair[1],
            "{} on {current:?} by {argument:?}",
            String::from_utf8_lossy(command)
        );
    }
}

#[test]
fn glob_matches_redis_keys() {
    let mut redis = Redis::start();
    let mut rng = StdRng::seed_from_u64(0x61);
    const KEY_BYTES: &[u8] = b"abAB-^[]\\*?\xe9\xc3\x80z";
    const PATTERN_BYTES: &[u8] = b"abAB-^[]\\*?*?[\xe9\xc3\x80z";
    // The empty key: only KEYS "*" (which skips matching) and the empty pattern list it.
    let mut keys = std::collections::BTreeSet::from([Vec::new()]);
    while keys.len() < 401 {
        let len = rng.gen_range(1..7);
        let key: Vec<u8> = (0..len)
            .map(|_| KEY_BYTES[rng.gen_range(0..KEY_BYTES.len())])
            .collect();
        keys.insert(key);
    }
    for key in &keys {
        redis.queue(&[&b"SET"[..], key, b"1"]);
    }
    redis.replies();
    let mut patterns = Vec::new();
    for _ in 0..1500 {
        let len = rng.gen_range(0..8);
        let pattern: Vec<u8> = (0..len)
            .map(|_| PATTERN_BYTES[rng.gen_range(0..PATTERN_BYTES.len())])
            .collect();
        redis.queue(&[&b"KEYS"[..], &pattern]);
        patterns.push(pattern);
    }
    for (pattern, reply) in patterns.iter().zip(redis.replies()) {
        let Reply::Array(Some(items)) = reply else {
            panic!("KEYS reply {reply:?}");
        };
        let mut theirs: Vec<Vec<u8>> = items
            .into_iter()
            .map(|item| match item {
                Reply::Bulk(Some(key)) => key,
                other => panic!("KEYS item {other:?}"),
            })
            .collect();
        theirs.sort();
        // KEYS "*" lists every key without matching (the glue must do the same).
        let ours: Vec<Vec<u8>> = keys
            .iter()
            .filter(|key| pattern == b"*" || glob_match(pattern, key, false))
            .cloned()
            .collect();
        assert_eq!(
            ours,
            theirs,
            "pattern {:?}",
            String::from_utf8_lossy(pattern)
        );
    }
}

#[test]
fn ranges_match_redis() {
    let mut redis = Redis::start();
    let mut rng = StdRng::seed_from_u64(0x5e7);
    let index_text = |rng: &mut StdRng| -> String {
        match rng.gen_range(0..10) {
            0 => [
                "x",
                "",
                "1.5",
                "-9223372036854775808",
                "9223372036854775807",
                "-0",
            ][rng.gen_range(0..6)]
            .to_string(),
            _ => rng.gen_range(-20i64..20).to_string(),
        }
    };
    let mut cases = Vec::new();
    for index in 0..2000 {
        let value: Vec<u8> = (0..rng.gen_range(0..12))
            .map(|_| rng.gen_range(b'a'..=b'z'))
            .collect();
        let (start, end) = (index_text(&mut rng), index_text(&mut rng));
        let patch: Vec<u8> = (0..rng.gen_range(0..4))
            .map(|_| rng.gen_range(b'A'..=b'Z'))
            .collect();
        let offset = index_text(&mut rng);
        let key = format!("r{index}");
        let exists = !value.is_empty() || rng.gen_bool(0.5);
        if exists {
            redis.queue(&[&b"SET"[..], key.as_bytes(), &value]);
        } else {
            redis.queue(&[&b"DEL"[..], key.as_bytes()]);
        }
        redis.queue(&[
            b"GETRANGE",
            key.as_bytes(),
            start.as_bytes(),
            end.as_bytes(),
        ]);
        redis.queue(&[&b"SETRANGE"[..], key.as_bytes(), offset.as_bytes(), &patch]);
        redis.queue(&[&b"GET"[..], key.as_bytes()]);
        cases.push((value, exists, start, end, patch, offset));
    }
    // Offsets at the proto-max-bulk-len boundary (no allocation happens on refusal).
    for offset in [PROTO_MAX_BULK_LEN - 1, PROTO_MAX_BULK_LEN] {
        redis.queue(&[&b"DEL"[..], b"big"]);
        redis.queue(&[&b"GETRANGE"[..], b"big", b"0", b"0"]);
        redis.queue(&[
            &b"SETRANGE"[..],
            b"big",
            offset.to_string().as_bytes(),
            b"ab",
        ]);
        redis.queue(&[&b"GET"[..], b"nothing"]);
        cases.push((
            Vec::new(),
            false,
            "0".into(),
            "0".into(),
            b"ab".to_vec(),
            offset.to_string(),
        ));
    }
    let replies = redis.replies();
    for ((value, exists, start, end, patch, offset), replies) in cases.iter().zip(replies.chunks(4))
    {
        let context = format!(
            "value {value:?} exists {exists} range {start}..{end} setrange {offset} {patch:?}"
        );
        let expected_range = match getrange_arguments(start.as_bytes(), end.as_bytes()) {
            Err(e) => error(e),
            Ok(_) if !exists => bulk(Vec::new()),
            Ok((start, end)) => bulk(value[getrange(value.len(), start, end)].to_vec()),
        };
        assert_eq!(expected_range, replies[1], "GETRANGE {context}");
        let current = exists.then_some(value.as_slice());
        let outcome = setrange_offset(offset.as_bytes())
            .and_then(|offset| setrange(current, offset, patch, usize::MAX));
        match outcome {
            Err(e) => assert_eq!(error(e), replies[2], "SETRANGE {context}"),
            Ok(SetRange::Unchanged { len }) => {
                assert_eq!(Reply::Integer(len as i64), replies[2], "SETRANGE {context}")
            }
            Ok(SetRange::Written(new)) => {
                assert_eq!(
                    Reply::Integer(new.len() as i64),
                    replies[2],
                    "SETRANGE {context}"
                );
                assert_eq!(bulk(new), replies[3], "SETRANGE {context}");
            }
        }
    }
}

#[test]
fn bit_commands_match_redis() {
    let mut redis = Redis::start();
    let mut rng = StdRng::seed_from_u64(0xb175);
    let number = |rng: &mut StdRng| -> String {
        match rng.gen_range(0..12) {
            0 => [
                "x",
                "",
                "-0",
                "1.0",
                "9223372036854775807",
                "-9223372036854775808",
            ][rng.gen_range(0..6)]
            .to_string(),
            _ => rng.gen_range(-30i64..30).to_string(),
        }
    };
    const UNITS: &[&str] = &["BIT", "BYTE", "bit", "Byte", "bits", ""];
    let mut cases = Vec::new();
    for index in 0..3000 {
        let value: Vec<u8> = (0..rng.gen_range(0..5))
            .map(|_| [0u8, 0xff, 0x0f, 0xf0, 0x81, rng.gen()][rng.gen_range(0..6)])
            .collect();
        let exists = !value.is_empty() || rng.gen_bool(0.5);
        let key = format!("b{index}");
        let mut count_args = Vec::new();
        for _ in 0..[0, 1, 2, 2, 3, 3, 4][rng.gen_range(0..7)] {
            count_args.push(number(&mut rng));
        }
        if count_args.len() == 3 {
            count_args[2] = UNITS[rng.gen_range(0..UNITS.len())].to_string();
        }
        let mut pos_args =
            vec![["0", "1", "1", "0", "2", "-1", "x"][rng.gen_range(0..7)].to_string()];
        for _ in 0..[0, 1, 2, 3, 3, 3, 4][rng.gen_range(0..7)] {
            pos_args.push(number(&mut rng));
        }
        if pos_args.len() >= 4 {
            pos_args[3] = UNITS[rng.gen_range(0..UNITS.len())].to_string();
        }
        let offset = match rng.gen_range(0..8) {
            0 => ["4294967295", "4294967296", "-1", "x"][rng.gen_range(0..4)].to_string(),
            _ => rng.gen_range(0..40).to_string(),
        };
        let bit = ["0", "1", "1", "0", "2", "-1", "x"][rng.gen_range(0..7)].to_string();
        if exists {
            redis.queue(&[&b"SET"[..], key.as_bytes(), &value]);
        } else {
            redis.queue(&[&b"DEL"[..], key.as_bytes()]);
        }
        let mut command = vec!["BITCOUNT".to_string(), key.clone()];
        command.extend(count_args.iter().cloned());
        redis.queue(&command);
        let mut command = vec!["BITPOS".to_string(), key.clone()];
        command.extend(pos_args.iter().cloned());
        redis.queue(&command);
        redis.queue(&[&b"GETBIT"[..], key.as_bytes(), offset.as_bytes()]);
        // SETBIT only at offsets that stay small, so the server never allocates 512 MB.
        let small_offset = if offset.len() > 3 {
            "5".to_string()
        } else {
            offset.clone()
        };
        redis.queue(&[
            b"SETBIT",
            key.as_bytes(),
            small_offset.as_bytes(),
            bit.as_bytes(),
        ]);
        redis.queue(&[&b"GET"[..], key.as_bytes()]);
        cases.push((
            value,
            exists,
            count_args,
            pos_args,
            offset,
            small_offset,
            bit,
        ));
    }
    let replies = redis.replies();
    for ((value, exists, count_args, pos_args, offset, small_offset, bit), replies) in
        cases.iter().zip(replies.chunks(6))
    {
        let current = exists.then_some(value.as_slice());
        let context = format!("value {value:?} exists {exists}");
        let ours = bitcount(current, count_args).map_or_else(error, Reply::Integer);
        assert_eq!(ours, replies[1], "BITCOUNT {count_args:?} {context}");
        let ours = bitpos(current, pos_args).map_or_else(error, Reply::Integer);
        assert_eq!(ours, replies[2], "BITPOS {pos_args:?} {context}");
        let ours = bit_offset(offset.as_bytes())
            .map(|offset| i64::from(getbit(current.unwrap_or_default(), offset)))
            .map_or_else(error, Reply::Integer);
        assert_eq!(ours, replies[3], "GETBIT {offset} {context}");
        let mut new = value.clone();
        let ours = bit_offset(small_offset.as_bytes()).and_then(|offset| {
            let on = setbit_value(bit.as_bytes())?;
            setbit(&mut new, offset, on, usize::MAX)
        });
        match ours {
            Ok(old) => {
                assert_eq!(
                    Reply::Integer(i64::from(old)),
                    replies[4],
                    "SETBIT {small_offset} {bit} {context}"
                );
                assert_eq!(
                    bulk(new),
                    replies[5],
                    "SETBIT {small_offset} {bit} {context}"
                );
            }
            Err(e) => assert_eq!(
                error(e),
                replies[4],
                "SETBIT {small_offset} {bit} {context}"
            ),
        }
    }
}

fn lcs_reply(reply: LcsReply) -> Reply {
    match reply {
        LcsReply::Sequence(bytes) => bulk(bytes),
        LcsReply::Length(len) => Reply::Integer(len as i64),
        LcsReply::Matches {
            matches,
            len,
            with_match_len,
        } => {
            let pair = |(start, end): (u32, u32)| {
                Reply::Array(Some(vec![
                    Reply::Integer(start.into()),
                    Reply::Integer(end.into()),
                ]))
            };
            let items = matches
                .into_iter()
                .map(|found| {
                    let mut item = vec![pair(found.a), pair(found.b)];
                    if with_match_len {
                        item.push(Reply::Integer(found.len.into()));
                    }
                    Reply::Array(Some(item))
                })
                .collect();
            Reply::Array(Some(vec![
                bulk("matches"),
                Reply::Array(Some(items)),
                bulk("len"),
                Reply::Integer(len as i64),
            ]))
        }
    }
}

#[test]
fn lcs_matches_redis() {
    let mut redis = Redis::start();
    let mut rng = StdRng::seed_from_u64(0x1c5);
    const OPTIONS: &[&str] = &[
        "LEN",
        "IDX",
        "idx",
        "WITHMATCHLEN",
        "MINMATCHLEN",
        "2",
        "0",
        "-1",
        "x",
        "FOO",
    ];
    let mut cases = Vec::new();
    for index in 0..1500 {
        let text = |rng: &mut StdRng| -> Vec<u8> {
            (0..rng.gen_range(0..14))
                .map(|_| rng.gen_range(b'a'..=b'd'))
                .collect()
        };
        let (a, b) = (text(&mut rng), text(&mut rng));
        let mut options = Vec::new();
        for _ in 0..rng.gen_range(0..4) {
            options.push(OPTIONS[rng.gen_range(0..OPTIONS.len())].to_string());
        }
        if rng.gen_bool(0.3) {
            options = vec![
                "IDX".into(),
                "MINMATCHLEN".into(),
                rng.gen_range(0..4).to_string(),
            ];
            if rng.gen_bool(0.5) {
                options.push("WITHMATCHLEN".into());
            }
        }
        let (ka, kb) = (format!("a{index}"), format!("b{index}"));
        redis.queue(&[&b"SET"[..], ka.as_bytes(), &a]);
        redis.queue(&[&b"SET"[..], kb.as_bytes(), &b]);
        let mut command = vec!["LCS".to_string(), ka, kb];
        command.extend(options.iter().cloned());
        redis.queue(&command);
        cases.push((a, b, options));
    }
    let replies = redis.replies();
    for ((a, b, options), replies) in cases.iter().zip(replies.chunks(3)) {
        let ours = parse_lcs_options(options)
            .and_then(|parsed| lcs(a, b, &parsed, PROTO_MAX_BULK_LEN))
            .map_or_else(error, lcs_reply);
        assert_eq!(ours, replies[2], "LCS {a:?} {b:?} {options:?}");
    }
}

#[test]
fn object_encoding_matches_redis() {
    let mut redis = Redis::start();
    let values: Vec<Vec<u8>> = vec![
        b"0".to_vec(),
        b"123".to_vec(),
        b"-1".to_vec(),
        b"9999".to_vec(),
        b"10000".to_vec(),
        b"-9223372036854775808".to_vec(),
        b"9223372036854775808".to_vec(),
        b"0123".to_vec(),
        b"+1".to_vec(),
        b"1.5".to_vec(),
        b"".to_vec(),
        vec![b'a'; 44],
        vec![b'a'; 45],
        vec![b'7'; 44],
        b"hello".to_vec(),
    ];
    let mut expected = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let key = format!("e{index}");
        redis.queue(&[&b"SET"[..], key.as_bytes(), value]);
        redis.queue(&[&b"OBJECT"[..], b"ENCODING", key.as_bytes()]);
        expected.push(string_encoding(value, ValueOrigin::Set));
        redis.queue(&[&b"APPEND"[..], key.as_bytes(), b"1"]);
        redis.queue(&[&b"OBJECT"[..], b"ENCODING", key.as_bytes()]);
        let mut appended = value.clone();
        appended.push(b'1');
        expected.push(string_encoding(&appended, ValueOrigin::ModifiedInPlace));
    }
    for (index, increment) in ["1.5", "1e40", "1e50", "0.1", "100"].iter().enumerate() {
        let key = format!("float{index}");
        redis.queue(&[&b"INCRBYFLOAT"[..], key.as_bytes(), increment.as_bytes()]);
        redis.queue(&[&b"OBJECT"[..], b"ENCODING", key.as_bytes()]);
        let text = incr_by_float(None, increment.as_bytes()).expect("valid");
        expected.push(string_encoding(text.as_bytes(), ValueOrigin::FloatCounter));
    }
    redis.queue(&[&b"INCRBY"[..], b"counter", b"5"]);
    redis.queue(&[&b"OBJECT"[..], b"ENCODING", b"counter"]);
    expected.push(string_encoding(b"5", ValueOrigin::IntegerCounter));
    redis.queue(&[&b"SETRANGE"[..], b"ranged", b"0", b"12"]);
    redis.queue(&[&b"OBJECT"[..], b"ENCODING", b"ranged"]);
    expected.push(string_encoding(b"12", ValueOrigin::ModifiedInPlace));
    let replies = redis.replies();
    for (encoding, pair) in expected.iter().zip(replies.chunks(2)) {
        assert_eq!(bulk(encoding.as_str()), pair[1], "after {:?}", pair[0]);
    }
}
