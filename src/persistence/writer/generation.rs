//! The files of a log generation: creating `log-<gen>` (header synced, directory entry synced),
//! moving the log thread on to the next generation, and deleting older generations once a
//! snapshot covers them.
//!
//! Why apart from the log thread's loop: these are the only places that create or delete files
//! in the data directory, and each must sync in the right order to survive a crash.
//!
//! Must never: hand out a log whose header or directory entry is not synced, or delete a file
//! of the generation a landed snapshot belongs to (or of a later one).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::Writer;
use crate::faults::{self, Point};
use crate::persistence::format::{log_path, parse_name, Header, LOG_MAGIC};
use crate::persistence::PersistenceError;
use crate::store::Shard;
use crate::sync::Ordering;

impl<S: Shard> Writer<S> {
    /// Creates the next generation's log and makes it the current one.
    pub(super) fn open_next_log(&mut self) -> Result<(), PersistenceError> {
        let file = create_log(&self.dir, self.gen + 1, self.shards)?;
        self.gen += 1;
        self.file = Some(file);
        self.log_bytes = 0;
        self.sink.generation.store(self.gen, Ordering::Relaxed);
        Ok(())
    }

    /// Ends the current log and starts the next generation's. If the new log cannot be
    /// created, the current one (healthy) stays, and the snapshot goes on its generation.
    pub(super) fn rotate(&mut self) {
        self.sync();
        if self.file.is_none() {
            return;
        }
        match self.open_next_log() {
            Ok(()) => {}
            Err(err) => {
                self.sink.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%err, "cannot start a new log generation; the snapshot uses the current one");
            }
        }
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PersistenceError + '_ {
    move |source| PersistenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `log-<gen>` with its header, synced, and the directory entry synced.
pub(super) fn create_log(dir: &Path, gen: u64, shards: usize) -> Result<File, PersistenceError> {
    let path = log_path(dir, gen);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let header = Header {
        magic: *LOG_MAGIC,
        gen,
        base_gen: gen,
        shards: shards as u32,
        seqs: Vec::new(),
    };
    faults::check(Point::LogWrite)
        .and_then(|()| file.write_all(&header.encode()))
        .map_err(io_err(&path))?;
    faults::check(Point::LogSync)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(file)
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), PersistenceError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Deletes snapshots and logs of generations before `gen`, and stray temporary files.
pub(super) fn remove_older_generations(dir: &Path, gen: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = match parse_name(&name) {
            Some((_, g)) => g < gen,
            None => name.ends_with(".skv.tmp") && !name.contains(&format!("{gen:016}")),
        };
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
