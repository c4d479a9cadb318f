//! The properties every parser of outside input must keep, written once and run two ways:
//! by the cargo-fuzz targets in `fuzz/fuzz_targets/` (libFuzzer, nightly) and by the
//! proptests in `tests/parsers_arbitrary.rs` (stable, part of `cargo test`). Both pull this
//! file in as a module with `#[path]`, so the two can never drift apart.
//!
//! Each entry point ([`duration`], [`query`], [`batch`], [`log`], [`resp_parse`]) takes raw bytes exactly as a fuzzer
//! hands them over and panics (an `assert!`) when a property fails; a panic is what libFuzzer
//! records as a crash and what proptest shrinks. Beyond "never panics", each checks what the
//! parser promises: round trips, agreement with a small independent reference, error offsets
//! that point at the offending byte, and bounds.
//!
//! Dependencies: `shardkv` (default features), `serde_json` and `base64` 0.22 (the versions
//! shardkv itself uses).

use std::borrow::Cow;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::BytesMut;
use serde_json::{json, Value};
use shardkv::clock::TICK;
use shardkv::duration::{parse_go_duration, parse_ttl, DurationError, TtlError};
use shardkv::http::batch::{parse_mget, parse_mset, BatchWrite, Encoding};
use shardkv::http::params::MAX_TTL;
use shardkv::http::query::{decode_component, decode_path, parse_pairs, Params, QueryError};
use shardkv::http::reply::ApiError;
use shardkv::persistence::format::{
    decode_record, encode_record, log_path, parse_name, snapshot_path, Header, LOG_MAGIC,
    SNAPSHOT_MAGIC,
};
use shardkv::resp::parse::{ParseLimits, Parsed, ProtocolError, RequestParser, INLINE_MAX_BYTES};

// ---------------------------------------------------------------------------------------------
// Durations and TTLs
// ---------------------------------------------------------------------------------------------

/// An error message may quote at most 64 characters of input (each escaped to at most 10
/// bytes, twice for `UnknownUnit`) plus fixed text; anything longer echoes unbounded input.
const MAX_MESSAGE: usize = 2048;

/// `(tick, max)` pairs every TTL is checked against: the server's own rule, the extremes
/// (a zero tick is documented to act as 1 ns), and ticks that do not divide the maximum.
const TTL_RULES: [(Duration, Duration); 4] = [
    (TICK, MAX_TTL),
    (Duration::ZERO, Duration::MAX),
    (Duration::from_secs(60), Duration::from_secs(3_600)),
    (Duration::from_nanos(7), Duration::from_nanos(1_000_000_007)),
];

/// Fuzz entry point: the bytes as a string (UTF-8 when they are, lossily otherwise, which is
/// how U+FFFD reaches the parser).
pub fn duration(data: &[u8]) {
    match std::str::from_utf8(data) {
        Ok(s) => duration_str(s),
        Err(_) => duration_str(&String::from_utf8_lossy(data)),
    }
}

