//! Start-up: load the newest snapshot, replay the logs after it, and report.
//!
//! Files are read whole and checked before anything is applied: every record's checksum is
//! verified and the highest version on disk found, so a corrupt file stops start-up before the
//! store holds a partial state, and new versions can start above every old one.
//!
//! Torn vs corrupt: a damaged record with no valid record after it in its file is a torn write
//! (the crash interrupted an append): it and the rest of the file are dropped with a warning. A
//! damaged record followed by a valid one is corruption: start-up stops naming file and offset.
//!
//! Must never: apply a record it has not verified, or resurrect a key whose TTL passed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::format::{decode_record, parse_name, Header, LOG_MAGIC, SNAPSHOT_MAGIC, VERSION};
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
    /// Torn tails dropped: file and the offset where the tail began.
    pub torn: Vec<(PathBuf, u64)>,
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
        checked.push(c);
    }
    let last_log = logs.last().copied();
    for gen in logs {
        let path = super::format::log_path(dir, gen);
        match check(&path, LOG_MAGIC, "log", true, &mut report) {
            Ok(c) => checked.push(c),
            // A log whose header never fully reached the disk (crash while creating it).
            Err(PersistenceError::BadHeader { .. })
                if Some(gen) == last_log
                    && std::fs::metadata(&path).is_ok_and(|m| m.len() < 64) =>
            {
                tracing::warn!(path = %path.display(), "dropping a log whose header was torn");
                report.torn.push((path, 0));
            }
            Err(e) => return Err(e),
        }
    }
    let mut max_version = 0;
    for c in &checked {
        max_version = max_version.max(c.header.seqs.iter().copied().max().unwrap_or(0));
        let mut at = c.start;
        while at < c.end {
            let (record, next) = decode_record(&c.bytes, at).expect("verified in pass 1");
            max_version = max_version.max(record.seq);
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
        let mut at = c.start;
        while at < c.end {
            let (record, next) = decode_record(&c.bytes, at).expect("verified in pass 1");
            at = next;
            if skip.is_some_and(|seqs| {
                seqs.get(record.shard as usize)
                    .is_some_and(|&s| record.seq <= s)
            }) {
                continue;
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
            store.restore(&record.key, set);
        }
        report.files.push(c.path.clone());
    }
    report.keys = store.len();
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Reads `path`, checks its header and every record; returns where the valid records end.
fn check(
    path: &Path,
    magic: &[u8; 8],
    kind: &'static str,
    may_be_torn: bool,
    report: &mut LoadReport,
) -> Result<Checked, PersistenceError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let bad_header = || PersistenceError::BadHeader {
        path: path.to_path_buf(),
        kind,
        version: VERSION,
    };
    let (header, start) = Header::decode(&bytes).ok_or_else(bad_header)?;
    if &header.magic != magic {
        return Err(bad_header());
    }
    let mut at = start;
    while at < bytes.len() {
        match decode_record(&bytes, at) {
            Some((_, next)) => at = next,
            None => {
                let followed = (at + 1..bytes.len()).any(|p| decode_record(&bytes, p).is_some());
                if followed || !may_be_torn {
                    return Err(PersistenceError::Corrupt {
                        path: path.to_path_buf(),
                        offset: at as u64,
                    });
                }
                tracing::warn!(
                    path = %path.display(),
                    offset = at,
                    dropped_bytes = bytes.len() - at,
                    "dropping a torn record at the end of the log"
                );
                report.torn.push((path.to_path_buf(), at as u64));
                break;
            }
        }
    }
    Ok(Checked {
        path: path.to_path_buf(),
        end: at,
        bytes,
        header,
        start,
    })
}
