//! The log thread (appends, syncs, rotates) and the snapshot writer it starts.
//!
//! Only the log thread writes log files; only one snapshot thread runs at a time. Durability
//! progress is published per shard after the sync that covers it, except while a snapshot that
//! must cover dropped records is pending: then progress is held until that snapshot is on disk.
//!
//! Must never: publish a shard's progress past a record that is not on disk.

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
use super::{FsyncMode, LogSink, PersistenceError};
use crate::clock::{Tick, NEVER};
use crate::replication::Op;
use crate::store::{Shard, ShardedStore};
use crate::sync::{lock, Ordering};

/// Records taken from the queue per batch.
const BATCH: usize = 4096;

/// A log at least this large, and at least as large as the last snapshot, triggers a snapshot
/// (and with it a new generation), so the log does not grow forever (Redis's
/// `auto-aof-rewrite-min-size` and `-percentage 100`).
const AUTO_SNAPSHOT_MIN_BYTES: u64 = 64 << 20;

/// The running log thread; on drop it drains the queue, syncs, and stops.
pub struct LogThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    sink: Arc<LogSink>,
}

impl LogThread {
    /// Starts logging `store`'s writes into `dir` as generation `gen`, beginning with a
    /// snapshot of everything the store holds now (so older generations can be deleted).
    pub fn start<S: Shard>(
        store: Arc<ShardedStore<S>>,
        dir: PathBuf,
        gen: u64,
        fsync: FsyncMode,
        queue_capacity: usize,
    ) -> Result<LogThread, PersistenceError> {
        let sink = Arc::new(LogSink::new(store.shard_count(), queue_capacity, fsync));
        let file = create_log(&dir, gen, store.shard_count())?;
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
            shards: store.shard_count(),
            store,
            sink: sink.clone(),
            dir,
            gen,
            file,
            wall_origin_ms,
            last_sync: Instant::now(),
            unsynced: Vec::new(),
            written: Vec::new(),
            hold: false,
            snapshot: None,
            buf: Vec::with_capacity(1 << 20),
            log_bytes: 0,
            snapshot_bytes: 0,
        };
        writer.unsynced = vec![0; writer.shards];
        writer.written = vec![0; writer.shards];
        writer.start_snapshot(Vec::new());
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread_sink = sink.clone();
        let handle = std::thread::Builder::new()
            .name("shardkv-log".into())
            .spawn(move || {
                thread_sink.consumer.register_current();
                writer.run(&stop_flag);
            })
            .map_err(|source| PersistenceError::Io {
                path: PathBuf::from("(log thread)"),
                source,
            })?;
        Ok(LogThread {
            stop,
            handle: Some(handle),
            sink,
        })
    }

    /// The sink the store writes to.
    pub fn sink(&self) -> &Arc<LogSink> {
        &self.sink
    }
}

impl Drop for LogThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

type SnapshotResult = Result<(u64, PathBuf, Vec<u64>), String>;

/// Where a snapshot's path (or failure) is sent to a `POST /admin/snapshot` caller.
type SnapshotReply = std::sync::mpsc::Sender<Result<PathBuf, String>>;

