//! Integer text and the INCR/DECR/INCRBY/DECRBY arithmetic, as Redis 7.0.15 does them.
//!
//! [`string2ll`] is Redis's strict integer syntax (util.c): no sign but `-`, no spaces, no
//! leading zeros, no `-0`, at most 20 bytes. Redis uses the same parser for stored values and
//! for arguments, so the RESP glue should use it for every integer argument too. The arithmetic
//! checks overflow before adding, exactly where Redis does, so each failure maps to the same
//! error text. Never panics: all arithmetic is checked.

use super::ValueError;

/// Longest accepted integer text: Redis's `LONG_STR_SIZE` (21) minus the terminator.
const MAX_INTEGER_TEXT_LEN: usize = 20;

/// Redis's `string2ll`: the whole of `text` as a signed 64-bit decimal, or `None`.
pub fn string2ll(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > MAX_INTEGER_TEXT_LEN {
        return None;
    }
    if text == b"0" {
        return Some(0);
    }
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(first) {
        return None;
    }
    let mut magnitude = u64::from(first - b'0');
    for &byte in rest {
        if !byte.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(byte - b'0'))?;
    }
    if negative {
        // -(2^63) is the one magnitude above i64::MAX that still fits.
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// An integer argument or stored value, with Redis's error when it is not one.
pub fn parse_integer(text: &[u8]) -> Result<i64, ValueError> {
    string2ll(text).ok_or(ValueError::NotInteger)
}

/// The increment of INCRBY from its argument (Redis parses it before looking at the key).
pub fn incrby_increment(arg: &[u8]) -> Result<i64, ValueError> {
    parse_integer(arg)
}

/// The increment DECRBY applies: the argument negated, refusing `i64::MIN`.
pub fn decrby_increment(arg: &[u8]) -> Result<i64, ValueError> {
    let decrement = parse_integer(arg)?;
    decrement.checked_neg().ok_or(ValueError::DecrementOverflow)
}

/// INCR/DECR/INCRBY/DECRBY on the stored value (`None` when the key is absent, counted as 0):
/// the new value, which is also the reply.
pub fn apply_increment(current: Option<&[u8]>, increment: i64) -> Result<i64, ValueError> {
    let value = match current {
        Some(text) => parse_integer(text)?,
        None => 0,
    };
    value
        .checked_add(increment)
        .ok_or(ValueError::IncrDecrOverflow)
}

/// The text Redis stores for an integer (`ll2string`): plain decimal.
pub fn integer_text(value: i64) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_accepts_only_canonical_decimal() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"00",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
            b"1a",
            b"1.0",
            b"000000000000000000001",
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn increments_report_redis_errors() {
        assert_eq!(apply_increment(None, 5), Ok(5));
        assert_eq!(apply_increment(Some(b"10"), -3), Ok(7));
        assert_eq!(apply_increment(Some(b"x"), 1), Err(ValueError::NotInteger));
        assert_eq!(
            apply_increment(Some(b"9223372036854775807"), 1),
            Err(ValueError::IncrDecrOverflow)
        );
        assert_eq!(
            apply_increment(Some(b"-9223372036854775808"), -1),
            Err(ValueError::IncrDecrOverflow)
        );
        assert_eq!(
            decrby_increment(b"-9223372036854775808"),
            Err(ValueError::DecrementOverflow)
        );
        assert_eq!(decrby_increment(b"5"), Ok(-5));
        assert_eq!(
            ValueError::IncrDecrOverflow.to_string(),
            "ERR increment or decrement would overflow"
        );
    }
}
