//! The on-disk format of logs and snapshots: a header, then length-prefixed records, each
//! with its own CRC-32C.
//!
//! ```text
//! file    := header records*
//! header  := magic[8] version:u32 gen:u64 base_gen:u64 shards:u32 seqs:u64*shards crc:u32
//! record  := len:u32 crc:u32 body[len]             (crc = CRC-32C of body)
//! body    := kind:u8 shard:u32 seq:u64 key_len:u32 key [expires_unix_ms:u64 value_len:u32 value]
//! ```
//! In a set or a removal, `shard` packs two numbers: its low 16 bits are the shard in the file's
//! numbering (which the header's `seqs` index), its high 16 bits the database the key lives in
//! (0 in files written before there were several).
//! All integers are little-endian. `kind` 1 is a set (its body has the expiry and value; an
//! expiry of 0 means none), 2 a removal, 3 the start of an atomic group: the next `shard`
//! records (its `seq` is 0, its key empty) are the writes of one multi-key call, which recovery
//! applies all together or, when the file ends before the last of them, not at all (as Redis's
//! AOF drops a `MULTI` the crash cut short). Logs only; snapshots hold no groups. A log's `seqs` are empty (`shards` = 0 there is not
//! used: its `shards` is the numbering it shares with its base snapshot) — see `recovery`.
//!
//! Besides decoding, this module judges bytes without checksumming them ([`claim_at`],
//! [`is_torn_log_header`]): recovery uses these cheap, constant-time checks to tell a write the
//! crash cut short from damage, and to skip the checksum wherever the bytes cannot be a record.
//!
//! Must never: accept a record whose checksum does not match.

use std::path::{Path, PathBuf};

/// Format version written in every header.
pub const VERSION: u32 = 1;
/// Magic of a log file.
pub const LOG_MAGIC: &[u8; 8] = b"SKVLOG\0\x01";
/// Magic of a snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"SKVSNP\0\x01";
/// A set record.
pub const KIND_SET: u8 = 1;
/// A removal record.
pub const KIND_REMOVE: u8 = 2;
/// The start of an atomic group (the `shard` field counts the records that follow in it).
pub const KIND_GROUP: u8 = 3;
/// The largest record body accepted when reading (larger lengths are damage).
pub const MAX_BODY: usize = 1 << 31;
/// The smallest record body: a removal with an empty key.
pub const MIN_BODY: usize = 1 + 4 + 8 + 4;
/// Length of a header without sequence numbers (every log's header).
pub const LOG_HEADER_LEN: usize = 8 + 4 + 8 + 8 + 4 + 4 + 4;

/// A file header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Which kind of file.
    pub magic: [u8; 8],
    /// The file's generation (its number in the file name).
    pub gen: u64,
    /// The snapshot generation whose shard numbering and sequence numbers this file shares.
    pub base_gen: u64,
    /// Shards in that numbering.
    pub shards: u32,
    /// Snapshots only: each shard's sequence number at the snapshot.
    pub seqs: Vec<u64>,
}

