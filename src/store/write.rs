//! The write path: validation, the writer section, and publishing each change to the sinks.
//!
//! Each shard has a sequence number; every accepted write (set, delete, expiry) takes the next
//! one, and it becomes the entry's version. Writers to one shard pass through a short writer
//! section (a mutex per shard) that covers: asking the sinks to admit the write, checking a
//! condition, taking the sequence number, writing the map, arming the expiry timer and
//! publishing the change. This is the answer to the ordering trap of a lock-free map: with
//! `fetch_add` then insert, two writers of one key could land in the map in the opposite order
//! to their sequence numbers. Under the section, map order = sequence order = the order the
//! sinks see. Reads never enter it, so they stay lock-free with `LockFreeShard`.
//!
//! A multi-key write ([`ShardedStore::set_many`]) holds the sections of every shard it touches,
//! taken in ascending shard order (the only place that holds two: no deadlock), and publishes
//! its changes as one atomic group.
//!
//! Must never: change anything when a request is refused (every check happens before the map
//! is written), or publish a shard's changes out of sequence order.

use std::collections::BTreeMap;
use std::time::Duration;

use super::change::{Admission, Change, Op, Published, Roles};
use super::receipt::{BatchReceipt, Receipt};
use super::{eviction, Condition, Entry, Record, Shard, ShardedStore, StoreError};
use crate::clock::{Tick, NEVER};
use crate::sync::{lock, MutexGuard, Ordering};

