//! Method + path → handler. The original tool's routes (`/set`, `/get`, `/dashboard`, `/`) and
//! the REST form (`/v1/kv/{key}`, `/v1/mget`, `/v1/mset`) live here, each a small function.
//!
//! Every handler validates all of its input before it touches the store, so a rejected request
//! changes nothing.
//!
//! Must never: log or echo a key or value, panic on input, or answer a client error with 5xx.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, ETAG, IF_MATCH, IF_NONE_MATCH};
use hyper::{Method, Request, StatusCode};

use super::batch::{self, Encoding};
use super::params::ttl_param;
use super::query::{decode_path, Params};
use super::reply::{empty, joined, json, with_type, ApiError, Body, Reply, JSON, OCTETS, TEXT};
use super::stats::OpKind;
use super::AppState;
use crate::clock::{Tick, NEVER};
use crate::persistence::FsyncMode;
use crate::store::{Condition, Found, Lookup, Shard, StoreError, Versions, MAX_CONDITION_VERSIONS};
use subtle::ConstantTimeEq;

static NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
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
    let method = req.method().clone();
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("").as_bytes();
    match path {
        "/get" => match method {
            Method::GET | Method::HEAD => (OpKind::GetHit, seed_get(state, query, &method)),
            _ => (OpKind::Other, not_allowed(&method, "GET, HEAD")),
        },
        "/set" => match method {
            Method::GET => (OpKind::Set, seed_set(state, query).await),
            Method::POST => match read_body(state, req).await {
                Ok(body) => (OpKind::Set, seed_set(state, &body).await),
                Err(e) => (OpKind::Set, Err(e)),
            },
            _ => (OpKind::Other, not_allowed(&method, "GET, POST")),
        },
        "/v1/mget" => match method {
            Method::POST => {
                let query = query.to_vec();
                let body = read_body(state, req).await;
                (OpKind::Mget, body.and_then(|b| mget(state, &query, &b)))
            }
            _ => (OpKind::Other, not_allowed(&method, "POST")),
        },
        "/v1/mset" => match method {
            Method::POST => {
                let query = query.to_vec();
                let body = read_body(state, req).await;
                match body {
                    Ok(b) => (OpKind::Mset, mset(state, &query, &b).await),
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
                let result = authorize_admin(state, peer, &req)
                    .and_then(|()| super::faults::admin_faults(query));
                return (OpKind::Other, result);
            }
            if path == "/admin/snapshot" {
                return (OpKind::Other, admin_snapshot(state, peer, &req).await);
            }
            if let Some(rest) = path.strip_prefix("/admin/shards/") {
                return (OpKind::Other, admin_shard(state, peer, &req, rest).await);
            }
            if let Some(raw_key) = path.strip_prefix("/v1/kv/") {
                let key = match decode_path(raw_key.as_bytes()) {
                    Ok(key) => key.into_owned(),
                    Err(e) => return (OpKind::Other, Err(e.into())),
                };
                return rest(state, req, key).await;
            }
            let _ = peer;
            (
                OpKind::Other,
                Err(ApiError::NoRoute(format!("{method} {path}"))),
            )
        }
    }
}

fn not_allowed(method: &Method, allow: &'static str) -> Result<Reply, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: method.to_string(),
        allow,
    })
}

