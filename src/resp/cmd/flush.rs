//! `FLUSHDB` and `FLUSHALL` (`ASYNC`/`SYNC` accepted; both run synchronously). Outside
//! `MULTI` a flush removes keys in chunks (see the store's `keyspace` module) with the async
//! worker handed off; inside `EXEC` it removes them within the transaction, which declared the
//! whole databases.

use bytes::Bytes;

use super::is;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

/// Redis's `getFlushCommandFlags`: nothing, `ASYNC` or `SYNC`.
fn check_flags(args: &[Bytes]) -> Result<(), CommandError> {
    match args {
        [_] => Ok(()),
        [_, mode] if is(mode, "async") || is(mode, "sync") => Ok(()),
        _ => Err(CommandError::Syntax),
    }
}

/// `FLUSHDB [ASYNC|SYNC]`.
pub fn flushdb<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    check_flags(args)?;
    let db = ctx.db();
    flush(ctx, db..db + 1)?;
    ctx.reply().ok();
    Ok(())
}

/// `FLUSHALL [ASYNC|SYNC]`.
pub fn flushall<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    check_flags(args)?;
    let databases = ctx.store().databases();
    flush(ctx, 0..databases)?;
    ctx.reply().ok();
    Ok(())
}

fn flush<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    dbs: std::ops::Range<usize>,
) -> Result<(), CommandError> {
    if ctx.in_exec() {
        return ctx.write_in([], dbs.clone(), |txn| {
            for db in dbs {
                for record in txn.keys_of_db(db)? {
                    txn.remove(db, record.key())?;
                }
            }
            Ok(())
        });
    }
    let store = ctx.store();
    crate::resp::offload(|| {
        for db in dbs {
            store.flush_db(db)?;
        }
        Ok::<_, crate::store::StoreError>(())
    })?;
    Ok(())
}
