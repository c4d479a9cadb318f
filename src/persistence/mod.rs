//! Durability (opt-in with `--data-dir`): an append-only log of every write plus snapshots, so
//! a restart loses nothing that was acknowledged.
//!
//! ## Path of a write
//! Inside the shard's writer section the store hands each write (set, delete, expiry) to the
//! [`LogSink`]: a bounded lock-free queue, like a replica's. One log thread drains it in order,
//! appends the records to the current log file and, per `--fsync`, calls `fdatasync`:
//! - `always`: after every batch, before the batch's writes are acknowledged. Concurrent writers
//!   share one sync (group commit); a request waits on [`Durable`] without blocking a worker.
//! - `everysec`: at most once a second (a power loss loses about the last second).
//! - `no`: never; the OS writes back when it likes.
//!
//! ## Snapshots and rotation
//! A snapshot starts a new generation: the log thread switches to `log-<g+1>`, then a snapshot
//! thread copies each shard inside its writer section and writes `snapshot-<g+1>` (to a temporary
//! name, synced, then renamed), after which files of older generations are deleted. Every record
//! of `log-<g>` happened before the switch and so is inside the snapshot. Snapshots run at
//! start-up (after loading), on `POST /admin/snapshot`, when the log has grown past 64 MiB and
//! past the last snapshot's size, and when the queue overflowed: a writer
//! never waits for the disk; a record that does not fit is dropped and the snapshot that follows
//! covers it (acknowledgements under `always` wait for that snapshot).
//!
//! ## Start-up
//! [`recovery::recover`] loads the newest snapshot and replays the logs after it, skipping keys
//! whose TTL passed while the server was down, before the server listens. A damaged record that
//! runs to the end of its file is a torn write and is dropped with a warning; one followed by a
//! valid record is corruption and stops start-up with the file and offset.
//!
//! Must never: acknowledge an `always` write before it is on disk, lose a record silently, or
//! load a partial state without saying so.

pub mod format;
pub mod recovery;
mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::replication::{Op, QueuedWrite};
use crate::sync::{
    lock, AtomicBool, AtomicU64, BoundedQueue, Mutex, Ordering, ParkedConsumer, WakerList,
};

pub use writer::LogThread;

/// When the log is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncMode {
    /// After every batch, before acknowledging it.
    Always,
    /// About once a second.
    EverySec,
    /// Never (the OS decides).
    No,
}

/// How long the log thread sleeps when its queue is empty, unless a writer wakes it. Bounds how
/// long a write waits in memory before it reaches the OS when the fsync mode is not `always`.
pub(crate) const IDLE_WAKE: std::time::Duration = std::time::Duration::from_millis(5);

/// Why persistence could not start or load.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A record in the middle of a file is damaged (a valid record follows it).
    #[error("{path}: corrupt record at byte offset {offset} (a valid record follows it, so this is not a torn write); refusing to start with a partial state: restore the file from a backup or move it away")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
    },
    /// A file's header is damaged or of an unknown format.
    #[error(
        "{path}: not a shardkv {kind} file of format version {version} (bad or damaged header)"
    )]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// "log" or "snapshot".
        kind: &'static str,
        /// The version this build reads.
        version: u32,
    },
}

/// The queue between writers and the log thread, and the durability progress it publishes.
pub struct LogSink {
    queue: BoundedQueue<QueuedWrite>,
    /// Set by a writer whose record did not fit; the log thread answers with a snapshot.
    overflowed: AtomicBool,
    /// Per shard: every write up to this sequence number is on disk.
    durable: Box<[AtomicU64]>,
    waiters: WakerList,
    /// Callers of `POST /admin/snapshot` waiting for the next snapshot's path.
    snapshot_requests: Mutex<Vec<std::sync::mpsc::Sender<Result<PathBuf, String>>>>,
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
}

impl LogSink {
    pub(crate) fn new(shards: usize, capacity: usize, fsync: FsyncMode) -> Self {
        LogSink {
            queue: BoundedQueue::new(capacity),
            overflowed: AtomicBool::new(false),
            durable: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            waiters: WakerList::default(),
            snapshot_requests: Mutex::new(Vec::new()),
            consumer: ParkedConsumer::new(capacity),
            fsync,
            overflows: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
        }
    }

    /// Queues one write (inside the writer section). Never waits.
    pub(crate) fn append(&self, shard: usize, seq: u64, op: Op) {
        let record = QueuedWrite {
            shard: shard as u32,
            seq,
            tick: 0,
            op,
        };
        if self.queue.push(record).is_err() {
            self.overflowed.store(true, Ordering::Release);
            self.overflows.fetch_add(1, Ordering::Relaxed);
        }
        // With `--fsync always` a client waits for this record, so the log thread is woken at
        // once. Otherwise it wakes by itself every few milliseconds ([`IDLE_WAKE`]) and takes
        // what has queued: one wake-up (a futex call here, a context switch there) per batch
        // instead of one per write, unless the queue is filling up.
        self.consumer
            .wake_after_push(self.fsync == FsyncMode::Always, || self.queue.len());
    }

    /// Records waiting for the log thread.
    pub fn queue_depth(&self) -> usize {
        self.queue.len()
    }

    /// Whether every write of `shard` up to `seq` is on disk.
    pub fn is_durable(&self, shard: usize, seq: u64) -> bool {
        self.durable[shard].load(Ordering::Acquire) >= seq
    }

    /// A future that completes once write `seq` of `shard` is on disk.
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

    pub(crate) fn publish_durable(&self, shard: usize, seq: u64) {
        self.durable[shard].fetch_max(seq, Ordering::AcqRel);
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
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.sink
            .waiters
            .poll_until(cx, || self.sink.is_durable(self.shard, self.seq))
    }
}
