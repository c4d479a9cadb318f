//! Start-up: load the newest snapshot, replay the logs after it, and report.
//!
//! Files are read whole and checked before anything is applied: every record's checksum is
//! verified and the highest version on disk found, so a corrupt file stops start-up before the
//! store holds a partial state, and new versions can start above every old one.
//!
//! ## Torn vs corrupt records
//! A crash interrupts at most the appends after the last sync, so it leaves a log's records
//! followed by a torn tail: a record cut short by the end of the file, zeros (space the file
//! system allocated but never wrote), or a record at full length whose data partly never landed.
//! Damage anywhere else is corruption. The first damaged record of a log is judged thus:
//! - its header agrees with itself and the file ends inside it: torn. Nothing after it is read,
//!   so a value that holds bytes of encoded records (values are arbitrary bytes) can never pass
//!   for records written later;
//! - it is whole (its lengths agree, its body fits) but its checksum is wrong: corrupt if a
//!   valid record after its end reaches the end of the file's records (the end of the file, or
//!   a torn tail of its own), else torn. Its own value is never searched: its lengths say where
//!   it ends;
//! - its header contradicts itself (a length out of range, an unknown kind, a key or value
//!   length that does not add up; zeros too): the same test from the next byte on, since such a
//!   header says nothing about where the record ends.
//!
//! A flipped bit in a middle record therefore stops start-up naming file and offset: a flip in
//! the body or checksum leaves a whole record whose successors run to the end; a flip in a
//! length makes the header contradict itself (the key and value lengths no longer add up) and the
//! following records are found from the next byte. What this cannot tell apart: a crash that
//! lost a page in the middle of the unsynced tail while a later page landed looks like
//! corruption and stops start-up (the operator decides), and a value's bytes can add to that
//! only when such a page loss also hit a record's header.
//!
//! Judging costs a constant-time header check per offset and one checksum pass over the rest
//! of the file (see `records_run_to_the_end`), never a checksum per offset.
//!
//! ## Torn log headers
//! The log thread creates a log, writes and syncs its header, syncs the directory, and only
//! then switches to it; if creating it fails it keeps appending to the previous log. So a log
//! whose header a crash cut short (shorter than a full header and agreeing with this format as
//! far as it goes, or nothing but zeros) never held a record, wherever it sits among the logs:
//! it is dropped, reported, and deleted once every file has been checked (a refused start-up
//! leaves the directory untouched). A whole header of another kind or format version, or one
//! whose checksum fails, is not a crash's doing and stops start-up. Snapshots are renamed into
//! place only once complete and synced, so any damage in one stops start-up.
//!
//! ## Atomic groups
//! The writes of one multi-key call sit behind a group start that counts them. They are applied
//! together once the last of them is read; when the file's records end first (the crash cut the
//! append short), none of them is, with a warning and the group's offset in the report.
//!
//! Must never: apply a record it has not verified, resurrect a key whose TTL passed, call
//! damage torn when valid records follow it to the end of the file's records, or apply part of
//! an atomic group.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::format::{
    claim_at, decode_entry, is_torn_log_header, parse_name, Claim, DiskRecord, Header, LogEntry,
    LOG_MAGIC,
    SNAPSHOT_MAGIC, VERSION,
};
use super::writer::wall_ms;
use super::PersistenceError;
use crate::store::{Shard, ShardedStore};

/// What start-up loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Keys in the store after loading.
    pub keys: usize,
    /// Records applied.
    pub records: usize,
    /// Records whose TTL passed while the server was down.
    pub expired: usize,
    /// Torn tails dropped: file and the offset where the tail began (0 for a log whose
    /// header was torn).
    pub torn: Vec<(PathBuf, u64)>,
    /// Logs deleted because a crash cut their header short while creating them (they never
    /// held a record).
    pub removed: Vec<PathBuf>,
    /// The files read, in order.
    pub files: Vec<PathBuf>,
    /// How long loading took.
    pub elapsed: Duration,
    /// The generation the new log should use.
    pub next_gen: u64,
}

