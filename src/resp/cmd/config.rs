//! `CONFIG GET|SET|RESETSTAT|REWRITE|HELP` for the settings that mean something here.
//!
//! `CONFIG GET` matches names (exact, case-insensitive, echoed as the client wrote them) or glob
//! patterns against the table below, and an unknown name answers an empty map, as Redis does.
//! `CONFIG SET` changes `maxmemory`, `timeout` and `maxclients` at run time; the others are
//! fixed at start-up (Redis's "can't set immutable config"), and an unknown name gets Redis's
//! error.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::is;

/// The eviction policies Redis accepts besides `noeviction`: named so a client asking for one
/// learns it is not available here, and any other name gets Redis's list.
const EVICTION_POLICIES: [&str; 7] = [
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
];
use crate::redis_value::glob::glob_match;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::resp::state::RespServer;
use crate::store::Shard;

/// The settings `CONFIG GET` knows, in the order it lists them.
const NAMES: &[&str] = &[
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "appendonly",
    "appendfsync",
    "timeout",
    "databases",
    "maxclients",
    "save",
    "port",
    "bind",
    "requirepass",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "client-output-buffer-limit",
    "dir",
    "dbfilename",
    "hz",
];

fn value_of<S: Shard>(server: &RespServer<S>, name: &str) -> String {
    let store = server.store();
    match name {
        "maxmemory" => {
            let max = store.max_memory();
            if max == u64::MAX { 0 } else { max }.to_string()
        }
        "maxmemory-policy" => "noeviction".into(),
        "maxmemory-samples" => "5".into(),
        "appendonly" => if server.log.is_some() { "yes" } else { "no" }.into(),
        "appendfsync" => server.settings.fsync.to_string(),
        "timeout" => server
            .settings
            .timeout_secs
            .load(Ordering::Relaxed)
            .to_string(),
        "databases" => store.databases().to_string(),
        "maxclients" => server.clients.max_clients().to_string(),
        "save" => String::new(),
        "port" => server.port.load(Ordering::Relaxed).to_string(),
        "bind" => server.settings.bind.clone(),
        "requirepass" => server.settings.password.clone().unwrap_or_default(),
        "proto-max-bulk-len" => crate::redis_value::PROTO_MAX_BULK_LEN.to_string(),
        "client-query-buffer-limit" => "1073741824".into(),
        "client-output-buffer-limit" => format!(
            "normal {0} {0} 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
            server.settings.output_limit.load(Ordering::Relaxed)
        ),
        "dir" => server.settings.dir.clone(),
        "dbfilename" => "dump.rdb".into(),
        "hz" => "10".into(),
        _ => String::new(),
    }
}

/// Redis's `memtoull`: bytes with an optional `k`, `kb`, `m`, `mb`, `g` or `gb` unit.
fn parse_memory(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
    ];
    let (digits, unit) = units
        .iter()
        .find(|(suffix, _)| text.ends_with(suffix))
        .map_or((text.as_str(), 1), |(suffix, unit)| {
            (&text[..text.len() - suffix.len()], *unit)
        });
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// `CONFIG ...`.
pub fn config<S: Shard>(
    ctx: &mut CommandContext<'_, '_, S>,
    args: &[Bytes],
) -> Result<(), CommandError> {
    let sub = &args[1];
    if is(sub, "get") {
        if args.len() < 3 {
            return Err(CommandError::WrongArity("config|get"));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for arg in &args[2..] {
            let pattern = String::from_utf8_lossy(arg).into_owned();
            let is_glob = pattern.contains(['*', '?', '[']);
            for name in NAMES {
                let matched = if is_glob {
                    glob_match(pattern.as_bytes(), name.as_bytes(), true)
                } else {
                    pattern.eq_ignore_ascii_case(name)
                };
                if matched && !pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                    let shown = if is_glob {
                        name.to_string()
                    } else {
                        pattern.clone()
                    };
                    pairs.push((shown, value_of(ctx.server, name)));
                }
            }
        }
        let mut reply = ctx.reply();
        reply.map(pairs.len());
        for (name, value) in pairs {
            reply.bulk(name.as_bytes());
            reply.bulk(value.as_bytes());
        }
        Ok(())
    } else if is(sub, "set") {
        if args.len() < 4 {
            return Err(CommandError::WrongArity("config|set"));
        }
        if args.len() % 2 != 0 {
            return Err(CommandError::Syntax);
        }
        let failed = |name: &str, why: &str| {
            CommandError::other(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ))
        };
        // Check every pair first, so a bad one changes nothing.
        let mut changes = Vec::new();
        for pair in args[2..].chunks(2) {
            let shown = String::from_utf8_lossy(&pair[0]).into_owned();
            let name = shown.to_ascii_lowercase();
            if !NAMES.contains(&name.as_str()) {
                return Err(CommandError::echo(
                    "ERR Unknown option or number of arguments for CONFIG SET - '",
                    &pair[0],
                    usize::MAX,
                    "'",
                ));
            }
            if changes.iter().any(|(n, _): &(String, u64)| *n == name) {
                return Err(failed(&shown, "duplicate parameter"));
            }
            let value = match name.as_str() {
                "maxmemory" => parse_memory(&pair[1])
                    .ok_or_else(|| failed(&shown, "argument must be a memory value"))?,
                "timeout" | "maxclients" => std::str::from_utf8(&pair[1])
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| failed(&shown, "argument couldn't be parsed into an integer"))?,
                "maxmemory-policy" if is(&pair[1], "noeviction") => 0,
                "maxmemory-policy" if EVICTION_POLICIES.iter().any(|p| is(&pair[1], p)) => {
                    return Err(failed(
                        &shown,
                        "only noeviction is available: eviction policies are not implemented",
                    ))
                }
                "maxmemory-policy" => {
                    return Err(failed(
                        &shown,
                        "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction",
                    ))
                }
                _ => return Err(failed(&shown, "can't set immutable config")),
            };
            if name == "maxclients" && value == 0 {
                return Err(failed(
                    &shown,
                    "argument must be between 1 and 4294967295 inclusive",
                ));
            }
            changes.push((name, value));
        }
        for (name, value) in changes {
            match name.as_str() {
                "maxmemory" => {
                    ctx.store()
                        .set_max_memory(if value == 0 { u64::MAX } else { value })
                }
                "timeout" => ctx
                    .server
                    .settings
                    .timeout_secs
                    .store(value, Ordering::Relaxed),
                "maxclients" => ctx.server.clients.set_max_clients(value as usize),
                _ => {}
            }
        }
        ctx.reply().ok();
        Ok(())
    } else if is(sub, "resetstat") {
        if args.len() != 2 {
            return Err(CommandError::WrongArity("config|resetstat"));
        }
        ctx.server.stats.reset();
        ctx.reply().ok();
        Ok(())
    } else if is(sub, "rewrite") {
        Err(CommandError::other(
            "ERR The server is running without a config file",
        ))
    } else if is(sub, "help") {
        let lines = [
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
            "HELP",
            "    Print this help.",
        ];
        ctx.reply_help(&lines);
        Ok(())
    } else {
        Err(CommandError::other(format!(
            "ERR unknown subcommand '{}'. Try CONFIG HELP.",
            String::from_utf8_lossy(sub)
        )))
    }
}
