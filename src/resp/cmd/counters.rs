//! Counters: `INCR`, `DECR`, `INCRBY`, `DECRBY` (64-bit, Redis's overflow errors) and
//! `INCRBYFLOAT` (Redis's x87 `long double` arithmetic and `%.17Lf` printing, emulated
//! exactly in [`crate::redis_value::long_double`]). Each is one transaction over its key, so
//! concurrent increments never lose one; the TTL is kept.

use bytes::Bytes;

use crate::clock::NEVER;
use crate::redis_value::{integer, long_double};
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

/// `INCR key`.
pub fn incr<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    add(ctx, &args[1], 1)
}

/// `DECR key`.
pub fn decr<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    add(ctx, &args[1], -1)
}

/// `INCRBY key increment`.
pub fn incrby<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let by = integer::incrby_increment(&args[2])?;
    add(ctx, &args[1], by)
}

/// `DECRBY key decrement`.
pub fn decrby<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let by = integer::decrby_increment(&args[2])?;
    add(ctx, &args[1], by)
}

fn add<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    key: &[u8],
    by: i64,
) -> Result<(), CommandError> {
    let db = ctx.db();
    let value = ctx.write(&[key], |txn| {
        let old = txn.get(db, key);
        let value = integer::apply_increment(old.as_ref().map(|f| f.value()), by)?;
        let mut text = itoa::Buffer::new();
        let deadline = old.map_or(NEVER, |f| f.deadline);
        txn.set(db, key, text.format(value).as_bytes(), deadline)?;
        Ok(value)
    })?;
    ctx.reply().int(value);
    Ok(())
}

/// `INCRBYFLOAT key increment`: the result as a bulk string, in both protocols.
pub fn incrbyfloat<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let (key, by) = (&args[1], &args[2]);
    let db = ctx.db();
    let text = ctx.write(&[key], |txn| {
        let old = txn.get(db, key);
        let text = long_double::incr_by_float(old.as_ref().map(|f| f.value()), by)?;
        let deadline = old.map_or(NEVER, |f| f.deadline);
        txn.set(db, key, text.as_bytes(), deadline)?;
        Ok(text)
    })?;
    ctx.reply().bulk(text.as_bytes());
    Ok(())
}
