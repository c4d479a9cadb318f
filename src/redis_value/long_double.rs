//! INCRBYFLOAT's arithmetic on an exact emulation of the x87 80-bit `long double`.
//!
//! Redis on x86-64 parses with `strtold`, adds two `long double`s and prints with
//! `"%.17Lf"` (util.c `string2ld`/`ld2string`, t_string.c `incrbyfloatCommand`). Rust has no
//! 80-bit float, and approximating with `f64` would give different digits, so a value here is
//! `(sign, 64-bit mantissa, binary exponent)` with the x87 range (normal exponents down to
//! 2^-16382, subnormals down to 2^-16445, largest finite just below 2^16384), and every step
//! is done exactly with a small in-tree bignum (`big_natural`) and then rounded once, half to even, as the FPU and
//! glibc do in the default rounding mode:
//! - parsing: the decimal (or hexadecimal) text's exact value, correctly rounded;
//! - addition: the exact sum, correctly rounded;
//! - printing: the exact binary value to 17 decimals, rounded half to even.
//!
//! What Redis accepts (string2ld): 1..5119 bytes, no leading space, the whole text consumed,
//! not NaN, and not an overflow to infinity or an underflow to zero; but "inf"/"infinity" are
//! accepted as values (and then the sum is refused as infinite). Must never panic or allocate
//! beyond a few kilobytes: inputs are bounded by the 5119-byte limit and by range pre-checks
//! before any power of ten is built.

use super::big_natural::BigNatural;
use super::ValueError;

/// Redis's `MAX_LONG_DOUBLE_CHARS`: float text must be shorter than this.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Exponent of the least significant mantissa bit of subnormals (and of the smallest normals).
const MIN_UNIT_EXPONENT: i64 = -16445;
/// Largest exponent of the least significant mantissa bit of a finite value.
const MAX_UNIT_EXPONENT: i64 = 16320;
/// Digits after the point that `LD_STR_HUMAN` prints before trimming.
const HUMAN_DECIMALS: u32 = 17;

/// An x87 extended-precision value: finite values are `mantissa * 2^exponent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongDouble {
    negative: bool,
    magnitude: Magnitude,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Magnitude {
    Finite { mantissa: u64, exponent: i64 },
    Infinite,
}

impl LongDouble {
    /// Zero with the given sign.
    pub const fn zero(negative: bool) -> Self {
        LongDouble {
            negative,
            magnitude: Magnitude::Finite {
                mantissa: 0,
                exponent: 0,
            },
        }
    }

    /// The exact value of a 64-bit integer (every `i64` fits the 64-bit mantissa).
    pub fn from_i64(value: i64) -> Self {
        LongDouble::round(
            value < 0,
            BigNatural::from_u128(u128::from(value.unsigned_abs())),
            &BigNatural::from_u128(1),
            0,
        )
    }

    /// True for +/- infinity.
    pub fn is_infinite(&self) -> bool {
        self.magnitude == Magnitude::Infinite
    }

