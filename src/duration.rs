//! Go-compatible duration parsing (`300ms`, `1.5h`, `2h45m`) and the product's TTL rule.
//!
//! What: [`parse_go_duration`] is a faithful port of Go's `time.ParseDuration`: the same
//! grammar, the same float64 arithmetic for fractions (so `0.3333333333333333333h` gives the
//! same nanosecond Go gives), and the same overflow limits. [`parse_ttl`] layers the TTL rule
//! (positive, bounded, rounded up to whole ticks) on top.
//!
//! Why: clients of shardkv are used to Go's duration syntax (it is what etcd, Consul, Nomad
//! and Kubernetes accept), so a TTL that works there must mean exactly the same thing here;
//! a "close enough" parser would silently shift expiry times. The algorithm is ported line
//! by line rather than rewritten, and is checked against the table from Go's own tests.
//!
//! Must never: panic or loop on any input (user input arrives straight from HTTP); accept
//! anything Go rejects (whitespace, `1d`, a bare `3`); wrap around on overflow; or echo an
//! unbounded amount of user input in an error message (quoted input is truncated).
//!
//! One deliberate divergence from Go: Go's running total can wrap to zero when two components
//! of exactly 2^63 ns are added (`9223372036854775808ns9223372036854775808ns` parses as `0`
//! in Go). Here that input is an [`DurationError::Overflow`], as Go clearly intends.

use std::fmt;
use std::time::Duration;

/// Appended to every grammar error so an API user knows what to send instead.
const EXPECTED: &str = "(expected a duration like 500ms, 2s, 1m30s; units ns, us, µs, ms, s, m, h)";

/// How many characters of user input an error message quotes before truncating.
const QUOTE_LIMIT: usize = 64;

/// Largest magnitude Go accepts, 2^63 ns (only allowed with a leading `-`).
const LIMIT: u64 = 1 << 63;

/// Why a duration string was rejected. Every variant carries the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse: the input was empty or only a sign (`""`, `"-"`, `"+"`).
    #[error("invalid duration {}: no value given {}", quoted(.input), EXPECTED)]
    Empty {
        /// The input as given.
        input: String,
    },
    /// A number was not followed by a unit (`"3"`, `"1.5"`, `"1s2"`). A bare `"0"` is valid.
    #[error("invalid duration {}: missing unit after a number {}", quoted(.input), EXPECTED)]
    MissingUnit {
        /// The input as given.
        input: String,
    },
    /// A number was followed by something that is not a known unit (`"1d"`, `"5 s"`).
    #[error("invalid duration {}: unknown unit {} {}", quoted(.input), quoted(.unit), EXPECTED)]
    UnknownUnit {
        /// The input as given.
        input: String,
        /// The unrecognised unit: the whole run of characters after the number up to the
        /// next digit or `.` (so `"1 s"` reports `" s"`).
        unit: String,
    },
    /// A unit (or any other character) appeared where a number was expected
    /// (`"s"`, `"."`, `".s"`, `" 1s"`).
    #[error(
        "invalid duration {}: expected a number (digits with an optional fraction, like 5 or 1.5) before each unit {}",
        quoted(.input),
        EXPECTED
    )]
    Syntax {
        /// The input as given.
        input: String,
    },
    /// The value does not fit in a signed 64-bit count of nanoseconds.
    #[error(
        "invalid duration {}: out of range, the largest duration is 2562047h47m16.854775807s (about 292 years)",
        quoted(.input)
    )]
    Overflow {
        /// The input as given.
        input: String,
    },
}

