//! Durability (opt-in with `--data-dir`): an append-only log of every write plus snapshots, so
//! a restart loses nothing that was acknowledged.
//!
//! ## Path of a write
//! Inside the shard's writer section the store hands each write (set, delete, expiry) to the
//! [`LogSink`]: a bounded lock-free queue, like a replica's. One log thread drains it in order,
//! appends the records to the current log file and, per `--fsync`, calls `fdatasync`:
//! - `always`: after every batch, before the batch's writes are acknowledged. Concurrent writers
//!   share one sync (group commit); a request waits on [`Durable`] without blocking a worker.
//! - `everysec`: at most once a second (a power loss loses about the last second).
//! - `no`: never; the OS writes back when it likes.
//!
//! ## Snapshots and rotation
//! A snapshot starts a new generation: the log thread switches to `log-<g+1>`, then a snapshot
//! thread copies each shard inside its writer section and writes `snapshot-<g+1>` (to a temporary
//! name, synced, then renamed), after which files of older generations are deleted. Every record
//! of `log-<g>` happened before the switch and so is inside the snapshot. Snapshots run at
//! start-up (after loading), on `POST /admin/snapshot`, when the log has grown past 64 MiB and
//! past the last snapshot's size, and when the queue overflowed: a writer
//! never waits for the disk; a record that does not fit is dropped and the snapshot that follows
//! covers it (acknowledgements under `always` wait for that snapshot).
//!
//! ## Start-up
//! [`recovery::recover`] loads the newest snapshot and replays the logs after it, skipping keys
//! whose TTL passed while the server was down, before the server listens. A damaged record that
//! runs to the end of its file is a torn write and is dropped with a warning; one followed by a
//! valid record is corruption and stops start-up with the file and offset.
//!
//! Must never: acknowledge an `always` write before it is on disk, lose a record silently, or
//! load a partial state without saying so.

//!
//! ## Failures
//! A failed `write` or `fdatasync` of the log ends that file: nothing is appended to it again,
//! its unsynced records count as dropped (a later successful sync proves nothing about them),
//! and writes are refused (like Redis's MISCONF) until a new log generation exists and a snapshot
//! taken after it has landed. Reads keep working. Failing snapshots and log creations are
//! retried with a backoff.
//!
//! ## Version leases
//! No version above the limit in `lease.skv` is handed out; the log thread renews the limit
//! ahead of use, and start-up begins above it ([`lease`]), so versions never repeat across a
//! crash whatever the fsync mode.
//!
//! Only [`progress`] (the hold-and-publish rule) builds under the loom models; the file I/O
//! around it does not.

pub mod progress;

crate::not_under_loom! {
    pub mod format;
    pub mod lease;
    pub mod recovery;
    mod sink;
    mod writer;

    use std::path::PathBuf;

    pub use sink::{Durable, LogHealth, LogSink};
    pub use writer::{LogThread, DEFAULT_LEASE};
}

/// When the log is synced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncMode {
    /// After every batch, before acknowledging it.
    Always,
    /// About once a second.
    EverySec,
    /// Never (the OS decides).
    No,
}

crate::not_under_loom! {
    /// How long the log thread sleeps when its queue is empty, unless a writer wakes it. Bounds how
    /// long a write waits in memory before it reaches the OS when the fsync mode is not `always`.
    pub(crate) const IDLE_WAKE: std::time::Duration = std::time::Duration::from_millis(5);

    /// Why persistence could not start or load.
    #[derive(Debug, thiserror::Error)]
    pub enum PersistenceError {
        /// A file operation failed.
        #[error("{path}: {source}")]
        Io {
            /// The file or directory.
            path: PathBuf,
            /// The error.
            source: std::io::Error,
        },
        /// A record in the middle of a file is damaged (a valid record follows it).
        #[error("{path}: corrupt record at byte offset {offset} (a valid record follows it, so this is not a torn write); refusing to start with a partial state: restore the file from a backup or move it away")]
        Corrupt {
            /// The file.
            path: PathBuf,
            /// Where the damaged record starts.
            offset: u64,
        },
        /// A file's header is damaged or of an unknown format.
        #[error(
            "{path}: not a shardkv {kind} file of format version {version} (bad or damaged header)"
        )]
        BadHeader {
            /// The file.
            path: PathBuf,
            /// "log" or "snapshot".
            kind: &'static str,
            /// The version this build reads.
            version: u32,
        },
        /// A file holds keys of a database this server does not have.
        #[error("{path}: holds keys of database {db}, but this server has {databases} databases; start it with --databases {needed} or more")]
        TooFewDatabases {
            /// The file.
            path: PathBuf,
            /// The database the file names.
            db: usize,
            /// The databases this server has.
            databases: usize,
            /// The databases needed.
            needed: usize,
        },
    }
}
