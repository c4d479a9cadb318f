//! Transactions: reads and writes on several keys, in any databases, that no other writer can
//! interleave with.
//!
//! A [`Transaction`] holds the writer sections of every shard its declared keys live in, taken
//! in ascending shard order (as `set_many` takes them, so two transactions never deadlock), for
//! its whole life. Inside, a read sees the primary as it stands, the transaction's own writes
//! included, and each write is applied at once and its change kept. [`Transaction::commit`] (or
//! dropping the transaction) publishes the changes to the sinks as one atomic group, which the
//! log keeps all-or-nothing, and then releases the sections.
//!
//! Every protocol command that reads and then writes (Redis's `INCR`, `APPEND`, `RENAME`,
//! `SET ... GET`, a `MULTI`/`EXEC` block) is one transaction, so it is atomic to every other
//! writer, HTTP included. Readers are not held: a lock-free reader may see a transaction's first
//! write before its last (the price of reads that never wait).
//!
//! Admission: the sinks are asked once per shard, up front, for as many versions as keys were
//! declared in that shard (a command writes each of its keys at most once), so a log that cannot
//! record refuses the transaction before anything changes. A write past that count asks again.
//!
//! Must never: write a shard whose section it does not hold, publish outside the sections, or
//! apply a write it does not publish.

use std::collections::BTreeMap;

use super::change::{Admission, Change, Published, Roles};
use super::receipt::BatchReceipt;
use super::{Condition, Found, Record, Shard, ShardedStore, StoreError};
use crate::clock::Tick;
use crate::sync::MutexGuard;

/// The writer sections of a set of shards, held until commit; see the module doc.
pub struct Transaction<'a, S: Shard> {
    store: &'a ShardedStore<S>,
    /// `(shard, section, versions admitted up to)`, sorted by shard.
    held: Vec<(usize, MutexGuard<'a, u64>, u64)>,
    changes: Vec<Change>,
    roles: Vec<Roles>,
}

impl<S: Shard> ShardedStore<S> {
    /// Starts a transaction over the shards of `keys` (`(database, key)` pairs; repeats count
    /// once per write they stand for) and of every shard of the databases in `whole_dbs` (for a
    /// flush inside a transaction). Blocks until every section is free.
    pub fn transaction<'k>(
        &self,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
        whole_dbs: impl IntoIterator<Item = usize>,
    ) -> Result<Transaction<'_, S>, StoreError> {
        let mut per_shard = BTreeMap::<usize, u64>::new();
        for (db, key) in keys {
            self.limits().check_key(key)?;
            *per_shard.entry(self.shard_in(db, key)).or_default() += 1;
        }
        for db in whole_dbs {
            for shard in self.shards_of_db(db) {
                per_shard.entry(shard).or_default();
            }
        }
        let mut held = Vec::with_capacity(per_shard.len());
        for (shard, count) in per_shard {
            let seq = self.section(shard);
            let admitted = *seq + count;
            self.admit(shard, Admission::Versions(admitted))?;
            held.push((shard, seq, admitted));
        }
        Ok(Transaction {
            store: self,
            held,
            changes: Vec::new(),
            roles: Vec::new(),
        })
    }
}