/// Parses a Go duration string (`300ms`, `1.5h`, `2h45m`, `-1s`, `10us`, `1µs`, `0`) into
/// signed nanoseconds, with the exact grammar and overflow behaviour of Go's
/// `time.ParseDuration`.
///
/// Grammar: an optional `+` or `-`, then either the bare number `0` or one or more
/// `(number, unit)` pairs with nothing between them. A number is decimal digits with an
/// optional `.` fraction, with at least one digit on either side of the dot (`5.` and `.5` are
/// fine, `.` is not). Units are `ns`, `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`.
/// Fraction digits beyond what a `u64` can hold are ignored, and fractions are scaled with
/// `f64` exactly as Go does. The result must lie in `-2^63 ..= 2^63 - 1` ns.
///
/// # Errors
///
/// [`DurationError::Empty`] for `""` or a lone sign, [`DurationError::MissingUnit`] for a
/// number without a unit, [`DurationError::UnknownUnit`] for an unrecognised unit,
/// [`DurationError::Syntax`] where a number was expected, and [`DurationError::Overflow`]
/// when the value is outside the `i64` nanosecond range.
pub fn parse_go_duration(s: &str) -> Result<i64, DurationError> {
    let bytes = s.as_bytes();
    let input = || s.to_owned();

    // Consume [-+]?
    let (neg, mut rest) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    // Special case: if all that is left is "0", this is zero.
    if rest == b"0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Empty { input: input() });
    }

    let mut total: u64 = 0;
    while let Some(&first) = rest.first() {
        // The next character must be [0-9.]
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(DurationError::Syntax { input: input() });
        }

        // Consume [0-9]*
        let (mut v, after_int) =
            leading_int(rest).ok_or_else(|| DurationError::Overflow { input: input() })?;
        let pre = after_int.len() != rest.len();
        rest = after_int;

        // Consume (\.[0-9]*)?
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if let Some((b'.', after_dot)) = rest.split_first() {
            let (frac, frac_scale, after_frac) = leading_fraction(after_dot);
            post = after_frac.len() != after_dot.len();
            f = frac;
            scale = frac_scale;
            rest = after_frac;
        }
        if !pre && !post {
            // No digits at all, e.g. ".s" or "-.".
            return Err(DurationError::Syntax { input: input() });
        }

        // Consume the unit: the longest run of bytes that are neither digits nor '.'.
        // Both stop bytes are ASCII, so the split always falls on a char boundary.
        let unit_len = rest
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit { input: input() });
        }
        let (unit_bytes, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let Some(unit) = unit_nanos(unit_bytes) else {
            return Err(DurationError::UnknownUnit {
                input: input(),
                unit: String::from_utf8_lossy(unit_bytes).into_owned(),
            });
        };

        if v > LIMIT / unit {
            return Err(DurationError::Overflow { input: input() });
        }
        v *= unit;
        if f > 0 {
            // float64 is needed to be nanosecond accurate for fractions of hours; this is
            // Go's exact expression, so the rounding matches Go bit for bit. f / scale < 1,
            // so the product is below `unit` (at most 3.6e12) and the cast cannot saturate.
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(DurationError::Overflow { input: input() });
            }
        }
        // Go writes `d += v` and can wrap when both are exactly 2^63; we refuse instead.
        total = match total.checked_add(v) {
            Some(t) if t <= LIMIT => t,
            _ => return Err(DurationError::Overflow { input: input() }),
        };
    }

    if neg {
        // total <= 2^63, so the negation always fits (2^63 itself becomes i64::MIN).
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| DurationError::Overflow { input: input() })
}

/// Go's `leadingInt`: consumes leading ASCII digits. Returns `None` if the value exceeds
/// 2^63 (Go's overflow error), otherwise the value and the remaining bytes.
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(c - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Go's `leadingFraction`: consumes leading ASCII digits of a fraction. Once another digit
/// would overflow the accumulator, further digits are consumed but ignored (precision stops
/// growing, no error). Returns the digits as an integer, `10^(digits kept)`, and the rest.
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale: f64 = 1.0;
    let mut overflow = false;
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        i += 1;
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(c - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[i..])
}