/// Reads the whole request body, refusing more than the largest value plus framing.
async fn read_body<S: Shard>(
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

/// Whether to wait for every live replica (`ack=all`) or answer after the primary (`async`);
/// absent means the server's `--ack` default.
fn ack_param<S: Shard>(state: &AppState<S>, raw: Option<&[u8]>) -> Result<bool, ApiError> {
    match raw {
        None => Ok(state.ack_all),
        Some(b"async") => Ok(false),
        Some(b"all") => Ok(true),
        Some(other) => Err(ApiError::BadParam {
            name: "ack",
            value: String::from_utf8_lossy(other).into_owned(),
            expected: "async or all",
        }),
    }
}

/// How long an `ack=all` write waits for its replicas before answering 503.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// With `ack=all`, waits (without blocking a worker) until every live replica of `shard` has
/// applied `version`.
async fn await_ack<S: Shard>(
    state: &AppState<S>,
    shard: usize,
    version: u64,
    all: bool,
) -> Result<(), ApiError> {
    if let Some(log) = state.store.log_sink() {
        if log.fsync == FsyncMode::Always {
            tokio::time::timeout(ACK_TIMEOUT, log.durable(shard, version))
                .await
                .map_err(|_| ApiError::NotDurable {
                    secs: ACK_TIMEOUT.as_secs(),
                })??;
        }
    }
    if !all || state.store.replicas() == 0 {
        return Ok(());
    }
    tokio::time::timeout(ACK_TIMEOUT, state.store.acked(shard, version))
        .await
        .map_err(|_| ApiError::AckTimeout {
            secs: ACK_TIMEOUT.as_secs(),
        })
}

/// `GET /get?key=K`: the raw value, or 404.
fn seed_get<S: Shard>(
    state: &AppState<S>,
    query: &[u8],
    method: &Method,
) -> Result<Reply, ApiError> {
    let params = Params::parse(query)?;
    let key = params.key.ok_or(ApiError::MissingParam("key"))?;
    state.store.validate_key(&key)?;
    match state.store.get(&key) {
        Lookup::Hit(found) => Ok(value_reply(state, found, method, false)),
        Lookup::Miss | Lookup::Expired => Err(ApiError::NotFound),
    }
}

/// The stored bytes as they are, never sniffed as HTML.
fn value_reply<S: Shard>(state: &AppState<S>, found: Found, method: &Method, meta: bool) -> Reply {
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

/// `GET /set?key=K&value=V&ttl=60s`, or `POST /set` with the same as a form body (for values
/// too long for a URL).
async fn seed_set<S: Shard>(state: &AppState<S>, form: &[u8]) -> Result<Reply, ApiError> {
    let (shard, version, all) = set_from_params(state, Params::parse(form)?)?;
    await_ack(state, shard, version, all).await?;
    Ok(with_type(StatusCode::OK, &TEXT, Bytes::from_static(b"OK")))
}

/// Validates and applies a seed-style set; returns the shard, the new version and the ack mode.
fn set_from_params<S: Shard>(
    state: &AppState<S>,
    params: Params<'_>,
) -> Result<(usize, u64, bool), ApiError> {
    let key = params.key.ok_or(ApiError::MissingParam("key"))?;
    let value = params.value.ok_or(ApiError::MissingParam("value"))?;
    let ttl = ttl_param(params.ttl.as_deref())?;
    let all = ack_param(state, params.ack.as_deref())?;
    let version = state.store.set(&key, &value, ttl, Condition::Always)?;
    Ok((state.store.shard_of(&key), version, all))
}

/// `/v1/kv/{key}`: GET, HEAD, PUT, DELETE.
async fn rest<S: Shard>(
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
    state.store.validate_key(key)?;
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
    let all = ack_param(state, params.ack.as_deref())?;
    let condition = Preconditions::of(&req)?.condition()?;
    state.store.validate_key(&key)?;
    let body = read_body(state, req).await?;
    let version = state.store.set(&key, &body, ttl, condition)?;
    await_ack(state, state.store.shard_of(&key), version, all).await?;
    let mut reply = empty(StatusCode::NO_CONTENT);
    reply.headers_mut().insert(ETAG, etag(version));
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
    let all = ack_param(state, params.ack.as_deref())?;
    let condition = Preconditions::of(req)?.condition()?;
    let Some(version) = state.store.delete_if(key, condition)? else {
        return Err(ApiError::NotFound);
    };
    await_ack(state, state.store.shard_of(key), version, all).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The entity tags of one conditional header: `*`, or a list of our (strong) ETags.
#[derive(Debug, Clone, Copy)]
enum Tags {
    /// `*`: any current value.
    Any,
    /// These versions.
    List(Versions),
}

impl Tags {
    /// Whether a live value of `version` matches (our tags are strong, so strong and weak
    /// comparison agree once a weak tag's `W/` is dropped).
    fn matches(self, version: u64) -> bool {
        match self {
            Tags::Any => true,
            Tags::List(versions) => versions.contains(version),
        }
    }

    /// Parses every `name` header of `req` (a repeated header is one comma-separated list).
    /// `weak_ok`: whether `W/"v"` is accepted (`If-None-Match`, which compares weakly); an
    /// `If-Match` with a weak tag could never match, and is refused as a client mistake.
    fn parse(
        req: &Request<Incoming>,
        header: HeaderName,
        name: &'static str,
        weak_ok: bool,
    ) -> Result<Option<Tags>, ApiError> {
        let expected = if weak_ok {
            "* or a list of quoted versions from ETags, like \"42\", \"43\""
        } else {
            "* or a list of quoted versions from ETags, like \"42\", \"43\" (strong tags only)"
        };
        let mut present = false;
        let mut any = false;
        let mut versions = Versions::new();
        for value in req.headers().get_all(header) {
            present = true;
            let bad = || ApiError::BadParam {
                name,
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                expected,
            };
            let text = value.to_str().map_err(|_| bad())?.trim();
            if text == "*" {
                any = true;
                continue;
            }
            for item in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                let tag = match item.strip_prefix("W/") {
                    Some(tag) if weak_ok => tag,
                    Some(_) => return Err(bad()),
                    None => item,
                };
                let version = tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(bad)?;
                if !versions.push(version) {
                    return Err(ApiError::BadParam {
                        name,
                        value: format!("a list of more than {MAX_CONDITION_VERSIONS} tags"),
                        expected: "at most 16 entity tags",
                    });
                }
            }
        }
        let has_tags = !versions.as_slice().is_empty();
        if present && any == has_tags {
            // `*` together with tags, or nothing but commas.
            return Err(ApiError::BadParam {
                name,
                value: "* together with tags, or an empty list".into(),
                expected,
            });
        }
        Ok(match (present, any) {
            (false, _) => None,
            (true, true) => Some(Tags::Any),
            (true, false) => Some(Tags::List(versions)),
        })
    }
}

/// The `If-Match` and `If-None-Match` headers of a request.
#[derive(Debug, Clone, Copy)]
struct Preconditions {
    if_match: Option<Tags>,
    if_none_match: Option<Tags>,
}

impl Preconditions {
    fn of(req: &Request<Incoming>) -> Result<Preconditions, ApiError> {
        Ok(Preconditions {
            if_match: Tags::parse(req, IF_MATCH, "If-Match", false)?,
            if_none_match: Tags::parse(req, IF_NONE_MATCH, "If-None-Match", true)?,
        })
    }

    /// Both headers as the one condition a write checks inside the store's writer section.
    fn condition(self) -> Result<Condition, ApiError> {
        // A condition no live or absent key meets.
        let never = Condition::IfVersionIn(Versions::new());
        Ok(match (self.if_match, self.if_none_match) {
            (None, None) => Condition::Always,
            (Some(Tags::Any), None) => Condition::IfPresent,
            (Some(Tags::List(versions)), None) => match versions.as_slice() {
                [version] => Condition::IfVersion(*version),
                _ => Condition::IfVersionIn(versions),
            },
            (None, Some(Tags::Any)) => Condition::IfAbsent,
            (None, Some(Tags::List(versions))) => Condition::IfNoneOf(versions),
            // Present (If-Match) and absent (If-None-Match: *) at once.
            (Some(_), Some(Tags::Any)) => never,
            (Some(Tags::List(matching)), Some(Tags::List(excluded))) => {
                let mut left = Versions::new();
                for &v in matching.as_slice() {
                    if !excluded.contains(v) {
                        left.push(v);
                    }
                }
                Condition::IfVersionIn(left)
            }
            (Some(Tags::Any), Some(Tags::List(_))) => {
                return Err(ApiError::BadParam {
                    name: "If-None-Match",
                    value: "a list of tags with If-Match: *".into(),
                    expected: "If-Match: * alone, or If-Match with a list of tags",
                })
            }
        })
    }
}

/// `POST /v1/mget` with `{"keys": [...]}` → `{"values": {"k": "v" | null}}` (keys sorted, each
/// once). The answer is measured as it will be sent (escapes and base64 included) and refused
/// with 413 before it is built when it would pass `--max-batch-answer-bytes`.
fn mget<S: Shard>(state: &AppState<S>, query: &[u8], body: &[u8]) -> Result<Reply, ApiError> {
    let encoding = Encoding::from_query(query)?;
    let keys = batch::parse_mget(body, state.limits.max_batch)?;
    for key in &keys {
        state.store.validate_key(key.as_bytes())?;
    }
    // Handles to the stored records (no copies) until the answer is known to fit.
    let mut found = std::collections::BTreeMap::new();
    for key in keys {
        let value = state.store.get(key.as_bytes()).found();
        found.insert(key, value);
    }
    let mut answer = batch::MgetAnswer::new(encoding, state.limits.max_batch_answer_bytes);
    for (key, value) in &found {
        answer.count(key, value.as_ref().map(Found::value))?;
    }
    let bytes = answer.write(
        found
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_ref().map(Found::value))),
    );
    Ok(with_type(StatusCode::OK, &JSON, Bytes::from(bytes)))
}

