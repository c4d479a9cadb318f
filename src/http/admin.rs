//! The admin routes: `POST /admin/shards/{id}/fail`, `POST /admin/shards/{id}/recover`,
//! `POST /admin/snapshot`, `GET`/`POST /admin/config` (the memory limit and the eviction
//! settings, changed at run time), and who may call them ([`authorize`]: loopback clients, or
//! holders of `--admin-token`).
//!
//! Must never: run an admin action for an unauthorized caller, compare the token in time that
//! depends on how much of it matched, block a tokio worker on a failover or a snapshot, or
//! apply part of a settings change that has a bad field.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use subtle::ConstantTimeEq;

use super::params::read_body;
use super::reply::{joined, json, not_allowed, ApiError, Reply};
use super::AppState;
use crate::store::eviction::MAX_SAMPLES;
use crate::store::{EvictionPolicy, Shard, ShardedStore};

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

/// The fields `POST /admin/config` accepts, as its error for any other names them.
const CONFIG_FIELDS: &str = "one of the fields maxmemory_policy, maxmemory_samples, max_memory";

/// What `POST /admin/config`'s error says a policy may be.
const POLICY_NAMES: &str = "one of volatile-lru, volatile-lfu, volatile-random, volatile-ttl, \
     allkeys-lru, allkeys-lfu, allkeys-random, noeviction";

/// The longest piece of a rejected field or value an error repeats.
const ECHO_LIMIT: usize = 64;

/// `GET /admin/config` answers the settings; `POST /admin/config` with a JSON object holding any
/// of `maxmemory_policy`, `maxmemory_samples` (1 to 64) and `max_memory` (bytes, 0 for no
/// limit) checks every field, then applies them all, and answers the settings in force.
pub(super) async fn config<S: Shard>(
    state: &AppState<S>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    if method != Method::GET && method != Method::POST {
        return not_allowed(&method, "GET, POST");
    }
    authorize(state, peer, &req)?;
    if method == Method::POST {
        let body = read_body(state, req).await?;
        let change = SettingsChange::parse(&body)?;
        change.apply(&state.store);
    }
    Ok(json(StatusCode::OK, &settings(&state.store)))
}

/// The settings `/admin/config` reports (`max_memory` 0: no limit, as Redis shows it).
fn settings<S: Shard>(store: &ShardedStore<S>) -> serde_json::Value {
    let max_memory = match store.max_memory() {
        u64::MAX => 0,
        limit => limit,
    };
    serde_json::json!({
        "maxmemory_policy": store.eviction_policy().name(),
        "maxmemory_samples": store.eviction_samples(),
        "max_memory": max_memory,
    })
}

/// A checked `POST /admin/config` body: every field present is valid.
#[derive(Debug, Default, PartialEq, Eq)]
struct SettingsChange {
    policy: Option<EvictionPolicy>,
    samples: Option<usize>,
    /// `u64::MAX` for no limit.
    max_memory: Option<u64>,
}

impl SettingsChange {
    /// Checks the whole body; the first bad field refuses it.
    fn parse(body: &[u8]) -> Result<SettingsChange, ApiError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ApiError::Json(e.to_string()))?;
        let serde_json::Value::Object(fields) = value else {
            return Err(ApiError::Json(
                "expected an object such as {\"maxmemory_policy\": \"allkeys-lru\"}".into(),
            ));
        };
        let mut change = SettingsChange::default();
        for (name, value) in &fields {
            match name.as_str() {
                "maxmemory_policy" => {
                    let policy = value
                        .as_str()
                        .and_then(|name| EvictionPolicy::parse(name).ok())
                        .ok_or_else(|| bad("maxmemory_policy", value, POLICY_NAMES))?;
                    change.policy = Some(policy);
                }
                "maxmemory_samples" => {
                    let samples = value
                        .as_u64()
                        .filter(|n| (1..=MAX_SAMPLES as u64).contains(n))
                        .ok_or_else(|| {
                            bad("maxmemory_samples", value, "an integer from 1 to 64")
                        })?;
                    change.samples = Some(samples as usize);
                }
                "max_memory" => {
                    let bytes = value.as_u64().ok_or_else(|| {
                        bad(
                            "max_memory",
                            value,
                            "a whole number of bytes (0 for no limit)",
                        )
                    })?;
                    change.max_memory = Some(if bytes == 0 { u64::MAX } else { bytes });
                }
                other => {
                    return Err(ApiError::BadParam {
                        name: "field",
                        value: other.chars().take(ECHO_LIMIT).collect(),
                        expected: CONFIG_FIELDS,
                    })
                }
            }
        }
        Ok(change)
    }

    /// Applies every field present: the limit first, then the policy and its sample size.
    fn apply<S: Shard>(&self, store: &ShardedStore<S>) {
        if let Some(limit) = self.max_memory {
            store.set_max_memory(limit);
        }
        if let Some(policy) = self.policy {
            store.set_eviction_policy(policy);
        }
        if let Some(samples) = self.samples {
            store.set_eviction_samples(samples);
        }
    }
}

/// The 400 for a field whose value is not accepted (the value repeated, shortened).
fn bad(name: &'static str, value: &serde_json::Value, expected: &'static str) -> ApiError {
    let shown = match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    ApiError::BadParam {
        name,
        value: shown.chars().take(ECHO_LIMIT).collect(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_body_is_checked_whole_and_names_the_bad_field() {
        let change = SettingsChange::parse(
            br#"{"maxmemory_policy": "ALLKEYS-LRU", "maxmemory_samples": 10, "max_memory": 0}"#,
        )
        .unwrap();
        assert_eq!(
            change,
            SettingsChange {
                policy: Some(EvictionPolicy::AllKeysLru),
                samples: Some(10),
                max_memory: Some(u64::MAX),
            }
        );
        assert_eq!(
            SettingsChange::parse(b"{}").unwrap(),
            SettingsChange::default()
        );
        let cases: [(&[u8], &str); 7] = [
            (
                br#"{"maxmemory_policy": "lru"}"#,
                "invalid maxmemory_policy \"lru\"",
            ),
            (
                br#"{"maxmemory_policy": 3}"#,
                "invalid maxmemory_policy \"3\"",
            ),
            (
                br#"{"maxmemory_samples": 0}"#,
                "invalid maxmemory_samples \"0\"",
            ),
            (br#"{"maxmemory_samples": 65}"#, "from 1 to 64"),
            (br#"{"max_memory": -1}"#, "invalid max_memory \"-1\""),
            (br#"{"maxmemory": 1}"#, "invalid field \"maxmemory\""),
            (b"[1]", "invalid JSON body"),
        ];
        for (body, expected) in cases {
            let error = SettingsChange::parse(body).unwrap_err();
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{error}");
            assert!(error.to_string().contains(expected), "{error}");
        }
        let error = SettingsChange::parse(br#"{"maxmemory_policy": "nope"}"#).unwrap_err();
        assert!(error.to_string().contains("allkeys-lru"), "{error}");
    }
}
