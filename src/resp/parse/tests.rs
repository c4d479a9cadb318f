//! The parser's rules, one test per rule, plus the split-anywhere equivalence as a proptest.
//! The expected texts and behaviours are Redis 7.0.15's (`networking.c`, `sds.c`); the ones
//! marked in docs/redis-7.0.15-reference.md as run were checked on a real redis-server, and
//! tests/resp_wire_redis.rs compares a set of them live.

use super::*;
use proptest::prelude::*;

/// One result of parsing a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Command(Vec<Vec<u8>>),
    Oversized(usize, Vec<Vec<u8>>),
    Error(ProtocolError),
}

const OPEN: ParseLimits = ParseLimits {
    max_arg_bytes: 1 << 20,
    auth_required: false,
};

const LOCKED: ParseLimits = ParseLimits {
    max_arg_bytes: 1 << 20,
    auth_required: true,
};

/// Feeds `input` in pieces of the given sizes (the rest in one piece), parsing after each
/// piece until `Incomplete` or an error. Returns the outcomes and the bytes left buffered.
fn parse_in_pieces(input: &[u8], pieces: &[usize], limits: &ParseLimits) -> (Vec<Outcome>, usize) {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut args = Vec::new();
    let mut outcomes = Vec::new();
    let mut rest = input;
    let mut sizes = pieces.iter().copied();
    loop {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            match parser.next(&mut buf, &mut args, limits) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Command) => {
                    outcomes.push(Outcome::Command(args.iter().map(|a| a.to_vec()).collect()))
                }
                Ok(Parsed::Oversized { len }) => outcomes.push(Outcome::Oversized(
                    len,
                    args.iter().map(|a| a.to_vec()).collect(),
                )),
                Err(e) => {
                    outcomes.push(Outcome::Error(e));
                    return (outcomes, buf.len());
                }
            }
        }
        if rest.is_empty() {
            return (outcomes, buf.len() + parser.pending_arg_bytes());
        }
    }
}

/// Parses `input` fed at once with `limits`.
fn parse_with(input: &[u8], limits: &ParseLimits) -> Vec<Outcome> {
    parse_in_pieces(input, &[], limits).0
}

/// Parses `input` fed at once, with no auth and a 1 MiB argument limit.
fn parse(input: &[u8]) -> Vec<Outcome> {
    parse_with(input, &OPEN)
}

fn command(args: &[&[u8]]) -> Outcome {
    Outcome::Command(args.iter().map(|a| a.to_vec()).collect())
}

fn error(e: ProtocolError) -> Vec<Outcome> {
    vec![Outcome::Error(e)]
}

#[test]
fn every_error_text_is_redis_s() {
    for (e, text) in [
        (
            ProtocolError::TooBigInlineRequest,
            "Protocol error: too big inline request",
        ),
        (
            ProtocolError::UnbalancedQuotes,
            "Protocol error: unbalanced quotes in request",
        ),
        (
            ProtocolError::TooBigMultibulkCount,
            "Protocol error: too big mbulk count string",
        ),
        (
            ProtocolError::InvalidMultibulkLength,
            "Protocol error: invalid multibulk length",
        ),
        (
            ProtocolError::UnauthenticatedMultibulkLength,
            "Protocol error: unauthenticated multibulk length",
        ),
        (
            ProtocolError::TooBigBulkCount,
            "Protocol error: too big bulk count string",
        ),
        (
            ProtocolError::ExpectedDollar { got: b':' },
            "Protocol error: expected '$', got ':'",
        ),
        (
            ProtocolError::ExpectedDollar { got: b'\r' },
            "Protocol error: expected '$', got ' '",
        ),
        (
            ProtocolError::InvalidBulkLength,
            "Protocol error: invalid bulk length",
        ),
        (
            ProtocolError::UnauthenticatedBulkLength,
            "Protocol error: unauthenticated bulk length",
        ),
    ] {
        assert_eq!(e.to_string(), text);
        assert_eq!(e.reply_bytes(), format!("-ERR {text}\r\n").into_bytes());
    }
    assert_eq!(
        ProtocolError::ExpectedDollar { got: 0xff }.reply_bytes(),
        b"-ERR Protocol error: expected '$', got '\xff'\r\n"
    );
}

