//! shardkv: a sharded, replicated, TTL-aware in-memory key-value store behind an HTTP API.
//!
//! ## Where a request goes
//! - `http` (feature `server`): the hyper service. `http::routes` maps method + path to a
//!   handler, one file per route family (`original`, `kv`, `batch_routes`, `admin`,
//!   `dashboard`); `http::ack` is when a write is answered; `http::query`, `http::params`,
//!   `http::preconditions` and [`duration`] parse what the client sent, with typed errors.
//! - [`store`]: `ShardedStore` routes the key to a shard (`LockFreeShard` on papaya, or the
//!   `RwLockShard` baseline) and reads lock-free or writes inside the shard's writer section.
//!   Each key and value live in one `store::Record`, which is also what a read hands to the
//!   response and what replicas store.
//! - [`clock`]: the coarse 1 ms clock every deadline is measured on.
//! - [`expiry`]: the thread and timing wheel that remove expired keys (the thread also
//!   completes the lock-free shards' table resizes).
//! - [`replication`]: every write, in sequence order, to the replica copies' apply threads;
//!   `ack=all`, failover, and re-syncs that copy a shard without holding its writers.
//! - [`persistence`]: the append-only log, snapshots and start-up recovery (`--data-dir`).
//! - `server` and `config` (feature `server`): start-up, the CLI, and shutdown.
//! - [`sync`]: std or loom primitives; the only module that knows about loom.
//! - `worker`: the one background-thread type (expiry, apply and log threads).
//! - [`counter`]: striped statistics counters that do not bounce cache lines.
//! - [`faults`]: faults injected on purpose (feature `testing` only; empty otherwise).

pub mod clock;
#[cfg(feature = "server")]
pub mod config;
pub mod counter;
pub mod duration;
pub mod expiry;
pub mod faults;
#[cfg(feature = "server")]
pub mod http;
pub mod persistence;
pub mod replication;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
pub mod sync;
not_under_loom! {
    pub mod worker;
}