/// All duration and TTL properties for one string.
pub fn duration_str(s: &str) {
    let parsed = parse_go_duration(s);
    match &parsed {
        Ok(n) => {
            // The value re-formatted in the plainest syntax parses back to itself.
            let plain = format!("{n}ns");
            assert_eq!(parse_go_duration(&plain), Ok(*n), "{s:?} -> {plain:?}");
            // Only a leading '-' makes a duration negative.
            assert!(*n >= 0 || s.starts_with('-'), "{s:?} -> {n}");
        }
        Err(e) => {
            let input = match e {
                DurationError::Empty { input }
                | DurationError::MissingUnit { input }
                | DurationError::UnknownUnit { input, .. }
                | DurationError::Syntax { input }
                | DurationError::Overflow { input } => input,
            };
            assert_eq!(input, s, "the error must carry the input as given");
            let message = e.to_string();
            assert!(
                message.len() <= MAX_MESSAGE,
                "{} byte message for a {} byte input",
                message.len(),
                s.len()
            );
        }
    }

    for (tick, max) in TTL_RULES {
        let ttl = parse_ttl(s, tick, max);
        let context =
            || format!("parse_ttl({s:?}, {tick:?}, {max:?}) = {ttl:?}, duration {parsed:?}");
        match (&parsed, &ttl) {
            (Ok(n), Ok(ticks)) => {
                // Positive, at most max, rounded UP to whole ticks.
                assert!(*ticks >= 1, "{}", context());
                assert!(*n > 0, "{}", context());
                let n = n.unsigned_abs() as u128;
                assert!(n <= max.as_nanos(), "{}", context());
                let tick = tick.as_nanos().max(1);
                let covered = u128::from(*ticks) * tick;
                assert!(covered >= n && covered - tick < n, "{}", context());
            }
            (Err(_), Ok(_)) => panic!("a TTL the grammar rejects: {}", context()),
            (Ok(n), Err(TtlError::NotPositive { input })) => {
                assert!(*n <= 0, "{}", context());
                assert_eq!(input, s);
            }
            (Ok(n), Err(TtlError::TooLong { input, max_secs })) => {
                assert!(
                    *n > 0 && n.unsigned_abs() as u128 > max.as_nanos(),
                    "{}",
                    context()
                );
                assert_eq!((input.as_str(), *max_secs), (s, max.as_secs()));
            }
            (Ok(_), Err(TtlError::Syntax(_))) => panic!("grammar disagrees: {}", context()),
            (Err(DurationError::Overflow { .. }), Err(TtlError::NotPositive { input })) => {
                assert!(s.starts_with('-'), "{}", context());
                assert_eq!(input, s);
            }
            (Err(DurationError::Overflow { .. }), Err(TtlError::TooLong { input, .. })) => {
                assert!(!s.starts_with('-'), "{}", context());
                assert_eq!(input, s);
            }
            (Err(e), Err(TtlError::Syntax(inner))) => {
                assert!(
                    !matches!(e, DurationError::Overflow { .. }),
                    "{}",
                    context()
                );
                assert_eq!(e, inner, "{}", context());
            }
            (Err(_), Err(_)) => panic!("error kinds disagree: {}", context()),
        }
        if let Err(e) = &ttl {
            assert!(e.to_string().len() <= MAX_MESSAGE, "{}", context());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Query strings, form bodies and path segments
// ---------------------------------------------------------------------------------------------

/// The parameter names `Params` picks out.
const KNOWN: [&str; 5] = ["key", "value", "ttl", "ack", "encoding"];

/// Fuzz entry point: `data` as a component, a path segment, a query string, and as the bytes
/// inside well-formed encodings (which must round-trip).
pub fn query(data: &[u8]) {
    component(data);
    path(data);
    pairs(data);
    params(data);
    encoding_param(data);
    round_trips(data);
}

/// The specification of the decoders, written independently and as plainly as possible:
/// decoded bytes, or the offset of the first `%` not followed by two hex digits.
fn reference_decode(raw: &[u8], plus_is_space: bool) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            match raw.get(i + 1..i + 3) {
                Some(h) if h.iter().all(u8::is_ascii_hexdigit) => {
                    let hex = std::str::from_utf8(h).expect("hex digits are ASCII");
                    out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                    i += 3;
                }
                _ => return Err(i),
            }
        } else if plus_is_space && raw[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// One reference pair: decoded name and value, or the offset of the bad escape in the query.
type RefPair = Result<(Vec<u8>, Vec<u8>), usize>;

/// The specification of `parse_pairs`: split at `&`, skip empty segments, split each at its
/// first `=`, decode both halves; offsets relative to the whole query.
fn reference_pairs(raw: &[u8]) -> Vec<RefPair> {
    let mut out = Vec::new();
    let mut start = 0;
    for segment in raw.split(|&b| b == b'&') {
        let seg_start = start;
        start += segment.len() + 1;
        if segment.is_empty() {
            continue;
        }
        let (name, value, value_start) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..], seg_start + eq + 1),
            None => (
                segment,
                &segment[segment.len()..],
                seg_start + segment.len(),
            ),
        };
        let name = reference_decode(name, true).map_err(|o| seg_start + o);
        out.push(name.and_then(|name| {
            let value = reference_decode(value, true).map_err(|o| value_start + o)?;
            Ok((name, value))
        }));
    }
    out
}

