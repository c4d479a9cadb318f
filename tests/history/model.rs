//! The register model one key's history is checked against, and the linearizability check.
//!
//! What: [`Register`] is the sequential specification of one key of shardkv's `/v1/kv` API
//! (a `stateright` [`SequentialSpec`]): a value with a version (the `ETag`), set, read,
//! compare-and-set on the version (`If-Match`) and deleted. [`check_linearizable`] searches
//! for a linearization of a recorded history and, when none exists, narrows the history down
//! to the shortest failing prefix in time, so the report shows the few operations that clash.
//!
//! Why this design: the server chooses versions, so the model cannot predict a write's
//! `ETag`; it checks it instead (a new version is above every version the key had, a read
//! shows the version its value was written with) through `is_valid_step`. Every write stores
//! a value used by no other write, so a read names the write it saw. An operation whose
//! answer never came (a timeout, a dropped connection, a 5xx) may or may not have taken
//! effect, at any point after it was invoked: its answer is placed after every other event.
//!
//! The search is a small Wing & Gong search with Lowe's cache (as in Porcupine), not
//! `stateright`'s `LinearizabilityTester`, which was tried first: its search has no cache, so
//! on a non-linearizable history of ~200 operations (a server with the failover drain
//! removed) it had not finished after 90 s, and the test could neither fail promptly nor say
//! where the history breaks. With the cache each (operations linearized, state) pair is
//! explored once, and a failing history is rejected in milliseconds. The tester still checks
//! this search in the unit tests below: both must agree on every history there, including
//! random small ones. A step budget bounds the search; running out fails the test, saying so.
//!
//! What it must never do: accept a history that no sequential order explains (the unit tests
//! below feed it broken histories), or treat a refused request (412, 404) as possibly applied.

use std::collections::HashSet;
use std::fmt;

