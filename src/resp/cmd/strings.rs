//! String commands: `GET`, `SET` and its variants, `GETSET`, `GETDEL`, `GETEX`, `MGET`, `MSET`,
//! `MSETNX`, `APPEND`, `STRLEN`, `GETRANGE`/`SUBSTR`, `SETRANGE` (Redis 7.0's `t_string.c`).
//!
//! A plain `SET` (with `NX`, `XX` or an expiry) is the store's one-key write; anything that
//! reads before it writes (`GET`, `KEEPTTL`, `APPEND`, ...) is one transaction over its key, so
//! no other writer, HTTP included, can come between the read and the write.

use bytes::Bytes;

use super::{expire_at_ms, expiry_option, is, tick_at_unix_ms, ExpiryUnit};
use crate::clock::NEVER;
use crate::redis_value::range;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::{Condition, Shard};

/// `GET key`.
pub fn get<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let found = ctx.get(&args[1]);
    ctx.reply_value(found.as_ref());
    Ok(())
}

/// SET's options, parsed.
#[derive(Debug, Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    expiry: Option<(ExpiryUnit, usize)>,
}

fn parse_set_options(args: &[Bytes]) -> Result<SetOptions, CommandError> {
    let mut o = SetOptions::default();
    let mut i = 3;
    while i < args.len() {
        let arg = &args[i];
        let unit = expiry_option(arg);
        if is(arg, "nx") && !o.xx {
            o.nx = true;
        } else if is(arg, "xx") && !o.nx {
            o.xx = true;
        } else if is(arg, "get") {
            o.get = true;
        } else if is(arg, "keepttl") && o.expiry.is_none() {
            o.keep_ttl = true;
        } else if let Some(unit) = unit {
            let same_kind = o.expiry.is_none_or(|(u, _)| u == unit);
            if o.keep_ttl || !same_kind || i + 1 >= args.len() {
                return Err(CommandError::Syntax);
            }
            o.expiry = Some((unit, i + 1));
            i += 1;
        } else {
            return Err(CommandError::Syntax);
        }
        i += 1;
    }
    Ok(o)
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
pub fn set<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let options = parse_set_options(args)?;
    let now = ctx.now();
    let deadline = match options.expiry {
        None => NEVER,
        Some((unit, at)) => {
            let at_ms = expire_at_ms(&args[at], unit, "set")?;
            // A time already passed writes a key that is expired at once, as Redis does.
            tick_at_unix_ms(now, at_ms).unwrap_or(now)
        }
    };
    let (key, value) = (&args[1], &args[2]);
    if !options.get && !options.keep_ttl {
        let condition = if options.nx {
            Condition::IfAbsent
        } else if options.xx {
            Condition::IfPresent
        } else {
            Condition::Always
        };
        if ctx.set(key, value, deadline, condition)? {
            ctx.reply().ok();
        } else {
            ctx.reply().null();
        }
        return Ok(());
    }
    let db = ctx.db();
    let old = ctx.write(&[key], |txn| {
        let old = txn.get(db, key);
        let write = !(options.nx && old.is_some() || options.xx && old.is_none());
        if write {
            let deadline = match (&old, options.keep_ttl) {
                (Some(old), true) => old.deadline,
                (None, true) => NEVER,
                _ => deadline,
            };
            txn.set(db, key, value, deadline)?;
        }
        Ok((old, write))
    })?;
    match old {
        (old, _) if options.get => ctx.reply_value(old.as_ref()),
        (_, true) => ctx.reply().ok(),
        (_, false) => ctx.reply().null(),
    }
    Ok(())
}

/// `SETNX key value`.
pub fn setnx<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let written = ctx.set(&args[1], &args[2], NEVER, Condition::IfAbsent)?;
    ctx.reply().int(i64::from(written));
    Ok(())
}

/// `SETEX key seconds value`.
pub fn setex<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    set_with_expiry(ctx, args, ExpiryUnit::Seconds, "setex")
}

/// `PSETEX key milliseconds value`.
pub fn psetex<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    set_with_expiry(ctx, args, ExpiryUnit::Millis, "psetex")
}

fn set_with_expiry<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
    unit: ExpiryUnit,
    name: &'static str,
) -> Result<(), CommandError> {
    let at_ms = expire_at_ms(&args[2], unit, name)?;
    let now = ctx.now();
    let deadline = tick_at_unix_ms(now, at_ms).unwrap_or(now);
    ctx.set(&args[1], &args[3], deadline, Condition::Always)?;
    ctx.reply().ok();
    Ok(())
}

/// `GETSET key value`: the old value; the key keeps no TTL.
pub fn getset<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let (key, value) = (&args[1], &args[2]);
    let db = ctx.db();
    let old = ctx.write(&[key], |txn| {
        let old = txn.get(db, key);
        txn.set(db, key, value, NEVER)?;
        Ok(old)
    })?;
    ctx.reply_value(old.as_ref());
    Ok(())
}

