//! GETBIT, SETBIT, BITCOUNT and BITPOS over a string value (bitops.c 7.0.15).
//!
//! Bit 0 is the most significant bit of the first byte. Offsets are limited to
//! `proto-max-bulk-len` bytes (so at most 2^32-1), checked before the key is read. BITCOUNT and
//! BITPOS take the raw arguments after the key because Redis's order of checks is part of the
//! behaviour: a missing key answers before any range argument is looked at, BITCOUNT answers 0
//! for a negative `start > end` before it validates BYTE|BIT, and BITPOS validates BYTE|BIT
//! before it parses `end`. Never panics: every index is clamped before it is used.

use super::integer::{parse_integer, string2ll};
use super::{ValueError, PROTO_MAX_BULK_LEN};

/// GETBIT/SETBIT offset argument.
pub fn bit_offset(arg: &[u8]) -> Result<u64, ValueError> {
    let offset = string2ll(arg).ok_or(ValueError::BitOffset)?;
    let offset = u64::try_from(offset).map_err(|_| ValueError::BitOffset)?;
    if (offset >> 3) >= PROTO_MAX_BULK_LEN {
        return Err(ValueError::BitOffset);
    }
    Ok(offset)
}

/// SETBIT value argument: 0 or 1.
pub fn setbit_value(arg: &[u8]) -> Result<bool, ValueError> {
    match string2ll(arg) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(ValueError::BitValue),
    }
}

/// GETBIT: the bit at `offset` (0 past the end).
pub fn getbit(value: &[u8], offset: u64) -> u8 {
    let byte = usize::try_from(offset >> 3)
        .ok()
        .and_then(|index| value.get(index));
    match byte {
        Some(byte) => (byte >> (7 - (offset & 7))) & 1,
        None => 0,
    }
}

/// SETBIT: sets the bit, zero-growing the value to reach it, and returns the old bit. Refuses
/// (before growing) a value longer than this server's `max_len`.
pub fn setbit(
    value: &mut Vec<u8>,
    offset: u64,
    on: bool,
    max_len: usize,
) -> Result<u8, ValueError> {
    let index = offset >> 3;
    if index >= max_len as u64 {
        return Err(ValueError::ExceedsMaxValueSize { max: max_len });
    }
    let index = index as usize;
    if value.len() <= index {
        value.resize(index + 1, 0);
    }
    let mask = 1u8 << (7 - (offset & 7));
    let old = u8::from(value[index] & mask != 0);
    if on {
        value[index] |= mask;
    } else {
        value[index] &= !mask;
    }
    Ok(old)
}

/// `BIT` or `BYTE` (case-insensitive): true for BIT.
fn unit_is_bit(arg: &[u8]) -> Result<bool, ValueError> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(ValueError::Syntax)
    }
}

/// A range clamped to whole bytes, with masks of the edge bits outside a BIT range.
struct ByteRange {
    start: i64,
    end: i64,
    first_outside: u8,
    last_outside: u8,
}

/// Redis's shared normalisation: negatives from the end of `total` units, clamped, then BIT
/// ranges turned into bytes plus masks of the excluded edge bits.
fn normalise(start: i64, end: i64, total: i64, is_bit: bool) -> ByteRange {
    let mut start = if start < 0 {
        total.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        total.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    let mut range = ByteRange {
        start,
        end,
        first_outside: 0,
        last_outside: 0,
    };
    if is_bit && start <= end {
        range.first_outside = !((1u16 << (8 - (start & 7))) - 1) as u8;
        range.last_outside = ((1u16 << (7 - (end & 7))) - 1) as u8;
        range.start = start >> 3;
        range.end = end >> 3;
    }
    range
}

/// BITCOUNT key [start end [BYTE|BIT]]: `args` are the arguments after the key, `value`
/// `None` when the key is absent.
pub fn bitcount<A: AsRef<[u8]>>(value: Option<&[u8]>, args: &[A]) -> Result<i64, ValueError> {
    let Some(value) = value else {
        return Ok(0);
    };
    let len = value.len() as i64;
    let range = match args {
        [] => ByteRange {
            start: 0,
            end: len - 1,
            first_outside: 0,
            last_outside: 0,
        },
        [start, end, unit @ ..] if unit.len() <= 1 => {
            let start = parse_integer(start.as_ref())?;
            let end = parse_integer(end.as_ref())?;
            if start < 0 && end < 0 && start > end {
                return Ok(0);
            }
            let is_bit = match unit.first() {
                Some(unit) => unit_is_bit(unit.as_ref())?,
                None => false,
            };
            let total = if is_bit { len << 3 } else { len };
            normalise(start, end, total, is_bit)
        }
        _ => return Err(ValueError::Syntax),
    };
    if range.start > range.end {
        return Ok(0);
    }
    // 0 <= start <= end < len here.
    let (start, end) = (range.start as usize, range.end as usize);
    let bytes = &value[start..=end];
    let mut count: i64 = bytes.iter().map(|byte| i64::from(byte.count_ones())).sum();
    count -= i64::from((value[start] & range.first_outside).count_ones());
    count -= i64::from((value[end] & range.last_outside).count_ones());
    Ok(count)
}

/// Redis's `redisBitpos`: the first `bit` in `bytes`; for a 0 bit not found, the position
/// just past the end (the string counts as zero-padded), for a 1 bit not found, -1.
fn first_bit(bytes: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0x00 } else { 0xff };
    match bytes.iter().position(|&byte| byte != skip) {
        None if bit => -1,
        None => bytes.len() as i64 * 8,
        Some(index) => {
            let byte = if bit { bytes[index] } else { !bytes[index] };
            index as i64 * 8 + i64::from(byte.leading_zeros())
        }
    }
}

