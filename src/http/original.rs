//! The original tool's routes: `GET /get?key=K`, and `GET /set?key=K&value=V&ttl=60s` or
//! `POST /set` with the same as a form body.
//!
//! Kept for the original tool's clients, with what README's "Compatibility with the original
//! tool" keeps or fixes: `/set` answers `OK`, `/get` the raw value; no ETag and no conditions
//! (those are the `/v1/kv` family's).
//!
//! Must never: let a stored value be sniffed as HTML (the original's stored XSS), or log or
//! echo a key or value.

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::ack::{ack_param, acknowledged};
use super::kv::value_reply;
use super::params::{check_key, ttl_param};
use super::query::Params;
use super::reply::{with_type, ApiError, Reply, TEXT};
use super::AppState;
use crate::store::{Condition, Lookup, Shard};

/// `GET /get?key=K`: the raw value, or 404.
pub(super) fn get<S: Shard>(
    state: &AppState<S>,
    query: &[u8],
    method: &Method,
) -> Result<Reply, ApiError> {
    let params = Params::parse(query)?;
    let key = params.key.ok_or(ApiError::MissingParam("key"))?;
    check_key(state.store.limits(), &key)?;
    match state.store.get(&key) {
        Lookup::Hit(found) => Ok(value_reply(state, found, method, false)),
        Lookup::Miss | Lookup::Expired => Err(ApiError::NotFound),
    }
}

/// `GET /set?key=K&value=V&ttl=60s`, or `POST /set` with the same as a form body (for values
/// too long for a URL).
pub(super) async fn set<S: Shard>(state: &AppState<S>, form: &[u8]) -> Result<Reply, ApiError> {
    let params = Params::parse(form)?;
    let key = params.key.ok_or(ApiError::MissingParam("key"))?;
    let value = params.value.ok_or(ApiError::MissingParam("value"))?;
    let ttl = ttl_param(params.ttl.as_deref())?;
    let policy = ack_param(state, params.ack.as_deref())?;
    check_key(state.store.limits(), &key)?;
    let receipt = state.store.set(&key, &value, ttl, Condition::Always)?;
    acknowledged(receipt.acknowledged(policy)).await?;
    Ok(with_type(StatusCode::OK, &TEXT, Bytes::from_static(b"OK")))
}
