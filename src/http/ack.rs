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

use std::time::Duration;

use super::reply::ApiError;
use super::AppState;
use crate::persistence::FsyncMode;
use crate::store::Shard;

/// Whether to wait for every live replica (`ack=all`) or answer after the primary (`async`);
/// absent means the server's `--ack` default.
pub(super) fn ack_param<S: Shard>(
    state: &AppState<S>,
    raw: Option<&[u8]>,
) -> Result<bool, ApiError> {
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
pub(super) const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// With `ack=all`, waits (without blocking a worker) until every live replica of `shard` has
/// applied `version`.
pub(super) async fn await_ack<S: Shard>(
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
