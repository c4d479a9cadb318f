//! Which writes the log may report as on disk: the hold-and-publish rule, per shard, apart from
//! any file I/O (so the loom models in `loom-tests/` run this exact code).
//!
//! A write is on disk when its record was synced in a log that recovery replays, or when a
//! snapshot that landed covers it (its sequence number is at most the snapshot's fence for that
//! shard). A record that reached no log is *dropped*: its writer found the log queue full, or the
//! log file failed before the record was synced, or there was no log file to append it to. A
//! dropped record is only ever on disk through a later snapshot.
//!
//! The rule: a shard's durable progress may move past its synced log records only while every
//! dropped record of that shard is covered (`dropped <= covered`). Otherwise it stays at the
//! covering snapshot's fence, and the log thread starts another snapshot. Writers record a drop
//! inside the shard's writer section, before any later record of that shard is queued, so the
//! log thread, having taken that later record, always sees the drop when it decides.
//!
//! Must never: publish a shard's progress past a record that is neither synced in a log nor
//! covered by a landed snapshot.

use crate::sync::{AtomicU64, BrokenSwitch, Ordering};

/// The per-shard counters shared by writers and the log thread.
pub struct SharedProgress {
    /// Per shard: the highest sequence number whose record reached no log.
    dropped: Box<[AtomicU64]>,
    /// Per shard: every write up to this sequence number is on disk.
    durable: Box<[AtomicU64]>,
    /// Per shard: the highest sequence number whose record was lost to a failed log file (not
    /// to a full queue). A write waiting to be on disk at or below it is not acknowledged.
    lost: Box<[AtomicU64]>,
}

impl SharedProgress {
    /// Counters for `shards` shards, all at 0.
    pub fn new(shards: usize) -> Self {
        SharedProgress {
            dropped: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            durable: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            lost: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The highest sequence number of `shard` lost to a failed log file (0: none).
    pub fn lost(&self, shard: usize) -> u64 {
        self.lost[shard].load(Ordering::Acquire)
    }

    fn record_lost(&self, shard: usize, seq: u64) {
        self.record_dropped(shard, seq);
        self.lost[shard].fetch_max(seq, Ordering::AcqRel);
    }

    /// Writer side, inside the writer section of `shard`: record `seq` did not reach the log.
    pub fn record_dropped(&self, shard: usize, seq: u64) {
        self.dropped[shard].fetch_max(seq, Ordering::AcqRel);
    }

    /// The highest dropped sequence number of `shard` (0: none).
    pub fn dropped(&self, shard: usize) -> u64 {
        self.dropped[shard].load(Ordering::Acquire)
    }

    /// Every write of `shard` up to the returned sequence number is on disk.
    pub fn durable(&self, shard: usize) -> u64 {
        self.durable[shard].load(Ordering::Acquire)
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.durable.len()
    }

    fn publish(&self, shard: usize, seq: u64) {
        self.durable[shard].fetch_max(seq, Ordering::AcqRel);
    }
}

/// The log thread's side: what it appended, synced, and what landed snapshots cover.
#[derive(Debug)]
pub struct Publisher {
    /// Per shard: the highest sequence number appended to the current file but not synced.
    unsynced: Vec<u64>,
    /// Per shard: the highest sequence number synced in a log.
    written: Vec<u64>,
    /// Per shard: the fence of the newest snapshot that landed.
    covered: Vec<u64>,
    /// The loom models' broken variant: publish at a landing as the old rule did, ignoring
    /// drops (off outside the loom build).
    broken: BrokenSwitch,
}

impl Publisher {
    /// Bookkeeping for `shards` shards.
    pub fn new(shards: usize) -> Self {
        Publisher {
            unsynced: vec![0; shards],
            written: vec![0; shards],
            covered: vec![0; shards],
            broken: BrokenSwitch::default(),
        }
    }

    /// Test-only switch for the loom models: at a snapshot landing, publish
    /// `max(fence, written)` whatever was dropped (the rule that acknowledged a write that was
    /// on disk nowhere). A model run with it on must fail. Panics outside the loom build.
    #[cfg(feature = "testing")]
    pub fn break_publish_rule_for_model(&mut self) {
        self.broken.turn_on(1);
    }

    /// Record `seq` of `shard` was appended to the current log file (not yet synced).
    pub fn appended(&mut self, shard: usize, seq: u64) {
        self.unsynced[shard] = self.unsynced[shard].max(seq);
    }

    /// Whether some appended record is not yet synced.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced.iter().any(|&s| s > 0)
    }

    /// Every appended record is now on disk: publishes what may be published.
    pub fn synced(&mut self, shared: &SharedProgress) {
        for shard in 0..self.unsynced.len() {
            let seq = std::mem::take(&mut self.unsynced[shard]);
            if seq > 0 {
                self.written[shard] = self.written[shard].max(seq);
                self.publish_shard(shared, shard);
            }
        }
    }

    /// The appended records may not be on disk (a write or sync of the file failed): they count
    /// as dropped, and a snapshot has to cover them.
    pub fn lose_unsynced(&mut self, shared: &SharedProgress) {
        for shard in 0..self.unsynced.len() {
            let seq = std::mem::take(&mut self.unsynced[shard]);
            if seq > 0 {
                shared.record_lost(shard, seq);
            }
        }
    }

    /// Record `seq` of `shard` was taken from the queue while there was no log file to append
    /// it to: it counts as dropped.
    pub fn discard(&mut self, shared: &SharedProgress, shard: usize, seq: u64) {
        shared.record_lost(shard, seq);
    }

    /// A snapshot landed; `fences[s]`: every write of shard `s` up to it is in the snapshot.
    /// Returns whether some shard still has a dropped record the snapshot does not cover (then
    /// another snapshot is needed).
    pub fn snapshot_landed(&mut self, shared: &SharedProgress, fences: &[u64]) -> bool {
        for (shard, &fence) in fences.iter().enumerate().take(self.covered.len()) {
            self.covered[shard] = self.covered[shard].max(fence);
            if self.broken.is_on(1) {
                shared.publish(shard, fence.max(self.written[shard]));
                continue;
            }
            self.publish_shard(shared, shard);
        }
        self.uncovered(shared)
    }

    /// Whether some shard has a dropped record no landed snapshot covers.
    pub fn uncovered(&self, shared: &SharedProgress) -> bool {
        (0..self.covered.len()).any(|shard| shared.dropped(shard) > self.covered[shard])
    }

    /// The fence of the newest landed snapshot for `shard`.
    pub fn covered(&self, shard: usize) -> u64 {
        self.covered[shard]
    }

    fn publish_shard(&self, shared: &SharedProgress, shard: usize) {
        let covered = self.covered[shard];
        // Read after the records behind `written` were taken from the queue: a drop recorded
        // before any of them was queued is visible here.
        let progress = if shared.dropped(shard) <= covered {
            self.written[shard].max(covered)
        } else {
            covered
        };
        shared.publish(shard, progress);
    }
}

#[cfg(all(test, not(shardkv_loom)))]
mod tests {
    use super::*;

