//! The bare HTTP ceiling for the load suite (`perf/run.sh`): the fastest any hyper server can
//! answer on this machine, with nothing of shardkv in it.
//!
//! `perf/run.sh` measures shardkv against two ceilings in the same run:
//!
//! - **A, this server:** hyper 1.x http1 on a multi-threaded tokio runtime (one worker per core),
//!   keep-alive, `TCP_NODELAY`, mimalloc, and a fixed answer: no time-outs, no connection
//!   limit, no statistics, no graceful shutdown. It uses none of shardkv's code (only crates
//!   shardkv already depends on, so CI builds no second dependency tree), so it is what a user
//!   would write as "a bare hyper server".
//! - **B, `examples/ceiling.rs`:** shardkv's own connection layer (`http::serve_with`) with the
//!   store taken out.
//!
//! B/A is then the cost of shardkv's connection layer, and shardkv/B the cost of everything
//! behind it. Both answer every request with what shardkv's `/set` answers: `200`,
//! `content-type: text/plain; charset=utf-8` and the 2-byte body `OK`.
//!
//! ```sh
//! cargo build --profile dist --example bare
//! target/dist/examples/bare --listen 127.0.0.1:8091 [--workers 2]
//! ```
//!
//! Prints `listening on http://ADDR` to stderr when ready (the line `perf/lib.sh` waits for);
//! stops on SIGTERM or Ctrl-C (the default signal action: nothing is drained).
//!
//! Must never: use anything from the `shardkv` library, or add a protection shardkv's layer
//! has (that is what B is for).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// `--listen ADDR` and `--workers N`; every other argument is ignored, so the load suite can
/// pass the same arguments it passes to every server.
fn arguments() -> (SocketAddr, Option<usize>) {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 8091).into();
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next().map(|a| a.parse()) {
                Some(Ok(addr)) => listen = addr,
                _ => fail("--listen needs an address such as 127.0.0.1:8091"),
            },
            "--workers" => match args.next().map(|a| a.parse()) {
                Some(Ok(n)) if n > 0 => workers = Some(n),
                _ => fail("--workers needs a positive number"),
            },
            "-h" | "--help" => {
                println!("usage: bare [--listen ADDR] [--workers N]  (a fixed 200 answer to every request)");
                std::process::exit(0)
            }
            _ => {}
        }
    }
    (listen, workers)
}

fn fail(message: &str) -> ! {
    eprintln!("bare: {message}");
    std::process::exit(2)
}

async fn answer(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(b"OK")));
    response.headers_mut().insert(CONTENT_TYPE, TEXT.clone());
    Ok(response)
}

fn main() {
    let (listen, workers) = arguments();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(err) => fail(&format!("cannot start the runtime: {err}")),
    };
    runtime.block_on(async {
        let listener = match TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(err) => fail(&format!("cannot listen on {listen}: {err}")),
        };
        match listener.local_addr() {
            Ok(addr) => eprintln!("listening on http://{addr}"),
            Err(err) => fail(&format!("no local address: {err}")),
        }
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service_fn(answer))
                    .await;
            });
        }
    });
}
