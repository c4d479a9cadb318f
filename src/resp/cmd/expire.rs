//! TTL commands: `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` (with `NX|XX|GT|LT`), `TTL`,
//! `PTTL`, `EXPIRETIME`, `PEXPIRETIME`, `PERSIST` (Redis 7.0's `expire.c`).
//!
//! A new TTL on an unchanged value re-stores the same record with a new deadline (no copy of
//! the value), in one transaction over the key; a time already passed deletes the key, as
//! Redis does.

use bytes::Bytes;

use super::{integer, is, ms_left, tick_at_unix_ms, unix_ms_of};
use crate::clock::NEVER;
use crate::resp::clients::unix_ms;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Seconds,
    Millis,
}

/// `EXPIRE key seconds [NX|XX|GT|LT]`.
pub fn expire<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    expire_generic(ctx, args, Unit::Seconds, true, "expire")
}

/// `PEXPIRE key milliseconds [NX|XX|GT|LT]`.
pub fn pexpire<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    expire_generic(ctx, args, Unit::Millis, true, "pexpire")
}

/// `EXPIREAT key unix-seconds [NX|XX|GT|LT]`.
pub fn expireat<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    expire_generic(ctx, args, Unit::Seconds, false, "expireat")
}

/// `PEXPIREAT key unix-milliseconds [NX|XX|GT|LT]`.
pub fn pexpireat<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    expire_generic(ctx, args, Unit::Millis, false, "pexpireat")
}

#[derive(Default)]
struct Flags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn expire_generic<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
    unit: Unit,
    relative: bool,
    name: &'static str,
) -> Result<(), CommandError> {
    let mut flags = Flags::default();
    for arg in &args[3..] {
        if is(arg, "nx") {
            flags.nx = true;
        } else if is(arg, "xx") {
            flags.xx = true;
        } else if is(arg, "gt") {
            flags.gt = true;
        } else if is(arg, "lt") {
            flags.lt = true;
        } else {
            return Err(CommandError::echo(
                "ERR Unsupported option ",
                arg,
                usize::MAX,
                "",
            ));
        }
    }
    if flags.nx && (flags.xx || flags.gt || flags.lt) {
        return Err(CommandError::other(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if flags.gt && flags.lt {
        return Err(CommandError::other(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let n = integer(&args[2])?;
    let invalid = CommandError::InvalidExpireTime(name);
    let mut when = n;
    if unit == Unit::Seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&n) {
            return Err(invalid);
        }
        when = n * 1000;
    }
    let base = if relative { unix_ms() as i64 } else { 0 };
    if when > i64::MAX - base {
        return Err(invalid);
    }
    when += base;
    let key = &args[1];
    let db = ctx.db();
    let set = ctx.write(&[key], |txn| {
        let Some(found) = txn.get(db, key) else {
            return Ok(false);
        };
        let now = txn.now();
        let has_ttl = found.deadline != NEVER;
        let current_ms = unix_ms_of(now, found.deadline);
        if flags.nx && has_ttl || flags.xx && !has_ttl {
            return Ok(false);
        }
        if flags.gt && (!has_ttl || when <= current_ms) {
            return Ok(false);
        }
        if flags.lt && has_ttl && when >= current_ms {
            return Ok(false);
        }
        match tick_at_unix_ms(now, when) {
            None => {
                txn.remove(db, key)?;
            }
            Some(deadline) => {
                txn.set_record(db, found.record, deadline)?;
            }
        }
        Ok(true)
    })?;
    ctx.reply().int(i64::from(set));
    Ok(())
}

/// `TTL key`.
pub fn ttl<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    ttl_generic(ctx, args, |now, deadline| {
        (ms_left(now, deadline) + 500) / 1000
    })
}

/// `PTTL key`.
pub fn pttl<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    ttl_generic(ctx, args, ms_left)
}

/// `EXPIRETIME key`.
pub fn expiretime<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    ttl_generic(ctx, args, |now, deadline| {
        (unix_ms_of(now, deadline) + 500) / 1000
    })
}

/// `PEXPIRETIME key`.
pub fn pexpiretime<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    ttl_generic(ctx, args, unix_ms_of)
}

fn ttl_generic<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
    show: impl Fn(u64, u64) -> i64,
) -> Result<(), CommandError> {
    let answer = match ctx.get(&args[1]) {
        None => -2,
        Some(found) if found.deadline == NEVER => -1,
        Some(found) => show(ctx.now(), found.deadline),
    };
    ctx.reply().int(answer);
    Ok(())
}

/// `PERSIST key`.
pub fn persist<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let key = &args[1];
    let db = ctx.db();
    let removed = ctx.write(&[key], |txn| match txn.get(db, key) {
        Some(found) if found.deadline != NEVER => {
            txn.set_record(db, found.record, NEVER)?;
            Ok(true)
        }
        _ => Ok(false),
    })?;
    ctx.reply().int(i64::from(removed));
    Ok(())
}