struct Checked {
    path: PathBuf,
    bytes: Vec<u8>,
    header: Header,
    /// Where records start and where the valid ones end.
    start: usize,
    end: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistenceError + '_ {
    move |source| PersistenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Loads what `dir` holds into `store` (creating `dir` if needed).
pub fn recover<S: Shard>(
    dir: &Path,
    store: &ShardedStore<S>,
) -> Result<LoadReport, PersistenceError> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut snapshots = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if let Some((is_snapshot, gen)) = parse_name(&entry.file_name().to_string_lossy()) {
            if is_snapshot {
                snapshots.push(gen);
            } else {
                logs.push(gen);
            }
        }
    }
    let max_gen = snapshots.iter().chain(&logs).copied().max().unwrap_or(0);
    let base = snapshots.iter().copied().max();
    logs.retain(|&g| base.is_none_or(|b| g >= b));
    logs.sort_unstable();

    let mut report = LoadReport {
        keys: 0,
        records: 0,
        expired: 0,
        torn: Vec::new(),
        removed: Vec::new(),
        files: Vec::new(),
        elapsed: Duration::ZERO,
        next_gen: max_gen + 1,
    };
    // Pass 1: read and verify every file.
    let mut checked = Vec::new();
    if let Some(gen) = base {
        let path = super::format::snapshot_path(dir, gen);
        // A snapshot is renamed into place only once complete and synced: any damage is
        // corruption, never a torn write.
        let c = check(&path, SNAPSHOT_MAGIC, "snapshot", false, &mut report)?;
        checked.extend(c);
    }
    let mut torn_headers = Vec::new();
    for gen in logs {
        let path = super::format::log_path(dir, gen);
        match check(&path, LOG_MAGIC, "log", true, &mut report)? {
            Some(c) => checked.push(c),
            None => torn_headers.push(path),
        }
    }
    // Only once every file checked out, so a refused start-up leaves the directory as it was.
    for path in torn_headers {
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    "deleted a log whose header a crash cut short while creating it (it never held a record)"
                );
                report.removed.push(path.clone());
            }
            Err(err) => tracing::warn!(
                path = %path.display(),
                %err,
                "a log whose header a crash cut short (it never held a record) could not be deleted; ignoring it"
            ),
        }
        report.torn.push((path, 0));
    }
    let mut max_version = 0;
    for c in &checked {
        max_version = max_version.max(c.header.seqs.iter().copied().max().unwrap_or(0));
        let mut at = c.start;
        while at < c.end {
            let (entry, next) = decode_entry(&c.bytes, at).expect("verified in pass 1");
            if let LogEntry::Write(record) = entry {
                max_version = max_version.max(record.seq);
                if record.db() >= store.databases() {
                    return Err(PersistenceError::TooFewDatabases {
                        path: c.path.clone(),
                        db: record.db(),
                        databases: store.databases(),
                        needed: record.db() + 1,
                    });
                }
            }
            at = next;
        }
    }
    store.raise_versions(max_version);

    // Pass 2: apply, oldest first.
    let snapshot_seqs = checked
        .first()
        .filter(|c| &c.header.magic == SNAPSHOT_MAGIC)
        .map(|c| (c.header.gen, c.header.seqs.clone()));
    let now_wall = wall_ms();
    let now_tick = store.clock().now();
    for c in &checked {
        // Records already inside the snapshot are skipped; that numbering is only shared by
        // files of the snapshot's own generation.
        let skip = snapshot_seqs
            .as_ref()
            .filter(|(gen, _)| &c.header.magic == LOG_MAGIC && c.header.base_gen == *gen)
            .map(|(_, seqs)| seqs);
        let apply = |record: &DiskRecord, report: &mut LoadReport| {
            if skip.is_some_and(|seqs| {
                seqs.get(record.slot())
                    .is_some_and(|&s| record.seq <= s)
            }) {
                return;
            }
            report.records += 1;
            let set = match &record.set {
                None => None,
                Some((0, value)) => Some((&value[..], crate::clock::NEVER)),
                Some((expires, value)) if *expires > now_wall => {
                    Some((&value[..], now_tick + (expires - now_wall)))
                }
                Some(_) => {
                    report.expired += 1;
                    None
                }
            };
            // Every record's database was checked in pass 1.
            store.restore_in(record.db(), &record.key, set);
        };
        let mut at = c.start;
        while at < c.end {
            let (entry, next) = decode_entry(&c.bytes, at).expect("verified in pass 1");
            let group_at = at;
            at = next;
            let members = match entry {
                LogEntry::Write(record) => {
                    apply(&record, &mut report);
                    continue;
                }
                LogEntry::GroupStart { members } => members,
            };
            // An atomic group: all of its writes, or none when the file ends before its last.
            let mut group = Vec::new();
            while group.len() < members as usize && at < c.end {
                match decode_entry(&c.bytes, at).expect("verified in pass 1") {
                    (LogEntry::Write(record), next) => {
                        group.push(record);
                        at = next;
                    }
                    (LogEntry::GroupStart { .. }, _) => {
                        // The log thread writes a group in one piece: a group inside another
                        // is damage, not an interrupted append.
                        return Err(PersistenceError::Corrupt {
                            path: c.path.clone(),
                            offset: at as u64,
                        });
                    }
                }
            }
            if group.len() < members as usize {
                tracing::warn!(
                    path = %c.path.display(),
                    offset = group_at,
                    written = group.len(),
                    members,
                    "dropping an atomic group the crash cut short (none of its writes is loaded)"
                );
                report.torn.push((c.path.clone(), group_at as u64));
                continue;
            }
            for record in &group {
                apply(record, &mut report);
            }
        }
        report.files.push(c.path.clone());
    }
    report.keys = store.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Reads `path`, checks its header and every record; returns where the valid records end, or
