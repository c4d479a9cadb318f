//! The writers' side of the log: the queue to the log thread, the durability progress it
//! publishes, and the checks a write passes inside its writer section (the log is healthy, the
//! server is not shutting down, the version is inside the lease).
//!
//! Must never: let a writer wait for the disk (a record that does not fit is dropped and
//! recorded, and a snapshot covers it), or admit a write while the log is known to be failed.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::progress::SharedProgress;
use super::FsyncMode;
use crate::store::{
    AckPolicy, AckWait, Admission, Change, ChangeSink, Published, Roles, StoreError,
};
use crate::sync::{
    lock, AtomicBool, AtomicU64, AtomicU8, BoundedQueue, Mutex, Ordering, ParkedConsumer, WakerList,
};

const HEALTHY: u8 = 0;
const FAILED: u8 = 1;
const SHUTTING_DOWN: u8 = 2;

/// The log's state as `/dashboard` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogHealth {
    /// Writes are logged.
    Ok,
    /// The log cannot be written; writes are refused until it recovers.
    Failed {
        /// The I/O error, with the file.
        reason: String,
    },
    /// The server is stopping; writes are refused.
    ShuttingDown,
}

/// What a writer hands the log thread: one change, or the changes of an atomic group, which the
/// log writes together behind a group start.
#[derive(Debug)]
pub(super) enum Logged {
    One(Change),
    Group(Box<[Change]>),
}

/// The queue between writers and the log thread, and the durability progress it publishes.
pub struct LogSink {
    pub(super) queue: BoundedQueue<Logged>,
    /// Set by a writer whose record did not fit (a hint: the log thread checks the drops).
    pub(super) overflowed: AtomicBool,
    /// Per shard: dropped records and durable progress.
    pub(super) progress: SharedProgress,
    waiters: WakerList,
    /// Callers of `POST /admin/snapshot` waiting for the next snapshot's path.
    pub(super) snapshot_requests: Mutex<Vec<std::sync::mpsc::Sender<Result<PathBuf, String>>>>,
    /// The log thread, parked while its queue is empty.
    pub(crate) consumer: ParkedConsumer,
    /// The fsync mode in force.
    pub fsync: FsyncMode,
    /// Records dropped because the queue was full (each covered by a later snapshot).
    pub overflows: AtomicU64,
    /// The current generation.
    pub generation: AtomicU64,
    /// Snapshots completed since start.
    pub snapshots: AtomicU64,
    /// Failed log writes, syncs, log creations, lease renewals and snapshots since start.
    pub failures: AtomicU64,
    /// `HEALTHY`, `FAILED` or `SHUTTING_DOWN`.
    state: AtomicU8,
    /// Why the log failed (when `state` is `FAILED`).
    reason: Mutex<String>,
    /// No version above this may be handed out (see `lease`).
    lease_limit: AtomicU64,
    /// The size of one lease renewal.
    pub(super) lease_size: u64,
    /// Set by a writer past half the lease: the log thread renews it.
    pub(super) lease_wanted: AtomicBool,
    /// Why the last lease renewal failed, if it did.
    pub(super) lease_error: Mutex<Option<String>>,
}

impl LogSink {
    pub(crate) fn new(shards: usize, capacity: usize, fsync: FsyncMode, lease_size: u64) -> Self {
        LogSink {
            queue: BoundedQueue::new(capacity),
            overflowed: AtomicBool::new(false),
            progress: SharedProgress::new(shards),
            waiters: WakerList::default(),
            snapshot_requests: Mutex::new(Vec::new()),
            consumer: ParkedConsumer::new(capacity),
            fsync,
            overflows: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            state: AtomicU8::new(HEALTHY),
            reason: Mutex::new(String::new()),
            lease_limit: AtomicU64::new(0),
            lease_size: lease_size.max(2),
            lease_wanted: AtomicBool::new(false),
            lease_error: Mutex::new(None),
        }
    }

    /// Inside the writer section, before a write takes `version`: refuses it while the log is
    /// failed, while the server shuts down, or when `version` is past the lease on disk.
    fn admit_version(&self, version: u64) -> Result<(), StoreError> {
        self.check_writable()?;
        let limit = self.lease_limit.load(Ordering::Relaxed);
        if version > limit.saturating_sub(self.lease_size / 2)
            && !self.lease_wanted.load(Ordering::Relaxed)
        {
            self.lease_wanted.store(true, Ordering::Release);
            self.consumer.wake();
        }
        if version > limit {
            let why = lock(&self.lease_error).clone().unwrap_or_else(|| {
                "the version lease is being renewed; retry in a moment".to_string()
            });
            return Err(StoreError::LogUnavailable {
                reason: format!("no version lease on disk covers version {version}: {why}"),
            });
        }
        Ok(())
    }

    /// Inside the writer section of a write that hands out no version (a delete): refuses it
    /// while the log is failed or the server shuts down.
    fn check_writable(&self) -> Result<(), StoreError> {
        match self.state.load(Ordering::Acquire) {
            HEALTHY => Ok(()),
            SHUTTING_DOWN => Err(StoreError::ShuttingDown),
            _ => Err(StoreError::LogUnavailable {
                reason: lock(&self.reason).clone(),
            }),
        }
    }