#[test]
fn multibulk_commands_and_pipelines() {
    assert_eq!(
        parse(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"),
        vec![command(&[b"PING"]), command(&[b"ECHO", b""])]
    );
    // Binary payloads, CR/LF and NUL included, are taken by length.
    assert_eq!(
        parse(b"*2\r\n$4\r\nECHO\r\n$5\r\n\r\n\0\r*\r\n"),
        vec![command(&[b"ECHO", b"\r\n\0\r*"])]
    );
}

#[test]
fn empty_requests_are_no_command() {
    assert_eq!(
        parse(b"\r\n\n   \r\n*0\r\n*-1\r\n*-7\r\nPING\r\n"),
        vec![command(&[b"PING"])]
    );
    assert_eq!(
        parse(b"*-9223372036854775808\r\nPING\n"),
        vec![command(&[b"PING"])]
    );
}

#[test]
fn terminators_after_headers_and_payloads_are_not_checked() {
    assert_eq!(parse(b"*1\r\n$4\r\nPINGXY"), vec![command(&[b"PING"])]);
    assert_eq!(parse(b"*1\rX$4\rYPING\r\n"), vec![command(&[b"PING"])]);
    // The byte after the \r must have arrived before the header counts as complete.
    assert_eq!(parse_in_pieces(b"*1\r", &[], &OPEN), (vec![], 3));
}

#[test]
fn count_header_errors() {
    for bad in [
        &b"*abc\r\n"[..],
        b"*\r\n",
        b"*01\r\n",
        b"*-0\r\n",
        b"*+1\r\n",
        b"* 1\r\n",
        b"*1 \r\n",
        b"*2147483648\r\n",
        b"*9223372036854775808\r\n",
        b"*100000000000000000000\r\n",
        b"*1\n$4\r\n",
    ] {
        assert_eq!(
            parse(bad),
            error(ProtocolError::InvalidMultibulkLength),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // INT_MAX itself is accepted and waits for its arguments.
    assert_eq!(parse(b"*2147483647\r\n$1\r\na\r\n"), vec![]);
}

#[test]
fn unauthenticated_limits() {
    let eleven = b"*11\r\n";
    assert_eq!(
        parse_with(eleven, &LOCKED),
        error(ProtocolError::UnauthenticatedMultibulkLength)
    );
    assert_eq!(parse_with(eleven, &OPEN), vec![]);
    assert_eq!(parse_with(b"*10\r\n", &LOCKED), vec![]);
    // Negative counts pass the check and are dropped.
    assert_eq!(
        parse_with(b"*-100\r\nPING\r\n", &LOCKED),
        vec![command(&[b"PING"])]
    );

    assert_eq!(
        parse_with(b"*1\r\n$16385\r\n", &LOCKED),
        error(ProtocolError::UnauthenticatedBulkLength)
    );
    let mut ok = b"*1\r\n$16384\r\n".to_vec();
    ok.extend(std::iter::repeat_n(b'x', 16384));
    ok.extend_from_slice(b"\r\n");
    assert_eq!(parse_with(&ok, &LOCKED), vec![command(&[&[b'x'; 16384]])]);
    // Inline requests only have the 64 KB line limit.
    let mut inline = b"SET k ".to_vec();
    inline.extend(std::iter::repeat_n(b'v', 20000));
    inline.extend_from_slice(b" a b c d e f g h i j k\r\n");
    assert!(matches!(&parse_with(&inline, &LOCKED)[..], [Outcome::Command(a)] if a.len() == 14));
}

#[test]
fn bulk_header_errors() {
    for bad in [
        &b"*1\r\n$-1\r\n"[..],
        b"*1\r\n$\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$01\r\n",
        b"*1\r\n$536870913\r\n",
        b"*1\r\n$99999999999999999999\r\n",
    ] {
        assert_eq!(
            parse(bad),
            error(ProtocolError::InvalidBulkLength),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        parse(b"*1\r\n:3\r\n"),
        error(ProtocolError::ExpectedDollar { got: b':' })
    );
    assert_eq!(
        parse(b"*2\r\n$1\r\na\r\n\r\n"),
        error(ProtocolError::ExpectedDollar { got: b'\r' })
    );
    // 512 MB exactly is a valid length (here skipped: it is over max_arg_bytes).
    assert_eq!(parse(b"*1\r\n$536870912\r\n"), vec![]);
}

#[test]
fn errors_stop_after_earlier_commands() {
    assert_eq!(
        parse(b"PING\r\n*1\r\n$x\r\nPING\r\n"),
        vec![
            command(&[b"PING"]),
            Outcome::Error(ProtocolError::InvalidBulkLength)
        ]
    );
}

#[test]
fn line_length_limits_apply_only_to_lines_still_open() {
    let long = vec![b'a'; INLINE_MAX_BYTES + 1];
    assert_eq!(parse(&long), error(ProtocolError::TooBigInlineRequest));
    assert_eq!(parse(&long[..INLINE_MAX_BYTES]), vec![]);
    // A longer line that arrives whole is accepted.
    let mut whole = long.clone();
    whole.push(b'\n');
    assert_eq!(parse(&whole), vec![command(&[&long])]);

    let mut count = b"*".to_vec();
    count.extend(std::iter::repeat_n(b'1', INLINE_MAX_BYTES));
    assert_eq!(parse(&count), error(ProtocolError::TooBigMultibulkCount));
    // With the \r present (as the last byte) Redis waits instead.
    count.push(b'\r');
    assert_eq!(parse(&count), vec![]);

    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(std::iter::repeat_n(b'1', INLINE_MAX_BYTES));
    assert_eq!(parse(&bulk), error(ProtocolError::TooBigBulkCount));
    // The count covers every unparsed byte, not just the line's.
    let mut pipelined = b"*1\r\n$3\r\nGET\r\nPING".to_vec();
    pipelined.extend(std::iter::repeat_n(b' ', INLINE_MAX_BYTES));
    assert_eq!(
        parse(&pipelined),
        vec![
            command(&[b"GET"]),
            Outcome::Error(ProtocolError::TooBigInlineRequest)
        ]
    );
}

#[test]
fn a_nul_byte_hides_the_line_terminator() {
    // strchr stops at the NUL: Redis waits, whatever follows, until the 64 KB limit.
    assert_eq!(parse(b"PI\0NG\r\nPING\r\n"), vec![]);
    assert_eq!(parse(b"*1\0\r\n$4\r\nPING\r\n"), vec![]);
    let mut stuck = b"*1\r\n$4\0\r\nPING\r\n".to_vec();
    assert_eq!(parse(&stuck), vec![]);
    stuck.extend(std::iter::repeat_n(b'\n', INLINE_MAX_BYTES));
    assert_eq!(parse(&stuck), error(ProtocolError::TooBigBulkCount));
}

#[test]
fn inline_splitting_follows_sdssplitargs() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        (b"SET  k\tv\r\n", &[b"SET", b"k", b"v"]),
        (b"PING\n", &[b"PING"]),
        (b"ECHO a\rb\r\n", &[b"ECHO", b"a", b"b"]),
        (b"ECHO \"a\\x41b\"\r\n", &[b"ECHO", b"aAb"]),
        (b"ECHO \"\\x4g\"\r\n", &[b"ECHO", b"x4g"]),
        (b"ECHO \"\\xfF\"\n", &[b"ECHO", b"\xff"]),
        (
            b"ECHO \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n",
            &[b"ECHO", b"\n\r\t\x08\x07\\\"q"],
        ),
        (b"ECHO 'it\\'s' 'a\\nb'\n", &[b"ECHO", b"it's", b"a\\nb"]),
        (b"ECHO a\"b c\"\n", &[b"ECHO", b"ab c"]),
        (b"ECHO a'b c'\n", &[b"ECHO", b"ab c"]),
        (b"ECHO \"\" ''\n", &[b"ECHO", b"", b""]),
        (b"ECHO a\x0bb\n", &[b"ECHO", b"a\x0bb"]),
        (b"ECHO \x0ba\n", &[b"ECHO", b"a"]),
        (b"ECHO \"a\"\x0bb\n", &[b"ECHO", b"a", b"b"]),
        (b"  ECHO x  \r\n", &[b"ECHO", b"x"]),
        // Only the one \r before the \n is dropped; another is a separator.
        (b"ECHO x\r\r\n", &[b"ECHO", b"x"]),
        (b"ECHO \"x\r\"\r\n", &[b"ECHO", b"x\r"]),
    ];
    for (line, want) in cases {
        assert_eq!(
            parse(line),
            vec![command(want)],
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    for bad in [
        &b"ECHO \"a\n"[..],
        b"ECHO 'a\n",
        b"ECHO \"foo\"bar\n",
        b"ECHO 'foo'bar\n",
        b"ECHO \"a\\\"\n",
        b"ECHO \"a\\\n",
    ] {
        assert_eq!(
            parse(bad),
            error(ProtocolError::UnbalancedQuotes),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn arguments_are_not_copied() {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$5\r\nmykey\r\nSET k v\r\n"[..]);
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let mut args = Vec::new();
    assert_eq!(parser.next(&mut buf, &mut args, &OPEN), Ok(Parsed::Command));
    assert_eq!(parser.next(&mut buf, &mut args, &OPEN), Ok(Parsed::Command));
    assert_eq!(args.len(), 3);
    for arg in &args {
        let at = arg.as_ptr() as usize;
        assert!(at >= start && at < end, "argument {arg:?} was copied");
    }
}

#[test]
fn oversized_arguments_are_dropped_as_they_arrive() {
    let limits = ParseLimits {
        max_arg_bytes: 8,
        auth_required: false,
    };
    let mut input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'v', 1000));
    input.extend_from_slice(b"\r\n*1\r\n$4\r\nPING\r\n");

    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut args = Vec::new();
    let mut outcomes = Vec::new();
    let mut most_held = 0;
    for (i, chunk) in input.chunks(100).enumerate() {
        buf.extend_from_slice(chunk);
        loop {
            let parsed = parser.next(&mut buf, &mut args, &limits).expect("valid");
            most_held = most_held.max(buf.len() + parser.pending_arg_bytes());
            match parsed {
                Parsed::Incomplete => break,
                Parsed::Oversized { len } => outcomes.push(Outcome::Oversized(
                    len,
                    args.iter().map(|a| a.to_vec()).collect(),
                )),
                Parsed::Command => {
                    outcomes.push(Outcome::Command(args.iter().map(|a| a.to_vec()).collect()))
                }
            }
        }
        if i == 0 {
            // 27 header bytes, then 73 of the 1002 (payload and CRLF) to drop: none is held,
            // and the hint says what is left.
            assert_eq!((buf.len(), parser.wants_bytes()), (0, 929));
        }
    }
    assert_eq!(
        outcomes,
        vec![
            Outcome::Oversized(1000, vec![b"SET".to_vec(), b"k".to_vec(), vec![]]),
            command(&[b"PING"]),
        ]
    );
    assert!(most_held <= 100, "held {most_held} bytes");

    // An inline argument over the limit is reported the same way.
    assert_eq!(
        parse_with(b"SET k 0123456789\r\n", &limits),
        vec![Outcome::Oversized(
            10,
            vec![b"SET".to_vec(), b"k".to_vec(), vec![]]
        )]
    );
}

#[test]
fn wants_bytes_tells_what_a_bulk_lacks() {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::from(&b"*1\r\n$10\r\n0123"[..]);
    let mut args = Vec::new();
    assert_eq!(
        parser.next(&mut buf, &mut args, &OPEN),
        Ok(Parsed::Incomplete)
    );
    assert_eq!(parser.wants_bytes(), 8);
    assert!(!parser.is_idle());
    buf.extend_from_slice(b"456789\r\n");
    assert_eq!(parser.next(&mut buf, &mut args, &OPEN), Ok(Parsed::Command));
    assert_eq!(parser.wants_bytes(), 0);
    assert!(parser.is_idle());
    assert_eq!(args, vec![Bytes::from_static(b"0123456789")]);
}

#[test]
fn strict_integers_are_string2ll() {
    for (s, want) in [
        (&b"0"[..], Some(0)),
        (b"-1", Some(-1)),
        (b"9223372036854775807", Some(i64::MAX)),
        (b"-9223372036854775808", Some(i64::MIN)),
        (b"9223372036854775808", None),
        (b"-9223372036854775809", None),
        (b"-0", None),
        (b"00", None),
        (b"01", None),
        (b"", None),
        (b"-", None),
        (b"+1", None),
        (b"1a", None),
        (b" 1", None),
        (b"000000000000000000001", None),
    ] {
        assert_eq!(
            crate::redis_value::integer::string2ll(s),
            want,
            "{:?}",
            String::from_utf8_lossy(s)
        );
    }
}

/// One command, as arguments.
fn arb_command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
}

/// Encodes commands as multibulk, or (for arguments without special bytes) inline, with
/// some empty requests in between.
fn encode(commands: &[Vec<Vec<u8>>], style: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, args) in commands.iter().enumerate() {
        let pick = style.get(i).copied().unwrap_or(0);
        let plain = args
            .iter()
            .all(|a| !a.is_empty() && a.iter().all(|b| b.is_ascii_alphanumeric()));
        if pick % 4 == 0 {
            out.extend_from_slice(b"*0\r\n\r\n");
        }
        if plain && pick % 3 == 0 {
            let words: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            out.extend_from_slice(&words.join(&b' '));
            out.extend_from_slice(if pick % 2 == 0 { b"\r\n" } else { b"\n" });
        } else {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn any_split_gives_the_same_commands(
        commands in prop::collection::vec(arb_command(), 1..8),
        style in prop::collection::vec(any::<u8>(), 8),
        pieces in prop::collection::vec(1usize..16, 0..64),
        tail in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut input = encode(&commands, &style);
        let want: Vec<Outcome> = commands.iter().map(|c| Outcome::Command(c.clone())).collect();
        let (got, held) = parse_in_pieces(&input, &pieces, &OPEN);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(held, 0);
        let (one_by_one, _) = parse_in_pieces(&input, &vec![1; input.len()], &OPEN);
        prop_assert_eq!(&one_by_one, &want);

        // Garbage after valid commands: every split still agrees.
        input.extend_from_slice(&tail);
        let whole = parse_in_pieces(&input, &[], &OPEN).0;
        prop_assert_eq!(&parse_in_pieces(&input, &pieces, &OPEN).0, &whole);
        prop_assert_eq!(&parse_in_pieces(&input, &vec![1; input.len()], &OPEN).0, &whole);
    }
}
