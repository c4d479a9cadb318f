//! One timer per connection for the connection's time-outs: the request head (a client must
//! send its next request's line and headers within `--header-timeout-secs` of the previous
//! answer, or of connecting) and the write stall (an answer's write may make no progress for
//! `--write-timeout-secs`).
//!
//! # Why not hyper's and tokio-io-timeout's
//!
//! hyper's `header_read_timeout` arms a timer for every request: it boxes a new `Sleep`,
//! registers it in tokio's timer wheel while the head is awaited and deregisters it when the
//! head arrives, and it asks for one more wake-up per request to start the next one. A
//! time-out wrapper around every write (tokio-io-timeout) does the same per stalled write.
//! That is timer churn on the hot path, paid by every request to catch the rare client that
//! stalls. Here the hot path only stamps what the connection is doing with the coarse clock
//! ([`crate::clock::Clock`], one atomic load), in [`Activity`]: the service marks when a
//! request starts and when its answer is ready, and [`WatchedStream`] marks when a write makes
//! no progress and when it moves again. One [`watch`] future per connection sleeps until the
//! earliest deadline those stamps allow, and is re-armed only when it fires: at most once per
//! time-out period for a connection that behaves.
//!
//! A deadline is judged against the coarse clock, so a time-out fires up to a tick (1 ms) plus
//! the clock's upkeep lag late, never early. The head deadline runs from the later of "the
//! previous answer was ready" and "the last write moved", so a slow but moving answer does not
//! count against the next request's head; a stalled one is the write time-out's business.
//!
//! Must never: arm, reset or drop a timer per request or per write, or close a connection
//! that is within its deadlines.

use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::clock::{ticks_ceil, Clock, Tick, NEVER};
use crate::sync::{AtomicU64, Ordering};

/// What one connection is doing, stamped with the coarse clock. Written by the connection's own
/// task only (the service and the stream) and read by its watchdog's task: relaxed atomics,
/// never contended. A stamp read a moment stale moves a check by at most that moment; the
/// watchdog re-reads them when it next fires.
pub(super) struct Activity {
    clock: Clock,
    /// Since when the connection waits for a request head, or [`NEVER`] while a request is
    /// being handled.
    waiting_since: AtomicU64,
    /// When a write last made progress.
    last_write: AtomicU64,
    /// Since when the current write has made no progress, or [`NEVER`].
    stalled_since: AtomicU64,
}

impl Activity {
    /// A connection accepted now: it waits for its first request head.
    pub(super) fn new(clock: Clock) -> Arc<Activity> {
        let now = clock.now();
        Arc::new(Activity {
            clock,
            waiting_since: AtomicU64::new(now),
            last_write: AtomicU64::new(now),
            stalled_since: AtomicU64::new(NEVER),
        })
    }

    /// A request head arrived: the head deadline stops until its answer is ready.
    #[inline]
    pub(super) fn request_started(&self) {
        self.waiting_since.store(NEVER, Ordering::Relaxed);
    }

    /// The request's answer is ready: the next head's deadline starts.
    #[inline]
    pub(super) fn answer_ready(&self) {
        self.waiting_since
            .store(self.clock.now(), Ordering::Relaxed);
    }

    #[inline]
    fn wrote<T>(&self, result: &Poll<T>) {
        match result {
            Poll::Ready(_) => {
                if self.stalled_since.load(Ordering::Relaxed) != NEVER {
                    self.stalled_since.store(NEVER, Ordering::Relaxed);
                }
                self.last_write.store(self.clock.now(), Ordering::Relaxed);
            }
            Poll::Pending => {
                if self.stalled_since.load(Ordering::Relaxed) == NEVER {
                    self.stalled_since
                        .store(self.clock.now(), Ordering::Relaxed);
                }
            }
        }
    }
}

/// Why a connection's watchdog closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// No complete request head within the header time-out.
    Head,
    /// An answer's write made no progress within the write time-out.
    WriteStall,
}

/// The time-outs a watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Deadlines {
    pub(super) head: Duration,
    pub(super) write_stall: Duration,
}

