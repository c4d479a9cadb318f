//! A hierarchical timing wheel: the scheduler behind TTL expiry.
//!
//! This is scheme 7 of Varghese & Lauck, "Hashed and Hierarchical Timing Wheels: Data
//! Structures for the Efficient Implementation of a Timer Facility" (SOSP '87), laid out
//! the way tokio's `runtime/time/wheel` lays it out: fixed levels, an occupancy bitmap per
//! level, and cascading.
//!
//! # Time
//!
//! Time is a `u64` count of *ticks*; one tick is one millisecond of the coarse monotonic
//! clock, tick 0 being the clock's start. The wheel has a current time,
//! [`TimingWheel::elapsed`], which moves only forward and only through
//! [`TimingWheel::advance`] (or [`TimingWheel::advance_bounded`]). Every timer whose
//! deadline is at or before it has fired, except timers inserted already overdue and
//! those a bounded advance left for its next call: all of these fire on the next advance.
//!
//! # Levels and slots
//!
//! There are 7 levels of 64 slots. A slot of level `L` is `64^L` ticks wide, so one
//! rotation of level `L` spans exactly one slot of level `L + 1`:
//!
//! | level | slot width         | range of the level  |
//! |-------|--------------------|---------------------|
//! | 0     | 1 tick (1 ms)      | 2^6  (64 ms)        |
//! | 1     | 2^6  (64 ms)       | 2^12 (4.1 s)        |
//! | 2     | 2^12 (4.1 s)       | 2^18 (4.4 min)      |
//! | 3     | 2^18 (4.4 min)     | 2^24 (4.7 h)        |
//! | 4     | 2^24 (4.7 h)       | 2^30 (12.4 days)    |
//! | 5     | 2^30 (12.4 days)   | 2^36 (2.2 years)    |
//! | 6     | 2^36 (2.2 years)   | 2^42 (139 years)    |
//!
//! Bits `6L .. 6L + 6` of a tick number are its slot at level `L`. A timer goes to the
//! level holding the highest bit in which its deadline differs from `elapsed`,
//! `((elapsed ^ deadline) | 63).ilog2() / 6`, in slot `(deadline >> 6L) % 64`. A timer at
//! level `L < 6` thus shares every bit above the level with the current time: it lies in a
//! later slot of the level's current rotation, and the start of its slot is at or before
//! its deadline. A deadline at or before `elapsed` goes to the current slot of level 0.
//! Insertion is O(1): a few bit operations and a `Vec::push`.
//!
//! Each level keeps a `u64` occupancy bitmap (bit `s` set iff slot `s` is non-empty). The
//! next occupied slot of a level is the bitmap rotated to the current slot, then
//! `trailing_zeros`; no slot is ever scanned. The lowest non-empty level always holds the
//! earliest due slot, so advancing jumps from occupied slot to occupied slot and costs in
//! proportion to the timers it moves, not the ticks it crosses: an hour, or a century, over
//! three timers is a handful of steps.
//!
//! # Cascading
//!
//! When time reaches the start of an occupied slot of level `L > 0`, the slot is emptied
//! first (so nothing re-inserted is seen twice) and each of its timers is re-inserted
//! relative to the new time: into a lower level, or into the current slot of level 0 if
//! its deadline is that very tick. Only level 0 fires, and its slots are one tick wide, so a
//! timer fires in the first `advance(now)` with `now >= deadline`: exact to the tick.
//! Linux's wheel (since 4.8) does not cascade and instead lets a timer in a coarse level
//! fire up to a slot width late; fine for network timeouts, not for a TTL a client can
//! observe. The price of exactness is moves: a timer descends at most once per level, at
//! most 6 times in all, so its cost stays amortised O(1).
//!
//! # Horizon
//!
//! The levels cover 2^42 ticks (about 139 years), beyond the longest TTL (10 years). A
//! deadline further off differs from `elapsed` above bit 41; it is clamped into level 6, in
//! the slot named by its bits 36..42. Level 6 is used as a ring: that slot comes due within
//! one rotation, never after the deadline, and its timers are then re-inserted like any
//! cascading ones (back into level 6 if still beyond the horizon). So a far timer is
//! re-examined once per 2^42 ticks and never fires early.
//!
//! # Guarantees
//!
//! The wheel must never fire a timer before its deadline, never fire one twice, and never
//! lose one: every inserted timer is either pending (counted by [`TimingWheel::len`]) or
//! has been passed to `fire` exactly once. There is no removal: the caller cancels lazily,
//! ignoring a fired timer whose entry has since changed. Timers of one tick fire in no
//! particular order; across ticks they fire in order of deadline, except that a timer
//! inserted already overdue fires in the current tick.
//!
//! # Bounded steps
//!
//! [`TimingWheel::advance_bounded`] fires at most `limit` timers and moves at most
//! `8 * limit` between levels per call, so one call's work stays O(`limit`) even when a
//! slot holding a million timers comes due. A slot being cascaded is moved out whole into
//! a side buffer and re-inserted from there across calls; time does not move on until it
//! is empty, so nothing fires out of order.
//!
//! # Memory
//!
//! A pending timer costs `size_of::<(u64, T)>()` in its slot, whose timers are kept in chunks
//! of 1024: a slot wastes at most one partly filled chunk, never the up-to-2x slack (and the
//! freed old block) of a doubling `Vec`, and gives each chunk back as it empties. The empty
//! wheel is about 11 KiB (448 empty slots); an emptied slot keeps its chunk for reuse only if
//! it has room for at most 256 timers, so memory comes back after a burst.

