//! The state every RESP connection shares ([`RespServer`]): the store and its sinks, the
//! connected clients, watched keys, counters and the settings `CONFIG SET` may change.
//!
//! Must never: be changed by a connection except through its atomics and registries (it is
//! shared by every connection's task).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clients::{unix_ms, Clients};
use super::command::COMMANDS;
use super::stats::RespStats;
use super::watch::WatchRegistry;
use crate::expiry::ExpiryStats;
use crate::persistence::LogSink;
use crate::replication::Replicas;
use crate::store::{AckPolicy, Shard, ShardedStore, TooManySinks};

/// Settings of the RESP front-end; the ones `CONFIG SET` may change are atomics.
#[derive(Debug)]
pub struct RespSettings {
    /// The password both front-ends require (`--requirepass`).
    pub password: Option<String>,
    /// Idle seconds before a client is disconnected; 0 = never (`timeout`).
    pub timeout_secs: AtomicU64,
    /// Unread reply bytes past which a client is disconnected.
    pub output_limit: AtomicU64,
    /// Longest argument buffered (`--max-value-bytes`); longer ones are dropped unread.
    pub max_arg_bytes: usize,
    /// How long a reply write may make no progress before the client is dropped.
    pub write_timeout: Duration,
    /// When writes are acknowledged (`--ack`).
    pub ack: AckPolicy,
    /// `appendfsync` as `CONFIG GET` shows it.
    pub fsync: &'static str,
    /// The address listened on, as `CONFIG GET bind` shows it.
    pub bind: String,
    /// The data directory, as `CONFIG GET dir` shows it.
    pub dir: String,
}

/// What every RESP connection shares.
pub struct RespServer<S: Shard> {
    store: Arc<ShardedStore<S>>,
    /// The store's replicas (`WAIT`, `INFO replication`).
    pub replicas: Arc<Replicas<S>>,
    /// The append-only log, when persistence is on.
    pub log: Option<Arc<LogSink>>,
    /// The expiry thread's counters (`INFO stats`).
    pub expiry: Arc<ExpiryStats>,
    /// Connected clients.
    pub clients: Arc<Clients>,
    /// Watched keys.
    pub watches: Arc<WatchRegistry>,
    /// Counters.
    pub stats: RespStats,
    /// Settings.
    pub settings: RespSettings,
    /// When the server started.
    pub started: Instant,
    /// The listening port (`INFO server`), set once bound.
    pub port: AtomicU64,
    /// Unix seconds of the last successful snapshot (`LASTSAVE`).
    pub last_save: Arc<AtomicU64>,
    /// A random 40-hex-digit id of this run (`run_id`).
    pub run_id: String,
    /// Times commands for `INFO commandstats` (quanta: the TSC, no system call).
    pub timer: quanta::Clock,
}

impl<S: Shard> RespServer<S> {
    /// The shared state, registering the watch registry as a sink of `store`'s change stream
    /// (so call it at start-up, before any write).
    pub fn new(
        store: Arc<ShardedStore<S>>,
        replicas: Arc<Replicas<S>>,
        log: Option<Arc<LogSink>>,
        expiry: Arc<ExpiryStats>,
        settings: RespSettings,
        max_clients: usize,
    ) -> Result<Self, TooManySinks> {
        let watches = Arc::new(WatchRegistry::default());
        store.register_sink(watches.clone())?;
        let seed = std::hash::BuildHasher::hash_one(&foldhash::fast::RandomState::default(), 1u8);
        let seed2 = std::hash::BuildHasher::hash_one(&foldhash::fast::RandomState::default(), 2u8);
        Ok(RespServer {
            store,
            replicas,
            log,
            expiry,
            clients: Arc::new(Clients::new(max_clients)),
            watches,
            stats: RespStats::new(COMMANDS.len()),
            settings,
            started: Instant::now(),
            port: AtomicU64::new(0),
            last_save: Arc::new(AtomicU64::new(unix_ms() / 1000)),
            timer: quanta::Clock::new(),
            run_id: format!("{seed:016x}{seed2:016x}{:08x}", seed ^ seed2)[..40].to_string(),
        })
    }

    /// The store.
    pub fn store(&self) -> &ShardedStore<S> {
        &self.store
    }

    /// When writes are acknowledged.
    pub fn ack_policy(&self) -> AckPolicy {
        self.settings.ack
    }

    /// Whether a password is set.
    pub fn password_set(&self) -> bool {
        self.settings.password.is_some()
    }

    /// Checks a password in constant time.
    pub fn password_matches(&self, given: &[u8]) -> bool {
        match &self.settings.password {
            None => true,
            Some(p) => subtle::ConstantTimeEq::ct_eq(p.as_bytes(), given).into(),
        }
    }
}

impl<S: Shard> crate::traffic::TrafficSource for RespServer<S> {
    fn protocol(&self) -> &'static str {
        "redis"
    }

    fn snapshot(&self) -> crate::traffic::TrafficSnapshot {
        crate::traffic::TrafficSnapshot {
            requests: self.stats.processed.get(),
            errors: self.stats.total_errors(),
            connections_open: self.clients.count() as u64,
            connections_total: self.clients.accepted.load(Ordering::Relaxed),
            bytes_in: self.stats.net_input.load(Ordering::Relaxed),
            bytes_out: self.stats.net_output.load(Ordering::Relaxed),
        }
    }
}
