//! The access word every [`Record`](crate::store::Record) carries for eviction, and how a
//! policy ranks an entry by it.
//!
//! One relaxed `u32` per record, read and written without a lock:
//! - **recency** (every policy but the LFU ones): the coarse clock in units of
//!   [`LRU_UNIT_TICKS`] (4 ms), so 32 bits wrap after about 198 days (Redis's 24-bit clock of
//!   seconds wraps after 194). A read stores a new word only when the unit has changed: a key
//!   read a million times a second is written at most every 4 ms.
//! - **frequency** (`allkeys-lfu`, `volatile-lfu`): Redis's design, `[time: 24 bits][counter:
//!   8 bits]`. The counter is logarithmic: an access raises it with probability
//!   `1 / ((counter − 5) × 10 + 1)`, so 255 stands for about a million accesses. It loses one
//!   per [`LFU_DECAY_SECONDS`] since the last access, computed when it is read (nothing walks
//!   the keys to decay them). The time is in units of 64 ms (Redis keeps minutes), which is also
//!   the tie-break between equal counters: of two keys as frequent, the one idle longer goes
//!   first. A read writes the word only when the counter or the 64 ms unit has changed.
//!
//! A new record starts at "now" (recency) or at [`LFU_INIT`] (frequency), so a key just
//! written is not the first to go. An overwrite keeps the frequency of the key it replaces, as
//! Redis's `dbSetValue` does, and counts as one access.
//!
//! Switching between recency and frequency at run time reinterprets the words already stored;
//! they are right again once each key has been read or written (Redis says the same).
//!
//! Must never: take a lock, or write the word on a read that changes nothing.

use crate::clock::{Tick, NEVER};

use super::policy::{EvictionPolicy, Ranking};

/// Coarse-clock ticks (milliseconds) per unit of the recency word.
pub const LRU_UNIT_TICKS: u64 = 4;

/// A new key's frequency counter (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT: u8 = 5;

/// Redis's `lfu-log-factor` default: how slowly the logarithmic counter climbs.
pub const LFU_LOG_FACTOR: u32 = 10;

/// Redis's `lfu-decay-time` default (one minute): the counter loses one per period idle.
pub const LFU_DECAY_SECONDS: u64 = 60;

const LFU_TIME_MASK: u32 = (1 << 24) - 1;

/// Coarse-clock ticks per unit of the frequency word's time: 64 ms, so 24 bits wrap after
/// about 12 days (Redis's 16 bits of minutes, 45 days). Fine enough to order keys of equal
/// counters by their last access; a counter decays to 0 within 255 periods (4¼ hours), long
/// before the wrap.
const LFU_UNIT_TICKS: u64 = 64;

/// The recency word at `now`.
#[inline]
pub fn recency_word(now: Tick) -> u32 {
    (now / LRU_UNIT_TICKS) as u32
}

#[inline]
fn lfu_time(now: Tick) -> u32 {
    ((now / LFU_UNIT_TICKS) as u32) & LFU_TIME_MASK
}

/// A frequency word: `counter` accessed last at `now`.
#[inline]
pub fn frequency_word(counter: u8, now: Tick) -> u32 {
    (lfu_time(now) << 8) | u32::from(counter)
}

/// The counter of a frequency word after its decay up to `now`.
#[inline]
pub fn decayed_counter(word: u32, now: Tick) -> u8 {
    let counter = (word & 0xff) as u8;
    let idle_ticks = u64::from(frequency_idle(word, now)) * LFU_UNIT_TICKS;
    let periods = idle_ticks / (LFU_DECAY_SECONDS * 1000);
    counter.saturating_sub(periods.min(255) as u8)
}

/// Units of [`LFU_UNIT_TICKS`] since a frequency word's last access.
#[inline]
fn frequency_idle(word: u32, now: Tick) -> u32 {
    lfu_time(now).wrapping_sub(word >> 8) & LFU_TIME_MASK
}

/// Redis's `LFULogIncr`: one access, counted with probability falling as the counter grows.
#[inline]
fn log_increment(counter: u8) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = u32::from(counter.saturating_sub(LFU_INIT));
    // p = 1 / (base × factor + 1): draw in [0, base × factor + 1) and count on 0.
    let odds = base * LFU_LOG_FACTOR + 1;
    if odds == 1 || fastrand::u32(..odds) == 0 {
        counter + 1
    } else {
        counter
    }
}

