//! The request parser: turns the bytes a RESP client sent into commands, as Redis 7.0.15's
//! `processInputBuffer` / `processMultibulkBuffer` / `processInlineBuffer` do.
//!
//! A request starting with `*` is a multibulk array of `$len` bulks; anything else is an inline
//! line, split the way `sdssplitargs` splits it (quotes, escapes). Empty inline lines and
//! `*0` / negative counts are no command and are skipped. The Redis quirks are kept on purpose,
//! because a client sees them: the byte after a header's `\r` and the two bytes after a bulk's
//! payload are skipped unchecked, a NUL byte hides a line terminator (Redis searches with
//! `strchr`), and the 64 KB line limit applies only to a line still missing its terminator.
//!
//! Design: one [`RequestParser`] per connection keeps the progress of a partial command (how
//! many arguments are left, the pending bulk length, how far a line was already searched), so
//! bytes arriving in any split give the same commands and nothing is scanned twice. Complete
//! arguments are split off the caller's [`BytesMut`] as [`Bytes`] (no copy; quoted inline
//! arguments are the exception, they are unescaped into new bytes) and handed out in a
//! caller-owned `Vec` that is swapped with the parser's own, so the hot path allocates nothing.
//! A bulk longer than [`ParseLimits::max_arg_bytes`] is never buffered: its bytes are dropped
//! as they arrive and the command is reported as [`Parsed::Oversized`].
//!
//! Must never: panic on any input, hold more bytes than the client sent, buffer an argument
//! longer than `max_arg_bytes`, or go on parsing after returning a [`ProtocolError`] (the
//! connection is to be closed then, as Redis does).

use bytes::{Buf, Bytes, BytesMut};

use crate::redis_value::integer::string2ll;

/// `PROTO_INLINE_MAX_SIZE`: the most unparsed bytes allowed while a line (inline request or a
/// `*`/`$` header) is still missing its terminator.
pub const INLINE_MAX_BYTES: usize = 64 * 1024;

/// `proto-max-bulk-len`'s default: the longest bulk Redis accepts (512 MB).
pub const MAX_BULK_BYTES: usize = 512 * 1024 * 1024;

/// The largest multibulk count Redis accepts (`INT_MAX`).
pub const MAX_MULTIBULK_COUNT: i64 = i32::MAX as i64;

/// The most arguments a multibulk count may announce before authentication.
pub const UNAUTHENTICATED_MAX_COUNT: i64 = 10;

/// The longest bulk allowed before authentication.
pub const UNAUTHENTICATED_MAX_BULK: i64 = 16384;

/// Argument slots reserved ahead for a multibulk count (Redis preallocates `min(count, 1024)`);
/// beyond it the argument list grows only as arguments actually arrive.
const PREALLOCATED_ARGS: usize = 1024;

/// What the caller's configuration and the connection's state allow, passed on every call (so a
/// successful `AUTH` applies from the next command on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// The longest argument that is buffered (the server's `--max-value-bytes`). A longer bulk
    /// (up to [`MAX_BULK_BYTES`]) is skipped and its command reported as
    /// [`Parsed::Oversized`].
    pub max_arg_bytes: usize,
    /// Redis's `authRequired`: a password is set and this connection has not authenticated.
    /// Turns on the unauthenticated count and bulk limits.
    pub auth_required: bool,
}

/// The outcome of one [`RequestParser::next`] call that did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete command is in `args` (at least one argument).
    Command,
    /// A complete command had an argument longer than `max_arg_bytes`; its bytes were dropped.
    /// `len` is the first such argument's length. `args` holds the command's arguments with
    /// every oversized one replaced by an empty placeholder. The connection stays usable.
    Oversized {
        /// The announced length of the first oversized argument.
        len: usize,
    },
    /// No complete command yet: read more bytes into the buffer and call again.
    Incomplete,
}

/// A malformed request. Its `Display` is the exact text Redis sends after `-ERR `; the
/// connection is to be closed after sending it. [`ProtocolError::reply_bytes`] gives the whole
/// reply line byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An inline line without `\n` after more than 64 KB.
    #[error("Protocol error: too big inline request")]
    TooBigInlineRequest,
    /// An inline line with an unterminated quote, or a closing quote followed by a non-blank.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A `*` header line without `\r` after more than 64 KB.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `*` count that is not a strict integer or exceeds `INT_MAX`.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `*` count above 10 before authentication.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A `$` header line without `\r` after more than 64 KB.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// A bulk header that does not start with `$`; `got` is the byte found instead.
    /// (`Display` shows a byte above 0x7f as the Latin-1 character; `reply_bytes` is exact.)
    #[error("Protocol error: expected '$', got '{}'", char::from(shown_byte(*.got)))]
    ExpectedDollar {
        /// The byte found where `$` was expected.
        got: u8,
    },
    /// A bulk length that is not a strict integer, is negative, or exceeds 512 MB.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A bulk longer than 16384 bytes before authentication.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
}

