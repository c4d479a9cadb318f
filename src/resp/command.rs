//! The command table: every command's name, arity, flags and key positions (as Redis 7.0's
//! `commands.c` has them), and the one `match` that runs a command's handler.
//!
//! A handler lives in `cmd/`, one file per family, and has the signature
//! `fn(&mut CommandContext<S>, &[Bytes]) -> Result<(), CommandError>`: it writes its reply on
//! success; the dispatcher writes the error otherwise. Adding a command is one line here and a
//! function there.
//!
//! Must never: run a handler with the wrong number of arguments (the dispatcher checks arity
//! first, as Redis does).

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::Bytes;

use super::cmd;
use super::context::CommandContext;
use super::error::CommandError;
use crate::store::Shard;

/// Command flags (the subset of Redis's that changes behaviour here, and that `COMMAND INFO`
/// shows).
pub mod flags {
    /// Writes the keyspace.
    pub const WRITE: u32 = 1;
    /// Only reads.
    pub const READONLY: u32 = 1 << 1;
    /// Refused past `maxmemory`.
    pub const DENYOOM: u32 = 1 << 2;
    /// Runs before `AUTH`.
    pub const NO_AUTH: u32 = 1 << 3;
    /// Refused inside `MULTI`.
    pub const NO_MULTI: u32 = 1 << 4;
    /// O(1) or O(log n).
    pub const FAST: u32 = 1 << 5;
    /// Administrative.
    pub const ADMIN: u32 = 1 << 6;
    /// Runs while loading.
    pub const LOADING: u32 = 1 << 7;
    /// Runs on a stale replica.
    pub const STALE: u32 = 1 << 8;
    /// Not from scripts.
    pub const NOSCRIPT: u32 = 1 << 9;
    /// Runs immediately inside `MULTI` instead of being queued.
    pub const IMMEDIATE_IN_MULTI: u32 = 1 << 10;

    /// Flag names for `COMMAND INFO`, in Redis's order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (NOSCRIPT, "noscript"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
        (FAST, "fast"),
    ];
}

/// One command's entry.
#[derive(Debug)]
pub struct CommandSpec {
    /// Index in [`COMMANDS`].
    pub id: CommandId,
    /// The lowercase name (Redis's `fullname`).
    pub name: &'static str,
    /// `N > 0`: exactly N arguments with the name; `-N`: at least N.
    pub arity: i32,
    /// [`flags`].
    pub flags: u32,
    /// First key argument (0: none).
    pub first_key: i32,
    /// Last key argument (negative: from the end).
    pub last_key: i32,
    /// Step between keys.
    pub step: i32,
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) fit the arity.
    pub fn arity_fits(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Whether the command has flag `flag`.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// The key arguments of `args` (name first) by the table's positions.
    pub fn keys<'x>(&self, args: &'x [Bytes]) -> impl Iterator<Item = &'x Bytes> + 'x {
        let argc = args.len() as i32;
        let first = self.first_key;
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key.min(argc - 1)
        };
        let step = self.step.max(1) as usize;
        let range = if first <= 0 || last < first {
            0..0
        } else {
            first as usize..last as usize + 1
        };
        range.step_by(step).filter_map(move |i| args.get(i))
    }
}

macro_rules! command_table {
    ($( $id:ident => $name:literal, $arity:literal, [$($flag:ident)*], ($first:literal, $last:literal, $step:literal), $handler:path; )*) => {
        /// A command's index in [`COMMANDS`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum CommandId { $($id),* }

        /// Every command, in Redis's naming.
        pub static COMMANDS: &[CommandSpec] = &[
            $( CommandSpec {
                id: CommandId::$id,
                name: $name,
                arity: $arity,
                flags: 0 $(| flags::$flag)*,
                first_key: $first,
                last_key: $last,
                step: $step,
            } ),*
        ];

        /// Runs the handler of `id`.
        pub(crate) fn run<S: Shard>(
            id: CommandId,
            ctx: &mut CommandContext<'_, '_, S>,
            args: &[Bytes],
        ) -> Result<(), CommandError> {
            match id { $( CommandId::$id => $handler(ctx, args) ),* }
        }
    };
}

