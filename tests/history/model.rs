//! The register model one key's history is checked against, and the linearizability check.
//!
//! What: [`Register`] is the sequential specification of one key of shardkv's `/v1/kv` API:
//! a value with a version (the `ETag`), set, read, compare-and-set on the version (`If-Match`)
//! and deleted. [`check_linearizable`] feeds a recorded history to `stateright`'s
//! [`LinearizabilityTester`] and, when no linearization exists, narrows the history down to
//! the shortest failing prefix in time, so the report shows the few operations that clash.
//!
//! Why this design: the server chooses versions, so the model cannot predict a write's
//! `ETag`; it checks it instead (a new version is above every version the key had, a read
//! shows the version its value was written with) through `is_valid_step`. Every write stores
//! a value used by no other write, so a read names the write it saw. An operation whose
//! answer never came (a timeout, a dropped connection, a 5xx) may or may not have taken
//! effect, at any point after it was invoked: it is left "in flight" in the tester, which
//! tries it at every later point and also leaves it out. Its caller then continues under a
//! new thread id, since the tester allows one operation in flight per thread. stateright's
//! search has no memoization, so the check runs in its own thread with a deadline and
//! histories are kept to a few hundred operations per key.
//!
//! What it must never do: accept a history that no sequential order explains (the unit tests
//! below feed it broken histories), or treat a refused request (412, 404) as possibly applied.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// Names the write that stored a value: each write stores a value no other write stores.
pub type ValueId = u64;

/// What a client asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// `PUT /v1/kv/{key}` storing the value of this write.
    Set(ValueId),
    /// `GET /v1/kv/{key}`.
    Get,
    /// `PUT /v1/kv/{key}` with `If-Match: "<expected>"`.
    Cas { expected: u64, value: ValueId },
    /// `DELETE /v1/kv/{key}`.
    Delete,
}

/// What the server answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// A set or CAS was applied with this version (204 and its `ETag`).
    Written(u64),
    /// A read found this write's value with this version (200).
    Found(ValueId, u64),
    /// The key was absent (404, for a read or a delete).
    Missing,
    /// A delete removed the key (204).
    Deleted,
    /// A CAS was refused (412).
    Refused,
    /// No answer came back: the operation may or may not have happened.
    Unknown,
}

/// One key as a sequential object: its value, its version when known, and the highest version
/// the key has had (a new write's version must be above it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Register {
    /// The write whose value the key holds, or `None` when absent.
    pub value: Option<ValueId>,
    /// The value's version, once a response showed it; `None` for a write whose answer was
    /// lost (its version is above `floor`, nothing more is known).
    pub version: Option<u64>,
    /// Every version this key has had so far is at most this.
    pub floor: u64,
}

impl Register {
    /// A key that holds `value` at `version` (a state read back after a restart).
    pub fn holding(value: Option<(ValueId, u64)>, floor: u64) -> Register {
        Register {
            value: value.map(|(v, _)| v),
            version: value.map(|(_, v)| v),
            floor: floor.max(value.map_or(0, |(_, v)| v)),
        }
    }

    /// Whether `If-Match: "<expected>"` can match the current value.
    fn may_match(&self, expected: u64) -> bool {
        self.value.is_some()
            && match self.version {
                Some(v) => v == expected,
                None => expected > self.floor,
            }
    }

    fn store(&mut self, value: ValueId, version: u64) {
        self.value = Some(value);
        self.version = Some(version);
        self.floor = self.floor.max(version);
    }
}

impl SequentialSpec for Register {
    type Op = Call;
    type Ret = Ret;

    /// Applies an operation whose answer was lost (the tester calls this only for those).
    fn invoke(&mut self, op: &Call) -> Ret {
        match *op {
            Call::Set(value) => {
                self.value = Some(value);
                self.version = None;
            }
            Call::Cas { expected, value } => {
                if self.may_match(expected) {
                    self.value = Some(value);
                    self.version = None;
                }
            }
            Call::Delete => {
                self.value = None;
                self.version = None;
            }
            Call::Get => {}
        }
        Ret::Unknown
    }

