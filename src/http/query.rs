//! Strict `application/x-www-form-urlencoded` decoding (URL query strings and POST form
//! bodies) to raw bytes.
//!
//! What: [`decode_component`] turns one encoded name or value into bytes, [`parse_pairs`]
//! splits a query into decoded `name=value` pairs, and [`Params::parse`] picks out the
//! parameters the routes read in a single pass.
//!
//! Why: keys and values in shardkv are arbitrary bytes, so decoding must be lossless. The
//! `form_urlencoded` crate replaces invalid UTF-8 with U+FFFD and `percent-encoding` passes
//! malformed escapes like `%zz` through literally; either would silently store something other
//! than what the client sent. Here a malformed escape is an error that names its byte offset,
//! nothing is ever re-encoded as UTF-8, and nothing is copied when there is nothing to decode.
//! Splitting follows Go's `url.ParseQuery` (empty segments skipped, a segment without `=` is a
//! name with an empty value) except that `;` is an ordinary byte here.
//!
//! Must never: replace, drop or reinterpret a byte; accept `%` without two hex digits after
//! it; silently pick one of several values for a parameter the routes read; panic on any input.

use std::borrow::Cow;
use std::iter::FusedIterator;

/// Why a query string or form body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A `%` at `offset` is not followed by two hex digits. The offset is a byte index into
    /// the slice given to the function that reported it: the component for
    /// [`decode_component`], the whole query or body for [`parse_pairs`] and [`Params::parse`].
    #[error(
        "invalid percent-encoding at byte {offset}: '%' must be followed by two hex digits \
         (write a literal '%' as %25)"
    )]
    BadEscape {
        /// Byte index of the offending `%`.
        offset: usize,
    },
    /// A parameter the routes read appeared more than once, which would be ambiguous.
    #[error("parameter \"{name}\" given more than once")]
    Repeated {
        /// The parameter's (decoded) name, e.g. `key`.
        name: String,
    },
}

/// Decodes one form component: `+` → space, `%XY` (hex, either case) → byte; any other byte is
/// kept as is. `%` not followed by two hex digits is an error naming the offset.
///
/// Returns `Cow::Borrowed(raw)` when `raw` contains neither `+` nor `%`, so the common case
/// does not allocate.
///
/// # Errors
///
/// [`QueryError::BadEscape`] at the first malformed escape; its offset is relative to `raw`.
pub fn decode_component(raw: &[u8]) -> Result<Cow<'_, [u8]>, QueryError> {
    decode_at(raw, 0)
}

/// Decodes a URL path segment: like [`decode_component`] but `+` stays a `+` (only query
/// strings and form bodies use `+` for a space), and `%2F` is a `/` in the result.
///
/// # Errors
///
/// [`QueryError::BadEscape`] at the first malformed escape.
pub fn decode_path(raw: &[u8]) -> Result<Cow<'_, [u8]>, QueryError> {
    decode_with(raw, 0, false)
}

/// [`decode_component`] for a component that starts at byte `base` of a larger input, so
/// error offsets point into that input.
fn decode_at(raw: &[u8], base: usize) -> Result<Cow<'_, [u8]>, QueryError> {
    decode_with(raw, base, true)
}

/// The decoder behind both forms; `plus_is_space` selects the form-encoding rule for `+`.
fn decode_with(raw: &[u8], base: usize, plus_is_space: bool) -> Result<Cow<'_, [u8]>, QueryError> {
    let special = |b: u8| b == b'%' || (plus_is_space && b == b'+');
    let Some(first) = raw.iter().position(|&b| special(b)) else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex_value);
                let lo = raw.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(QueryError::BadEscape { offset: base + i });
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// The value of one ASCII hex digit, either case.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Iterates `name=value` pairs of a query string or form body separated by `&` (empty
/// segments skipped; a segment without `=` is a name with an empty value, like Go's
/// url.ParseQuery). Names and values are decoded with `decode_component`.
///
/// The segment is split at its first `=`, so later `=` bytes belong to the value. A segment
/// that fails to decode yields one `Err` (offset relative to `raw`) and iteration continues
/// with the next segment; callers normally stop at the first error. `raw` must not include
/// the leading `?` of a URL.
pub fn parse_pairs(raw: &[u8]) -> Pairs<'_> {
    Pairs { raw, pos: 0 }
}

/// The iterator returned by [`parse_pairs`].
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    raw: &'a [u8],
    /// Start of the next segment to look at; `raw.len()` once exhausted.
    pos: usize,
}

/// One decoded `(name, value)` pair.
pub type Pair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

