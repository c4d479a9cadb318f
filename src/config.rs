//! Every knob of the server, its default and its limit, in one place; parsed by clap.
//!
//! Must never: accept a setting that would make the server misbehave later (zero shards, a
//! zero-byte value limit): clap rejects it at start-up with a message instead.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Which shard implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// papaya lock-free maps: reads never lock (the default).
    Lockfree,
    /// `RwLock<HashMap>` per shard: the original tool's design, kept as the baseline.
    Rwlock,
}

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AckMode {
    /// After the primary applied it (replicas catch up in the background).
    Async,
    /// After every live replica applied it too.
    All,
}

/// When the log is synced to disk (Redis's appendfsync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FsyncArg {
    /// Before acknowledging each write (group commit: concurrent writes share a sync).
    Always,
    /// About once a second: a power loss loses at most about a second.
    Everysec,
    /// Never; the OS writes back when it likes.
    No,
}

/// Where the Redis protocol listener binds, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespListen {
    /// No RESP listener.
    Off,
    /// Listen on this address.
    On(SocketAddr),
}

impl std::str::FromStr for RespListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(RespListen::Off);
        }
        s.parse()
            .map(RespListen::On)
            .map_err(|e| format!("{e}: expected an address such as 127.0.0.1:6379, or `off`"))
    }
}

/// shardkv: a sharded, TTL-aware in-memory key-value server over HTTP and the Redis protocol.
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Config {
    /// Address to listen on (use 0.0.0.0:8080 to expose it beyond this machine).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Address for the Redis protocol (RESP2/RESP3), or `off`.
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub resp_listen: RespListen,

    /// Numbered databases (Redis's SELECT); HTTP serves database 0.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub databases: u32,

    /// Password that both front-ends require: Redis's AUTH, and `Authorization: Bearer
    /// PASSWORD` over HTTP [default: none].
    #[arg(long)]
    pub requirepass: Option<String>,

    /// Seconds a Redis-protocol client may stay idle before it is disconnected; 0 = never
    /// (Redis's `timeout`).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub resp_timeout: u64,

    /// Most Redis-protocol clients connected at once (Redis's `maxclients`); more are told
    /// "ERR max number of clients reached" and closed.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_clients: u64,

    /// Most reply bytes a Redis-protocol client may leave unread; past it the client is
    /// disconnected (Redis's client-output-buffer-limit hard limit).
    #[arg(long, default_value_t = 256 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1 << 40))]
    pub resp_output_limit: u64,

    /// Number of shards, rounded up to a power of two [default: 4 × cores, next power of two].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub shards: Option<u32>,

    /// Shard implementation.
    #[arg(long, value_enum, default_value_t = StoreKind::Lockfree)]
    pub store: StoreKind,

    /// Replica copies of every shard, in this process (they guard against a simulated shard
    /// fault, not a crash or a lost host).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=63))]
    pub replicas: u32,

    /// When writes are acknowledged (a request's `ack=` overrides it).
    #[arg(long, value_enum, default_value_t = AckMode::Async)]
    pub ack: AckMode,

    /// Token that admin routes (/admin/...) require as `Authorization: Bearer TOKEN`; without
    /// it they answer loopback clients only.
    #[arg(long)]
    pub admin_token: Option<String>,

    /// Directory for the append-only log and snapshots; turns persistence on (off by default).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,

    /// When the log is synced to disk (with --data-dir).
    #[arg(long, value_enum, default_value_t = FsyncArg::Everysec)]
    pub fsync: FsyncArg,

    /// Longest key accepted, in bytes.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_key_bytes: u64,

    /// Largest value accepted, in bytes.
    #[arg(long, default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1..=1_073_741_824))]
    pub max_value_bytes: u64,

    /// Most items in one /v1/mget or /v1/mset request.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_batch: u64,

    /// Most connections open at once; more wait in the listen backlog.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Seconds a client may take to send its request headers before the connection is closed.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,

    /// Seconds a client may take to send a request body before it gets 408.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,

    /// Seconds a response write may make no progress (a client that stops reading) before the
    /// connection is dropped.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout_secs: u64,

    /// Largest /v1/mget answer in bytes (values as sent); larger requests get 413 and should
    /// ask for fewer keys.
    #[arg(long, default_value_t = 32 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=1 << 32))]
    pub max_batch_answer_bytes: u64,

    /// Largest request head (request line and headers) in bytes; larger gets 431 (hyper checks
    /// between reads, so a head can pass it by up to one read).
    #[arg(long, default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(8192..=16 * 1024 * 1024))]
    pub max_header_bytes: u64,

    /// Memory the stored data may take, in bytes, all replicas counted (an estimate of keys,
    /// values and per-entry overhead); writes past it get 507 while reads and deletes keep
    /// working [default: half of the machine's memory].
    #[arg(long)]
    pub max_memory: Option<u64>,

    /// What a write that needs room past --max-memory does, with Redis's names: noeviction
    /// (refuse it: 507, Redis's OOM error), allkeys-lru, allkeys-lfu, allkeys-random,
    /// volatile-lru, volatile-lfu, volatile-random or volatile-ttl (evict keys to make room).
    /// Settable at run time (POST /admin/config, CONFIG SET maxmemory-policy).
    #[arg(long, default_value = "noeviction", value_parser = parse_policy)]
    pub maxmemory_policy: crate::store::EvictionPolicy,

    /// Entries ranked per eviction (Redis's maxmemory-samples): more is closer to exact LRU/LFU
    /// and costs more per eviction.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub maxmemory_samples: u64,

    /// Keys to pre-size the shards for (avoids resizes while loading).
    #[arg(long, default_value_t = 0)]
    pub initial_capacity: usize,

    /// Tokio worker threads [default: the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub workers: Option<u32>,

    /// Log filter (tracing's env-filter syntax), e.g. info, debug, shardkv=trace.
    #[arg(long, default_value = "info")]
    pub log: String,

    /// Test builds only (feature `testing`): capacity of each replica's apply queue.
    #[cfg(feature = "testing")]
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub fault_replica_queue: Option<u64>,

    /// Test builds only (feature `testing`): capacity of the log queue.
    #[cfg(feature = "testing")]
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub fault_log_queue: Option<u64>,

    /// Test builds only (feature `testing`): capacity of the expiry timer queue.
    #[cfg(feature = "testing")]
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub fault_timer_queue: Option<u64>,

    /// Test builds only (feature `testing`): versions reserved per lease renewal (tiny, so
    /// tests renew often).
    #[cfg(feature = "testing")]
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(2..=1 << 40))]
    pub fault_version_lease: Option<u64>,
}