impl<S: Shard> ShardedStore<S> {
    /// Stores `value` under `key`, with an optional TTL, if `condition` holds. A write without
    /// a TTL removes any earlier TTL (as Redis `SET` does). Returns the write's receipt (its
    /// version, and the way to wait for its acknowledgement).
    pub fn set(
        &self,
        key: &[u8],
        value: impl AsRef<[u8]>,
        ttl: Option<Duration>,
        condition: Condition,
    ) -> Result<Receipt<'_, S>, StoreError> {
        let deadline = self.deadline_for(ttl)?;
        self.set_in(0, key, value.as_ref(), deadline, condition)
    }

    /// [`ShardedStore::set`] in database `db`, with an absolute deadline ([`NEVER`] for none).
    /// The deadline should be in the future: a protocol that accepts one already reached (Redis's
    /// `SET ... PXAT` in the past) turns it into a delete first.
    pub fn set_in(
        &self,
        db: usize,
        key: &[u8],
        value: &[u8],
        deadline: Tick,
        condition: Condition,
    ) -> Result<Receipt<'_, S>, StoreError> {
        self.limits().check(key, value.len())?;
        self.make_room(data_bytes(key, value.len(), deadline), 1)?;
        // The one copy of the value: out of the request, into the store's own allocation.
        let record = Record::new(key, value);
        let shard = self.shard_in(db, key);
        let mut seq = self.section(shard);
        self.admit(shard, Admission::Versions(*seq + 1))?;
        let (change, roles) =
            self.write_in_section(&mut seq, shard, record, deadline, condition)?;
        self.publish(Published::one(&change, &roles));
        Ok(Receipt::new(self, shard, change.seq))
    }

    /// Stores every `(key, value, ttl)` of a batch, or none of them: every item is validated
    /// and the memory limit is checked once, for the whole batch, before the first write; the
    /// writes then go through without checking memory again (as Redis checks `maxmemory` once
    /// per command), so other writers cannot make the batch stop half-way. The writer sections
    /// of every shard the batch touches are held for the whole batch, the sinks admit the batch
    /// once per shard, and its changes reach them as one atomic group, so neither a log failure
    /// nor shutdown can split it. Readers are not held: a reader may see some items before the
    /// others.
    pub fn set_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        items: &[(K, V, Option<Duration>)],
    ) -> Result<BatchReceipt<'_, S>, StoreError> {
        self.set_many_in(0, items)
    }

    /// [`ShardedStore::set_many`] in database `db`.
    pub fn set_many_in<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        db: usize,
        items: &[(K, V, Option<Duration>)],
    ) -> Result<BatchReceipt<'_, S>, StoreError> {
        let mut total_bytes = 0u64;
        // Each item's shard and deadline, worked out once, before any section is taken.
        let mut planned = Vec::with_capacity(items.len());
        // Every shard the batch writes to, with how many versions it takes there.
        let mut per_shard = BTreeMap::<usize, u64>::new();
        for (key, value, ttl) in items {
            let (key, value) = (key.as_ref(), value.as_ref());
            self.limits().check(key, value.len())?;
            let shard = self.shard_in(db, key);
            let deadline = self.deadline_for(*ttl)?;
            planned.push((shard, deadline));
            *per_shard.entry(shard).or_default() += 1;
            total_bytes = total_bytes.saturating_add(data_bytes(key, value.len(), deadline));
        }
        self.make_room(total_bytes, items.len() as u64)?;
        // Hold those shards' writer sections for the whole batch, in ascending order, and ask
        // the sinks once per shard, so they cannot refuse half-way through either.
        let mut sections = BTreeMap::new();
        for (&shard, &count) in &per_shard {
            let seq = self.section(shard);
            self.admit(shard, Admission::Versions(*seq + count))?;
            sections.insert(shard, seq);
        }
        let mut changes = Vec::with_capacity(items.len());
        let mut roles = Vec::with_capacity(items.len());
        // The last sequence number taken in each shard: acknowledging it covers the others.
        let mut last = BTreeMap::new();
        for ((key, value, _), &(shard, deadline)) in items.iter().zip(&planned) {
            let record = Record::new(key.as_ref(), value.as_ref());
            let seq = sections.get_mut(&shard).expect("locked above");
            let (change, role) =
                self.write_in_section(seq, shard, record, deadline, Condition::Always)?;
            last.insert(shard, change.seq);
            changes.push(change);
            roles.push(role);
        }
        self.publish(Published::group(&changes, &roles));
        drop(sections);
        let versions = changes.iter().map(|c| c.seq).collect();
        Ok(BatchReceipt::new(
            self,
            versions,
            last.into_iter().collect(),
        ))
    }

    /// Removes `key`. Returns whether a live entry was removed (an expired one is removed
    /// too, but reported as absent, as Redis `DEL` does).
    pub fn delete(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.delete_if(key, Condition::Always)?.is_some())
    }

    /// Removes `key` if it is live and `condition` holds for it, judged inside the writer
    /// section. Returns the removal's receipt, or `None` when no live entry was there (an
    /// expired one is removed but reported as absent). An absent key is absent whatever the
    /// condition: as RFC 9110 §13.2.1 has it, a request that would fail anyway ignores its
    /// preconditions.
    pub fn delete_if(
        &self,
        key: &[u8],
        condition: Condition,
    ) -> Result<Option<Receipt<'_, S>>, StoreError> {
        self.delete_if_in(0, key, condition)
    }

    /// [`ShardedStore::delete_if`] in database `db`.
    pub fn delete_if_in(
        &self,
        db: usize,
        key: &[u8],
        condition: Condition,
    ) -> Result<Option<Receipt<'_, S>>, StoreError> {
        self.limits().check_key(key)?;
        let shard = self.shard_in(db, key);
        Ok(self
            .remove(shard, key, condition)?
            .map(|seq| Receipt::new(self, shard, seq)))
    }

    /// Loads one record from disk at start-up: a set with its absolute deadline (a deadline
    /// already passed removes the key), or a removal. Bypasses the size limits (what was stored
    /// stays loadable if the limits shrink) and takes a fresh version, above every version on
    /// disk once [`ShardedStore::raise_versions`] has run.
    pub fn restore(&self, key: &[u8], set: Option<(&[u8], Tick)>) {
        self.restore_in(0, key, set);
    }

    /// [`ShardedStore::restore`] into database `db`; a database the store does not have (the
    /// server was restarted with fewer) is refused, and `false` returned.
    pub fn restore_in(&self, db: usize, key: &[u8], set: Option<(&[u8], Tick)>) -> bool {
        if db >= self.databases() {
            return false;
        }
        let shard = self.shard_in(db, key);
        match set {
            Some((value, deadline)) if deadline > self.clock().now() => {
                let mut seq = self.section(shard);
                // Condition::Always cannot fail.
                if let Ok((change, roles)) = self.write_in_section(
                    &mut seq,
                    shard,
                    Record::new(key, value),
                    deadline,
                    Condition::Always,
                ) {
                    self.publish(Published::one(&change, &roles));
                }
            }
            _ => {
                // Condition::Always cannot fail.
                let _ = self.remove(shard, key, Condition::Always);
            }
        }
        true
    }

    /// Makes every shard's next version greater than `floor` (start-up, before restoring), so
    /// versions never repeat across a restart and a stale `ETag` can never match again. The
    /// sinks count everything up to it as seen (replica copies are as empty as their primaries).
    pub fn raise_versions(&self, floor: u64) {
        for shard in 0..self.shard_count() {
            let mut seq = self.section(shard);
            *seq = (*seq).max(floor);
            self.slots[shard]
                .write
                .last_seq
                .store(*seq, Ordering::Release);
            for sink in self.sinks.iter() {
                sink.versions_raised(shard, *seq);
            }
        }
    }

    /// Refuses every later write ("shutting down"), then waits until no write admitted before
    /// is still inside its writer section: after this returns, nothing new reaches a sink.
    pub fn close_writes(&self) {
        for sink in self.sinks.iter() {
            sink.close();
        }
        for shard in 0..self.shard_count() {
            drop(self.section(shard));
        }
    }

    /// The writer section of `shard`; holds its last sequence number.
    pub(crate) fn section(&self, shard: usize) -> MutexGuard<'_, u64> {
        lock(&self.slots[shard].write.section)
    }

    /// The deadline of a write with `ttl` (none: [`NEVER`]).
    pub(crate) fn deadline_for(&self, ttl: Option<Duration>) -> Result<Tick, StoreError> {
        match ttl {
            None => Ok(NEVER),
            Some(ttl) if ttl.is_zero() => Err(StoreError::TtlNotPositive),
            Some(ttl) => Ok(self.clock().deadline_after(ttl)),
        }
    }

    /// Asks every sink to admit a write to `shard` (inside its writer section).
    pub(crate) fn admit(&self, shard: usize, admission: Admission) -> Result<(), StoreError> {
        for sink in self.sinks.iter() {
            sink.admit(shard, admission)?;
        }
        Ok(())
    }

    /// A set inside `shard`'s writer section (`seq` is the section's sequence number), already
    /// admitted. Returns the change to publish and the shard's roles.
    pub(crate) fn write_in_section(
        &self,
        seq: &mut u64,
        shard: usize,
        record: Record,
        deadline: Tick,
        condition: Condition,
    ) -> Result<(Change, Roles), StoreError> {
        let key = record.key();
        let value_len = record.value_len();
        let slot = &self.slots[shard];
        // Read inside the section: a `now` read before waiting for the lock could judge a key
        // live that expired while this writer waited.
        let now = self.clock().now();
        let version = *seq + 1;
        // One lookup: the condition is checked, and the pending timer inherited, on the entry
        // the map hands to `compute` (stable: writers of this shard are serialised here).
        let old = slot.primary_map().try_upsert(record.clone(), |current| {
            let live_version = current.filter(|e| e.deadline > now).map(|e| e.version);
            if !condition.holds(live_version) {
                return Err(StoreError::PreconditionFailed {
                    current: live_version,
                });
            }
            // One pending timer per key: inherit the current one if it fires no later than
            // ours (a write without TTL keeps tracking it too, so TTL/no-TTL alternation costs
            // nothing).
            let inherited = current.map_or(NEVER, |e| e.timer_at());
            let entry = Entry::new(version, deadline);
            entry.set_timer_at(inherited.min(deadline));
            Ok(entry)
        })?;
        *seq = version;
        // The access word: now, or the replaced key's frequency plus this access.
        let policy = self.eviction_policy();
        record.set_access(eviction::access::word_for_write(
            policy,
            old.map(|m| m.access),
            now,
        ));
        let inherited = old.map_or(NEVER, |m| m.timer_at);
        let timer_at = inherited.min(deadline);
        slot.account(&self.bytes, key.len(), old, Some((value_len, deadline)));
        if deadline != NEVER && timer_at != inherited {
            self.request_timer(shard, key, timer_at);
        }
        slot.write.last_seq.store(version, Ordering::Release);
        let change = Change {
            shard: shard as u32,
            seq: version,
            db: self.db_of(shard) as u16,
            op: Op::Set { record, deadline },
        };
        Ok((change, slot.roles()))
    }

    /// The writer section of a delete, after validation. Returns the removal's sequence
    /// number when a live entry was removed.
    fn remove(
        &self,
        shard: usize,
        key: &[u8],
        condition: Condition,
    ) -> Result<Option<u64>, StoreError> {
        let mut seq = self.section(shard);
        let Some((removal, live)) =
            self.remove_in_section(&mut seq, shard, key, condition, true)?
        else {
            return Ok(None);
        };
        self.publish_removal(shard, removal, key);
        drop(seq);
        Ok(live.then_some(removal))
    }

    /// A delete inside `shard`'s writer section (`seq` is the section's sequence number),
    /// asking the sinks to admit it when `admit` (a transaction admitted its shards up front).
    /// Returns the removal's sequence number and whether the removed entry was live, or `None`
    /// when nothing was there; the caller publishes the removal.
    pub(crate) fn remove_in_section(
        &self,
        seq: &mut u64,
        shard: usize,
        key: &[u8],
        condition: Condition,
        admit: bool,
    ) -> Result<Option<(u64, bool)>, StoreError> {
        let slot = &self.slots[shard];
        let now = self.clock().now();
        // Stable while the section is held: only writers of this shard change it.
        let current = slot
            .primary_map()
            .read(key, |e| e.map(|(_, e)| (e.version, e.deadline)));
        let Some((version, deadline)) = current else {
            return Ok(None);
        };
        let live = deadline > now;
        if live && !condition.holds(Some(version)) {
            return Err(StoreError::PreconditionFailed {
                current: Some(version),
            });
        }
        if admit {
            self.admit(shard, Admission::Removal)?;
        }
        let Some(old) = slot.primary_map().remove(key) else {
            return Ok(None);
        };
        *seq += 1;
        slot.account(&self.bytes, key.len(), Some(old), None);
        slot.write.last_seq.store(*seq, Ordering::Release);
        Ok(Some((*seq, live)))
    }

    /// Publishes a removal that took sequence number `seq` (inside the writer section).
    pub(crate) fn publish_removal(&self, shard: usize, seq: u64, key: &[u8]) {
        let slot = &self.slots[shard];
        slot.write.last_seq.store(seq, Ordering::Release);
        if self.sinks.is_empty() {
            return;
        }
        let change = self.removal_change(shard, seq, key);
        let roles = slot.roles();
        self.publish(Published::one(&change, &roles));
    }

    /// The change a removal publishes.
    pub(crate) fn removal_change(&self, shard: usize, seq: u64, key: &[u8]) -> Change {
        Change {
            shard: shard as u32,
            seq,
            db: self.db_of(shard) as u16,
            op: Op::Remove { key: key.into() },
        }
    }

    /// Hands changes to every sink (inside the writer sections of their shards).
    pub(crate) fn publish(&self, published: Published<'_>) {
        for sink in self.sinks.iter() {
            sink.publish(published);
        }
    }
}

/// The bytes a write of `key` with a `value_len`-byte value and `deadline` adds to the memory
/// estimate beyond the per-copy entry overhead: key, value, and the timer of a key with a TTL.
pub(crate) fn data_bytes(key: &[u8], value_len: usize, deadline: Tick) -> u64 {
    let timer = if deadline == NEVER {
        0
    } else {
        super::TIMER_OVERHEAD
    };
    (key.len() + value_len) as u64 + timer
}