impl<'a> Iterator for Pairs<'a> {
    type Item = Result<Pair<'a>, QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let raw = self.raw;
        loop {
            let start = self.pos;
            if start >= raw.len() {
                return None;
            }
            let end = raw[start..]
                .iter()
                .position(|&b| b == b'&')
                .map_or(raw.len(), |i| start + i);
            self.pos = end.saturating_add(1).min(raw.len());
            let segment = &raw[start..end];
            if segment.is_empty() {
                continue;
            }
            let (name, value, value_start) = match segment.iter().position(|&b| b == b'=') {
                Some(eq) => (&segment[..eq], &segment[eq + 1..], start + eq + 1),
                None => (segment, &segment[segment.len()..], end),
            };
            let pair =
                decode_at(name, start).and_then(|name| Ok((name, decode_at(value, value_start)?)));
            return Some(pair);
        }
    }
}

impl FusedIterator for Pairs<'_> {}

/// The parameters the product's routes read, found in one pass. Repeated known parameters are
/// an error (`key` given twice is ambiguous: reject rather than pick one). Unknown parameters
/// are ignored.
///
/// Each field holds the decoded bytes of that parameter's value (empty for `key` or `key=`),
/// or `None` if it was absent. Names are matched after decoding and case-sensitively, so
/// `k%65y` is `key` and `Key` is unknown.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params<'a> {
    /// `key`: the key to read or write.
    pub key: Option<Cow<'a, [u8]>>,
    /// `value`: the value to store.
    pub value: Option<Cow<'a, [u8]>>,
    /// `ttl`: a Go duration string (see `crate::duration::parse_ttl`), still undecoded as text.
    pub ttl: Option<Cow<'a, [u8]>>,
    /// `ack`: the requested write acknowledgement level.
    pub ack: Option<Cow<'a, [u8]>>,
    /// `encoding`: how `key`/`value` are encoded.
    pub encoding: Option<Cow<'a, [u8]>>,
}