    fn is_valid_step(&mut self, op: &Call, ret: &Ret) -> bool {
        match (*op, *ret) {
            (_, Ret::Unknown) => {
                self.invoke(op);
                true
            }
            (Call::Set(value), Ret::Written(v)) => {
                if v <= self.floor {
                    return false;
                }
                self.store(value, v);
                true
            }
            (Call::Cas { expected, value }, Ret::Written(v)) => {
                if !self.may_match(expected) || v <= self.floor.max(expected) {
                    return false;
                }
                self.store(value, v);
                true
            }
            (Call::Cas { expected, .. }, Ret::Refused) => {
                self.value.is_none() || self.version != Some(expected)
            }
            (Call::Get, Ret::Found(value, v)) => {
                let version_ok = match self.version {
                    Some(known) => known == v,
                    None => v > self.floor,
                };
                if self.value != Some(value) || !version_ok {
                    return false;
                }
                self.store(value, v);
                true
            }
            (Call::Get | Call::Delete, Ret::Missing) => self.value.is_none(),
            (Call::Delete, Ret::Deleted) => {
                let present = self.value.is_some();
                self.value = None;
                self.version = None;
                present
            }
            _ => false,
        }
    }
}

/// One recorded operation on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client (thread) that issued it.
    pub client: usize,
    pub call: Call,
    pub ret: Ret,
    /// When it was sent, in ns on the clock every client shares.
    pub invoked: u64,
    /// When its answer came back; `None` if it never did ([`Ret::Unknown`]).
    pub returned: Option<u64>,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = |ns: u64| ns as f64 / 1000.0;
        match self.returned {
            Some(r) => write!(
                f,
                "client {} [{:>10.1} us .. {:>10.1} us] {:?} -> {:?}",
                self.client,
                us(self.invoked),
                us(r),
                self.call,
                self.ret
            ),
            None => write!(
                f,
                "client {} [{:>10.1} us .. (no answer)] {:?} -> maybe applied",
                self.client,
                us(self.invoked),
                self.call
            ),
        }
    }
}

/// A history no sequential order explains, with the operations that show it.
#[derive(Debug)]
pub struct Violation {
    /// The shortest failing prefix in time, its last operations: what to read first.
    pub window: Vec<Op>,
    /// Every operation of the history.
    pub total: usize,
    /// Set when the search did not finish in time (then `window` is the whole history).
    pub timed_out: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timed_out {
            writeln!(
                f,
                "the linearizability search did not finish ({} ops); history:",
                self.total
            )?;
        } else {
            writeln!(
                f,
                "not linearizable ({} ops); the shortest failing prefix ends with:",
                self.total
            )?;
        }
        for op in &self.window {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// Whether `ops` (one key, any order) is linearizable from `initial`. `cut` keeps only what
/// had happened by that time: later operations are dropped, and answers after it are treated
/// as not yet received (the operation may have happened).
fn linearizable_until(ops: &[Op], initial: &Register, cut: u64) -> bool {
    // (time, is_return, index): at equal times invocations come first, which is the lenient
    // reading (the two operations count as concurrent).
    let mut events = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        if op.invoked > cut {
            continue;
        }
        events.push((op.invoked, 0u8, i));
        if let Some(r) = op.returned.filter(|r| *r <= cut) {
            events.push((r, 1, i));
        }
    }
    events.sort_unstable();
    let mut tester = LinearizabilityTester::<usize, Register>::new(initial.clone());
    // A client continues under a fresh thread id after an operation left in flight.
    let mut thread_of: BTreeMap<usize, usize> = BTreeMap::new();
    let mut in_flight: BTreeMap<usize, usize> = BTreeMap::new();
    let mut next_thread = 0;
    for (_, is_return, i) in events {
        let op = &ops[i];
        if is_return == 0 {
            let thread = *thread_of.entry(op.client).or_insert_with(|| {
                next_thread += 1;
                next_thread
            });
            if tester.on_invoke(thread, op.call).is_err() {
                return false;
            }
            let finishes = op.returned.is_some_and(|r| r <= cut);
            if finishes {
                in_flight.insert(i, thread);
            } else {
                next_thread += 1;
                thread_of.insert(op.client, next_thread);
            }
        } else {
            let thread = in_flight.remove(&i).expect("returned op was invoked");
            if tester.on_return(thread, op.ret).is_err() {
                return false;
            }
        }
    }
    tester.is_consistent()
}

/// Checks one key's history against [`Register`] starting from `initial`. On failure returns
/// the operations around the point where the history stops being linearizable.
pub fn check_linearizable(ops: &[Op], initial: &Register) -> Result<(), Violation> {
    let ops_for_search = ops.to_vec();
    let initial = initial.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("linearizability".into())
        .stack_size(256 << 20)
        .spawn(move || {
            let _ = tx.send(diagnose(&ops_for_search, &initial));
        })
        .expect("spawn the checker thread");
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(None) => Ok(()),
        Ok(Some(window)) => Err(Violation {
            window,
            total: ops.len(),
            timed_out: false,
        }),
        Err(_) => Err(Violation {
            window: ops.to_vec(),
            total: ops.len(),
            timed_out: true,
        }),
    }
}

