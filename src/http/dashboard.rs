//! `/dashboard` (JSON status) and `/metrics` (Prometheus text).
//!
//! `/dashboard` keeps the original tool's fields (`numShards`, `numReplicas`,
//! `shards: [{"numKeys": n}]`) so existing consumers keep working, and adds ours beside them.
//! Key counts come from the maps' own counters, so a key stops counting when the expiry wheel
//! removes it (within the wheel's lag, which is reported).
//!
//! Must never: walk the key space to answer (both answers are O(shards)).

use std::fmt::Write;

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;

use super::reply::{json, with_type, Reply};
use super::stats::OpKind;
use super::AppState;
use crate::persistence::LogHealth;
use crate::replication::CopyReport;
use crate::store::Shard;
use crate::sync::Ordering;

/// A per-copy gauge: metric name, help text, and how to read it from a report.
type CopyGauge = (&'static str, &'static str, fn(&CopyReport) -> f64);

static PROMETHEUS: HeaderValue = HeaderValue::from_static("text/plain; version=0.0.4");

/// The process's resident set size in bytes, from `/proc/self/statm` (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// `GET /dashboard`.
pub fn dashboard<S: Shard>(state: &AppState<S>) -> Reply {
    let store = &state.store;
    let lens = store.shard_lens();
    let shards: Vec<_> = lens
        .iter()
        .enumerate()
        .map(|(id, n)| {
            let failed = store.failed_copies(id);
            serde_json::json!({
                "id": id,
                "db": store.db_of(id),
                "numKeys": n,
                "primary": store.primary_of(id),
                "failed": failed != 0,
                "failedCopies": (0..64).filter(|c| failed & (1 << c) != 0).collect::<Vec<_>>(),
                "seq": store.shard_seq(id),
            })
        })
        .collect();
    let replicas: Vec<_> = if store.replicas() == 0 {
        Vec::new()
    } else {
        state
            .replicas
            .copy_reports()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "state": r.health.name(),
                    "primaryFor": r.primary_for,
                    "appliedSeq": r.applied_seq,
                    "lagOps": r.lag_ops,
                    "lagMs": r.lag_ms,
                    "queueDepth": r.queue_depth,
                })
            })
            .collect()
    };
    let stats = &state.stats;
    let expiry = &state.expiry;
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "store": store.kind(),
        // Per database, as --shards says; "shards" lists every database's, with its "db".
        "numShards": store.config().shards,
        "databases": store.databases(),
        "numReplicas": store.replicas(),
        "keys": lens.iter().sum::<usize>(),
        "keysWithTtl": store.keys_with_ttl(),
        "uptimeSeconds": state.started.elapsed().as_secs_f64(),
        "memory": {
            "rssBytes": rss_bytes(),
            "dataBytesEstimate": store.memory_used(),
            "maxMemory": store.max_memory(),
            "maxmemoryPolicy": store.eviction_policy().name(),
            "maxmemorySamples": store.eviction_samples(),
            "evictedKeys": store.stats().evicted_keys.get(),
        },
        "shards": shards,
        "protocols": state.other_protocols.iter().map(|source| {
            let t = source.snapshot();
            serde_json::json!({
                "protocol": source.protocol(),
                "requests": t.requests,
                "errors": t.errors,
                "connectionsOpen": t.connections_open,
                "connectionsTotal": t.connections_total,
            })
        }).collect::<Vec<_>>(),
        "ops": {
            "get": stats.ops(OpKind::GetHit) + stats.ops(OpKind::GetMiss),
            "getHit": stats.ops(OpKind::GetHit),
            "getMiss": stats.ops(OpKind::GetMiss),
            "set": stats.ops(OpKind::Set),
            "delete": stats.ops(OpKind::Delete),
            "mget": stats.ops(OpKind::Mget),
            "mset": stats.ops(OpKind::Mset),
            "rejected": stats.rejected.get(),
        },
        "expiry": {
            "pendingTimers": expiry.pending_timers.load(Ordering::Relaxed)
                + store.pending_timer_requests() as u64,
            "expiredByWheel": store.stats().expired_by_wheel.get(),
            "expiredOnRead": store.stats().expired_on_read.get(),
            "expiredByEviction": store.stats().expired_by_eviction.get(),
            "wheelLagMs": expiry.wheel_lag_ticks.load(Ordering::Relaxed),
            "sweeps": expiry.sweeps.load(Ordering::Relaxed),
            "timerQueueOverflows": store.stats().timer_queue_overflows.get(),
        },
        "connections": {
            "open": stats.connections_open.load(Ordering::Relaxed),
            "total": stats.connections_total.get(),
        },
        "replicas": replicas,
        "persistence": state.log.as_ref().map(|log| serde_json::json!({
            "fsync": format!("{:?}", log.fsync),
            "generation": log.generation.load(Ordering::Relaxed),
            "queueDepth": log.queue_depth(),
            "snapshots": log.snapshots.load(Ordering::Relaxed),
            "overflows": log.overflows.load(Ordering::Relaxed),
            "health": log_health_name(&log.health()),
            "failureReason": match log.health() {
                LogHealth::Failed { reason } => Some(reason),
                _ => None,
            },
            "failures": log.failures.load(Ordering::Relaxed),
            "versionLease": log.lease_limit(),
        })),
        "replicaOverflows": state.replicas.stats().overflows.get(),
        "replicaResyncs": state.replicas.stats().resyncs.get(),
    });
    json(StatusCode::OK, &body)
}

