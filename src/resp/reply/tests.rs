//! Exact bytes of every reply in both protocols (the RESP3 shapes and `%.17g` texts were
//! checked against redis-server 7.0.15: ZSCORE, HELLO 3, LOLWUT/INFO verbatim).

use super::*;

/// What `write` appends in `proto`.
fn encoded(proto: Protocol, write: impl FnOnce(&mut Reply<'_>)) -> Vec<u8> {
    let mut out = BytesMut::new();
    write(&mut Reply::new(&mut out, proto));
    out.to_vec()
}

/// `write` gives `resp2` in RESP2 and `resp3` in RESP3.
fn check(write: impl Fn(&mut Reply<'_>), resp2: &[u8], resp3: &[u8]) {
    let two = encoded(Protocol::Resp2, &write);
    let three = encoded(Protocol::Resp3, &write);
    assert_eq!(
        two,
        resp2,
        "RESP2: {:?}",
        String::from_utf8_lossy(&two).into_owned()
    );
    assert_eq!(
        three,
        resp3,
        "RESP3: {:?}",
        String::from_utf8_lossy(&three).into_owned()
    );
}

#[test]
fn scalars() {
    check(|r| r.ok(), b"+OK\r\n", b"+OK\r\n");
    check(|r| r.simple("PONG"), b"+PONG\r\n", b"+PONG\r\n");
    check(|r| r.int(0), b":0\r\n", b":0\r\n");
    check(|r| r.int(-42), b":-42\r\n", b":-42\r\n");
    check(
        |r| r.int(i64::MIN),
        b":-9223372036854775808\r\n",
        b":-9223372036854775808\r\n",
    );
    check(
        |r| r.int(i64::MAX),
        b":9223372036854775807\r\n",
        b":9223372036854775807\r\n",
    );
    check(|r| r.bulk(b""), b"$0\r\n\r\n", b"$0\r\n\r\n");
    check(
        |r| r.bulk(b"a\r\nb\0"),
        b"$5\r\na\r\nb\0\r\n",
        b"$5\r\na\r\nb\0\r\n",
    );
    check(|r| r.null(), b"$-1\r\n", b"_\r\n");
    check(|r| r.null_array(), b"*-1\r\n", b"_\r\n");
    check(|r| r.bool(true), b":1\r\n", b"#t\r\n");
    check(|r| r.bool(false), b":0\r\n", b"#f\r\n");
    check(
        |r| r.big_number("-12345678901234567890123"),
        b"$24\r\n-12345678901234567890123\r\n",
        b"(-12345678901234567890123\r\n",
    );
}

#[test]
fn errors_keep_their_code_and_never_break_the_line() {
    check(
        |r| r.error("ERR syntax error"),
        b"-ERR syntax error\r\n",
        b"-ERR syntax error\r\n",
    );
    check(
        |r| r.error("WRONGTYPE Operation against a key holding the wrong kind of value"),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    );
    // Inner CR/LF become spaces; trailing ones are trimmed (addReplyErrorFormat).
    check(
        |r| r.error("ERR unknown command 'a\r\nb'\r\n"),
        b"-ERR unknown command 'a  b'\r\n",
        b"-ERR unknown command 'a  b'\r\n",
    );
    check(
        |r| r.error_bytes(b"ERR got '\xff'"),
        b"-ERR got '\xff'\r\n",
        b"-ERR got '\xff'\r\n",
    );
    check(|r| r.simple("a\nb\rc"), b"+a b c\r\n", b"+a b c\r\n");
}

#[test]
fn aggregates() {
    check(|r| r.array(0), b"*0\r\n", b"*0\r\n");
    check(|r| r.array(3), b"*3\r\n", b"*3\r\n");
    check(|r| r.map(0), b"*0\r\n", b"%0\r\n");
    check(|r| r.map(7), b"*14\r\n", b"%7\r\n");
    check(|r| r.set(2), b"*2\r\n", b"~2\r\n");
    check(|r| r.push(3), b"*3\r\n", b">3\r\n");
    // A whole HELLO-like map: header then alternating keys and values.
    check(
        |r| {
            r.map(2);
            r.bulk(b"server");
            r.bulk(b"redis");
            r.bulk(b"proto");
            r.int(3);
        },
        b"*4\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n",
        b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n",
    );
}

#[test]
fn verbatim_pads_or_cuts_the_format_to_three_bytes() {
    check(
        |r| r.verbatim("txt", b"hello"),
        b"$5\r\nhello\r\n",
        b"=9\r\ntxt:hello\r\n",
    );
    check(|r| r.verbatim("md", b""), b"$0\r\n\r\n", b"=4\r\nmd :\r\n");
    check(
        |r| r.verbatim("markdown", b"x"),
        b"$1\r\nx\r\n",
        b"=5\r\nmar:x\r\n",
    );
}

#[test]
fn doubles_are_printf_g17() {
    for (d, text) in [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (0.1, "0.10000000000000001"),
        (1.0 / 3.0, "0.33333333333333331"),
        (2.675, "2.6749999999999998"),
        (100.0, "100"),
        (1e16, "10000000000000000"),
        (1e17, "1e+17"),
        (1.5e17, "1.5e+17"),
        (123456789012345680.0, "1.2345678901234568e+17"),
        (0.0001, "0.0001"),
        (0.00001, "1.0000000000000001e-05"),
        (1e-300, "1e-300"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        (5e-324, "4.9406564584124654e-324"),
        (9007199254740993.0, "9007199254740992"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
        (-f64::NAN, "-nan"),
    ] {
        let mut buf = [0u8; 32];
        let len = format_g17(d, &mut buf);
        assert_eq!(std::str::from_utf8(&buf[..len]), Ok(text), "{d:e}");
        let resp2 = format!("${}\r\n{text}\r\n", text.len());
        let resp3 = format!(",{text}\r\n");
        check(|r| r.double(d), resp2.as_bytes(), resp3.as_bytes());
    }
}

#[test]
fn replies_append_to_what_is_already_buffered() {
    let mut out = BytesMut::from(&b"+QUEUED\r\n"[..]);
    let mut reply = Reply::new(&mut out, Protocol::Resp3);
    assert_eq!(reply.protocol(), Protocol::Resp3);
    reply.array(2);
    reply.int(1);
    reply.null();
    assert_eq!(&out[..], b"+QUEUED\r\n*2\r\n:1\r\n_\r\n");
}