use std::fmt;

/// Bits of a tick number consumed by one level.
const SLOT_BITS: usize = 6;
/// Slots per level.
const SLOTS: usize = 1 << SLOT_BITS;
/// Mask selecting a slot index.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Levels in the wheel; they cover `2^(6 * LEVELS)` = 2^42 ticks.
const LEVELS: usize = 7;
/// The top level, which also takes every timer beyond the horizon.
const TOP: usize = LEVELS - 1;
/// A slot's timers are kept in chunks of this many.
const CHUNK: usize = 1024;
/// An emptied slot keeps its chunk for reuse only if it has room for at most this many.
const RETAIN_CAPACITY: usize = 256;
/// `advance_bounded` moves at most this many timers between levels per timer it may fire.
/// A timer moves at most 6 times in its life, so this pace keeps up with firing.
const MOVES_PER_FIRE: usize = 8;

/// The timers of one slot, each with its deadline: a stack of chunks of at most [`CHUNK`]
/// timers. A slot that collects a million timers (an hour's TTLs written in a burst share a
/// level-3 slot) grows a chunk at a time: no doubling, so at most one chunk of slack and no
/// reallocation that copies them all and leaves the old block to the allocator; and each chunk
/// is freed as soon as it is emptied, so memory comes back while a big slot fires or cascades.
/// Every chunk but the last is full; only a slot's one remaining chunk may be empty.
struct Bucket<T> {
    chunks: Vec<Vec<(u64, T)>>,
}

impl<T> Bucket<T> {
    const fn new() -> Self {
        Bucket { chunks: Vec::new() }
    }

    fn push(&mut self, entry: (u64, T)) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(entry),
            Some(_) => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(entry);
                self.chunks.push(chunk);
            }
            // The first chunk grows by doubling up to `CHUNK`, so small slots stay small.
            None => self.chunks.push(vec![entry]),
        }
    }

    fn pop(&mut self) -> Option<(u64, T)> {
        let chunks = self.chunks.len();
        let last = self.chunks.last_mut()?;
        let entry = last.pop();
        if last.is_empty() && (chunks > 1 || last.capacity() > RETAIN_CAPACITY) {
            self.chunks.pop();
        }
        entry
    }

    fn len(&self) -> usize {
        match self.chunks.last() {
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.len(),
            None => 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.chunks.last().is_none_or(Vec::is_empty)
    }

    /// Keeps only the timers `keep` accepts, repacked into full chunks. Returns how many went.
    fn retain(&mut self, keep: &mut impl FnMut(u64, &T) -> bool) -> usize {
        let mut removed = 0;
        // Each old chunk is freed as soon as it has been read.
        for chunk in std::mem::take(&mut self.chunks) {
            for (deadline, item) in chunk {
                if keep(deadline, &item) {
                    self.push((deadline, item));
                } else {
                    removed += 1;
                }
            }
        }
        removed
    }

    #[cfg(test)]
    fn iter(&self) -> impl Iterator<Item = &(u64, T)> {
        self.chunks.iter().flatten()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }
}

struct Level<T> {
    /// Bit `s` is set iff `slots[s]` is non-empty.
    occupied: u64,
    slots: [Bucket<T>; SLOTS],
}

impl<T> Level<T> {
    fn new() -> Self {
        Level {
            occupied: 0,
            slots: std::array::from_fn(|_| Bucket::new()),
        }
    }
}

/// Ticks spanned by one slot of `level`.
fn slot_width(level: usize) -> u64 {
    1 << (SLOT_BITS * level)
}

/// The slot of `level` that tick `t` falls in.
fn slot_of(t: u64, level: usize) -> usize {
    ((t >> (SLOT_BITS * level)) & SLOT_MASK) as usize
}

/// The level for a timer due at `deadline > elapsed`: the level holding the highest bit in
/// which the two differ, clamped to the top level.
fn level_for(elapsed: u64, deadline: u64) -> usize {
    let significant = ((elapsed ^ deadline) | SLOT_MASK).ilog2() as usize;
    (significant / SLOT_BITS).min(TOP)
}

/// A hierarchical timing wheel of timers carrying a `T`, with 1-tick precision and a
/// 2^42-tick horizon. See the [module documentation](self) for the design.
pub struct TimingWheel<T> {
    /// The current time: every timer with a deadline at or before it has fired, except
    /// those at level 0's current slot (inserted overdue, or left by a bounded advance).
    elapsed: u64,
    /// Pending timers.
    len: usize,
    /// `LEVELS` levels, boxed so the wheel itself stays small to move.
    levels: Box<[Level<T>]>,
    /// Timers of a due slot that a bounded advance has not finished re-inserting. They
    /// are all due for re-insertion at `elapsed`, which does not move until this is empty.
    cascading: Bucket<T>,
    /// Slots taken (to fire or to cascade) so far: lets tests bound an advance's work.
    #[cfg(test)]
    steps: u64,
    /// Timers re-inserted by cascading so far.
    #[cfg(test)]
    moves: u64,
}

