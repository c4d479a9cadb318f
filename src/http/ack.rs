//! The acknowledgement policy of a write: when a request that changed the store may be answered.
//!
//! With `--fsync always` a write is answered once the log has it on disk; with `ack=all` (the
//! request's `ack` parameter, or the server's `--ack` default) once every live replica has
//! applied it too. Both waits are bounded by [`ACK_TIMEOUT`], after which the client gets 503.
//! Kept apart from the route families so that every write route (the original tool's `/set`,
//! `/v1/kv`, `/v1/mset`) waits by the same rule.
//!
//! Must never: block a tokio worker while waiting, or answer a write before the waits its
//! policy asks for have ended.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use super::reply::ApiError;
use super::AppState;
use crate::store::{AckPolicy, AckWait, Acknowledgement, Shard};

/// Whether to wait for every live replica (`ack=all`) or answer after the primary (`async`);
/// absent means the server's `--ack` default.
pub(super) fn ack_param<S: Shard>(
    state: &AppState<S>,
    raw: Option<&[u8]>,
) -> Result<AckPolicy, ApiError> {
    match raw {
        None => Ok(state.ack),
        Some(b"async") => Ok(AckPolicy::Primary),
        Some(b"all") => Ok(AckPolicy::AllReplicas),
        Some(other) => Err(ApiError::BadParam {
            name: "ack",
            value: String::from_utf8_lossy(other).into_owned(),
            expected: "async or all",
        }),
    }
}

/// How long a write waits for its acknowledgement before answering 503.
pub(super) const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits (without blocking a worker) until a write's receipt is acknowledged, at most
/// [`ACK_TIMEOUT`]; a time-out names what was still missing (the disk, or the replicas).
pub(super) async fn acknowledged<S: Shard>(ack: Acknowledgement<'_, S>) -> Result<(), ApiError> {
    let mut ack = pin!(ack);
    // Most writes need no wait at all: answer them without arming a timer.
    let first = std::future::poll_fn(|cx| Poll::Ready(ack.as_mut().poll(cx))).await;
    if let Poll::Ready(result) = first {
        return Ok(result?);
    }
    match tokio::time::timeout(ACK_TIMEOUT, ack.as_mut()).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            let secs = ACK_TIMEOUT.as_secs();
            Err(match ack.waiting_for() {
                Some(AckWait::Durable) => ApiError::NotDurable { secs },
                Some(AckWait::Replicated) | None => ApiError::AckTimeout { secs },
            })
        }
    }
}