/// `None` for a log (`may_be_torn`) whose header a crash cut short.
fn check(
    path: &Path,
    magic: &[u8; 8],
    kind: &'static str,
    may_be_torn: bool,
    report: &mut LoadReport,
) -> Result<Option<Checked>, PersistenceError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let bad_header = || PersistenceError::BadHeader {
        path: path.to_path_buf(),
        kind,
        version: VERSION,
    };
    let Some((header, start)) = Header::decode(&bytes) else {
        if may_be_torn && is_torn_log_header(&bytes) {
            return Ok(None);
        }
        return Err(bad_header());
    };
    if &header.magic != magic {
        return Err(bad_header());
    }
    let scan = scan(&bytes, start, may_be_torn);
    tracing::debug!(path = %path.display(), checksummed = scan.checksummed, "file read");
    let at = scan.end;
    match scan.damage {
        None => {}
        Some(Damage::Corrupt) => {
            return Err(PersistenceError::Corrupt {
                path: path.to_path_buf(),
                offset: at as u64,
            })
        }
        Some(Damage::Torn) => {
            tracing::warn!(
                path = %path.display(),
                offset = at,
                dropped_bytes = bytes.len() - at,
                "dropping a torn record at the end of the log"
            );
            report.torn.push((path.to_path_buf(), at as u64));
        }
    }
    Ok(Some(Checked {
        path: path.to_path_buf(),
        end: at,
        bytes,
        header,
        start,
    }))
}

/// How a file's records end, when they do not end at the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// An interrupted append: dropped with a warning.
    Torn,
    /// Damage that valid records follow: start-up stops.
    Corrupt,
}

/// The outcome of reading a file's records.
#[derive(Debug)]
struct Scan {
    /// Where the valid records end (the damaged record's offset, if any).
    end: usize,
    /// What follows them, if anything.
    damage: Option<Damage>,
    /// Bytes checksummed on the way: the scan's cost, bounded by a small multiple of the
    /// file's length whatever the file holds.
    checksummed: u64,
}

