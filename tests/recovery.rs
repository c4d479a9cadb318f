//! Start-up recovery after crashes at awkward moments: a log whose header a crash cut short is
//! dropped and deleted wherever it sits among the logs (while a whole header of another format
//! still stops start-up), and a torn last record is torn whatever its value holds, even bytes
//! that are themselves encoded records.

mod common;

use common::{contents, new_store};

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use shardkv::persistence::format::{
    decode_record, encode_record, log_path, Header, LOG_HEADER_LEN, LOG_MAGIC, SNAPSHOT_MAGIC,
};
use shardkv::persistence::recovery::recover;
use shardkv::persistence::{FsyncMode, LogThread, PersistenceError};
use shardkv::store::{Condition, LockFreeShard, ShardedStore};
use std::sync::Arc;

fn log_header(gen: u64) -> Vec<u8> {
    Header {
        magic: *LOG_MAGIC,
        gen,
        base_gen: gen,
        shards: 4,
        seqs: Vec::new(),
    }
    .encode()
}

/// Writes `log-<gen>` as the log thread does: a header, then one record per write
/// (`(key, Some(value))` a set, `(key, None)` a removal), sequence numbers from `first_seq`.
fn write_log(dir: &Path, gen: u64, first_seq: u64, writes: &[(&str, Option<&str>)]) {
    let mut bytes = log_header(gen);
    for (i, (key, value)) in writes.iter().enumerate() {
        let set = value.map(|v| (0, v.as_bytes()));
        encode_record(&mut bytes, 0, first_seq + i as u64, key.as_bytes(), set);
    }
    std::fs::write(log_path(dir, gen), bytes).unwrap();
}

/// Logs `store`'s writes into `dir` from generation `gen` on, with `--fsync always`.
fn start_log(store: &Arc<ShardedStore<LockFreeShard>>, dir: &Path, gen: u64) -> LogThread {
    LogThread::start(
        store.clone(),
        dir.to_path_buf(),
        gen,
        FsyncMode::Always,
        1 << 10,
    )
    .unwrap()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all: Vec<_> = items
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    all.sort();
    all
}

/// What a crash while creating a log can leave in its place: nothing, part of the header, or
/// (a file system that allocated the space but never wrote it) zeros.
fn torn_headers() -> Vec<(&'static str, Vec<u8>)> {
    let full = log_header(2);
    assert_eq!(full.len(), LOG_HEADER_LEN);
    vec![
        ("empty", Vec::new()),
        ("part of the magic", full[..5].to_vec()),
        ("magic and version", full[..12].to_vec()),
        ("one byte short", full[..LOG_HEADER_LEN - 1].to_vec()),
        ("zeros, full length", vec![0; LOG_HEADER_LEN]),
        ("zeros, short", vec![0; 17]),
    ]
}

#[test]
fn a_log_whose_header_was_torn_is_dropped_and_deleted_wherever_it_is() {
    for (name, torn) in torn_headers() {
        // First run: log 1 holds writes; the crash came while log 2 was being created.
        // Second run (started at generation 3): more writes in log 3, then a crash before its
        // start-up snapshot replaced the older generations. A torn log 4 on top of that.
        let dir = common::temp_dir("torn-header");
        write_log(
            &dir,
            1,
            1,
            &[("a", Some("1")), ("b", Some("2")), ("c", Some("3"))],
        );
        std::fs::write(log_path(&dir, 2), &torn).unwrap();
        write_log(
            &dir,
            3,
            10,
            &[("a", Some("10")), ("b", None), ("d", Some("4"))],
        );
        std::fs::write(log_path(&dir, 4), &torn).unwrap();

        let store = new_store();
        let report = recover(&dir, &store).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            contents(&store),
            pairs(&[("a", "10"), ("c", "3"), ("d", "4")]),
            "{name}"
        );
        assert_eq!(
            report.removed,
            vec![log_path(&dir, 2), log_path(&dir, 4)],
            "{name}"
        );
        assert_eq!(
            report.torn,
            vec![(log_path(&dir, 2), 0), (log_path(&dir, 4), 0)],
            "{name}"
        );
        assert!(!log_path(&dir, 2).exists(), "{name}: log 2 was not deleted");
        assert!(!log_path(&dir, 4).exists(), "{name}: log 4 was not deleted");
        assert_eq!(report.next_gen, 5, "{name}: generations are never reused");
        assert_eq!(report.files, vec![log_path(&dir, 1), log_path(&dir, 3)]);

        // The directory then opens normally, and again after the next run.
        let log = start_log(&store, &dir, report.next_gen);
        store
            .set(b"e", Bytes::from_static(b"5"), None, Condition::Always)
            .unwrap();
        drop(log);
        let again = new_store();
        let report = recover(&dir, &again).unwrap();
        assert!(report.torn.is_empty(), "{name}: {:?}", report.torn);
        assert_eq!(
            contents(&again),
            pairs(&[("a", "10"), ("c", "3"), ("d", "4"), ("e", "5")]),
            "{name}"
        );
    }
}