impl Header {
    /// The header's encoded bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + 8 * self.seqs.len());
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.gen.to_le_bytes());
        out.extend_from_slice(&self.base_gen.to_le_bytes());
        out.extend_from_slice(&self.shards.to_le_bytes());
        out.extend_from_slice(&(self.seqs.len() as u32).to_le_bytes());
        for seq in &self.seqs {
            out.extend_from_slice(&seq.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a header at the start of `buf`; returns it and its length.
    pub fn decode(buf: &[u8]) -> Option<(Header, usize)> {
        let mut r = Reader { buf, at: 0 };
        let magic: [u8; 8] = r.bytes(8)?.try_into().ok()?;
        if r.u32()? != VERSION {
            return None;
        }
        let gen = r.u64()?;
        let base_gen = r.u64()?;
        let shards = r.u32()?;
        let n = r.u32()? as usize;
        if n > 1 << 20 {
            return None;
        }
        let seqs = (0..n).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
        let end = r.at;
        let crc = r.u32()?;
        (crc32c::crc32c(&buf[..end]) == crc).then_some((
            Header {
                magic,
                gen,
                base_gen,
                shards,
                seqs,
            },
            r.at,
        ))
    }
}

/// The `shard` field of a set or removal: the database in the high 16 bits, the shard in the
/// low 16 (the store has at most 2^16 shards in all).
pub fn shard_field(db: u16, shard: u32) -> u32 {
    (u32::from(db) << 16) | (shard & 0xffff)
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRecord {
    /// The shard field: the shard in the file's numbering and the database (see
    /// [`shard_field`]).
    pub shard: u32,
    /// The write's sequence number (the entry's version).
    pub seq: u64,
    /// The key.
    pub key: Vec<u8>,
    /// `Some((expires_unix_ms, value))` for a set (0 = no expiry), `None` for a removal.
    pub set: Option<(u64, Vec<u8>)>,
}

impl DiskRecord {
    /// The shard in the file's numbering (see [`shard_field`]).
    pub fn slot(&self) -> usize {
        (self.shard & 0xffff) as usize
    }

    /// The database the key lives in (see [`shard_field`]).
    pub fn db(&self) -> usize {
        (self.shard >> 16) as usize
    }
}

/// Appends one encoded record to `out`.
pub fn encode_record(
    out: &mut Vec<u8>,
    shard: u32,
    seq: u64,
    key: &[u8],
    set: Option<(u64, &[u8])>,
) {
    let body_len = 1 + 4 + 8 + 4 + key.len() + set.map_or(0, |(_, v)| 8 + 4 + v.len());
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body_at = out.len();
    out.push(if set.is_some() { KIND_SET } else { KIND_REMOVE });
    out.extend_from_slice(&shard.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    if let Some((expires, value)) = set {
        out.extend_from_slice(&expires.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    let crc = crc32c::crc32c(&out[body_at..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the start of an atomic group of `members` records (which the caller appends next).
pub fn encode_group_start(out: &mut Vec<u8>, members: u32) {
    out.extend_from_slice(&(MIN_BODY as u32).to_le_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let body_at = out.len();
    out.push(KIND_GROUP);
    out.extend_from_slice(&members.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32c::crc32c(&out[body_at..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Whether `buf` holds a log header that a crash cut short while the file was being created:
/// shorter than a full log header and agreeing with this format's log magic and version as far
/// as it goes, or no longer than a full header and all zero bytes (space the file system
/// allocated but whose data never landed). A full-length header with another magic or version
/// is not torn: it is a file of another kind or format.
pub fn is_torn_log_header(buf: &[u8]) -> bool {
    if buf.len() > LOG_HEADER_LEN {
        return false;
    }
    if buf.iter().all(|&b| b == 0) {
        return true;
    }
    let mut expected = LOG_MAGIC.to_vec();
    expected.extend_from_slice(&VERSION.to_le_bytes());
    let n = buf.len().min(expected.len());
    buf.len() < LOG_HEADER_LEN && buf[..n] == expected[..n]
}

/// What the bytes at an offset claim to be, judged from the record's length, kind, key length
/// and value length alone (constant time, no checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A record header whose fields agree with each other, whose body lies in the buffer at
    /// `body` and should have checksum `crc`. Whether it is a record depends on that checksum.
    Whole {
        /// Where the body lies; its end is where the next record would start.
        body: std::ops::Range<usize>,
        /// The checksum the header names.
        crc: u32,
    },
    /// The beginning of a record, consistent as far as it goes, that the buffer's end cuts
    /// short: what an append the crash interrupted leaves behind.
    Cut,
    /// Nothing this format writes starts here (a length out of range, an unknown kind, or
    /// lengths that contradict each other).
    Bogus,
}

/// Judges the bytes at `buf[at..]` without checksumming them; see [`Claim`].
pub fn claim_at(buf: &[u8], at: usize) -> Claim {
    let Some(rest) = buf.get(at..) else {
        return Claim::Bogus;
    };
    // Reads a little-endian integer at `off` in the rest, if the buffer holds all of it.
    let word = |off: usize, n: usize| -> Option<u64> {
        let bytes = rest.get(off..off.checked_add(n)?)?;
        Some(
            bytes
                .iter()
                .rev()
                .fold(0, |acc, &b| (acc << 8) | u64::from(b)),
        )
    };
    let Some(len) = word(0, 4) else {
        // Fewer than four bytes: any of them can begin a length.
        return Claim::Cut;
    };
    let len = len as usize;
    if !(MIN_BODY..=MAX_BODY).contains(&len) {
        return Claim::Bogus;
    }
    // Body fields as far as the buffer holds them; each must agree with `len`.
    const BODY: usize = 8;
    match rest.get(BODY) {
        None | Some(&KIND_SET) | Some(&KIND_REMOVE) | Some(&KIND_GROUP) => {}
        Some(_) => return Claim::Bogus,
    }
    if let Some(key_len) = word(BODY + 13, 4) {
        let key_len = key_len as usize;
        if rest[BODY] == KIND_GROUP {
            if key_len != 0 || len != MIN_BODY {
                return Claim::Bogus;
            }
        } else if rest[BODY] == KIND_REMOVE {
            if len != MIN_BODY + key_len {
                return Claim::Bogus;
            }
        } else {
            let Some(fixed) = (MIN_BODY + 12).checked_add(key_len) else {
                return Claim::Bogus;
            };
            if len < fixed {
                return Claim::Bogus;
            }
            if let Some(value_len) = word(BODY + MIN_BODY + key_len + 8, 4) {
                if len - fixed != value_len as usize {
                    return Claim::Bogus;
                }
            }
        }
    }
    let body_start = at + BODY;
    match body_start.checked_add(len) {
        Some(end) if end <= buf.len() => Claim::Whole {
            body: body_start..end,
            crc: u32::from_le_bytes(rest[4..8].try_into().expect("four bytes")),
        },
        _ => Claim::Cut,
    }
}

/// What a log holds at an offset: a write, or the start of an atomic group of writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A set or a removal.
    Write(DiskRecord),
    /// The next `members` entries are one atomic group.
    GroupStart {
        /// How many writes the group holds.
        members: u32,
    },
}

/// Decodes the entry at `buf[at..]` (a write or a group start) and where the next one starts,
/// or `None` when there is no valid entry there.
pub fn decode_entry(buf: &[u8], at: usize) -> Option<(LogEntry, usize)> {
    let Claim::Whole { body, crc } = claim_at(buf, at) else {
        return None;
    };
    if buf.get(body.start) != Some(&KIND_GROUP) {
        return decode_record(buf, at).map(|(record, next)| (LogEntry::Write(record), next));
    }
    let next = body.end;
    let body = &buf[body];
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let mut b = Reader { buf: body, at: 0 };
    b.bytes(1)?;
    let members = b.u32()?;
    (b.u64()? == 0 && b.u32()? == 0 && b.at == body.len())
        .then_some((LogEntry::GroupStart { members }, next))
}

/// Decodes the record at `buf[at..]`: the record and where the next one starts, or `None`
/// when there is no valid record there (short, bad length, bad checksum or bad body; a group
/// start is not a record: see [`decode_entry`]).
pub fn decode_record(buf: &[u8], at: usize) -> Option<(DiskRecord, usize)> {
    let Claim::Whole { body, crc } = claim_at(buf, at) else {
        return None;
    };
    let next = body.end;
    let body = &buf[body];
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let mut b = Reader { buf: body, at: 0 };
    let kind = b.bytes(1)?[0];
    let shard = b.u32()?;
    let seq = b.u64()?;
    let key_len = b.u32()? as usize;
    let key = b.bytes(key_len)?.to_vec();
    let set = match kind {
        KIND_SET => {
            let expires = b.u64()?;
            let value_len = b.u32()? as usize;
            Some((expires, b.bytes(value_len)?.to_vec()))
        }
        KIND_REMOVE => None,
        _ => return None,
    };
    (b.at == body.len()).then_some((
        DiskRecord {
            shard,
            seq,
            key,
            set,
        },
        next,
    ))
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.buf.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
}

/// `snapshot-<gen>.skv` in `dir`.
pub fn snapshot_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("snapshot-{gen:016}.skv"))
}

/// `log-<gen>.skv` in `dir`.
pub fn log_path(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("log-{gen:016}.skv"))
}

/// The generation in a file name made by [`snapshot_path`] or [`log_path`].
pub fn parse_name(name: &str) -> Option<(bool, u64)> {
    let (is_snapshot, rest) = if let Some(rest) = name.strip_prefix("snapshot-") {
        (true, rest)
    } else {
        (false, name.strip_prefix("log-")?)
    };
    let gen = rest.strip_suffix(".skv")?.parse().ok()?;
    Some((is_snapshot, gen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_any_damage_is_detected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 3, 42, b"key", Some((123, b"value")));
        let first = buf.len();
        encode_record(&mut buf, 1, 43, b"gone", None);
        let (a, next) = decode_record(&buf, 0).unwrap();
        assert_eq!(next, first);
        assert_eq!(
            a,
            DiskRecord {
                shard: 3,
                seq: 42,
                key: b"key".to_vec(),
                set: Some((123, b"value".to_vec()))
            }
        );
        let (b, end) = decode_record(&buf, next).unwrap();
        assert_eq!(end, buf.len());
        assert_eq!(b.set, None);
        for i in 0..first {
            let mut damaged = buf.clone();
            damaged[i] ^= 0x40;
            assert!(
                decode_record(&damaged, 0).is_none(),
                "flip at {i} went unnoticed"
            );
        }
        for cut in 0..first {
            assert!(decode_record(&buf[..cut], 0).is_none());
            // A record cut anywhere claims to be cut, never nonsense: recovery relies on it.
            assert_eq!(claim_at(&buf[..cut], 0), Claim::Cut, "cut at {cut}");
        }
        assert!(matches!(claim_at(&buf, 0), Claim::Whole { body, .. } if body == (8..first)));
    }

    #[test]
    fn only_a_short_prefix_of_a_log_header_or_zeros_is_a_torn_header() {
        let header = Header {
            magic: *LOG_MAGIC,
            gen: 3,
            base_gen: 3,
            shards: 2,
            seqs: Vec::new(),
        }
        .encode();
        assert_eq!(header.len(), LOG_HEADER_LEN);
        for cut in 0..LOG_HEADER_LEN {
            assert!(is_torn_log_header(&header[..cut]), "cut at {cut}");
        }
        assert!(!is_torn_log_header(&header), "a whole header is not torn");
        assert!(is_torn_log_header(&[0; LOG_HEADER_LEN]));
        assert!(!is_torn_log_header(&[0; LOG_HEADER_LEN + 1]));
        assert!(!is_torn_log_header(&SNAPSHOT_MAGIC[..6]));
        let mut other_version = header[..20].to_vec();
        other_version[8] = 2;
        assert!(!is_torn_log_header(&other_version));
    }

    #[test]
    fn headers_round_trip() {
        let h = Header {
            magic: *SNAPSHOT_MAGIC,
            gen: 7,
            base_gen: 7,
            shards: 2,
            seqs: vec![10, 20],
        };
        let bytes = h.encode();
        assert_eq!(Header::decode(&bytes), Some((h, bytes.len())));
        let mut bad = bytes.clone();
        bad[12] ^= 1;
        assert_eq!(Header::decode(&bad), None);
        assert_eq!(parse_name("snapshot-0000000000000007.skv"), Some((true, 7)));
        assert_eq!(parse_name("log-0000000000000012.skv"), Some((false, 12)));
        assert_eq!(parse_name("log-x.skv"), None);
    }
}