/// `None` if linearizable; else the last operations of the shortest failing prefix.
fn diagnose(ops: &[Op], initial: &Register) -> Option<Vec<Op>> {
    if linearizable_until(ops, initial, u64::MAX) {
        return None;
    }
    let mut times: Vec<u64> = ops
        .iter()
        .flat_map(|op| [Some(op.invoked), op.returned])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    // The property is monotone in the cut: find the first time at which it fails.
    let (mut ok, mut bad) = (0usize, times.len() - 1);
    if !linearizable_until(ops, initial, times[0]) {
        bad = 0;
    } else {
        while bad - ok > 1 {
            let mid = (ok + bad) / 2;
            if linearizable_until(ops, initial, times[mid]) {
                ok = mid;
            } else {
                bad = mid;
            }
        }
    }
    let cut = times[bad];
    let mut window: Vec<Op> = ops.iter().filter(|op| op.invoked <= cut).copied().collect();
    window.sort_by_key(|op| op.invoked);
    let keep = window.len().saturating_sub(16);
    Some(window.split_off(keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, call: Call, ret: Ret, invoked: u64, returned: u64) -> Op {
        Op {
            client,
            call,
            ret,
            invoked,
            returned: Some(returned),
        }
    }

    fn lost(client: usize, call: Call, invoked: u64) -> Op {
        Op {
            client,
            call,
            ret: Ret::Unknown,
            invoked,
            returned: None,
        }
    }

    #[test]
    fn a_sequential_history_is_accepted() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(1, Call::Get, Ret::Found(1, 3), 20, 30),
            op(
                0,
                Call::Cas {
                    expected: 3,
                    value: 2,
                },
                Ret::Written(5),
                40,
                50,
            ),
            op(
                1,
                Call::Cas {
                    expected: 3,
                    value: 3,
                },
                Ret::Refused,
                60,
                70,
            ),
            op(1, Call::Delete, Ret::Deleted, 80, 90),
            op(0, Call::Get, Ret::Missing, 100, 110),
            op(0, Call::Delete, Ret::Missing, 120, 130),
        ];
        check_linearizable(&ops, &Register::default()).unwrap();
    }

    #[test]
    fn concurrent_writes_may_land_in_either_order() {
        // Two overlapping sets; the read after both sees the one with the higher version.
        let ops = [
            op(0, Call::Set(1), Ret::Written(7), 0, 50),
            op(1, Call::Set(2), Ret::Written(6), 10, 40),
            op(2, Call::Get, Ret::Found(1, 7), 60, 70),
        ];
        check_linearizable(&ops, &Register::default()).unwrap();
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_rejected() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(0, Call::Set(2), Ret::Written(4), 20, 30),
            // Starts after the second write was acknowledged, yet sees the first.
            op(1, Call::Get, Ret::Found(1, 3), 40, 50),
        ];
        let violation = check_linearizable(&ops, &Register::default()).unwrap_err();
        assert!(!violation.timed_out);
        assert_eq!(
            violation.window.last().unwrap().call,
            Call::Get,
            "{violation}"
        );
    }

    #[test]
    fn a_lost_acknowledged_write_after_failover_is_rejected() {
        // Acknowledged set, then a read that finds the key absent: the write was lost.
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(1, Call::Get, Ret::Missing, 20, 30),
        ];
        check_linearizable(&ops, &Register::default()).unwrap_err();
    }

    #[test]
    fn a_version_that_goes_back_is_rejected() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(9), 0, 10),
            op(0, Call::Set(2), Ret::Written(4), 20, 30),
        ];
        check_linearizable(&ops, &Register::default()).unwrap_err();
        // And a write after a restart must be above every version seen before it.
        let after_restart = [op(0, Call::Set(3), Ret::Written(4), 0, 10)];
        check_linearizable(&after_restart, &Register::holding(None, 9)).unwrap_err();
    }

    #[test]
    fn a_read_must_show_the_version_its_value_was_written_with() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(1, Call::Get, Ret::Found(1, 8), 20, 30),
        ];
        check_linearizable(&ops, &Register::default()).unwrap_err();
    }

    #[test]
    fn a_cas_that_matched_a_stale_version_is_rejected() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(0, Call::Set(2), Ret::Written(4), 20, 30),
            op(
                1,
                Call::Cas {
                    expected: 3,
                    value: 3,
                },
                Ret::Written(6),
                40,
                50,
            ),
        ];
        check_linearizable(&ops, &Register::default()).unwrap_err();
    }

    #[test]
    fn a_deleted_key_that_comes_back_is_rejected() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(0, Call::Delete, Ret::Deleted, 20, 30),
            op(1, Call::Get, Ret::Found(1, 3), 40, 50),
        ];
        check_linearizable(&ops, &Register::default()).unwrap_err();
    }

    #[test]
    fn an_unanswered_write_may_have_happened_or_not() {
        // Seen by one read after it was sent, and a later read sees it too: fine.
        let seen = [
            lost(0, Call::Set(1), 0),
            op(1, Call::Get, Ret::Found(1, 5), 20, 30),
            op(2, Call::Get, Ret::Found(1, 5), 40, 50),
        ];
        check_linearizable(&seen, &Register::default()).unwrap();
        // Never seen: fine too.
        let unseen = [
            lost(0, Call::Set(1), 0),
            op(1, Call::Get, Ret::Missing, 20, 30),
        ];
        check_linearizable(&unseen, &Register::default()).unwrap();
        // But it cannot take effect before it was sent...
        let early = [
            op(1, Call::Get, Ret::Found(1, 5), 0, 10),
            lost(0, Call::Set(1), 20),
        ];
        check_linearizable(&early, &Register::default()).unwrap_err();
        // ...nor disappear again once a read saw it.
        let flicker = [
            lost(0, Call::Set(1), 0),
            op(1, Call::Get, Ret::Found(1, 5), 20, 30),
            op(2, Call::Get, Ret::Missing, 40, 50),
        ];
        check_linearizable(&flicker, &Register::default()).unwrap_err();
    }

    #[test]
    fn a_client_continues_after_an_unanswered_operation() {
        let ops = [
            lost(0, Call::Set(1), 0),
            op(0, Call::Set(2), Ret::Written(8), 20, 30),
            op(1, Call::Get, Ret::Found(2, 8), 40, 50),
        ];
        check_linearizable(&ops, &Register::default()).unwrap();
    }
}