#[test]
fn a_whole_log_header_of_another_kind_or_version_still_stops_start_up() {
    let full = log_header(2);
    // The same header, but of format version 2 (checksum made to match).
    let mut version_2 = full[..LOG_HEADER_LEN - 4].to_vec();
    version_2[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32c::crc32c(&version_2);
    version_2.extend_from_slice(&crc.to_le_bytes());
    // A snapshot's header under a log's name.
    let snapshot = Header {
        magic: *SNAPSHOT_MAGIC,
        gen: 2,
        base_gen: 2,
        shards: 4,
        seqs: Vec::new(),
    }
    .encode();
    // A full header with a flipped bit (its checksum no longer matches).
    let mut flipped = full.clone();
    flipped[20] ^= 4;
    let mut short_foreign = b"PK\x03\x04".to_vec();
    short_foreign.resize(20, 1);
    let cases = [
        ("format version 2", version_2),
        ("a snapshot header", snapshot),
        ("a damaged full header", flipped),
        ("a short file of another kind", short_foreign),
    ];
    for (name, header) in cases {
        for newest in [true, false] {
            let dir = common::temp_dir("foreign-header");
            write_log(&dir, 1, 1, &[("a", Some("1"))]);
            std::fs::write(log_path(&dir, 2), &header).unwrap();
            if !newest {
                write_log(&dir, 3, 10, &[("b", Some("2"))]);
            }
            let store = new_store();
            match recover(&dir, &store) {
                Err(PersistenceError::BadHeader { path, kind, .. }) => {
                    assert_eq!((path, kind), (log_path(&dir, 2), "log"), "{name}");
                }
                other => panic!("{name} (newest: {newest}): expected BadHeader, got {other:?}"),
            }
            assert!(store.is_empty(), "{name}: nothing is loaded");
            assert_eq!(
                std::fs::read(log_path(&dir, 2)).unwrap(),
                header,
                "{name}: a refused file is left as it was"
            );
        }
    }
}

#[test]
fn a_torn_last_record_whose_value_is_an_encoded_record_is_dropped_at_every_cut() {
    let dir = common::temp_dir("record-in-value");
    // A value that is itself a whole encoded record (of another key), then a little more.
    let mut value = Vec::new();
    encode_record(
        &mut value,
        0,
        7,
        b"inner",
        Some((0, b"looks like a record")),
    );
    let inner_len = value.len();
    value.extend_from_slice(b" and more");
    {
        let store = new_store();
        let report = recover(&dir, &store).unwrap();
        let log = start_log(&store, &dir, report.next_gen);
        // Wait for the start-up snapshot so every record below lands in one log.
        common::wait_for_first_snapshot(&log);
        for (key, v) in [("k0", &b"zero"[..]), ("k1", b"one"), ("k2", &value)] {
            store
                .set(
                    key.as_bytes(),
                    Bytes::copy_from_slice(v),
                    None,
                    Condition::Always,
                )
                .unwrap();
        }
    }
    let names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| PathBuf::from(e.unwrap().file_name()))
        .collect();
    let log_name = names
        .iter()
        .find(|p| p.to_string_lossy().starts_with("log-"))
        .unwrap();
    let snapshot_name = names
        .iter()
        .find(|p| p.to_string_lossy().starts_with("snapshot-"))
        .unwrap();
    let bytes = std::fs::read(dir.join(log_name)).unwrap();
    let (_, mut at) = Header::decode(&bytes).unwrap();
    let mut offsets = Vec::new();
    while at < bytes.len() {
        offsets.push(at);
        at = decode_record(&bytes, at).unwrap().1;
    }
    assert_eq!(offsets.len(), 3);
    let (last, middle) = (offsets[2], offsets[1]);
    let inner_at = bytes[last..]
        .windows(inner_len)
        .position(|w| w == &value[..inner_len])
        .unwrap()
        + last;

    let copy_with_log = |log: &[u8]| {
        let copy = common::temp_dir("record-in-value-copy");
        std::fs::copy(dir.join(snapshot_name), copy.join(snapshot_name)).unwrap();
        std::fs::write(copy.join(log_name), log).unwrap();
        copy
    };
    for cut in last + 1..bytes.len() {
        let copy = copy_with_log(&bytes[..cut]);
        let store = new_store();
        let report = recover(&copy, &store).unwrap_or_else(|e| {
            panic!(
                "cut at {cut} (the value's record ends at {}): {e}",
                inner_at + inner_len
            )
        });
        assert_eq!(
            contents(&store),
            pairs(&[("k0", "zero"), ("k1", "one")]),
            "cut at {cut}"
        );
        assert_eq!(
            report.torn,
            vec![(copy.join(log_name), last as u64)],
            "cut at {cut}"
        );
    }
    // The whole record reads back, value and all.
    let store = new_store();
    recover(&copy_with_log(&bytes), &store).unwrap();
    assert_eq!(store.get(b"k2").found().unwrap().value(), &value[..]);
    assert!(store.get(b"inner").found().is_none());

    // A flipped byte in the middle record, whatever follows, is still corruption, named.
    for tail in [bytes.len(), inner_at + inner_len] {
        let mut corrupt = bytes[..tail].to_vec();
        corrupt[middle + 12] ^= 0xff;
        let copy = copy_with_log(&corrupt);
        match recover(&copy, &new_store()) {
            Err(PersistenceError::Corrupt { path, offset }) => {
                assert_eq!((path, offset), (copy.join(log_name), middle as u64));
            }
            other => panic!("log cut at {tail}: expected corruption, got {other:?}"),
        }
    }
}

