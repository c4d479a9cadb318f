//! The admin routes: `POST /admin/shards/{id}/fail`, `POST /admin/shards/{id}/recover`,
//! `POST /admin/snapshot`, and who may call them ([`authorize`]: loopback clients, or holders
//! of `--admin-token`).
//!
//! Must never: run an admin action for an unauthorized caller, compare the token in time that
//! depends on how much of it matched, or block a tokio worker on a failover or a snapshot.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use subtle::ConstantTimeEq;

use super::reply::{joined, json, not_allowed, ApiError, Reply};
use super::AppState;
use crate::store::Shard;

/// `POST /admin/shards/{id}/fail` and `POST /admin/shards/{id}/recover`.
pub(super) async fn shard<S: Shard>(
    state: &AppState<S>,
    peer: SocketAddr,
    req: &Request<Incoming>,
    rest: &str,
) -> Result<Reply, ApiError> {
    let no_route = || ApiError::NoRoute(format!("{} {}", req.method(), req.uri().path()));
    let (id, action) = rest.split_once('/').ok_or_else(no_route)?;
    if action != "fail" && action != "recover" {
        return Err(no_route());
    }
    if req.method() != Method::POST {
        return not_allowed(req.method(), "POST");
    }
    authorize(state, peer, req)?;
    let shard: usize = id.parse().map_err(|_| ApiError::BadParam {
        name: "shard id",
        value: id.to_string(),
        expected: "a shard number from /dashboard",
    })?;
    let replicas = state.replicas.clone();
    if action == "fail" {
        let old = (shard < replicas.store().shard_count()).then(|| replicas.primary_of(shard));
        // Promotion waits for the replica to drain: off the async workers.
        let promoted = joined(
            tokio::task::spawn_blocking(move || replicas.fail_primary(shard)).await,
            "failing over the shard",
        )??;
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "shard": shard, "failed": old, "primary": promoted }),
        ));
    }
    let asked = replicas.request_recovery(shard)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while replicas.failed_copies(shard) != 0 {
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Failover(
                crate::replication::FailoverError::DrainTimeout { shard },
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "shard": shard,
            "recovered": asked,
            "primary": replicas.primary_of(shard),
        }),
    ))
}

/// Admin routes answer loopback clients, or, with `--admin-token`, holders of the token.
pub(super) fn authorize<S: Shard>(
    state: &AppState<S>,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Result<(), ApiError> {
    match &state.admin_token {
        Some(token) => {
            let expected = format!("Bearer {token}");
            let given = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .map_or(&b""[..], |v| v.as_bytes());
            // Constant time in the bytes compared, so response timing does not reveal how much
            // of a guess was right.
            if bool::from(given.ct_eq(expected.as_bytes())) {
                Ok(())
            } else {
                Err(ApiError::Forbidden)
            }
        }
        None if peer.ip().is_loopback() => Ok(()),
        None => Err(ApiError::Forbidden),
    }
}

/// `POST /admin/snapshot`: writes a snapshot now and answers with its path.
pub(super) async fn snapshot<S: Shard>(
    state: &AppState<S>,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Result<Reply, ApiError> {
    if req.method() != Method::POST {
        return not_allowed(req.method(), "POST");
    }
    authorize(state, peer, req)?;
    let log = state.log.as_ref().ok_or(ApiError::NoPersistence)?;
    let done = log.request_snapshot();
    let result = joined(
        tokio::task::spawn_blocking(move || done.recv_timeout(Duration::from_secs(600))).await,
        "waiting for the snapshot",
    )?
    .map_err(|_| ApiError::SnapshotFailed("timed out".into()))?;
    let path = result.map_err(ApiError::SnapshotFailed)?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "path": path.display().to_string() }),
    ))
}
