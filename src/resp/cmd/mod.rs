//! Command handlers, one file per family (as mini-redis keeps `cmd/`): each takes the
//! command's arguments (name first, arity already checked) and writes its reply, or returns a
//! [`CommandError`](super::error::CommandError) for the dispatcher to send.
//!
//! Shared here: option matching and the conversions between Redis's wall-clock times and the
//! store's ticks.

pub mod bits;
pub mod client;
pub mod config;
pub mod connection;
pub mod counters;
pub mod expire;
pub mod flush;
pub mod info;
pub mod introspection;
pub mod keys;
pub mod lcs;
pub mod persistence;
pub mod scan;
pub mod strings;
pub mod transaction;

use crate::clock::{Tick, NEVER};

use super::clients::unix_ms;
use super::error::CommandError;

/// Whether `arg` is `option`, ignoring ASCII case.
#[inline]
pub fn is(arg: &[u8], option: &str) -> bool {
    arg.eq_ignore_ascii_case(option.as_bytes())
}

/// Parses an integer argument (`string2ll` rules).
pub fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    crate::redis_value::integer::string2ll(arg).ok_or(CommandError::NotInteger)
}

/// Parses an `int` argument (Redis's `getIntFromObjectOrReply`).
pub fn int32(arg: &[u8]) -> Result<i32, CommandError> {
    let n = integer(arg)?;
    i32::try_from(n).map_err(|_| {
        CommandError::other(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        )
    })
}

/// Where an absolute unix time in milliseconds falls on the store's clock: `None` when it has
/// already passed (Redis then deletes the key instead of setting it).
pub fn tick_at_unix_ms(now_tick: Tick, unix_ms_at: i64) -> Option<Tick> {
    let now_ms = unix_ms() as i64;
    if unix_ms_at <= now_ms {
        return None;
    }
    let ahead = (unix_ms_at - now_ms) as u64;
    Some(now_tick.saturating_add(ahead).min(NEVER - 1))
}

/// The milliseconds left before `deadline` (at least 0).
pub fn ms_left(now_tick: Tick, deadline: Tick) -> i64 {
    deadline.saturating_sub(now_tick).min(i64::MAX as u64) as i64
}

/// The unix time in milliseconds of `deadline`.
pub fn unix_ms_of(now_tick: Tick, deadline: Tick) -> i64 {
    (unix_ms() as i64).saturating_add(ms_left(now_tick, deadline))
}

/// An expiry as a command gives it: relative or absolute, in seconds or milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryUnit {
    /// `EX`, `EXPIRE`, `SETEX`.
    Seconds,
    /// `PX`, `PEXPIRE`, `PSETEX`.
    Millis,
    /// `EXAT`, `EXPIREAT`.
    UnixSeconds,
    /// `PXAT`, `PEXPIREAT`.
    UnixMillis,
}

/// The expiry option `arg` names (`EX`, `PX`, `EXAT`, `PXAT`), if any.
pub fn expiry_option(arg: &[u8]) -> Option<ExpiryUnit> {
    if is(arg, "ex") {
        Some(ExpiryUnit::Seconds)
    } else if is(arg, "px") {
        Some(ExpiryUnit::Millis)
    } else if is(arg, "exat") {
        Some(ExpiryUnit::UnixSeconds)
    } else if is(arg, "pxat") {
        Some(ExpiryUnit::UnixMillis)
    } else {
        None
    }
}

/// Redis's `getExpireMillisecondsOrReply` for SET, SETEX, PSETEX and GETEX: the absolute unix
/// milliseconds of the expiry, refusing values `<= 0` and overflows with "invalid expire
/// time in '<command>'".
pub fn expire_at_ms(
    arg: &[u8],
    unit: ExpiryUnit,
    command: &'static str,
) -> Result<i64, CommandError> {
    let n = integer(arg)?;
    let invalid = CommandError::InvalidExpireTime(command);
    if n <= 0 {
        return Err(invalid);
    }
    let ms = match unit {
        ExpiryUnit::Seconds | ExpiryUnit::UnixSeconds => {
            if n > i64::MAX / 1000 {
                return Err(invalid);
            }
            n * 1000
        }
        ExpiryUnit::Millis | ExpiryUnit::UnixMillis => n,
    };
    match unit {
        ExpiryUnit::Seconds | ExpiryUnit::Millis => ms.checked_add(unix_ms() as i64).ok_or(invalid),
        ExpiryUnit::UnixSeconds | ExpiryUnit::UnixMillis => Ok(ms),
    }
}
