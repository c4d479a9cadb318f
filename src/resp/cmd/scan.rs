//! Iterating keys: `KEYS pattern` and `SCAN cursor [MATCH p] [COUNT n] [TYPE t]`, with Redis's
//! glob rules ([`crate::redis_value::glob`]). How a cursor works over papaya's maps, and what it
//! guarantees, is in [`crate::store`]'s `keyspace` module. `KEYS` on a large database runs with
//! the async worker handed off, so other connections keep being served.

use bytes::Bytes;

use super::{integer, is};
use crate::redis_value::glob::glob_match;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

/// Databases larger than this are listed off the async worker.
const OFFLOAD_KEYS: usize = 10_000;

/// `KEYS pattern`.
pub fn keys<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let pattern = &args[1];
    let all = &pattern[..] == b"*";
    let store = ctx.store();
    let db = ctx.db();
    let list = || {
        store.keys_where(db, |record, _| {
            all || glob_match(pattern, record.key(), false)
        })
    };
    let found = if store.db_len(db) > OFFLOAD_KEYS && !ctx.in_exec() {
        crate::resp::offload(list)
    } else {
        list()
    };
    let mut reply = ctx.reply();
    reply.array(found.len());
    for record in &found {
        reply.bulk(record.key());
    }
    Ok(())
}

/// Redis's `parseScanCursorOrReply` (`strtoul` in base 10): a leading space, trailing junk or
/// overflow is an invalid cursor; an empty string is 0; a sign is accepted (and `-n` wraps).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let invalid = None;
    if arg.first().is_some_and(|c| c.is_ascii_whitespace()) {
        return invalid;
    }
    let (negative, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul parses nothing and stops at the start: 0 if the string was empty, junk
        // otherwise.
        return if arg.is_empty() { Some(0) } else { invalid };
    }
    let mut value: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return invalid;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
pub fn scan<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let cursor = parse_cursor(&args[1]).ok_or(CommandError::other("ERR invalid cursor"))?;
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut strings_only: Option<bool> = None;
    let mut i = 2;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(CommandError::Syntax);
        }
        let value = &args[i + 1];
        if is(&args[i], "count") {
            let n = integer(value)?;
            if n < 1 {
                return Err(CommandError::Syntax);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if is(&args[i], "match") {
            pattern = (&value[..] != b"*").then_some(&value[..]);
        } else if is(&args[i], "type") {
            strings_only = Some(is(value, "string"));
        } else {
            return Err(CommandError::Syntax);
        }
        i += 2;
    }
    let page = if strings_only == Some(false) {
        // Only strings exist: a walk that keeps nothing, so the cursor still moves.
        ctx.store().scan(ctx.db(), cursor, count, |_, _| false)
    } else {
        ctx.store().scan(ctx.db(), cursor, count, |record, _| {
            pattern.is_none_or(|p| glob_match(p, record.key(), false))
        })
    };
    let mut reply = ctx.reply();
    reply.array(2);
    let mut text = itoa::Buffer::new();
    reply.bulk(text.format(page.next).as_bytes());
    reply.array(page.keys.len());
    for record in &page.keys {
        reply.bulk(record.key());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cursor;

    #[test]
    fn cursors_parse_as_strtoul_does() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"x"), None);
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
    }
}
