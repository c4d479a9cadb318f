//! Responses: the typed API error and the few response shapes the routes send.
//!
//! Every request our code rejects gets a 4xx with a JSON body `{"error": "..."}` that names the
//! problem (a failure of the server's own gets a 5xx in the same shape); [`ApiError`] is the one
//! place that maps a problem to its status.
//!
//! Must never: answer a client's mistake with a 5xx, or echo a stored value into an error.

use bytes::{Buf, Bytes};
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};

use crate::duration::TtlError;
use crate::http::query::QueryError;
use crate::replication::FailoverError;
use crate::store::{Record, StoreError};

/// The response type of every route.
pub type Reply = Response<Full<Body>>;

/// A response body: bytes a route built, or a stored value sent straight out of its record
/// (a reference-count increment on a read, no copy and no allocation).
#[derive(Debug)]
pub enum Body {
    /// Bytes built for this response.
    Bytes(Bytes),
    /// The value of a stored record, from byte `sent` on.
    Value {
        /// The record whose value is sent.
        record: Record,
        /// Bytes of the value already handed to the connection.
        sent: usize,
    },
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::Bytes(bytes)
    }
}

impl From<Record> for Body {
    fn from(record: Record) -> Body {
        Body::Value { record, sent: 0 }
    }
}

impl Buf for Body {
    fn remaining(&self) -> usize {
        match self {
            Body::Bytes(bytes) => bytes.remaining(),
            Body::Value { record, sent } => record.value_len() - sent,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Body::Bytes(bytes) => bytes.chunk(),
            Body::Value { record, sent } => &record.value()[*sent..],
        }
    }

    fn advance(&mut self, cnt: usize) {
        match self {
            Body::Bytes(bytes) => bytes.advance(cnt),
            Body::Value { record, sent } => {
                assert!(
                    cnt <= record.value_len() - *sent,
                    "advanced past the end of the value"
                );
                *sent += cnt;
            }
        }
    }
}

