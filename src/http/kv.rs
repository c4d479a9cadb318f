//! The REST family `/v1/kv/{key}`: GET, HEAD, PUT and DELETE of one key, with ETags and the
//! conditions of `If-Match` / `If-None-Match` ([`super::preconditions`]).
//!
//! Every handler validates all of its input (parameters, conditions, key) before it touches
//! the store, so a rejected request changes nothing.
//!
//! Must never: log or echo a key or value, let a stored value be sniffed as HTML, or answer a
//! failed condition with anything but 412 (or 304 for a matching `If-None-Match` on a read).

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, ETAG};
use hyper::{Method, Request, StatusCode};

use super::ack::{ack_param, acknowledged};
use super::params::{check_key, read_body, ttl_param};
use super::preconditions::Preconditions;
use super::query::Params;
use super::reply::{empty, not_allowed, with_type, ApiError, Body, Reply, OCTETS};
use super::stats::OpKind;
use super::AppState;
use crate::clock::{Tick, NEVER};
use crate::store::{Found, Lookup, Shard, StoreError};

static NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// `/v1/kv/{key}`: GET, HEAD, PUT, DELETE.
pub(super) async fn rest<S: Shard>(
    state: &AppState<S>,
    req: Request<Incoming>,
    key: Vec<u8>,
) -> (OpKind, Result<Reply, ApiError>) {
    let method = req.method().clone();
    match method {
        Method::GET | Method::HEAD => (OpKind::GetHit, rest_get(state, &req, &key, &method)),
        Method::PUT => (OpKind::Set, rest_put(state, req, key).await),
        Method::DELETE => (OpKind::Delete, rest_delete(state, &req, &key).await),
        _ => (
            OpKind::Other,
            not_allowed(&method, "GET, HEAD, PUT, DELETE"),
        ),
    }
}

/// `GET`/`HEAD /v1/kv/{key}`: the value with its ETag; 304 when `If-None-Match` matches it,
/// 412 when `If-Match` does not, 404 when absent (whatever the conditions).
fn rest_get<S: Shard>(
    state: &AppState<S>,
    req: &Request<Incoming>,
    key: &[u8],
    method: &Method,
) -> Result<Reply, ApiError> {
    let pre = Preconditions::of(req)?;
    check_key(state.store.limits(), key)?;
    let found = match state.store.get(key) {
        Lookup::Hit(found) => found,
        Lookup::Miss | Lookup::Expired => return Err(ApiError::NotFound),
    };
    // RFC 9110 §13.2.2: If-Match first, then If-None-Match.
    if pre
        .if_match
        .is_some_and(|tags| !tags.matches(found.version))
    {
        return Err(StoreError::PreconditionFailed {
            current: Some(found.version),
        }
        .into());
    }
    if pre
        .if_none_match
        .is_some_and(|tags| tags.matches(found.version))
    {
        let mut reply = empty(StatusCode::NOT_MODIFIED);
        reply.headers_mut().insert(ETAG, etag(found.version));
        return Ok(reply);
    }
    Ok(value_reply(state, found, method, true))
}

async fn rest_put<S: Shard>(
    state: &AppState<S>,
    req: Request<Incoming>,
    key: Vec<u8>,
) -> Result<Reply, ApiError> {
    let params = Params::parse(req.uri().query().unwrap_or("").as_bytes())?;
    let ttl = ttl_param(params.ttl.as_deref())?;
    let policy = ack_param(state, params.ack.as_deref())?;
    let condition = Preconditions::of(&req)?.condition()?;
    check_key(state.store.limits(), &key)?;
    let body = read_body(state, req).await?;
    let receipt = state.store.set(&key, &body, ttl, condition)?;
    acknowledged(receipt.acknowledged(policy)).await?;
    let mut reply = empty(StatusCode::NO_CONTENT);
    reply.headers_mut().insert(ETAG, etag(receipt.version));
    Ok(reply)
}

/// `DELETE /v1/kv/{key}`: 204; 412 when a condition fails (nothing is deleted); 404 when
/// absent (whatever the conditions).
async fn rest_delete<S: Shard>(
    state: &AppState<S>,
    req: &Request<Incoming>,
    key: &[u8],
) -> Result<Reply, ApiError> {
    let params = Params::parse(req.uri().query().unwrap_or("").as_bytes())?;
    let policy = ack_param(state, params.ack.as_deref())?;
    let condition = Preconditions::of(req)?.condition()?;
    check_key(state.store.limits(), key)?;
    let Some(receipt) = state.store.delete_if(key, condition)? else {
        return Err(ApiError::NotFound);
    };
    acknowledged(receipt.acknowledged(policy)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The stored bytes as they are, never sniffed as HTML.
pub(super) fn value_reply<S: Shard>(
    state: &AppState<S>,
    found: Found,
    method: &Method,
    meta: bool,
) -> Reply {
    let len = found.record.value_len();
    let body = if method == Method::HEAD {
        Body::Bytes(Bytes::new())
    } else {
        Body::from(found.record)
    };
    let mut reply = with_type(StatusCode::OK, &OCTETS, body);
    let headers = reply.headers_mut();
    headers.insert("x-content-type-options", NOSNIFF.clone());
    if method == Method::HEAD {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    if meta {
        headers.insert(ETAG, etag(found.version));
        if found.deadline != NEVER {
            let left: Tick = found.deadline.saturating_sub(state.store.clock().now());
            headers.insert("x-ttl-ms", HeaderValue::from(left));
        }
    }
    reply
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::try_from(format!("\"{version}\"")).expect("digits and quotes are a valid header")
}
