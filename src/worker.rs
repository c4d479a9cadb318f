//! `Worker`: a named background thread that runs until it is asked to stop, and is stopped and
//! joined when its handle is dropped. The expiry thread, the replica apply threads and the log
//! thread are each one.
//!
//! The body gets the stop flag and checks it between steps; a worker that parks (to nap between
//! batches) is unparked by the stop, so shutting down never waits for a nap to end. Dropping the
//! handle sets the flag, unparks the thread and joins it: the body's last step (the log thread's
//! final drain and sync) runs to completion before `drop` returns.
//!
//! Threads are outside loom's model, so this exists only in the normal build.
//!
//! Must never: return from `drop` while its thread still runs, or leave a parked thread unwoken
//! at a stop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running background thread; stops and joins it when dropped.
pub struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a thread named `name` running `body`, which should return soon after the flag it
    /// is given becomes true.
    pub fn spawn(
        name: impl Into<String>,
        body: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&flag))?;
        Ok(Worker {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_wakes_a_parked_worker_and_waits_for_its_last_step() {
        let finished = Arc::new(AtomicBool::new(false));
        let seen = finished.clone();
        let worker = Worker::spawn("test-worker", move |stop| {
            while !stop.load(Ordering::Acquire) {
                // A nap far longer than the test may take: only the stop's unpark ends it.
                std::thread::park_timeout(std::time::Duration::from_secs(3600));
            }
            seen.store(true, Ordering::Release);
        })
        .unwrap();
        drop(worker);
        assert!(
            finished.load(Ordering::Acquire),
            "drop returned before the body ended"
        );
    }
}
