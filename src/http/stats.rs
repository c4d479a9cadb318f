//! Request counters and the latency histogram behind `/dashboard` and `/metrics`.
//!
//! All counters are striped (`counter::StripedCounter`) so the request path never bounces a
//! shared cache line. Latency is measured with the TSC through `quanta` (no syscall) into
//! fixed buckets.
//!
//! Must never: record a key or a value.

use crate::counter::StripedCounter;
use crate::sync::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf).
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000,
];

/// The kinds of operation counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A read of one key that found it.
    GetHit,
    /// A read of one key that did not (absent or expired).
    GetMiss,
    /// A write of one key.
    Set,
    /// A delete of one key.
    Delete,
    /// A batch read.
    Mget,
    /// A batch write.
    Mset,
    /// Anything else (dashboard, metrics, health, page).
    Other,
}

impl OpKind {
    const ALL: [OpKind; 7] = [
        OpKind::GetHit,
        OpKind::GetMiss,
        OpKind::Set,
        OpKind::Delete,
        OpKind::Mget,
        OpKind::Mset,
        OpKind::Other,
    ];

    fn name(self) -> &'static str {
        match self {
            OpKind::GetHit => "get_hit",
            OpKind::GetMiss => "get_miss",
            OpKind::Set => "set",
            OpKind::Delete => "delete",
            OpKind::Mget => "mget",
            OpKind::Mset => "mset",
            OpKind::Other => "other",
        }
    }
}

/// Counters of the HTTP service.
pub struct HttpStats {
    ops: [StripedCounter; 7],
    /// Requests refused with a 4xx.
    pub rejected: StripedCounter,
    latency: [StripedCounter; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_ns: StripedCounter,
    /// Connections accepted since start.
    pub connections_total: StripedCounter,
    /// Connections open now.
    pub connections_open: AtomicU64,
    clock: quanta::Clock,
}

impl Default for HttpStats {
    fn default() -> Self {
        HttpStats {
            ops: Default::default(),
            rejected: StripedCounter::default(),
            latency: Default::default(),
            latency_sum_ns: StripedCounter::default(),
            connections_total: StripedCounter::default(),
            connections_open: AtomicU64::new(0),
            clock: quanta::Clock::new(),
        }
    }
}

impl HttpStats {
    /// A raw timestamp to pass to [`HttpStats::record`].
    #[inline]
    pub fn start(&self) -> u64 {
        self.clock.raw()
    }

    /// Counts one request of `kind` that started at `start`.
    #[inline]
    pub fn record(&self, kind: OpKind, start: u64, rejected: bool) {
        let nanos = self.clock.delta_as_nanos(start, self.clock.raw());
        self.ops[kind as usize].incr();
        if rejected {
            self.rejected.incr();
        }
        let us = nanos / 1_000;
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency[bucket].incr();
        self.latency_sum_ns.add(nanos);
    }

    /// Operations of `kind` so far.
    pub fn ops(&self, kind: OpKind) -> u64 {
        self.ops[kind as usize].get()
    }

    /// The counters in Prometheus text format (appended to `out`).
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP shardkv_ops_total Requests handled, by operation."
        );
        let _ = writeln!(out, "# TYPE shardkv_ops_total counter");
        for kind in OpKind::ALL {
            let _ = writeln!(
                out,
                "shardkv_ops_total{{op=\"{}\"}} {}",
                kind.name(),
                self.ops(kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP shardkv_rejected_total Requests refused with a 4xx."
        );
        let _ = writeln!(out, "# TYPE shardkv_rejected_total counter");
        let _ = writeln!(out, "shardkv_rejected_total {}", self.rejected.get());
        let _ = writeln!(
            out,
            "# HELP shardkv_request_duration_seconds Time from routing to response."
        );
        let _ = writeln!(out, "# TYPE shardkv_request_duration_seconds histogram");
        let mut cumulative = 0;
        for (i, bucket) in self.latency.iter().enumerate() {
            cumulative += bucket.get();
            let le = LATENCY_BUCKETS_US
                .get(i)
                .map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(
                out,
                "shardkv_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "shardkv_request_duration_seconds_sum {}",
            self.latency_sum_ns.get() as f64 / 1e9
        );
        let _ = writeln!(out, "shardkv_request_duration_seconds_count {cumulative}");
        let _ = writeln!(out, "# TYPE shardkv_connections_total counter");
        let _ = writeln!(
            out,
            "shardkv_connections_total {}",
            self.connections_total.get()
        );
        let _ = writeln!(out, "# TYPE shardkv_connections_open gauge");
        let _ = writeln!(
            out,
            "shardkv_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
    }
}
