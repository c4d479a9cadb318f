//! Introspection: `COMMAND` (`COUNT`, `INFO`, `DOCS`, `LIST`, `GETKEYS`), `OBJECT`
//! (`ENCODING`, `REFCOUNT`, `IDLETIME`, `FREQ`), `MEMORY USAGE`, and `FUNCTION FLUSH` (there are
//! no functions here, so it succeeds at once).
//!
//! `OBJECT` answers as Redis would for a value just written by `SET`: the encoding is classified
//! from the bytes (`int`, `embstr`, `raw`); Redis reports `raw` after `APPEND`/`SETRANGE`, which
//! we do not track. `IDLETIME` (whole seconds) and `FREQ` read the key's access word through
//! `ShardedStore::access_in`, which does not count the look as an access (Redis's `OBJECT`
//! does not touch the key either); each answers Redis's error when the policy in force keeps
//! the other kind of access data, after the missing-key check, as Redis orders them.

use bytes::Bytes;

use super::is;
use crate::redis_value::encoding::{string_encoding, StringEncoding, ValueOrigin};
use crate::resp::command::{flags, lookup, CommandSpec, COMMANDS};
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::resp::reply::Reply;
use crate::store::eviction::Ranking;
use crate::store::{AccessReport, Shard};

/// Redis's `OBJECT FREQ` error under a policy that is not LFU.
const FREQUENCY_NOT_TRACKED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

/// Redis's `OBJECT IDLETIME` error under an LFU policy.
const IDLE_TIME_NOT_TRACKED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";

fn unknown_subcommand(container: &str, sub: &[u8]) -> CommandError {
    CommandError::other(format!(
        "ERR unknown subcommand '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

fn command_info(reply: &mut Reply<'_>, spec: &CommandSpec) {
    reply.array(10);
    reply.bulk(spec.name.as_bytes());
    reply.int(i64::from(spec.arity));
    let names: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(bit, _)| spec.flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    reply.set(names.len());
    for name in names {
        reply.simple(name);
    }
    reply.int(i64::from(spec.first_key));
    reply.int(i64::from(spec.last_key));
    reply.int(i64::from(spec.step));
    reply.set(0);
    reply.set(0);
    reply.array(0);
    reply.array(0);
}

fn group_of(spec: &CommandSpec) -> &'static str {
    use crate::resp::command::CommandId::*;
    match spec.id {
        Ping | Echo | Quit | Hello | Auth | Reset | Select | Client => "connection",
        Multi | Exec | Discard | Watch | Unwatch => "transactions",
        Get | Set | Setnx | Setex | Psetex | Getset | Getdel | Getex | Mget | Mset | Msetnx
        | Append | Strlen | Getrange | Substr | Setrange | Incr | Decr | Incrby | Decrby
        | Incrbyfloat | Lcs => "string",
        Setbit | Getbit | Bitcount | Bitpos => "bitmap",
        Del | Unlink | Exists | Touch | Type | Rename | Renamenx | Copy | Move | Randomkey
        | Keys | Scan | Expire | Pexpire | Expireat | Pexpireat | Ttl | Pttl | Expiretime
        | Pexpiretime | Persist | Object | Wait => "generic",
        Function => "scripting",
        Time | Dbsize | Flushdb | Flushall | Info | Config | Lastsave | Bgsave | Save | Command
        | Memory => "server",
    }
}

/// `COMMAND [COUNT | INFO name... | DOCS name... | LIST | GETKEYS cmd args...]`.
pub fn command<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let Some(sub) = args.get(1) else {
        let mut reply = ctx.reply();
        reply.array(COMMANDS.len());
        for spec in COMMANDS {
            command_info(&mut reply, spec);
        }
        return Ok(());
    };
    if is(sub, "count") {
        if args.len() != 2 {
            return Err(CommandError::WrongArity("command|count"));
        }
        ctx.reply().int(COMMANDS.len() as i64);
    } else if is(sub, "info") {
        let names: Vec<&[u8]> = if args.len() == 2 {
            COMMANDS.iter().map(|c| c.name.as_bytes()).collect()
        } else {
            args[2..].iter().map(|a| &a[..]).collect()
        };
        let mut reply = ctx.reply();
        reply.array(names.len());
        for name in names {
            match lookup(name) {
                Some(spec) => command_info(&mut reply, spec),
                None => reply.null(),
            }
        }
    } else if is(sub, "docs") {
        let specs: Vec<&CommandSpec> = if args.len() == 2 {
            COMMANDS.iter().collect()
        } else {
            args[2..].iter().filter_map(|a| lookup(a)).collect()
        };
        let mut reply = ctx.reply();
        reply.map(specs.len());
        for spec in specs {
            reply.bulk(spec.name.as_bytes());
            reply.map(3);
            reply.bulk(b"summary");
            reply.bulk(format!("The Redis 7.0 {} command.", spec.name.to_uppercase()).as_bytes());
            reply.bulk(b"since");
            reply.bulk(b"1.0.0");
            reply.bulk(b"group");
            reply.bulk(group_of(spec).as_bytes());
        }
    } else if is(sub, "list") {
        let mut reply = ctx.reply();
        reply.array(COMMANDS.len());
        for spec in COMMANDS {
            reply.bulk(spec.name.as_bytes());
        }
    } else if is(sub, "getkeys") {
        if args.len() < 4 {
            return Err(CommandError::WrongArity("command|getkeys"));
        }
        let target = &args[2..];
        let Some(spec) = lookup(&target[0]) else {
            return Err(CommandError::other("ERR Invalid command specified"));
        };
        if !spec.arity_fits(target.len()) {
            return Err(CommandError::other(
                "ERR Invalid number of arguments specified for command",
            ));
        }
        let keys: Vec<&Bytes> = spec.keys(target).collect();
        if keys.is_empty() {
            return Err(CommandError::other("ERR The command has no key arguments"));
        }
        let mut reply = ctx.reply();
        reply.array(keys.len());
        for key in keys {
            reply.bulk(key);
        }
    } else {
        return Err(unknown_subcommand("COMMAND", sub));
    }
    Ok(())
}

/// `OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key`, `OBJECT HELP`.
pub fn object<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let sub = &args[1];
    let known = ["encoding", "refcount", "idletime", "freq"];
    if is(sub, "help") {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Print this help.",
        ];
        ctx.reply_help(&lines);
        return Ok(());
    }
    if !known.iter().any(|k| is(sub, k)) {
        return Err(unknown_subcommand("OBJECT", sub));
    }
    if args.len() != 3 {
        let name = known
            .iter()
            .find(|k| is(sub, k))
            .copied()
            .unwrap_or("encoding");
        return Err(CommandError::other(format!(
            "ERR wrong number of arguments for 'object|{name}' command"
        )));
    }
    if is(sub, "idletime") || is(sub, "freq") {
        let Some(report) = ctx.store().access_in(ctx.db(), &args[2]) else {
            ctx.reply().null();
            return Ok(());
        };
        match (is(sub, "freq"), report) {
            (false, AccessReport::IdleMs(ms)) => ctx.reply().int((ms / 1000) as i64),
            (true, AccessReport::Frequency(counter)) => ctx.reply().int(i64::from(counter)),
            (false, AccessReport::Frequency(_)) => {
                return Err(CommandError::other(IDLE_TIME_NOT_TRACKED))
            }
            (true, AccessReport::IdleMs(_)) => {
                return Err(CommandError::other(FREQUENCY_NOT_TRACKED))
            }
        }
        return Ok(());
    }
    let Some(found) = ctx.peek(&args[2]) else {
        ctx.reply().null();
        return Ok(());
    };
    let encoding = string_encoding(found.value(), ValueOrigin::Set);
    if is(sub, "encoding") {
        ctx.reply().bulk(encoding.as_str().as_bytes());
    } else if is(sub, "refcount") {
        // Redis shares the integers 0..9999, except under an LRU or LFU policy with a memory
        // limit (each key then needs its own access data). Redis decides when the value is
        // written; this asks the settings in force now.
        let store = ctx.store();
        let per_key_access = store.max_memory() != u64::MAX
            && matches!(
                store.eviction_policy().ranking(),
                Some(Ranking::Recency | Ranking::Frequency)
            );
        let shared = !per_key_access
            && encoding == StringEncoding::Int
            && crate::redis_value::integer::string2ll(found.value())
                .is_some_and(|n| (0..10_000).contains(&n));
        ctx.reply()
            .int(if shared { i64::from(i32::MAX) } else { 1 });
    } else {
        return Err(unknown_subcommand("OBJECT", sub));
    }
    Ok(())
}