/// Reads the records of `bytes` from `start` and judges the first damaged one, if any: torn or
/// corrupt as the module documentation defines them (`may_be_torn` false: always corrupt).
fn scan(bytes: &[u8], start: usize, may_be_torn: bool) -> Scan {
    let mut checksummed = 0u64;
    let mut at = start;
    while at < bytes.len() {
        let claim = claim_at(bytes, at);
        if let Claim::Whole { body, crc } = &claim {
            checksummed += body.len() as u64;
            if crc32c::crc32c(&bytes[body.clone()]) == *crc {
                at = body.end;
                continue;
            }
        }
        // Where records written after the damaged one would be. A record cut short by the end
        // of the file is the interrupted append itself: nothing follows it, and what its value
        // holds is never read as records. A whole record with a wrong checksum still names its
        // own end. A header that contradicts itself names nothing, so any later offset counts.
        let later = match claim {
            Claim::Cut => None,
            Claim::Whole { body, .. } => Some(body.end),
            Claim::Bogus => Some(at + 1),
        };
        let followed =
            later.is_some_and(|from| records_run_to_the_end(bytes, from, &mut checksummed));
        let damage = if followed || !may_be_torn {
            Damage::Corrupt
        } else {
            Damage::Torn
        };
        return Scan {
            end: at,
            damage: Some(damage),
            checksummed,
        };
    }
    Scan {
        end: at,
        damage: None,
        checksummed,
    }
}

