//! Snapshots, as the log thread runs them: when one is wanted (a request, an overflow, a log
//! grown past the last snapshot), the snapshot thread that writes `snapshot-<gen>`, and landing
//! its result (publishing what it covers, healing a failed log, deleting older generations).
//!
//! Why apart from the log thread's loop: a snapshot is its own protocol (fences per shard,
//! temporary name, sync, rename, sync the directory) that the loop only starts and lands.
//!
//! Must never: start while another snapshot runs, publish a snapshot's fences before its file
//! is renamed and the directory synced, or heal the log with a snapshot that started before
//! the last file failure.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use super::generation::{io_err, remove_older_generations, sync_dir};
use super::{expires_ms, Writer};
use crate::faults::{self, Point};
use crate::persistence::format::{
    encode_record, shard_field, snapshot_path, Header, SNAPSHOT_MAGIC,
};
use crate::persistence::PersistenceError;
use crate::store::{Shard, ShardedStore};
use crate::sync::{lock, Ordering};

/// A log at least this large, and at least as large as the last snapshot, triggers a snapshot
/// (and with it a new generation), so the log does not grow forever (Redis's
/// `auto-aof-rewrite-min-size` and `-percentage 100`).
const AUTO_SNAPSHOT_MIN_BYTES: u64 = 64 << 20;

pub(super) type SnapshotResult = Result<(u64, PathBuf, Vec<u64>), String>;

/// Where a snapshot's path (or failure) is sent to a `POST /admin/snapshot` caller.
pub(super) type SnapshotReply = std::sync::mpsc::Sender<Result<PathBuf, String>>;

pub(super) struct RunningSnapshot {
    pub(super) handle: JoinHandle<SnapshotResult>,
    pub(super) requests: Vec<SnapshotReply>,
    /// Started after the failed log was replaced, with no failure since: landing it makes the
    /// log healthy again.
    heals: bool,
    /// `Writer::file_failures` when it started.
    failures_at_start: u64,
}

impl<S: Shard> Writer<S> {
    /// Starts a snapshot when one is wanted and none is running: a retry of a failed one once
    /// its backoff is over (same generation), or a new one after a rotation.
    pub(super) fn start_snapshot_if_wanted(&mut self) {
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

    pub(super) fn start_snapshot(&mut self) {
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

    pub(super) fn finish_snapshot_if_done(&mut self) {
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

    pub(super) fn land_snapshot(
        &mut self,
        result: SnapshotResult,
        requests: Vec<SnapshotReply>,
        heals: bool,
    ) {
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
        let (entries, seq) = store.snapshot_shard(shard);
        // A slow disk is slow per shard written: empty shards (most databases' shards) cost
        // nothing.
        if !entries.is_empty() {
            faults::snapshot_delay();
        }
        header.seqs[shard] = seq;
        for e in entries {
            if e.deadline <= now {
                continue;
            }
            let expires = expires_ms(wall_origin_ms, e.deadline);
            encode_record(
                &mut buf,
                shard_field(store.db_of(shard) as u16, shard as u32),
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
