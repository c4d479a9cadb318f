//! `LASTSAVE`, `BGSAVE`, `SAVE`, mapped onto the snapshot of the append-only log (with
//! `--data-dir`). Without a data directory there is nothing to save to: both answer an error
//! that says so (Redis would write `dump.rdb`; a kept difference).

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::is;
use crate::resp::clients::unix_ms;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::store::Shard;

fn no_data_dir(command: &str) -> CommandError {
    CommandError::other(format!(
        "ERR {command} needs persistence: start shardkv with --data-dir DIR to keep snapshots"
    ))
}

/// `LASTSAVE`: unix seconds of the last snapshot that landed (start-up time before any).
pub fn lastsave<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    let at = ctx.server.last_save.load(Ordering::Relaxed);
    ctx.reply().int(at as i64);
    Ok(())
}

/// `BGSAVE [SCHEDULE]`: starts a snapshot and answers at once.
pub fn bgsave<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    match &args[1..] {
        [] => {}
        [option] if is(option, "schedule") => {}
        _ => return Err(CommandError::Syntax),
    }
    let Some(log) = &ctx.server.log else {
        return Err(no_data_dir("BGSAVE"));
    };
    let done = log.request_snapshot();
    let last_save = ctx.server.last_save.clone();
    std::thread::Builder::new()
        .name("shardkv-bgsave".into())
        .spawn(move || {
            if let Ok(Ok(_)) = done.recv() {
                last_save.store(unix_ms() / 1000, Ordering::Relaxed);
            }
        })
        .map_err(|e| CommandError::other(format!("ERR could not start the snapshot: {e}")))?;
    ctx.reply().simple("Background saving started");
    Ok(())
}

/// `SAVE`: takes a snapshot and answers once it is on disk.
pub fn save<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    _args: &[Bytes],
) -> Result<(), CommandError> {
    let Some(log) = &ctx.server.log else {
        return Err(no_data_dir("SAVE"));
    };
    let done = log.request_snapshot();
    match crate::resp::offload(|| done.recv()) {
        Ok(Ok(_)) => {
            ctx.server
                .last_save
                .store(unix_ms() / 1000, Ordering::Relaxed);
            ctx.reply().ok();
            Ok(())
        }
        Ok(Err(reason)) => Err(CommandError::other(format!("ERR {reason}"))),
        Err(_) => Err(CommandError::other(
            "ERR the log stopped before the snapshot landed",
        )),
    }
}
