//! The fuzz targets' properties as proptests, so they run on stable in every `cargo test` and
//! stand in for libFuzzer where nightly is missing (`fuzz/smoke.sh` says when it falls back).
//!
//! The properties themselves live in `fuzz/properties.rs`, shared with the cargo-fuzz targets
//! in `fuzz/fuzz_targets/`; this file only supplies inputs: arbitrary bytes, plus inputs built
//! from fragments of the grammar so the parsers get past their first byte (random bytes are
//! almost never JSON, nor a duration). It also replays the checked-in fuzz seeds, and keeps
//! crashes found by fuzzing as plain regression tests. Set `PROPTEST_CASES` for longer runs.
#![cfg(feature = "server")]

#[path = "../fuzz/properties.rs"]
mod properties;

use proptest::prelude::*;

/// Arbitrary bytes, the same diet the fuzzer starts from.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..256)
}

/// Concatenations of grammar fragments, with a little random noise mixed in.
fn fragments(pieces: &'static [&'static [u8]], max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => prop::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 1..3),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|v| v.concat())
}

const DURATION_PIECES: &[&[u8]] = &[
    b"-",
    b"+",
    b"0",
    b"1",
    b"7",
    b"9",
    b"00",
    b".",
    b".5",
    b"1.5",
    b"15",
    b"300",
    b"9223372036854775807",
    b"9223372036854775808",
    b"2562047",
    b"99999999999999999999",
    b"0.3333333333333333333",
    b"ns",
    b"us",
    "µs".as_bytes(),
    "μs".as_bytes(),
    b"ms",
    b"s",
    b"m",
    b"h",
    b"d",
    b" ",
    b"S",
    b"\xff",
    "\u{FFFD}".as_bytes(),
];

const QUERY_PIECES: &[&[u8]] = &[
    b"key",
    b"value",
    b"ttl",
    b"ack",
    b"encoding",
    b"k%65y",
    b"Key",
    b"=",
    b"&",
    b"&&",
    b"%",
    b"%2",
    b"%41",
    b"%zz",
    b"%g1",
    b"%25",
    b"%2B",
    b"%2b",
    b"%26",
    b"%3D",
    b"%FF",
    b"%00",
    b"+",
    b"base64",
    b"utf8",
    b"utf-8",
    b"1s",
    b"all",
    b";",
    b"a",
    b"\xff",
    b"\x00",
];

const JSON_PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\"keys\"",
    b"\"items\"",
    b"\"key\"",
    b"\"value\"",
    b"\"ttl\"",
    b"\"a\"",
    b"\"\"",
    b"\"aGk=\"",
    b"\"aGk\"",
    b"\"aGl=\"",
    b"\"/w==\"",
    b"\"/x==\"",
    b"\"====\"",
    b"\"1s\"",
    b"\"1.5s\"",
    b"\"0s\"",
    b"\"-1s\"",
    b"\"87601h\"",
    b"\"1d\"",
    b"null",
    b"1",
    b"-0.5e10",
    b"true",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"\\u00ff\"",
    b"\"\\\"\"",
    b" ",
    b"\n",
];

/// A control byte (see `properties::batch`) and a body.
fn batch_input(body: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), body).prop_map(|(control, body)| [vec![control], body].concat())
}