    /// Redis's `string2ld`: `None` when Redis replies "value is not a valid float".
    pub fn parse(text: &[u8]) -> Option<Self> {
        if text.is_empty() || text.len() >= MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        let (negative, body) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(LongDouble {
                negative,
                magnitude: Magnitude::Infinite,
            });
        }
        let hex_body = match body {
            [b'0', b'x' | b'X', rest @ ..] => Some(rest),
            _ => None,
        };
        let value = match hex_body {
            Some(rest) => parse_hexadecimal(negative, rest)?,
            None => parse_decimal(negative, body)?,
        };
        // strtold sets ERANGE for an overflow to infinity or an underflow to zero; Redis
        // refuses both. (An exact zero such as "0e999" is not an underflow.)
        if value.is_infinite() {
            return None;
        }
        Some(value)
    }

    /// `self + other` in the default rounding mode (round to nearest, ties to even); `None` when the sum is NaN
    /// (infinities of opposite signs).
    pub fn plus(self, other: LongDouble) -> Option<LongDouble> {
        let (a_mantissa, a_exponent, b_mantissa, b_exponent) =
            match (self.magnitude, other.magnitude) {
                (Magnitude::Infinite, Magnitude::Infinite) => {
                    return (self.negative == other.negative).then_some(self);
                }
                (Magnitude::Infinite, _) => return Some(self),
                (_, Magnitude::Infinite) => return Some(other),
                (
                    Magnitude::Finite {
                        mantissa: a_mantissa,
                        exponent: a_exponent,
                    },
                    Magnitude::Finite {
                        mantissa: b_mantissa,
                        exponent: b_exponent,
                    },
                ) => (a_mantissa, a_exponent, b_mantissa, b_exponent),
            };
        if a_mantissa == 0 && b_mantissa == 0 {
            return Some(LongDouble::zero(self.negative && other.negative));
        }
        let base = a_exponent.min(b_exponent);
        let a = BigNatural::from_u128(u128::from(a_mantissa))
            .shifted_left((a_exponent - base).unsigned_abs());
        let b = BigNatural::from_u128(u128::from(b_mantissa))
            .shifted_left((b_exponent - base).unsigned_abs());
        let (negative, sum) = if self.negative == other.negative {
            (self.negative, a.plus(&b))
        } else if a >= b {
            let mut difference = a;
            difference.subtract(&b);
            (self.negative, difference)
        } else {
            let mut difference = b;
            difference.subtract(&a);
            (other.negative, difference)
        };
        if sum.is_zero() {
            // x + (-x) is +0 when rounding to nearest.
            return Some(LongDouble::zero(false));
        }
        Some(LongDouble::round(
            negative,
            sum,
            &BigNatural::from_u128(1),
            base,
        ))
    }

    /// The nearest value to `numerator / denominator * 2^exponent`, ties to even mantissa,
    /// subnormals as the x87 format has them, infinity past the largest finite value.
    fn round(
        negative: bool,
        numerator: BigNatural,
        denominator: &BigNatural,
        exponent: i64,
    ) -> LongDouble {
        if numerator.is_zero() {
            return LongDouble::zero(negative);
        }
        // Scale so the integer quotient has 67 or 68 bits: 64 kept, the rest and the
        // remainder decide the rounding.
        let scale = 67 + denominator.bit_len() as i64 - numerator.bit_len() as i64;
        let (dividend, divisor) = if scale >= 0 {
            (
                numerator.shifted_left(scale.unsigned_abs()),
                denominator.clone(),
            )
        } else {
            (numerator, denominator.shifted_left(scale.unsigned_abs()))
        };
        let mut remainder = dividend;
        let mut shifted_divisor = divisor.shifted_left(67);
        let mut quotient: u128 = 0;
        for bit in (0..68).rev() {
            if remainder >= shifted_divisor {
                remainder.subtract(&shifted_divisor);
                quotient |= 1u128 << bit;
            }
            shifted_divisor.halve();
        }
        let sticky = !remainder.is_zero();
        let quotient_exponent = exponent - scale;
        let quotient_bits = 128 - i64::from(quotient.leading_zeros());
        let unit_exponent = (quotient_exponent + quotient_bits - 64).max(MIN_UNIT_EXPONENT);
        let drop = unit_exponent - quotient_exponent;
        if drop >= 69 {
            // Below half the smallest subnormal: rounds to zero.
            return LongDouble::zero(negative);
        }
        let (mut mantissa, mut unit_exponent) = if drop <= 0 {
            (quotient << drop.unsigned_abs(), unit_exponent)
        } else {
            let drop = drop.unsigned_abs() as u32;
            let kept = quotient >> drop;
            let dropped = quotient & ((1u128 << drop) - 1);
            let half = 1u128 << (drop - 1);
            let round_up = dropped > half || (dropped == half && (sticky || kept & 1 == 1));
            (kept + u128::from(round_up), unit_exponent)
        };
        if mantissa == 1u128 << 64 {
            mantissa = 1u128 << 63;
            unit_exponent += 1;
        }
        if mantissa == 0 {
            return LongDouble::zero(negative);
        }
        if unit_exponent > MAX_UNIT_EXPONENT {
            return LongDouble {
                negative,
                magnitude: Magnitude::Infinite,
            };
        }
        LongDouble {
            negative,
            magnitude: Magnitude::Finite {
                mantissa: mantissa as u64,
                exponent: unit_exponent,
            },
        }
    }

    /// Redis's `ld2string(..., LD_STR_HUMAN)`: `"%.17Lf"`, trailing zeros and a trailing
    /// point removed, and "-0" written "0". Infinity prints as "inf"/"-inf" (Redis never
    /// stores it).
    pub fn to_human_text(&self) -> String {
        let (mantissa, exponent) = match self.magnitude {
            Magnitude::Infinite => {
                return if self.negative { "-inf" } else { "inf" }.to_string();
            }
            Magnitude::Finite { mantissa, exponent } => (mantissa, exponent),
        };
        let scaled = u128::from(mantissa) * u128::from(10u64.pow(HUMAN_DECIMALS));
        let digits = if exponent >= 0 {
            BigNatural::from_u128(scaled)
                .shifted_left(exponent.unsigned_abs())
                .to_decimal()
        } else {
            let drop = exponent.unsigned_abs();
            let rounded = if drop >= 128 {
                0 // scaled < 2^121, so the value is below one half.
            } else {
                let drop = drop as u32;
                let kept = scaled >> drop;
                let dropped = scaled & ((1u128 << drop) - 1);
                let half = 1u128 << (drop - 1);
                kept + u128::from(dropped > half || (dropped == half && kept & 1 == 1))
            };
            rounded.to_string()
        };
        let decimals = HUMAN_DECIMALS as usize;
        let padded = if digits.len() <= decimals {
            format!("{}{digits}", "0".repeat(decimals + 1 - digits.len()))
        } else {
            digits
        };
        let (whole, fraction) = padded.split_at(padded.len() - decimals);
        let fraction = fraction.trim_end_matches('0');
        let mut text = String::with_capacity(padded.len() + 2);
        if self.negative {
            text.push('-');
        }
        text.push_str(whole);
        if !fraction.is_empty() {
            text.push('.');
            text.push_str(fraction);
        }
        if text == "-0" {
            text = "0".to_string();
        }
        text
    }
}

