//! One RESP connection: read what the client sent, run every complete command in it, and send
//! all their replies in one write.
//!
//! The loop reads without waiting when bytes are already there, parses with the resumable
//! [`RequestParser`] (so a command split across reads is never re-scanned), runs each command
//! through the dispatcher and appends its reply to one output buffer, which is written once per
//! batch (or sooner, past [`FLUSH_BYTES`]). A write whose acknowledgement must be awaited
//! (`--ack all`, `--fsync always`) is awaited before the next command runs, so replies keep the
//! order of the requests. Writing is non-blocking first; only a client that is not reading arms
//! the write time-out.
//!
//! Limits: a client idle for `timeout` seconds (when not 0) is closed; a reply buffer past the
//! output limit closes the client (Redis's hard `client-output-buffer-limit`); an argument past
//! `--max-value-bytes` is dropped as it arrives and its command refused; a protocol error is
//! answered and the connection closed, as Redis does.
//!
//! Must never: send replies out of order, buffer an argument past the limit, or block the
//! worker on a client.

use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::clients::ClientInfo;
use super::dispatch::{self, Outcome};
use super::error::CommandError;
use super::parse::{ParseLimits, Parsed, RequestParser};
use super::reply::Reply;
use super::session::Session;
use super::state::RespServer;
use crate::store::Shard;

/// Reply bytes after which the buffer is written before more commands run.
pub const FLUSH_BYTES: usize = 64 * 1024;

/// Bytes read per read call at least.
const READ_CHUNK: usize = 16 * 1024;

/// How long an acknowledgement may take before the write is answered with an error.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection ends.
enum End {
    /// The client closed, or a read or write failed.
    Closed,
    /// Shutdown.
    Shutdown,
}

/// Serves one client until it leaves, misbehaves or the server shuts down.
pub async fn serve<S: Shard>(
    server: Arc<RespServer<S>>,
    stream: TcpStream,
    info: Arc<ClientInfo>,
    stopped: watch::Receiver<bool>,
) {
    let session = Session::new(
        info,
        server.clients.clone(),
        server.watches.clone(),
        !server.password_set(),
    );
    let mut connection = Connection {
        stream,
        stopped,
        input: BytesMut::with_capacity(READ_CHUNK),
        output: BytesMut::with_capacity(READ_CHUNK),
    };
    let _ = connection.run(&server, session).await;
}

struct Connection {
    stream: TcpStream,
    stopped: watch::Receiver<bool>,
    input: BytesMut,
    output: BytesMut,
}

impl Connection {
    async fn run<S: Shard>(&mut self, server: &RespServer<S>, mut session: Session) -> End {
        let mut parser = RequestParser::new();
        let mut args: Vec<Bytes> = Vec::with_capacity(8);
        loop {
            let wanted = parser.wants_bytes().clamp(READ_CHUNK, 1 << 20);
            if let Err(end) = self.read(server, wanted).await {
                return end;
            }
            loop {
                let limits = ParseLimits {
                    max_arg_bytes: server.settings.max_arg_bytes,
                    auth_required: !session.authenticated,
                };
                let parsed = match parser.next(&mut self.input, &mut args, &limits) {
                    Ok(parsed) => parsed,
                    Err(protocol) => {
                        self.output.extend_from_slice(&protocol.reply_bytes());
                        let _ = self.flush(server).await;
                        return End::Closed;
                    }
                };
                match parsed {
                    Parsed::Incomplete => break,
                    Parsed::Oversized { len } => {
                        if let Some(multi) = session.multi.as_mut() {
                            multi.aborted = true;
                        }
                        let error = CommandError::ArgumentTooLarge {
                            len,
                            max: server.settings.max_arg_bytes,
                        };
                        Reply::new(&mut self.output, session.proto).error(&error.to_string());
                    }
                    Parsed::Command => {
                        let mark = self.output.len();
                        match dispatch::execute(server, &mut session, &mut self.output, &args) {
                            Outcome::Continue => {}
                            Outcome::Wait(ack) => {
                                let result = tokio::time::timeout(ACK_TIMEOUT, ack).await;
                                let failure = match result {
                                    Ok(Ok(())) => None,
                                    Ok(Err(e)) => Some(CommandError::from(e).to_string()),
                                    Err(_) => Some(
                                        "ERR the write was applied but not acknowledged within 5 s (replicas or the disk are behind); it may or may not survive a failure"
                                            .to_string(),
                                    ),
                                };
                                if let Some(text) = failure {
                                    self.output.truncate(mark);
                                    Reply::new(&mut self.output, session.proto).error(&text);
                                }
                            }
                            Outcome::Close => {
                                let _ = self.flush(server).await;
                                return End::Closed;
                            }
                            Outcome::Drop => return End::Closed,
                        }
                    }
                }
                if self.output.len() as u64 > server.settings.output_limit.load(Ordering::Relaxed) {
                    server
                        .stats
                        .output_limit_disconnections
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        client = session.id(),
                        bytes = self.output.len(),
                        "closing a client whose unread replies passed --resp-output-limit"
                    );
                    return End::Closed;
                }
                if self.output.len() >= FLUSH_BYTES {
                    if let Err(end) = self.flush(server).await {
                        return end;
                    }
                }
            }
            if let Err(end) = self.flush(server).await {
                return end;
            }
        }
    }

    /// Reads at least one byte into the input buffer (at once if some are waiting).
    async fn read<S: Shard>(&mut self, server: &RespServer<S>, wanted: usize) -> Result<(), End> {
        if self.input.capacity() - self.input.len() < wanted / 2 {
            self.input.reserve(wanted);
        }
        loop {
            match self.stream.try_read_buf(&mut self.input) {
                Ok(0) => return Err(End::Closed),
                Ok(n) => {
                    server
                        .stats
                        .net_input
                        .fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(End::Closed),
            }
            let idle = server.settings.timeout_secs.load(Ordering::Relaxed);
            let readable = self.stream.readable();
            let stopped = self.stopped.changed();
            if idle == 0 {
                tokio::select! {
                    ready = readable => ready.map_err(|_| End::Closed)?,
                    _ = stopped => return Err(End::Shutdown),
                }
            } else {
                tokio::select! {
                    ready = tokio::time::timeout(Duration::from_secs(idle), readable) => match ready {
                        Ok(ready) => ready.map_err(|_| End::Closed)?,
                        // Idle too long: closed without a reply, as Redis does.
                        Err(_) => return Err(End::Closed),
                    },
                    _ = stopped => return Err(End::Shutdown),
                }
            }
        }
    }

    /// Writes the whole output buffer; a client that takes no bytes for the write time-out is
    /// dropped.
    async fn flush<S: Shard>(&mut self, server: &RespServer<S>) -> Result<(), End> {
        let mut written = 0;
        while written < self.output.len() {
            match self.stream.try_write(&self.output[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let writable = self.stream.writable();
                    match tokio::time::timeout(server.settings.write_timeout, writable).await {
                        Ok(Ok(())) => {}
                        _ => return Err(End::Closed),
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(End::Closed),
            }
        }
        server
            .stats
            .net_output
            .fetch_add(written as u64, Ordering::Relaxed);
        self.output.clear();
        Ok(())
    }
}