impl<'a> Params<'a> {
    /// Parses a query string or form body (without the leading `?`) in one pass.
    ///
    /// Fails on the first malformed escape anywhere in `raw`, including in parameters that
    /// are otherwise ignored, and on the second occurrence of any known parameter.
    ///
    /// # Errors
    ///
    /// [`QueryError::BadEscape`] (offset relative to `raw`) or [`QueryError::Repeated`].
    pub fn parse(raw: &'a [u8]) -> Result<Self, QueryError> {
        let mut params = Params::default();
        for pair in parse_pairs(raw) {
            let (name, value) = pair?;
            let (slot, label) = match &*name {
                b"key" => (&mut params.key, "key"),
                b"value" => (&mut params.value, "value"),
                b"ttl" => (&mut params.ttl, "ttl"),
                b"ack" => (&mut params.ack, "ack"),
                b"encoding" => (&mut params.encoding, "encoding"),
                _ => continue,
            };
            if slot.is_some() {
                return Err(QueryError::Repeated {
                    name: label.to_owned(),
                });
            }
            *slot = Some(value);
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(raw: &str) -> Result<Vec<u8>, QueryError> {
        decode_component(raw.as_bytes()).map(Cow::into_owned)
    }

    fn pairs(raw: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        parse_pairs(raw.as_bytes())
            .map(|p| p.map(|(n, v)| (n.into_owned(), v.into_owned())))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn path_decoding_keeps_plus_and_decodes_slash() {
        assert_eq!(decode_path(b"a+b").unwrap().as_ref(), b"a+b");
        assert_eq!(decode_path(b"a%2Fb").unwrap().as_ref(), b"a/b");
        assert_eq!(decode_path(b"a/b").unwrap().as_ref(), b"a/b");
        assert_eq!(decode_path(b"%FF").unwrap().as_ref(), [0xff]);
        assert_eq!(
            decode_path(b"ab%g1").unwrap_err(),
            QueryError::BadEscape { offset: 2 }
        );
        assert!(matches!(decode_path(b"plain"), Ok(Cow::Borrowed(_))));
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(dec("a%20b").unwrap(), b"a b");
        assert_eq!(dec("x%26y").unwrap(), b"x&y");
        assert_eq!(dec("a+b").unwrap(), b"a b");
        assert_eq!(dec("%2B").unwrap(), b"+");
        assert_eq!(dec("%2b").unwrap(), b"+");
        assert_eq!(dec("%3D%3d").unwrap(), b"==");
        assert_eq!(dec("%25").unwrap(), b"%");
        assert_eq!(dec("%2525").unwrap(), b"%25");
        assert_eq!(dec("%FF%FE").unwrap(), [0xff, 0xfe]);
        assert_eq!(dec("%00").unwrap(), [0]);
        assert_eq!(dec("a;b").unwrap(), b"a;b");
        assert_eq!(dec("+++").unwrap(), b"   ");
        assert_eq!(dec("").unwrap(), b"");
        // Non-ASCII and invalid UTF-8 bytes pass through untouched.
        assert_eq!(decode_component(b"\xff\x00=&").unwrap(), &b"\xff\x00=&"[..]);
    }

    #[test]
    fn borrowed_when_nothing_to_decode() {
        for raw in [&b""[..], b"abc", b"a=b", b"\xff\xfe", b"a;b"] {
            assert!(
                matches!(decode_component(raw), Ok(Cow::Borrowed(_))),
                "{raw:?}"
            );
        }
        assert!(matches!(decode_component(b"a+b"), Ok(Cow::Owned(_))));
        let p = Params::parse(b"key=abc&value=a%20b").unwrap();
        assert!(matches!(p.key, Some(Cow::Borrowed(b"abc"))));
        assert!(matches!(p.value, Some(Cow::Owned(_))));
    }

    #[test]
    fn rejects_bad_escapes_with_offsets() {
        let bad = |offset| Err(QueryError::BadEscape { offset });
        assert_eq!(dec("%zz"), bad(0));
        assert_eq!(dec("%4"), bad(0));
        assert_eq!(dec("%"), bad(0));
        assert_eq!(dec("abc%"), bad(3));
        assert_eq!(dec("ab%4g"), bad(2));
        assert_eq!(dec("%g4"), bad(0));
        assert_eq!(dec("%20%2"), bad(3));
        assert_eq!(dec("%%41"), bad(0));
        assert_eq!(dec("%+1"), bad(0));
        // In a query, offsets are relative to the whole query.
        let first_err = |raw: &[u8]| parse_pairs(raw).find_map(Result::err);
        assert_eq!(
            first_err(b"key=a&value=%zz"),
            Some(QueryError::BadEscape { offset: 12 })
        );
        assert_eq!(
            first_err(b"a=1&%4=x"),
            Some(QueryError::BadEscape { offset: 4 })
        );
        assert_eq!(
            first_err(b"&&x%"),
            Some(QueryError::BadEscape { offset: 3 })
        );
        assert_eq!(
            Params::parse(b"ttl=1s&junk=%G0"),
            Err(QueryError::BadEscape { offset: 12 })
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            QueryError::BadEscape { offset: 7 }.to_string(),
            "invalid percent-encoding at byte 7: '%' must be followed by two hex digits \
             (write a literal '%' as %25)"
        );
        assert_eq!(
            Params::parse(b"key=a&key=b").unwrap_err().to_string(),
            "parameter \"key\" given more than once"
        );
    }

    #[test]
    fn splits_pairs() {
        assert_eq!(
            pairs("key=a&value=b&ttl=1s"),
            owned(&[("key", "a"), ("value", "b"), ("ttl", "1s")])
        );
        assert_eq!(pairs("flag"), owned(&[("flag", "")]));
        assert_eq!(pairs("a&b=&=c"), owned(&[("a", ""), ("b", ""), ("", "c")]));
        assert_eq!(pairs("&&a=1&&&b=2&&"), owned(&[("a", "1"), ("b", "2")]));
        assert_eq!(pairs(""), owned(&[]));
        assert_eq!(pairs("&"), owned(&[]));
        assert_eq!(pairs("="), owned(&[("", "")]));
        assert_eq!(pairs("a=b=c"), owned(&[("a", "b=c")]));
        assert_eq!(pairs("a=1;b=2"), owned(&[("a", "1;b=2")]));
        assert_eq!(pairs("a+b=c+d%26e"), owned(&[("a b", "c d&e")]));
        assert_eq!(pairs("x=%3D%26"), owned(&[("x", "=&")]));
        // An error does not end iteration; the caller decides.
        let items: Vec<_> = parse_pairs(b"a=%&b=2").collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_err() && items[1].is_ok());
    }

    #[test]
    fn params_pick_known_names() {
        let p = Params::parse(b"key=a&value=b&ttl=1s&ack=all&encoding=base64").unwrap();
        assert_eq!(p.key.as_deref(), Some(&b"a"[..]));
        assert_eq!(p.value.as_deref(), Some(&b"b"[..]));
        assert_eq!(p.ttl.as_deref(), Some(&b"1s"[..]));
        assert_eq!(p.ack.as_deref(), Some(&b"all"[..]));
        assert_eq!(p.encoding.as_deref(), Some(&b"base64"[..]));

        let p = Params::parse(b"key&other=1&other=2&Key=x&keys=y").unwrap();
        assert_eq!(p.key.as_deref(), Some(&b""[..]));
        assert_eq!(p.value, None);
        assert_eq!(Params::parse(b"").unwrap(), Params::default());

        let p = Params::parse(b"k%65y=%FF%00&value=a+b").unwrap();
        assert_eq!(p.key.as_deref(), Some(&[0xff, 0][..]));
        assert_eq!(p.value.as_deref(), Some(&b"a b"[..]));
    }

    #[test]
    fn params_reject_repeats() {
        for (raw, name) in [
            ("key=a&key=b", "key"),
            ("key=a&key=a", "key"),
            ("key=a&key", "key"),
            ("value=1&k%65y=x&value=2", "value"),
            ("ttl=1s&ttl=2s", "ttl"),
            ("ack=1&ack=1", "ack"),
            ("encoding=&encoding=", "encoding"),
        ] {
            assert_eq!(
                Params::parse(raw.as_bytes()),
                Err(QueryError::Repeated { name: name.into() }),
                "{raw}"
            );
        }
    }

    /// How one byte is written in a generated encoding.
    fn encode(bytes: &[u8], styles: &[u8], strict: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            let style = styles.get(i).copied().unwrap_or(0) % 4;
            let must_escape = matches!(b, b'%' | b'+' | b'&' | b'=') || (strict && b == b' ');
            match style {
                0 if b == b' ' => out.push(b'+'),
                0 | 1 if !must_escape => out.push(b),
                2 => out.extend_from_slice(format!("%{b:02x}").as_bytes()),
                _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn every_byte_escaped_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..64), lower in any::<bool>()) {
            let styles = vec![if lower { 2 } else { 3 }; bytes.len()];
            let encoded = encode(&bytes, &styles, true);
            prop_assert_eq!(decode_component(&encoded).unwrap().into_owned(), bytes);
        }

        #[test]
        fn mixed_encoding_round_trips(
            bytes_styles in prop::collection::vec((any::<u8>(), any::<u8>()), 0..64),
        ) {
            let (bytes, styles): (Vec<u8>, Vec<u8>) = bytes_styles.into_iter().unzip();
            let encoded = encode(&bytes, &styles, false);
            let decoded = decode_component(&encoded).unwrap();
            prop_assert_eq!(matches!(decoded, Cow::Borrowed(_)), encoded == bytes && !encoded.contains(&b'+'));
            prop_assert_eq!(decoded.into_owned(), bytes);
        }

        #[test]
        fn pairs_round_trip(
            items in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..8), prop::collection::vec(any::<u8>(), 0..8), any::<u64>()),
                0..8,
            ),
            empties in 0usize..3,
        ) {
            let mut query = Vec::new();
            for (name, value, seed) in &items {
                let styles: Vec<u8> = seed.to_le_bytes().into_iter().cycle().take(16).collect();
                query.extend(std::iter::repeat_n(b'&', empties));
                query.extend(encode(name, &styles, false));
                query.push(b'=');
                query.extend(encode(value, &styles[8..], false));
                query.push(b'&');
            }
            let got: Vec<(Vec<u8>, Vec<u8>)> = parse_pairs(&query)
                .map(|p| p.map(|(n, v)| (n.into_owned(), v.into_owned())))
                .collect::<Result<_, _>>()
                .unwrap();
            let want: Vec<(Vec<u8>, Vec<u8>)> =
                items.into_iter().map(|(n, v, _)| (n, v)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn never_panics_and_offsets_point_at_percent(raw in prop::collection::vec(
            prop::sample::select(vec![b'%', b'+', b'&', b'=', b'a', b'F', b'0', b'9', b'g', b';', 0xff]),
            0..48,
        )) {
            for item in parse_pairs(&raw) {
                if let Err(QueryError::BadEscape { offset }) = item {
                    prop_assert_eq!(raw.get(offset), Some(&b'%'));
                }
            }
            if let Err(QueryError::BadEscape { offset }) = decode_component(&raw) {
                prop_assert_eq!(raw.get(offset), Some(&b'%'));
            }
            let _ = Params::parse(&raw);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(raw in prop::collection::vec(any::<u8>(), 0..256)) {
            let n = parse_pairs(&raw).count();
            prop_assert!(n <= raw.len());
            let _ = decode_component(&raw);
            let _ = Params::parse(&raw);
        }
    }
}
