//! Start-up and shutdown: builds the store for the chosen shard kind, starts the expiry thread
//! and the tokio runtime, serves until Ctrl-C or SIGTERM, then drains.
//!
//! Must never: log keys or values (the original printed every one).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::RespListen;
use crate::config::{default_max_memory, AckMode, Config, FsyncArg, StoreKind};
use crate::eviction::EvictionThread;
use crate::expiry::ExpiryThread;
use crate::http::{self, AppState, HttpLimits};
use crate::persistence::{lease, recovery, FsyncMode, LogThread, PersistenceError};
use crate::replication::{ApplyThreads, Replicas};
use crate::resp::{self, RespServer, RespSettings};
use crate::store::{
    default_shard_count, AckPolicy, LockFreeShard, RwLockShard, Shard, ShardedStore, StoreConfig,
    MAX_TOTAL_SHARDS,
};

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the server described by `config` until it is told to stop.
pub fn run(config: Config) -> std::io::Result<()> {
    match config.store {
        StoreKind::Lockfree => run_with::<LockFreeShard>(config),
        StoreKind::Rwlock => run_with::<RwLockShard>(config),
    }
}

fn run_with<S: Shard>(config: Config) -> std::io::Result<()> {
    let shards = config
        .shards
        .map_or_else(default_shard_count, |n| n as usize)
        .next_power_of_two();
    if shards * config.databases as usize > MAX_TOTAL_SHARDS {
        return Err(std::io::Error::other(format!(
            "--shards {shards} × --databases {} is more than {MAX_TOTAL_SHARDS} shards in all; lower one of them",
            config.databases
        )));
    }
    let store_config = StoreConfig {
        shards: config
            .shards
            .map_or_else(default_shard_count, |n| n as usize),
        max_key_bytes: config.max_key_bytes as usize,
        max_value_bytes: config.max_value_bytes as usize,
        initial_capacity: config.initial_capacity,
        replicas: config.replicas as usize,
        max_memory: config.max_memory.unwrap_or_else(default_max_memory),
        timer_queue_capacity: config.queue_capacities().timer,
        databases: config.databases as usize,
        eviction_policy: config.maxmemory_policy,
    };
    let store = Arc::new(ShardedStore::<S>::new(store_config, Clock::coarse()));
    store.set_eviction_samples(config.maxmemory_samples as usize);
    let expiry = ExpiryThread::start(store.clone())?;
    let eviction = EvictionThread::start(store.clone())?;
    let replicas = Arc::new(
        Replicas::attach(store.clone(), config.queue_capacities().replica)
            .map_err(std::io::Error::other)?,
    );
    let apply = ApplyThreads::start(replicas.clone())?;
    let log = match &config.data_dir {
        None => None,
        Some(dir) => Some(
            open_data_dir(
                &store,
                dir,
                config.fsync,
                config.queue_capacities().log,
                config.version_lease(),
            )
            .map_err(std::io::Error::other)?,
        ),
    };
    let limits = http_limits(&config);
    let ack = match config.ack {
        AckMode::All => AckPolicy::AllReplicas,
        AckMode::Async => AckPolicy::Primary,
    };
    let log_sink = log.as_ref().map(|log| log.sink().clone());
    // Registered before the listeners open: the watch registry is a sink of the change stream.
    let resp_server = match config.resp_listen {
        RespListen::Off => None,
        RespListen::On(addr) => Some((
            addr,
            Arc::new(
                RespServer::new(
                    store.clone(),
                    replicas.clone(),
                    log_sink.clone(),
                    expiry.stats().clone(),
                    resp_settings(&config, ack, addr),
                    config.max_clients as usize,
                )
                .map_err(std::io::Error::other)?,
            ),
        )),
    };

    let state = Arc::new(AppState {
        store: store.clone(),
        replicas: replicas.clone(),
        log: log_sink.clone(),
        expiry: expiry.stats().clone(),
        stats: Default::default(),
        limits,
        started: Instant::now(),
        ack,
        admin_token: config.admin_token.clone(),
        password: config.requirepass.clone(),
        other_protocols: resp_server
            .iter()
            .map(|(_, server)| server.clone() as Arc<dyn crate::traffic::TrafficSource>)
            .collect(),
    });
    let runtime = build_runtime(&config)?;
    runtime.block_on(async {
        let listener = http::bind(config.listen)?;
        let local = listener.local_addr()?;
        let resp_listener = match &resp_server {
            Some((addr, server)) => {
                let listener = resp::bind(*addr).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot listen for the Redis protocol on {addr}: {e} (choose another address with --resp-listen ADDR, or turn it off with --resp-listen off)"),
                    )
                })?;
                Some((listener, server.clone()))
            }
            None => None,
        };
        tracing::info!(
            listen = %local,
            store = S::KIND,
            shards = store.config().shards,
            databases = store.databases(),
            replicas = config.replicas,
            ack = ?config.ack,
            data_dir = ?config.data_dir,
            fsync = ?config.fsync,
            max_memory = store.max_memory(),
            max_key_bytes = config.max_key_bytes,
            max_value_bytes = config.max_value_bytes,
            workers = config.workers.map_or_else(|| "cores".to_string(), |w| w.to_string()),
            "shardkv {} listening on http://{local}",
            env!("CARGO_PKG_VERSION"),
        );
        if let Some((listener, _)) = &resp_listener {
            tracing::info!("Redis protocol listening on redis://{}", listener.local_addr()?);
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        };
        let when_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let http = http::serve(listener, state, when_stopped(stopped.clone()), SHUTDOWN_GRACE);
        let redis = async {
            if let Some((listener, server)) = resp_listener {
                resp::serve(listener, server, when_stopped(stopped.clone()), SHUTDOWN_GRACE).await;
            }
        };
        // The signal tells both front-ends, which then drain and return.
        tokio::join!(signal, http, redis);
        tracing::info!("shut down");
        Ok::<_, std::io::Error>(())
    })?;
    // Connections still open after the grace period may go on writing: refuse them before the
    // log's last drain, airtight (no write admitted before this is still being queued after).
    store.close_writes();
    // The log last sees every write, then syncs and stops.
    drop(log);
    drop(apply);
    drop(expiry);
    drop(eviction);
    Ok(())
}

