//! The command table: every command's name, arity, flags and key positions (as Redis 7.0's
//! `commands.c` has them), and their subcommands. Data only: the dispatcher maps each command
//! to its handler in `cmd/`, and `COMMAND`, `EXEC`'s planning and the checks read this table.
//!
//! Adding a command is one line here, one in the dispatcher's `handler`, and a function in
//! `cmd/`.
//!
//! Must never: run a handler with the wrong number of arguments (the dispatcher checks arity
//! first, as Redis does).

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::Bytes;

use super::error::CommandError;

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
    ($( $id:ident => $name:literal, $arity:literal, [$($flag:ident)*], ($first:literal, $last:literal, $step:literal); )*) => {
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
    };
}

command_table! {
    // Connection.
    Ping => "ping", -1, [FAST STALE LOADING], (0, 0, 0);
    Echo => "echo", 2, [FAST STALE LOADING], (0, 0, 0);
    Quit => "quit", -1, [NO_AUTH FAST STALE LOADING IMMEDIATE_IN_MULTI], (0, 0, 0);
    Hello => "hello", -1, [NO_AUTH FAST STALE LOADING NOSCRIPT], (0, 0, 0);
    Auth => "auth", -2, [NO_AUTH FAST STALE LOADING NOSCRIPT], (0, 0, 0);
    Reset => "reset", 1, [NO_AUTH FAST STALE LOADING NOSCRIPT IMMEDIATE_IN_MULTI], (0, 0, 0);
    Time => "time", 1, [FAST STALE LOADING], (0, 0, 0);
    Select => "select", 2, [FAST STALE LOADING], (0, 0, 0);
    Wait => "wait", 3, [NOSCRIPT], (0, 0, 0);
    Client => "client", -2, [NOSCRIPT STALE LOADING], (0, 0, 0);
    // Introspection.
    Command => "command", -1, [STALE LOADING], (0, 0, 0);
    Object => "object", -2, [READONLY], (2, 2, 1);
    Memory => "memory", -2, [READONLY], (0, 0, 0);
    // Strings.
    Get => "get", 2, [READONLY FAST], (1, 1, 1);
    Set => "set", -3, [WRITE DENYOOM], (1, 1, 1);
    Setnx => "setnx", 3, [WRITE DENYOOM FAST], (1, 1, 1);
    Setex => "setex", 4, [WRITE DENYOOM], (1, 1, 1);
    Psetex => "psetex", 4, [WRITE DENYOOM], (1, 1, 1);
    Getset => "getset", 3, [WRITE DENYOOM FAST], (1, 1, 1);
    Getdel => "getdel", 2, [WRITE FAST], (1, 1, 1);
    Getex => "getex", -2, [WRITE FAST], (1, 1, 1);
    Mget => "mget", -2, [READONLY FAST], (1, -1, 1);
    Mset => "mset", -3, [WRITE DENYOOM], (1, -1, 2);
    Msetnx => "msetnx", -3, [WRITE DENYOOM], (1, -1, 2);
    Append => "append", 3, [WRITE DENYOOM FAST], (1, 1, 1);
    Strlen => "strlen", 2, [READONLY FAST], (1, 1, 1);
    Getrange => "getrange", 4, [READONLY], (1, 1, 1);
    Substr => "substr", 4, [READONLY], (1, 1, 1);
    Setrange => "setrange", 4, [WRITE DENYOOM], (1, 1, 1);
    Incr => "incr", 2, [WRITE DENYOOM FAST], (1, 1, 1);
    Decr => "decr", 2, [WRITE DENYOOM FAST], (1, 1, 1);
    Incrby => "incrby", 3, [WRITE DENYOOM FAST], (1, 1, 1);
    Decrby => "decrby", 3, [WRITE DENYOOM FAST], (1, 1, 1);
    Incrbyfloat => "incrbyfloat", 3, [WRITE DENYOOM FAST], (1, 1, 1);
    Setbit => "setbit", 4, [WRITE DENYOOM], (1, 1, 1);
    Getbit => "getbit", 3, [READONLY FAST], (1, 1, 1);
    Bitcount => "bitcount", -2, [READONLY], (1, 1, 1);
    Bitpos => "bitpos", -3, [READONLY], (1, 1, 1);
    Lcs => "lcs", -3, [READONLY], (1, 2, 1);
    // Keys.
    Del => "del", -2, [WRITE], (1, -1, 1);
    Unlink => "unlink", -2, [WRITE FAST], (1, -1, 1);
    Exists => "exists", -2, [READONLY FAST], (1, -1, 1);
    Touch => "touch", -2, [READONLY FAST], (1, -1, 1);
    Type => "type", 2, [READONLY FAST], (1, 1, 1);
    Rename => "rename", 3, [WRITE], (1, 2, 1);
    Renamenx => "renamenx", 3, [WRITE FAST], (1, 2, 1);
    Copy => "copy", -3, [WRITE DENYOOM], (1, 2, 1);
    Move => "move", 3, [WRITE FAST], (1, 1, 1);
    Randomkey => "randomkey", 1, [READONLY], (0, 0, 0);
    Dbsize => "dbsize", 1, [READONLY FAST], (0, 0, 0);
    Keys => "keys", 2, [READONLY], (0, 0, 0);
    Scan => "scan", -2, [READONLY], (0, 0, 0);
    Flushdb => "flushdb", -1, [WRITE], (0, 0, 0);
    Flushall => "flushall", -1, [WRITE], (0, 0, 0);
    // Expiry.
    Expire => "expire", -3, [WRITE FAST], (1, 1, 1);
    Pexpire => "pexpire", -3, [WRITE FAST], (1, 1, 1);
    Expireat => "expireat", -3, [WRITE FAST], (1, 1, 1);
    Pexpireat => "pexpireat", -3, [WRITE FAST], (1, 1, 1);
    Ttl => "ttl", 2, [READONLY FAST], (1, 1, 1);
    Pttl => "pttl", 2, [READONLY FAST], (1, 1, 1);
    Expiretime => "expiretime", 2, [READONLY FAST], (1, 1, 1);
    Pexpiretime => "pexpiretime", 2, [READONLY FAST], (1, 1, 1);
    Persist => "persist", 2, [WRITE FAST], (1, 1, 1);
    // Transactions.
    Multi => "multi", 1, [NOSCRIPT LOADING STALE FAST IMMEDIATE_IN_MULTI], (0, 0, 0);
    Exec => "exec", 1, [NOSCRIPT LOADING STALE IMMEDIATE_IN_MULTI], (0, 0, 0);
    Discard => "discard", 1, [NOSCRIPT LOADING STALE FAST IMMEDIATE_IN_MULTI], (0, 0, 0);
    Watch => "watch", -2, [NOSCRIPT LOADING STALE FAST IMMEDIATE_IN_MULTI], (1, -1, 1);
    Unwatch => "unwatch", 1, [NOSCRIPT LOADING STALE FAST], (0, 0, 0);
    // Server.
    Info => "info", -1, [LOADING STALE], (0, 0, 0);
    Config => "config", -2, [ADMIN NOSCRIPT LOADING STALE], (0, 0, 0);
    Lastsave => "lastsave", 1, [LOADING STALE FAST], (0, 0, 0);
    Bgsave => "bgsave", -1, [ADMIN NOSCRIPT], (0, 0, 0);
    Save => "save", 1, [ADMIN NOSCRIPT NO_MULTI], (0, 0, 0);
    Function => "function", -2, [NOSCRIPT], (0, 0, 0);
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

type ByName = HashMap<&'static str, &'static CommandSpec, foldhash::fast::FixedState>;

static BY_NAME: LazyLock<ByName> = LazyLock::new(|| COMMANDS.iter().map(|c| (c.name, c)).collect());

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