impl<'a, S: Shard> Transaction<'a, S> {
    /// The store.
    pub fn store(&self) -> &'a ShardedStore<S> {
        self.store
    }

    /// The current tick (read inside the sections, so stable against the writes seen).
    pub fn now(&self) -> Tick {
        self.store.clock().now()
    }

    /// Reads `key` in `db`: its live value, version and deadline (an expired entry is absent).
    pub fn get(&self, db: usize, key: &[u8]) -> Option<Found> {
        let shard = self.store.shard_in(db, key);
        let now = self.now();
        self.store.slots[shard]
            .primary_map()
            .read(key, |entry| match entry {
                Some((record, e)) if !e.is_expired(now) => {
                    self.store.touch(record, now);
                    Some(Found {
                        record: record.clone(),
                        version: e.version,
                        deadline: e.deadline,
                    })
                }
                _ => None,
            })
    }

    /// Stores `value` under `key` in `db` with `deadline` (must be in the future;
    /// [`crate::clock::NEVER`] for none), checking the size and memory limits. Returns the
    /// key's new version.
    ///
    /// Under an evicting policy the memory limit is not checked here: a transaction holds
    /// writer sections, where nothing may be evicted, so its caller makes room before it
    /// starts (as Redis evicts before each command and then runs it), and the write may take
    /// the estimate past the cap by its own size until the next write evicts.
    pub fn set(
        &mut self,
        db: usize,
        key: &[u8],
        value: &[u8],
        deadline: Tick,
    ) -> Result<u64, StoreError> {
        self.store.limits().check(key, value.len())?;
        if !self.store.eviction_policy().evicts() {
            self.store
                .check_memory(super::write::data_bytes(key, value.len(), deadline), 1)?;
        }
        self.set_record(db, Record::new(key, value), deadline)
    }

    /// Stores an existing record (its key and value, shared, not copied) in `db` with
    /// `deadline`: a new TTL on an unchanged value (`EXPIRE`, `PERSIST`) costs no copy. Checks
    /// only the memory limit, and only when the key is not already there.
    pub fn set_record(
        &mut self,
        db: usize,
        record: Record,
        deadline: Tick,
    ) -> Result<u64, StoreError> {
        let shard = self.store.shard_in(db, record.key());
        let at = self.position(shard)?;
        let store = self.store;
        let (_, seq, admitted) = &mut self.held[at];
        if **seq >= *admitted {
            store.admit(shard, Admission::Versions(**seq + 1))?;
            *admitted = **seq + 1;
        }
        let (change, roles) =
            store.write_in_section(seq, shard, record, deadline, Condition::Always)?;
        let version = change.seq;
        self.changes.push(change);
        self.roles.push(roles);
        Ok(version)
    }

    /// Removes `key` from `db`. Returns whether a live entry was removed (an expired one is
    /// removed too, but reported as absent).
    pub fn remove(&mut self, db: usize, key: &[u8]) -> Result<bool, StoreError> {
        let shard = self.store.shard_in(db, key);
        let at = self.position(shard)?;
        let store = self.store;
        let (_, seq, _) = &mut self.held[at];
        // Admitted up front (a removal hands out no version).
        let Some((removal, live)) =
            store.remove_in_section(seq, shard, key, Condition::Always, false)?
        else {
            return Ok(false);
        };
        self.changes.push(store.removal_change(shard, removal, key));
        self.roles.push(store.slots[shard].roles());
        Ok(live)
    }

    /// Every live key of `db`'s shards (held by a transaction that declared the whole
    /// database).
    pub fn keys_of_db(&self, db: usize) -> Result<Vec<Record>, StoreError> {
        let now = self.now();
        let mut keys = Vec::new();
        for shard in self.store.shards_of_db(db) {
            self.position(shard)?;
            self.store.slots[shard]
                .primary_map()
                .for_each(|record, entry| {
                    if !entry.is_expired(now) {
                        keys.push(record.clone());
                    }
                });
        }
        Ok(keys)
    }

    /// Publishes the changes as one atomic group and releases the sections. The receipt
    /// waits for every change's acknowledgement.
    pub fn commit(mut self) -> BatchReceipt<'a, S> {
        self.publish();
        let mut last = BTreeMap::new();
        for change in &self.changes {
            last.insert(change.shard as usize, change.seq);
        }
        let versions = self.changes.iter().map(|c| c.seq).collect();
        BatchReceipt::new(self.store, versions, last.into_iter().collect())
    }

    /// Where `shard`'s section is in `held`.
    fn position(&self, shard: usize) -> Result<usize, StoreError> {
        self.held
            .binary_search_by_key(&shard, |(s, _, _)| *s)
            .map_err(|_| StoreError::UndeclaredKey)
    }

    /// Hands the changes made so far to the sinks (at most once: they are kept for the
    /// receipt, and the roles list is emptied).
    fn publish(&mut self) {
        if self.roles.is_empty() {
            return;
        }
        match self.changes.as_slice() {
            [one] => self.store.publish(Published::one(one, &self.roles[0])),
            changes => self.store.publish(Published::group(changes, &self.roles)),
        }
        self.roles.clear();
    }
}

impl<S: Shard> Drop for Transaction<'_, S> {
    /// A transaction dropped without `commit` (an error part-way) still publishes what it
    /// applied: the map already holds it.
    fn drop(&mut self) {
        self.publish();
    }
}