/// Sleeps until `activity` misses one of `deadlines`, and says which. Re-arms its one timer only
/// when it fires.
pub(super) async fn watch(activity: Arc<Activity>, deadlines: Deadlines) -> Expired {
    let head = ticks_ceil(deadlines.head).max(1);
    let write_stall = ticks_ceil(deadlines.write_stall).max(1);
    let sleep = tokio::time::sleep(Duration::from_millis(head.min(write_stall)));
    tokio::pin!(sleep);
    loop {
        sleep.as_mut().await;
        let now = activity.clock.now();
        match next_check(&activity, now, head, write_stall) {
            Err(expired) => return expired,
            Ok(at) => {
                let wait = Duration::from_millis(at.saturating_sub(now).max(1));
                sleep.as_mut().reset(tokio::time::Instant::now() + wait);
            }
        }
    }
}

/// At `now`: the tick of the next check (a deadline running now, or one shorter time-out from
/// now, by which any deadline starting later is caught), or the deadline already missed.
fn next_check(
    activity: &Activity,
    now: Tick,
    head: Tick,
    write_stall: Tick,
) -> Result<Tick, Expired> {
    let mut next = now.saturating_add(head.min(write_stall));
    let stalled = activity.stalled_since.load(Ordering::Relaxed);
    if stalled != NEVER {
        let deadline = stalled.saturating_add(write_stall);
        if now >= deadline {
            return Err(Expired::WriteStall);
        }
        next = next.min(deadline);
    }
    let waiting = activity.waiting_since.load(Ordering::Relaxed);
    if waiting != NEVER {
        let from = waiting.max(activity.last_write.load(Ordering::Relaxed));
        let deadline = from.saturating_add(head);
        if now >= deadline {
            return Err(Expired::Head);
        }
        next = next.min(deadline);
    }
    Ok(next)
}

/// A TCP stream that stamps its connection's [`Activity`] on every write.
pub(super) struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl WatchedStream {
    pub(super) fn new(inner: TcpStream, activity: Arc<Activity>) -> WatchedStream {
        WatchedStream { inner, activity }
    }
}

impl AsyncRead for WatchedStream {
    #[inline]
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WatchedStream {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(&result);
        result
    }

    #[inline]
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(&result);
        result
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Not a write: hyper flushes on every poll of the connection, and a TCP stream has
        // nothing to flush.
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    #[inline]
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn activity_at(start: Tick) -> (Arc<Activity>, ManualClock) {
        let (clock, manual) = Clock::manual(start);
        (Activity::new(clock), manual)
    }

    #[test]
    fn a_connection_that_sends_no_head_expires_at_the_head_deadline_exactly() {
        let (a, _) = activity_at(1000);
        assert_eq!(next_check(&a, 1000, 30, 50), Ok(1030));
        assert_eq!(next_check(&a, 1029, 30, 50), Ok(1030));
        assert_eq!(next_check(&a, 1030, 30, 50), Err(Expired::Head));
    }

    #[test]
    fn a_request_in_progress_is_never_closed_for_its_head_and_its_answer_restarts_the_deadline() {
        let (a, clock) = activity_at(0);
        a.request_started();
        // Handling takes longer than the head time-out: only periodic checks.
        assert_eq!(next_check(&a, 100, 30, 50), Ok(130));
        clock.set(120);
        a.answer_ready();
        assert_eq!(next_check(&a, 130, 30, 50), Ok(150));
        assert_eq!(next_check(&a, 150, 30, 50), Err(Expired::Head));
    }

    #[test]
    fn a_stalled_write_expires_at_its_deadline_and_progress_clears_it() {
        let (a, clock) = activity_at(0);
        a.request_started();
        clock.set(10);
        a.wrote::<()>(&Poll::Pending);
        clock.set(40);
        // A second Pending does not move the stall's start.
        a.wrote::<()>(&Poll::Pending);
        assert_eq!(next_check(&a, 40, 30, 50), Ok(60));
        assert_eq!(next_check(&a, 60, 30, 50), Err(Expired::WriteStall));
        a.wrote(&Poll::Ready(()));
        assert_eq!(next_check(&a, 60, 30, 50), Ok(90));
    }

    #[test]
    fn a_slow_but_moving_answer_does_not_count_against_the_next_head() {
        let (a, clock) = activity_at(0);
        a.request_started();
        clock.set(5);
        a.answer_ready();
        // The answer goes out in pieces until tick 100, each within the write time-out.
        for t in (10..=100).step_by(10) {
            clock.set(t);
            a.wrote::<()>(&Poll::Pending);
            a.wrote(&Poll::Ready(()));
            assert!(next_check(&a, t, 30, 50).is_ok(), "closed at {t}");
        }
        assert_eq!(next_check(&a, 100, 30, 50), Ok(130));
        assert_eq!(next_check(&a, 130, 30, 50), Err(Expired::Head));
    }
}