/// `POST /v1/mset` with `{"items": [{"key", "value", "ttl"?}]}`: all or nothing. Every item is
/// validated and memory is checked once for the whole batch before any is written, and the
/// writes then cannot be refused half-way.
async fn mset<S: Shard>(state: &AppState<S>, query: &[u8], body: &[u8]) -> Result<Reply, ApiError> {
    let encoding = Encoding::from_query(query)?;
    let all = ack_param(state, Params::parse(query)?.ack.as_deref())?;
    let writes = batch::parse_mset(body, encoding, state.limits.max_batch)?;
    let items: Vec<_> = writes
        .iter()
        .map(|w| (w.key.as_bytes(), &w.value[..], w.ttl))
        .collect();
    let versions = state.store.set_all(&items)?;
    // The last version written to each shard: acknowledging it covers the earlier ones.
    let mut last = std::collections::BTreeMap::new();
    for (write, version) in writes.iter().zip(versions) {
        last.insert(state.store.shard_of(write.key.as_bytes()), version);
    }
    for (shard, version) in last {
        await_ack(state, shard, version, all).await?;
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "written": writes.len() }),
    ))
}

/// `POST /admin/shards/{id}/fail` and `POST /admin/shards/{id}/recover`.
async fn admin_shard<S: Shard>(
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
    authorize_admin(state, peer, req)?;
    let shard: usize = id.parse().map_err(|_| ApiError::BadParam {
        name: "shard id",
        value: id.to_string(),
        expected: "a shard number from /dashboard",
    })?;
    let store = state.store.clone();
    if action == "fail" {
        let old = (shard < store.shard_count()).then(|| store.primary_of(shard));
        // Promotion waits for the replica to drain: off the async workers.
        let promoted = joined(
            tokio::task::spawn_blocking(move || store.fail_primary(shard)).await,
            "failing over the shard",
        )??;
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "shard": shard, "failed": old, "primary": promoted }),
        ));
    }
    let asked = store.request_recovery(shard)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.failed_copies(shard) != 0 {
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
            "primary": store.primary_of(shard),
        }),
    ))
}

/// Admin routes answer loopback clients, or, with `--admin-token`, holders of the token.
fn authorize_admin<S: Shard>(
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
async fn admin_snapshot<S: Shard>(
    state: &AppState<S>,
    peer: SocketAddr,
    req: &Request<Incoming>,
) -> Result<Reply, ApiError> {
    if req.method() != Method::POST {
        return not_allowed(req.method(), "POST");
    }
    authorize_admin(state, peer, req)?;
    let log = state.store.log_sink().ok_or(ApiError::NoPersistence)?;
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
