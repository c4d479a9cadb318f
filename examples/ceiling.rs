//! Ceiling B of the load suite (`perf/run.sh`): shardkv's HTTP layer with the store taken out.
//! Ceiling A (`examples/bare.rs`) is a bare hyper server; B/A is what our connection layer costs.
//!
//! It is built from shardkv's own code so the settings cannot drift apart: the runtime from
//! `server::build_runtime` (multi-threaded tokio, `--workers`, default one worker per core), the
//! listener from `http::bind` (`SO_REUSEADDR`, backlog 1024), and the accept loop and
//! connection settings from `http::serve_with` (`TCP_NODELAY`, connection limit, graceful
//! shutdown, the per-connection watchdog for the head and write-stall time-outs, and the
//! `http1::Builder` with keep-alive and the read-buffer limit), with the limits from
//! `server::http_limits`, and the same mimalloc global allocator. Every request, whatever its
//! method or path, gets what shardkv's `/set` answers: `200`, `content-type: text/plain;
//! charset=utf-8` and the 2-byte body `OK`.
//!
//! It takes shardkv's command line (only `--listen`, `--workers` and the HTTP limits matter):
//!
//! ```sh
//! cargo build --profile dist --example ceiling
//! target/dist/examples/ceiling --listen 127.0.0.1:8090 --workers 2
//! ```
//!
//! Prints `listening on http://ADDR` to stderr when ready; stops on SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use shardkv::config::Config;
use shardkv::http::reply::{with_type, Reply};
use shardkv::http::stats::HttpStats;
use shardkv::server::{build_runtime, http_limits, shutdown_signal};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// What `/set` answers, for every request, built by the same function.
fn fixed_answer() -> Reply {
    with_type(StatusCode::OK, &TEXT, Bytes::from_static(b"OK"))
}

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let limits = http_limits(&config);
    let result = build_runtime(&config).and_then(|runtime| {
        runtime.block_on(async {
            let listener = shardkv::http::bind(config.listen)?;
            eprintln!("listening on http://{}", listener.local_addr()?);
            let stats = Arc::new(HttpStats::default());
            let handler = |_peer, _req| async { fixed_answer() };
            shardkv::http::serve_with(
                listener,
                &limits,
                stats,
                handler,
                shutdown_signal(),
                Duration::from_secs(10),
            )
            .await;
            Ok::<_, std::io::Error>(())
        })
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ceiling: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
