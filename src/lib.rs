//! shardkv: a sharded, replicated, TTL-aware in-memory key-value store behind an HTTP API and
//! the Redis protocol.
//!
//! ## Layout
//! Protocols → the store API → the store's internals; the store publishes every change to the
//! sinks registered at start-up, and imports none of them.
//! - `http` (feature `server`): the HTTP adapter. `http::routes` maps method + path to a route
//!   family, one file each (`original`, `kv`, `batch_routes`, `admin`, `dashboard`);
//!   `http::query`, `http::params`, `http::preconditions` and [`duration`] parse what the client
//!   sent, with typed errors; `http::ack` waits for a write's receipt. One store call per request.
//! - [`store`]: the one API ([`store::ShardedStore`]: `get`, `get_many`, `set`, `set_many`,
//!   `delete_if`, each write returning a [`store::Receipt`]) and its internals: routing, the
//!   writer section, versions, timers, and the change stream ([`store::Change`] →
//!   [`store::ChangeSink`]).
//! - [`replication`]: a sink: queues to the replica copies, apply threads, `ack=all`, failover,
//!   and re-syncs that copy a shard without holding its writers.
//! - [`persistence`]: a sink: the append-only log, snapshots, start-up recovery (`--data-dir`).
//! - [`expiry`]: the timing wheel and the expiry thread (which also runs the store's upkeep).
//! - `eviction`: the thread that runs the store's eviction sampling ahead of the writers
//!   (the policies, the access words and the candidate pool are `store::eviction`).
//! - [`clock`]: the coarse 1 ms clock every deadline is measured on.
//! - `resp` (feature `server`): the Redis protocol (RESP2/RESP3): listener, connection loop,
//!   parser, encoder, dispatcher and `resp::cmd`, one file per command family. Read-modify-write
//!   commands and `EXEC` are store [`store::Transaction`]s; `WATCH` is a change sink.
//! - [`traffic`]: what each front-end reports to `/metrics`, labelled by protocol; `listener`
//!   binds every front-end's socket.
//! - `server` and `config` (feature `server`): start-up, the CLI, and shutdown.
//! - [`sync`]: std or loom primitives; the only module that names loom's cfg.
//! - `worker`: the one background-thread type (expiry, eviction, apply and log threads).
//! - [`redis_value`]: pure Redis 7.0 string-command logic (integers, INCRBYFLOAT, glob,
//!   ranges, bits, LCS, encodings) for the RESP front-end; no store, no I/O.
//! - [`counter`]: striped statistics counters that do not bounce cache lines.
//! - [`faults`]: faults injected on purpose (feature `testing` only; empty otherwise).
//!
//! README's Design section follows one `PUT /v1/kv/k` through these files.

pub mod clock;
#[cfg(feature = "server")]
pub mod config;
pub mod counter;
pub mod duration;
pub mod expiry;
pub mod faults;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod listener;
pub mod persistence;
pub mod redis_value;
pub mod replication;
#[cfg(feature = "server")]
pub mod resp;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
pub mod sync;
pub mod traffic;
not_under_loom! {
    pub mod eviction;
    pub mod worker;
}
