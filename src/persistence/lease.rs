//! The version lease file: a limit no shard's sequence number (and so no version handed out as
//! an `ETag`) may pass until a higher limit is on disk.
//!
//! Why: with `--fsync everysec` or `no`, a crash loses acknowledged writes, and their versions
//! are above anything on disk. Restarting from the highest version on disk would hand those
//! versions out again, so a client's old `ETag` could match a different value. Restarting above
//! the lease instead never repeats a version. The lease is written ahead of use in every fsync
//! mode, and renewed by the log thread long before it runs out (`LogSink::admit`).
//!
//! Format: `lease.skv` holds two 32-byte slots, written alternately with a positional write and
//! `fdatasync`, so a torn write damages at most the slot being written and the other still holds
//! the previous limit. A slot: magic (8 bytes), a counter (8), the limit (8), CRC-32C of the
//! first 24 bytes (4), zero padding (4). The valid slot with the higher counter wins.
//!
//! Must never: publish a limit before it is synced, or write both slots at once.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::PersistenceError;
use crate::faults::{self, Point};

const MAGIC: &[u8; 8] = b"SKVLEASE";
const SLOT: usize = 32;
const NAME: &str = "lease.skv";

/// The lease file of a data directory, open for renewals.
pub struct LeaseFile {
    file: File,
    path: PathBuf,
    /// The counter of the last slot written.
    counter: u64,
}

fn encode(counter: u64, limit: u64) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..16].copy_from_slice(&counter.to_le_bytes());
    slot[16..24].copy_from_slice(&limit.to_le_bytes());
    let crc = crc32c::crc32c(&slot[..24]);
    slot[24..28].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// `(counter, limit)` of a valid slot.
fn decode(slot: &[u8]) -> Option<(u64, u64)> {
    if slot.len() < SLOT || &slot[..8] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(slot[24..28].try_into().ok()?);
    if crc32c::crc32c(&slot[..24]) != crc {
        return None;
    }
    let counter = u64::from_le_bytes(slot[8..16].try_into().ok()?);
    let limit = u64::from_le_bytes(slot[16..24].try_into().ok()?);
    Some((counter, limit))
}

/// The newest valid `(counter, limit)` in `bytes`, if any.
fn newest(bytes: &[u8]) -> Option<(u64, u64)> {
    bytes.chunks(SLOT).take(2).filter_map(decode).max()
}

/// The limit stored in `dir`'s lease file: every version handed out before the last stop or
/// crash is at most this (0 when there is no lease file yet).
pub fn read_limit(dir: &Path) -> Result<u64, PersistenceError> {
    let path = dir.join(NAME);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(newest(&bytes).map_or(0, |(_, limit)| limit)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(PersistenceError::Io { path, source }),
    }
}

impl LeaseFile {
    /// Opens (or creates) `dir`'s lease file.
    pub fn open(dir: &Path) -> Result<LeaseFile, PersistenceError> {
        let path = dir.join(NAME);
        let io = |source| PersistenceError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let bytes = std::fs::read(&path).map_err(io)?;
        let counter = newest(&bytes).map_or(0, |(counter, _)| counter);
        Ok(LeaseFile {
            file,
            path,
            counter,
        })
    }

    /// Writes `limit` into the slot not holding the newest lease and syncs it. Only once this
    /// returns may versions up to `limit` be handed out.
    pub fn write(&mut self, limit: u64) -> std::io::Result<()> {
        let counter = self.counter + 1;
        let offset = (counter % 2) * SLOT as u64;
        faults::check(Point::LogWrite)?;
        self.file.write_all_at(&encode(counter, limit), offset)?;
        faults::check(Point::LogSync)?;
        self.file.sync_data()?;
        self.counter = counter;
        Ok(())
    }

    /// The file's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_slot_is_ignored() {
        let dir = std::env::temp_dir().join(format!("shardkv-lease-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join(NAME));
        assert_eq!(read_limit(&dir).unwrap(), 0);
        let mut lease = LeaseFile::open(&dir).unwrap();
        lease.write(100).unwrap();
        lease.write(200).unwrap();
        assert_eq!(read_limit(&dir).unwrap(), 200);
        let mut lease = LeaseFile::open(&dir).unwrap();
        lease.write(300).unwrap();
        assert_eq!(read_limit(&dir).unwrap(), 300);
        // Tear the newest slot: the previous limit stands.
        let mut bytes = std::fs::read(dir.join(NAME)).unwrap();
        let newest_at = ((lease.counter % 2) as usize) * SLOT;
        bytes[newest_at + 17] ^= 0xff;
        std::fs::write(dir.join(NAME), &bytes).unwrap();
        assert_eq!(read_limit(&dir).unwrap(), 200);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
