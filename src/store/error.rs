//! What a write may require of a key's current state ([`Condition`]), and why the store refuses
//! a request ([`StoreError`]).
//!
//! These are the rules every protocol shares: sizes, the memory limit, a deadline the store can
//! represent, and a condition on the key's version. A protocol's own rules (HTTP refuses an empty
//! key and caps TTLs; Redis does neither) stay in its adapter.
//!
//! Must never: describe a refusal after which anything was changed: every error here is raised
//! before the write touches the map.

/// Why the store refused a request. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key is longer than the configured maximum.
    #[error("key is {len} bytes; the maximum is {max} bytes (--max-key-bytes)")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value is larger than the configured maximum.
    #[error("value is {len} bytes; the maximum is {max} bytes (--max-value-bytes)")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Storing this would take the store past its memory limit.
    #[error("memory limit reached: about {used} of --max-memory {limit} bytes are in use; reads and deletes still work, delete keys or raise the limit to write more")]
    MemoryFull {
        /// Estimated bytes in use (all copies).
        used: u64,
        /// The limit.
        limit: u64,
    },
    /// A TTL of zero was given.
    #[error("ttl must be positive")]
    TtlNotPositive,
    /// A conditional write found a different state than it required.
    #[error("precondition failed: the key's current version is {}", current.map_or("none (absent)".to_string(), |v| v.to_string()))]
    PreconditionFailed {
        /// The key's live version, or `None` when absent.
        current: Option<u64>,
    },
    /// The append-only log cannot be written, so writes are refused (as Redis's MISCONF).
    #[error("writes are refused because the append-only log cannot be written ({reason}); reads still work, and writes resume by themselves once a log write and a snapshot succeed (check free space and the disk under --data-dir)")]
    LogUnavailable {
        /// The I/O error and the file it happened on.
        reason: String,
    },
    /// The server is shutting down and takes no more writes.
    #[error("the server is shutting down and accepts no more writes; retry once it is back")]
    ShuttingDown,
    /// A transaction wrote a key it had not declared (a defect in the protocol layer; nothing
    /// was changed by that write).
    #[error("internal error: a transaction wrote a key it had not declared; nothing was changed by that write")]
    UndeclaredKey,
}

/// What a conditional write requires of the key's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    /// Write whatever is there.
    #[default]
    Always,
    /// Write only if the key is live with exactly this version (`If-Match`).
    IfVersion(u64),
    /// Write only if the key is absent or expired (`If-None-Match: *`).
    IfAbsent,
    /// Write only if the key is live, whatever its version (`If-Match: *`).
    IfPresent,
    /// Write only if the key is live with one of these versions (`If-Match` with a list).
    IfVersionIn(Versions),
    /// Write only if the key is absent or expired, or live with none of these versions
    /// (`If-None-Match` with entity tags).
    IfNoneOf(Versions),
}

impl Condition {
    /// Whether the condition holds for a key whose live version is `live` (`None`: absent or
    /// expired).
    pub fn holds(&self, live: Option<u64>) -> bool {
        match self {
            Condition::Always => true,
            Condition::IfVersion(v) => live == Some(*v),
            Condition::IfAbsent => live.is_none(),
            Condition::IfPresent => live.is_some(),
            Condition::IfVersionIn(set) => live.is_some_and(|v| set.contains(v)),
            Condition::IfNoneOf(set) => live.is_none_or(|v| !set.contains(v)),
        }
    }
}

/// The most versions a [`Versions`] list holds.
pub const MAX_CONDITION_VERSIONS: usize = 16;

/// A short list of versions (the entity tags of one conditional header), kept inline so a
/// [`Condition`] stays `Copy` and costs no allocation inside the writer section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    len: usize,
    items: [u64; MAX_CONDITION_VERSIONS],
}

impl Versions {
    /// An empty list (a condition on it never matches a version).
    pub const fn new() -> Versions {
        Versions {
            len: 0,
            items: [0; MAX_CONDITION_VERSIONS],
        }
    }

    /// Adds `version`; returns `false` (and changes nothing) when the list is full.
    pub fn push(&mut self, version: u64) -> bool {
        if self.len == MAX_CONDITION_VERSIONS {
            return false;
        }
        self.items[self.len] = version;
        self.len += 1;
        true
    }

    /// Whether `version` is in the list.
    pub fn contains(&self, version: u64) -> bool {
        self.as_slice().contains(&version)
    }

    /// The versions, in the order they were added.
    pub fn as_slice(&self) -> &[u64] {
        &self.items[..self.len]
    }
}