impl<T> TimingWheel<T> {
    /// A wheel whose current time is `now`.
    pub fn new(now: u64) -> Self {
        TimingWheel {
            elapsed: now,
            len: 0,
            levels: (0..LEVELS).map(|_| Level::new()).collect(),
            cascading: Bucket::new(),
            #[cfg(test)]
            steps: 0,
            #[cfg(test)]
            moves: 0,
        }
    }

    /// Drops every pending timer `keep(deadline, item)` refuses, without firing it; the others
    /// keep their deadlines and their order. Returns how many were dropped. Costs one call of
    /// `keep` per pending timer.
    pub fn retain(&mut self, mut keep: impl FnMut(u64, &T) -> bool) -> usize {
        let mut removed = self.cascading.retain(&mut keep);
        for level in self.levels.iter_mut() {
            for (s, bucket) in level.slots.iter_mut().enumerate() {
                if level.occupied & (1 << s) == 0 {
                    continue;
                }
                removed += bucket.retain(&mut keep);
                if bucket.is_empty() {
                    level.occupied &= !(1 << s);
                }
            }
        }
        self.len -= removed;
        removed
    }

    /// Schedules `item` to fire at `deadline`. A deadline at or before `elapsed()` fires on
    /// the next `advance`.
    pub fn insert(&mut self, deadline: u64, item: T) {
        self.len += 1;
        self.place(deadline, item);
    }

    /// Advances the wheel's time to `now` and calls `fire(deadline, item)` for every timer
    /// with deadline <= now. Each timer fires exactly once, never before its deadline, and
    /// in the first call whose `now` is at or after its deadline: firing is exact to the
    /// tick. Timers of different deadlines fire in deadline order.
    ///
    /// Time never moves back: if `now <= elapsed()` the time stays put, but timers that
    /// were inserted already overdue (deadline <= `elapsed()`) still fire.
    ///
    /// The cost is proportional to the timers fired or cascaded, not to the ticks crossed:
    /// the bitmaps lead straight to each occupied slot, so advancing an empty wheel by a
    /// century, or a sparse one by an hour, is a handful of operations.
    pub fn advance(&mut self, now: u64, mut fire: impl FnMut(u64, T)) {
        self.advance_inner(now, usize::MAX, &mut fire);
    }

