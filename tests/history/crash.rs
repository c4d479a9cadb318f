//! What a key may hold right after a kill -9 and a restart with `--fsync always`.
//!
//! What: [`check_restart`] judges the state read back from a restarted server (before any
//! client touches it) against everything recorded on that key before the kill: every
//! acknowledged write survives unless a later write replaced it, no deleted key returns, no
//! value appears that was never written, a value keeps the version it was written with.
//! [`check_versions_rise`] checks that a write acknowledged after the restart has a version
//! above every version handed out before the crash.
//!
//! Why this design and not linearizability across the crash: a read may see a write that was
//! applied in memory but not yet on disk, which the crash then loses (Redis behaves the same).
//! That is not linearizable, and modelling it exactly needs a second state (what is durable)
//! beside the visible one. Instead each run between two kills is checked for linearizability
//! on its own (`model.rs`), starting from the state read back after the restart, and that
//! state is judged here against the crash rules. An operation whose answer was lost counts as
//! possibly applied any time between its sending and the kill.
//!
//! What it must never do: call a state wrong that some order of the recorded writes
//! explains; the checks only use orders the clients saw (an answer before a request was sent)
//! and versions (a key's versions rise with every write).

use super::model::{Call, Op, Ret, ValueId};

/// The answer a restarted server gave for a key: its value and version, or absent.
pub type Probe = Option<(ValueId, u64)>;

/// When an operation's effect may have happened at the latest: its answer, or the kill.
fn latest(op: &Op, killed_at: u64) -> u64 {
    op.returned.unwrap_or(killed_at)
}

fn written(op: &Op) -> Option<ValueId> {
    match op.call {
        Call::Set(v) | Call::Cas { value: v, .. } => Some(v),
        _ => None,
    }
}

/// `before`: every operation on the key before the kill (all earlier runs included), each
/// with the time of the kill that ended its run. `probe`: what the restarted server holds.
pub fn check_restart(before: &[(Op, u64)], probe: Probe) -> Result<(), String> {
    let acked_writes = || {
        before.iter().filter_map(|(op, killed)| match op.ret {
            Ret::Written(v) => Some((op, *killed, v)),
            _ => None,
        })
    };
    let acked_deletes = || {
        before
            .iter()
            .filter(|(op, _)| op.call == Call::Delete && op.ret == Ret::Deleted)
    };
    match probe {
        Some((value, version)) => {
            let Some((source, source_killed)) = before
                .iter()
                .find(|(op, _)| written(op) == Some(value) && op.ret != Ret::Refused)
            else {
                return Err(format!(
                    "after the restart the key holds value {value} (version {version}), which no \
                     write that may have happened stored"
                ));
            };
            // The versions the value had before the crash, with the run they were seen in
            // (a restart may give a restored value a fresh, higher version).
            let known: Vec<(u64, u64)> = before
                .iter()
                .filter_map(|(op, killed)| match (written(op), op.ret) {
                    (Some(v), Ret::Written(ver)) if v == value => Some((*killed, ver)),
                    (_, Ret::Found(v, ver)) if v == value => Some((*killed, ver)),
                    _ => None,
                })
                .collect();
            if let Some((_, old)) = known.iter().find(|(_, old)| *old > version) {
                return Err(format!(
                    "version went back: value {value} had version {old} before the crash and \
                     {version} after it"
                ));
            }
            let reused = before.iter().find(|(op, _)| match op.ret {
                Ret::Written(ver) => ver == version && written(op) != Some(value),
                Ret::Found(other, ver) => ver == version && other != value,
                _ => false,
            });
            if let Some((other, _)) = reused {
                return Err(format!(
                    "version repeated: after the restart value {value} has version {version}, \
                     which {other} had handed out for another value before the crash"
                ));
            }
            // An acknowledged write with a higher version in a run where the value's version
            // was seen came after it: it must not have been lost.
            let newer = acked_writes()
                .find(|(_, killed, v)| known.iter().any(|(run, old)| run == killed && v > old));
            if let Some((newer, _, v)) = newer {
                return Err(format!(
                    "acknowledged write lost: {newer} (version {v}) was acknowledged after value \
                     {value} was written, yet the key came back holding value {value}"
                ));
            }
            let source_end = latest(source, *source_killed);
            if let Some((later, _, _)) = acked_writes().find(|(y, _, _)| y.invoked > source_end) {
                return Err(format!(
                    "acknowledged write lost: {later} was sent after {source} had been \
                     answered, yet the key came back holding value {value} (version {version})"
                ));
            }
            if let Some((delete, _)) = acked_deletes().find(|(d, _)| d.invoked > source_end) {
                return Err(format!(
                    "deleted key returned: {delete} was acknowledged after {source}, yet the key \
                     came back holding that value (version {version})"
                ));
            }
            Ok(())
        }
        None => {
            // Absent is explained only if a delete may have come after every acknowledged
            // write: one whose effect may have happened after that write was sent.
            for (write, _, _) in acked_writes() {
                let deleted_after = before.iter().any(|(d, killed)| {
                    d.call == Call::Delete
                        && matches!(d.ret, Ret::Deleted | Ret::Unknown)
                        && latest(d, *killed) > write.invoked
                });
                if !deleted_after {
                    return Err(format!(
                        "acknowledged write lost: {write} was acknowledged before the crash and \
                         no delete could have followed it, yet the key is absent after the restart"
                    ));
                }
            }
            Ok(())
        }
    }
}