fn component(data: &[u8]) {
    let got = decode_component(data);
    match (&got, reference_decode(data, true)) {
        (Ok(out), Ok(want)) => {
            assert_eq!(**out, *want, "decode_component({data:?})");
            // Nothing to decode means nothing copied.
            let special = data.iter().any(|&b| b == b'%' || b == b'+');
            assert_eq!(matches!(out, Cow::Borrowed(_)), !special, "{data:?}");
        }
        (Err(QueryError::BadEscape { offset }), Err(want)) => {
            assert_eq!(*offset, want, "decode_component({data:?})");
            assert_eq!(data.get(*offset), Some(&b'%'));
        }
        _ => panic!(
            "decode_component({data:?}) = {got:?}, reference {:?}",
            reference_decode(data, true)
        ),
    }
}

fn path(data: &[u8]) {
    let got = decode_path(data);
    match (&got, reference_decode(data, false)) {
        (Ok(out), Ok(want)) => {
            assert_eq!(**out, *want, "decode_path({data:?})");
            assert_eq!(
                matches!(out, Cow::Borrowed(_)),
                !data.contains(&b'%'),
                "{data:?}"
            );
        }
        (Err(QueryError::BadEscape { offset }), Err(want)) => {
            assert_eq!(*offset, want, "decode_path({data:?})");
        }
        _ => panic!(
            "decode_path({data:?}) = {got:?}, reference {:?}",
            reference_decode(data, false)
        ),
    }
}

fn pairs(data: &[u8]) {
    let got: Vec<RefPair> = parse_pairs(data)
        .map(|item| match item {
            Ok((n, v)) => Ok((n.into_owned(), v.into_owned())),
            Err(QueryError::BadEscape { offset }) => Err(offset),
            Err(other) => panic!("parse_pairs({data:?}) yielded {other:?}"),
        })
        .collect();
    assert_eq!(got, reference_pairs(data), "parse_pairs({data:?})");
}

/// A parameter's field by name.
fn field<'p>(p: &'p Params<'_>, name: &str) -> Option<&'p [u8]> {
    match name {
        "key" => p.key.as_deref(),
        "value" => p.value.as_deref(),
        "ttl" => p.ttl.as_deref(),
        "ack" => p.ack.as_deref(),
        "encoding" => p.encoding.as_deref(),
        _ => unreachable!("not a known parameter: {name}"),
    }
}

fn params(data: &[u8]) {
    let got = Params::parse(data);
    // The specification in terms of the pairs: the first bad escape or the second occurrence
    // of a known name, whichever comes first, is the error; otherwise each known name's value.
    let mut want: Result<Vec<(&str, Vec<u8>)>, QueryError> = Ok(Vec::new());
    for item in reference_pairs(data) {
        let (name, value) = match item {
            Ok(pair) => pair,
            Err(offset) => {
                want = Err(QueryError::BadEscape { offset });
                break;
            }
        };
        let Some(&known) = KNOWN.iter().find(|k| k.as_bytes() == name) else {
            continue;
        };
        let found = want.as_mut().expect("still Ok");
        if found.iter().any(|(n, _)| *n == known) {
            want = Err(QueryError::Repeated {
                name: known.to_owned(),
            });
            break;
        }
        found.push((known, value));
    }
    match (&got, want) {
        (Ok(p), Ok(found)) => {
            for name in KNOWN {
                let expected = found.iter().find(|(n, _)| *n == name).map(|(_, v)| &v[..]);
                assert_eq!(field(p, name), expected, "Params::parse({data:?}).{name}");
            }
            // A parameter that is present decodes on its own, from its own segment, to the
            // same value; and re-encoded alone, it comes back unchanged.
            for segment in data.split(|&b| b == b'&') {
                let alone = Params::parse(segment)
                    .unwrap_or_else(|e| panic!("segment {segment:?} of {data:?} alone: {e}"));
                for name in KNOWN {
                    if let Some(v) = field(&alone, name) {
                        assert_eq!(field(p, name), Some(v), "segment {segment:?} of {data:?}");
                    }
                }
            }
            for name in KNOWN {
                let Some(v) = field(p, name) else { continue };
                let mut alone = format!("{name}=").into_bytes();
                alone.extend(percent_encode_all(v, name.len() % 2 == 0));
                let again = Params::parse(&alone).expect("a re-encoded parameter parses");
                for other in KNOWN {
                    let expected = if other == name { Some(v) } else { None };
                    assert_eq!(field(&again, other), expected, "{alone:?}");
                }
            }
        }
        (Err(e), Err(want)) => assert_eq!(*e, want, "Params::parse({data:?})"),
        (got, want) => panic!("Params::parse({data:?}) = {got:?}, specification {want:?}"),
    }
}

