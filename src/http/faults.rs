//! `POST /admin/faults` (feature `testing` only): arms and disarms the fault layer
//! (`crate::faults`) of a running server, so integration tests inject a full disk or a failing
//! sync at the moment they choose.
//!
//! Query parameters, each optional: `log_write`, `log_sync`, `snapshot` = `off|eio|enospc`;
//! `snapshot_delay_ms` = N; `copy_pause` = `on|off`. Answers `{"copies_waiting": n}`: how many
//! shard copies are held at their midpoint now.
//!
//! Must never: exist in a build without the `testing` feature.

use hyper::StatusCode;

use super::query::parse_pairs;
use super::reply::{json, ApiError, Reply};
use crate::faults::{self, Fault, Point};

/// Applies the query's settings; answers the copies held now.
pub fn admin_faults(query: &[u8]) -> Result<Reply, ApiError> {
    for pair in parse_pairs(query) {
        let (name, value) = pair?;
        let text = String::from_utf8_lossy(&value).into_owned();
        let bad = |name: &'static str, expected: &'static str| ApiError::BadParam {
            name,
            value: text.clone(),
            expected,
        };
        let point = match &*name {
            b"log_write" => Some(Point::LogWrite),
            b"log_sync" => Some(Point::LogSync),
            b"snapshot" => Some(Point::Snapshot),
            _ => None,
        };
        if let Some(point) = point {
            let fault = Fault::parse(&text).ok_or_else(|| bad("fault", "off, eio or enospc"))?;
            faults::set(point, fault);
            continue;
        }
        match &*name {
            b"snapshot_delay_ms" => {
                let ms = text
                    .parse()
                    .map_err(|_| bad("snapshot_delay_ms", "milliseconds"))?;
                faults::set_snapshot_delay(ms);
            }
            b"copy_pause" => match text.as_str() {
                "on" => faults::set_copy_paused(true),
                "off" => faults::set_copy_paused(false),
                _ => return Err(bad("copy_pause", "on or off")),
            },
            _ => {
                return Err(ApiError::BadParam {
                    name: "fault",
                    value: String::from_utf8_lossy(&name).into_owned(),
                    expected: "log_write, log_sync, snapshot, snapshot_delay_ms or copy_pause",
                })
            }
        }
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "copies_waiting": faults::copies_waiting() }),
    ))
}