/// The word of a record written at `now` that replaces one whose word was `previous` (if
/// any), under `policy`.
#[inline]
pub fn word_for_write(policy: EvictionPolicy, previous: Option<u32>, now: Tick) -> u32 {
    if policy.counts_frequency() {
        let counter = previous.map_or(LFU_INIT, |word| log_increment(decayed_counter(word, now)));
        frequency_word(counter, now)
    } else {
        recency_word(now)
    }
}

/// The word after a read at `now`, or `None` when the read changes nothing (so nothing is
/// stored).
#[inline]
pub fn word_after_read(policy: EvictionPolicy, word: u32, now: Tick) -> Option<u32> {
    let new = if policy.counts_frequency() {
        frequency_word(log_increment(decayed_counter(word, now)), now)
    } else {
        recency_word(now)
    };
    (new != word).then_some(new)
}

/// Milliseconds since the last access a recency word records (Redis's `OBJECT IDLETIME`,
/// in seconds, divides this).
pub fn idle_ms(word: u32, now: Tick) -> u64 {
    u64::from(recency_word(now).wrapping_sub(word)) * LRU_UNIT_TICKS
}

/// How much `policy` wants to evict an entry: higher goes first. Expired entries rank above
/// every live one, so they are reclaimed before any live key is evicted.
#[inline]
pub fn rank(policy: EvictionPolicy, word: u32, deadline: Tick, now: Tick) -> u64 {
    if deadline <= now {
        return u64::MAX;
    }
    match policy.ranking() {
        None => 0,
        Some(Ranking::Recency) => u64::from(recency_word(now).wrapping_sub(word)),
        Some(Ranking::Frequency) => {
            let rarity = u64::from(u8::MAX - decayed_counter(word, now));
            (rarity << 32) | u64::from(frequency_idle(word, now))
        }
        Some(Ranking::Random) => fastrand::u64(..u64::MAX - 1),
        // Soonest first; a key without a TTL is never a volatile-ttl candidate.
        Some(Ranking::Deadline) => (NEVER - deadline).min(u64::MAX - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_ranks_the_longer_idle_key_first_and_reads_write_once_per_unit() {
        let p = EvictionPolicy::AllKeysLru;
        let old = word_for_write(p, None, 1_000);
        let new = word_for_write(p, None, 5_000);
        assert!(rank(p, old, NEVER, 6_000) > rank(p, new, NEVER, 6_000));
        assert_eq!(word_after_read(p, new, 5_000 + LRU_UNIT_TICKS - 1), None);
        assert!(word_after_read(p, new, 5_000 + LRU_UNIT_TICKS).is_some());
        assert_eq!(idle_ms(old, 6_000), 5_000);
    }

    #[test]
    fn frequency_starts_at_five_climbs_logarithmically_and_decays_per_minute() {
        let p = EvictionPolicy::AllKeysLfu;
        let word = word_for_write(p, None, 0);
        assert_eq!(decayed_counter(word, 0), LFU_INIT);
        let mut word = word;
        for _ in 0..10_000 {
            if let Some(w) = word_after_read(p, word, 0) {
                word = w;
            }
        }
        let counter = decayed_counter(word, 0);
        // Redis's table for factor 10: 1k hits reach 18, 100k reach 142; 10k lie between.
        assert!((30..100).contains(&counter), "{counter}");
        assert_eq!(
            decayed_counter(word, 3 * 60_000 + LFU_UNIT_TICKS),
            counter - 3
        );
        // A frequent key ranks below a new one; among equals, the longer idle goes first.
        let fresh = word_for_write(p, None, 3 * 60_000);
        assert!(rank(p, fresh, NEVER, 3 * 60_000) > rank(p, word, NEVER, 3 * 60_000));
        let idle = frequency_word(7, 1_000);
        let recent = frequency_word(7, 50_000);
        assert!(rank(p, idle, NEVER, 55_000) > rank(p, recent, NEVER, 55_000));
    }

    #[test]
    fn expired_entries_rank_above_every_live_one_under_every_policy() {
        for p in EvictionPolicy::ALL {
            let word = word_for_write(p, None, 0);
            assert_eq!(rank(p, word, 10, 10), u64::MAX);
            assert!(rank(p, word, 11, 10) < u64::MAX);
        }
        let p = EvictionPolicy::VolatileTtl;
        assert!(rank(p, 0, 100, 10) > rank(p, 0, 200, 10));
    }
}
