//! One connection's state: its client id, selected database, protocol version, whether it has
//! authenticated, its name, the commands queued by `MULTI` and the keys it `WATCH`es.
//!
//! The parts other connections may read (`CLIENT LIST`, `INFO clients`) live in a shared
//! [`ClientInfo`](super::clients::ClientInfo); the rest is owned by the connection's task alone.
//!
//! Must never: outlive its connection in the registries (dropping it unregisters the client
//! and its watches).

use std::sync::Arc;

use bytes::Bytes;

use super::clients::{ClientInfo, Clients};
use super::reply::Protocol;
use super::watch::{WatchFlag, WatchRegistry};

/// The commands queued between `MULTI` and `EXEC`.
#[derive(Debug, Default)]
pub struct MultiQueue {
    /// Each queued command's arguments, name first.
    pub commands: Vec<Vec<Bytes>>,
    /// A command was refused while queueing: `EXEC` answers `EXECABORT`.
    pub aborted: bool,
}

/// A key this connection watches, and whether it was live when `WATCH` ran (Redis aborts
/// `EXEC` when a key live at `WATCH` has expired since).
#[derive(Debug, Clone)]
pub struct WatchedKey {
    /// The database.
    pub db: usize,
    /// The key.
    pub key: Bytes,
    /// Live at `WATCH` time.
    pub was_live: bool,
}

/// One connection's state; see the module doc.
pub struct Session {
    /// What other connections may read about this one.
    pub info: Arc<ClientInfo>,
    /// The selected database.
    pub db: usize,
    /// RESP2 or RESP3.
    pub proto: Protocol,
    /// Whether the connection may run commands (always, when no password is set).
    pub authenticated: bool,
    /// Open `MULTI`, if any.
    pub multi: Option<MultiQueue>,
    /// Watched keys.
    pub watched: Vec<WatchedKey>,
    /// Set when a watched key is written.
    pub watch_flag: Arc<WatchFlag>,
    clients: Arc<Clients>,
    watches: Arc<WatchRegistry>,
}

impl Session {
    /// A new session for a registered client.
    pub fn new(
        info: Arc<ClientInfo>,
        clients: Arc<Clients>,
        watches: Arc<WatchRegistry>,
        authenticated: bool,
    ) -> Session {
        Session {
            info,
            db: 0,
            proto: Protocol::Resp2,
            authenticated,
            multi: None,
            watched: Vec::new(),
            watch_flag: Arc::new(WatchFlag::default()),
            clients,
            watches,
        }
    }

    /// The client id.
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// Selects database `db` (already checked).
    pub fn select(&mut self, db: usize) {
        self.db = db;
        self.info.set_db(db);
    }

    /// Watches `key` in the selected database.
    pub fn watch(&mut self, key: Bytes, was_live: bool) {
        if self.watched.iter().any(|w| w.db == self.db && w.key == key) {
            return;
        }
        self.watches
            .watch(self.db, &key, &self.watch_flag, was_live);
        self.watched.push(WatchedKey {
            db: self.db,
            key,
            was_live,
        });
    }

    /// Forgets every watched key and clears the dirty flag.
    pub fn unwatch(&mut self) {
        for w in self.watched.drain(..) {
            self.watches.unwatch(w.db, &w.key, &self.watch_flag);
        }
        self.watch_flag.clear();
    }

    /// `RESET`: database 0, RESP2, no MULTI, no watches, no name, and logged out when a
    /// password is set. The id stays.
    pub fn reset(&mut self, password_set: bool) {
        self.multi = None;
        self.unwatch();
        self.select(0);
        self.proto = Protocol::Resp2;
        self.info.set_name(None);
        self.info.set_resp(2);
        if password_set {
            self.authenticated = false;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.unwatch();
        self.clients.remove(self.info.id);
    }
}