/// Bodies of the right shape with arbitrary contents: `(key, value, ttl)` items rendered as an
/// mset or mget body, with values in base64 half the time. The control byte picks the
/// encoding the body was written for most of the time, and sometimes the other.
fn shaped_batch() -> impl Strategy<Value = Vec<u8>> {
    let ttl = prop_oneof![
        Just(None),
        prop::sample::select(&["1s", "1ms", "1ns", "0s", "-5m", "87600h", "87601h", "2h45m"][..])
            .prop_map(|t| Some(t.to_owned())),
        fragments(DURATION_PIECES, 6).prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
    ];
    let item = (".{0,8}", prop::collection::vec(any::<u8>(), 0..16), ttl);
    (
        prop::collection::vec(item, 0..8),
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(items, base64, mget, control)| {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            let body = if mget {
                let keys: Vec<&str> = items.iter().map(|(k, _, _)| k.as_str()).collect();
                serde_json::json!({ "keys": keys })
            } else {
                let items: Vec<serde_json::Value> = items
                    .iter()
                    .map(|(k, v, ttl)| {
                        let value = if base64 {
                            b64.encode(v)
                        } else {
                            String::from_utf8_lossy(v).into_owned()
                        };
                        serde_json::json!({ "key": k, "value": value, "ttl": ttl })
                    })
                    .collect();
                serde_json::json!({ "items": items })
            };
            let encoding_bit = u8::from(base64) ^ u8::from(control % 8 == 0);
            let control = (control & 0xf0) | encoding_bit;
            [
                vec![control],
                serde_json::to_vec(&body).expect("serialisable"),
            ]
            .concat()
        })
}

/// Log or snapshot files of the right shape (a header, then records made with the writer's own
/// encoder), then sometimes damaged: one byte changed, or cut short.
fn shaped_log() -> impl Strategy<Value = Vec<u8>> {
    use shardkv::persistence::format::{encode_record, Header, LOG_MAGIC, SNAPSHOT_MAGIC};
    let record = (
        any::<u32>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..12),
        prop::option::of((any::<u64>(), prop::collection::vec(any::<u8>(), 0..12))),
    );
    let header = (
        any::<bool>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        prop::collection::vec(any::<u64>(), 0..4),
    );
    (
        prop::option::of(header),
        prop::collection::vec(record, 0..6),
        prop_oneof![Just(None), (any::<usize>(), any::<u8>()).prop_map(Some)],
        prop_oneof![Just(None), any::<usize>().prop_map(Some)],
    )
        .prop_map(|(header, records, change, cut)| {
            let mut file = match header {
                Some((snapshot, gen, base_gen, shards, seqs)) => Header {
                    magic: if snapshot {
                        *SNAPSHOT_MAGIC
                    } else {
                        *LOG_MAGIC
                    },
                    gen,
                    base_gen,
                    shards,
                    seqs,
                }
                .encode(),
                None => Vec::new(),
            };
            for (shard, seq, key, set) in &records {
                let set = set.as_ref().map(|(expires, v)| (*expires, &v[..]));
                encode_record(&mut file, *shard, *seq, key, set);
            }
            if let (Some((at, xor)), false) = (change, file.is_empty()) {
                let at = at % file.len();
                file[at] ^= xor;
            }
            if let Some(cut) = cut {
                file.truncate(cut % (file.len() + 1));
            }
            file
        })
}

const LOG_PIECES: &[&[u8]] = &[
    b"SKVLOG\x00\x01",
    b"SKVSNP\x00\x01",
    b"\x01\x00\x00\x00",
    b"\x11\x00\x00\x00",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x01",
    b"\x02",
    b"log-",
    b"snapshot-",
    b".skv",
    b"0000000000000007",
];

const RESP_PIECES: &[&[u8]] = &[
    b"*",
    b"$",
    b"\r\n",
    b"\r",
    b"\n",
    b"*1\r\n",
    b"*2\r\n",
    b"*3\r\n",
    b"*0\r\n",
    b"*-1\r\n",
    b"*11\r\n",
    b"$0\r\n",
    b"$1\r\n",
    b"$3\r\n",
    b"$4\r\n",
    b"$40\r\n",
    b"$-1\r\n",
    b"$16385\r\n",
    b"$536870913\r\n",
    b"PING",
    b"SET",
    b"k",
    b"0123456789",
    b" ",
    b"\t",
    b"\x0b",
    b"\"",
    b"'",
    b"\\",
    b"\\x41",
    b"\\'",
    b"\x00",
];