use stateright::semantics::SequentialSpec;

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
    /// Set when the search ran out of steps (then `window` is the whole history).
    pub timed_out: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timed_out {
            writeln!(
                f,
                "the linearizability search ran out of steps ({} ops); history:",
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

/// `ops` as they stood at time `cut`: later operations dropped, answers after it not yet
/// received (such an operation may or may not have happened).
fn as_of(ops: &[Op], cut: u64) -> Vec<Op> {
    ops.iter()
        .filter(|op| op.invoked <= cut)
        .map(|op| match op.returned {
            Some(r) if r <= cut => *op,
            _ => Op {
                ret: Ret::Unknown,
                returned: None,
                ..*op
            },
        })
        .collect()
}

/// The search's step budget: far above what a linearizable history of a few hundred
/// operations needs with the cache, small enough to end in seconds.
const STEP_BUDGET: u64 = 20_000_000;

/// Wing & Gong's search with Lowe's cache of (operations linearized, state) pairs, as in
/// Porcupine: walk the events in time order, linearize a pending call when the model accepts
/// its answer, backtrack at the first answer whose call is not yet linearized. An unanswered
/// operation's answer comes after every other event, so it may take effect at any point
/// after its call, or never (linearized last, it changes nothing anyone saw).
///
/// `Some(verdict)`, or `None` if the step budget ran out.
fn wing_gong_lowe(ops: &[Op], initial: &Register, budget: &mut u64) -> Option<bool> {
    const NIL: usize = usize::MAX;
    // (time, 0 = call / 1 = answer, op). At equal times calls come first: the lenient reading.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.invoked, 0, i));
        events.push((op.returned.unwrap_or(u64::MAX), 1, i));
    }
    events.sort_unstable();
    let m = events.len();
    let head = m;
    let mut answer_of = vec![0; ops.len()];
    for (e, &(_, kind, op)) in events.iter().enumerate() {
        if kind == 1 {
            answer_of[op] = e;
        }
    }
    // A doubly linked list of the events not yet linearized, behind a head sentinel.
    let mut next: Vec<usize> = (1..=m).map(|e| if e == m { NIL } else { e }).collect();
    next.push(if m == 0 { NIL } else { 0 });
    let mut prev: Vec<usize> = (0..m).map(|e| if e == 0 { head } else { e - 1 }).collect();
    prev.push(NIL);
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        next[prev[e]] = next[e];
        if next[e] != NIL {
            prev[next[e]] = prev[e];
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize| {
        next[prev[e]] = e;
        if next[e] != NIL {
            prev[next[e]] = e;
        }
    };

    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, Register)> = HashSet::new();
    let mut stack: Vec<(usize, Register)> = Vec::new();
    let mut state = initial.clone();
    let mut entry = next[head];
    while next[head] != NIL {
        *budget = budget.checked_sub(1)?;
        let (_, kind, op) = events[entry];
        if kind == 0 {
            let mut after = state.clone();
            if after.is_valid_step(&ops[op].call, &ops[op].ret) {
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone(), after.clone())) {
                    stack.push((entry, std::mem::replace(&mut state, after)));
                    unlink(&mut next, &mut prev, entry);
                    unlink(&mut next, &mut prev, answer_of[op]);
                    entry = next[head];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            entry = next[entry];
        } else {
            // An answer whose call is still pending: undo the last choice.
            let Some((call, before)) = stack.pop() else {
                return Some(false);
            };
            let op = events[call].2;
            linearized[op / 64] &= !(1 << (op % 64));
            state = before;
            relink(&mut next, &mut prev, answer_of[op]);
            relink(&mut next, &mut prev, call);
            entry = next[call];
        }
    }
    Some(true)
}

/// Whether `ops` as they stood at `cut` are linearizable; `None` if the search gave up.
fn linearizable_until(ops: &[Op], initial: &Register, cut: u64, budget: &mut u64) -> Option<bool> {
    wing_gong_lowe(&as_of(ops, cut), initial, budget)
}

/// Checks one key's history against [`Register`] starting from `initial`. On failure returns
/// the operations around the point where the history stops being linearizable.
pub fn check_linearizable(ops: &[Op], initial: &Register) -> Result<(), Violation> {
    let mut budget = STEP_BUDGET;
    let gave_up = || Violation {
        window: ops.to_vec(),
        total: ops.len(),
        timed_out: true,
    };
    match linearizable_until(ops, initial, u64::MAX, &mut budget) {
        None => return Err(gave_up()),
        Some(true) => return Ok(()),
        Some(false) => {}
    }
    let mut times: Vec<u64> = ops
        .iter()
        .flat_map(|op| [Some(op.invoked), op.returned])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    // Failing is monotone in the cut (a linearization of the whole history, cut at any time,
    // linearizes what had happened by then): find the first time at which it fails.
    let (mut lo, mut hi) = (0, times.len() - 1);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match linearizable_until(ops, initial, times[mid], &mut budget) {
            None => return Err(gave_up()),
            Some(true) => lo = mid + 1,
            Some(false) => hi = mid,
        }
    }
    let cut = times[hi];
    let mut window = as_of(ops, cut);
    window.sort_by_key(|op| op.invoked);
    let keep = window.len().saturating_sub(16);
    Err(Violation {
        window: window.split_off(keep),
        total: ops.len(),
        timed_out: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

    /// stateright's verdict on the same history (no cache: small histories only).
    fn stateright_verdict(ops: &[Op], initial: &Register) -> bool {
        let mut events = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoked, 0u8, i));
            if let Some(r) = op.returned {
                events.push((r, 1, i));
            }
        }
        events.sort_unstable();
        let mut tester = LinearizabilityTester::<usize, Register>::new(initial.clone());
        // The tester allows one operation in flight per thread: a client continues under a
        // fresh thread id after an unanswered one.
        let mut thread_of = BTreeMap::new();
        let mut next_thread = 0;
        for (_, kind, i) in events {
            let op = &ops[i];
            let thread = *thread_of.entry(op.client).or_insert_with(|| {
                next_thread += 1;
                next_thread
            });
            if kind == 0 {
                tester.on_invoke(thread, op.call).unwrap();
                if op.returned.is_none() {
                    next_thread += 1;
                    thread_of.insert(op.client, next_thread);
                }
            } else {
                tester.on_return(thread, op.ret).unwrap();
            }
        }
        tester.is_consistent()
    }

    /// [`check_linearizable`], asserting that stateright's tester agrees.
    fn check(ops: &[Op], initial: &Register) -> Result<(), Violation> {
        let ours = check_linearizable(ops, initial);
        assert_eq!(
            ours.is_ok(),
            stateright_verdict(ops, initial),
            "the search and stateright disagree on {ops:#?}"
        );
        ours
    }

    /// A random small history of a correct register, one answer changed in a third of them.
    fn random_history(rng: &mut StdRng) -> Vec<Op> {
        let mut planned = Vec::new();
        for client in 0..3 {
            let mut t = rng.gen_range(0..5);
            for _ in 0..rng.gen_range(1..4) {
                let invoked = t + rng.gen_range(0..4);
                let point = invoked + rng.gen_range(0..8);
                let returned = point + rng.gen_range(0..4);
                t = returned + 1;
                let value = rng.gen_range(1..1000);
                let call = match rng.gen_range(0..4) {
                    0 => Call::Set(value),
                    1 => Call::Get,
                    2 => Call::Cas {
                        expected: rng.gen_range(1..6),
                        value,
                    },
                    _ => Call::Delete,
                };
                planned.push((point, client, call, invoked, returned));
            }
        }
        planned.sort_by_key(|p| p.0);
        let (mut value, mut version, mut seq) = (None, 0, 0);
        let mut ops: Vec<Op> = planned
            .into_iter()
            .map(|(_, client, call, invoked, returned)| {
                let ret = match call {
                    Call::Set(v) => {
                        seq += 1;
                        (value, version) = (Some(v), seq);
                        Ret::Written(seq)
                    }
                    Call::Cas { expected, value: v } if value.is_some() && version == expected => {
                        seq += 1;
                        (value, version) = (Some(v), seq);
                        Ret::Written(seq)
                    }
                    Call::Cas { .. } => Ret::Refused,
                    Call::Get => value.map_or(Ret::Missing, |v| Ret::Found(v, version)),
                    Call::Delete if value.is_some() => {
                        seq += 1;
                        value = None;
                        Ret::Deleted
                    }
                    Call::Delete => Ret::Missing,
                };
                let lost = rng.gen_bool(0.15);
                Op {
                    client,
                    call,
                    ret: if lost { Ret::Unknown } else { ret },
                    invoked,
                    returned: (!lost).then_some(returned),
                }
            })
            .collect();
        if rng.gen_bool(0.35) {
            let i = rng.gen_range(0..ops.len());
            if ops[i].returned.is_some() {
                ops[i].ret = match rng.gen_range(0..5) {
                    0 => Ret::Written(rng.gen_range(1..6)),
                    1 => Ret::Found(rng.gen_range(1..1000), rng.gen_range(1..6)),
                    2 => Ret::Missing,
                    3 => Ret::Deleted,
                    _ => Ret::Refused,
                };
            }
        }
        ops
    }

    #[test]
    fn the_search_agrees_with_stateright_on_random_small_histories() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut rejected = 0;
        for _ in 0..3_000 {
            let ops = random_history(&mut rng);
            if check(&ops, &Register::default()).is_err() {
                rejected += 1;
            }
        }
        assert!(
            (300..2_700).contains(&rejected),
            "{rejected} of 3000 rejected: the generator does not exercise both verdicts"
        );
    }

    #[test]
    fn a_long_broken_history_is_rejected_quickly_with_its_failing_window() {
        // 300 sequential writes and reads, then a read of the first value: a stale read.
        let mut ops = Vec::new();
        for i in 0..150u64 {
            let t = i * 100;
            ops.push(op(0, Call::Set(i + 1), Ret::Written(i + 1), t, t + 10));
            ops.push(op(1, Call::Get, Ret::Found(i + 1, i + 1), t + 20, t + 30));
        }
        ops.push(op(2, Call::Get, Ret::Found(1, 1), 20_000, 20_010));
        let violation = check_linearizable(&ops, &Register::default()).unwrap_err();
        assert!(!violation.timed_out, "{violation}");
        assert_eq!(
            violation.window.last().unwrap().invoked,
            20_000,
            "{violation}"
        );
    }

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
        check(&ops, &Register::default()).unwrap();
    }

    #[test]
    fn concurrent_writes_may_land_in_either_order() {
        // Two overlapping sets; the read after both sees the one with the higher version.
        let ops = [
            op(0, Call::Set(1), Ret::Written(7), 0, 50),
            op(1, Call::Set(2), Ret::Written(6), 10, 40),
            op(2, Call::Get, Ret::Found(1, 7), 60, 70),
        ];
        check(&ops, &Register::default()).unwrap();
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_write_is_rejected() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(0, Call::Set(2), Ret::Written(4), 20, 30),
            // Starts after the second write was acknowledged, yet sees the first.
            op(1, Call::Get, Ret::Found(1, 3), 40, 50),
        ];
        let violation = check(&ops, &Register::default()).unwrap_err();
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
        check(&ops, &Register::default()).unwrap_err();
    }

    #[test]
    fn a_version_that_goes_back_is_rejected() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(9), 0, 10),
            op(0, Call::Set(2), Ret::Written(4), 20, 30),
        ];
        check(&ops, &Register::default()).unwrap_err();
        // And a write after a restart must be above every version seen before it.
        let after_restart = [op(0, Call::Set(3), Ret::Written(4), 0, 10)];
        check(&after_restart, &Register::holding(None, 9)).unwrap_err();
    }

    #[test]
    fn a_read_must_show_the_version_its_value_was_written_with() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(1, Call::Get, Ret::Found(1, 8), 20, 30),
        ];
        check(&ops, &Register::default()).unwrap_err();
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
        check(&ops, &Register::default()).unwrap_err();
    }

    #[test]
    fn a_deleted_key_that_comes_back_is_rejected() {
        let ops = [
            op(0, Call::Set(1), Ret::Written(3), 0, 10),
            op(0, Call::Delete, Ret::Deleted, 20, 30),
            op(1, Call::Get, Ret::Found(1, 3), 40, 50),
        ];
        check(&ops, &Register::default()).unwrap_err();
    }

    #[test]
    fn an_unanswered_write_may_have_happened_or_not() {
        // Seen by one read after it was sent, and a later read sees it too: fine.
        let seen = [
            lost(0, Call::Set(1), 0),
            op(1, Call::Get, Ret::Found(1, 5), 20, 30),
            op(2, Call::Get, Ret::Found(1, 5), 40, 50),
        ];
        check(&seen, &Register::default()).unwrap();
        // Never seen: fine too.
        let unseen = [
            lost(0, Call::Set(1), 0),
            op(1, Call::Get, Ret::Missing, 20, 30),
        ];
        check(&unseen, &Register::default()).unwrap();
        // But it cannot take effect before it was sent...
        let early = [
            op(1, Call::Get, Ret::Found(1, 5), 0, 10),
            lost(0, Call::Set(1), 20),
        ];
        check(&early, &Register::default()).unwrap_err();
        // ...nor disappear again once a read saw it.
        let flicker = [
            lost(0, Call::Set(1), 0),
            op(1, Call::Get, Ret::Found(1, 5), 20, 30),
            op(2, Call::Get, Ret::Missing, 40, 50),
        ];
        check(&flicker, &Register::default()).unwrap_err();
    }

    #[test]
    fn a_client_continues_after_an_unanswered_operation() {
        let ops = [
            lost(0, Call::Set(1), 0),
            op(0, Call::Set(2), Ret::Written(8), 20, 30),
            op(1, Call::Get, Ret::Found(2, 8), 40, 50),
        ];
        check(&ops, &Register::default()).unwrap();
    }
}
