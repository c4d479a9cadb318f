//! The errors a command answers with, each displayed as Redis 7.0 words it (`ERR ...`,
//! `OOM ...`), without the leading `-`.
//!
//! Must never: word an error differently from Redis where Redis has the same error; our own
//! errors (limits Redis does not have) name the flag that raises the limit.

use std::borrow::Cow;

use crate::redis_value::ValueError;
use crate::store::StoreError;

/// Why a command failed; `Display` is the reply text.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Wrong number of arguments (`name` is the command's full lowercase name).
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(&'static str),
    /// `shared.syntaxerr`.
    #[error("ERR syntax error")]
    Syntax,
    /// An integer argument that is not one, or out of range.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// A float argument that is not one.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// `shared.nokeyerr`.
    #[error("ERR no such key")]
    NoSuchKey,
    /// An expire time out of range, for command `0`.
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpireTime(&'static str),
    /// `shared.outofrangeerr` for SELECT and friends.
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// `shared.noautherr`.
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// A failed AUTH.
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// A command argument longer than `--max-value-bytes` (dropped unread).
    #[error("ERR an argument is {len} bytes; the maximum is {max} bytes (--max-value-bytes)")]
    ArgumentTooLarge {
        /// Its announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The store refused.
    #[error("{}", store_text(.0))]
    Store(#[from] StoreError),
    /// A value computation refused (Redis's own texts).
    #[error("{0}")]
    Value(#[from] ValueError),
    /// Any other text, already in Redis's words.
    #[error("{0}")]
    Other(Cow<'static, str>),
    /// A text that echoes a client's bytes, exactly (they need not be UTF-8).
    #[error("{}", String::from_utf8_lossy(.0))]
    Echo(Vec<u8>),
}

impl CommandError {
    /// An error with this exact text (`ERR ...`).
    pub fn other(text: impl Into<Cow<'static, str>>) -> CommandError {
        CommandError::Other(text.into())
    }

    /// `prefix`, a client's argument as Redis's `%.<limit>s` prints it (cut at `limit` bytes
    /// and at a NUL byte), then `suffix`.
    pub fn echo(prefix: &str, arg: &[u8], limit: usize, suffix: &str) -> CommandError {
        let mut text = prefix.as_bytes().to_vec();
        text.extend_from_slice(c_string(arg, limit));
        text.extend_from_slice(suffix.as_bytes());
        CommandError::Echo(text)
    }

    /// The reply text, byte for byte.
    pub fn text(&self) -> Cow<'_, [u8]> {
        match self {
            CommandError::Echo(bytes) => Cow::Borrowed(bytes),
            other => Cow::Owned(other.to_string().into_bytes()),
        }
    }
}

/// `arg` as C's `%.<limit>s` prints it: at most `limit` bytes, stopping at a NUL.
pub fn c_string(arg: &[u8], limit: usize) -> &[u8] {
    let arg = &arg[..arg.len().min(limit)];
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    &arg[..end]
}

/// How Redis words a store refusal, or ours where Redis has no such limit.
fn store_text(e: &StoreError) -> String {
    match e {
        StoreError::MemoryFull { .. } => {
            "OOM command not allowed when used memory > 'maxmemory'.".to_string()
        }
        StoreError::LogUnavailable { .. } => format!("MISCONF {e}"),
        StoreError::KeyTooLong { .. }
        | StoreError::ValueTooLarge { .. }
        | StoreError::TtlNotPositive
        | StoreError::PreconditionFailed { .. }
        | StoreError::ShuttingDown
        | StoreError::UndeclaredKey => format!("ERR {e}"),
    }
}

/// The error code of a reply text: its first word (`ERR`, `OOM`, `WRONGPASS` ...), for INFO
/// errorstats.
pub fn error_code(text: &[u8]) -> String {
    let end = text.iter().position(|&c| c == b' ').unwrap_or(text.len());
    String::from_utf8_lossy(&text[..end]).into_owned()
}
