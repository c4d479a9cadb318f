//! The log thread (appends, syncs, rotates, renews the version lease) and the snapshot writer
//! it starts. This file holds the thread's start and loop, appending and syncing; the files of
//! a generation are in [`generation`], snapshots in [`snapshot`].
//!
//! Only the log thread writes log files; only one snapshot thread runs at a time. What may be
//! reported durable is decided by [`Publisher`] (the hold-and-publish rule, kept apart from the
//! I/O here so loom can check it).
//!
//! Failures: after a failed `write` or `fdatasync` the file is never appended to again (it may
//! end in a partial record) and its unsynced records count as dropped (a later successful sync
//! proves nothing about them: the kernel may have thrown the dirty pages away). Writes are
//! refused until a new log generation exists and a snapshot started after it has landed. A
//! failing log creation or snapshot is retried with a doubling backoff, one attempt at a time,
//! without rotating the log again for each retry.
//!
//! Must never: publish a shard's progress past a record that is not on disk, append to a file
//! after a failed write or sync, or create a log generation while a snapshot is running (its
//! records would not be skipped by that snapshot's fence at recovery).

mod generation;
mod snapshot;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::format::{encode_group_start, encode_record, log_path, shard_field};
use super::lease::LeaseFile;
use super::progress::Publisher;
use super::sink::Logged;
use super::{FsyncMode, LogSink, PersistenceError};
use crate::clock::{Tick, NEVER};
use crate::faults::{self, Point};
use crate::store::{Change, Op};
use crate::store::{Shard, ShardedStore};
use crate::sync::{lock, Ordering};
use generation::{create_log, io_err};
use snapshot::{RunningSnapshot, SnapshotReply};

/// Records taken from the queue per batch.
const BATCH: usize = 4096;

/// The first wait before retrying a failed snapshot, log creation or lease renewal.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest wait between retries.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Versions reserved per lease renewal by default.
pub const DEFAULT_LEASE: u64 = 1 << 20;

/// The running log thread; on drop it drains the queue, syncs, and stops.
pub struct LogThread {
    sink: Arc<LogSink>,
    _worker: crate::worker::Worker,
}

impl LogThread {
    /// Starts logging `store`'s writes into `dir` as generation `gen`, beginning with a
    /// snapshot of everything the store holds now (so older generations can be deleted), with
    /// version leases of [`DEFAULT_LEASE`].
    pub fn start<S: Shard>(
        store: Arc<ShardedStore<S>>,
        dir: PathBuf,
        gen: u64,
        fsync: FsyncMode,
        queue_capacity: usize,
    ) -> Result<LogThread, PersistenceError> {
        Self::start_with_lease(store, dir, gen, fsync, queue_capacity, DEFAULT_LEASE)
    }

    /// [`LogThread::start`] reserving `lease_size` versions per lease renewal. A new lease
    /// (`lease_size` above the highest version in the store) is on disk before this returns.
    pub fn start_with_lease<S: Shard>(
        store: Arc<ShardedStore<S>>,
        dir: PathBuf,
        gen: u64,
        fsync: FsyncMode,
        queue_capacity: usize,
        lease_size: u64,
    ) -> Result<LogThread, PersistenceError> {
        let shards = store.shard_count();
        let sink = Arc::new(LogSink::new(shards, queue_capacity, fsync, lease_size));
        let mut lease = LeaseFile::open(&dir)?;
        let limit = max_seq(&store).saturating_add(sink.lease_size);
        lease.write(limit).map_err(io_err(lease.path()))?;
        sink.publish_lease(limit);
        let file = create_log(&dir, gen, shards)?;
        sink.generation.store(gen, Ordering::Relaxed);
        // Attach before the snapshot copies any shard: every write after a shard's copy is logged.
        if let Err(e) = store.register_sink(sink.clone()) {
            return Err(PersistenceError::Io {
                path: dir,
                source: std::io::Error::other(e),
            });
        }
        let wall_origin_ms = wall_ms().saturating_sub(store.clock().now());
        let mut writer = Writer {
            shards,
            store,
            sink: sink.clone(),
            dir,
            gen,
            file: Some(file),
            wall_origin_ms,
            last_sync: Instant::now(),
            publisher: Publisher::new(shards),
            snapshot: None,
            waiting_requests: Vec::new(),
            snapshot_retry: Retry::default(),
            log_retry: Retry::default(),
            lease_retry: Retry::default(),
            lease,
            failed_since: None,
            file_failures: 0,
            buf: Vec::with_capacity(1 << 20),
            log_bytes: 0,
            snapshot_bytes: 0,
        };
        writer.start_snapshot();
        let thread_sink = sink.clone();
        let worker = crate::worker::Worker::spawn("shardkv-log", move |stop| {
            thread_sink.consumer.register_current();
            writer.run(stop);
        })
        .map_err(|source| PersistenceError::Io {
            path: PathBuf::from("(log thread)"),
            source,
        })?;
        Ok(LogThread {
            sink,
            _worker: worker,
        })
    }

