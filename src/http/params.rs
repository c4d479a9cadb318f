//! Request parameters that more than one route family reads: the request body (bounded in size
//! and time), and the `ttl` of a write (from a query string, a form body or a batch item), with
//! HTTP's own rule for it.
//!
//! Why a module of its own: the single-key routes and the batch routes both read bodies and
//! parse TTLs, and each must give the same answer and the same error; keeping the rules here
//! lets every route family import them without importing each other.
//!
//! Must never: read more of a body than `--max-body-bytes` or wait for it longer than the body
//! timeout, or accept a TTL that is zero, negative, over [`MAX_TTL`] or not Go duration syntax.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::Request;

use super::reply::ApiError;
use super::AppState;
use crate::clock::TICK;
use crate::duration::parse_ttl;
use crate::store::{Limits, Shard};

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

/// Checks a key against HTTP's rule (not empty) and the store's size limit. Routes call it
/// before reading a body, so a request for a bad key is refused without reading its value.
pub(super) fn check_key(limits: &Limits, key: &[u8]) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(ApiError::EmptyKey);
    }
    Ok(limits.check_key(key)?)
}

/// Reads the whole request body, refusing more than the largest value plus framing.
pub(super) async fn read_body<S: Shard>(
    state: &AppState<S>,
    req: Request<Incoming>,
) -> Result<Bytes, ApiError> {
    let limit = state.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    let timeout = state.limits.body_timeout;
    let collected = tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect())
        .await
        .map_err(|_| ApiError::BodyTimeout {
            secs: timeout.as_secs(),
        })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::BodyTooLarge { limit })
        }
        Err(e) => Err(ApiError::BodyRead(e.to_string())),
    }
}