fn encoding_param(data: &[u8]) {
    let got = Encoding::from_query(data);
    match Params::parse(data) {
        Err(e) => assert!(
            matches!(&got, Err(ApiError::Query(inner)) if *inner == e),
            "Encoding::from_query({data:?}) = {got:?}, Params::parse error {e:?}"
        ),
        Ok(p) => {
            let ok = match p.encoding.as_deref() {
                None | Some(b"utf8") | Some(b"utf-8") => matches!(got, Ok(Encoding::Utf8)),
                Some(b"base64") => matches!(got, Ok(Encoding::Base64)),
                Some(_) => matches!(
                    got,
                    Err(ApiError::BadParam {
                        name: "encoding",
                        ..
                    })
                ),
            };
            assert!(
                ok,
                "Encoding::from_query({data:?}) = {got:?}, encoding {:?}",
                p.encoding
            );
        }
    }
}

/// Every byte as `%XY`, upper- or lower-case hex.
fn percent_encode_all(bytes: &[u8], upper: bool) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| {
            if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
            .into_bytes()
        })
        .collect()
}

/// The shortest form encoding: space as `+`; `%`, `+`, `&`, `=` escaped; every other byte
/// (including non-ASCII and invalid UTF-8) literal.
fn form_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b' ' => out.push(b'+'),
            b'%' | b'+' | b'&' | b'=' => out.extend(format!("%{b:02X}").into_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// The shortest path encoding: only `%` escaped.
fn path_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            _ => out.push(b),
        }
    }
    out
}

fn round_trips(data: &[u8]) {
    for upper in [false, true] {
        let all = percent_encode_all(data, upper);
        assert_eq!(decode_component(&all).expect("all escaped").as_ref(), data);
        assert_eq!(decode_path(&all).expect("all escaped").as_ref(), data);
    }
    let form = form_encode(data);
    assert_eq!(
        decode_component(&form).expect("form encoded").as_ref(),
        data,
        "{form:?}"
    );
    let path = path_encode(data);
    assert_eq!(
        decode_path(&path).expect("path encoded").as_ref(),
        data,
        "{path:?}"
    );

    // A query of one encoded pair gives back exactly that pair.
    let (name, value) = data.split_at(data.len() / 2);
    let mut query = form_encode(name);
    query.push(b'=');
    query.extend(form_encode(value));
    let got: Vec<_> = parse_pairs(&query)
        .map(|p| p.map(|(n, v)| (n.into_owned(), v.into_owned())))
        .collect();
    assert_eq!(got, vec![Ok((name.to_vec(), value.to_vec()))], "{query:?}");

    // Any bytes survive as the key, among the other known parameters.
    let mut query = b"ttl=1s&key=".to_vec();
    query.extend(form_encode(data));
    query.extend_from_slice(b"&value=");
    query.extend(form_encode(name));
    let p = Params::parse(&query).expect("well-formed query");
    assert_eq!(p.key.as_deref(), Some(data));
    assert_eq!(p.value.as_deref(), Some(name));
    assert_eq!(p.ttl.as_deref(), Some(&b"1s"[..]));
}

// ---------------------------------------------------------------------------------------------
// Batch request bodies
// ---------------------------------------------------------------------------------------------

/// Fuzz entry point. The first byte chooses the call: bit 0 the value encoding (0 utf8,
/// 1 base64), the high nibble `max_items` (0 → 0, 15 → unlimited, otherwise itself). The rest
/// is the request body. So `0{"keys":[]}` is a utf8 call with `max_items` 3.
pub fn batch(data: &[u8]) {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let encoding = if control & 1 == 0 {
        Encoding::Utf8
    } else {
        Encoding::Base64
    };
    let max_items = match control >> 4 {
        0 => 0,
        15 => usize::MAX,
        n => usize::from(n),
    };
    mget(body, max_items);
    mset(body, encoding, max_items);
    built_bodies(body);
}

