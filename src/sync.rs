//! The synchronisation primitives of our own protocols, chosen in one place.
//!
//! Under `--cfg shardkv_loom` these are loom's model-checked types, so the loom models in
//! `loom-tests/` exercise the real store, expiry and replication code rather than a copy of it.
//! Otherwise they are `std`'s. Nothing outside this module names `loom` or picks a primitive for
//! a protocol by itself.
//!
//! loom cannot see inside dependencies (papaya, crossbeam-queue, quanta), so each of those gets a
//! loom-visible stand-in here with the same API: [`BoundedQueue`] stands in for
//! `crossbeam_queue::ArrayQueue`. The map stand-in is the store's own `RwLockShard`, built on
//! this module's `RwLock`.
//!
//! Must never: be bypassed by a protocol (an atomic taken straight from `std` in the store is an
//! atomic loom cannot see).

#[cfg(shardkv_loom)]
pub use loom::alloc::{alloc, dealloc};
#[cfg(shardkv_loom)]
pub use loom::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
#[cfg(shardkv_loom)]
pub use loom::thread;

/// Declares items that exist only outside the loom build (threads, files, timers, the
/// lock-free map): `not_under_loom! { mod writer; pub use writer::LogThread; }`. The one place
/// outside this module's own cfgs that the loom build is named, so other files need not say
/// `cfg(shardkv_loom)` themselves (as tokio's `cfg_rt!` does for its features).
#[macro_export]
macro_rules! not_under_loom {
    ($($item:item)*) => {
        $(
            #[cfg(not(shardkv_loom))]
            $item
        )*
    };
}

/// The allocator calls for our own reference-counted allocations (`store::Record`): loom's
/// track leaks and double frees under the model.
#[cfg(not(shardkv_loom))]
pub use std::alloc::{alloc, dealloc};
#[cfg(not(shardkv_loom))]
pub use std::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
#[cfg(not(shardkv_loom))]
pub use std::thread;

/// A cell for memory our own `unsafe` code reads and frees (a record's bytes): loom's
/// `UnsafeCell` under the model, which checks that every access happens-before the one that
/// frees it; otherwise a zero-cost wrapper with the same `with` / `with_mut` interface.
#[cfg(shardkv_loom)]
pub use loom::cell::UnsafeCell;

/// The normal build's [`UnsafeCell`]: `std::cell::UnsafeCell` with loom's interface.
#[cfg(not(shardkv_loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(shardkv_loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Reads through the cell's pointer (a shared access, as loom tracks it).
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Writes through the cell's pointer (an exclusive access, as loom tracks it).
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Locks a mutex, recovering the data if a previous holder panicked.
///
/// Every critical section in this crate leaves its data consistent at each step, so poisoning
/// carries no information we could act on; refusing all later writes would lose availability.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Wakers of tasks waiting for a condition another thread makes true (a write applied by every
/// replica, a log record on disk). The waiting side registers and re-checks under the same
/// mutex the waking side takes after publishing progress, so a wake-up cannot be lost: either
/// the re-check sees the progress, or the waker is in the list when it is woken.
pub struct WakerList(Mutex<Vec<std::task::Waker>>);

impl Default for WakerList {
    fn default() -> Self {
        WakerList(Mutex::new(Vec::new()))
    }
}

impl WakerList {
    /// `Ready` once `done()` holds; otherwise registers the task to be woken by
    /// [`WakerList::wake_all`].
    pub fn poll_until(
        &self,
        cx: &mut std::task::Context<'_>,
        done: impl Fn() -> bool,
    ) -> std::task::Poll<()> {
        if done() {
            return std::task::Poll::Ready(());
        }
        let mut wakers = lock(&self.0);
        if done() {
            return std::task::Poll::Ready(());
        }
        wakers.push(cx.waker().clone());
        std::task::Poll::Pending
    }

    /// Wakes every registered task (each re-checks its condition). Call after publishing
    /// progress.
    pub fn wake_all(&self) {
        let wakers = std::mem::take(&mut *lock(&self.0));
        for waker in wakers {
            waker.wake();
        }
    }
}

