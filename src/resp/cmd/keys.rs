//! Key commands: `DEL`/`UNLINK`, `EXISTS`/`TOUCH`, `TYPE`, `RENAME`, `RENAMENX`, `COPY`, `MOVE`,
//! `RANDOMKEY`, `DBSIZE` (Redis 7.0's `db.c`). Multi-key writes are one transaction, so
//! `DEL a b` or `RENAME a b` is atomic to every other writer.

use bytes::Bytes;

use super::{int32, is};
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

/// `DEL key [key ...]` and `UNLINK`: how many live keys were removed.
pub fn del<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let keys: Vec<&[u8]> = args[1..].iter().map(|k| &k[..]).collect();
    if let [key] = keys[..] {
        let removed = ctx.delete(key)?;
        ctx.reply().int(i64::from(removed));
        return Ok(());
    }
    let db = ctx.db();
    let removed = ctx.write(&keys, |txn| {
        let mut removed = 0;
        for key in &keys {
            removed += i64::from(txn.remove(db, key)?);
        }
        Ok(removed)
    })?;
    ctx.reply().int(removed);
    Ok(())
}

/// `EXISTS key [key ...]` and `TOUCH`: live keys among the arguments, each repeat counted.
pub fn exists<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let count = args[1..].iter().filter(|k| ctx.get(k).is_some()).count();
    ctx.reply().int(count as i64);
    Ok(())
}

/// `TYPE key`: `string` or `none` (every value here is a string).
pub fn key_type<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let name = if ctx.get(&args[1]).is_some() {
        "string"
    } else {
        "none"
    };
    ctx.reply().simple(name);
    Ok(())
}

/// `RENAME key newkey`.
pub fn rename<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    if rename_generic(ctx, args, false)? {
        ctx.reply().ok();
    }
    Ok(())
}

/// `RENAMENX key newkey`.
pub fn renamenx<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let renamed = rename_generic(ctx, args, true)?;
    ctx.reply().int(i64::from(renamed));
    Ok(())
}

/// Moves the value and TTL of `args[1]` to `args[2]`; with `nx`, only when the target is
/// absent. Returns whether it moved.
fn rename_generic<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
    nx: bool,
) -> Result<bool, CommandError> {
    let (from, to) = (&args[1][..], &args[2][..]);
    let db = ctx.db();
    ctx.write(&[from, to], |txn| {
        let Some(found) = txn.get(db, from) else {
            return Err(CommandError::NoSuchKey);
        };
        if from == to {
            return Ok(!nx);
        }
        if nx && txn.get(db, to).is_some() {
            return Ok(false);
        }
        txn.set(db, to, found.value(), found.deadline)?;
        txn.remove(db, from)?;
        Ok(true)
    })
}

/// A database number argument (`getIntFromObjectOrReply` then `selectDb`).
pub fn db_index<S: Shard>(
    ctx: &CommandContext<'_, '_, S>,
    arg: &[u8],
) -> Result<usize, CommandError> {
    let n = int32(arg)?;
    usize::try_from(n)
        .ok()
        .filter(|&db| db < ctx.store().databases())
        .ok_or(CommandError::DbIndexOutOfRange)
}

/// `COPY source destination [DB destination-db] [REPLACE]`.
pub fn copy<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let mut target_db = ctx.db();
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            target_db = db_index(ctx, &args[i + 1])?;
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    let (from, to) = (&args[1][..], &args[2][..]);
    let db = ctx.db();
    if from == to && db == target_db {
        return Err(CommandError::other(
            "ERR source and destination objects are the same",
        ));
    }
    let copied = ctx.write_in([(db, from), (target_db, to)], [], |txn| {
        let Some(found) = txn.get(db, from) else {
            return Ok(false);
        };
        if !replace && txn.get(target_db, to).is_some() {
            return Ok(false);
        }
        txn.set(target_db, to, found.value(), found.deadline)?;
        Ok(true)
    })?;
    ctx.reply().int(i64::from(copied));
    Ok(())
}

/// `MOVE key db`.
pub fn move_key<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let n = int32(&args[2])?;
    let target = usize::try_from(n)
        .ok()
        .filter(|&db| db < ctx.store().databases())
        .ok_or(CommandError::other("ERR DB index is out of range"))?;
    let db = ctx.db();
    if target == db {
        return Err(CommandError::other(
            "ERR source and destination objects are the same",
        ));
    }
    let key = &args[1][..];
    let moved = ctx.write_in([(db, key), (target, key)], [], |txn| {
        let Some(found) = txn.get(db, key) else {
            return Ok(false);
        };
        if txn.get(target, key).is_some() {
            return Ok(false);
        }
        txn.set_record(target, found.record.clone(), found.deadline)?;
        txn.remove(db, key)?;
        Ok(true)
    })?;
    ctx.reply().int(i64::from(moved));
    Ok(())
}

/// `RANDOMKEY`.
pub fn randomkey<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    let seed = crate::resp::random_seed();
    let db = ctx.db();
    match ctx.store().random_key(db, seed) {
        Some(record) => ctx.reply().bulk(record.key()),
        None => ctx.reply().null(),
    }
    Ok(())
}

/// `DBSIZE`: keys in the selected database, expired ones not yet removed included (as Redis).
pub fn dbsize<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    let len = ctx.store().db_len(ctx.db());
    ctx.reply().int(len as i64);
    Ok(())
}