/// Well-formed multibulk commands (arguments of any bytes, some longer than a small limit)
/// with grammar fragments between them, after the two control bytes `properties::resp_parse`
/// reads.
fn shaped_resp() -> impl Strategy<Value = Vec<u8>> {
    let command =
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 1..5).prop_map(|args| {
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for a in &args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
            out
        });
    let piece = prop_oneof![3 => command, 1 => fragments(RESP_PIECES, 4)];
    (any::<[u8; 2]>(), prop::collection::vec(piece, 0..6))
        .prop_map(|(control, pieces)| [control.to_vec(), pieces.concat()].concat())
}

proptest! {
    #[test]
    fn resp_parse_arbitrary_bytes(data in bytes()) {
        properties::resp_parse(&data);
    }

    #[test]
    fn resp_parse_fragments(data in fragments(RESP_PIECES, 24)) {
        properties::resp_parse(&data);
    }

    #[test]
    fn resp_parse_shaped(data in shaped_resp()) {
        properties::resp_parse(&data);
    }

    #[test]
    fn duration_arbitrary_bytes(data in bytes()) {
        properties::duration(&data);
    }

    #[test]
    fn duration_fragments(data in fragments(DURATION_PIECES, 8)) {
        properties::duration(&data);
    }

    #[test]
    fn query_arbitrary_bytes(data in bytes()) {
        properties::query(&data);
    }

    #[test]
    fn query_fragments(data in fragments(QUERY_PIECES, 16)) {
        properties::query(&data);
    }

    #[test]
    fn batch_arbitrary_bytes(data in bytes()) {
        properties::batch(&data);
    }

    #[test]
    fn batch_fragments(data in batch_input(fragments(JSON_PIECES, 24))) {
        properties::batch(&data);
    }

    #[test]
    fn batch_shaped(data in shaped_batch()) {
        properties::batch(&data);
    }

    #[test]
    fn log_arbitrary_bytes(data in bytes()) {
        properties::log(&data);
    }

    #[test]
    fn log_fragments(data in fragments(LOG_PIECES, 12)) {
        properties::log(&data);
    }

    #[test]
    fn log_shaped(data in shaped_log()) {
        properties::log(&data);
    }
}

/// A fuzz target's entry point in `properties`.
type Check = fn(&[u8]);

/// The checked-in fuzz seeds hold the properties too (and stay valid as the parsers change).
#[test]
fn fuzz_seeds() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let targets: [(&str, Check); 5] = [
        ("duration", properties::duration),
        ("query", properties::query),
        ("batch", properties::batch),
        ("log", properties::log),
        ("resp_parse", properties::resp_parse),
    ];
    for (target, check) in targets {
        let dir = seeds.join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("readable seed directory").path();
            check(&std::fs::read(&path).expect("readable seed"));
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }
}

/// Inputs worth pinning: the tricky cases from the parsers' own documentation.
#[test]
fn edge_cases() {
    for s in [
        "",
        "0",
        "-0",
        "-9223372036854775808ns",
        "9223372036854775808ns",
        "9223372036854775808ns9223372036854775808ns",
        "2562047h47m16.854775807s",
        "0.3333333333333333333h",
        "1.9ns",
        "\u{FFFD}",
    ] {
        properties::duration_str(s);
    }
    for q in [
        &b""[..],
        b"&",
        b"=",
        b"%",
        b"%%41",
        b"key=a&key=b",
        b"k%65y=%FF%00&value=a+b",
    ] {
        properties::query(q);
    }
    for body in [
        &b"\xff{\"items\":[{\"key\":\"k\",\"value\":\"aGk=\",\"ttl\":\"1s\"}]}"[..],
        b"\xff[[\"a\"]]",
        b"\xff{\"keys\":[\"a\"],\"keys\":[]}",
        b"\x01{\"items\":[{\"key\":\"k\",\"value\":\"/x==\"}]}",
    ] {
        properties::batch(body);
    }
}

// Regression tests for crashes found by fuzzing go below, one #[test] each, with the bytes.