/// The log's state as the dashboard names it.
fn log_health_name(health: &LogHealth) -> &'static str {
    match health {
        LogHealth::Ok => "ok",
        LogHealth::Failed { .. } => "failed",
        LogHealth::ShuttingDown => "shutting down",
    }
}

/// `GET /metrics`.
pub fn metrics<S: Shard>(state: &AppState<S>) -> Reply {
    let store = &state.store;
    let mut out = String::with_capacity(4096);
    state.stats.render_prometheus(&mut out);
    let _ = writeln!(out, "# HELP shardkv_keys Entries stored, by shard.");
    let _ = writeln!(out, "# TYPE shardkv_keys gauge");
    for (id, n) in store.shard_lens().iter().enumerate() {
        let _ = writeln!(out, "shardkv_keys{{shard=\"{id}\"}} {n}");
    }
    let _ = writeln!(out, "# TYPE shardkv_keys_with_ttl gauge");
    let _ = writeln!(out, "shardkv_keys_with_ttl {}", store.keys_with_ttl());
    let _ = writeln!(
        out,
        "# HELP shardkv_expired_total Keys expired, by where it was noticed."
    );
    let _ = writeln!(out, "# TYPE shardkv_expired_total counter");
    let _ = writeln!(
        out,
        "shardkv_expired_total{{by=\"wheel\"}} {}",
        store.stats().expired_by_wheel.get()
    );
    let _ = writeln!(
        out,
        "shardkv_expired_total{{by=\"read\"}} {}",
        store.stats().expired_on_read.get()
    );
    let _ = writeln!(
        out,
        "shardkv_expired_total{{by=\"eviction\"}} {}",
        store.stats().expired_by_eviction.get()
    );
    let _ = writeln!(
        out,
        "# HELP shardkv_evicted_keys_total Live keys evicted to make room under --max-memory."
    );
    let _ = writeln!(out, "# TYPE shardkv_evicted_keys_total counter");
    let _ = writeln!(
        out,
        "shardkv_evicted_keys_total {}",
        store.stats().evicted_keys.get()
    );
    let _ = writeln!(
        out,
        "# HELP shardkv_maxmemory_policy The eviction policy in force (1 for its name)."
    );
    let _ = writeln!(out, "# TYPE shardkv_maxmemory_policy gauge");
    let _ = writeln!(
        out,
        "shardkv_maxmemory_policy{{policy=\"{}\"}} 1",
        store.eviction_policy().name()
    );
    let _ = writeln!(out, "# TYPE shardkv_expiry_pending_timers gauge");
    let _ = writeln!(
        out,
        "shardkv_expiry_pending_timers {}",
        state.expiry.pending_timers.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE shardkv_expiry_wheel_lag_seconds gauge");
    let _ = writeln!(
        out,
        "shardkv_expiry_wheel_lag_seconds {}",
        state.expiry.wheel_lag_ticks.load(Ordering::Relaxed) as f64 / 1e3
    );
    if store.replicas() > 0 {
        let reports = state.replicas.copy_reports();
        let per_copy: [CopyGauge; 3] = [
            ("shardkv_replica_lag_ops", "Writes not yet applied.", |r| {
                r.lag_ops as f64
            }),
            (
                "shardkv_replica_lag_seconds",
                "Age of the oldest unapplied write.",
                |r| r.lag_ms as f64 / 1e3,
            ),
            ("shardkv_replica_queue_depth", "Records queued.", |r| {
                r.queue_depth as f64
            }),
        ];
        for (name, help, value) in per_copy {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            for r in &reports {
                let _ = writeln!(out, "{name}{{copy=\"{}\"}} {}", r.id, value(r));
            }
        }
        let counters = [
            (
                "shardkv_replica_overflows_total",
                "Writes a replica's full queue could not take (it went stale).",
                state.replicas.stats().overflows.get(),
            ),
            (
                "shardkv_replica_resyncs_total",
                "Re-syncs of a stale replica that completed (it went live again).",
                state.replicas.stats().resyncs.get(),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        }
    }
    if let Some(log) = &state.log {
        let _ = writeln!(
            out,
            "# HELP shardkv_log_healthy 1 while the append-only log takes writes, 0 while writes are refused (failed or shutting down)."
        );
        let _ = writeln!(out, "# TYPE shardkv_log_healthy gauge");
        let healthy = u8::from(log.health() == LogHealth::Ok);
        let _ = writeln!(out, "shardkv_log_healthy {healthy}");
        let _ = writeln!(
            out,
            "# HELP shardkv_log_failures_total Failed log writes, syncs, log creations, lease renewals and snapshots."
        );
        let _ = writeln!(out, "# TYPE shardkv_log_failures_total counter");
        let _ = writeln!(
            out,
            "shardkv_log_failures_total {}",
            log.failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE shardkv_log_generation gauge");
        let _ = writeln!(
            out,
            "shardkv_log_generation {}",
            log.generation.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE shardkv_snapshots_total counter");
        let _ = writeln!(
            out,
            "shardkv_snapshots_total {}",
            log.snapshots.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP shardkv_protocol_requests_total Commands handled by the other front-ends, by protocol (HTTP's are in shardkv_ops_total)."
    );
    let _ = writeln!(out, "# TYPE shardkv_protocol_requests_total counter");
    for source in &state.other_protocols {
        let t = source.snapshot();
        let p = source.protocol();
        let _ = writeln!(
            out,
            "shardkv_protocol_requests_total{{protocol=\"{p}\"}} {}",
            t.requests
        );
        let _ = writeln!(
            out,
            "shardkv_protocol_errors_total{{protocol=\"{p}\"}} {}",
            t.errors
        );
        let _ = writeln!(
            out,
            "shardkv_protocol_connections_open{{protocol=\"{p}\"}} {}",
            t.connections_open
        );
        let _ = writeln!(
            out,
            "shardkv_protocol_connections_total{{protocol=\"{p}\"}} {}",
            t.connections_total
        );
    }
    let _ = writeln!(out, "# TYPE shardkv_resident_memory_bytes gauge");
    let _ = writeln!(out, "shardkv_resident_memory_bytes {}", rss_bytes());
    with_type(StatusCode::OK, &PROMETHEUS, Bytes::from(out))
}