/// BITPOS key bit [start [end [BYTE|BIT]]]: `args` are the arguments after the key (the bit
/// first), `value` `None` when the key is absent.
pub fn bitpos<A: AsRef<[u8]>>(value: Option<&[u8]>, args: &[A]) -> Result<i64, ValueError> {
    let Some((bit_arg, range_args)) = args.split_first() else {
        return Err(ValueError::Syntax);
    };
    let bit = match parse_integer(bit_arg.as_ref())? {
        0 => false,
        1 => true,
        _ => return Err(ValueError::BitArgument),
    };
    let Some(value) = value else {
        return Ok(if bit { -1 } else { 0 });
    };
    let len = value.len() as i64;
    let mut end_given = false;
    let range = match range_args {
        [] => ByteRange {
            start: 0,
            end: len - 1,
            first_outside: 0,
            last_outside: 0,
        },
        [start, rest @ ..] if rest.len() <= 2 => {
            let start = parse_integer(start.as_ref())?;
            let is_bit = match rest.get(1) {
                Some(unit) => unit_is_bit(unit.as_ref())?,
                None => false,
            };
            let end = match rest.first() {
                Some(end) => {
                    end_given = true;
                    parse_integer(end.as_ref())?
                }
                None if is_bit => (len << 3) + 7,
                None => len - 1,
            };
            let total = if is_bit { len << 3 } else { len };
            normalise(start, end, total, is_bit)
        }
        _ => return Err(ValueError::Syntax),
    };
    if range.start > range.end {
        return Ok(-1);
    }
    let mut start = range.start as usize;
    let end = range.end as usize;
    let mut bytes = end - start + 1;
    let apply_masks = |byte: u8, first: u8, last: u8| -> u8 {
        if bit {
            byte & !first & !last
        } else {
            byte | first | last
        }
    };
    let pos = 'found: {
        if range.first_outside != 0 {
            let last = if range.last_outside != 0 && bytes == 1 {
                range.last_outside
            } else {
                0
            };
            let pos = first_bit(&[apply_masks(value[start], range.first_outside, last)], bit);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'found pos;
            }
            start += 1;
            bytes -= 1;
        }
        let whole = bytes - usize::from(range.last_outside != 0);
        if whole > 0 {
            let pos = first_bit(&value[start..start + whole], bit);
            if bytes == whole || (pos != -1 && pos != whole as i64 * 8) {
                break 'found pos;
            }
            start += whole;
            bytes -= whole;
        }
        first_bit(&[apply_masks(value[end], 0, range.last_outside)], bit)
    };
    if end_given && !bit && pos == bytes as i64 * 8 {
        return Ok(-1);
    }
    Ok(if pos == -1 {
        -1
    } else {
        pos + start as i64 * 8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<&[u8]> {
        text.split_whitespace().map(str::as_bytes).collect()
    }

    #[test]
    fn offsets_and_values() {
        assert_eq!(bit_offset(b"4294967295"), Ok(4_294_967_295));
        assert_eq!(bit_offset(b"4294967296"), Err(ValueError::BitOffset));
        assert_eq!(bit_offset(b"-1"), Err(ValueError::BitOffset));
        assert_eq!(setbit_value(b"2"), Err(ValueError::BitValue));
        assert_eq!(setbit_value(b"x"), Err(ValueError::BitValue));
        let mut value = Vec::new();
        assert_eq!(setbit(&mut value, 7, true, 100), Ok(0));
        assert_eq!(value, vec![1]);
        assert_eq!(getbit(&value, 7), 1);
        assert_eq!(getbit(&value, 1000), 0);
        assert_eq!(
            setbit(&mut value, 800, true, 100),
            Err(ValueError::ExceedsMaxValueSize { max: 100 })
        );
    }

    #[test]
    fn bitcount_cases() {
        let foobar = Some(&b"foobar"[..]);
        assert_eq!(bitcount(foobar, &args("")), Ok(26));
        assert_eq!(bitcount(foobar, &args("0 0")), Ok(4));
        assert_eq!(bitcount(foobar, &args("1 1")), Ok(6));
        assert_eq!(bitcount(foobar, &args("1 1 BYTE")), Ok(6));
        assert_eq!(bitcount(foobar, &args("5 30 BIT")), Ok(17));
        assert_eq!(bitcount(foobar, &args("-1 -2 nonsense")), Ok(0));
        assert_eq!(
            bitcount(foobar, &args("0 1 nonsense")),
            Err(ValueError::Syntax)
        );
        assert_eq!(bitcount(foobar, &args("0")), Err(ValueError::Syntax));
        assert_eq!(bitcount(None, &args("0")), Ok(0));
    }

    #[test]
    fn bitpos_cases() {
        let value = Some(&b"\xff\xf0\x00"[..]);
        assert_eq!(bitpos(value, &args("0")), Ok(12));
        assert_eq!(bitpos(Some(b"\x00\xff\xf0"), &args("1 0")), Ok(8));
        assert_eq!(bitpos(Some(b"\x00\xff\xf0"), &args("1 2 -1 BYTE")), Ok(16));
        assert_eq!(bitpos(Some(b"\x00\xff\xf0"), &args("1 7 15 BIT")), Ok(8));
        assert_eq!(bitpos(Some(b"\xff\xff\xff"), &args("0")), Ok(24));
        assert_eq!(bitpos(Some(b"\xff\xff\xff"), &args("0 0 -1")), Ok(-1));
        assert_eq!(bitpos(Some(b"\x00\x00\x00"), &args("1")), Ok(-1));
        assert_eq!(bitpos(None, &args("0")), Ok(0));
        assert_eq!(bitpos(None, &args("1")), Ok(-1));
        assert_eq!(bitpos(None, &args("2")), Err(ValueError::BitArgument));
    }
}