/// `GETDEL key`.
pub fn getdel<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let key = &args[1];
    let db = ctx.db();
    let old = ctx.write(&[key], |txn| {
        let old = txn.get(db, key);
        if old.is_some() {
            txn.remove(db, key)?;
        }
        Ok(old)
    })?;
    ctx.reply_value(old.as_ref());
    Ok(())
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`.
pub fn getex<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    enum Change {
        Keep,
        Persist,
        Expire(ExpiryUnit, usize),
    }
    let mut change = Change::Keep;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        let unit = expiry_option(arg);
        match (unit, &change) {
            (Some(unit), Change::Keep) if i + 1 < args.len() => {
                change = Change::Expire(unit, i + 1);
                i += 1;
            }
            (Some(unit), Change::Expire(u, _)) if *u == unit && i + 1 < args.len() => {
                change = Change::Expire(unit, i + 1);
                i += 1;
            }
            (None, Change::Keep | Change::Persist) if is(arg, "persist") => {
                change = Change::Persist;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    let key = &args[1];
    let db = ctx.db();
    let Some(found) = ctx.get(key) else {
        ctx.reply().null();
        return Ok(());
    };
    let now = ctx.now();
    let deadline = match change {
        Change::Keep => None,
        Change::Persist => (found.deadline != NEVER).then_some(Some(NEVER)),
        Change::Expire(unit, at) => {
            let at_ms = expire_at_ms(&args[at], unit, "getex")?;
            Some(tick_at_unix_ms(now, at_ms))
        }
    };
    let value = found.record.clone();
    if let Some(deadline) = deadline {
        ctx.write(&[key], |txn| {
            // Judged again inside the section: the key may have changed since the read.
            let Some(current) = txn.get(db, key) else {
                return Ok(());
            };
            match deadline {
                Some(deadline) => {
                    txn.set_record(db, current.record, deadline)?;
                }
                None => {
                    txn.remove(db, key)?;
                }
            }
            Ok(())
        })?;
    }
    ctx.reply().bulk(value.value());
    Ok(())
}

/// `MGET key [key ...]`.
pub fn mget<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    ctx.reply().array(args.len() - 1);
    for key in &args[1..] {
        let found = ctx.get(key);
        ctx.reply_value(found.as_ref());
    }
    Ok(())
}

/// `MSET key value [key value ...]`: all at once, atomic to other writers.
pub fn mset<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    if args.len() % 2 == 0 {
        return Err(CommandError::WrongArity("mset"));
    }
    let keys: Vec<&[u8]> = args[1..].iter().step_by(2).map(|k| &k[..]).collect();
    let db = ctx.db();
    ctx.write(&keys, |txn| {
        for pair in args[1..].chunks(2) {
            txn.set(db, &pair[0], &pair[1], NEVER)?;
        }
        Ok(())
    })?;
    ctx.reply().ok();
    Ok(())
}

/// `MSETNX key value [key value ...]`: all, or none if any key exists.
pub fn msetnx<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    if args.len() % 2 == 0 {
        return Err(CommandError::WrongArity("msetnx"));
    }
    let keys: Vec<&[u8]> = args[1..].iter().step_by(2).map(|k| &k[..]).collect();
    let db = ctx.db();
    let written = ctx.write(&keys, |txn| {
        if keys.iter().any(|k| txn.get(db, k).is_some()) {
            return Ok(false);
        }
        for pair in args[1..].chunks(2) {
            txn.set(db, &pair[0], &pair[1], NEVER)?;
        }
        Ok(true)
    })?;
    ctx.reply().int(i64::from(written));
    Ok(())
}

/// `APPEND key value`: the new length; the TTL is kept.
pub fn append<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let (key, tail) = (&args[1], &args[2]);
    let db = ctx.db();
    let max = ctx.store().limits().max_value_bytes;
    let len = ctx.write(&[key], |txn| {
        let old = txn.get(db, key);
        let (value, deadline) = match &old {
            Some(old) => {
                range::check_append(old.value().len(), tail.len(), max)?;
                let mut value = Vec::with_capacity(old.value().len() + tail.len());
                value.extend_from_slice(old.value());
                value.extend_from_slice(tail);
                (value, old.deadline)
            }
            None => {
                range::check_append(0, tail.len(), max)?;
                (tail.to_vec(), NEVER)
            }
        };
        txn.set(db, key, &value, deadline)?;
        Ok(value.len())
    })?;
    ctx.reply().int(len as i64);
    Ok(())
}

/// `STRLEN key`.
pub fn strlen<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let len = ctx.get(&args[1]).map_or(0, |f| f.value().len());
    ctx.reply().int(len as i64);
    Ok(())
}

/// `GETRANGE key start end` (and `SUBSTR`).
pub fn getrange<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let (start, end) = range::getrange_arguments(&args[2], &args[3])?;
    match ctx.get(&args[1]) {
        Some(found) => {
            let value = found.value();
            let span = range::getrange(value.len(), start, end);
            ctx.reply().bulk(&value[span]);
        }
        None => ctx.reply().bulk(b""),
    }
    Ok(())
}

/// `SETRANGE key offset value`: the new length; the TTL is kept.
pub fn setrange<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let offset = range::setrange_offset(&args[2])?;
    let (key, patch) = (&args[1], &args[3]);
    let db = ctx.db();
    let max = ctx.store().limits().max_value_bytes;
    let len = ctx.write(&[key], |txn| {
        let old = txn.get(db, key);
        match range::setrange(old.as_ref().map(|f| f.value()), offset, patch, max)? {
            range::SetRange::Unchanged { len } => Ok(len),
            range::SetRange::Written(value) => {
                let deadline = old.map_or(NEVER, |f| f.deadline);
                txn.set(db, key, &value, deadline)?;
                Ok(value.len())
            }
        }
    })?;
    ctx.reply().int(len as i64);
    Ok(())
}
