//! Method + path → handler: which route family answers a request, and the statistics every
//! request is counted in. The handlers live one family per file: the original tool's routes
//! (`original`), `/v1/kv/{key}` (`kv`), `/v1/mget` and `/v1/mset` (`batch_routes`), the admin
//! routes (`admin`) and the status pages ([`super::dashboard`]); `/health` and the index page
//! `/` are answered here.
//!
//! Every handler validates all of its input before it touches the store, so a rejected request
//! changes nothing.
//!
//! Must never: log or echo a key or value, panic on input, or answer a client error with 5xx.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};

use super::params::read_body;
use super::query::decode_path;
use super::reply::{json, not_allowed, with_type, ApiError, Reply};
use super::stats::OpKind;
use super::{admin, batch_routes, kv, original, AppState};
use crate::store::Shard;

static HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const INDEX_HTML: &str = include_str!("index.html");

/// Handles one request.
pub async fn route<S: Shard>(
    state: Arc<AppState<S>>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Reply {
    let start = state.stats.start();
    let (kind, result) = dispatch(&state, peer, req).await;
    let reply = result.unwrap_or_else(ApiError::into_reply);
    let kind = match (kind, reply.status()) {
        (OpKind::GetHit, StatusCode::NOT_FOUND) => OpKind::GetMiss,
        (kind, _) => kind,
    };
    state.stats.record(
        kind,
        start,
        reply.status().is_client_error() && kind != OpKind::GetMiss,
    );
    reply
}

async fn dispatch<S: Shard>(
    state: &AppState<S>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> (OpKind, Result<Reply, ApiError>) {
    // Admin routes with --admin-token check that token instead (one Authorization header
    // cannot carry both).
    let admin_by_token = state.admin_token.is_some() && req.uri().path().starts_with("/admin/");
    if let Some(password) = state.password.as_ref().filter(|_| !admin_by_token) {
        let given = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .map_or(&b""[..], |v| v.as_bytes());
        let expected = format!("Bearer {password}");
        // Constant time in the bytes compared, as for the admin token.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(given, expected.as_bytes())) {
            return (OpKind::Other, Err(ApiError::Unauthorized));
        }
    }
    let method = req.method().clone();
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("").as_bytes();
    match path {
        "/get" => match method {
            Method::GET | Method::HEAD => (OpKind::GetHit, original::get(state, query, &method)),
            _ => (OpKind::Other, not_allowed(&method, "GET, HEAD")),
        },
        "/set" => match method {
            Method::GET => (OpKind::Set, original::set(state, query).await),
            Method::POST => match read_body(state, req).await {
                Ok(body) => (OpKind::Set, original::set(state, &body).await),
                Err(e) => (OpKind::Set, Err(e)),
            },
            _ => (OpKind::Other, not_allowed(&method, "GET, POST")),
        },
        "/v1/mget" => match method {
            Method::POST => {
                let query = query.to_vec();
                let body = read_body(state, req).await;
                (
                    OpKind::Mget,
                    body.and_then(|b| batch_routes::mget(state, &query, &b)),
                )
            }
            _ => (OpKind::Other, not_allowed(&method, "POST")),
        },
        "/v1/mset" => match method {
            Method::POST => {
                let query = query.to_vec();
                let body = read_body(state, req).await;
                match body {
                    Ok(b) => (OpKind::Mset, batch_routes::mset(state, &query, &b).await),
                    Err(e) => (OpKind::Mset, Err(e)),
                }
            }
            _ => (OpKind::Other, not_allowed(&method, "POST")),
        },
        "/dashboard" => match method {
            Method::GET => (OpKind::Other, Ok(super::dashboard::dashboard(state))),
            _ => (OpKind::Other, not_allowed(&method, "GET")),
        },
        "/metrics" => match method {
            Method::GET => (OpKind::Other, Ok(super::dashboard::metrics(state))),
            _ => (OpKind::Other, not_allowed(&method, "GET")),
        },
        "/health" => match method {
            Method::GET => (
                OpKind::Other,
                Ok(json(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
            ),
            _ => (OpKind::Other, not_allowed(&method, "GET")),
        },
        "/" => match method {
            Method::GET | Method::HEAD => (
                OpKind::Other,
                Ok(with_type(
                    StatusCode::OK,
                    &HTML,
                    Bytes::from_static(INDEX_HTML.as_bytes()),
                )),
            ),
            _ => (OpKind::Other, not_allowed(&method, "GET, HEAD")),
        },
        _ => {
            #[cfg(feature = "testing")]
            if path == "/admin/faults" && method == Method::POST {
                let result = admin::authorize(state, peer, &req)
                    .and_then(|()| super::faults::admin_faults(query));
                return (OpKind::Other, result);
            }
            if path == "/admin/config" {
                return (OpKind::Other, admin::config(state, peer, req).await);
            }
            if path == "/admin/snapshot" {
                return (OpKind::Other, admin::snapshot(state, peer, &req).await);
            }
            if let Some(rest) = path.strip_prefix("/admin/shards/") {
                return (OpKind::Other, admin::shard(state, peer, &req, rest).await);
            }
            if let Some(raw_key) = path.strip_prefix("/v1/kv/") {
                let key = match decode_path(raw_key.as_bytes()) {
                    Ok(key) => key.into_owned(),
                    Err(e) => return (OpKind::Other, Err(e.into())),
                };
                return kv::rest(state, req, key).await;
            }
            let _ = peer;
            (
                OpKind::Other,
                Err(ApiError::NoRoute(format!("{method} {path}"))),
            )
        }
    }
}
