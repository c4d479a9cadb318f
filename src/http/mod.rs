//! The HTTP service: a minimal hyper 1.x server on tokio.
//!
//! This module owns the runtime and the accept loop: one multi-threaded tokio runtime, one task
//! per connection, HTTP/1.1 with keep-alive and `TCP_NODELAY`, a connection limit, a head and a
//! write-stall time-out on one timer per connection (`watchdog`), and a graceful shutdown that
//! lets in-flight requests finish. Routing is in
//! [`routes`], one file per route family (`original`: `/get`, `/set`; `kv`: `/v1/kv/{key}`;
//! `batch_routes`: `/v1/mget`, `/v1/mset`; `admin`; [`dashboard`]: the status pages), the
//! acknowledgement policy in `ack`, the answers' shapes in [`reply`], request parsing in
//! [`query`], [`params`], `preconditions`, [`batch`] and `crate::duration`.
//!
//! Must never: block a tokio worker (the store's writer sections are short and bounded, and no
//! handler waits on a lock held across I/O), or let a misbehaving client hold resources
//! forever.

mod ack;
mod admin;
pub mod batch;
mod batch_routes;
pub mod dashboard;
#[cfg(feature = "testing")]
pub mod faults;
mod kv;
mod original;
pub mod params;
mod preconditions;
pub mod query;
pub mod reply;
pub mod routes;
pub mod stats;
mod watchdog;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::expiry::ExpiryStats;
use crate::persistence::LogSink;
use crate::replication::Replicas;
use crate::store::{AckPolicy, Shard, ShardedStore};
use crate::sync::Ordering;
use reply::Reply;
use stats::HttpStats;
use watchdog::{Activity, Deadlines, WatchedStream};

/// Limits the HTTP layer enforces.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// The largest request body read (a value plus its framing).
    pub max_body_bytes: usize,
    /// The most items in one batch request.
    pub max_batch: usize,
    /// The most connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// hyper's read buffer: the largest request head (line + headers) accepted. hyper checks
    /// it between reads, so a head may pass it by up to one read (at most about twice it).
    pub max_header_bytes: usize,
    /// How long a response write may make no progress before the connection is dropped.
    pub write_timeout: Duration,
    /// The largest batch answer (sum of the values as sent), so one request cannot make the
    /// server hold an unbounded response.
    pub max_batch_answer_bytes: usize,
}

/// What every request handler can see.
pub struct AppState<S: Shard> {
    /// The store: the one API every data route calls.
    pub store: Arc<ShardedStore<S>>,
    /// The store's replicas (dashboard, failover and recovery).
    pub replicas: Arc<Replicas<S>>,
    /// The append-only log, when persistence is on (dashboard and snapshots).
    pub log: Option<Arc<LogSink>>,
    /// The expiry thread's counters.
    pub expiry: Arc<ExpiryStats>,
    /// Request and connection counters.
    pub stats: Arc<HttpStats>,
    /// Limits.
    pub limits: HttpLimits,
    /// When the server started.
    pub started: Instant,
    /// When a write is answered unless the request's `ack` says otherwise (`--ack`).
    pub ack: AckPolicy,
    /// The token admin routes require, if set (otherwise they answer loopback clients only).
    pub admin_token: Option<String>,
    /// The password every request must carry as `Authorization: Bearer PASSWORD`
    /// (`--requirepass`, shared with the Redis protocol's `AUTH`), if set.
    pub password: Option<String>,
    /// The other front-ends (the Redis protocol), whose traffic `/metrics` and `/dashboard`
    /// report beside HTTP's.
    pub other_protocols: Vec<Arc<dyn crate::traffic::TrafficSource>>,
}

/// Serves `state` on `listener` until `shutdown` completes, then stops accepting and waits up
/// to `grace` for open connections to finish their requests.
pub async fn serve<S: Shard>(
    listener: TcpListener,
    state: Arc<AppState<S>>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let limits = state.limits.clone();
    let stats = state.stats.clone();
    let handler = move |peer, req| routes::route(state.clone(), peer, req);
    serve_with(listener, &limits, stats, handler, shutdown, grace).await
}

/// The accept loop and connection settings, with any request handler: shardkv's routes, or
/// the fixed answer of the HTTP ceiling in `examples/ceiling.rs`, which must measure exactly
/// these settings.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    limits: &HttpLimits,
    stats: Arc<HttpStats>,
    handler: H,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    H: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let builder = connection_builder(limits);
    let clock = Clock::coarse();
    let deadlines = Deadlines {
        head: limits.header_read_timeout,
        write_stall: limits.write_timeout,
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        stats.connections_total.incr();
        stats.connections_open.fetch_add(1, Ordering::Relaxed);
        let open = OpenConnection(stats.clone());
        let handler = handler.clone();
        // The head and write-stall time-outs: one timer per connection (see `watchdog`).
        let activity = Activity::new(clock.clone());
        let stream = WatchedStream::new(stream, activity.clone());
        let watchdog = watchdog::watch(activity.clone(), deadlines);
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                activity.request_started();
                let reply = handler(peer, req);
                let activity = activity.clone();
                async move {
                    let reply = reply.await;
                    activity.answer_ready();
                    Ok::<_, std::convert::Infallible>(reply)
                }
            }),
        );
        let connection = graceful.watch(connection);
        // The connection runs in a task of its own, supervised by its watchdog, so the
        // connection's wake-ups never poll the watchdog's timer. A client past a time-out:
        // aborting the connection's task drops the connection, which closes it.
        tokio::spawn(async move {
            let mut served = tokio::spawn(async move {
                let _permit = permit;
                let _open = open;
                // A client that vanishes mid-request ends here; nothing to report.
                let _ = connection.await;
            });
            tokio::select! {
                _ = &mut served => {}
                _ = watchdog => served.abort(),
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("connections still open after {grace:?}; closing them");
        }
    }
}

/// shardkv's HTTP/1 connection settings. hyper's own header time-out is off: it arms a timer
/// per request, and the connection's watchdog enforces the same deadline with one timer per
/// connection (see `watchdog`).
pub fn connection_builder(limits: &HttpLimits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes);
    builder
}

/// Binds `addr` with `SO_REUSEADDR` and a deep backlog.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    crate::listener::bind(addr)
}

/// Counts a connection as closed when dropped.
struct OpenConnection(Arc<HttpStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}
