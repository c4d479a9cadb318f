//! The log thread (appends, syncs, rotates, renews the version lease) and the snapshot writer
//! it starts.
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

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::format::{
    encode_record, log_path, parse_name, snapshot_path, Header, LOG_MAGIC, SNAPSHOT_MAGIC,
};
use super::lease::LeaseFile;
use super::progress::Publisher;
use super::{FsyncMode, LogSink, PersistenceError};
use crate::clock::{Tick, NEVER};
use crate::faults::{self, Point};
use crate::replication::Op;
use crate::store::{Shard, ShardedStore};
use crate::sync::{lock, Ordering};

/// Records taken from the queue per batch.
const BATCH: usize = 4096;

/// A log at least this large, and at least as large as the last snapshot, triggers a snapshot
/// (and with it a new generation), so the log does not grow forever (Redis's
/// `auto-aof-rewrite-min-size` and `-percentage 100`).
const AUTO_SNAPSHOT_MIN_BYTES: u64 = 64 << 20;

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
        if store.log.set(sink.clone()).is_err() {
            return Err(PersistenceError::Io {
                path: dir,
                source: std::io::Error::other("this store already has a log"),
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

type SnapshotResult = Result<(u64, PathBuf, Vec<u64>), String>;

/// Where a snapshot's path (or failure) is sent to a `POST /admin/snapshot` caller.
type SnapshotReply = std::sync::mpsc::Sender<Result<PathBuf, String>>;

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

struct RunningSnapshot {
    handle: JoinHandle<SnapshotResult>,
    requests: Vec<SnapshotReply>,
    /// Started after the failed log was replaced, with no failure since: landing it makes the
    /// log healthy again.
    heals: bool,
    /// `Writer::file_failures` when it started.
    failures_at_start: u64,
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

    /// Starts a snapshot when one is wanted and none is running: a retry of a failed one once
    /// its backoff is over (same generation), or a new one after a rotation.
    fn start_snapshot_if_wanted(&mut self) {
        self.waiting_requests
            .extend(std::mem::take(&mut *lock(&self.sink.snapshot_requests)));
        if self.snapshot.is_some() || self.file.is_none() {
            return;
        }
        if self.snapshot_retry.pending() {
            if self.snapshot_retry.due() {
                self.start_snapshot();
            }
            return;
        }
        if self.failed_since.is_some_and(|g| g == Some(self.gen)) {
            // The new log exists: the snapshot that heals it, on this generation.
            self.start_snapshot();
            return;
        }
        // The flag only wakes us; the drops themselves say whether a snapshot is needed.
        self.sink.overflowed.store(false, Ordering::Release);
        let uncovered = self.publisher.uncovered(&self.sink.progress);
        let log_too_big = self.log_bytes >= AUTO_SNAPSHOT_MIN_BYTES.max(self.snapshot_bytes);
        if uncovered || log_too_big || !self.waiting_requests.is_empty() {
            self.rotate();
            if self.file.is_some() {
                self.start_snapshot();
            }
        }
    }

    /// Encodes and writes up to a batch of queued records; returns how many were taken.
    fn append_batch(&mut self) -> usize {
        self.buf.clear();
        let mut taken = 0;
        while taken < BATCH {
            let Some(record) = self.sink.queue.pop() else {
                break;
            };
            taken += 1;
            let shard = record.shard as usize;
            if record.seq <= self.publisher.covered(shard) {
                // Already in a snapshot on disk. Appending it to a log of a later generation
                // would replay it over that snapshot (as older data) after a crash.
                continue;
            }
            if self.file.is_none() {
                // No file to append to: a snapshot after the new log will cover it.
                self.publisher
                    .discard(&self.sink.progress, shard, record.seq);
                continue;
            }
            match &record.op {
                Op::Set {
                    record: stored,
                    deadline,
                } => {
                    let expires = self.expires_ms(*deadline);
                    encode_record(
                        &mut self.buf,
                        record.shard,
                        record.seq,
                        stored.key(),
                        Some((expires, stored.value())),
                    );
                }
                Op::Remove { key } => {
                    encode_record(&mut self.buf, record.shard, record.seq, key, None)
                }
            }
            self.publisher.appended(shard, record.seq);
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

    /// Creates the next generation's log and makes it the current one.
    fn open_next_log(&mut self) -> Result<(), PersistenceError> {
        let file = create_log(&self.dir, self.gen + 1, self.shards)?;
        self.gen += 1;
        self.file = Some(file);
        self.log_bytes = 0;
        self.sink.generation.store(self.gen, Ordering::Relaxed);
        Ok(())
    }

    /// Ends the current log and starts the next generation's. If the new log cannot be
    /// created, the current one (healthy) stays, and the snapshot goes on its generation.
    fn rotate(&mut self) {
        self.sync();
        if self.file.is_none() {
            return;
        }
        match self.open_next_log() {
            Ok(()) => {}
            Err(err) => {
                self.sink.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%err, "cannot start a new log generation; the snapshot uses the current one");
            }
        }
    }

    fn start_snapshot(&mut self) {
        let store = self.store.clone();
        let dir = self.dir.clone();
        let gen = self.gen;
        let origin = self.wall_origin_ms;
        let requests = std::mem::take(&mut self.waiting_requests);
        let spawned = std::thread::Builder::new()
            .name("shardkv-snapshot".into())
            .spawn(move || write_snapshot(&store, &dir, gen, origin).map_err(|e| e.to_string()));
        match spawned {
            Ok(handle) => {
                self.snapshot = Some(RunningSnapshot {
                    handle,
                    requests,
                    heals: self.failed_since.is_some_and(|g| g == Some(gen)),
                    failures_at_start: self.file_failures,
                })
            }
            Err(err) => {
                self.snapshot_retry.failed();
                for tx in requests {
                    let _ = tx.send(Err(err.to_string()));
                }
            }
        }
    }

    fn finish_snapshot_if_done(&mut self) {
        if !self
            .snapshot
            .as_ref()
            .is_some_and(|r| r.handle.is_finished())
        {
            return;
        }
        let running = self.snapshot.take().expect("checked above");
        let heals = running.heals && running.failures_at_start == self.file_failures;
        let result = running
            .handle
            .join()
            .unwrap_or_else(|_| Err("snapshot thread panicked".into()));
        self.land_snapshot(result, running.requests, heals);
    }

    fn land_snapshot(&mut self, result: SnapshotResult, requests: Vec<SnapshotReply>, heals: bool) {
        match result {
            Ok((gen, path, fences)) => {
                self.snapshot_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                self.snapshot_retry.succeeded();
                let uncovered = self.publisher.snapshot_landed(&self.sink.progress, &fences);
                if heals && self.file.is_some() {
                    self.failed_since = None;
                    self.sink.set_healthy();
                    tracing::info!(gen, "the log is healthy again; writes resume");
                }
                self.sink.snapshots.fetch_add(1, Ordering::Relaxed);
                self.sink.wake_waiters();
                remove_older_generations(&self.dir, gen);
                tracing::info!(path = %path.display(), uncovered, "snapshot written");
                for tx in requests {
                    let _ = tx.send(Ok(path.clone()));
                }
            }
            Err(err) => {
                self.snapshot_retry.failed();
                self.sink.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%err, retry_in = ?self.snapshot_retry.wait, "snapshot failed; will retry");
                for tx in requests {
                    let _ = tx.send(Err(err.clone()));
                }
            }
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PersistenceError + '_ {
    move |source| PersistenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `log-<gen>` with its header, synced, and the directory entry synced.
fn create_log(dir: &Path, gen: u64, shards: usize) -> Result<File, PersistenceError> {
    let path = log_path(dir, gen);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let header = Header {
        magic: *LOG_MAGIC,
        gen,
        base_gen: gen,
        shards: shards as u32,
        seqs: Vec::new(),
    };
    faults::check(Point::LogWrite)
        .and_then(|()| file.write_all(&header.encode()))
        .map_err(io_err(&path))?;
    faults::check(Point::LogSync)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), PersistenceError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes `snapshot-<gen>`: every live entry of every shard, each shard copied inside its
/// writer section with its sequence number. Returns the generation, path and sequence numbers.
fn write_snapshot<S: Shard>(
    store: &ShardedStore<S>,
    dir: &Path,
    gen: u64,
    wall_origin_ms: u64,
) -> Result<(u64, PathBuf, Vec<u64>), PersistenceError> {
    let shards = store.shard_count();
    let tmp = dir.join(format!("snapshot-{gen:016}.skv.tmp"));
    faults::check(Point::Snapshot).map_err(io_err(&tmp))?;
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut header = Header {
        magic: *SNAPSHOT_MAGIC,
        gen,
        base_gen: gen,
        shards: shards as u32,
        seqs: vec![0; shards],
    };
    out.write_all(&header.encode()).map_err(io_err(&tmp))?;
    let now = store.clock().now();
    let mut buf = Vec::with_capacity(1 << 20);
    for shard in 0..shards {
        faults::snapshot_delay();
        let (entries, seq) = store.snapshot_shard(shard);
        header.seqs[shard] = seq;
        for e in entries {
            if e.deadline <= now {
                continue;
            }
            let expires = expires_ms(wall_origin_ms, e.deadline);
            encode_record(
                &mut buf,
                shard as u32,
                e.version,
                e.record.key(),
                Some((expires, e.record.value())),
            );
            if buf.len() >= 1 << 20 {
                out.write_all(&buf).map_err(io_err(&tmp))?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf).map_err(io_err(&tmp))?;
    let mut file = out.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(io_err(&tmp))?;
    file.write_all(&header.encode()).map_err(io_err(&tmp))?;
    faults::check(Point::Snapshot)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    let path = snapshot_path(dir, gen);
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok((gen, path, header.seqs))
}

/// Deletes snapshots and logs of generations before `gen`, and stray temporary files.
fn remove_older_generations(dir: &Path, gen: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = match parse_name(&name) {
            Some((_, g)) => g < gen,
            None => name.ends_with(".skv.tmp") && !name.contains(&format!("{gen:016}")),
        };
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
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