command_table! {
    // Connection.
    Ping => "ping", -1, [FAST STALE LOADING], (0, 0, 0), cmd::connection::ping;
    Echo => "echo", 2, [FAST STALE LOADING], (0, 0, 0), cmd::connection::echo;
    Quit => "quit", -1, [NO_AUTH FAST STALE LOADING IMMEDIATE_IN_MULTI], (0, 0, 0), cmd::connection::quit;
    Hello => "hello", -1, [NO_AUTH FAST STALE LOADING NOSCRIPT], (0, 0, 0), cmd::connection::hello;
    Auth => "auth", -2, [NO_AUTH FAST STALE LOADING NOSCRIPT], (0, 0, 0), cmd::connection::auth;
    Reset => "reset", 1, [NO_AUTH FAST STALE LOADING NOSCRIPT IMMEDIATE_IN_MULTI], (0, 0, 0), cmd::connection::reset;
    Time => "time", 1, [FAST STALE LOADING], (0, 0, 0), cmd::connection::time;
    Select => "select", 2, [FAST STALE LOADING], (0, 0, 0), cmd::connection::select;
    Wait => "wait", 3, [NOSCRIPT], (0, 0, 0), cmd::connection::wait;
    Client => "client", -2, [NOSCRIPT STALE LOADING], (0, 0, 0), cmd::client::client;
    // Introspection.
    Command => "command", -1, [STALE LOADING], (0, 0, 0), cmd::introspection::command;
    Object => "object", -2, [READONLY], (2, 2, 1), cmd::introspection::object;
    Memory => "memory", -2, [READONLY], (0, 0, 0), cmd::introspection::memory;
    // Strings.
    Get => "get", 2, [READONLY FAST], (1, 1, 1), cmd::strings::get;
    Set => "set", -3, [WRITE DENYOOM], (1, 1, 1), cmd::strings::set;
    Setnx => "setnx", 3, [WRITE DENYOOM FAST], (1, 1, 1), cmd::strings::setnx;
    Setex => "setex", 4, [WRITE DENYOOM], (1, 1, 1), cmd::strings::setex;
    Psetex => "psetex", 4, [WRITE DENYOOM], (1, 1, 1), cmd::strings::psetex;
    Getset => "getset", 3, [WRITE DENYOOM FAST], (1, 1, 1), cmd::strings::getset;
    Getdel => "getdel", 2, [WRITE FAST], (1, 1, 1), cmd::strings::getdel;
    Getex => "getex", -2, [WRITE FAST], (1, 1, 1), cmd::strings::getex;
    Mget => "mget", -2, [READONLY FAST], (1, -1, 1), cmd::strings::mget;
    Mset => "mset", -3, [WRITE DENYOOM], (1, -1, 2), cmd::strings::mset;
    Msetnx => "msetnx", -3, [WRITE DENYOOM], (1, -1, 2), cmd::strings::msetnx;
    Append => "append", 3, [WRITE DENYOOM FAST], (1, 1, 1), cmd::strings::append;
    Strlen => "strlen", 2, [READONLY FAST], (1, 1, 1), cmd::strings::strlen;
    Getrange => "getrange", 4, [READONLY], (1, 1, 1), cmd::strings::getrange;
    Substr => "substr", 4, [READONLY], (1, 1, 1), cmd::strings::getrange;
    Setrange => "setrange", 4, [WRITE DENYOOM], (1, 1, 1), cmd::strings::setrange;
    Incr => "incr", 2, [WRITE DENYOOM FAST], (1, 1, 1), cmd::counters::incr;
    Decr => "decr", 2, [WRITE DENYOOM FAST], (1, 1, 1), cmd::counters::decr;
    Incrby => "incrby", 3, [WRITE DENYOOM FAST], (1, 1, 1), cmd::counters::incrby;
    Decrby => "decrby", 3, [WRITE DENYOOM FAST], (1, 1, 1), cmd::counters::decrby;
    Incrbyfloat => "incrbyfloat", 3, [WRITE DENYOOM FAST], (1, 1, 1), cmd::counters::incrbyfloat;
    Setbit => "setbit", 4, [WRITE DENYOOM], (1, 1, 1), cmd::bits::setbit;
    Getbit => "getbit", 3, [READONLY FAST], (1, 1, 1), cmd::bits::getbit;
    Bitcount => "bitcount", -2, [READONLY], (1, 1, 1), cmd::bits::bitcount;
    Bitpos => "bitpos", -3, [READONLY], (1, 1, 1), cmd::bits::bitpos;
    Lcs => "lcs", -3, [READONLY], (1, 2, 1), cmd::lcs::lcs;
    // Keys.
    Del => "del", -2, [WRITE], (1, -1, 1), cmd::keys::del;
    Unlink => "unlink", -2, [WRITE FAST], (1, -1, 1), cmd::keys::del;
    Exists => "exists", -2, [READONLY FAST], (1, -1, 1), cmd::keys::exists;
    Touch => "touch", -2, [READONLY FAST], (1, -1, 1), cmd::keys::exists;
    Type => "type", 2, [READONLY FAST], (1, 1, 1), cmd::keys::key_type;
    Rename => "rename", 3, [WRITE], (1, 2, 1), cmd::keys::rename;
    Renamenx => "renamenx", 3, [WRITE FAST], (1, 2, 1), cmd::keys::renamenx;
    Copy => "copy", -3, [WRITE DENYOOM], (1, 2, 1), cmd::keys::copy;
    Move => "move", 3, [WRITE FAST], (1, 1, 1), cmd::keys::move_key;
    Randomkey => "randomkey", 1, [READONLY], (0, 0, 0), cmd::keys::randomkey;
    Dbsize => "dbsize", 1, [READONLY FAST], (0, 0, 0), cmd::keys::dbsize;
    Keys => "keys", 2, [READONLY], (0, 0, 0), cmd::scan::keys;
    Scan => "scan", -2, [READONLY], (0, 0, 0), cmd::scan::scan;
    Flushdb => "flushdb", -1, [WRITE], (0, 0, 0), cmd::flush::flushdb;
    Flushall => "flushall", -1, [WRITE], (0, 0, 0), cmd::flush::flushall;
    // Expiry.
    Expire => "expire", -3, [WRITE FAST], (1, 1, 1), cmd::expire::expire;
    Pexpire => "pexpire", -3, [WRITE FAST], (1, 1, 1), cmd::expire::pexpire;
    Expireat => "expireat", -3, [WRITE FAST], (1, 1, 1), cmd::expire::expireat;
    Pexpireat => "pexpireat", -3, [WRITE FAST], (1, 1, 1), cmd::expire::pexpireat;
    Ttl => "ttl", 2, [READONLY FAST], (1, 1, 1), cmd::expire::ttl;
    Pttl => "pttl", 2, [READONLY FAST], (1, 1, 1), cmd::expire::pttl;
    Expiretime => "expiretime", 2, [READONLY FAST], (1, 1, 1), cmd::expire::expiretime;
    Pexpiretime => "pexpiretime", 2, [READONLY FAST], (1, 1, 1), cmd::expire::pexpiretime;
    Persist => "persist", 2, [WRITE FAST], (1, 1, 1), cmd::expire::persist;
    // Transactions.
    Multi => "multi", 1, [NOSCRIPT LOADING STALE FAST IMMEDIATE_IN_MULTI], (0, 0, 0), cmd::transaction::multi;
    Exec => "exec", 1, [NOSCRIPT LOADING STALE IMMEDIATE_IN_MULTI], (0, 0, 0), cmd::transaction::exec;
    Discard => "discard", 1, [NOSCRIPT LOADING STALE FAST IMMEDIATE_IN_MULTI], (0, 0, 0), cmd::transaction::discard;
    Watch => "watch", -2, [NOSCRIPT LOADING STALE FAST IMMEDIATE_IN_MULTI], (1, -1, 1), cmd::transaction::watch;
    Unwatch => "unwatch", 1, [NOSCRIPT LOADING STALE FAST], (0, 0, 0), cmd::transaction::unwatch;
    // Server.
    Info => "info", -1, [LOADING STALE], (0, 0, 0), cmd::info::info;
    Config => "config", -2, [ADMIN NOSCRIPT LOADING STALE], (0, 0, 0), cmd::config::config;
    Lastsave => "lastsave", 1, [LOADING STALE FAST], (0, 0, 0), cmd::persistence::lastsave;
    Bgsave => "bgsave", -1, [ADMIN NOSCRIPT], (0, 0, 0), cmd::persistence::bgsave;
    Save => "save", 1, [ADMIN NOSCRIPT NO_MULTI], (0, 0, 0), cmd::persistence::save;
    Function => "function", -2, [NOSCRIPT], (0, 0, 0), cmd::introspection::function;
}