/// The decimal form strtold accepts: digits, an optional point and digits (at least one digit
/// in all), then an optional exponent `e[+-]digits`.
fn parse_decimal(negative: bool, body: &[u8]) -> Option<LongDouble> {
    let (integer_digits, rest) = split_digits(body, u8::is_ascii_digit);
    let (fraction_digits, rest) = match rest.split_first() {
        Some((b'.', after)) => split_digits(after, u8::is_ascii_digit),
        _ => (&rest[..0], rest),
    };
    if integer_digits.is_empty() && fraction_digits.is_empty() {
        return None;
    }
    let exponent = parse_exponent(rest, b"eE")?;
    let all_digits = integer_digits.iter().chain(fraction_digits);
    let mut significant: Vec<u8> = all_digits
        .skip_while(|&&digit| digit == b'0')
        .copied()
        .collect();
    let mut power = exponent - fraction_digits.len() as i64;
    while significant.last() == Some(&b'0') {
        significant.pop();
        power += 1;
    }
    if significant.is_empty() {
        return Some(LongDouble::zero(negative));
    }
    let count = significant.len() as i64;
    // The value lies in [10^(count-1+power), 10^(count+power)). The largest finite value is
    // about 1.19e4932, half the smallest subnormal about 1.8e-4951.
    if count - 1 + power > 4933 {
        return Some(LongDouble {
            negative,
            magnitude: Magnitude::Infinite,
        });
    }
    if count + power < -4952 {
        return None;
    }
    let mut numerator = BigNatural::default();
    for digit in &significant {
        numerator.mul_add_small(10, u64::from(digit - b'0'));
    }
    let value = if power >= 0 {
        let mut left = power;
        while left > 0 {
            let step = left.min(19) as u32;
            numerator.mul_add_small(10u64.pow(step), 0);
            left -= i64::from(step);
        }
        LongDouble::round(negative, numerator, &BigNatural::from_u128(1), 0)
    } else {
        let denominator = BigNatural::power_of_ten(power.unsigned_abs() as u32);
        LongDouble::round(negative, numerator, &denominator, 0)
    };
    nonzero(value)
}

/// The hexadecimal form after "0x": hex digits with an optional point (at least one digit),
/// then an optional binary exponent `p[+-]digits`.
fn parse_hexadecimal(negative: bool, body: &[u8]) -> Option<LongDouble> {
    let (integer_digits, rest) = split_digits(body, u8::is_ascii_hexdigit);
    let (fraction_digits, rest) = match rest.split_first() {
        Some((b'.', after)) => split_digits(after, u8::is_ascii_hexdigit),
        _ => (&rest[..0], rest),
    };
    if integer_digits.is_empty() && fraction_digits.is_empty() {
        // strtold reads just the "0" and stops at the 'x': not the whole text.
        return None;
    }
    let exponent = parse_exponent(rest, b"pP")?;
    let mut numerator = BigNatural::default();
    for digit in integer_digits.iter().chain(fraction_digits) {
        let value = char::from(*digit).to_digit(16).unwrap_or(0);
        numerator.mul_add_small(16, u64::from(value));
    }
    if numerator.is_zero() {
        return Some(LongDouble::zero(negative));
    }
    let power = exponent - 4 * fraction_digits.len() as i64;
    let top = numerator.bit_len() as i64 + power;
    if top > 16385 {
        return Some(LongDouble {
            negative,
            magnitude: Magnitude::Infinite,
        });
    }
    if top < MIN_UNIT_EXPONENT - 2 {
        return None;
    }
    nonzero(LongDouble::round(
        negative,
        numerator,
        &BigNatural::from_u128(1),
        power,
    ))
}