/// A multi-key write reaches the log as one atomic group: cut anywhere inside it (the crash
/// came while appending it), recovery loads none of its writes, and the writes before it; whole,
/// all of them.
#[test]
fn an_atomic_group_the_crash_cut_short_is_dropped_whole_at_every_cut() {
    use shardkv::persistence::format::encode_group_start;
    let mut bytes = log_header(1);
    encode_record(&mut bytes, 0, 1, b"before", Some((0, b"0")));
    let group_at = bytes.len();
    encode_group_start(&mut bytes, 3);
    for (i, key) in ["g1", "g2", "g3"].iter().enumerate() {
        encode_record(
            &mut bytes,
            i as u32,
            2 + i as u64,
            key.as_bytes(),
            Some((0, b"v")),
        );
    }
    let whole = bytes.len();
    encode_record(&mut bytes, 0, 9, b"after", Some((0, b"9")));
    let after_end = bytes.len();
    for cut in group_at..=after_end {
        let dir = common::temp_dir("torn-group");
        std::fs::write(log_path(&dir, 1), &bytes[..cut]).unwrap();
        let store = new_store();
        let report = recover(&dir, &store).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let expected: &[(&str, &str)] = if cut < whole {
            &[("before", "0")]
        } else if cut < after_end {
            &[("before", "0"), ("g1", "v"), ("g2", "v"), ("g3", "v")]
        } else {
            &[
                ("after", "9"),
                ("before", "0"),
                ("g1", "v"),
                ("g2", "v"),
                ("g3", "v"),
            ]
        };
        assert_eq!(contents(&store), pairs(expected), "cut at {cut}");
        // Every cut but the entry boundaries leaves something dropped.
        assert_eq!(
            report.torn.is_empty(),
            cut == group_at || cut == whole || cut == after_end,
            "cut at {cut}: {:?}",
            report.torn
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `set_many` goes through the real log thread as one group: its records sit behind one group
/// start, and a restart loads the batch.
#[test]
fn set_many_is_logged_as_one_group_and_loads_after_a_restart() {
    use shardkv::persistence::format::{decode_entry, LogEntry};
    let dir = common::temp_dir("logged-group");
    let store = new_store();
    let report = recover(&dir, &store).unwrap();
    let log = start_log(&store, &dir, report.next_gen);
    let items: Vec<(String, &[u8], Option<Duration>)> = (0..20)
        .map(|i| (format!("batch{i}"), &b"x"[..], None))
        .collect();
    let receipt = store.set_many(&items).unwrap();
    assert_eq!(receipt.versions.len(), 20);
    drop(log);

    let bytes = std::fs::read(log_path(&dir, report.next_gen)).unwrap();
    let (_, mut at) = Header::decode(&bytes).unwrap();
    let mut entries = Vec::new();
    while let Some((entry, next)) = decode_entry(&bytes, at) {
        entries.push(entry);
        at = next;
    }
    assert_eq!(at, bytes.len(), "the log ends in a whole entry");
    assert_eq!(entries.first(), Some(&LogEntry::GroupStart { members: 20 }));
    assert_eq!(
        entries.len(),
        21,
        "one group start and the batch's 20 writes"
    );

    let restarted = new_store();
    recover(&dir, &restarted).unwrap();
    assert_eq!(contents(&restarted), contents(&store));
    assert_eq!(restarted.len(), 20);
}
