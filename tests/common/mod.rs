//! What the integration tests share: the real `shardkv` binary started on a free loopback port
//! and stopped after, a fresh temporary directory, and a store to load a data directory into.

#![allow(dead_code)]

pub mod resp;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    /// Where it listens for HTTP.
    pub addr: SocketAddr,
    /// Where it listens for RESP, once its log has said so.
    resp_addr: std::sync::Arc<std::sync::Mutex<Option<SocketAddr>>>,
    /// Its standard error so far is collected here by a thread.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// Starts `shardkv --listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 <args>` and waits for its
    /// "listening on http://" line; the "listening on redis://" line is read by `resp_addr`.
    pub fn start(args: &[&str]) -> Server {
        // The fault layer's knobs exist only in a build with the `testing` feature: say so
        // rather than let the binary refuse an unknown flag, and never skip the test.
        assert!(
            cfg!(feature = "testing") || !args.iter().any(|a| a.starts_with("--fault-")),
            "this test injects faults: run it with --features testing (bash scripts/test-all.sh does)"
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardkv"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--resp-listen",
                "127.0.0.1:0",
                "--log",
                "info",
            ])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shardkv");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        let resp_addr = std::sync::Arc::new(std::sync::Mutex::new(None));
        let resp_sink = resp_addr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                if let Some(rest) = line.split("listening on redis://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("");
                    if let Ok(addr) = addr.parse::<SocketAddr>() {
                        *resp_sink.lock().unwrap() = Some(addr);
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "server did not report its address; its log:\n{}",
                    log.lock().unwrap()
                )
            })
            .parse()
            .expect("address");
        Server {
            child,
            addr,
            resp_addr,
            log,
        }
    }

    /// Where it listens for RESP (its "listening on redis://ADDR" line). Waits a few seconds
    /// for that line, then panics with the log so far.
    pub fn resp_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(addr) = *self.resp_addr.lock().unwrap() {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "shardkv never logged \"listening on redis://\"; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking HTTP client with a timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A fresh, empty directory `shardkv-<name>-<pid>` under the system's temp dir (a test binary's
/// pid keeps parallel test binaries apart; names keep one binary's tests apart).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("shardkv-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An empty lock-free store on the real clock, to load a data directory into.
pub fn new_store() -> std::sync::Arc<shardkv::store::ShardedStore<shardkv::store::LockFreeShard>> {
    std::sync::Arc::new(shardkv::store::ShardedStore::new(
        shardkv::store::StoreConfig::default(),
        shardkv::clock::Clock::coarse(),
    ))
}

/// Every key and value a store holds, sorted.
pub fn contents(
    store: &shardkv::store::ShardedStore<shardkv::store::LockFreeShard>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    for shard in 0..store.shard_count() {
        let (entries, _fence) = store.snapshot_shard(shard);
        all.extend(
            entries
                .into_iter()
                .map(|e| (e.record.key().to_vec(), e.value().to_vec())),
        );
    }
    all.sort();
    all
}

/// Waits until `log`'s start-up snapshot has landed, so every write after this call lands in
/// one log file.
pub fn wait_for_first_snapshot(log: &shardkv::persistence::LogThread) {
    while log
        .sink()
        .snapshots
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}