/// `before`: every version handed out for the key before a crash (acknowledged or read);
/// `after`: the operations after the restart. A write acknowledged after the restart must be
/// above all of them: else an `ETag` a client still holds can match a different value.
pub fn check_versions_rise(before: &[Op], after: &[Op]) -> Result<(), String> {
    let handed_out = before.iter().filter_map(|op| match op.ret {
        Ret::Written(v) | Ret::Found(_, v) => Some((op, v)),
        _ => None,
    });
    let Some((highest, top)) = handed_out.max_by_key(|(_, v)| *v) else {
        return Ok(());
    };
    let Some(reused) = after
        .iter()
        .find(|op| matches!(op.ret, Ret::Written(v) if v <= top))
    else {
        return Ok(());
    };
    // Say whether the crash lost an acknowledged write or one only a read had seen.
    let source = match highest.ret {
        Ret::Found(value, _) => before
            .iter()
            .find(|op| written(op) == Some(value) && op.returned.is_some())
            .map_or("a write whose answer never came".to_string(), |w| {
                format!("the write {w}")
            }),
        _ => "that write".to_string(),
    };
    Err(format!(
        "version went back: {reused} after the restart, but {highest} had handed out version \
         {top} before the crash (its value was stored by {source})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILL: u64 = 1_000;

    fn op(call: Call, ret: Ret, invoked: u64, returned: u64) -> (Op, u64) {
        (
            Op {
                client: 0,
                call,
                ret,
                invoked,
                returned: Some(returned),
            },
            KILL,
        )
    }

    fn lost(call: Call, invoked: u64) -> (Op, u64) {
        (
            Op {
                client: 1,
                call,
                ret: Ret::Unknown,
                invoked,
                returned: None,
            },
            KILL,
        )
    }

    #[test]
    fn the_last_acknowledged_write_or_a_later_unanswered_one_may_survive() {
        let history = [
            op(Call::Set(1), Ret::Written(3), 0, 10),
            lost(Call::Set(2), 20),
        ];
        check_restart(&history, Some((1, 3))).unwrap();
        check_restart(&history, Some((2, 4))).unwrap();
    }

    #[test]
    fn a_lost_acknowledged_write_is_rejected() {
        let history = [
            op(Call::Set(1), Ret::Written(3), 0, 10),
            op(Call::Set(2), Ret::Written(4), 20, 30),
        ];
        check_restart(&history, Some((1, 3))).unwrap_err();
        check_restart(&history, None).unwrap_err();
        check_restart(&history, Some((2, 4))).unwrap();
    }

    #[test]
    fn a_deleted_key_that_returns_is_rejected() {
        let history = [
            op(Call::Set(1), Ret::Written(3), 0, 10),
            op(Call::Delete, Ret::Deleted, 20, 30),
        ];
        check_restart(&history, Some((1, 3))).unwrap_err();
        check_restart(&history, None).unwrap();
        // An unanswered delete may or may not have happened.
        let maybe = [
            op(Call::Set(1), Ret::Written(3), 0, 10),
            lost(Call::Delete, 20),
        ];
        check_restart(&maybe, Some((1, 3))).unwrap();
        check_restart(&maybe, None).unwrap();
    }

    #[test]
    fn an_invented_value_or_a_changed_version_is_rejected() {
        let history = [op(Call::Set(1), Ret::Written(3), 0, 10)];
        check_restart(&history, Some((9, 3))).unwrap_err();
        check_restart(&history, Some((1, 2))).unwrap_err();
        let refused = [
            op(Call::Set(1), Ret::Written(3), 0, 10),
            op(
                Call::Cas {
                    expected: 1,
                    value: 2,
                },
                Ret::Refused,
                20,
                30,
            ),
        ];
        check_restart(&refused, Some((2, 4))).unwrap_err();
    }

    #[test]
    fn a_restored_value_may_get_a_fresh_higher_version_but_never_a_used_one() {
        let history = [
            op(Call::Set(1), Ret::Written(3), 0, 10),
            op(Call::Set(2), Ret::Written(4), 20, 30),
            op(Call::Get, Ret::Found(2, 4), 40, 50),
            lost(Call::Set(5), 60),
            op(Call::Get, Ret::Found(5, 6), 70, 80),
        ];
        // The crash lost the unacknowledged write 5, which a read had seen at version 6.
        check_restart(&history, Some((2, 9))).unwrap();
        check_restart(&history, Some((2, 4))).unwrap();
        check_restart(&history, Some((2, 6))).unwrap_err();
        check_restart(&history, Some((2, 3))).unwrap_err();
    }

    #[test]
    fn an_older_value_that_survives_a_newer_acknowledged_one_is_rejected() {
        // Both writes overlap in time, so only their versions order them.
        let history = [
            op(Call::Set(1), Ret::Written(3), 0, 50),
            op(Call::Set(2), Ret::Written(4), 10, 40),
        ];
        check_restart(&history, Some((1, 9))).unwrap_err();
        check_restart(&history, Some((2, 9))).unwrap();
    }

    #[test]
    fn a_version_handed_out_again_after_a_restart_is_rejected() {
        let before = [
            op(Call::Set(1), Ret::Written(3), 0, 10).0,
            op(Call::Get, Ret::Found(2, 5), 20, 30).0,
        ];
        let again = [op(Call::Set(3), Ret::Written(5), 0, 10).0];
        check_versions_rise(&before, &again).unwrap_err();
        let above = [op(Call::Set(3), Ret::Written(6), 0, 10).0];
        check_versions_rise(&before, &above).unwrap();
    }
}