    /// Queues one change or group (inside the writer sections). Never waits.
    fn append(&self, logged: Logged) {
        if let Err(logged) = self.queue.push(logged) {
            // Inside the writer sections: recorded before any later record of these shards is
            // queued, so the log thread sees it before it could publish past it.
            let dropped = match &logged {
                Logged::One(change) => std::slice::from_ref(change),
                Logged::Group(changes) => changes,
            };
            for change in dropped {
                self.progress
                    .record_dropped(change.shard as usize, change.seq);
            }
            self.overflowed.store(true, Ordering::Release);
            self.overflows.fetch_add(1, Ordering::Relaxed);
            self.consumer.wake_if_parked();
            return;
        }
        // With `--fsync always` a client waits for this record, so the log thread is woken at
        // once. Otherwise it wakes by itself every few milliseconds and takes what has queued:
        // one wake-up per batch instead of one per write, unless the queue is filling up.
        self.consumer
            .wake_after_push(self.fsync == FsyncMode::Always, || self.queue.len());
    }

    /// Records waiting for the log thread.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Whether every write of `shard` up to `seq` is on disk.
    pub fn is_durable(&self, shard: usize, seq: u64) -> bool {
        self.progress.durable(shard) >= seq
    }

    /// A future that completes once write `seq` of `shard` is on disk, or fails once its
    /// record is known lost to a failed log file (the write is in memory, and a snapshot will
    /// cover it, but it was not on disk when the disk failed: it is not acknowledged).
    pub fn durable(&self, shard: usize, seq: u64) -> Durable<'_> {
        Durable {
            sink: self,
            shard,
            seq,
        }
    }

    /// Asks for a snapshot; the receiver gets its path once it is on disk.
    pub fn request_snapshot(&self) -> std::sync::mpsc::Receiver<Result<PathBuf, String>> {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.snapshot_requests).push(tx);
        self.consumer.wake();
        rx
    }

    /// The log's state.
    pub fn health(&self) -> LogHealth {
        match self.state.load(Ordering::Acquire) {
            HEALTHY => LogHealth::Ok,
            SHUTTING_DOWN => LogHealth::ShuttingDown,
            _ => LogHealth::Failed {
                reason: lock(&self.reason).clone(),
            },
        }
    }

    /// The version lease in force: no version above it is handed out.
    pub fn lease_limit(&self) -> u64 {
        self.lease_limit.load(Ordering::Relaxed)
    }

    /// Refuses every later write with "shutting down" (the caller then takes each shard's
    /// writer section once, so no write admitted before this call is still being queued).
    fn refuse_writes_for_shutdown(&self) {
        self.state.store(SHUTTING_DOWN, Ordering::SeqCst);
    }

    /// The log thread: the log cannot be written, for `reason`.
    pub(super) fn set_failed(&self, reason: String) {
        *lock(&self.reason) = reason;
        let _ = self
            .state
            .compare_exchange(HEALTHY, FAILED, Ordering::AcqRel, Ordering::Acquire);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The log thread: a new log and a snapshot after it are on disk; writes resume.
    pub(super) fn set_healthy(&self) {
        let _ = self
            .state
            .compare_exchange(FAILED, HEALTHY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The log thread: a new lease limit is on disk.
    pub(super) fn publish_lease(&self, limit: u64) {
        self.lease_limit.fetch_max(limit, Ordering::Release);
    }

    pub(crate) fn wake_waiters(&self) {
        self.waiters.wake_all();
    }
}

/// Completes once a write is on disk (`--fsync always`).
pub struct Durable<'a> {
    sink: &'a LogSink,
    shard: usize,
    seq: u64,
}

impl Future for Durable<'_> {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let progress = &self.sink.progress;
        let settled =
            || progress.durable(self.shard) >= self.seq || progress.lost(self.shard) >= self.seq;
        match self.sink.waiters.poll_until(cx, settled) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) if progress.durable(self.shard) >= self.seq => Poll::Ready(Ok(())),
            Poll::Ready(()) => Poll::Ready(Err(StoreError::LogUnavailable {
                reason: format!(
                    "this write is applied in memory, but the log failed before it reached the disk: {}",
                    match self.sink.health() {
                        LogHealth::Failed { reason } => reason,
                        _ => "the log file failed".to_string(),
                    }
                ),
            })),
        }
    }
}

/// The log is a sink of the store's change stream: it admits writes (refusing them while it
/// cannot record them), queues every change, and acknowledges a write once it is on disk when
/// the fsync mode is `always`.
impl ChangeSink for LogSink {
    fn waits_for(&self) -> AckWait {
        AckWait::Durable
    }

    fn admit(&self, _shard: usize, admission: Admission) -> Result<(), StoreError> {
        match admission {
            Admission::Versions(last) => self.admit_version(last),
            // A delete hands out no version (no ETag), so the version lease does not apply.
            Admission::Removal => self.check_writable(),
        }
    }

    fn publish(&self, published: Published<'_>) {
        let changes = published.changes();
        if published.is_group() && changes.len() > 1 {
            self.append(Logged::Group(changes.into()));
        } else {
            for change in changes {
                self.append(Logged::One(change.clone()));
            }
        }
    }

    fn poll_acknowledged(
        &self,
        cx: &mut Context<'_>,
        shard: usize,
        seq: u64,
        _roles: &dyn Fn() -> Roles,
        _policy: AckPolicy,
    ) -> Poll<Result<(), StoreError>> {
        if self.fsync != FsyncMode::Always {
            return Poll::Ready(Ok(()));
        }
        std::pin::pin!(self.durable(shard, seq)).poll(cx)
    }

    fn close(&self) {
        self.refuse_writes_for_shutdown();
    }
}