/// The thread that drains a queue (the log thread, a replica's apply thread), as its producers
/// see it: it parks when its queue is empty, for at most a nap, and producers wake it only when
/// it is worth a futex call and a context switch (its queue a quarter full, a client waiting).
/// The consumer announces its nap before a last look at the queue, so a producer either sees
/// the announcement and wakes it, or pushed before the look and is seen by it.
///
/// Under loom the consumer's thread handle lives in a loom mutex and the nap is an untimed
/// park: loom has no timed park, and with a timeout a lost wake-up would only delay the consumer
/// by a nap, which a model cannot see; without it, a lost wake-up is a deadlock loom reports.
pub struct ParkedConsumer {
    sleeping: AtomicBool,
    #[cfg(not(shardkv_loom))]
    thread: std::sync::OnceLock<std::thread::Thread>,
    #[cfg(shardkv_loom)]
    thread: Mutex<Option<thread::Thread>>,
    /// Queue depth at which a producer wakes the parked consumer: a quarter of the queue.
    wake_depth: usize,
    /// Test-only switch for the loom model: looks at the queue before announcing the nap.
    #[cfg(shardkv_loom)]
    broken_order: AtomicBool,
}

impl ParkedConsumer {
    /// The consumer of a queue holding at most `queue_capacity` items.
    pub fn new(queue_capacity: usize) -> Self {
        ParkedConsumer {
            sleeping: AtomicBool::new(false),
            #[cfg(not(shardkv_loom))]
            thread: std::sync::OnceLock::new(),
            #[cfg(shardkv_loom)]
            thread: Mutex::new(None),
            wake_depth: (queue_capacity / 4).max(1),
            #[cfg(shardkv_loom)]
            broken_order: AtomicBool::new(false),
        }
    }

    /// Records the calling thread as the consumer (first call wins).
    pub fn register_current(&self) {
        #[cfg(not(shardkv_loom))]
        let _ = self.thread.set(std::thread::current());
        #[cfg(shardkv_loom)]
        lock(&self.thread).get_or_insert_with(thread::current);
    }

