//! The connected clients: ids, names and the fields `CLIENT LIST`, `CLIENT INFO` and
//! `INFO clients` show, and the `maxclients` limit.
//!
//! Each connection registers a [`ClientInfo`] and updates it as it goes (cheap relaxed stores
//! and a name lock touched only by `CLIENT SETNAME`/`HELLO`). Listing clients takes the registry
//! lock, which connections take only to arrive and leave.
//!
//! Must never: count a client that has left, or admit more than `maxclients`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// What other connections may read about one client.
#[derive(Debug)]
pub struct ClientInfo {
    /// The id (`CLIENT ID`), from 1, never reused.
    pub id: u64,
    /// The peer's address.
    pub addr: SocketAddr,
    /// Our address.
    pub laddr: SocketAddr,
    /// When the client connected (the store clock's tick).
    pub created_tick: u64,
    /// The tick of its last command.
    last_tick: AtomicU64,
    db: AtomicUsize,
    resp: AtomicU64,
    name: Mutex<Option<Bytes>>,
    last_command: Mutex<&'static str>,
    lib: Mutex<(Option<Bytes>, Option<Bytes>)>,
}

/// Unix time in milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ClientInfo {
    /// The client's name, if set.
    pub fn name(&self) -> Option<Bytes> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets or clears the name.
    pub fn set_name(&self, name: Option<Bytes>) {
        *self.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }

    /// Records the selected database.
    pub fn set_db(&self, db: usize) {
        self.db.store(db, Ordering::Relaxed);
    }

    /// Records the protocol version.
    pub fn set_resp(&self, resp: u64) {
        self.resp.store(resp, Ordering::Relaxed);
    }

    /// Records the library name or version (`CLIENT SETINFO`).
    pub fn set_lib(&self, name: Option<Bytes>, version: Option<Bytes>) {
        let mut lib = self.lib.lock().unwrap_or_else(|e| e.into_inner());
        if name.is_some() {
            lib.0 = name;
        }
        if version.is_some() {
            lib.1 = version;
        }
    }

    /// Records that a command ran at `now` (the store clock's tick: no clock read of its own).
    pub fn touch(&self, now: u64, command: &'static str) {
        self.last_tick.store(now, Ordering::Relaxed);
        if let Ok(mut last) = self.last_command.try_lock() {
            *last = command;
        }
    }

    /// Milliseconds since the last command, at tick `now`.
    pub fn idle_ms(&self, now: u64) -> u64 {
        now.saturating_sub(self.last_tick.load(Ordering::Relaxed))
    }

    /// One `CLIENT LIST` line at tick `now`, without the trailing newline, in Redis 7.0's field
    /// order.
    pub fn line(&self, now: u64) -> String {
        let name = self.name();
        let name = name
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let cmd = *self.last_command.lock().unwrap_or_else(|e| e.into_inner());
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            name,
            now.saturating_sub(self.created_tick) / 1000,
            self.idle_ms(now) / 1000,
            self.db.load(Ordering::Relaxed),
            cmd,
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// The registry of connected clients.
#[derive(Debug)]
pub struct Clients {
    next_id: AtomicU64,
    connected: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    max_clients: AtomicUsize,
    /// Connections refused because `maxclients` was reached.
    pub rejected: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
}

impl Clients {
    /// An empty registry admitting at most `max_clients`.
    pub fn new(max_clients: usize) -> Clients {
        Clients {
            next_id: AtomicU64::new(1),
            connected: Mutex::new(BTreeMap::new()),
            max_clients: AtomicUsize::new(max_clients),
            rejected: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
        }
    }

    /// Registers a new client at tick `now`, or `None` when `maxclients` are connected.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        now: u64,
    ) -> Option<Arc<ClientInfo>> {
        let mut connected = self.connected.lock().unwrap_or_else(|e| e.into_inner());
        if connected.len() >= self.max_clients.load(Ordering::Relaxed) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let info = Arc::new(ClientInfo {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            addr,
            laddr,
            created_tick: now,
            last_tick: AtomicU64::new(now),
            db: AtomicUsize::new(0),
            resp: AtomicU64::new(2),
            name: Mutex::new(None),
            last_command: Mutex::new("NULL"),
            lib: Mutex::new((None, None)),
        });
        connected.insert(info.id, info.clone());
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(info)
    }

    /// Unregisters client `id`.
    pub fn remove(&self, id: u64) {
        self.connected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Clients connected now.
    pub fn count(&self) -> usize {
        self.connected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Every connected client, by id.
    pub fn list(&self) -> Vec<Arc<ClientInfo>> {
        self.connected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The `maxclients` limit.
    pub fn max_clients(&self) -> usize {
        self.max_clients.load(Ordering::Relaxed)
    }

    /// Changes the `maxclients` limit (clients already connected stay).
    pub fn set_max_clients(&self, max: usize) {
        self.max_clients.store(max, Ordering::Relaxed);
    }
}
