//! The change stream: every accepted write, in each shard's sequence order, handed to the
//! registered [`ChangeSink`]s (the replica copies, the append-only log, and later network
//! followers).
//!
//! The store does not know what a sink does with a change. It calls the sinks inside the
//! shard's writer section, so each sink sees a shard's changes in sequence order, and it asks
//! them three more things that only they can answer: whether a write may proceed at all
//! ([`ChangeSink::admit`]: the log refuses writes it cannot record), whether an accepted write is
//! acknowledged under a policy ([`ChangeSink::poll_acknowledged`]: applied by every replica, on
//! disk), and to refuse writes from now on ([`ChangeSink::close`]: shutdown).
//!
//! A change names its database (one keyspace today: `0`) and says whether it belongs to an
//! atomic group: the writes of one multi-key call reach every sink together, in one
//! [`Published`], so a sink can keep them all-or-nothing (a log frames them, as Redis's AOF frames
//! `MULTI`/`EXEC`).
//!
//! Must never: call a sink outside the writer section of the change's shard, hand a sink one
//! shard's changes out of order, or let a sink's refusal leave a write half-made (admission is
//! asked before anything changes).

use std::task::{Context, Poll};

use super::{Record, StoreError};
use crate::clock::Tick;

/// One write: the key now holds a value, or is gone.
#[derive(Debug, Clone)]
pub enum Op {
    /// The key now holds this value and deadline (its version is the change's sequence number).
    Set {
        /// The key and value: the store's own record, shared (replica copies store the same
        /// immutable allocation, and a log encodes from it).
        record: Record,
        /// The deadline tick, or [`crate::clock::NEVER`].
        deadline: Tick,
    },
    /// The key was deleted, expired or evicted.
    Remove {
        /// The key.
        key: Box<[u8]>,
    },
}

impl Op {
    /// The key the write is about.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Set { record, .. } => record.key(),
            Op::Remove { key } => key,
        }
    }
}

/// One accepted write as the sinks see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The shard it happened in.
    pub shard: u32,
    /// The shard's sequence number it took (the key's new version for a set).
    pub seq: u64,
    /// The database (keyspace) index; the store has one today, `0`.
    pub db: u16,
    /// What happened.
    pub op: Op,
}

/// Which copy of a shard serves it, and which copies are out, at the moment of a change (read
/// inside the writer section, so stable for the change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The copy that serves reads and writes.
    pub primary: usize,
    /// Bit `c` set: copy `c` is failed (it serves nothing and takes no changes)...
    pub failed: u64,
    /// ...unless its bit is also set here: a failed copy being rebuilt takes changes again.
    pub joining: u64,
}

impl Roles {
    /// Whether copy `copy` (not the primary) is to receive this shard's changes.
    #[inline]
    pub fn receives(&self, copy: usize) -> bool {
        let excluded = self.failed & !self.joining;
        copy != self.primary && excluded & (1 << copy) == 0
    }

    /// Whether copy `copy` is a replica in service: not the primary, not failed.
    #[inline]
    pub fn serves_as_replica(&self, copy: usize) -> bool {
        copy != self.primary && self.failed & (1 << copy) == 0
    }
}

/// What the sinks are handed for one call of the store: one change, or the changes of an atomic
/// group (a multi-key write), each with its shard's roles.
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    changes: &'a [Change],
    roles: &'a [Roles],
    group: bool,
}

impl<'a> Published<'a> {
    pub(crate) fn one(change: &'a Change, roles: &'a Roles) -> Self {
        Published {
            changes: std::slice::from_ref(change),
            roles: std::slice::from_ref(roles),
            group: false,
        }
    }

    pub(crate) fn group(changes: &'a [Change], roles: &'a [Roles]) -> Self {
        debug_assert_eq!(changes.len(), roles.len());
        Published {
            changes,
            roles,
            group: true,
        }
    }

    /// Whether these changes form an atomic group (all of them or none must survive).
    pub fn is_group(&self) -> bool {
        self.group
    }

