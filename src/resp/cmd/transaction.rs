//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH` (Redis 7.0's `multi.c`).
//!
//! `EXEC` works out every key its queued commands touch (following any `SELECT` among them,
//! and `MOVE`'s and `COPY`'s target databases; a queued flush declares whole databases), adds the
//! watched keys, and opens one store [`Transaction`](crate::store::Transaction) over all of
//! them. Holding those writer sections, it checks the watch flag and whether a key live at
//! `WATCH` has expired, then runs the commands inside the transaction and commits them as one
//! atomic group. So `EXEC` is atomic to every other writer, HTTP included. Readers are not held:
//! a lock-free reader may see some of its writes before the others (a kept difference from
//! Redis, where nothing runs during `EXEC`).

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::resp::command::{self, CommandId};
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::resp::session::MultiQueue;
use crate::store::{Shard, Transaction};

/// `MULTI`.
pub fn multi<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    if ctx.session.multi.is_some() {
        return Err(CommandError::other("ERR MULTI calls can not be nested"));
    }
    ctx.session.multi = Some(MultiQueue::default());
    ctx.reply().ok();
    Ok(())
}

/// `DISCARD`.
pub fn discard<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    if ctx.session.multi.take().is_none() {
        return Err(CommandError::other("ERR DISCARD without MULTI"));
    }
    ctx.session.unwatch();
    ctx.reply().ok();
    Ok(())
}

/// `WATCH key [key ...]`.
pub fn watch<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    if ctx.session.multi.is_some() {
        return Err(CommandError::other("ERR WATCH inside MULTI is not allowed"));
    }
    for key in &args[1..] {
        let was_live = ctx.get(key).is_some();
        ctx.session.watch(key.clone(), was_live);
    }
    ctx.reply().ok();
    Ok(())
}

/// `UNWATCH`.
pub fn unwatch<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    ctx.session.unwatch();
    ctx.reply().ok();
    Ok(())
}

/// `EXEC`, up to running its commands: checks the queue, opens the transaction over every key
/// the queued commands and the watched keys touch, and checks the watches inside it. Returns the
/// transaction and the commands for the dispatcher to run (it owns running commands), or `None`
/// when `EXEC` has answered already (a watched key changed: a null array).
#[allow(clippy::type_complexity)]
pub fn begin_exec<'a, S: Shard>(
    ctx: &mut CommandContext<'_, 'a, S>,
) -> Result<Option<(Transaction<'a, S>, Vec<Vec<Bytes>>)>, CommandError> {
    let Some(multi) = ctx.session.multi.take() else {
        return Err(CommandError::other("ERR EXEC without MULTI"));
    };
    if multi.aborted {
        ctx.session.unwatch();
        return Err(CommandError::other(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let store = ctx.store();
    let (keys, whole_dbs) = plan(ctx, &multi);
    let txn = match store.transaction(keys.iter().map(|(db, k)| (*db, &k[..])), whole_dbs) {
        Ok(txn) => txn,
        Err(e) => {
            ctx.session.unwatch();
            return Err(e.into());
        }
    };
    // Inside the sections of every watched key: no write can slip in after this check.
    let dirty = ctx.session.watch_flag.is_dirty()
        || ctx
            .session
            .watched
            .iter()
            .any(|w| w.was_live && store.get_in(w.db, &w.key).found().is_none());
    ctx.session.unwatch();
    if dirty {
        drop(txn);
        ctx.reply().null_array();
        return Ok(None);
    }
    Ok(Some((txn, multi.commands)))
}

/// `EXEC`'s end: commits the transaction's writes as one atomic group; the reply waits for
/// their acknowledgement.
pub fn commit_exec<'a, S: Shard>(ctx: &mut CommandContext<'_, 'a, S>, txn: Transaction<'a, S>) {
    let receipt = txn.commit();
    if !receipt.versions.is_empty() {
        ctx.wait_for(receipt.acknowledged(ctx.server.ack_policy()));
    }
}

/// The `(database, key)` pairs and whole databases `EXEC` must hold, watched keys included.
fn plan<S: Shard>(
    ctx: &CommandContext<'_, '_, S>,
    multi: &MultiQueue,
) -> (Vec<(usize, Bytes)>, BTreeSet<usize>) {
    let databases = ctx.store().databases();
    let mut keys: Vec<(usize, Bytes)> = ctx
        .session
        .watched
        .iter()
        .map(|w| (w.db, w.key.clone()))
        .collect();
    let mut whole = BTreeSet::new();
    let mut db = ctx.session.db;
    let target_db = |arg: &Bytes| {
        crate::redis_value::integer::string2ll(arg)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n < databases)
    };
    for args in &multi.commands {
        let Some(spec) = command::lookup(&args[0]) else {
            continue;
        };
        keys.extend(spec.keys(args).map(|k| (db, k.clone())));
        match spec.id {
            CommandId::Select => {
                if let Some(n) = args.get(1).and_then(target_db) {
                    db = n;
                }
            }
            CommandId::Move => {
                if let Some(n) = args.get(2).and_then(target_db) {
                    keys.push((n, args[1].clone()));
                }
            }
            CommandId::Copy => {
                let at = args.iter().position(|a| a.eq_ignore_ascii_case(b"db"));
                if let Some(n) = at.and_then(|i| args.get(i + 1)).and_then(target_db) {
                    keys.push((n, args[2].clone()));
                }
            }
            CommandId::Flushdb => {
                whole.insert(db);
            }
            CommandId::Flushall => whole.extend(0..databases),
            _ => {}
        }
    }
    (keys, whole)
}
