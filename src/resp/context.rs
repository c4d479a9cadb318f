//! What a command handler works with: the server, its connection's session, the reply buffer,
//! and the store reached the one right way for where it runs.
//!
//! Outside `MULTI`, a write opens its own [`Transaction`] over the keys it declares (or, for a
//! plain `SET`, calls the store's one-key write), and its acknowledgement, when the ack policy
//! or `--fsync always` make one wait, is handed back to the connection, which sends the reply
//! only once it completes. Inside `EXEC`, every write goes through the transaction `EXEC` holds:
//! calling the store's own writes there would wait for a section `EXEC` already holds.
//!
//! Must never: write the store outside a transaction or the store's own write calls, or let a
//! reply out before its write is acknowledged.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::error::CommandError;
use super::reply::Reply;
use super::session::Session;
use super::state::RespServer;
use crate::clock::Tick;
use crate::store::{
    Acknowledgement, Condition, Found, Shard, ShardedStore, StoreError, Transaction,
};

/// One command's view of the world; see the module doc.
pub struct CommandContext<'c, 'a, S: Shard> {
    /// The server's shared state.
    pub server: &'a RespServer<S>,
    /// This connection's state.
    pub session: &'c mut Session,
    /// The reply buffer.
    pub(crate) out: &'c mut BytesMut,
    txn: Option<&'c mut Transaction<'a, S>>,
    /// An acknowledgement the reply must wait for.
    pub(crate) ack: Option<Acknowledgement<'a, S>>,
    /// Close the connection once the reply is sent (`QUIT`).
    pub(crate) close: bool,
}

impl<'c, 'a, S: Shard> CommandContext<'c, 'a, S> {
    /// A context writing replies to `out`, inside `txn` when `EXEC` runs the command.
    pub fn new(
        server: &'a RespServer<S>,
        session: &'c mut Session,
        out: &'c mut BytesMut,
        txn: Option<&'c mut Transaction<'a, S>>,
    ) -> Self {
        CommandContext {
            server,
            session,
            out,
            txn,
            ack: None,
            close: false,
        }
    }

    /// The reply encoder, in the session's protocol.
    pub fn reply(&mut self) -> Reply<'_> {
        Reply::new(self.out, self.session.proto)
    }

    /// A value, or nil when there is none (`GET`'s reply).
    pub fn reply_value(&mut self, found: Option<&Found>) {
        match found {
            Some(found) => self.reply().bulk(found.value()),
            None => self.reply().null(),
        }
    }

    /// A `HELP` subcommand's lines, as status replies in an array.
    pub fn reply_help(&mut self, lines: &[&str]) {
        let mut reply = self.reply();
        reply.array(lines.len());
        for line in lines {
            reply.simple(line);
        }
    }

    /// The store.
    pub fn store(&self) -> &'a ShardedStore<S> {
        self.server.store()
    }

    /// The selected database.
    pub fn db(&self) -> usize {
        self.session.db
    }

    /// Whether the command runs inside `EXEC`.
    pub fn in_exec(&self) -> bool {
        self.txn.is_some()
    }

    /// The current tick.
    pub fn now(&self) -> Tick {
        self.store().clock().now()
    }

    /// Reads `key` in the selected database (live only).
    pub fn get(&self, key: &[u8]) -> Option<Found> {
        self.get_in(self.db(), key)
    }

    /// Reads `key` in `db` (live only).
    pub fn get_in(&self, db: usize, key: &[u8]) -> Option<Found> {
        self.store().get_in(db, key).found()
    }

    /// Reads `key` in the selected database (live only) without counting it as an access
    /// (`OBJECT` does not touch the key).
    pub fn peek(&self, key: &[u8]) -> Option<Found> {
        self.store().peek_in(self.db(), key)
    }

    /// Runs `f` inside a transaction over `keys` of the selected database: `EXEC`'s own, or a
    /// new one committed when `f` returns (its acknowledgement then awaited before the reply).
    pub fn write<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnOnce(&mut Transaction<'a, S>) -> Result<R, CommandError>,
    ) -> Result<R, CommandError> {
        let db = self.db();
        self.write_in(keys.iter().map(|k| (db, *k)), std::iter::empty(), f)
    }

    /// [`CommandContext::write`] over `(database, key)` pairs and whole databases.
    pub fn write_in<'k, R>(
        &mut self,
        keys: impl IntoIterator<Item = (usize, &'k [u8])>,
        whole_dbs: impl IntoIterator<Item = usize>,
        f: impl FnOnce(&mut Transaction<'a, S>) -> Result<R, CommandError>,
    ) -> Result<R, CommandError> {
        if let Some(txn) = self.txn.as_deref_mut() {
            return f(txn);
        }
        let store = self.store();
        let mut txn = store.transaction(keys, whole_dbs)?;
        let result = f(&mut txn);
        let receipt = txn.commit();
        if !receipt.versions.is_empty() {
            self.wait_for(receipt.acknowledged(self.server.ack_policy()));
        }
        result
    }

    /// Stores `value` under `key` in the selected database if `condition` holds (only
    /// `Always`, `IfAbsent` and `IfPresent` are used here). Returns whether it was written.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        deadline: Tick,
        condition: Condition,
    ) -> Result<bool, CommandError> {
        if self.txn.is_some() {
            return self.set_in_exec(key, value, deadline, condition);
        }
        let db = self.db();
        match self.store().set_in(db, key, value, deadline, condition) {
            Ok(receipt) => {
                self.wait_for(receipt.acknowledged(self.server.ack_policy()));
                Ok(true)
            }
            Err(StoreError::PreconditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn set_in_exec(
        &mut self,
        key: &[u8],
        value: &[u8],
        deadline: Tick,
        condition: Condition,
    ) -> Result<bool, CommandError> {
        let db = self.db();
        self.write(&[key], |txn| {
            let live = txn.get(db, key).map(|f| f.version);
            if !condition.holds(live) {
                return Ok(false);
            }
            txn.set(db, key, value, deadline)?;
            Ok(true)
        })
    }

    /// Removes `key` from the selected database; returns whether a live key was removed.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, CommandError> {
        if self.txn.is_some() {
            let db = self.db();
            return self.write(&[key], |txn| Ok(txn.remove(db, key)?));
        }
        let db = self.db();
        match self.store().delete_if_in(db, key, Condition::Always)? {
            Some(receipt) => {
                self.wait_for(receipt.acknowledged(self.server.ack_policy()));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Hands the connection an acknowledgement to await before the reply, unless it is
    /// already complete.
    pub(crate) fn wait_for(&mut self, mut ack: Acknowledgement<'a, S>) {
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut ack).poll(&mut cx) {
            Poll::Ready(Ok(())) => {}
            // Pending, or failed: the connection awaits it (again) and reports the failure.
            _ => self.ack = Some(ack),
        }
    }
}

/// Parses an argument as Redis's `string2ll` does, or fails with "not an integer".
pub fn int_arg(arg: &Bytes) -> Result<i64, CommandError> {
    crate::redis_value::integer::string2ll(arg).ok_or(CommandError::NotInteger)
}