/// `MEMORY USAGE key [SAMPLES n]`, `MEMORY HELP`: the store's estimate of one key's bytes.
pub fn memory<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let sub = &args[1];
    if is(sub, "usage") {
        if args.len() < 3 {
            return Err(CommandError::WrongArity("memory|usage"));
        }
        match args.len() {
            3 => {}
            5 if is(&args[3], "samples") => {
                super::integer(&args[4])?;
            }
            _ => return Err(CommandError::Syntax),
        }
        match ctx.store().entry_bytes_in(ctx.db(), &args[2]) {
            Some(bytes) => ctx.reply().int(bytes as i64),
            None => ctx.reply().null(),
        }
        Ok(())
    } else if is(sub, "help") {
        let lines = [
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value.",
            "HELP",
            "    Print this help.",
        ];
        ctx.reply_help(&lines);
        Ok(())
    } else {
        Err(unknown_subcommand("MEMORY", sub))
    }
}

/// `FUNCTION FLUSH [ASYNC|SYNC]` (nothing to flush), `FUNCTION LIST` (none).
pub fn function<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let sub = &args[1];
    if is(sub, "flush") {
        match &args[2..] {
            [] => {}
            [mode] if is(mode, "async") || is(mode, "sync") => {}
            [_] => {
                return Err(CommandError::other(
                    "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
                ))
            }
            _ => return Err(CommandError::WrongArity("function|flush")),
        }
        ctx.reply().ok();
    } else if is(sub, "list") {
        ctx.reply().array(0);
    } else {
        return Err(unknown_subcommand("FUNCTION", sub));
    }
    Ok(())
}
