//! Byte ranges of GETRANGE/SUBSTR and the length rules of SETRANGE and APPEND (t_string.c).
//!
//! GETRANGE normalises negative indexes from the end, clamps to the string and yields an empty
//! range when nothing is left, with Redis's one extra rule: both negative and start > end is
//! empty before any clamping. SETRANGE refuses a negative offset, leaves the value alone when
//! the patch is empty, and otherwise zero-pads up to the offset; the result may not exceed
//! `proto-max-bulk-len` (Redis's error) nor this server's own maximum value size (ours,
//! checked second). The checks come before any allocation, so a huge offset never allocates.

use std::ops::Range;

use super::integer::parse_integer;
use super::{ValueError, PROTO_MAX_BULK_LEN};

/// GETRANGE's start and end arguments (Redis parses both before looking at the key).
pub fn getrange_arguments(start: &[u8], end: &[u8]) -> Result<(i64, i64), ValueError> {
    Ok((parse_integer(start)?, parse_integer(end)?))
}

/// The bytes of a `len`-byte value GETRANGE returns for `start..=end` (empty when none).
pub fn getrange(len: usize, start: i64, end: i64) -> Range<usize> {
    if start < 0 && end < 0 && start > end {
        return 0..0;
    }
    let len_signed = i64::try_from(len).unwrap_or(i64::MAX);
    let mut start = if start < 0 {
        len_signed.saturating_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        len_signed.saturating_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= len_signed {
        end = len_signed - 1;
    }
    if start > end || len == 0 {
        return 0..0;
    }
    // 0 <= start <= end < len here.
    (start as usize)..(end as usize + 1)
}

/// SETRANGE's offset argument: an integer, not negative (checked before the key is read).
pub fn setrange_offset(arg: &[u8]) -> Result<u64, ValueError> {
    let offset = parse_integer(arg)?;
    u64::try_from(offset).map_err(|_| ValueError::OffsetOutOfRange)
}

/// Redis's `checkStringLength` (a `size`-byte string growing by `append` bytes) followed by
/// this server's own limit `max_len`.
pub fn check_string_length(size: u64, append: u64, max_len: usize) -> Result<(), ValueError> {
    let total = size
        .checked_add(append)
        .ok_or(ValueError::ExceedsProtoMaxBulkLen)?;
    if total > PROTO_MAX_BULK_LEN {
        return Err(ValueError::ExceedsProtoMaxBulkLen);
    }
    if total > max_len as u64 {
        return Err(ValueError::ExceedsMaxValueSize { max: max_len });
    }
    Ok(())
}

/// What SETRANGE does to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetRange {
    /// Empty patch: nothing is written (an absent key stays absent); reply with `len`.
    Unchanged {
        /// The current length (0 for an absent key), which is the reply.
        len: usize,
    },
    /// The new value; its length is the reply.
    Written(Vec<u8>),
}

/// SETRANGE on the stored value (`None` when absent) at a parsed offset.
pub fn setrange(
    current: Option<&[u8]>,
    offset: u64,
    patch: &[u8],
    max_len: usize,
) -> Result<SetRange, ValueError> {
    if patch.is_empty() {
        return Ok(SetRange::Unchanged {
            len: current.map_or(0, <[u8]>::len),
        });
    }
    check_string_length(offset, patch.len() as u64, max_len)?;
    // Both fit in memory limits now: offset + patch.len() <= min(512 MB, max_len).
    let offset = offset as usize;
    let mut value = current.map_or_else(Vec::new, <[u8]>::to_vec);
    let end = offset + patch.len();
    if value.len() < end {
        value.resize(end, 0);
    }
    value[offset..end].copy_from_slice(patch);
    Ok(SetRange::Written(value))
}

/// APPEND's length check for an existing value (an absent key just takes the argument).
pub fn check_append(
    current_len: usize,
    append_len: usize,
    max_len: usize,
) -> Result<(), ValueError> {
    check_string_length(current_len as u64, append_len as u64, max_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getrange_matches_redis_rules() {
        assert_eq!(getrange(13, 0, 3), 0..4);
        assert_eq!(getrange(13, -3, -1), 10..13);
        assert_eq!(getrange(13, 0, -1), 0..13);
        assert_eq!(getrange(13, 10, 100), 10..13);
        assert_eq!(getrange(13, 5, 3), 0..0);
        assert_eq!(getrange(13, -1, -5), 0..0);
        assert_eq!(getrange(13, -100, 2), 0..3);
        assert_eq!(getrange(0, 0, -1), 0..0);
        assert_eq!(getrange(13, i64::MIN, i64::MAX), 0..13);
        assert_eq!(getrange(13, 20, 30), 0..0);
    }

    #[test]
    fn setrange_pads_and_checks() {
        assert_eq!(setrange_offset(b"-1"), Err(ValueError::OffsetOutOfRange));
        assert_eq!(setrange_offset(b"x"), Err(ValueError::NotInteger));
        assert_eq!(
            setrange(Some(b"Hello World"), 6, b"Redis", 1 << 20),
            Ok(SetRange::Written(b"Hello Redis".to_vec()))
        );
        assert_eq!(
            setrange(None, 3, b"ab", 1 << 20),
            Ok(SetRange::Written(b"\0\0\0ab".to_vec()))
        );
        assert_eq!(
            setrange(Some(b"abc"), 1 << 40, b"", 10),
            Ok(SetRange::Unchanged { len: 3 })
        );
        assert_eq!(
            setrange(None, PROTO_MAX_BULK_LEN, b"a", usize::MAX),
            Err(ValueError::ExceedsProtoMaxBulkLen)
        );
        assert_eq!(
            setrange(None, 10, b"a", 10),
            Err(ValueError::ExceedsMaxValueSize { max: 10 })
        );
        assert!(setrange(None, 9, b"a", 10).is_ok());
    }
}
