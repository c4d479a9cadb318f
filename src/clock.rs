//! The coarse clock: "now" in ticks of 1 ms without a syscall per request.
//!
//! Expiry deadlines are stored as [`Tick`]s of this clock, and every read compares an entry's
//! deadline with [`Clock::now`]. In production the clock reads `quanta`'s *recent* time: one
//! atomic load of a value that the `quanta-upkeep` thread refreshes every millisecond (quanta
//! allows one such thread per process, so it is started once, lazily, and shared). Tests and the
//! loom models use a [`ManualClock`] they advance by hand.
//!
//! Resolution: 1 ms per tick. The upkeep thread can lag when the machine is saturated, so `now`
//! may trail real time by the upkeep interval plus scheduling delay. The promise "an expired key
//! is never returned" is made against this clock: a key whose deadline tick has been reached is
//! never served.
//!
//! Must never: go backwards, or make a syscall on the read path.

use std::time::Duration;

use crate::sync::{Arc, AtomicU64, Ordering};

/// A point in time on the coarse clock: milliseconds since the clock started.
pub type Tick = u64;

/// The deadline of an entry that never expires.
pub const NEVER: Tick = Tick::MAX;

/// How long one tick is.
pub const TICK: Duration = Duration::from_millis(1);

/// A source of "now" in ticks. Cheap to clone and to read.
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    #[cfg(not(shardkv_loom))]
    Coarse {
        clock: quanta::Clock,
        origin: quanta::Instant,
    },
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The production clock: quanta's recent time, refreshed every millisecond by the process's
    /// one upkeep thread (started on first use).
    #[cfg(not(shardkv_loom))]
    pub fn coarse() -> Clock {
        upkeep::ensure_started();
        let clock = quanta::Clock::new();
        let origin = clock.now();
        Clock {
            source: Source::Coarse { clock, origin },
        }
    }

    /// A clock that only moves when its [`ManualClock`] handle says so, starting at `start`.
    pub fn manual(start: Tick) -> (Clock, ManualClock) {
        let now = Arc::new(AtomicU64::new(start));
        (
            Clock {
                source: Source::Manual(now.clone()),
            },
            ManualClock { now },
        )
    }

    /// The current tick.
    #[inline]
    pub fn now(&self) -> Tick {
        match &self.source {
            #[cfg(not(shardkv_loom))]
            Source::Coarse { clock, origin } => {
                let elapsed = clock.recent().saturating_duration_since(*origin);
                elapsed.as_millis() as Tick
            }
            Source::Manual(now) => now.load(Ordering::Acquire),
        }
    }

    /// The tick `ttl` from now, rounded up to whole ticks (a TTL is never shortened).
    pub fn deadline_after(&self, ttl: Duration) -> Tick {
        self.now().saturating_add(ticks_ceil(ttl))
    }
}

/// Whole ticks in `d`, rounded up.
pub fn ticks_ceil(d: Duration) -> Tick {
    let nanos = d.as_nanos();
    let tick = TICK.as_nanos();
    nanos.div_ceil(tick).min(u128::from(NEVER - 1)) as Tick
}

/// The hand that moves a manual clock (tests, benches, loom models).
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// Moves the clock forward by `ticks`.
    pub fn advance(&self, ticks: Tick) {
        self.now.fetch_add(ticks, Ordering::AcqRel);
    }
    /// Sets the clock to `tick`; it never goes back, so an earlier tick is ignored.
    pub fn set(&self, tick: Tick) {
        self.now.fetch_max(tick, Ordering::AcqRel);
    }
}

#[cfg(not(shardkv_loom))]
mod upkeep {
    use std::sync::OnceLock;
    use std::time::Duration;

    /// The process's one upkeep thread, kept alive for the process's lifetime.
    static UPKEEP: OnceLock<Option<quanta::Handle>> = OnceLock::new();

    pub(super) fn ensure_started() {
        UPKEEP.get_or_init(|| {
            match quanta::Upkeep::new(Duration::from_millis(1)).start() {
                Ok(handle) => Some(handle),
                // Someone else in this process started it: recent time is kept fresh anyway.
                Err(quanta::Error::UpkeepRunning) => None,
                Err(err) => panic!("cannot start the coarse clock's upkeep thread: {err}"),
            }
        });
    }
}

#[cfg(all(test, not(shardkv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_forward() {
        let (clock, hand) = Clock::manual(10);
        assert_eq!(clock.now(), 10);
        hand.advance(5);
        assert_eq!(clock.now(), 15);
        hand.set(3);
        assert_eq!(clock.now(), 15);
        assert_eq!(clock.deadline_after(Duration::from_micros(1500)), 17);
    }

    #[test]
    fn coarse_clock_advances_and_is_monotonic() {
        let clock = Clock::coarse();
        let a = clock.now();
        std::thread::sleep(Duration::from_millis(30));
        let b = clock.now();
        assert!(b >= a + 10, "coarse clock did not advance: {a} -> {b}");
    }

    #[test]
    fn ticks_round_up() {
        assert_eq!(ticks_ceil(Duration::from_nanos(1)), 1);
        assert_eq!(ticks_ceil(Duration::from_millis(1)), 1);
        assert_eq!(ticks_ceil(Duration::from_micros(1001)), 2);
        assert_eq!(ticks_ceil(Duration::from_secs(2)), 2000);
    }
}
