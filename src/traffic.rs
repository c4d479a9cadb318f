//! What each front-end reports about its traffic, so `/metrics` and `/dashboard` show every
//! protocol's requests beside HTTP's, labelled by protocol.
//!
//! HTTP renders the reports; the Redis front-end implements [`TrafficSource`]. Neither imports
//! the other: both import this.
//!
//! Must never: cost the request path anything (a source reads counters it keeps anyway).

/// One front-end's counters at a moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficSnapshot {
    /// Commands or requests handled.
    pub requests: u64,
    /// Of those, how many were answered with an error.
    pub errors: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
}

/// A front-end whose traffic `/metrics` reports.
pub trait TrafficSource: Send + Sync {
    /// The protocol label (`redis`).
    fn protocol(&self) -> &'static str;
    /// Its counters now.
    fn snapshot(&self) -> TrafficSnapshot;
}