/// The body as generic JSON, to compare the typed parse against.
fn generic(body: &[u8], what: &str) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what} accepted {body:?}, which is not JSON: {e}"))
}

/// The one field of a top-level body. serde's derive also accepts a struct written as an
/// array of its fields (`[["a"]]` for `{"keys":["a"]}`), and so do the parsers.
fn top_field<'v>(v: &'v Value, name: &str) -> &'v Value {
    match v {
        Value::Object(m) => {
            assert_eq!(m.len(), 1, "only {name:?} is allowed: {v}");
            &m[name]
        }
        Value::Array(a) => {
            assert_eq!(a.len(), 1, "{v}");
            &a[0]
        }
        _ => panic!("a body that is neither an object nor an array was accepted: {v}"),
    }
}

/// `key`, `value` and `ttl` of one mset item (object, or array form as above).
fn item_fields(item: &Value) -> (&str, &str, Option<&str>) {
    let (key, value, ttl) = match item {
        Value::Object(m) => {
            assert!(
                m.keys()
                    .all(|k| ["key", "value", "ttl"].contains(&k.as_str())),
                "{item}"
            );
            (&m["key"], &m["value"], m.get("ttl"))
        }
        Value::Array(a) => {
            assert!((2..=3).contains(&a.len()), "{item}");
            (&a[0], &a[1], a.get(2))
        }
        _ => panic!("an item that is neither an object nor an array was accepted: {item}"),
    };
    let ttl = match ttl {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => panic!("a non-string ttl was accepted: {other}"),
    };
    (
        key.as_str()
            .unwrap_or_else(|| panic!("non-string key {key}")),
        value
            .as_str()
            .unwrap_or_else(|| panic!("non-string value {value}")),
        ttl,
    )
}

fn mget(body: &[u8], max_items: usize) {
    match parse_mget(body, max_items) {
        Ok(keys) => {
            assert!(
                keys.len() <= max_items,
                "{} keys, max {max_items}",
                keys.len()
            );
            let v = generic(body, "parse_mget");
            let listed: Vec<&str> = top_field(&v, "keys")
                .as_array()
                .expect("keys is an array")
                .iter()
                .map(|k| k.as_str().expect("keys are strings"))
                .collect();
            assert_eq!(listed, keys, "{body:?}");
        }
        Err(ApiError::BatchTooLarge { len, max }) => {
            assert_eq!(max, max_items);
            assert!(len > max_items);
            let v = generic(body, "parse_mget (then refused for size)");
            assert_eq!(top_field(&v, "keys").as_array().map(Vec::len), Some(len));
        }
        Err(ApiError::Json(_)) => {}
        Err(other) => panic!("parse_mget({body:?}) = unexpected {other:?}"),
    }
}

fn mset(body: &[u8], encoding: Encoding, max_items: usize) {
    match parse_mset(body, encoding, max_items) {
        Ok(writes) => {
            assert!(
                writes.len() <= max_items,
                "{} items, max {max_items}",
                writes.len()
            );
            let v = generic(body, "parse_mset");
            let items = top_field(&v, "items")
                .as_array()
                .expect("items is an array");
            assert_eq!(items.len(), writes.len());
            for (w, item) in writes.iter().zip(items) {
                check_write(w, item_fields(item), encoding);
            }
        }
        Err(ApiError::BatchTooLarge { len, max }) => {
            assert_eq!(max, max_items);
            assert!(len > max_items);
            let v = generic(body, "parse_mset (then refused for size)");
            assert_eq!(top_field(&v, "items").as_array().map(Vec::len), Some(len));
        }
        Err(ApiError::Json(_)) | Err(ApiError::Ttl(_)) => {}
        Err(ApiError::BadParam {
            name: "value",
            value,
            ..
        }) => {
            assert_eq!(
                encoding,
                Encoding::Base64,
                "only base64 values can be malformed"
            );
            // The error names the item, never the value sent.
            assert!(value.starts_with("item "), "{value:?}");
        }
        Err(other) => panic!("parse_mset({body:?}, {encoding:?}) = unexpected {other:?}"),
    }
}