/// A nonzero text that rounded to zero underflowed: Redis refuses it.
fn nonzero(value: LongDouble) -> Option<LongDouble> {
    match value.magnitude {
        Magnitude::Finite { mantissa: 0, .. } => None,
        _ => Some(value),
    }
}

/// The longest prefix of bytes passing `is_digit`, and the rest.
fn split_digits(text: &[u8], is_digit: fn(&u8) -> bool) -> (&[u8], &[u8]) {
    let end = text
        .iter()
        .position(|byte| !is_digit(byte))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// An optional exponent that must be all of `rest`: 0 when `rest` is empty, `None` when
/// malformed. Saturates far beyond any meaningful exponent.
fn parse_exponent(rest: &[u8], markers: &[u8]) -> Option<i64> {
    let Some((marker, after)) = rest.split_first() else {
        return Some(0);
    };
    if !markers.contains(marker) {
        return None;
    }
    let (negative, digits) = match after.split_first() {
        Some((b'-', digits)) => (true, digits),
        Some((b'+', digits)) => (false, digits),
        _ => (false, after),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |value, digit| {
        (value * 10 + i64::from(digit - b'0')).min(1_000_000_000)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// INCRBYFLOAT: the stored value (`None` when the key is absent, counted as 0) plus the
/// increment, as the text Redis stores and replies with.
pub fn incr_by_float(current: Option<&[u8]>, increment: &[u8]) -> Result<String, ValueError> {
    let value = match current {
        Some(text) => LongDouble::parse(text).ok_or(ValueError::NotValidFloat)?,
        None => LongDouble::zero(false),
    };
    let increment = LongDouble::parse(increment).ok_or(ValueError::NotValidFloat)?;
    let sum = value.plus(increment).ok_or(ValueError::NanOrInfinity)?;
    if sum.is_infinite() {
        return Err(ValueError::NanOrInfinity);
    }
    Ok(sum.to_human_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(current: &str, increment: &str) -> Result<String, ValueError> {
        incr_by_float(Some(current.as_bytes()), increment.as_bytes())
    }

    #[test]
    fn known_redis_results() {
        assert_eq!(incr("10.5", "0.1").as_deref(), Ok("10.6"));
        assert_eq!(incr("5.0e3", "2.0e2").as_deref(), Ok("5200"));
        assert_eq!(incr("3.0e3", "0").as_deref(), Ok("3000"));
        assert_eq!(incr("1.1", "2.2").as_deref(), Ok("3.3"));
        assert_eq!(incr("0", "-0").as_deref(), Ok("0"));
        assert_eq!(incr("-0", "-0").as_deref(), Ok("0"));
        assert_eq!(incr("1", "-1.5").as_deref(), Ok("-0.5"));
        assert_eq!(incr("0", "1e-20").as_deref(), Ok("0"));
        assert_eq!(incr("0", "-1e-20").as_deref(), Ok("0"));
        assert_eq!(incr("0", "0x10").as_deref(), Ok("16"));
        assert_eq!(
            incr_by_float(None, b"9223372036854775807").as_deref(),
            Ok("9223372036854775807")
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "", " 1", "1 ", "nan", "abc", "1e", "1e400000", "1e-5000", "0x", ".", "e5",
        ] {
            assert_eq!(incr("0", bad), Err(ValueError::NotValidFloat), "{bad:?}");
        }
        assert_eq!(incr("0", "inf"), Err(ValueError::NanOrInfinity));
        assert_eq!(incr("inf", "-inf"), Err(ValueError::NanOrInfinity));
        assert_eq!(
            incr("1.18e4932", "1.18e4932"),
            Err(ValueError::NanOrInfinity)
        );
        let long = format!("1{}", "0".repeat(MAX_LONG_DOUBLE_CHARS - 1));
        assert_eq!(incr("0", &long), Err(ValueError::NotValidFloat));
    }

    #[test]
    fn integers_are_exact() {
        for value in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 62, 123_456_789] {
            assert_eq!(
                LongDouble::from_i64(value).to_human_text(),
                value.to_string()
            );
            assert_eq!(
                LongDouble::parse(value.to_string().as_bytes()),
                Some(LongDouble::from_i64(value))
            );
        }
    }
}