    /// Like advance but stops after firing at most `limit` timers (returns how many fired);
    /// remaining due timers fire on later calls. Time only advances as far as processed,
    /// so nothing is lost. (Used so the expiry thread can bound the work per step.)
    ///
    /// A call also moves at most `8 * limit` timers between levels, so its work is
    /// O(`limit`) even when a huge slot comes due; it may therefore stop having fired
    /// fewer than `limit`. The call has caught up (every timer due by `now` fired, and
    /// `elapsed()` is `now`) exactly when `next_expiration()` is then `None` or later than
    /// `now`; otherwise call again. Across calls, timers still fire in deadline order
    /// (timers inserted already overdue fire at the current tick). `limit == 0` does
    /// nothing while a timer is due.
    pub fn advance_bounded(
        &mut self,
        now: u64,
        limit: usize,
        mut fire: impl FnMut(u64, T),
    ) -> usize {
        self.advance_inner(now, limit, &mut fire)
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wheel's current time (the last `now` fully processed).
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// The earliest tick at which some timer could fire (a lower bound, exact at level 0),
    /// or None when empty. The expiry thread uses it to sleep.
    ///
    /// The result is at least `elapsed()` and at most the earliest pending deadline
    /// (`elapsed()` itself when an overdue timer is pending). When the earliest timers sit
    /// at a higher level it is the start of their slot; advancing to it cascades them down,
    /// after which this returns a later, finer bound.
    pub fn next_expiration(&self) -> Option<u64> {
        if !self.cascading.is_empty() {
            return Some(self.elapsed);
        }
        self.next_due().map(|(_, _, due)| due)
    }

    /// Puts a timer in its slot relative to the current time, without counting it.
    fn place(&mut self, deadline: u64, item: T) {
        let (level, slot) = if deadline <= self.elapsed {
            (0, slot_of(self.elapsed, 0))
        } else {
            let level = level_for(self.elapsed, deadline);
            (level, slot_of(deadline, level))
        };
        let level = &mut self.levels[level];
        level.slots[slot].push((deadline, item));
        level.occupied |= 1 << slot;
    }

    /// The earliest occupied slot, as `(level, slot, tick at which it comes due)`.
    fn next_due(&self) -> Option<(usize, usize, u64)> {
        // The lowest non-empty level holds the earliest slot: a timer at level `L` is due
        // before the current slot of level `L + 1` ends, and every slot of a higher level
        // comes due at or after that.
        let (level, occupied) = self
            .levels
            .iter()
            .enumerate()
            .find_map(|(i, l)| (l.occupied != 0).then_some((i, l.occupied)))?;
        let width = slot_width(level);
        let current = slot_of(self.elapsed, level);
        // Level 0's current slot may hold due timers. A higher level's current slot is
        // empty, except at the top level, where it holds timers a whole rotation away:
        // there the search starts after it, so that it comes last.
        let skip = usize::from(level > 0);
        let start = (current + skip) % SLOTS;
        let distance = occupied.rotate_right(start as u32).trailing_zeros() as usize + skip;
        debug_assert!(level == TOP || current + distance < SLOTS);
        let due = (self.elapsed & !(width - 1)) + distance as u64 * width;
        Some((level, (current + distance) % SLOTS, due))
    }

    fn advance_inner<F: FnMut(u64, T)>(&mut self, now: u64, limit: usize, fire: &mut F) -> usize {
        let now = now.max(self.elapsed);
        let mut fired = 0;
        let mut moves = limit.saturating_mul(MOVES_PER_FIRE);
        loop {
            // A cascade left unfinished is due at `elapsed`: finish it before time moves.
            if !self.cascading.is_empty() {
                if moves == 0 {
                    return fired;
                }
                moves -= self.cascade_some(moves);
                continue;
            }
            let (level, slot, due) = match self.next_due() {
                Some(next) if next.2 <= now => next,
                _ => {
                    self.elapsed = now;
                    return fired;
                }
            };
            if fired == limit || (level > 0 && moves == 0) {
                return fired;
            }
            #[cfg(test)]
            {
                self.steps += 1;
            }
            debug_assert!(due >= self.elapsed);
            self.elapsed = due;
            if level == 0 {
                fired += self.fire_slot(slot, limit - fired, fire);
            } else {
                // Take the whole slot out first, so that nothing re-inserted (a timer
                // beyond the horizon may go straight back into it) is seen twice. The
                // slot gets the side buffer's empty allocation in exchange.
                let home = &mut self.levels[level];
                home.occupied &= !(1 << slot);
                std::mem::swap(&mut self.cascading, &mut home.slots[slot]);
            }
        }
    }

    /// Fires up to `budget` timers of level 0's `slot`, which is due now.
    fn fire_slot<F: FnMut(u64, T)>(&mut self, slot: usize, budget: usize, fire: &mut F) -> usize {
        let level = &mut self.levels[0];
        let entries = &mut level.slots[slot];
        let mut fired = 0;
        while fired < budget {
            let Some((deadline, item)) = entries.pop() else {
                break;
            };
            debug_assert!(deadline <= self.elapsed, "fired early");
            self.len -= 1;
            fired += 1;
            fire(deadline, item);
        }
        if entries.is_empty() {
            level.occupied &= !(1 << slot);
        }
        fired
    }

    /// Re-inserts up to `budget` timers of the slot being cascaded relative to the current
    /// time, which puts them at lower levels (or, beyond the horizon, back at the top).
    /// Returns how many moved.
    fn cascade_some(&mut self, budget: usize) -> usize {
        let n = budget.min(self.cascading.len());
        for _ in 0..n {
            let Some((deadline, item)) = self.cascading.pop() else {
                break;
            };
            debug_assert!(deadline >= self.elapsed);
            self.place(deadline, item);
        }
        #[cfg(test)]
        {
            self.moves += n as u64;
        }
        n
    }
}

impl<T> fmt::Debug for TimingWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimingWheel")
            .field("elapsed", &self.elapsed)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl<T> TimingWheel<T> {
    /// Asserts the structural invariants the design relies on.
    fn check_invariants(&self) {
        let mut count = 0;
        for (level, l) in self.levels.iter().enumerate() {
            let current = slot_of(self.elapsed, level);
            for (slot, entries) in l.slots.iter().enumerate() {
                assert_eq!((l.occupied >> slot) & 1 == 1, !entries.is_empty(), "bitmap");
                count += entries.len();
                for &(deadline, _) in entries.iter() {
                    if deadline <= self.elapsed {
                        assert!(level == 0 && slot == current, "due timer out of place");
                        continue;
                    }
                    assert_eq!(slot, slot_of(deadline, level), "wrong slot");
                    if level < TOP {
                        let above = SLOT_BITS * (level + 1);
                        assert_eq!(deadline >> above, self.elapsed >> above, "wrong level");
                        assert!(slot > current, "slot in the past");
                    } else {
                        assert!(level_for(self.elapsed, deadline) == TOP, "should be lower");
                        let distance = match (slot + SLOTS - current) % SLOTS {
                            0 => SLOTS,
                            d => d,
                        };
                        let due = (self.elapsed & !(slot_width(TOP) - 1))
                            + distance as u64 * slot_width(TOP);
                        assert!(due <= deadline, "top slot due after its deadline");
                    }
                }
            }
        }
        for &(deadline, _) in self.cascading.iter() {
            assert!(deadline >= self.elapsed, "cascading timer already overdue");
        }
        assert_eq!(count + self.cascading.len(), self.len, "len");
    }

    /// Total capacity of all slots and the side buffer, in entries.
    fn capacity(&self) -> usize {
        self.levels
            .iter()
            .flat_map(|l| l.slots.iter())
            .map(Bucket::capacity)
            .sum::<usize>()
            + self.cascading.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const DEADLINES: [u64; 13] = [
        0,
        1,
        63,
        64,
        65,
        4095,
        4096,
        (1 << 18) + 5,
        1 << 24,
        1 << 30,
        (1 << 36) + 7,
        1 << 41,
        1 << 43,
    ];

    fn advance(w: &mut TimingWheel<u32>, now: u64) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        w.advance(now, |d, x| out.push((d, x)));
        w.check_invariants();
        out
    }

    /// Tiny deterministic generator for the non-proptest tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Log-uniform-ish value below 2^max_bits.
        fn scaled(&mut self, max_bits: u32) -> u64 {
            let bits = (self.next() % u64::from(max_bits + 1)) as u32;
            self.next() & ((1u64 << bits) - 1)
        }
    }