/// Whether, from some offset at or after `from`, valid records follow each other up to the end
/// of `bytes`, or up to where the rest is a record cut short or zero bytes (the file's own torn
/// tail, or space allocated but never written).
///
/// Such a run exists exactly when a valid record at or after `from` ends there (the last record
/// of any run is one; one such record is a run), so only those are looked for. Linear: every
/// offset gets the constant-time [`claim_at`] check, and the claims that end where the file's
/// records end are checksummed through one pass of running CRCs, so no byte is checksummed
/// twice however many claims cover it.
fn records_run_to_the_end(bytes: &[u8], from: usize, checksummed: &mut u64) -> bool {
    let eof = bytes.len();
    if from >= eof {
        return false;
    }
    // The rest of the file is zero from `zeros` on.
    let zeros = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let ends_records = |at: usize| at >= zeros || claim_at(bytes, at) == Claim::Cut;
    let candidates: Vec<(std::ops::Range<usize>, u32)> = (from..eof)
        .filter_map(|at| match claim_at(bytes, at) {
            Claim::Whole { body, crc } if ends_records(body.end) => Some((body, crc)),
            _ => None,
        })
        .collect();
    if candidates.is_empty() {
        return false;
    }
    // Running CRC of `bytes[from..x]` at the start and end of every candidate's body.
    let mut marks: Vec<usize> = candidates
        .iter()
        .flat_map(|(body, _)| [body.start, body.end])
        .collect();
    marks.sort_unstable();
    marks.dedup();
    let mut running = Vec::with_capacity(marks.len());
    let (mut crc, mut at) = (0u32, from);
    for &mark in &marks {
        crc = crc32c::crc32c_append(crc, &bytes[at..mark]);
        *checksummed += (mark - at) as u64;
        at = mark;
        running.push(crc);
    }
    let running_at = |x: usize| running[marks.binary_search(&x).expect("a marked offset")];
    // Appending `n` bytes to data with CRC `c` gives `combine(c, 0, n) ^ crc(those bytes)`,
    // so a body's CRC follows from the running CRCs at its two ends.
    candidates.iter().any(|(body, crc)| {
        let whole = running_at(body.end);
        let before = crc32c::crc32c_combine(running_at(body.start), 0, body.len());
        whole ^ before == *crc
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::format::{encode_record, KIND_SET, MIN_BODY};

    /// A log body (no header): `values.len()` set records, one per value; returns the bytes and
    /// each record's offset.
    fn records(values: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for (i, value) in values.iter().enumerate() {
            offsets.push(bytes.len());
            let key = format!("key-{i}");
            encode_record(
                &mut bytes,
                0,
                i as u64 + 1,
                key.as_bytes(),
                Some((0, value)),
            );
        }
        (bytes, offsets)
    }

    /// A value made of `n` encoded records back to back, then a few bytes of padding.
    fn value_of_records(n: usize) -> Vec<u8> {
        let mut value = Vec::new();
        for i in 0..n {
            encode_record(
                &mut value,
                1,
                100 + i as u64,
                b"inner",
                Some((0, b"hidden")),
            );
        }
        value.extend_from_slice(b"padding");
        value
    }

    #[test]
    fn a_torn_record_whose_value_holds_records_is_torn_at_every_cut() {
        let values = vec![
            b"first".to_vec(),
            value_of_records(3),
            b"third".to_vec(),
            value_of_records(4),
        ];
        let (bytes, offsets) = records(&values);
        let last = offsets[3];
        for cut in last..bytes.len() {
            let s = scan(&bytes[..cut], 0, true);
            assert_eq!(
                (s.end, s.damage),
                (last, (cut > last).then_some(Damage::Torn)),
                "cut at {cut}"
            );
        }
        // The last record at full length but with a page of its value lost (zeros) before
        // the records its value holds: torn, not "followed by a valid record".
        let mut zeroed = bytes.clone();
        zeroed[last + 50..last + 70].fill(0);
        let s = scan(&zeroed, 0, true);
        assert_eq!((s.end, s.damage), (last, Some(Damage::Torn)));
        // Damage in a record that valid records follow (the second one, whose value also holds
        // records) is corruption, wherever in that record the damaged byte is.
        for (i, bit) in (offsets[1]..offsets[2]).flat_map(|i| (0..8).map(move |b| (i, b))) {
            let mut damaged = bytes.clone();
            damaged[i] ^= 1 << bit;
            let s = scan(&damaged, 0, true);
            assert_eq!(
                (s.end, s.damage),
                (offsets[1], Some(Damage::Corrupt)),
                "flip of bit {bit} at {i}"
            );
            // Also when the log then ends in a torn record.
            let s = scan(&damaged[..bytes.len() - 3], 0, true);
            assert_eq!(
                (s.end, s.damage),
                (offsets[1], Some(Damage::Corrupt)),
                "flip of bit {bit} at {i} with a torn tail"
            );
        }
    }

    /// A last record whose value is `fakes` record headers that agree with themselves (but not
    /// with any checksum), each claiming a body that ends `short` bytes before the file does.
    fn adversarial_tail(fakes: usize, short: usize) -> (Vec<u8>, usize) {
        const FAKE: usize = 8 + MIN_BODY + 12;
        let value_len = fakes * FAKE + 16;
        let mut value = Vec::with_capacity(value_len);
        let (mut bytes, offsets) = records(&[b"a".to_vec(), b"b".to_vec()]);
        let last = bytes.len();
        // The value starts after the last record's length, checksum and fixed body fields.
        let value_at = last + 8 + MIN_BODY + "key-2".len() + 12;
        let file_len = value_at + value_len;
        for i in 0..fakes {
            let at = value_at + i * FAKE;
            let body = file_len - short - at - 8;
            value.extend_from_slice(&(body as u32).to_le_bytes());
            value.extend_from_slice(&0xdead_beefu32.to_le_bytes());
            value.push(KIND_SET);
            value.extend_from_slice(&[0; 4 + 8]);
            value.extend_from_slice(&0u32.to_le_bytes());
            value.extend_from_slice(&[0; 8]);
            value.extend_from_slice(&((body - MIN_BODY - 12) as u32).to_le_bytes());
        }
        value.resize(value_len, 7);
        encode_record(&mut bytes, 0, 3, b"key-2", Some((0, &value)));
        assert_eq!(bytes.len(), file_len);
        let _ = offsets;
        (bytes, last)
    }

    #[test]
    fn the_damage_scan_checksums_each_byte_a_bounded_number_of_times() {
        let (bytes, last) = adversarial_tail(4000, 1);
        let len = bytes.len() as u64;
        // Cut inside the last record, where every fake header's body ends: a torn tail.
        let cut = &bytes[..bytes.len() - 1];
        let s = scan(cut, 0, true);
        assert_eq!((s.end, s.damage), (last, Some(Damage::Torn)));
        assert!(
            s.checksummed <= 3 * len,
            "checksummed {} bytes of a {len}-byte file",
            s.checksummed
        );
        // The last record whole but its length damaged: the scan looks for records after it,
        // through every fake header, and still reads each byte a bounded number of times.
        let (bytes, last) = adversarial_tail(4000, 0);
        let mut damaged = bytes.clone();
        damaged[last..last + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let s = scan(&damaged, 0, true);
        assert_eq!((s.end, s.damage), (last, Some(Damage::Torn)));
        assert!(
            s.checksummed <= 3 * len,
            "checksummed {} bytes of a {len}-byte file",
            s.checksummed
        );
    }
}