/// The HTTP limits `config` asks for.
pub fn http_limits(config: &Config) -> HttpLimits {
    HttpLimits {
        // A value, percent-encoded in a form body at worst 3 bytes per byte, plus the rest.
        max_body_bytes: (config.max_value_bytes as usize)
            .saturating_mul(3)
            .saturating_add(64 * 1024),
        max_batch: config.max_batch as usize,
        max_connections: config.max_connections as usize,
        header_read_timeout: config.header_timeout(),
        body_timeout: Duration::from_secs(config.body_timeout_secs),
        max_header_bytes: config.max_header_bytes as usize,
        write_timeout: Duration::from_secs(config.write_timeout_secs),
        max_batch_answer_bytes: config.max_batch_answer_bytes as usize,
    }
}

/// The RESP front-end's settings `config` asks for.
fn resp_settings(config: &Config, ack: AckPolicy, addr: std::net::SocketAddr) -> RespSettings {
    RespSettings {
        password: config.requirepass.clone(),
        timeout_secs: config.resp_timeout.into(),
        output_limit: config.resp_output_limit.into(),
        max_arg_bytes: config.max_value_bytes as usize,
        write_timeout: Duration::from_secs(config.write_timeout_secs),
        ack,
        fsync: match (config.data_dir.is_some(), config.fsync) {
            (false, _) => "no",
            (true, FsyncArg::Always) => "always",
            (true, FsyncArg::Everysec) => "everysec",
            (true, FsyncArg::No) => "no",
        },
        bind: addr.ip().to_string(),
        dir: config
            .data_dir
            .as_ref()
            .map_or_else(String::new, |d| d.display().to_string()),
    }
}

/// The tokio runtime the server runs on: multi-threaded, `--workers` threads (default: one
/// per core).
pub fn build_runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.workers {
        runtime.worker_threads(workers as usize);
    }
    runtime.enable_all().thread_name("shardkv-http").build()
}

/// Loads what `dir` holds, then starts the log thread (which begins with a snapshot).
fn open_data_dir<S: Shard>(
    store: &Arc<ShardedStore<S>>,
    dir: &std::path::Path,
    fsync: FsyncArg,
    queue_capacity: usize,
    version_lease: u64,
) -> Result<LogThread, PersistenceError> {
    // Versions handed out before a crash may be above everything on disk, but never above the
    // lease: start above it, so no version (ETag) repeats.
    store.raise_versions(lease::read_limit(dir)?);
    let report = recovery::recover(dir, store)?;
    tracing::info!(
        dir = %dir.display(),
        keys = report.keys,
        records = report.records,
        expired_while_down = report.expired,
        torn_tails = report.torn.len(),
        "loaded {} keys in {:.3}s",
        report.keys,
        report.elapsed.as_secs_f64(),
    );
    let mode = match fsync {
        FsyncArg::Always => FsyncMode::Always,
        FsyncArg::Everysec => FsyncMode::EverySec,
        FsyncArg::No => FsyncMode::No,
    };
    LogThread::start_with_lease(
        store.clone(),
        dir.to_path_buf(),
        report.next_gen,
        mode,
        queue_capacity,
        version_lease,
    )
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
