//! `WATCH`: which connections watch which keys, told of every write by the change stream.
//!
//! The registry is a [`ChangeSink`]: the store hands it every change inside the writer section,
//! so a write to a watched key, from either protocol, the expiry thread or a flush, sets the
//! watchers' dirty flags before the writer section is released. `EXEC` takes the writer sections
//! of every watched key's shard before it looks at its flag, so no write can slip between the
//! check and the transaction. With nothing watched, a change costs one relaxed load.
//!
//! Must never: miss a write to a watched key between `WATCH` and `EXEC`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::store::{AckPolicy, AckWait, ChangeSink, Published, Roles, StoreError};

/// A connection's dirty flag: set when a key it watches is written.
#[derive(Debug, Default)]
pub struct WatchFlag(AtomicBool);

impl WatchFlag {
    /// Whether a watched key was written.
    pub fn is_dirty(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Clears the flag (`UNWATCH`, `EXEC`, `DISCARD`).
    pub fn clear(&self) {
        self.0.store(false, Ordering::Release);
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A key's watchers, each with whether a removal counts: not for a watcher that found the key
/// absent or expired at `WATCH` (removing an expired key changes nothing, as Redis sees it;
/// only a set does).
type Watchers = Vec<(Arc<WatchFlag>, bool)>;

/// A watched key: its database and bytes.
type WatchedKey = (u16, Box<[u8]>);

/// Every watched `(database, key)` and its watchers; see the module doc.
#[derive(Debug, Default)]
pub struct WatchRegistry {
    keys: Mutex<HashMap<WatchedKey, Watchers>>,
    /// Watched keys in all (0: writes skip the lock).
    watched: AtomicUsize,
}

impl WatchRegistry {
    /// Adds `flag` as a watcher of `key` in `db`, which was live at `WATCH` or not.
    pub fn watch(&self, db: usize, key: &[u8], flag: &Arc<WatchFlag>, was_live: bool) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.entry((db as u16, key.into()))
            .or_default()
            .push((flag.clone(), was_live));
        self.watched.fetch_add(1, Ordering::AcqRel);
    }

    /// Removes `flag` as a watcher of `key` in `db`.
    pub fn unwatch(&self, db: usize, key: &[u8], flag: &Arc<WatchFlag>) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let entry = (db as u16, Box::<[u8]>::from(key));
        if let Some(watchers) = keys.get_mut(&entry) {
            if let Some(at) = watchers.iter().position(|(w, _)| Arc::ptr_eq(w, flag)) {
                watchers.swap_remove(at);
                self.watched.fetch_sub(1, Ordering::AcqRel);
            }
            if watchers.is_empty() {
                keys.remove(&entry);
            }
        }
    }
}

impl ChangeSink for WatchRegistry {
    fn waits_for(&self) -> AckWait {
        AckWait::Replicated
    }

    fn publish(&self, published: Published<'_>) {
        if self.watched.load(Ordering::Acquire) == 0 {
            return;
        }
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for change in published.changes() {
            let entry = (change.db, Box::<[u8]>::from(change.op.key()));
            if let Some(watchers) = keys.get(&entry) {
                let removal = matches!(change.op, crate::store::Op::Remove { .. });
                for (flag, was_live) in watchers {
                    if *was_live || !removal {
                        flag.set();
                    }
                }
            }
        }
    }

    fn poll_acknowledged(
        &self,
        _cx: &mut Context<'_>,
        _shard: usize,
        _seq: u64,
        _roles: &dyn Fn() -> Roles,
        _policy: AckPolicy,
    ) -> Poll<Result<(), StoreError>> {
        Poll::Ready(Ok(()))
    }
}
