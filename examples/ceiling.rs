//! The HTTP ceiling for the load suite (`perf/run.sh`): the fastest a shardkv-shaped server can
//! answer on this machine.
//!
//! It is shardkv's HTTP shell with the store taken out: the same multi-threaded tokio runtime
//! (`--workers` as in shardkv, default one worker per core), the same listener (`SO_REUSEADDR`,
//! backlog 1024), `TCP_NODELAY` on every accepted socket, the same per-connection bookkeeping
//! (a connection-limit semaphore, graceful-shutdown watch), the same `http1::Builder` options
//! (keep-alive, `TokioTimer`, 30 s header read timeout) and the mimalloc global allocator. Every
//! request, whatever its method or path, gets `200` with the fixed 2-byte body `OK` (the body
//! shardkv's `/set` answers with), so every shardkv figure in `perf/RESULTS.md` can be read as a
//! fraction of what the HTTP layer alone allows.
//!
//! ```sh
//! cargo build --profile dist --example ceiling
//! target/dist/examples/ceiling --listen 127.0.0.1:8090 --workers 2
//! ```
//!
//! Prints `listening on http://ADDR` to stderr when ready; stops on SIGTERM or Ctrl-C.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// shardkv's defaults for `--max-connections` and `--header-timeout-secs`.
const MAX_CONNECTIONS: usize = 10_000;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

const USAGE: &str = "usage: ceiling [--listen ADDR] [--workers N]";

struct Args {
    listen: SocketAddr,
    workers: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
        workers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (flag.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match name.as_str() {
            "--listen" => {
                let v = value()?;
                args.listen = v
                    .parse()
                    .map_err(|e| format!("--listen {v:?}: {e}\n{USAGE}"))?;
            }
            "--workers" => {
                let v = value()?;
                let n: usize = v
                    .parse()
                    .map_err(|e| format!("--workers {v:?}: {e}\n{USAGE}"))?;
                if n == 0 {
                    return Err(format!("--workers must be at least 1\n{USAGE}"));
                }
                args.workers = Some(n);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// shardkv's `http::bind`: `SO_REUSEADDR` and a backlog of 1024.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// shardkv's `http::connection_builder`.
fn connection_builder() -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
}

async fn answer(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"OK"))))
}

async fn serve(listener: TcpListener) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    eprintln!("ceiling: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection =
            connection_builder().serve_connection(TokioIo::new(stream), service_fn(answer));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
}

async fn shutdown_signal() {
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
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("ceiling: {msg}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.workers {
        runtime.worker_threads(workers);
    }
    let runtime = match runtime.enable_all().thread_name("ceiling-http").build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("ceiling: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = bind(args.listen)?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        serve(listener).await;
        Ok::<_, std::io::Error>(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ceiling: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