/// The subcommands of a container command, with their arities (Redis 7.0's, for the ones
/// implemented here; `CLIENT SETINFO` is 7.2's). Checked before a command runs or is queued.
pub fn subcommands(id: CommandId) -> Option<&'static [(&'static str, i32)]> {
    Some(match id {
        CommandId::Client => &[
            ("id", 2),
            ("info", 2),
            ("getname", 2),
            ("setname", 3),
            ("list", -2),
            ("setinfo", 4),
            ("help", 2),
        ],
        CommandId::Config => &[
            ("get", -3),
            ("set", -4),
            ("resetstat", 2),
            ("rewrite", 2),
            ("help", 2),
        ],
        CommandId::Command => &[
            ("count", 2),
            ("info", -2),
            ("docs", -2),
            ("list", -2),
            ("getkeys", -4),
            ("help", 2),
        ],
        CommandId::Object => &[
            ("encoding", 3),
            ("refcount", 3),
            ("idletime", 3),
            ("freq", 3),
            ("help", 2),
        ],
        CommandId::Memory => &[("usage", -3), ("help", 2)],
        CommandId::Function => &[("flush", -2), ("list", -2), ("help", 2)],
        _ => return None,
    })
}

/// Checks a container command's subcommand: Redis's "unknown subcommand" or arity error.
pub fn check_subcommand(spec: &CommandSpec, args: &[bytes::Bytes]) -> Result<(), CommandError> {
    let (Some(subs), Some(sub)) = (subcommands(spec.id), args.get(1)) else {
        return Ok(());
    };
    let Some((name, arity)) = subs
        .iter()
        .find(|(n, _)| sub.eq_ignore_ascii_case(n.as_bytes()))
    else {
        return Err(CommandError::echo(
            "ERR unknown subcommand '",
            sub,
            128,
            &format!("'. Try {} HELP.", spec.name.to_uppercase()),
        ));
    };
    let fits = if *arity >= 0 {
        args.len() == *arity as usize
    } else {
        args.len() >= arity.unsigned_abs() as usize
    };
    if fits {
        Ok(())
    } else {
        Err(CommandError::other(format!(
            "ERR wrong number of arguments for '{}|{name}' command",
            spec.name
        )))
    }
}

static BY_NAME: LazyLock<HashMap<&'static str, &'static CommandSpec>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name, c)).collect());

/// The longest command name.
const MAX_NAME: usize = 16;

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut lower = [0u8; MAX_NAME];
    for (to, from) in lower.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    let lower = std::str::from_utf8(&lower[..name.len()]).ok()?;
    BY_NAME.get(lower).copied()
}
