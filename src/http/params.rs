//! Request parameters that more than one route family reads: the `ttl` of a write (from a query
//! string, a form body or a batch item), with HTTP's own rule for it.
//!
//! Why a module of its own: the single-key routes and the batch bodies both parse a TTL, and
//! each must give the same answer and the same error; keeping the rule here lets both import it
//! without importing each other.
//!
//! Must never: accept a TTL that is zero, negative, over [`MAX_TTL`] or not Go duration syntax.

use std::time::Duration;

use super::reply::ApiError;
use crate::clock::TICK;
use crate::duration::parse_ttl;

/// The longest TTL accepted over HTTP: 10 years.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses an optional `ttl` parameter: Go duration syntax, positive, at most [`MAX_TTL`].
pub fn ttl_param(raw: Option<&[u8]>) -> Result<Option<Duration>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = std::str::from_utf8(raw).map_err(|_| ApiError::NotUtf8("ttl"))?;
    let ticks = parse_ttl(text, TICK, MAX_TTL)?;
    // At most 10 years of 1 ms ticks: far inside u64 nanoseconds.
    Ok(Some(Duration::from_nanos(
        (TICK.as_nanos() as u64).saturating_mul(ticks),
    )))
}
