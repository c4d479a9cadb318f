//! The Redis protocol (RESP2 and RESP3) on the same store as HTTP: redis-cli, redis-benchmark,
//! Redis clients and twemproxy talk to shardkv as they talk to Redis 7.0.
//!
//! ## Where a command goes
//! ```text
//! server      accept loop, maxclients ──► connection   read, parse, run, write (one batch)
//!   state     what every connection shares: the store, clients, watches, counters, settings
//!                                              │
//!   parse     bytes → arguments (resumable, Redis's limits and protocol errors)
//!   dispatch  checks (command table: names, arity, flags, keys), then the cmd/<family>.rs
//!             handler; EXEC's queued commands run here too
//!   context   the handler's store access: a Transaction per read-modify-write, EXEC's own
//!             inside EXEC, and the acknowledgement the reply waits for
//!   reply     RESP2/RESP3 encoder (switched by HELLO)
//! ```
//! Beside them: `session` (per connection: db, protocol, MULTI queue, watched keys), `clients`
//! (CLIENT LIST, maxclients), `watch` (the WATCH registry, a sink of the store's change stream),
//! `stats` (INFO commandstats and errorstats), `error` (Redis's error texts).
//!
//! ## Databases, flushes, SCAN and long commands
//! Databases are blocks of shards in the one store (see `store`): `SELECT` changes which block a
//! connection's keys hash into, and costs nothing else. `FLUSHDB` removes a database's keys in
//! chunks under each shard's writer section, logged and replicated as removals (so it costs one
//! log record per key). `SCAN` walks one shard and one slice of the hash space per call, which
//! keeps Redis's guarantee without a cursor into papaya's maps; `RANDOMKEY` walks to a random
//! position of a random shard (`O(shard)`). Commands whose work grows with the data (`KEYS`,
//! flushes, `LCS` on large values, `SAVE`) hand their worker thread off to tokio
//! (`block_in_place`), so other connections keep being served.
//!
//! Must never: answer differently from Redis 7.0 where a command is implemented (differences
//! kept on purpose are listed in README), panic on any input, or buffer without bound.

pub mod clients;
pub mod cmd;
pub mod command;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod error;
pub mod parse;
pub mod reply;
pub mod server;
pub mod session;
pub mod state;
pub mod stats;
pub mod watch;

pub use server::{bind, serve};
pub use state::{RespServer, RespSettings};

/// The Redis version shardkv answers as (`HELLO`, `INFO`): the one whose behaviour it follows.
pub const REDIS_VERSION: &str = "7.0.15";

/// Runs `work`, which may take long, without stalling the async worker it is called on: tokio
/// moves the worker's other tasks elsewhere meanwhile (on a multi-threaded runtime; elsewhere it
/// just runs).
pub fn offload<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// A seed for random choices (`RANDOMKEY`): a per-process random state mixed with a counter.
pub fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static STATE: OnceLock<foldhash::fast::RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = STATE.get_or_init(foldhash::fast::RandomState::default);
    state.hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}