/// One parsed write against what its JSON item says.
fn check_write(w: &BatchWrite, (key, value, ttl): (&str, &str, Option<&str>), encoding: Encoding) {
    assert_eq!(w.key, key);
    match encoding {
        Encoding::Utf8 => assert_eq!(&w.value[..], value.as_bytes()),
        // STANDARD decoding is canonical, so the bytes re-encode to exactly what was sent.
        Encoding::Base64 => assert_eq!(STANDARD.encode(&w.value), value, "key {key:?}"),
    }
    match (ttl, w.ttl) {
        (None, None) => {}
        (Some(text), Some(d)) => {
            let ticks = parse_ttl(text, TICK, MAX_TTL).expect("an accepted ttl");
            assert_eq!(
                d.as_nanos(),
                u128::from(ticks) * TICK.as_nanos(),
                "ttl {text:?}"
            );
            assert!(d >= TICK && d <= MAX_TTL + TICK, "ttl {text:?} -> {d:?}");
        }
        (sent, parsed) => panic!("ttl {sent:?} became {parsed:?}"),
    }
}

/// Well-formed bodies built from the bytes must parse, and give back exactly what went in.
fn built_bodies(body: &[u8]) {
    let chunks: Vec<&[u8]> = body.chunks(5).take(64).collect();
    let keys: Vec<String> = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let n = chunks.len();

    let mget_body = serde_json::to_vec(&json!({ "keys": keys })).expect("serialisable");
    assert_eq!(parse_mget(&mget_body, n).expect("a well-formed mget"), keys);
    if n > 0 {
        let refused = parse_mget(&mget_body, n - 1);
        assert!(
            matches!(refused, Err(ApiError::BatchTooLarge { len, max }) if len == n && max == n - 1)
        );
    }

    let items: Vec<Value> = keys
        .iter()
        .zip(&chunks)
        .map(|(k, c)| json!({ "key": k, "value": STANDARD.encode(c) }))
        .collect();
    let b64_body = serde_json::to_vec(&json!({ "items": items })).expect("serialisable");
    let writes = parse_mset(&b64_body, Encoding::Base64, n).expect("a well-formed base64 mset");
    assert_eq!(writes.len(), n);
    for ((w, k), c) in writes.iter().zip(&keys).zip(&chunks) {
        assert_eq!((&w.key, &w.value[..], w.ttl), (k, *c, None));
    }

    let items: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "key": k, "value": k, "ttl": "1.5s" }))
        .collect();
    let utf8_body = serde_json::to_vec(&json!({ "items": items })).expect("serialisable");
    let writes = parse_mset(&utf8_body, Encoding::Utf8, usize::MAX).expect("a well-formed mset");
    assert_eq!(writes.len(), n);
    for (w, k) in writes.iter().zip(&keys) {
        assert_eq!((&w.key, &w.value[..]), (k, k.as_bytes()));
        assert_eq!(w.ttl, Some(Duration::from_millis(1_500)));
    }
}

// ---------------------------------------------------------------------------------------------
// Persistence: log and snapshot files
// ---------------------------------------------------------------------------------------------

/// Fuzz entry point: `data` as a log or snapshot file (a header, then records) read the way
/// recovery reads it; as the contents of well-formed files, which must read back exactly; and
/// as a file name.
pub fn log(data: &[u8]) {
    // A header that decodes re-encodes to exactly the bytes it was read from.
    let start = match Header::decode(data) {
        Some((header, len)) => {
            assert!(len <= data.len(), "header length {len} of {}", data.len());
            assert_eq!(header.encode(), &data[..len], "{header:?}");
            len
        }
        None => 0,
    };
    // Walk the records as recovery does. Each one re-encodes to its own bytes, and a one-bit
    // flip anywhere in its checksum or body is caught (CRC-32C detects every single-bit error).
    let mut at = start;
    while let Some((record, next)) = decode_record(data, at) {
        assert!(
            next > at && next <= data.len(),
            "record at {at} ends at {next}"
        );
        let mut again = Vec::new();
        let set = record.set.as_ref().map(|(expires, v)| (*expires, &v[..]));
        encode_record(&mut again, record.shard, record.seq, &record.key, set);
        assert_eq!(again, &data[at..next], "{record:?}");
        let checked = next - at - 4;
        let flip = at + 4 + (record.seq % checked as u64) as usize;
        let mut damaged = data[..next].to_vec();
        damaged[flip] ^= 1 << (record.shard % 8);
        assert_eq!(
            decode_record(&damaged, at),
            None,
            "flip at {flip} went unnoticed"
        );
        at = next;
    }
    built_files(data);
    file_names(data);
}