struct Writer<S: Shard> {
    store: Arc<ShardedStore<S>>,
    sink: Arc<LogSink>,
    shards: usize,
    dir: PathBuf,
    gen: u64,
    file: BufWriter<File>,
    /// Unix time in ms at the store clock's tick 0: converts deadlines to wall-clock time.
    wall_origin_ms: u64,
    last_sync: Instant,
    /// Per shard: the last sequence number written but not yet synced.
    unsynced: Vec<u64>,
    /// Per shard: the last sequence number synced.
    written: Vec<u64>,
    /// Progress is held until the pending snapshot lands (records were dropped).
    hold: bool,
    snapshot: Option<(JoinHandle<SnapshotResult>, Vec<SnapshotReply>)>,
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
            let requests = std::mem::take(&mut *lock(&self.sink.snapshot_requests));
            let overflowed = self.sink.overflowed.swap(false, Ordering::AcqRel);
            let log_too_big = self.snapshot.is_none()
                && self.log_bytes >= AUTO_SNAPSHOT_MIN_BYTES.max(self.snapshot_bytes);
            if overflowed || log_too_big || !requests.is_empty() {
                if self.snapshot.is_some() {
                    // One at a time: ask again once the running one is done.
                    lock(&self.sink.snapshot_requests).extend(requests);
                    if overflowed {
                        self.sink.overflowed.store(true, Ordering::Release);
                    }
                } else {
                    if overflowed {
                        self.hold = true;
                    }
                    self.rotate();
                    self.start_snapshot(requests);
                }
            }
            let taken = self.append_batch();
            self.sync_if_due(taken > 0);
            if taken == 0 {
                if stop.load(Ordering::Acquire) && self.sink.queue.is_empty() {
                    self.sync();
                    if let Some((handle, requests)) = self.snapshot.take() {
                        let result = handle
                            .join()
                            .unwrap_or_else(|_| Err("snapshot thread panicked".into()));
                        self.land_snapshot(result, requests);
                    }
                    return;
                }
                let nap = if self.snapshot.is_some() {
                    Duration::from_millis(1)
                } else {
                    super::IDLE_WAKE
                };
                self.sink.consumer.nap(nap, || self.sink.queue.is_empty());
            }
        }
    }

    /// Encodes and writes up to a batch of queued records; returns how many.
    fn append_batch(&mut self) -> usize {
        self.buf.clear();
        let mut taken = 0;
        while taken < BATCH {
            let Some(record) = self.sink.queue.pop() else {
                break;
            };
            let shard = record.shard as usize;
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
            self.unsynced[shard] = self.unsynced[shard].max(record.seq);
            taken += 1;
        }
        if taken > 0 {
            self.log_bytes += self.buf.len() as u64;
            if let Err(err) = self.file.write_all(&self.buf) {
                // The disk refused: keep the records' place by forcing a snapshot, which either
                // succeeds later or keeps progress held (so no `always` write is acknowledged).
                tracing::error!(%err, "cannot append to the log; will retry with a snapshot");
                self.hold = true;
                self.sink.overflowed.store(true, Ordering::Release);
            }
        }
        taken
    }

    fn expires_ms(&self, deadline: Tick) -> u64 {
        expires_ms(self.wall_origin_ms, deadline)
    }

    fn sync_if_due(&mut self, wrote: bool) {
        let dirty = self.unsynced.iter().any(|&s| s > 0);
        let due = match self.sink.fsync {
            FsyncMode::Always | FsyncMode::No => wrote || dirty,
            FsyncMode::EverySec => dirty && self.last_sync.elapsed() >= Duration::from_secs(1),
        };
        if due {
            self.sync();
        }
    }

    /// Flushes the buffer, syncs per the mode, and publishes what is now on disk.
    fn sync(&mut self) {
        if let Err(err) = self.file.flush() {
            tracing::error!(%err, "cannot flush the log");
            return;
        }
        if self.sink.fsync != FsyncMode::No {
            if let Err(err) = self.file.get_ref().sync_data() {
                tracing::error!(%err, "cannot sync the log");
                return;
            }
        }
        self.last_sync = Instant::now();
        for shard in 0..self.shards {
            let seq = std::mem::take(&mut self.unsynced[shard]);
            if seq > 0 {
                self.written[shard] = self.written[shard].max(seq);
                if !self.hold {
                    self.sink.publish_durable(shard, seq);
                }
            }
        }
        self.sink.wake_waiters();
    }

    /// Ends the current log and starts the next generation's.
    fn rotate(&mut self) {
        self.sync();
        match create_log(&self.dir, self.gen + 1, self.shards) {
            Ok(file) => {
                self.gen += 1;
                self.file = file;
                self.log_bytes = 0;
                self.sink.generation.store(self.gen, Ordering::Relaxed);
            }
            Err(err) => tracing::error!(%err, "cannot start a new log generation"),
        }
    }

    fn start_snapshot(&mut self, requests: Vec<SnapshotReply>) {
        let store = self.store.clone();
        let dir = self.dir.clone();
        let gen = self.gen;
        let origin = self.wall_origin_ms;
        let spawned = std::thread::Builder::new()
            .name("shardkv-snapshot".into())
            .spawn(move || write_snapshot(&store, &dir, gen, origin).map_err(|e| e.to_string()));
        match spawned {
            Ok(handle) => self.snapshot = Some((handle, requests)),
            Err(err) => {
                for tx in requests {
                    let _ = tx.send(Err(err.to_string()));
                }
            }
        }
    }

    fn finish_snapshot_if_done(&mut self) {
        if !self.snapshot.as_ref().is_some_and(|(h, _)| h.is_finished()) {
            return;
        }
        let (handle, requests) = self.snapshot.take().expect("checked above");
        let result = handle
            .join()
            .unwrap_or_else(|_| Err("snapshot thread panicked".into()));
        self.land_snapshot(result, requests);
    }

    fn land_snapshot(&mut self, result: SnapshotResult, requests: Vec<SnapshotReply>) {
        match result {
            Ok((gen, path, seqs)) => {
                self.snapshot_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
                for (shard, &seq) in seqs.iter().enumerate() {
                    self.sink
                        .publish_durable(shard, seq.max(self.written[shard]));
                }
                self.hold = false;
                self.sink.snapshots.fetch_add(1, Ordering::Relaxed);
                self.sink.wake_waiters();
                remove_older_generations(&self.dir, gen);
                tracing::info!(path = %path.display(), "snapshot written");
                for tx in requests {
                    let _ = tx.send(Ok(path.clone()));
                }
            }
            Err(err) => {
                tracing::error!(%err, "snapshot failed; will retry");
                if self.hold {
                    self.sink.overflowed.store(true, Ordering::Release);
                }
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
fn create_log(dir: &Path, gen: u64, shards: usize) -> Result<BufWriter<File>, PersistenceError> {
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
    file.write_all(&header.encode()).map_err(io_err(&path))?;
    file.sync_all().map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(BufWriter::with_capacity(1 << 20, file))
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
    file.sync_all().map_err(io_err(&tmp))?;
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