    #[test]
    fn fires_at_its_tick_at_every_level_stepping_single_ticks() {
        for start in [0, 12_345, (1 << 42) - 3, (1 << 36) - 1] {
            for offset in DEADLINES {
                let deadline = start + offset;
                let mut w = TimingWheel::new(start);
                w.insert(deadline, 7);
                w.check_invariants();
                // Big jumps to a few ticks before the deadline, then single ticks.
                let near = deadline.saturating_sub(3).max(start);
                let mut t = start;
                while t < near {
                    t = (t + (near - t) / 2 + 1).min(near);
                    if t < deadline {
                        assert!(advance(&mut w, t).is_empty(), "early: {deadline} at {t}");
                    }
                }
                let mut fired_at = None;
                for t in near..=deadline + 3 {
                    for (d, x) in advance(&mut w, t) {
                        assert_eq!((d, x), (deadline, 7));
                        assert!(fired_at.is_none(), "fired twice");
                        fired_at = Some(t);
                    }
                }
                assert_eq!(fired_at, Some(deadline), "start {start} offset {offset}");
                assert!(w.is_empty());
            }
        }
    }

    #[test]
    fn fires_at_every_level_in_big_jumps() {
        for start in [0, 999, (1 << 42) - 1] {
            for offset in DEADLINES {
                let deadline = start + offset;
                // One jump to exactly the deadline, after one jump to just before it.
                let mut w = TimingWheel::new(start);
                w.insert(deadline, 1);
                if deadline > start {
                    assert!(advance(&mut w, deadline - 1).is_empty());
                }
                assert_eq!(advance(&mut w, deadline), vec![(deadline, 1)]);
                assert!(advance(&mut w, deadline + (1 << 44)).is_empty());
                // One jump well past it.
                let mut w = TimingWheel::new(start);
                w.insert(deadline, 2);
                assert_eq!(advance(&mut w, deadline + 1000), vec![(deadline, 2)]);
                assert_eq!(w.elapsed(), deadline + 1000);
                assert!(w.is_empty());
            }
        }
    }

    #[test]
    fn all_levels_together_fire_in_order_and_exactly() {
        let mut w = TimingWheel::new(0);
        for (i, d) in DEADLINES.iter().enumerate() {
            w.insert(*d, i as u32);
        }
        w.check_invariants();
        let mut fired = Vec::new();
        for d in DEADLINES {
            // Jump to just before, then tick across the deadline.
            if d > w.elapsed() + 1 {
                assert!(advance(&mut w, d - 1).is_empty(), "early before {d}");
            }
            for t in w.elapsed()..=d + 1 {
                for (fd, i) in advance(&mut w, t) {
                    assert_eq!(fd, t, "fired at {t}, deadline {fd}");
                    fired.push(i);
                }
            }
        }
        assert_eq!(fired, (0..DEADLINES.len() as u32).collect::<Vec<_>>());
        assert!(w.is_empty());
    }

    #[test]
    fn overdue_timers_fire_on_next_advance_even_without_moving_time() {
        let mut w = TimingWheel::new(0);
        assert!(advance(&mut w, 10_000).is_empty());
        w.insert(10_000, 1);
        w.insert(5, 2);
        w.insert(0, 3);
        w.insert(10_001, 4);
        assert_eq!(w.next_expiration(), Some(10_000));
        // `now` earlier than elapsed: time stays put, overdue timers still fire.
        let mut fired = advance(&mut w, 3);
        fired.sort_unstable();
        assert_eq!(fired, vec![(0, 3), (5, 2), (10_000, 1)]);
        assert_eq!(w.elapsed(), 10_000);
        assert_eq!(w.next_expiration(), Some(10_001));
        assert!(advance(&mut w, 10_000).is_empty());
        assert_eq!(advance(&mut w, 10_001), vec![(10_001, 4)]);
    }