    /// The sink the store writes to.
    pub fn sink(&self) -> &Arc<LogSink> {
        &self.sink
    }
}

/// The highest sequence number any shard has taken.
fn max_seq<S: Shard>(store: &ShardedStore<S>) -> u64 {
    (0..store.shard_count())
        .map(|s| store.shard_seq(s))
        .max()
        .unwrap_or(0)
}

/// A doubling backoff between attempts of something that failed.
#[derive(Debug, Default)]
struct Retry {
    /// The wait after the next failure (0: nothing failed yet).
    wait: Duration,
    /// No attempt before this.
    not_before: Option<Instant>,
}

impl Retry {
    fn due(&self) -> bool {
        self.not_before.is_none_or(|t| Instant::now() >= t)
    }

    fn failed(&mut self) {
        self.wait = if self.wait.is_zero() {
            FIRST_RETRY
        } else {
            (self.wait * 2).min(MAX_RETRY)
        };
        self.not_before = Some(Instant::now() + self.wait);
    }

    fn pending(&self) -> bool {
        self.not_before.is_some()
    }

    fn succeeded(&mut self) {
        *self = Retry::default();
    }
}

struct Writer<S: Shard> {
    store: Arc<ShardedStore<S>>,
    sink: Arc<LogSink>,
    shards: usize,
    dir: PathBuf,
    gen: u64,
    /// The current log file; `None` after a failed write or sync until a new one is created.
    file: Option<File>,
    /// Unix time in ms at the store clock's tick 0: converts deadlines to wall-clock time.
    wall_origin_ms: u64,
    last_sync: Instant,
    publisher: Publisher,
    snapshot: Option<RunningSnapshot>,
    /// Snapshot requests waiting for the next attempt.
    waiting_requests: Vec<SnapshotReply>,
    snapshot_retry: Retry,
    log_retry: Retry,
    lease_retry: Retry,
    lease: LeaseFile,
    /// The generation created after the log failed (writes resume once a snapshot of it lands);
    /// `Some(None)` while no new log exists yet.
    failed_since: Option<Option<u64>>,
    /// Failed writes and syncs of log files since start.
    file_failures: u64,
    buf: Vec<u8>,
    /// Bytes appended to the current log.
    log_bytes: u64,
    /// Size of the last snapshot written.
    snapshot_bytes: u64,
}

impl<S: Shard> Writer<S> {
    fn run(&mut self, stop: &AtomicBool) {
        loop {
            self.finish_snapshot_if_done();
            self.renew_lease_if_wanted();
            if self.file.is_none() {
                self.replace_failed_log();
            }
            self.start_snapshot_if_wanted();
            let taken = self.append_batch();
            self.sync_if_due(taken > 0);
            if taken == 0 {
                if stop.load(Ordering::Acquire) && self.sink.queue.is_empty() {
                    self.sync();
                    if let Some(running) = self.snapshot.take() {
                        let result = running
                            .handle
                            .join()
                            .unwrap_or_else(|_| Err("snapshot thread panicked".into()));
                        self.land_snapshot(result, running.requests, false);
                    }
                    for tx in self.waiting_requests.drain(..) {
                        let _ = tx.send(Err("the server is shutting down".into()));
                    }
                    return;
                }
                let nap = if self.snapshot.is_some() || self.file.is_none() {
                    Duration::from_millis(1)
                } else {
                    super::IDLE_WAKE
                };
                self.sink.consumer.nap(nap, || self.sink.queue.is_empty());
            }
        }
    }

    /// Encodes and writes up to a batch of queued records; returns how many were taken.
    fn append_batch(&mut self) -> usize {
        self.buf.clear();
        let mut taken = 0;
        while taken < BATCH {
            let Some(logged) = self.sink.queue.pop() else {
                break;
            };
            taken += 1;
            match logged {
                Logged::One(change) => {
                    if self.wants(&change) {
                        self.encode(&change);
                    }
                }
                Logged::Group(changes) => {
                    let kept: Vec<&Change> = changes.iter().filter(|c| self.wants(c)).collect();
                    if kept.len() > 1 {
                        // One piece in one buffer: recovery loads all of it or, when a crash
                        // cuts it short, none.
                        encode_group_start(&mut self.buf, kept.len() as u32);
                    }
                    for change in kept {
                        self.encode(change);
                    }
                }
            }
        }
        if !self.buf.is_empty() {
            if let Some(file) = self.file.as_mut() {
                self.log_bytes += self.buf.len() as u64;
                let written =
                    faults::check(Point::LogWrite).and_then(|()| file.write_all(&self.buf));
                if let Err(err) = written {
                    self.fail(format!(
                        "cannot append to {}: {err}",
                        self.log_path().display()
                    ));
                }
            }
        }
        taken
    }