    /// The scenario that acknowledged a write on disk nowhere: an overflow starts snapshot S1,
    /// S1 copies shard 0 at seq m, a second overflow drops record n > m, a later record n + 1 is
    /// synced in the new log, then S1 lands.
    #[test]
    fn a_landing_snapshot_does_not_publish_past_a_drop_it_does_not_cover() {
        let shared = SharedProgress::new(1);
        let mut p = Publisher::new(1);
        // First overflow: record 3 dropped; the log thread rotates and starts S1.
        p.appended(0, 1);
        p.appended(0, 2);
        p.synced(&shared);
        shared.record_dropped(0, 3);
        assert_eq!(shared.durable(0), 2);
        // S1 copies shard 0 at m = 4. Then record 5 (n) is dropped, record 6 logged and synced.
        let m = 4;
        shared.record_dropped(0, 5);
        p.appended(0, 6);
        p.synced(&shared);
        assert_eq!(
            shared.durable(0),
            2,
            "progress must hold while a drop is uncovered"
        );
        // S1 lands: it covers up to 4 but not record 5.
        let still_uncovered = p.snapshot_landed(&shared, &[m]);
        assert!(still_uncovered, "record 5 needs another snapshot");
        assert!(
            shared.durable(0) < 5,
            "record 5 is in neither the snapshot nor the log, yet was published durable"
        );
        assert_eq!(shared.durable(0), m);
        // S2 copies at 7 and lands: everything up to 7 (and the log's 6) is on disk.
        assert!(!p.snapshot_landed(&shared, &[7]));
        assert_eq!(shared.durable(0), 7);
    }

    #[test]
    fn progress_resumes_past_the_snapshot_once_every_drop_is_covered() {
        let shared = SharedProgress::new(2);
        let mut p = Publisher::new(2);
        shared.record_dropped(0, 2);
        p.appended(0, 3);
        p.appended(1, 1);
        p.synced(&shared);
        assert_eq!(shared.durable(0), 0);
        assert_eq!(shared.durable(1), 1, "another shard is not held");
        assert!(!p.snapshot_landed(&shared, &[2, 0]));
        assert_eq!(
            shared.durable(0),
            3,
            "the snapshot covers 2 and the log holds 3"
        );
        p.appended(0, 4);
        p.synced(&shared);
        assert_eq!(shared.durable(0), 4);
    }

    #[test]
    fn records_lost_with_a_failed_file_are_never_published_by_a_later_sync() {
        let shared = SharedProgress::new(1);
        let mut p = Publisher::new(1);
        p.appended(0, 1);
        p.synced(&shared);
        p.appended(0, 2);
        p.appended(0, 3);
        // fdatasync failed: 2 and 3 may be gone whatever a later sync says.
        p.lose_unsynced(&shared);
        assert!(!p.has_unsynced());
        p.discard(&shared, 0, 4);
        assert_eq!(shared.lost(0), 4, "their writers must not be acknowledged");
        // A new log: record 5 synced there.
        p.appended(0, 5);
        p.synced(&shared);
        assert_eq!(shared.durable(0), 1);
        assert!(p.uncovered(&shared));
        assert!(!p.snapshot_landed(&shared, &[4]));
        assert_eq!(shared.durable(0), 5);
    }
}
