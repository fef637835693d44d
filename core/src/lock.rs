//! The data-dir lock: one process at a time owns a data directory.
//!
//! The store keeps no lock of its own on mail data: a user's store is owned by one shard of one
//! process, and everything (the spool end, the unsynced index records, the group commit) is
//! tracked in that process's memory. A second process writing the same files would append
//! over records the first one acknowledged. So `skua serve` takes an exclusive lock on
//! `DATA_DIR/lock` before it starts its shards and holds it until it exits, and offline tools
//! that write stores (`skua reconstruct`) take the same lock and refuse a locked directory.
//! (`skua user ...` edits only the passwd-file, which has a lock of its own.)
//!
//! The lock is an advisory `flock` (std's `File::try_lock`): the kernel drops it when the
//! holder exits, however it exits (kill -9 included), so a stale lock file never keeps the
//! server from starting. The file holds the holder's pid in decimal, for the message a refused
//! process prints; it is informational only (`core/FORMAT.md`, "The data directory").

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "lock";
/// At most this many bytes of the lock file are read for the holder's pid.
const LOCK_FILE_BYTES_MAX: u64 = 64;

/// Why the data-dir lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "data dir {} is in use by another skua process ({}); stop it first",
        .dir.display(),
        describe_pid(*.pid)
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's pid as its lock file says, if it could be read.
        pid: Option<u32>,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock data dir {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn describe_pid(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"))
}

/// The exclusive lock on a data directory, held until dropped (or the process exits).
#[derive(Debug)]
pub struct DataDirLock {
    /// Keeps the lock: the kernel releases it when the file is closed.
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock on `dir` (which must exist) without waiting, and writes this process's
    /// pid into the lock file.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process (or another handle in this one) holds it;
    /// [`LockError::Io`] when the lock file cannot be opened or written.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_error = |source| LockError::Io { path: path.clone(), source };
        // Not truncated on open: the holder's pid must stay readable for the refused.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held { dir: dir.to_path_buf(), pid: read_pid(&mut file) });
            }
            Err(std::fs::TryLockError::Error(error)) => return Err(io_error(error)),
        }
        file.set_len(0).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        Ok(DataDirLock { file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pid written into the lock file (this process's).
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn holder_pid(&self) -> io::Result<Option<u32>> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))?;
        Ok(parse_pid(file))
    }
}

/// The pid in a lock file held by someone else; `None` if it cannot be read (the holder may be
/// between truncating and writing it).
fn read_pid(file: &mut File) -> Option<u32> {
    file.seek(SeekFrom::Start(0)).ok()?;
    parse_pid(&*file)
}

fn parse_pid(file: &File) -> Option<u32> {
    let mut text = String::new();
    file.take(LOCK_FILE_BYTES_MAX).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acquire_fails_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert_eq!(first.holder_pid().unwrap(), Some(std::process::id()));
        let refused = DataDirLock::acquire(dir.path()).unwrap_err();
        match &refused {
            LockError::Held { dir: held, pid } => {
                assert_eq!(held, dir.path());
                assert_eq!(*pid, Some(std::process::id()));
            }
            LockError::Io { .. } => panic!("expected Held, got {refused}"),
        }
        let message = refused.to_string();
        assert!(message.contains("in use by another skua process"), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        drop(first);
        let second = DataDirLock::acquire(dir.path()).expect("free again after drop");
        assert_eq!(second.path(), dir.path().join(LOCK_FILE));
    }

    #[test]
    fn a_stale_lock_file_does_not_hold_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "999999999\nleftover").unwrap();
        let lock = DataDirLock::acquire(dir.path()).expect("nobody holds the flock");
        assert_eq!(lock.holder_pid().unwrap(), Some(std::process::id()), "pid rewritten");
    }

    #[test]
    fn a_missing_dir_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(DataDirLock::acquire(&missing), Err(LockError::Io { .. })));
    }
}
