//! `CONFIG GET|SET|RESETSTAT|REWRITE|HELP` for the settings that mean something here.
//!
//! `CONFIG GET` matches names (exact, case-insensitive, echoed as the client wrote them) or glob
//! patterns against the table below, and an unknown name answers an empty map, as Redis does.
//! `CONFIG SET` changes `maxmemory`, `maxmemory-policy`, `maxmemory-samples`, `timeout` and
//! `maxclients` at run time; the others are fixed at start-up (Redis's "can't set immutable
//! config"), and an unknown name gets Redis's error. Every pair of one `CONFIG SET` is checked
//! before any is applied, so a bad one changes nothing.
//!
//! `maxmemory-samples` takes Redis's range (1 to 2147483647) and errors; the store ranks at
//! most 64 entries per eviction, so a larger value is kept as 64, and `CONFIG GET` shows the
//! value in force.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::is;
use crate::redis_value::glob::glob_match;
use crate::redis_value::integer::string2ll;
use crate::resp::context::CommandContext;
use crate::resp::error::CommandError;
use crate::resp::state::RespServer;
use crate::store::{EvictionPolicy, Shard};

/// Redis's range for `maxmemory-samples` (an `int` config).
const SAMPLES_RANGE: std::ops::RangeInclusive<i64> = 1..=i32::MAX as i64;

/// One checked `CONFIG SET` pair, waiting to be applied.
enum Change {
    MaxMemory(u64),
    Policy(EvictionPolicy),
    Samples(usize),
    Timeout(u64),
    MaxClients(u64),
}

impl Change {
    /// The canonical name of the setting it changes (for the duplicate check).
    fn name(&self) -> &'static str {
        match self {
            Change::MaxMemory(_) => "maxmemory",
            Change::Policy(_) => "maxmemory-policy",
            Change::Samples(_) => "maxmemory-samples",
            Change::Timeout(_) => "timeout",
            Change::MaxClients(_) => "maxclients",
        }
    }
}

/// Redis's error for a `maxmemory-policy` it does not know: every name, in its table's order.
const POLICY_CHOICES: &str = "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction";

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
        "maxmemory-policy" => store.eviction_policy().name().into(),
        "maxmemory-samples" => store.eviction_samples().to_string(),
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
        let mut changes: Vec<Change> = Vec::new();
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
            if changes.iter().any(|c| c.name() == name) {
                return Err(failed(&shown, "duplicate parameter"));
            }
            let not_integer = || failed(&shown, "argument couldn't be parsed into an integer");
            let change = match name.as_str() {
                "maxmemory" => Change::MaxMemory(
                    parse_memory(&pair[1])
                        .ok_or_else(|| failed(&shown, "argument must be a memory value"))?,
                ),
                "timeout" | "maxclients" => {
                    let value = std::str::from_utf8(&pair[1])
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or_else(not_integer)?;
                    if name == "timeout" {
                        Change::Timeout(value)
                    } else if value == 0 {
                        return Err(failed(
                            &shown,
                            "argument must be between 1 and 4294967295 inclusive",
                        ));
                    } else {
                        Change::MaxClients(value)
                    }
                }
                "maxmemory-policy" => Change::Policy(
                    std::str::from_utf8(&pair[1])
                        .ok()
                        .and_then(|v| EvictionPolicy::parse(v).ok())
                        .ok_or_else(|| failed(&shown, POLICY_CHOICES))?,
                ),
                "maxmemory-samples" => {
                    let value = string2ll(&pair[1]).ok_or_else(not_integer)?;
                    if !SAMPLES_RANGE.contains(&value) {
                        return Err(failed(
                            &shown,
                            "argument must be between 1 and 2147483647 inclusive",
                        ));
                    }
                    Change::Samples(usize::try_from(value).unwrap_or(usize::MAX))
                }
                _ => return Err(failed(&shown, "can't set immutable config")),
            };
            changes.push(change);
        }
        let store = ctx.store();
        for change in changes {
            match change {
                Change::MaxMemory(value) => {
                    store.set_max_memory(if value == 0 { u64::MAX } else { value })
                }
                Change::Policy(policy) => store.set_eviction_policy(policy),
                Change::Samples(samples) => store.set_eviction_samples(samples),
                Change::Timeout(value) => ctx
                    .server
                    .settings
                    .timeout_secs
                    .store(value, Ordering::Relaxed),
                Change::MaxClients(value) => ctx.server.clients.set_max_clients(value as usize),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_error_lists_every_policy_in_redis_order() {
        let names: Vec<&str> = EvictionPolicy::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            POLICY_CHOICES,
            format!(
                "argument(s) must be one of the following: {}",
                names.join(", ")
            )
        );
    }
}
