//! twemproxy (Debian's `nutcracker`) in front of three shardkv processes, configured from
//! deploy/twemproxy/nutcracker.yml.template: redis-cli and redis-benchmark (`-t set,get,mset`,
//! no inline commands: twemproxy has none) run through the proxy with no error, and every key
//! written through the proxy lives on exactly one backend (checked on each backend directly).
//!
//! `twemproxy_three_shardkv` is the real test; `twemproxy_three_redis_reference` runs the same
//! check over three redis-servers, which proves the check (it must pass). A missing nutcracker
//! fails with `apt-get install nutcracker`.

mod common;

use common::resp::{free_port, RedisServer, RespConn, Target};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nutcracker, killed on drop.
struct Nutcracker {
    child: Child,
    addr: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nutcracker(backends: &[SocketAddr]) -> Nutcracker {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/twemproxy/nutcracker.yml.template"
    ))
    .expect("read the nutcracker template");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = template
        .replace("@LISTEN@", &addr.to_string())
        .replace("@SERVER1@", &backends[0].to_string())
        .replace("@SERVER2@", &backends[1].to_string())
        .replace("@SERVER3@", &backends[2].to_string());
    assert!(!config.contains('@'), "a placeholder is left: {config}");
    let dir = common::temp_dir(&format!("twemproxy-{port}"));
    let conf = dir.join("nutcracker.yml");
    std::fs::write(&conf, config).unwrap();
    let binary = if std::path::Path::new("/usr/sbin/nutcracker").exists() {
        "/usr/sbin/nutcracker".to_string()
    } else {
        "nutcracker".to_string()
    };
    let stats = free_port().to_string();
    let child = Command::new(&binary)
        .args([
            "-c",
            conf.to_str().unwrap(),
            "-s",
            &stats,
            "-a",
            "127.0.0.1",
        ])
        .args(["-o", dir.join("nutcracker.log").to_str().unwrap()])
        .args(["-p", dir.join("nutcracker.pid").to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}; apt-get install nutcracker"));
    let mut proxy = Nutcracker {
        child,
        addr,
        _dir: dir.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = proxy.child.try_wait().unwrap() {
            panic!(
                "nutcracker exited: {status}; log:\n{}",
                std::fs::read_to_string(dir.join("nutcracker.log")).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(addr).is_ok() {
            return proxy;
        }
        assert!(Instant::now() < deadline, "nutcracker never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check_through_proxy(backends: &[SocketAddr]) {
    for b in backends {
        assert_eq!(RespConn::connect(*b).call_str(&["FLUSHALL"]), b"+OK\r\n");
    }
    let proxy = start_nutcracker(backends);
    let port = proxy.addr.port().to_string();

    // redis-cli through the proxy.
    let cli = |args: &[&str]| -> String {
        let mut all = vec!["-h", "127.0.0.1", "-p", &port];
        all.extend_from_slice(args);
        let out = Command::new("redis-cli")
            .args(&all)
            .output()
            .expect("run redis-cli (apt-get install redis-tools)");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cli(&["SET", "tw:cli", "v"]), "OK\n");
    assert_eq!(cli(&["--no-raw", "GET", "tw:cli"]), "\"v\"\n");
    assert_eq!(cli(&["--no-raw", "GET", "tw:none"]), "(nil)\n");

    // Keys written through the proxy, one at a time and with MSET (which twemproxy splits).
    let mut conn = RespConn::connect(proxy.addr);
    let keys: Vec<String> = (0..300).map(|i| format!("tw:key:{i}")).collect();
    for key in &keys[..150] {
        assert_eq!(conn.call_str(&["SET", key, key]), b"+OK\r\n");
    }
    for chunk in keys[150..].chunks(10) {
        let mut args = vec!["MSET"];
        for key in chunk {
            args.push(key);
            args.push(key);
        }
        assert_eq!(conn.call_str(&args), b"+OK\r\n");
    }
    for key in &keys {
        let want = format!("${}\r\n{key}\r\n", key.len());
        assert_eq!(conn.call_str(&["GET", key]), want.as_bytes(), "GET {key}");
    }

    // redis-benchmark through the proxy (multibulk only), with no error.
    for pipeline in ["1", "8"] {
        let out = Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port, "-t", "set,get,mset"])
            .args([
                "-n", "10000", "-c", "10", "-P", pipeline, "-q", "-r", "1000",
            ])
            .output()
            .expect("run redis-benchmark (apt-get install redis-tools)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let all = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "redis-benchmark: {all}");
        // Its start-up CONFIG GET is refused by twemproxy (a WARNING); errors are not allowed.
        assert!(
            !all.contains("rror") && !all.contains("ERR"),
            "redis-benchmark through twemproxy:\n{all}"
        );
        for test in ["SET", "GET", "MSET (10 keys)"] {
            assert!(
                stdout
                    .split(['\n', '\r'])
                    .any(|l| l.starts_with(&format!("{test}: "))
                        && l.contains("requests per second")),
                "no finished line for {test}:\n{all}"
            );
        }
    }

    // Every key lives on exactly one backend, and the ring uses all three.
    let mut direct: Vec<RespConn> = backends.iter().map(|b| RespConn::connect(*b)).collect();
    let mut per_backend = [0usize; 3];
    for key in keys.iter().map(String::as_str).chain(["tw:cli"]) {
        let holders: Vec<usize> = (0..3)
            .filter(|&i| direct[i].call_str(&["EXISTS", key]) == b":1\r\n")
            .collect();
        assert_eq!(holders.len(), 1, "{key} is on backends {holders:?}");
        per_backend[holders[0]] += 1;
    }
    assert!(
        per_backend.iter().all(|&n| n > 0),
        "keys per backend {per_backend:?}: the ring should use every backend"
    );
}

#[test]
fn twemproxy_three_shardkv() {
    let servers: Vec<Target> = (0..3)
        .map(|_| Target::Shardkv(common::Server::start(&[])))
        .collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(Target::addr).collect();
    check_through_proxy(&addrs);
}

#[test]
fn twemproxy_three_redis_reference() {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    check_through_proxy(&addrs);
}
