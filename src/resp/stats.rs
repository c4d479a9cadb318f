//! Counters for `INFO` (stats, commandstats, errorstats) and `/metrics`: per command, calls,
//! time, refusals and failures; per error code, replies.
//!
//! Per-command counters are striped (a command bumps the stripe of its thread), so two workers
//! running `GET` do not fight over one cache line. Error codes are few and errors rare: a
//! locked map.
//!
//! Must never: cost a lock on the path of a command that succeeds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::counter::StripedCounter;

/// One command's counters.
#[derive(Debug, Default)]
pub struct CommandCounters {
    /// Calls that ran.
    pub calls: StripedCounter,
    /// Nanoseconds spent running them (INFO shows microseconds).
    pub nanos: StripedCounter,
    /// Calls refused before running (arity, auth, OOM, ...).
    pub rejected: StripedCounter,
    /// Calls that ran and answered an error.
    pub failed: StripedCounter,
}

/// Every counter the RESP front-end keeps.
#[derive(Debug)]
pub struct RespStats {
    /// Indexed like the command table.
    pub commands: Box<[CommandCounters]>,
    /// Replies per error code.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Commands processed (all).
    pub processed: StripedCounter,
    /// Bytes read from clients.
    pub net_input: AtomicU64,
    /// Bytes written to clients.
    pub net_output: AtomicU64,
    /// Connections dropped for exceeding the output limit.
    pub output_limit_disconnections: AtomicU64,
}

impl RespStats {
    /// Counters for a table of `commands` commands.
    pub fn new(commands: usize) -> RespStats {
        RespStats {
            commands: (0..commands).map(|_| CommandCounters::default()).collect(),
            errors: Mutex::new(BTreeMap::new()),
            processed: StripedCounter::default(),
            net_input: AtomicU64::new(0),
            net_output: AtomicU64::new(0),
            output_limit_disconnections: AtomicU64::new(0),
        }
    }

    /// Counts an error reply with `code`.
    pub fn error_reply(&self, code: &str) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = errors.get_mut(code) {
            *count += 1;
        } else if errors.len() < 128 {
            // Redis caps distinct error codes too (errors are client-influenced).
            errors.insert(code.to_string(), 1);
        }
    }

    /// Error replies per code.
    pub fn errors(&self) -> Vec<(String, u64)> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Error replies in all.
    pub fn total_errors(&self) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&self) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for c in self.commands.iter() {
            c.calls.reset();
            c.nanos.reset();
            c.rejected.reset();
            c.failed.reset();
        }
        self.processed.reset();
        self.net_input.store(0, Ordering::Relaxed);
        self.net_output.store(0, Ordering::Relaxed);
    }
}