    /// Consumer side: parks for at most `nap` if `idle()` still holds once the nap is announced.
    pub fn nap(&self, nap: std::time::Duration, idle: impl FnOnce() -> bool) {
        #[cfg(shardkv_loom)]
        if self.broken_order.load(Ordering::Relaxed) {
            // Broken variant: the last look comes before the announcement, so a push and its
            // wake-up can both fall between them.
            if idle() {
                self.sleeping.store(true, Ordering::SeqCst);
                thread::park();
            }
            self.sleeping.store(false, Ordering::SeqCst);
            return;
        }
        self.sleeping.store(true, Ordering::SeqCst);
        if idle() {
            #[cfg(not(shardkv_loom))]
            std::thread::park_timeout(nap);
            #[cfg(shardkv_loom)]
            {
                let _ = nap;
                thread::park();
            }
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Producer side, after a push: wakes the consumer if it is (about to be) parked and either
    /// someone waits for it (`urgent`) or its queue, `queue_len()` items long, is a quarter full.
    /// Otherwise the consumer takes the item when its nap ends.
    pub fn wake_after_push(&self, urgent: bool, queue_len: impl FnOnce() -> usize) {
        if self.sleeping.load(Ordering::SeqCst) && (urgent || queue_len() >= self.wake_depth) {
            self.wake();
        }
    }

    /// Wakes the consumer if it is (about to be) parked.
    pub fn wake_if_parked(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Wakes the consumer now (a stop, a snapshot request, a waiting client).
    pub fn wake(&self) {
        #[cfg(not(shardkv_loom))]
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        #[cfg(shardkv_loom)]
        if let Some(thread) = lock(&self.thread).as_ref() {
            thread.unpark();
        }
    }

    /// Test-only switch for the loom model: the consumer looks at its queue before announcing
    /// its nap. A model run with it on must find the lost wake-up.
    #[cfg(shardkv_loom)]
    pub fn break_order_for_model(&self) {
        self.broken_order.store(true, Ordering::Relaxed);
    }
}

/// A bounded multi-producer multi-consumer queue that never blocks.
///
/// `crossbeam_queue::ArrayQueue` normally; a `Mutex<VecDeque>` of the same capacity under loom,
/// which cannot see crossbeam's atomics. Both give the same contract: `push` fails and hands the
/// item back when full, `pop` returns `None` when empty.
#[cfg(not(shardkv_loom))]
pub struct BoundedQueue<T>(crossbeam_queue::ArrayQueue<T>);

#[cfg(not(shardkv_loom))]
impl<T> BoundedQueue<T> {
    /// A queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self(crossbeam_queue::ArrayQueue::new(capacity.max(1)))
    }
    /// Appends `item`, or gives it back when the queue is full.
    pub fn push(&self, item: T) -> Result<(), T> {
        self.0.push(item)
    }
    /// Takes the oldest item.
    pub fn pop(&self) -> Option<T> {
        self.0.pop()
    }
    /// Items waiting now.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The most items it holds.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

/// Loom stand-in for `crossbeam_queue::ArrayQueue` (see the non-loom twin).
#[cfg(shardkv_loom)]
pub struct BoundedQueue<T> {
    items: Mutex<std::collections::VecDeque<T>>,
    capacity: usize,
}

#[cfg(shardkv_loom)]
impl<T> BoundedQueue<T> {
    /// A queue holding at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            items: Mutex::new(std::collections::VecDeque::new()),
            capacity: capacity.max(1),
        }
    }
    /// Appends `item`, or gives it back when the queue is full.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut items = lock(&self.items);
        if items.len() >= self.capacity {
            return Err(item);
        }
        items.push_back(item);
        Ok(())
    }
    /// Takes the oldest item.
    pub fn pop(&self) -> Option<T> {
        lock(&self.items).pop_front()
    }
    /// Items waiting now.
    pub fn len(&self) -> usize {
        lock(&self.items).len()
    }
    /// Whether no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The most items it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Switches that turn on deliberately broken variants of a protocol's steps (one bit each), so
/// a loom model can show that it catches the bug each one re-creates.
///
/// Under loom a flag word; otherwise empty: [`BrokenSwitch::is_on`] is a constant `false` the
/// compiler removes, and turning a variant on panics, since it exists only under the model.
#[derive(Debug, Default)]
pub struct BrokenSwitch {
    #[cfg(shardkv_loom)]
    bits: std::sync::atomic::AtomicU8,
}

impl BrokenSwitch {
    /// All variants off (`const`, so a switch can be a `static`).
    pub const fn new() -> Self {
        BrokenSwitch {
            #[cfg(shardkv_loom)]
            bits: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// Whether the variant `bit` is on.
    #[inline(always)]
    pub fn is_on(&self, bit: u8) -> bool {
        #[cfg(shardkv_loom)]
        return self.bits.load(std::sync::atomic::Ordering::Relaxed) & bit != 0;
        #[cfg(not(shardkv_loom))]
        {
            let _ = bit;
            false
        }
    }

    /// Turns the variant `bit` on (loom models only; set before the model's threads start, so a
    /// plain flag that is not part of the model).
    pub fn turn_on(&self, bit: u8) {
        #[cfg(shardkv_loom)]
        self.bits
            .fetch_or(bit, std::sync::atomic::Ordering::Relaxed);
        #[cfg(not(shardkv_loom))]
        panic!("broken protocol variant {bit} exists only under --cfg shardkv_loom");
    }
}

/// When a wait (a failover's drain) gives up. loom has no time: under the model a wait never
/// times out.
#[cfg(not(shardkv_loom))]
pub struct Deadline(std::time::Instant);

#[cfg(not(shardkv_loom))]
impl Deadline {
    /// Five seconds from now.
    pub fn in_five_seconds() -> Deadline {
        Deadline(std::time::Instant::now() + std::time::Duration::from_secs(5))
    }
}

/// Waits, without holding anything but what the caller holds, until `done` or the deadline.
#[cfg(not(shardkv_loom))]
pub fn wait_until(deadline: &Deadline, done: impl Fn() -> bool) -> bool {
    while !done() {
        if std::time::Instant::now() >= deadline.0 {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    true
}

/// The model's deadline: never reached.
#[cfg(shardkv_loom)]
pub struct Deadline;

#[cfg(shardkv_loom)]
impl Deadline {
    /// A deadline (never reached under the model).
    pub fn in_five_seconds() -> Deadline {
        Deadline
    }
}

/// Waits until `done`, yielding to the model's other threads.
#[cfg(shardkv_loom)]
pub fn wait_until(_: &Deadline, done: impl Fn() -> bool) -> bool {
    while !done() {
        thread::yield_now();
    }
    true
}