/// A header and records made from the bytes read back exactly, and cutting the file anywhere
/// inside the last record makes that record unreadable (a torn write, never a short record).
fn built_files(data: &[u8]) {
    let word = |i: usize| {
        let mut b = [0u8; 8];
        for (j, x) in b.iter_mut().enumerate() {
            *x = data.get(i + j).copied().unwrap_or(j as u8);
        }
        u64::from_le_bytes(b)
    };
    let header = Header {
        magic: if word(0) % 2 == 0 {
            *LOG_MAGIC
        } else {
            *SNAPSHOT_MAGIC
        },
        gen: word(1),
        base_gen: word(2),
        shards: word(3) as u32,
        seqs: (0..data.len().min(128)).step_by(8).map(word).collect(),
    };
    let mut file = header.encode();
    assert_eq!(Header::decode(&file), Some((header.clone(), file.len())));

    type Expected<'d> = (usize, u32, u64, &'d [u8], Option<(u64, &'d [u8])>);
    let mut expected: Vec<Expected<'_>> = Vec::new();
    for (i, chunk) in data.chunks(7).take(32).enumerate() {
        let (key, value) = chunk.split_at(chunk.len() / 2);
        let set = (i % 3 != 2).then_some((word(i), value));
        expected.push((file.len(), i as u32, word(i + 1), key, set));
        encode_record(&mut file, i as u32, word(i + 1), key, set);
    }
    let mut at = Header::decode(&file).expect("header").1;
    for &(offset, shard, seq, key, set) in &expected {
        assert_eq!(at, offset);
        let (record, next) = decode_record(&file, at).expect("a record just written");
        assert_eq!(
            (record.shard, record.seq, &record.key[..]),
            (shard, seq, key)
        );
        assert_eq!(record.set.as_ref().map(|(e, v)| (*e, &v[..])), set);
        at = next;
    }
    assert_eq!(at, file.len());
    assert_eq!(
        decode_record(&file, at),
        None,
        "nothing after the last record"
    );
    if let Some(&(last, ..)) = expected.last() {
        for cut in [last, last + 3, last + 4, last + 8, file.len() - 1] {
            assert_eq!(decode_record(&file[..cut], last), None, "cut at {cut}");
        }
    }
}

/// Names made by `snapshot_path`/`log_path` parse back; a name that parses names a file whose
/// canonical name parses to the same thing.
fn file_names(data: &[u8]) {
    let name_of = |path: std::path::PathBuf| {
        path.file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 file name")
            .to_owned()
    };
    let canonical = |snapshot: bool, gen: u64| {
        let dir = std::path::Path::new("data");
        name_of(if snapshot {
            snapshot_path(dir, gen)
        } else {
            log_path(dir, gen)
        })
    };
    let text = String::from_utf8_lossy(data);
    if let Some((snapshot, gen)) = parse_name(&text) {
        assert_eq!(
            parse_name(&canonical(snapshot, gen)),
            Some((snapshot, gen)),
            "{text:?}"
        );
    }
    let mut b = [0u8; 8];
    for (x, d) in b.iter_mut().zip(data) {
        *x = *d;
    }
    let gen = u64::from_le_bytes(b);
    for snapshot in [false, true] {
        assert_eq!(parse_name(&canonical(snapshot, gen)), Some((snapshot, gen)));
    }
}

// ---------------------------------------------------------------------------------------------
// RESP requests
// ---------------------------------------------------------------------------------------------

/// One result of parsing a request stream.
#[derive(Debug, PartialEq, Eq)]
enum RespOutcome {
    Command(Vec<Vec<u8>>),
    Oversized(usize, Vec<Vec<u8>>),
    Error(ProtocolError),
}

/// Fuzz entry point. `data[0]` picks the argument limit (bit 7 set: 1 MiB; else 0..=63 bytes,
/// so oversized arguments happen), `data[1]` bit 0 whether auth is required and the rest of it
/// seeds the chunk sizes; the remaining bytes are what the client sends.
///
/// Properties: never panics; fed whole, in pseudo-random chunks or one byte at a time, the
/// same commands and the same error come out; no argument handed out exceeds the limit and an
/// oversized one is reported with its length; while waiting for bytes the parser holds no more
/// than the client sent, at most one line (64 KB) or one argument's worth, and nothing of an
/// argument it is dropping; an error's reply is one `-ERR Protocol error: ` line.
pub fn resp_parse(data: &[u8]) {
    let (control, input) = match data {
        [a, b, rest @ ..] => ([*a, *b], rest),
        _ => return,
    };
    let limits = ParseLimits {
        max_arg_bytes: if control[0] & 0x80 != 0 {
            1 << 20
        } else {
            usize::from(control[0] % 64)
        },
        auth_required: control[1] & 1 == 1,
    };
    let whole = resp_feed(input, &limits, &mut |_| usize::MAX);
    let mut seed = u32::from(control[1] >> 1) | 1;
    let chunked = resp_feed(input, &limits, &mut |_| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        1 + (seed >> 16) as usize % 7
    });
    let byte_by_byte = resp_feed(input, &limits, &mut |_| 1);
    // The 64 KB line limit counts what happens to be buffered, so only shorter streams are
    // split-independent (as in Redis).
    if input.len() <= INLINE_MAX_BYTES {
        assert_eq!(whole, chunked, "whole vs chunked, {limits:?}");
        assert_eq!(
            whole, byte_by_byte,
            "whole vs one byte at a time, {limits:?}"
        );
    }
}