pub(crate) static JSON: HeaderValue = HeaderValue::from_static("application/json");
pub(crate) static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
pub(crate) static OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// Why a request was refused. Each variant says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A required parameter is absent.
    #[error("missing parameter \"{0}\"")]
    MissingParam(&'static str),
    /// A parameter that must be text is not valid UTF-8.
    #[error("parameter \"{0}\" must be valid UTF-8")]
    NotUtf8(&'static str),
    /// A parameter has a value we do not understand.
    #[error("invalid {name} \"{value}\": expected {expected}")]
    BadParam {
        /// The parameter.
        name: &'static str,
        /// What was sent (parameters that may hold data are never echoed).
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The query string or form body is malformed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The TTL is malformed, not positive or too long.
    #[error(transparent)]
    Ttl(#[from] TtlError),
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request body is larger than allowed.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The client sent its body too slowly.
    #[error("the request body did not arrive within {secs}s (--body-timeout-secs)")]
    BodyTimeout {
        /// The timeout.
        secs: u64,
    },
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// A JSON body did not match the expected shape.
    #[error("invalid JSON body: {0}")]
    Json(String),
    /// A batch has more items than allowed.
    #[error("batch has {len} items; the maximum is {max} (--max-batch)")]
    BatchTooLarge {
        /// Items sent.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A batch read would answer with more bytes than allowed.
    #[error("the values asked for add up to more than {limit} bytes (--max-batch-answer-bytes); ask for fewer keys per request")]
    BatchAnswerTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A stored value cannot be rendered as text.
    #[error("value of key \"{0}\" is not valid UTF-8; ask again with ?encoding=base64")]
    ValueNotUtf8(String),
    /// The key is absent or expired.
    #[error("Key not found or expired")]
    NotFound,
    /// No such route.
    #[error("no route for {0}; see the README for the API")]
    NoRoute(String),
    /// The route exists but not for this method.
    #[error("method {method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed {
        /// The method used.
        method: String,
        /// The methods the route accepts.
        allow: &'static str,
    },
    /// Replicas did not acknowledge an `ack=all` write in time.
    #[error("the write is applied on the primary, but not every live replica acknowledged it within {secs}s")]
    AckTimeout {
        /// The timeout.
        secs: u64,
    },
    /// An `--fsync always` write did not reach the disk in time.
    #[error("the write is applied in memory but was not confirmed on disk within {secs}s")]
    NotDurable {
        /// The timeout.
        secs: u64,
    },
    /// The key is empty (HTTP's own rule: Redis allows empty keys, so the store does too).
    #[error("key must not be empty")]
    EmptyKey,
    /// A persistence route was called without `--data-dir`.
    #[error("persistence is off: start the server with --data-dir DIR")]
    NoPersistence,
    /// A snapshot could not be written.
    #[error("snapshot failed: {0}")]
    SnapshotFailed(String),
    /// A failover or recovery request was refused.
    #[error(transparent)]
    Failover(#[from] crate::replication::FailoverError),
    /// The route is for loopback clients or holders of the admin token only.
    #[error("admin routes need a loopback client or the --admin-token")]
    Forbidden,
    /// The server has a password (`--requirepass`) and the request did not carry it.
    #[error("this server requires a password: send it as the header `Authorization: Bearer PASSWORD` (the same password Redis clients give to AUTH)")]
    Unauthorized,
    /// The server's own work for the request failed (a background task panicked): not the
    /// client's mistake.
    #[error("internal error while {during}; the request may or may not have taken effect: check the server log, then read the state before retrying")]
    Internal {
        /// What the server was doing.
        during: &'static str,
    },
}

/// A blocking task's result, with a panic in the task turned into [`ApiError::Internal`]
/// (logged here, since its message is not sent to the client).
pub fn joined<T>(
    result: Result<T, tokio::task::JoinError>,
    during: &'static str,
) -> Result<T, ApiError> {
    result.map_err(|e| {
        tracing::error!(error = %e, "a blocking task failed while {during}");
        ApiError::Internal { during }
    })
}

/// The 405 for `method` on a route that allows only `allow`.
pub(super) fn not_allowed(method: &Method, allow: &'static str) -> Result<Reply, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: method.to_string(),
        allow,
    })
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        // Exhaustive on purpose: a new variant must be given its status here, never fall into
        // a client error by default.
        match self {
            ApiError::MissingParam(_)
            | ApiError::EmptyKey
            | ApiError::NotUtf8(_)
            | ApiError::BadParam { .. }
            | ApiError::Query(_)
            | ApiError::Ttl(_)
            | ApiError::BodyRead(_)
            | ApiError::Json(_) => StatusCode::BAD_REQUEST,
            ApiError::Store(e) => match e {
                StoreError::KeyTooLong { .. } | StoreError::TtlNotPositive => {
                    StatusCode::BAD_REQUEST
                }
                StoreError::ValueTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                StoreError::MemoryFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
                StoreError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
                StoreError::LogUnavailable { .. } | StoreError::ShuttingDown => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                StoreError::UndeclaredKey => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::BodyTooLarge { .. }
            | ApiError::BatchTooLarge { .. }
            | ApiError::BatchAnswerTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::ValueNotUtf8(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::AckTimeout { .. } | ApiError::NotDurable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::NoPersistence => StatusCode::CONFLICT,
            ApiError::SnapshotFailed(_) | ApiError::Internal { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Failover(e) => match e {
                FailoverError::NoSuchShard { .. } => StatusCode::NOT_FOUND,
                FailoverError::DrainTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
                FailoverError::NoReplica { .. } | FailoverError::NotFailed { .. } => {
                    StatusCode::CONFLICT
                }
            },
        }
    }

    /// The error as a JSON response.
    pub fn into_reply(self) -> Reply {
        let status = self.status();
        let body = serde_json::json!({ "error": self.to_string() });
        let mut reply = json(status, &body);
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            reply
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        reply
    }
}

/// A JSON response.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    with_type(status, &JSON, Bytes::from(bytes))
}

/// A response with a body of `content_type`.
pub fn with_type(status: StatusCode, content_type: &HeaderValue, body: impl Into<Body>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, content_type.clone());
    reply
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Reply {
    let mut reply = Response::new(Full::new(Body::Bytes(Bytes::new())));
    *reply.status_mut() = status;
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicked_blocking_task_is_a_server_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = runtime.block_on(async {
            tokio::task::spawn_blocking(|| -> u8 {
                panic!("a deliberate panic in a blocking task")
            })
            .await
        });
        let error = joined(result, "testing").unwrap_err();
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(error.to_string().contains("internal error while testing"));
        assert!(!error.to_string().contains("deliberate"), "{error}");
    }

    #[test]
    fn store_and_failover_errors_keep_their_statuses() {
        let cases = [
            (ApiError::EmptyKey, 400),
            (ApiError::Store(StoreError::TtlNotPositive), 400),
            (
                ApiError::Store(StoreError::ValueTooLarge { len: 2, max: 1 }),
                413,
            ),
            (
                ApiError::Store(StoreError::MemoryFull { used: 2, limit: 1 }),
                507,
            ),
            (
                ApiError::Store(StoreError::PreconditionFailed { current: None }),
                412,
            ),
            (
                ApiError::Failover(FailoverError::NoSuchShard {
                    shard: 9,
                    shards: 1,
                }),
                404,
            ),
            (
                ApiError::Failover(FailoverError::DrainTimeout { shard: 0 }),
                503,
            ),
            (
                ApiError::Failover(FailoverError::NoReplica { shard: 0 }),
                409,
            ),
            (
                ApiError::Failover(FailoverError::NotFailed { shard: 0 }),
                409,
            ),
            (ApiError::BodyRead("reset".into()), 400),
            (ApiError::SnapshotFailed("disk".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
        }
    }
}
