//! Receipts: what a write returns, and the one way to wait until it is acknowledged.
//!
//! A write is applied to the primary when the store call returns. Whether it is also on disk
//! or applied by every replica is each sink's to say: [`Receipt::acknowledged`] asks them all,
//! in a fixed order (the disk first, then the replicas), and completes when every one agrees,
//! or fails when one says it never will (the log lost the record). A protocol wraps the wait in
//! its own time-out and asks [`Acknowledgement::waiting_for`] what was still missing.
//!
//! Must never: complete before every sink acknowledged the write, or miss a wake-up (each sink
//! registers the waker and re-checks under one lock).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::change::{AckPolicy, AckWait};
use super::{Shard, ShardedStore, StoreError};

/// The receipt of one accepted write.
pub struct Receipt<'a, S: Shard> {
    store: &'a ShardedStore<S>,
    /// The shard the key lives in.
    pub shard: usize,
    /// The shard's sequence number the write took; for a set, the key's new version.
    pub version: u64,
}

impl<'a, S: Shard> Receipt<'a, S> {
    pub(crate) fn new(store: &'a ShardedStore<S>, shard: usize, version: u64) -> Self {
        Receipt {
            store,
            shard,
            version,
        }
    }

    /// Completes once the write is acknowledged under `policy` (see the module doc).
    pub fn acknowledged(&self, policy: AckPolicy) -> Acknowledgement<'a, S> {
        Acknowledgement::new(
            self.store,
            Points::One([(self.shard, self.version)]),
            policy,
        )
    }
}

impl<S: Shard> std::fmt::Debug for Receipt<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("shard", &self.shard)
            .field("version", &self.version)
            .finish()
    }
}

/// The receipt of a multi-key write.
pub struct BatchReceipt<'a, S: Shard> {
    store: &'a ShardedStore<S>,
    /// Each item's new version, in the order given.
    pub versions: Vec<u64>,
    /// The last sequence number taken in each shard written (acknowledging it covers the
    /// shard's earlier ones).
    last: Vec<(usize, u64)>,
}

impl<'a, S: Shard> BatchReceipt<'a, S> {
    pub(crate) fn new(
        store: &'a ShardedStore<S>,
        versions: Vec<u64>,
        last: Vec<(usize, u64)>,
    ) -> Self {
        BatchReceipt {
            store,
            versions,
            last,
        }
    }

    /// Completes once every write of the batch is acknowledged under `policy`.
    pub fn acknowledged(&self, policy: AckPolicy) -> Acknowledgement<'a, S> {
        Acknowledgement::new(self.store, Points::Many(self.last.clone()), policy)
    }
}

/// `(shard, sequence number)` points to be acknowledged: one write needs no allocation.
enum Points {
    One([(usize, u64); 1]),
    Many(Vec<(usize, u64)>),
}

impl Points {
    fn as_slice(&self) -> &[(usize, u64)] {
        match self {
            Points::One(point) => point,
            Points::Many(points) => points,
        }
    }
}

/// Completes once writes are acknowledged by every sink; see [`Receipt::acknowledged`].
pub struct Acknowledgement<'a, S: Shard> {
    store: &'a ShardedStore<S>,
    points: Points,
    policy: AckPolicy,
    waiting: Option<AckWait>,
}

impl<'a, S: Shard> Acknowledgement<'a, S> {
    fn new(store: &'a ShardedStore<S>, points: Points, policy: AckPolicy) -> Self {
        Acknowledgement {
            store,
            points,
            policy,
            waiting: None,
        }
    }

    /// What the last poll found still missing (`None` before the first poll and once done).
    pub fn waiting_for(&self) -> Option<AckWait> {
        self.waiting
    }
}

impl<S: Shard> Future for Acknowledgement<'_, S> {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let store = self.store;
        // The disk first, then the replicas: a time-out names the first thing missing.
        for wait in [AckWait::Durable, AckWait::Replicated] {
            for sink in store.sinks.iter().filter(|s| s.waits_for() == wait) {
                for &(shard, seq) in self.points.as_slice() {
                    let roles = || store.roles(shard);
                    match sink.poll_acknowledged(cx, shard, seq, &roles, self.policy) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => {
                            self.waiting = None;
                            return Poll::Ready(Err(e));
                        }
                        Poll::Pending => {
                            self.waiting = Some(wait);
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
        self.waiting = None;
        Poll::Ready(Ok(()))
    }
}
