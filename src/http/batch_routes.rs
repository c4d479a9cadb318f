//! The batch routes `POST /v1/mget` and `POST /v1/mset`: what they ask of the store and how
//! their writes are acknowledged. Their JSON bodies and answers are [`super::batch`]'s, which
//! stays free of the store so it can be fuzzed on its own.
//!
//! Must never: write part of an mset (every item is validated, and memory checked for the
//! whole batch, before any is written), or build an mget answer past
//! `--max-batch-answer-bytes`.

use bytes::Bytes;
use hyper::StatusCode;

use super::ack::{ack_param, acknowledged};
use super::batch::{self, Encoding};
use super::query::Params;
use super::reply::{json, with_type, ApiError, Reply, JSON};
use super::AppState;
use crate::store::{Found, Lookup, Shard};

/// `POST /v1/mget` with `{"keys": [...]}` → `{"values": {"k": "v" | null}}` (keys sorted, each
/// once). The answer is measured as it will be sent (escapes and base64 included) and refused
/// with 413 before it is built when it would pass `--max-batch-answer-bytes`.
pub(super) fn mget<S: Shard>(
    state: &AppState<S>,
    query: &[u8],
    body: &[u8],
) -> Result<Reply, ApiError> {
    let encoding = Encoding::from_query(query)?;
    let keys = batch::parse_mget(body, state.limits.max_batch)?;
    if keys.iter().any(|key| key.is_empty()) {
        return Err(ApiError::EmptyKey);
    }
    // Handles to the stored records (no copies) until the answer is known to fit.
    let lookups = state.store.get_many(&keys)?;
    let found: std::collections::BTreeMap<_, _> = keys
        .into_iter()
        .zip(lookups.into_iter().map(Lookup::found))
        .collect();
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
pub(super) async fn mset<S: Shard>(
    state: &AppState<S>,
    query: &[u8],
    body: &[u8],
) -> Result<Reply, ApiError> {
    let encoding = Encoding::from_query(query)?;
    let policy = ack_param(state, Params::parse(query)?.ack.as_deref())?;
    let writes = batch::parse_mset(body, encoding, state.limits.max_batch)?;
    let items: Vec<_> = writes
        .iter()
        .map(|w| (w.key.as_bytes(), &w.value[..], w.ttl))
        .collect();
    if writes.iter().any(|w| w.key.is_empty()) {
        return Err(ApiError::EmptyKey);
    }
    let receipt = state.store.set_many(&items)?;
    acknowledged(receipt.acknowledged(policy)).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "written": writes.len() }),
    ))
}