/// Capacities of the bounded queues between writers and background threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCapacities {
    /// Each replica's apply queue.
    pub replica: usize,
    /// The log queue.
    pub log: usize,
    /// The expiry timer queue.
    pub timer: usize,
}

impl Default for QueueCapacities {
    fn default() -> Self {
        QueueCapacities {
            replica: 1 << 16,
            log: 1 << 20,
            timer: 1 << 18,
        }
    }
}

fn parse_policy(name: &str) -> Result<crate::store::EvictionPolicy, String> {
    crate::store::EvictionPolicy::parse(name).map_err(|e| e.to_string())
}

/// Half of the machine's memory (`MemTotal` in /proc/meminfo), or 4 GiB where unknown.
pub fn default_max_memory() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
    });
    total_kib.map_or(4 << 30, |kib| kib * 1024 / 2)
}

impl Config {
    /// The queue capacities: the defaults, or in test builds what the hidden knobs ask for.
    pub fn queue_capacities(&self) -> QueueCapacities {
        #[allow(unused_mut)]
        let mut capacities = QueueCapacities::default();
        #[cfg(feature = "testing")]
        {
            let pick = |knob: Option<u64>, default: usize| knob.map_or(default, |n| n as usize);
            capacities.replica = pick(self.fault_replica_queue, capacities.replica);
            capacities.log = pick(self.fault_log_queue, capacities.log);
            capacities.timer = pick(self.fault_timer_queue, capacities.timer);
        }
        capacities
    }

    /// Versions reserved per version-lease renewal: the default, or in test builds what the
    /// hidden knob asks for.
    pub fn version_lease(&self) -> u64 {
        #[cfg(feature = "testing")]
        if let Some(n) = self.fault_version_lease {
            return n;
        }
        crate::persistence::DEFAULT_LEASE
    }

    /// The header read timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }
}