/// Redis formats the `expected '$'` byte into its error with `%c`, then maps `\r` and `\n` to
/// spaces (a NUL cannot get there: it hides the line's `\r`).
fn shown_byte(got: u8) -> u8 {
    match got {
        b'\r' | b'\n' => b' ',
        other => other,
    }
}

impl ProtocolError {
    /// The full reply Redis sends for this error, e.g. `-ERR Protocol error: ...\r\n`, exact to
    /// the byte (including a non-ASCII byte in [`ProtocolError::ExpectedDollar`]).
    pub fn reply_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(b"-ERR ");
        match self {
            ProtocolError::ExpectedDollar { got } => {
                out.extend_from_slice(b"Protocol error: expected '$', got '");
                out.push(shown_byte(*got));
                out.push(b'\'');
            }
            other => out.extend_from_slice(other.to_string().as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Where the parser is within the current request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Between requests: the next byte decides the request type.
    Idle,
    /// Inside an inline line, searching for its `\n`.
    Inline,
    /// Inside a `*count` header line.
    Count,
    /// Expecting a `$len` header line; `args_left` arguments remain.
    BulkHeader { args_left: usize },
    /// Expecting `len` payload bytes plus the two terminator bytes.
    BulkBody { args_left: usize, len: usize },
    /// Dropping an oversized bulk: `bytes_left` more bytes (payload and terminator) to drop.
    Skipping { args_left: usize, bytes_left: usize },
}

/// What the search for a header line's end found.
enum HeaderEnd {
    /// The `\r` is at this position and one more byte follows it.
    At(usize),
    /// The `\r` is the last byte so far: wait, without the 64 KB check (as Redis does).
    Waiting,
    /// No `\r` yet (or a NUL byte hides it).
    NoTerminator,
}

/// A per-connection, resumable RESP request parser. See the module documentation.
#[derive(Debug)]
pub struct RequestParser {
    stage: Stage,
    /// How many bytes at the front of the buffer were already searched for the current line's
    /// terminator (all of them belong to the current line).
    scanned: usize,
    /// The arguments of the multibulk command in progress.
    pending: Vec<Bytes>,
    /// The total length of `pending`.
    pending_bytes: usize,
    /// The first oversized argument's length in the command in progress.
    oversized: Option<usize>,
    /// Bytes a bulk payload (or a skip) still lacked when `next` last returned `Incomplete`.
    missing: usize,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    /// A parser at the start of a connection.
    pub fn new() -> Self {
        RequestParser {
            stage: Stage::Idle,
            scanned: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            oversized: None,
            missing: 0,
        }
    }

    /// Parses the next command from the front of `buf`, consuming its bytes, into `args`
    /// (cleared first; its capacity is reused). Returns [`Parsed::Incomplete`] when `buf` holds
    /// no complete command; the progress is kept, so call again with the same buffer once more
    /// bytes were appended. Requests that are no command (empty inline lines, `*0`, `*-1`) are
    /// consumed silently. After an `Err` the parser's state is unspecified: close the
    /// connection.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        args: &mut Vec<Bytes>,
        limits: &ParseLimits,
    ) -> Result<Parsed, ProtocolError> {
        args.clear();
        self.missing = 0;
        loop {
            match self.stage {
                Stage::Idle => {
                    let Some(&first) = buf.first() else {
                        return Ok(Parsed::Incomplete);
                    };
                    self.scanned = 0;
                    self.stage = if first == b'*' {
                        Stage::Count
                    } else {
                        Stage::Inline
                    };
                }
                Stage::Inline => {
                    let Some(end) = self.find_terminator(buf, b'\n') else {
                        if buf.len() > INLINE_MAX_BYTES {
                            return Err(ProtocolError::TooBigInlineRequest);
                        }
                        return Ok(Parsed::Incomplete);
                    };
                    let line = buf.split_to(end + 1).freeze();
                    self.stage = Stage::Idle;
                    let mut line_len = end;
                    if line_len > 0 && line[line_len - 1] == b'\r' {
                        line_len -= 1;
                    }
                    split_inline(&line.slice(..line_len), args)?;
                    if args.is_empty() {
                        continue;
                    }
                    let oversized = args
                        .iter()
                        .map(Bytes::len)
                        .find(|&len| len > limits.max_arg_bytes);
                    if let Some(len) = oversized {
                        for arg in args.iter_mut().filter(|a| a.len() > limits.max_arg_bytes) {
                            *arg = Bytes::new();
                        }
                        return Ok(Parsed::Oversized { len });
                    }
                    return Ok(Parsed::Command);
                }
                Stage::Count => {
                    let cr = match self.find_header_end(buf) {
                        HeaderEnd::At(cr) => cr,
                        HeaderEnd::Waiting => return Ok(Parsed::Incomplete),
                        HeaderEnd::NoTerminator => {
                            if buf.len() > INLINE_MAX_BYTES {
                                return Err(ProtocolError::TooBigMultibulkCount);
                            }
                            return Ok(Parsed::Incomplete);
                        }
                    };
                    let count = string2ll(&buf[1..cr]);
                    let count = match count {
                        Some(n) if n <= MAX_MULTIBULK_COUNT => n,
                        _ => return Err(ProtocolError::InvalidMultibulkLength),
                    };
                    if count > UNAUTHENTICATED_MAX_COUNT && limits.auth_required {
                        return Err(ProtocolError::UnauthenticatedMultibulkLength);
                    }
                    buf.advance(cr + 2);
                    self.scanned = 0;
                    if count <= 0 {
                        self.stage = Stage::Idle;
                        continue;
                    }
                    // At most INT_MAX, so it fits a usize on every supported target.
                    let args_left = usize::try_from(count).unwrap_or(usize::MAX);
                    self.clear_pending();
                    self.pending.reserve(args_left.min(PREALLOCATED_ARGS));
                    self.stage = Stage::BulkHeader { args_left };
                }
                Stage::BulkHeader { args_left } => {
                    let cr = match self.find_header_end(buf) {
                        HeaderEnd::At(cr) => cr,
                        HeaderEnd::Waiting => return Ok(Parsed::Incomplete),
                        HeaderEnd::NoTerminator => {
                            if buf.len() > INLINE_MAX_BYTES {
                                return Err(ProtocolError::TooBigBulkCount);
                            }
                            return Ok(Parsed::Incomplete);
                        }
                    };
                    if buf[0] != b'$' {
                        return Err(ProtocolError::ExpectedDollar { got: buf[0] });
                    }
                    let len = match string2ll(&buf[1..cr]) {
                        Some(n) if (0..=MAX_BULK_BYTES as i64).contains(&n) => n,
                        _ => return Err(ProtocolError::InvalidBulkLength),
                    };
                    if len > UNAUTHENTICATED_MAX_BULK && limits.auth_required {
                        return Err(ProtocolError::UnauthenticatedBulkLength);
                    }
                    buf.advance(cr + 2);
                    self.scanned = 0;
                    // 0..=512 MB fits a usize on every supported target.
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    self.stage = if len > limits.max_arg_bytes {
                        self.oversized.get_or_insert(len);
                        Stage::Skipping {
                            args_left,
                            bytes_left: len.saturating_add(2),
                        }
                    } else {
                        Stage::BulkBody { args_left, len }
                    };
                }
                Stage::BulkBody { args_left, len } => {
                    let needed = len.saturating_add(2);
                    if buf.len() < needed {
                        self.missing = needed - buf.len();
                        return Ok(Parsed::Incomplete);
                    }
                    let arg = buf.split_to(len).freeze();
                    buf.advance(2);
                    self.pending_bytes += arg.len();
                    self.push_pending(arg, args_left);
                    if let Some(done) = self.finish_argument(args_left, args) {
                        return Ok(done);
                    }
                }
                Stage::Skipping {
                    args_left,
                    bytes_left,
                } => {
                    let dropped = bytes_left.min(buf.len());
                    buf.advance(dropped);
                    let bytes_left = bytes_left - dropped;
                    if bytes_left > 0 {
                        self.stage = Stage::Skipping {
                            args_left,
                            bytes_left,
                        };
                        self.missing = bytes_left;
                        return Ok(Parsed::Incomplete);
                    }
                    self.push_pending(Bytes::new(), args_left);
                    if let Some(done) = self.finish_argument(args_left, args) {
                        return Ok(done);
                    }
                }
            }
        }
    }

    /// How many more bytes the bulk being read (or skipped) needed when [`Self::next`] last
    /// returned [`Parsed::Incomplete`]: a hint for sizing the next read. 0 when the parser is
    /// waiting for a line, or returned something else.
    pub fn wants_bytes(&self) -> usize {
        self.missing
    }

    /// The bytes of the complete arguments held for the command in progress (they are no
    /// longer in the caller's buffer). With the buffer's length, what this connection holds.
    pub fn pending_arg_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// True between commands: no part of a request has been consumed.
    pub fn is_idle(&self) -> bool {
        self.stage == Stage::Idle
    }

    /// Searches the current line for `wanted`, starting where the last search stopped. Like
    /// `strchr`, a NUL byte ends the search unsuccessfully (and is found again next time).
    fn find_terminator(&mut self, buf: &[u8], wanted: u8) -> Option<usize> {
        let from = self.scanned.min(buf.len());
        match buf[from..].iter().position(|&b| b == wanted || b == 0) {
            Some(offset) => {
                let at = from + offset;
                self.scanned = at;
                (buf[at] == wanted).then_some(at)
            }
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }

    /// Where a header line's `\r` is. The line is complete once one more byte follows the
    /// `\r` (that byte is skipped unchecked, as Redis does).
    fn find_header_end(&mut self, buf: &[u8]) -> HeaderEnd {
        match self.find_terminator(buf, b'\r') {
            Some(cr) if cr + 1 < buf.len() => HeaderEnd::At(cr),
            Some(_) => HeaderEnd::Waiting,
            None => HeaderEnd::NoTerminator,
        }
    }

    /// Appends one argument, growing the list only as arguments arrive (never by more than the
    /// arguments still announced).
    fn push_pending(&mut self, arg: Bytes, args_left: usize) {
        if self.pending.len() == self.pending.capacity() {
            let grow = self.pending.capacity().max(1).min(args_left);
            self.pending.reserve_exact(grow);
        }
        self.pending.push(arg);
    }

    /// Counts one argument done; at the last one, hands the command over.
    fn finish_argument(&mut self, args_left: usize, args: &mut Vec<Bytes>) -> Option<Parsed> {
        let args_left = args_left - 1;
        if args_left > 0 {
            self.stage = Stage::BulkHeader { args_left };
            return None;
        }
        self.stage = Stage::Idle;
        std::mem::swap(args, &mut self.pending);
        let oversized = self.oversized.take();
        self.clear_pending();
        Some(match oversized {
            Some(len) => Parsed::Oversized { len },
            None => Parsed::Command,
        })
    }

    /// Empties the pending list, giving back memory a huge command left behind.
    fn clear_pending(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.oversized = None;
        if self.pending.capacity() > PREALLOCATED_ARGS {
            self.pending.shrink_to(PREALLOCATED_ARGS);
        }
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The value of a hex digit (the caller checked it is one).
fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Splits an inline line (without its terminator; it holds no NUL) into arguments the way
/// Redis's `sdssplitargs` does. An unquoted token is a slice of `line`; a token with quotes is
/// unescaped into new bytes.
fn split_inline(line: &Bytes, args: &mut Vec<Bytes>) -> Result<(), ProtocolError> {
    let s: &[u8] = line;
    let at = |i: usize| s.get(i).copied().unwrap_or(0);
    let mut p = 0;
    loop {
        while p < s.len() && is_c_space(s[p]) {
            p += 1;
        }
        if p >= s.len() {
            return Ok(());
        }
        let start = p;
        // A plain token: up to a separator, with no quote in it.
        while p < s.len() && !matches!(s[p], b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\'') {
            p += 1;
        }
        if !matches!(at(p), b'"' | b'\'') {
            args.push(line.slice(start..p));
            continue;
        }
        // The token has quotes: build it byte by byte from its start.
        let mut token = s[start..p].to_vec();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            let c = at(p);
            if in_double {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    token.push(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    token.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    token.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    token.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    token.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        if c != 0 {
                            p += 1;
                        }
                        break;
                    }
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    other => token.push(other),
                }
            }
            p += 1;
        }
        args.push(Bytes::from(token));
    }
}

#[cfg(test)]
mod tests;