    /// The changes, in the order they were made, each with its shard's roles.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a Change, Roles)> + 'a {
        self.changes.iter().zip(self.roles.iter().copied())
    }

    /// The changes alone.
    pub fn changes(&self) -> &'a [Change] {
        self.changes
    }
}

/// What a write asks of the store before it changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A set that will take the shard's sequence numbers up to this one (its versions).
    Versions(u64),
    /// A removal (it hands out no version).
    Removal,
}

/// When a write counts as acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckPolicy {
    /// Once the primary has it (and, where the log syncs every write, once it is on disk).
    #[default]
    Primary,
    /// Once every live replica has applied it too.
    AllReplicas,
}

/// What an acknowledgement is still waiting for (to name a time-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckWait {
    /// The write reaching the disk.
    Durable,
    /// Every live replica applying the write.
    Replicated,
}

/// A consumer of the change stream.
///
/// Every method but [`ChangeSink::poll_acknowledged`] runs inside a shard's writer section, so
/// it must be quick and must never block or wait for another shard.
pub trait ChangeSink: Send + Sync + 'static {
    /// What this sink's acknowledgement waits for.
    fn waits_for(&self) -> AckWait;

    /// Refuses a write before anything changes (inside the writer section of `shard`).
    fn admit(&self, shard: usize, admission: Admission) -> Result<(), StoreError> {
        let _ = (shard, admission);
        Ok(())
    }

    /// Takes changes (inside the writer sections of their shards), in each shard's order.
    fn publish(&self, published: Published<'_>);

    /// The shard's sequence number was raised to `seq` without a change (start-up, before
    /// loading): everything up to it counts as seen.
    fn versions_raised(&self, shard: usize, seq: u64) {
        let _ = (shard, seq);
    }

    /// Whether change `seq` of `shard` is acknowledged under `policy`; if not, registers `cx`'s
    /// waker to be woken when that may have changed. An error means it never will be.
    /// `roles` reads the shard's roles now: a sink that depends on them re-reads them on every
    /// check, so a failover between two checks cannot leave it waiting for a copy that left.
    fn poll_acknowledged(
        &self,
        cx: &mut Context<'_>,
        shard: usize,
        seq: u64,
        roles: &dyn Fn() -> Roles,
        policy: AckPolicy,
    ) -> Poll<Result<(), StoreError>>;

    /// Refuses every later write (shutdown). The store then takes every writer section once, so
    /// no write admitted before is still being published when it returns.
    fn close(&self) {}
}

/// The most sinks a store takes (replicas, a log, and room for followers).
pub const MAX_SINKS: usize = 4;

/// The registered sinks, in registration order. Registered at start-up; read lock-free by every
/// write (an acquire load per sink).
pub(crate) struct Sinks {
    slots: [std::sync::OnceLock<std::sync::Arc<dyn ChangeSink>>; MAX_SINKS],
    registering: crate::sync::Mutex<()>,
}

impl Sinks {
    pub(crate) fn new() -> Self {
        Sinks {
            slots: Default::default(),
            registering: crate::sync::Mutex::new(()),
        }
    }

    /// Adds `sink` after the others. Writes that start after this returns publish to it.
    pub(crate) fn register(
        &self,
        sink: std::sync::Arc<dyn ChangeSink>,
    ) -> Result<(), TooManySinks> {
        let _one_at_a_time = crate::sync::lock(&self.registering);
        let free = self
            .slots
            .iter()
            .find(|s| s.get().is_none())
            .ok_or(TooManySinks)?;
        free.set(sink).map_err(|_| TooManySinks)
    }

    /// The registered sinks.
    #[inline]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn ChangeSink> {
        self.slots.iter().map_while(|s| s.get().map(|s| &**s))
    }

    /// Whether no sink is registered.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.slots[0].get().is_none()
    }
}

/// A store takes at most [`MAX_SINKS`] sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a store takes at most {MAX_SINKS} change sinks")]
pub struct TooManySinks;
