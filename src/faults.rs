//! The fault layer: faults injected on purpose at the few points where the real ones happen, so
//! tests exercise the code that handles them instead of hoping the machine misbehaves.
//!
//! The points:
//! - [`Point::LogWrite`], [`Point::LogSync`]: the log file's `write` and `fdatasync` fail with
//!   EIO, or `write` with ENOSPC (a full disk, without mounting a tmpfs);
//! - [`Point::Snapshot`]: writing a snapshot fails;
//! - a delay per non-empty shard copied by a snapshot ([`snapshot_delay`]), and a pause inside every long
//!   copy of a shard (a snapshot or a replica re-sync: [`pause_copy`]), held until the test
//!   releases it, so a test can write to that shard while the copy is midway.
//!
//! Queue capacities (replica, log and timer queues of a few entries, so overflow is routine) are
//! hidden command-line knobs of the same feature (`config.rs`).
//!
//! Compiled only with the non-default `testing` feature, which the test command turns on. In any
//! other build every function here is an empty `#[inline(always)]` body, so release builds pay
//! nothing. Must never: be reachable from a build without the `testing` feature.

/// Where a fault can be injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Appending to the log file.
    LogWrite,
    /// `fdatasync` of the log file.
    LogSync,
    /// Writing a snapshot file.
    Snapshot,
}

/// What an armed point does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the real operation runs.
    Off,
    /// The operation fails with EIO.
    Eio,
    /// The operation fails with ENOSPC (no space left on device).
    NoSpace,
}

impl Fault {
    /// Parses `off`, `eio` or `enospc`.
    pub fn parse(text: &str) -> Option<Fault> {
        match text {
            "off" => Some(Fault::Off),
            "eio" => Some(Fault::Eio),
            "enospc" => Some(Fault::NoSpace),
            _ => None,
        }
    }

    fn error(self) -> Option<std::io::Error> {
        match self {
            Fault::Off => None,
            Fault::Eio => Some(std::io::Error::from_raw_os_error(5)),
            Fault::NoSpace => Some(std::io::Error::from_raw_os_error(28)),
        }
    }
}

#[cfg(feature = "testing")]
mod armed {
    use super::{Fault, Point};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

    static LOG_WRITE: AtomicU8 = AtomicU8::new(0);
    static LOG_SYNC: AtomicU8 = AtomicU8::new(0);
    static SNAPSHOT: AtomicU8 = AtomicU8::new(0);
    static SNAPSHOT_DELAY_MS: AtomicU64 = AtomicU64::new(0);
    static COPY_PAUSED: AtomicBool = AtomicBool::new(false);
    static COPIES_WAITING: AtomicU64 = AtomicU64::new(0);

    fn cell(point: Point) -> &'static AtomicU8 {
        match point {
            Point::LogWrite => &LOG_WRITE,
            Point::LogSync => &LOG_SYNC,
            Point::Snapshot => &SNAPSHOT,
        }
    }

    fn decode(v: u8) -> Fault {
        match v {
            1 => Fault::Eio,
            2 => Fault::NoSpace,
            _ => Fault::Off,
        }
    }

    pub fn set(point: Point, fault: Fault) {
        let v = match fault {
            Fault::Off => 0,
            Fault::Eio => 1,
            Fault::NoSpace => 2,
        };
        cell(point).store(v, Ordering::SeqCst);
    }

    pub fn get(point: Point) -> Fault {
        decode(cell(point).load(Ordering::SeqCst))
    }

    pub fn set_snapshot_delay(ms: u64) {
        SNAPSHOT_DELAY_MS.store(ms, Ordering::SeqCst);
    }

    pub fn snapshot_delay() {
        let ms = SNAPSHOT_DELAY_MS.load(Ordering::SeqCst);
        if ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }

    pub fn set_copy_paused(paused: bool) {
        COPY_PAUSED.store(paused, Ordering::SeqCst);
    }

    pub fn copies_waiting() -> u64 {
        COPIES_WAITING.load(Ordering::SeqCst)
    }

    pub fn pause_copy() {
        if !COPY_PAUSED.load(Ordering::SeqCst) {
            return;
        }
        COPIES_WAITING.fetch_add(1, Ordering::SeqCst);
        // Bounded, so a test that forgets to release cannot hang the server forever.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while COPY_PAUSED.load(Ordering::SeqCst) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        COPIES_WAITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Arms `point` with `fault` (`Fault::Off` disarms it).
#[cfg(feature = "testing")]
pub fn set(point: Point, fault: Fault) {
    armed::set(point, fault)
}

/// Sets the delay each shard copied by a snapshot waits (0: none).
#[cfg(feature = "testing")]
pub fn set_snapshot_delay(ms: u64) {
    armed::set_snapshot_delay(ms)
}

/// Holds (`true`) or releases (`false`) every long shard copy at its midpoint.
#[cfg(feature = "testing")]
pub fn set_copy_paused(paused: bool) {
    armed::set_copy_paused(paused)
}

/// How many copies are held at their midpoint now.
#[cfg(feature = "testing")]
pub fn copies_waiting() -> u64 {
    armed::copies_waiting()
}

/// The error `point` is armed with, if any: call where the real operation would run, and fail
/// as it would.
#[inline(always)]
pub fn check(point: Point) -> std::io::Result<()> {
    #[cfg(feature = "testing")]
    if let Some(err) = armed::get(point).error() {
        return Err(err);
    }
    let _ = point;
    let _ = Fault::error;
    Ok(())
}

/// The configured delay, once per shard a snapshot copies.
#[inline(always)]
pub fn snapshot_delay() {
    #[cfg(feature = "testing")]
    armed::snapshot_delay();
}

/// Midway through a long copy of a shard (snapshot, re-sync): waits while copies are held.
#[inline(always)]
pub fn pause_copy() {
    #[cfg(feature = "testing")]
    armed::pause_copy();
}