    #[test]
    fn cascades_correctly_with_inserts_after_advancing() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut w = TimingWheel::new(rng.scaled(44));
        let mut pending: BTreeMap<u32, u64> = BTreeMap::new();
        let mut next_id = 0u32;
        for _ in 0..400 {
            for _ in 0..rng.next() % 20 {
                let offset = rng.scaled(43);
                let deadline = if rng.next() % 8 == 0 {
                    w.elapsed().saturating_sub(offset)
                } else {
                    w.elapsed() + offset
                };
                w.insert(deadline, next_id);
                pending.insert(next_id, deadline);
                next_id += 1;
            }
            let before = w.elapsed();
            let max_bits = if rng.next() % 4 == 0 { 40 } else { 14 };
            let now = before + rng.scaled(max_bits);
            for (d, id) in advance(&mut w, now) {
                assert_eq!(pending.remove(&id), Some(d), "unknown or repeated {id}");
                assert!(d <= now, "early");
            }
            // Not late: nothing due is left.
            assert!(pending.values().all(|&d| d > now), "late");
            assert_eq!(w.len(), pending.len());
        }
        assert!(next_id > 1000);
    }

    #[test]
    fn sparse_huge_jumps_take_a_handful_of_steps() {
        let mut w: TimingWheel<u32> = TimingWheel::new(0);
        w.advance(u64::MAX / 2, |_, _| unreachable!());
        assert_eq!(w.steps, 0, "an empty wheel does no work");
        assert_eq!(w.elapsed(), u64::MAX / 2);

        let hour = 3_600_000;
        let mut w = TimingWheel::new(0);
        for (i, d) in [1000, 1_800_000, 3_599_999].into_iter().enumerate() {
            w.insert(d, i as u32);
        }
        assert_eq!(advance(&mut w, hour).len(), 3);
        // At most one cascade per level plus one firing, per timer.
        assert!(w.steps <= 3 * LEVELS as u64, "{} steps", w.steps);

        let mut w = TimingWheel::new(12_345);
        for (i, d) in [1 << 20, (1 << 39) + 17, (1 << 40) - 1]
            .into_iter()
            .enumerate()
        {
            w.insert(d, i as u32);
        }
        assert_eq!(advance(&mut w, 1 << 40).len(), 3);
        assert!(w.steps <= 3 * LEVELS as u64, "{} steps", w.steps);
    }

    #[test]
    fn beyond_the_horizon_never_fires_early() {
        let horizon = 1u64 << 42;
        for start in [0, 5, horizon - 1, (1 << 36) * 5 + 1] {
            for offset in [horizon, horizon + 1, 3 * horizon + 12_345, horizon - 1] {
                let deadline = start + offset;
                let mut w = TimingWheel::new(start);
                w.insert(deadline, 0);
                w.check_invariants();
                assert!(w.next_expiration().unwrap() <= deadline);
                assert!(advance(&mut w, deadline - 1).is_empty());
                assert_eq!(w.next_expiration(), Some(deadline));
                assert_eq!(advance(&mut w, deadline), vec![(deadline, 0)]);
            }
        }
        // Crossing a 2^42 boundary one tick away is beyond the horizon by bits, yet exact.
        let mut w = TimingWheel::new(horizon - 1);
        w.insert(horizon, 9);
        assert!(advance(&mut w, horizon - 1).is_empty());
        assert_eq!(advance(&mut w, horizon), vec![(horizon, 9)]);
        // The largest deadline is accepted and waits.
        let mut w = TimingWheel::new(0);
        w.insert(u64::MAX, 1);
        assert!(advance(&mut w, 1 << 44).is_empty());
        assert_eq!(w.len(), 1);
    }

    /// Calls `advance_bounded(now, limit)` until caught up, checking each call's bounds.
    fn drain_bounded(w: &mut TimingWheel<u32>, now: u64, limit: usize) -> Vec<(u64, u32)> {
        let mut fired = Vec::new();
        loop {
            let mut batch = Vec::new();
            let (steps, moves) = (w.steps, w.moves);
            let n = w.advance_bounded(now, limit, |d, id| batch.push((d, id)));
            w.check_invariants();
            assert_eq!(n, batch.len());
            assert!(n <= limit);
            assert!(
                w.moves - moves <= (MOVES_PER_FIRE * limit) as u64,
                "moved too many"
            );
            assert!(w.steps - steps <= (limit + MOVES_PER_FIRE * limit + 1) as u64);
            assert!(w.elapsed() <= now);
            for &(d, _) in &batch {
                assert!(d <= w.elapsed(), "fired beyond the processed time");
            }
            fired.extend(batch);
            if w.next_expiration().is_none_or(|t| t > now) {
                assert_eq!(w.elapsed(), now, "caught up");
                return fired;
            }
        }
    }

    #[test]
    fn advance_bounded_fires_at_most_limit_and_keeps_everything() {
        let mut rng = XorShift(42);
        let mut w = TimingWheel::new(0);
        let mut deadlines = Vec::new();
        for id in 0..2000u32 {
            // Many duplicate deadlines, spread over several levels.
            let d = match id % 4 {
                0 => 100,
                1 => rng.scaled(12),
                2 => rng.scaled(24),
                _ => rng.scaled(30),
            };
            w.insert(d, id);
            deadlines.push(d);
        }
        let now = 1 << 23;
        let due = deadlines.iter().filter(|&&d| d <= now).count();
        assert_eq!(w.advance_bounded(now, 0, |_, _| unreachable!()), 0);
        assert_eq!(w.elapsed(), 0, "limit 0 with due timers does not move time");

        let fired = drain_bounded(&mut w, now, 7);
        assert_eq!(w.len() + fired.len(), deadlines.len());
        assert!(fired.windows(2).all(|p| p[0].0 <= p[1].0), "order");
        let mut ids: Vec<u32> = fired.iter().map(|&(_, id)| id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), due);
        assert!(fired.iter().all(|&(d, id)| deadlines[id as usize] == d));
        // The rest fire later, once each.
        let rest = advance(&mut w, u64::MAX >> 1);
        assert_eq!(rest.len() + fired.len(), deadlines.len());
        assert!(w.is_empty());
    }

    #[test]
    fn advance_bounded_cascades_a_huge_slot_in_bounded_steps() {
        let mut w = TimingWheel::new(0);
        // 20,000 timers in one level-3 slot (ticks 2^18 * 5 ..= 2^18 * 6 - 1), plus one
        // beyond the horizon that keeps going back into the top level.
        let base = 5u64 << 18;
        for id in 0..20_000u32 {
            w.insert(base + u64::from(id) * 13 % (1 << 18), id);
        }
        w.insert(1 << 43, u32::MAX);
        let now = (6 << 18) + 1;
        let mut fired = Vec::new();
        let mut calls = 0;
        while w.next_expiration().is_some_and(|t| t <= now) {
            let (before, moves) = (fired.len(), w.moves);
            w.advance_bounded(now, 10, |d, id| fired.push((d, id)));
            assert!(fired.len() - before <= 10);
            assert!(w.moves - moves <= 80);
            calls += 1;
        }
        w.check_invariants();
        assert_eq!(w.elapsed(), now);
        assert_eq!(fired.len(), 20_000);
        // Each call fired 10 or moved 80 (at most 3 moves per timer here), or finished.
        assert!(
            (2_000..=2_000 + 3 * 20_000 / 80 + 1).contains(&calls),
            "{calls} calls"
        );
        assert!(fired.windows(2).all(|p| p[0].0 <= p[1].0), "order");
        assert!(fired
            .iter()
            .all(|&(d, id)| d == base + u64::from(id) * 13 % (1 << 18)));
        assert_eq!(w.len(), 1);
        assert_eq!(drain_bounded(&mut w, 1 << 44, 1), vec![(1 << 43, u32::MAX)]);
    }

    #[test]
    fn an_unfinished_cascade_holds_time_and_is_reported_due() {
        let mut w = TimingWheel::new(0);
        for id in 0..100 {
            w.insert(100, id); // level 1, slot 1: due at 64
        }
        w.insert(70, 100);
        assert_eq!(w.next_expiration(), Some(64));
        // Limit 1: at most 8 moves, so the cascade of 101 timers is left unfinished.
        assert_eq!(w.advance_bounded(200, 1, |_, _| unreachable!()), 0);
        w.check_invariants();
        assert_eq!(w.elapsed(), 64);
        assert_eq!(
            w.next_expiration(),
            Some(64),
            "the rest of the cascade is due now"
        );
        assert_eq!(w.len(), 101);
        let fired = drain_bounded(&mut w, 200, 1);
        assert_eq!(fired[0], (70, 100));
        assert_eq!(fired.len(), 101);
        assert!(fired[1..].iter().all(|&(d, _)| d == 100));
    }

    #[test]
    fn next_expiration_is_a_lower_bound_exact_at_level_zero() {
        let mut w: TimingWheel<()> = TimingWheel::new(1000);
        assert_eq!(w.next_expiration(), None);
        w.insert(1010, ());
        assert_eq!(w.next_expiration(), Some(1010));
        let mut w: TimingWheel<()> = TimingWheel::new(0);
        w.insert(4000, ());
        // Level 1, slot 62: due at the slot's start, then exact once cascaded.
        assert_eq!(w.next_expiration(), Some(3968));
        w.advance(3968, |_, _| unreachable!());
        assert_eq!(w.next_expiration(), Some(4000));
        w.advance(4000, |_, _| ());
        assert_eq!(w.next_expiration(), None);
    }

    #[test]
    fn retain_drops_exactly_the_refused_timers_and_the_rest_fire_on_time() {
        let mut w = TimingWheel::new(0);
        let mut rng = XorShift(7);
        let mut kept = std::collections::HashSet::new();
        for id in 0..5_000u32 {
            let deadline = 1 + rng.scaled(30);
            w.insert(deadline, id);
            if id % 3 != 0 {
                kept.insert((deadline, id));
            }
        }
        // Part of the way through time, so timers sit at every level.
        for (deadline, id) in advance(&mut w, 1 << 10) {
            assert!(deadline <= 1 << 10);
            kept.remove(&(deadline, id));
        }
        let dropped = w.retain(|_, id| id % 3 != 0);
        assert_eq!(w.len(), kept.len());
        assert!(dropped > 0);
        w.check_invariants();
        for (deadline, id) in advance(&mut w, u64::MAX >> 20) {
            assert_ne!(id % 3, 0, "a dropped timer fired");
            assert!(kept.remove(&(deadline, id)), "fired twice or unknown: {id}");
        }
        assert!(kept.is_empty(), "timers lost: {}", kept.len());
        assert!(w.is_empty());
    }

    #[test]
    fn memory_comes_back_after_a_burst() {
        let mut w = TimingWheel::new(0);
        for id in 0..10_000 {
            w.insert(5, id); // one level-0 slot
            w.insert(70_000 + u64::from(id % 3), id); // one level-2 slot, cascading
        }
        assert!(w.capacity() >= 20_000);
        assert_eq!(advance(&mut w, 1 << 20).len(), 20_000);
        assert!(w.is_empty());
        assert!(w.capacity() <= 3 * CHUNK, "{}", w.capacity());
        // Small slots keep their allocation.
        let mut w = TimingWheel::new(0);
        for id in 0..100 {
            w.insert(3, id);
        }
        advance(&mut w, 3);
        assert!(w.capacity() >= 100);
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Insert at `elapsed + offset`, or `elapsed - offset` (saturating) when `past`.
        Insert { offset: u64, past: bool },
        /// Insert `count` timers at `elapsed + offset + i * spread`: crowded slots.
        InsertMany {
            offset: u64,
            count: u32,
            spread: u64,
        },
        /// Advance by `by`.
        Advance { by: u64 },
        /// Advance by `by`, firing at most `limit`.
        Bounded { by: u64, limit: usize },
        /// Advance by `by` through bounded calls of `limit` until caught up.
        Drain { by: u64, limit: usize },
    }

    /// Offsets spread across all scales up to 2^44, with many small ones.
    fn scaled() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..4,
            (0u32..=44, any::<u64>()).prop_map(|(bits, r)| r & ((1u64 << bits) - 1)),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (scaled(), prop::bool::weighted(0.15))
                .prop_map(|(offset, past)| Op::Insert { offset, past }),
            2 => scaled().prop_map(|by| Op::Advance { by }),
            1 => (scaled(), 1u32..60, prop_oneof![Just(0u64), 1u64..5, scaled()])
                .prop_map(|(offset, count, spread)| Op::InsertMany { offset, count, spread }),
            1 => (scaled(), 0usize..5).prop_map(|(by, limit)| Op::Bounded { by, limit }),
            1 => (scaled(), 1usize..4).prop_map(|(by, limit)| Op::Drain { by, limit }),
        ]
    }

    /// Checks `next_expiration` and `len` against the model of pending deadlines.
    fn check_against_model(w: &TimingWheel<u32>, model: &BTreeMap<u64, Vec<u32>>) {
        w.check_invariants();
        assert_eq!(w.len(), model.values().map(Vec::len).sum::<usize>());
        assert_eq!(w.is_empty(), model.is_empty());
        match (w.next_expiration(), model.keys().next()) {
            (None, None) => {}
            (Some(next), Some(&earliest)) => {
                assert!(next >= w.elapsed());
                assert!(next <= earliest.max(w.elapsed()), "{next} after {earliest}");
            }
            other => panic!("next_expiration vs model: {other:?}"),
        }
    }

    /// Removes a fired timer from the model, failing if it was not pending there.
    fn take_from_model(model: &mut BTreeMap<u64, Vec<u32>>, deadline: u64, id: u32) {
        let ids = model.get_mut(&deadline).expect("fired unknown deadline");
        let at = ids
            .iter()
            .position(|&x| x == id)
            .expect("fired twice or wrong id");
        ids.swap_remove(at);
        if ids.is_empty() {
            model.remove(&deadline);
        }
    }

    proptest! {
        #[test]
        fn behaves_like_a_sorted_map(
            start in prop_oneof![Just(0u64), scaled(), Just((1u64 << 42) - 2)],
            ops in prop::collection::vec(op(), 1..120),
        ) {
            let mut w = TimingWheel::new(start);
            let mut model: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
            let mut next_id = 0u32;
            for op in ops {
                match op {
                    Op::Insert { offset, past } => {
                        let deadline = if past {
                            w.elapsed().saturating_sub(offset)
                        } else {
                            w.elapsed() + offset
                        };
                        w.insert(deadline, next_id);
                        model.entry(deadline).or_default().push(next_id);
                        next_id += 1;
                    }
                    Op::InsertMany { offset, count, spread } => {
                        for i in 0..u64::from(count) {
                            let deadline = w.elapsed() + offset + i * spread;
                            w.insert(deadline, next_id);
                            model.entry(deadline).or_default().push(next_id);
                            next_id += 1;
                        }
                    }
                    Op::Advance { by } | Op::Drain { by, .. } => {
                        let now = w.elapsed() + by;
                        let mut fired = Vec::new();
                        if let Op::Drain { limit, .. } = op {
                            fired = drain_bounded(&mut w, now, limit);
                        } else {
                            w.advance(now, |d, id| fired.push((d, id)));
                        }
                        let later = model.split_off(&(now + 1));
                        let mut expected: Vec<(u64, u32)> = model
                            .iter()
                            .flat_map(|(&d, ids)| ids.iter().map(move |&id| (d, id)))
                            .collect();
                        model = later;
                        fired.sort_unstable();
                        expected.sort_unstable();
                        prop_assert_eq!(fired, expected);
                        prop_assert_eq!(w.elapsed(), now);
                    }
                    Op::Bounded { by, limit } => {
                        let now = w.elapsed() + by;
                        let mut fired = Vec::new();
                        let n = w.advance_bounded(now, limit, |d, id| fired.push((d, id)));
                        prop_assert_eq!(n, fired.len());
                        prop_assert!(n <= limit);
                        prop_assert!(w.elapsed() <= now);
                        for (d, id) in fired {
                            prop_assert!(d <= w.elapsed());
                            take_from_model(&mut model, d, id);
                        }
                        if w.next_expiration().is_none_or(|t| t > now) {
                            prop_assert_eq!(w.elapsed(), now);
                            prop_assert!(model.keys().all(|&d| d > now), "due timer left");
                        }
                    }
                }
                check_against_model(&w, &model);
            }
        }
    }
}