    /// Whether `change` is to be appended: not when a snapshot on disk already holds it
    /// (appending it to a log of a later generation would replay it over that snapshot, as
    /// older data, after a crash), nor when there is no file (a snapshot after the new log will
    /// cover it).
    fn wants(&mut self, change: &Change) -> bool {
        let shard = change.shard as usize;
        if change.seq <= self.publisher.covered(shard) {
            return false;
        }
        if self.file.is_none() {
            self.publisher
                .discard(&self.sink.progress, shard, change.seq);
            return false;
        }
        true
    }

    /// Encodes `change` into the batch buffer.
    fn encode(&mut self, change: &Change) {
        match &change.op {
            Op::Set { record, deadline } => {
                let expires = self.expires_ms(*deadline);
                encode_record(
                    &mut self.buf,
                    shard_field(change.db, change.shard),
                    change.seq,
                    record.key(),
                    Some((expires, record.value())),
                );
            }
            Op::Remove { key } => encode_record(
                &mut self.buf,
                shard_field(change.db, change.shard),
                change.seq,
                key,
                None,
            ),
        }
        self.publisher.appended(change.shard as usize, change.seq);
    }

    fn log_path(&self) -> PathBuf {
        log_path(&self.dir, self.gen)
    }

    /// The current file failed: never touch it again, count its unsynced records as dropped,
    /// refuse writes, and replace it (then a snapshot heals the log).
    fn fail(&mut self, reason: String) {
        tracing::error!(%reason, "the log cannot be written; refusing writes until a new log and a snapshot succeed");
        self.file = None;
        self.file_failures += 1;
        self.sink.set_failed(reason);
        self.publisher.lose_unsynced(&self.sink.progress);
        self.failed_since = Some(None);
        // Waiting `always` writers re-check (and keep waiting: nothing new is published).
        self.sink.wake_waiters();
    }

    /// Creates the next generation's log after a failure, when no snapshot is running and the
    /// backoff allows.
    fn replace_failed_log(&mut self) {
        if self.snapshot.is_some() || !self.log_retry.due() {
            return;
        }
        match self.open_next_log() {
            Ok(()) => {
                self.failed_since = Some(Some(self.gen));
                self.log_retry.succeeded();
                tracing::info!(
                    gen = self.gen,
                    "started a new log generation after a failure"
                );
            }
            Err(err) => {
                self.log_retry.failed();
                self.sink
                    .set_failed(format!("cannot create a new log: {err}"));
                tracing::error!(%err, retry_in = ?self.log_retry.wait, "cannot create a new log");
            }
        }
    }

    /// Renews the version lease when a writer asked for it (past half of it), once the backoff
    /// allows after a failure.
    fn renew_lease_if_wanted(&mut self) {
        if !self.sink.lease_wanted.load(Ordering::Acquire) || !self.lease_retry.due() {
            return;
        }
        let limit = max_seq(&self.store).saturating_add(self.sink.lease_size);
        match self.lease.write(limit) {
            Ok(()) => {
                self.sink.publish_lease(limit);
                *lock(&self.sink.lease_error) = None;
                self.sink.lease_wanted.store(false, Ordering::Release);
                self.lease_retry.succeeded();
            }
            Err(err) => {
                self.lease_retry.failed();
                self.sink.failures.fetch_add(1, Ordering::Relaxed);
                let reason = format!("cannot renew {}: {err}", self.lease.path().display());
                tracing::error!(%reason, "version lease not renewed");
                *lock(&self.sink.lease_error) = Some(reason);
            }
        }
    }

    fn expires_ms(&self, deadline: Tick) -> u64 {
        expires_ms(self.wall_origin_ms, deadline)
    }

    fn sync_if_due(&mut self, wrote: bool) {
        let dirty = self.publisher.has_unsynced();
        let due = match self.sink.fsync {
            FsyncMode::Always | FsyncMode::No => wrote || dirty,
            FsyncMode::EverySec => dirty && self.last_sync.elapsed() >= Duration::from_secs(1),
        };
        if due {
            self.sync();
        }
    }

    /// Syncs per the mode and publishes what is now on disk. A failed sync fails the file.
    fn sync(&mut self) {
        let Some(file) = self.file.as_ref() else {
            return;
        };
        if !self.publisher.has_unsynced() {
            return;
        }
        if self.sink.fsync != FsyncMode::No {
            let synced = faults::check(Point::LogSync).and_then(|()| file.sync_data());
            if let Err(err) = synced {
                self.fail(format!("cannot sync {}: {err}", self.log_path().display()));
                return;
            }
        }
        self.last_sync = Instant::now();
        self.publisher.synced(&self.sink.progress);
        self.sink.wake_waiters();
    }
}

/// A deadline tick as Unix milliseconds for the file format (0 = no expiry).
fn expires_ms(wall_origin_ms: u64, deadline: Tick) -> u64 {
    if deadline == NEVER {
        0
    } else {
        wall_origin_ms.saturating_add(deadline).max(1)
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
