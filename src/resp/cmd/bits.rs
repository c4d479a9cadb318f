//! Bit commands: `SETBIT`, `GETBIT`, `BITCOUNT`, `BITPOS` (Redis 7.0's `bitops.c`, with the
//! `BYTE|BIT` ranges). The arithmetic is in [`crate::redis_value::bits`]; `SETBIT` is one
//! transaction over its key and keeps the TTL.

use bytes::Bytes;

use crate::clock::NEVER;
use crate::redis_value::bits;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

/// `SETBIT key offset value`: the bit's old value.
pub fn setbit<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let offset = bits::bit_offset(&args[2])?;
    let on = bits::setbit_value(&args[3])?;
    let key = &args[1];
    let db = ctx.db();
    let max = ctx.store().limits().max_value_bytes;
    let old = ctx.write(&[key], |txn| {
        let current = txn.get(db, key);
        let mut value = current
            .as_ref()
            .map_or_else(Vec::new, |f| f.value().to_vec());
        let old = bits::setbit(&mut value, offset, on, max)?;
        // Redis writes (and tells watchers) even when the bit did not change.
        let deadline = current.map_or(NEVER, |f| f.deadline);
        txn.set(db, key, &value, deadline)?;
        Ok(old)
    })?;
    ctx.reply().int(i64::from(old));
    Ok(())
}

/// `GETBIT key offset`.
pub fn getbit<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let offset = bits::bit_offset(&args[2])?;
    let bit = ctx
        .get(&args[1])
        .map_or(0, |f| bits::getbit(f.value(), offset));
    ctx.reply().int(i64::from(bit));
    Ok(())
}

/// `BITCOUNT key [start end [BYTE|BIT]]`.
pub fn bitcount<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let found = ctx.get(&args[1]);
    let count = bits::bitcount(found.as_ref().map(|f| f.value()), &args[2..])?;
    ctx.reply().int(count);
    Ok(())
}

/// `BITPOS key bit [start [end [BYTE|BIT]]]`.
pub fn bitpos<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let found = ctx.get(&args[1]);
    let pos = bits::bitpos(found.as_ref().map(|f| f.value()), &args[2..])?;
    ctx.reply().int(pos);
    Ok(())
}
