//! The narrow API through which replication manages a shard's copies: reading a copy, taking a
//! copy of the primary, and changing the copies' roles inside the writer section.
//!
//! Every shard has `replicas + 1` copies of its map; the store serves from the primary and
//! keeps which copy that is, and which copies are failed or rejoining ([`Roles`]). What the
//! other copies hold, and when, is the business of whoever consumes the change stream for them
//! (a sink registered for the replicas): it applies changes to a copy through
//! [`ShardedStore::copy`], and changes roles only through a [`RolesSection`], which holds the
//! shard's writer section.
//!
//! Must never: hand out the primary copy for writing (a copy's map is written only by the one
//! thread that applies its changes, and the primary's only by writers), or change roles without
//! the writer section.

use super::change::Roles;
use super::{Found, Shard, ShardedStore};
use crate::sync::{MutexGuard, Ordering};

impl<S: Shard> ShardedStore<S> {
    /// Copies of every shard: the primary and its replicas.
    pub fn copies_per_shard(&self) -> usize {
        self.slots[0].read.copies.len()
    }

    /// Replica copies per shard.
    pub fn replicas(&self) -> usize {
        self.copies_per_shard() - 1
    }

    /// The roles of `shard`'s copies now.
    pub fn roles(&self, shard: usize) -> Roles {
        self.slots[shard].roles()
    }

    /// The copy that is primary for `shard` now.
    pub fn primary_of(&self, shard: usize) -> usize {
        self.slots[shard].read.primary.load(Ordering::Acquire)
    }

    /// Bit `c` set: copy `c` of `shard` is failed.
    pub fn failed_copies(&self, shard: usize) -> u64 {
        self.slots[shard].read.failed.load(Ordering::Acquire)
    }

    /// Copy `copy` of `shard`'s map. Only the thread that applies that copy's changes may write
    /// to it, and only while it is not the primary.
    pub fn copy(&self, shard: usize, copy: usize) -> &S {
        &self.slots[shard].read.copies[copy]
    }

    /// Every entry of `shard`'s primary, copied without holding its writers (a weak snapshot:
    /// pair it with a fence from [`RolesSection::seq`] taken before, and the changes after it).
    pub fn copy_primary(&self, shard: usize) -> Vec<Found> {
        self.slots[shard].collect_primary()
    }

    /// A copy of `shard`'s entries and a sequence *fence* (snapshots): every write up to the
    /// fence is in the copy; later writes may or may not be, so the writes after the fence must
    /// be replayed over it, in order.
    ///
    /// Only the fence is read inside the writer section; the copy runs outside it, so writers
    /// of the shard never wait for a copy of the whole shard.
    pub fn snapshot_shard(&self, shard: usize) -> (Vec<Found>, u64) {
        // Every write up to the fence has finished its map write: it holds the section.
        let fence = *self.section(shard);
        (self.slots[shard].collect_primary(), fence)
    }

    /// Holds `shard`'s writer section to read its fence or change its copies' roles.
    pub fn lock_roles(&self, shard: usize) -> RolesSection<'_, S> {
        RolesSection {
            store: self,
            shard,
            seq: self.section(shard),
        }
    }
}

/// `shard`'s writer section, held to change its copies' roles: no write of the shard can land
/// meanwhile.
pub struct RolesSection<'a, S: Shard> {
    store: &'a ShardedStore<S>,
    shard: usize,
    seq: MutexGuard<'a, u64>,
}

impl<S: Shard> RolesSection<'_, S> {
    /// The shard's last sequence number: every write up to it is in the primary, and every
    /// later one will be published after this section is left.
    pub fn seq(&self) -> u64 {
        *self.seq
    }

    /// The roles now (stable while this is held).
    pub fn roles(&self) -> Roles {
        self.store.slots[self.shard].roles()
    }

    /// Failed copy `copy` is being rebuilt: publish the shard's changes to it again.
    pub fn set_joining(&self, copy: usize) {
        let read = &self.store.slots[self.shard].read;
        read.joining.fetch_or(1 << copy, Ordering::AcqRel);
    }

    /// Copy `copy`'s rebuild was abandoned: it stays failed and takes no changes.
    pub fn clear_joining(&self, copy: usize) {
        let read = &self.store.slots[self.shard].read;
        read.joining.fetch_and(!(1 << copy), Ordering::AcqRel);
    }

    /// Rebuilt copy `copy` is a replica in service again.
    pub fn rejoin(&self, copy: usize) {
        let read = &self.store.slots[self.shard].read;
        read.failed.fetch_and(!(1 << copy), Ordering::AcqRel);
        read.joining.fetch_and(!(1 << copy), Ordering::AcqRel);
    }

    /// Marks the primary failed and makes `copy` the primary. The caller has made sure `copy`
    /// holds every write up to [`RolesSection::seq`].
    pub fn promote(&self, copy: usize) {
        let slot = &self.store.slots[self.shard];
        let old = slot.read.primary.load(Ordering::Acquire);
        slot.read.failed.fetch_or(1 << old, Ordering::AcqRel);
        slot.read.primary.store(copy, Ordering::Release);
        // The new primary's entries carry no timer bookkeeping: have the expiry thread arm them.
        slot.write.needs_sweep.store(true, Ordering::Release);
    }
}