/// Feeds `input` in chunks of `next_chunk` bytes, parsing after each until it is incomplete,
/// checking the bounds on the way.
fn resp_feed(
    input: &[u8],
    limits: &ParseLimits,
    next_chunk: &mut dyn FnMut(usize) -> usize,
) -> Vec<RespOutcome> {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut args = Vec::new();
    let mut outcomes = Vec::new();
    let mut fed = 0;
    while fed < input.len() {
        let chunk = next_chunk(fed).clamp(1, input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + chunk]);
        fed += chunk;
        loop {
            let before = buf.len() + parser.pending_arg_bytes();
            assert!(before <= fed, "holding {before} bytes of {fed} sent");
            match parser.next(&mut buf, &mut args, limits) {
                Ok(Parsed::Incomplete) => {
                    let held = buf.len() + parser.pending_arg_bytes();
                    assert!(held <= fed, "holding {held} bytes of {fed} sent");
                    let line_or_arg = INLINE_MAX_BYTES.max(limits.max_arg_bytes + 2);
                    assert!(
                        buf.len() <= line_or_arg + chunk,
                        "{} unparsed bytes after a {chunk} byte chunk",
                        buf.len()
                    );
                    if parser.wants_bytes() > 0 {
                        assert!(
                            buf.len() <= limits.max_arg_bytes + 1,
                            "{} bytes buffered for one bulk",
                            buf.len()
                        );
                    }
                    break;
                }
                Ok(Parsed::Command) => {
                    assert!(!args.is_empty(), "a command without arguments");
                    for arg in &args {
                        assert!(
                            arg.len() <= limits.max_arg_bytes,
                            "{} byte argument",
                            arg.len()
                        );
                    }
                    outcomes.push(RespOutcome::Command(
                        args.iter().map(|a| a.to_vec()).collect(),
                    ));
                }
                Ok(Parsed::Oversized { len }) => {
                    assert!(len > limits.max_arg_bytes, "{len} reported as oversized");
                    assert!(!args.is_empty(), "a command without arguments");
                    assert!(args.iter().all(|a| a.len() <= limits.max_arg_bytes));
                    outcomes.push(RespOutcome::Oversized(
                        len,
                        args.iter().map(|a| a.to_vec()).collect(),
                    ));
                }
                Err(e) => {
                    let reply = e.reply_bytes();
                    assert!(reply.starts_with(b"-ERR Protocol error: "), "{reply:?}");
                    assert!(reply.ends_with(b"\r\n"), "{reply:?}");
                    assert!(
                        !reply[..reply.len() - 2]
                            .iter()
                            .any(|&b| b == b'\r' || b == b'\n'),
                        "{reply:?}"
                    );
                    outcomes.push(RespOutcome::Error(e));
                    return outcomes;
                }
            }
        }
    }
    outcomes
}