/// Nanoseconds per unit, or `None` for an unknown unit. Matches Go's `unitMap`.
fn unit_nanos(unit: &[u8]) -> Option<u64> {
    Some(match unit {
        b"ns" => 1,
        // "µs" (U+00B5 micro sign) and "μs" (U+03BC Greek mu), as UTF-8.
        b"us" | b"\xC2\xB5s" | b"\xCE\xBCs" => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        b"m" => 60_000_000_000,
        b"h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Why a TTL was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// The value is not a valid Go duration.
    #[error(transparent)]
    Syntax(#[from] DurationError),
    /// The duration is zero or negative (including negative values too large to represent).
    #[error("ttl must be positive, got {}", quoted(.input))]
    NotPositive {
        /// The input as given.
        input: String,
    },
    /// The duration is longer than the configured maximum (including positive values too
    /// large to represent at all).
    #[error("ttl {} exceeds the maximum of {max_secs}s{}", quoted(.input), human_suffix(.max_secs))]
    TooLong {
        /// The input as given.
        input: String,
        /// The maximum, in whole seconds (sub-second parts of the maximum are not shown).
        max_secs: u64,
    },
}

/// The product's TTL rule on top of the grammar: positive, at most `max`, rounded UP to
/// whole `tick` ([`std::time::Duration`]). Returns the TTL as a whole number of ticks
/// (`u64`, `>= 1`).
///
/// The `max` check applies to the duration as written, before rounding, so when `max` is not
/// a multiple of `tick` the returned ticks may cover up to one tick more than `max`. A zero
/// `tick` is treated as 1ns rather than panicking. Values that overflow the Go grammar's range
/// are reported as [`TtlError::TooLong`] (or [`TtlError::NotPositive`] when negative), since
/// that is the actionable reading of them.
///
/// # Errors
///
/// [`TtlError::Syntax`] if `s` is not a Go duration, [`TtlError::NotPositive`] if it is zero
/// or negative, [`TtlError::TooLong`] if it exceeds `max`.
pub fn parse_ttl(s: &str, tick: Duration, max: Duration) -> Result<u64, TtlError> {
    let nanos = match parse_go_duration(s) {
        Ok(n) => n,
        Err(DurationError::Overflow { input }) if input.starts_with('-') => {
            return Err(TtlError::NotPositive { input })
        }
        Err(DurationError::Overflow { input }) => {
            return Err(TtlError::TooLong {
                input,
                max_secs: max.as_secs(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    if nanos <= 0 {
        return Err(TtlError::NotPositive {
            input: s.to_owned(),
        });
    }
    let nanos = u128::from(nanos.unsigned_abs());
    if nanos > max.as_nanos() {
        return Err(TtlError::TooLong {
            input: s.to_owned(),
            max_secs: max.as_secs(),
        });
    }
    let tick = tick.as_nanos().max(1);
    // nanos <= i64::MAX and tick >= 1, so the tick count always fits in a u64.
    Ok(u64::try_from(nanos.div_ceil(tick)).unwrap_or(u64::MAX))
}

/// `Display` for user input inside an error message: Rust-quoted and escaped (so control
/// characters and quotes cannot garble the message), truncated after [`QUOTE_LIMIT`] chars.
struct Quoted<'a>(&'a str);

fn quoted(s: &str) -> Quoted<'_> {
    Quoted(s)
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTE_LIMIT) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..cut], self.0.len()),
        }
    }
}

/// A human gloss for a whole number of seconds: `" (10 years)"`, `" (2 days)"`, or nothing.
fn human_suffix(secs: &u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (365 * 86_400, "year"),
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
    ];
    let secs = *secs;
    if secs == 0 {
        return String::new();
    }
    for (size, name) in UNITS {
        if secs % size == 0 {
            let n = secs / size;
            let plural = if n == 1 { "" } else { "s" };
            return format!(" ({n} {name}{plural})");
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NS: i64 = 1;
    const US: i64 = 1_000;
    const MS: i64 = 1_000_000;
    const SEC: i64 = 1_000_000_000;
    const MIN: i64 = 60 * SEC;
    const HOUR: i64 = 60 * MIN;

    /// Go's `parseDurationTests` (src/time/time_test.go), with the expected values
    /// written the way Go writes them.
    const GO_OK: &[(&str, i64)] = &[
        // simple
        ("0", 0),
        ("5s", 5 * SEC),
        ("30s", 30 * SEC),
        ("1478s", 1478 * SEC),
        // sign
        ("-5s", -5 * SEC),
        ("+5s", 5 * SEC),
        ("-0", 0),
        ("+0", 0),
        // decimal
        ("5.0s", 5 * SEC),
        ("5.6s", 5 * SEC + 600 * MS),
        ("5.s", 5 * SEC),
        (".5s", 500 * MS),
        ("1.0s", SEC),
        ("1.00s", SEC),
        ("1.004s", SEC + 4 * MS),
        ("1.0040s", SEC + 4 * MS),
        ("100.00100s", 100 * SEC + MS),
        // different units
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12µs", 12 * US), // U+00B5
        ("12μs", 12 * US), // U+03BC
        ("13ms", 13 * MS),
        ("14s", 14 * SEC),
        ("15m", 15 * MIN),
        ("16h", 16 * HOUR),
        // composite durations
        ("3h30m", 3 * HOUR + 30 * MIN),
        ("10.5s4m", 4 * MIN + 10 * SEC + 500 * MS),
        ("-2m3.4s", -(2 * MIN + 3 * SEC + 400 * MS)),
        (
            "1h2m3s4ms5us6ns",
            HOUR + 2 * MIN + 3 * SEC + 4 * MS + 5 * US + 6 * NS,
        ),
        ("39h9m14.425s", 39 * HOUR + 9 * MIN + 14 * SEC + 425 * MS),
        // large value
        ("52763797000ns", 52_763_797_000),
        // more than 9 digits after decimal point, golang.org/issue/6617
        ("0.3333333333333333333h", 20 * MIN),
        // 1<<53 + 1 cannot be stored precisely in a float64
        ("9007199254740993ns", (1 << 53) + 1),
        // largest duration representable in int64 nanoseconds
        ("9223372036854775807ns", i64::MAX),
        ("9223372036854775.807us", i64::MAX),
        ("9223372036s854ms775us807ns", i64::MAX),
        ("9223372036854ms775us807ns", i64::MAX),
        ("-9223372036854775807ns", i64::MIN + 1),
        ("-9223372036854775808ns", i64::MIN),
        ("-9223372036854775.808us", i64::MIN),
        ("-9223372036s854ms775us808ns", i64::MIN),
        ("-9223372036854ms775us808ns", i64::MIN),
        // largest negative round trip value, golang.org/issue/48629
        ("-2562047h47m16.854775808s", i64::MIN),
        // huge string, golang.org/issue/15011
        ("0.100000000000000000000h", 6 * MIN),
        // first overflow check in leadingFraction: 0.8301034832854775807h, float-scaled
        (
            "0.830103483285477580700h",
            49 * MIN + 48 * SEC + 372_539_827,
        ),
        // the round-trip of Go's Duration(math.MaxInt64).String()
        ("2562047h47m16.854775807s", i64::MAX),
    ];

    #[test]
    fn go_table_valid() {
        for &(input, want) in GO_OK {
            assert_eq!(parse_go_duration(input), Ok(want), "input {input:?}");
        }
    }

    /// Go's `parseDurationErrorTests`, each with the variant we classify it as.
    #[test]
    fn go_table_errors() {
        enum Kind {
            Empty,
            MissingUnit,
            UnknownUnit(&'static str),
            Syntax,
            Overflow,
        }
        use Kind::*;
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let cases: Vec<(String, Kind)> = vec![
            ("".into(), Empty),
            ("3".into(), MissingUnit),
            ("-".into(), Empty),
            ("+".into(), Empty),
            ("s".into(), Syntax),
            (".".into(), Syntax),
            ("-.".into(), Syntax),
            (".s".into(), Syntax),
            ("+.s".into(), Syntax),
            ("1d".into(), UnknownUnit("d")),
            // Go's invalid-UTF-8 cases; a &str cannot hold them, so they arrive as U+FFFD.
            (lossy(b"\x85\x85"), Syntax),
            (lossy(b"\xffff"), Syntax),
            (lossy(b"hello \xffff world"), Syntax),
            ("\u{FFFD}".into(), Syntax),
            ("\u{FFFD} hello \u{FFFD} world".into(), Syntax),
            // overflow
            ("9223372036854775810ns".into(), Overflow),
            ("9223372036854775808ns".into(), Overflow),
            ("-9223372036854775809ns".into(), Overflow),
            ("9223372036854776us".into(), Overflow),
            ("3000000h".into(), Overflow),
            ("9223372036854775.808us".into(), Overflow),
            ("9223372036854ms775us808ns".into(), Overflow),
            // 9223372036854s alone is ~2.9e5 years: far out of range
            ("9223372036854s775ms807us".into(), Overflow),
            // leadingInt overflow (a single number above 2^63)
            ("99999999999999999999ns".into(), Overflow),
            // Go wraps this to 0 (2^63 + 2^63); we report overflow instead.
            (
                "9223372036854775808ns9223372036854775808ns".into(),
                Overflow,
            ),
            (
                "-9223372036854775808ns9223372036854775808ns".into(),
                Overflow,
            ),
            // more shapes
            ("1.5".into(), MissingUnit),
            ("1s2".into(), MissingUnit),
            ("5x".into(), UnknownUnit("x")),
            ("1 s".into(), UnknownUnit(" s")),
            ("1s ".into(), UnknownUnit("s ")),
            ("1S".into(), UnknownUnit("S")),
            ("1sec".into(), UnknownUnit("sec")),
            (" 1s".into(), Syntax),
            ("--1s".into(), Syntax),
            ("+-1s".into(), Syntax),
            ("00".into(), MissingUnit),
            ("0 ".into(), UnknownUnit(" ")),
            ("1.2.3s".into(), MissingUnit),
            ("1..2s".into(), MissingUnit),
        ];
        for (input, kind) in cases {
            let err = parse_go_duration(&input).expect_err(&input);
            let inp = input.clone();
            match (kind, err) {
                (Empty, DurationError::Empty { input: i })
                | (MissingUnit, DurationError::MissingUnit { input: i })
                | (Syntax, DurationError::Syntax { input: i })
                | (Overflow, DurationError::Overflow { input: i }) => assert_eq!(i, inp),
                (UnknownUnit(u), DurationError::UnknownUnit { input: i, unit }) => {
                    assert_eq!(i, inp);
                    assert_eq!(unit, u, "input {inp:?}");
                }
                (_, other) => panic!("input {inp:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn more_valid_shapes() {
        assert_eq!(parse_go_duration("1.s"), Ok(SEC));
        assert_eq!(parse_go_duration("0s"), Ok(0));
        assert_eq!(parse_go_duration("-0s"), Ok(0));
        assert_eq!(parse_go_duration("000001s"), Ok(SEC));
        assert_eq!(parse_go_duration("1.5h"), Ok(90 * MIN));
        assert_eq!(parse_go_duration("2h45m"), Ok(2 * HOUR + 45 * MIN));
        assert_eq!(parse_go_duration("1h1h"), Ok(2 * HOUR));
        assert_eq!(parse_go_duration("1µs"), Ok(US));
        assert_eq!(parse_go_duration("300ms"), Ok(300 * MS));
        // Sub-nanosecond fractions are truncated, not rounded.
        assert_eq!(parse_go_duration("1.9ns"), Ok(1));
        assert_eq!(parse_go_duration("0.9ns"), Ok(0));
        assert_eq!(parse_go_duration("-1.9ns"), Ok(-1));
        // A 2^63 intermediate is fine for a negative total only.
        assert_eq!(parse_go_duration("-9223372036854775807ns1ns"), Ok(i64::MIN));
        assert!(matches!(
            parse_go_duration("9223372036854775807ns1ns"),
            Err(DurationError::Overflow { .. })
        ));
        // A long tail of fraction digits is consumed and ignored, not an error. The 18 nines
        // that fit in the accumulator become float64 1e18 (the nearest double), so, exactly
        // as in Go, the fraction rounds up to a whole second.
        let long = format!("1.{}s", "9".repeat(10_000));
        assert_eq!(parse_go_duration(&long), Ok(2 * SEC));
        assert_eq!(parse_go_duration("1.999999999s"), Ok(1_999_999_999));
    }

    #[test]
    fn error_messages() {
        let msg = |s: &str| parse_go_duration(s).unwrap_err().to_string();
        assert_eq!(
            msg("5x"),
            "invalid duration \"5x\": unknown unit \"x\" (expected a duration like 500ms, 2s, \
             1m30s; units ns, us, µs, ms, s, m, h)"
        );
        assert_eq!(
            msg(""),
            "invalid duration \"\": no value given (expected a duration like 500ms, 2s, 1m30s; \
             units ns, us, µs, ms, s, m, h)"
        );
        assert_eq!(
            msg("3"),
            "invalid duration \"3\": missing unit after a number (expected a duration like \
             500ms, 2s, 1m30s; units ns, us, µs, ms, s, m, h)"
        );
        assert!(msg(".s").starts_with("invalid duration \".s\": expected a number"));
        assert_eq!(
            msg("3000000h"),
            "invalid duration \"3000000h\": out of range, the largest duration is \
             2562047h47m16.854775807s (about 292 years)"
        );
        // Control characters and quotes are escaped.
        assert!(msg("1\n\"").contains(r#""1\n\"""#));
        // Long input is truncated in the message.
        let huge = format!("1{}", "x".repeat(100_000));
        let m = msg(&huge);
        assert!(m.len() < 400, "{m}");
        assert!(m.contains("… (100001 bytes)"), "{m}");
    }

    const TEN_YEARS: Duration = Duration::from_secs(87_600 * 3_600);
    const MILLI: Duration = Duration::from_millis(1);

    #[test]
    fn ttl_rule() {
        assert_eq!(parse_ttl("1s", MILLI, TEN_YEARS), Ok(1000));
        assert_eq!(parse_ttl("1500us", MILLI, TEN_YEARS), Ok(2));
        assert_eq!(parse_ttl("1ns", MILLI, TEN_YEARS), Ok(1));
        assert_eq!(parse_ttl("1ms", MILLI, TEN_YEARS), Ok(1));
        assert_eq!(parse_ttl("1.000001ms", MILLI, TEN_YEARS), Ok(2));
        assert_eq!(parse_ttl("87600h", MILLI, TEN_YEARS), Ok(315_360_000_000));
        assert_eq!(parse_ttl("1s", Duration::ZERO, TEN_YEARS), Ok(SEC as u64));
        assert_eq!(parse_ttl("1s", Duration::from_secs(60), TEN_YEARS), Ok(1));
        for s in ["0", "0s", "-0", "-1s", "-9223372036854775808ns"] {
            assert_eq!(
                parse_ttl(s, MILLI, TEN_YEARS),
                Err(TtlError::NotPositive { input: s.into() }),
                "{s}"
            );
        }
        for s in ["87601h", "87600h1ns", "3000000h", "9223372036854775808ns"] {
            assert_eq!(
                parse_ttl(s, MILLI, TEN_YEARS),
                Err(TtlError::TooLong {
                    input: s.into(),
                    max_secs: 315_360_000
                }),
                "{s}"
            );
        }
        assert_eq!(
            parse_ttl("-3000000h", MILLI, TEN_YEARS),
            Err(TtlError::NotPositive {
                input: "-3000000h".into()
            })
        );
        assert_eq!(
            parse_ttl("5x", MILLI, TEN_YEARS),
            Err(TtlError::Syntax(DurationError::UnknownUnit {
                input: "5x".into(),
                unit: "x".into()
            }))
        );
    }

    #[test]
    fn ttl_messages() {
        let msg = |s: &str, max: Duration| parse_ttl(s, MILLI, max).unwrap_err().to_string();
        assert_eq!(msg("0s", TEN_YEARS), "ttl must be positive, got \"0s\"");
        assert_eq!(
            msg("87601h", TEN_YEARS),
            "ttl \"87601h\" exceeds the maximum of 315360000s (10 years)"
        );
        assert_eq!(
            msg("2h", Duration::from_secs(3600)),
            "ttl \"2h\" exceeds the maximum of 3600s (1 hour)"
        );
        assert_eq!(
            msg("2h", Duration::from_secs(90)),
            "ttl \"2h\" exceeds the maximum of 90s"
        );
        assert_eq!(
            msg("5x", TEN_YEARS),
            parse_go_duration("5x").unwrap_err().to_string()
        );
    }

    /// Formats components the way a Go client would write them.
    fn go_style(neg: bool, h: u64, m: u64, s: u64, ms: u64, skip_zero: bool, frac: bool) -> String {
        let mut out = String::from(if neg { "-" } else { "" });
        if frac {
            // Go's Duration.String() shape: 72h3m0.5s
            if h > 0 {
                out.push_str(&format!("{h}h"));
            }
            if h > 0 || m > 0 {
                out.push_str(&format!("{m}m"));
            }
            out.push_str(&format!("{}.{:03}s", s + ms / 1000, ms % 1000));
            return out;
        }
        for (v, u) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
            if v > 0 || !skip_zero {
                out.push_str(&format!("{v}{u}"));
            }
        }
        if out.is_empty() || out == "-" {
            out.push_str("0s");
        }
        out
    }

    proptest! {
        #[test]
        fn components_round_trip(
            neg in any::<bool>(),
            h in 0u64..2_000_000,
            m in 0u64..1_000,
            s in 0u64..1_000,
            ms in 0u64..100_000,
            skip_zero in any::<bool>(),
            frac in any::<bool>(),
        ) {
            let text = go_style(neg, h, m, s, ms, skip_zero, frac);
            let mag = (h * 3_600 + m * 60 + s) as i64 * SEC + ms as i64 * MS;
            let want = if neg { -mag } else { mag };
            prop_assert_eq!(parse_go_duration(&text), Ok(want), "{}", text);
        }

        /// Integer-only inputs must equal exact arithmetic, overflow exactly at Go's limits.
        #[test]
        fn integers_match_exact_arithmetic(
            sign in prop::sample::select(vec!["", "+", "-"]),
            parts in prop::collection::vec(
                (any::<u64>().prop_map(|v| v >> (v % 64)), 0usize..8, 0usize..3),
                1..5,
            ),
        ) {
            const UNITS: [(&str, i128); 8] = [
                ("ns", 1), ("us", 1_000), ("µs", 1_000), ("μs", 1_000),
                ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000),
                ("h", 3_600_000_000_000),
            ];
            let mut text = sign.to_string();
            let mut exact: i128 = 0;
            for &(v, u, zeros) in &parts {
                text.push_str(&"0".repeat(zeros));
                text.push_str(&format!("{v}{}", UNITS[u].0));
                exact += i128::from(v) * UNITS[u].1;
            }
            let signed = if sign == "-" { -exact } else { exact };
            match i64::try_from(signed) {
                Ok(want) => prop_assert_eq!(parse_go_duration(&text), Ok(want), "{}", text),
                Err(_) => prop_assert!(
                    matches!(parse_go_duration(&text), Err(DurationError::Overflow { .. })),
                    "{}", text
                ),
            }
        }

        /// Up to 9 fraction digits of seconds are exact in Go's float arithmetic.
        #[test]
        fn second_fractions_are_exact(whole in 0u64..1_000_000_000, frac in 0u64..1_000_000_000, digits in 1usize..=9) {
            let frac = frac % 10u64.pow(digits as u32);
            let text = format!("{whole}.{frac:0digits$}s");
            let want = whole as i64 * SEC + frac as i64 * 10i64.pow(9 - digits as u32);
            prop_assert_eq!(parse_go_duration(&text), Ok(want), "{}", text);
        }

        #[test]
        fn never_panics_on_strings(s in ".*") {
            let _ = parse_go_duration(&s);
            let _ = parse_ttl(&s, MILLI, TEN_YEARS);
        }

        #[test]
        fn never_panics_on_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) {
            let s = String::from_utf8_lossy(&b);
            let _ = parse_go_duration(&s);
            let _ = parse_ttl(&s, MILLI, TEN_YEARS);
        }

        #[test]
        fn never_panics_on_near_misses(s in "[-+]?([0-9]{0,21}\\.?[0-9]{0,22}(ns|us|µs|μs|ms|s|m|h|x| )?){1,4}") {
            if let Ok(n) = parse_go_duration(&s) {
                if n > 0 {
                    prop_assert!(parse_ttl(&s, MILLI, Duration::MAX).is_ok());
                }
            }
        }
    }
}
