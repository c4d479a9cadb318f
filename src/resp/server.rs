//! The RESP listener: the accept loop with Redis's `maxclients`, and shutdown.
//!
//! Must never: accept past `maxclients` (the extra client is told so and closed, as Redis
//! does), or keep serving after shutdown begins.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::connection;
use super::state::RespServer;
use crate::store::Shard;

/// Binds the RESP listener (as HTTP binds: `SO_REUSEADDR`, a deep backlog).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    crate::listener::bind(addr)
}

/// Serves `server` on `listener` until `shutdown` completes, then tells every connection to
/// finish the commands it has read and waits up to `grace` for them.
pub async fn serve<S: Shard>(
    listener: TcpListener,
    server: Arc<RespServer<S>>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    if let Ok(local) = listener.local_addr() {
        server
            .port
            .store(u64::from(local.port()), Ordering::Relaxed);
    }
    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "RESP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let now = server.store().clock().now();
        let Some(info) = server.clients.register(peer, local, now) else {
            // As Redis: the error, written raw, then close.
            tasks.spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        };
        let server = server.clone();
        let stopped = stopped.clone();
        tasks.spawn(connection::serve(server, stream, info, stopped));
        // Reap finished connections so the set does not grow with every client ever seen.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("RESP connections still open after {grace:?}; closing them");
    }
}
