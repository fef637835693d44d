//! The narrow interface between the mail store and the disk.
//!
//! Everything the store writes or reads goes through [`Disk`] and [`DiskFile`], so a simulated
//! disk (`sim.rs`, tests only) can stand in for the real one (`os.rs`) and freeze, tear or drop
//! what was written but not yet flushed. Paths are always relative to the disk's root and are
//! built by the store from ids and fixed names — never from anything a client sent.
//!
//! Durability is a property of the disk, not of one file: writes land in the *open epoch*;
//! [`Disk::flush_begin`] closes that epoch and returns a [`Flush`] holding every file and
//! directory written in it; running the flush (possibly on another thread, or through io_uring
//! by the caller) makes them durable; [`Disk::flush_end`] then marks the epoch durable. A reply
//! that promises durability waits until `epoch_durable() >= ticket`. This is the group commit:
//! many mutations, one flush round.

use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::types::Epoch;

pub mod journal;
mod origin;
pub mod os;
mod os_sync;
#[cfg(any(test, feature = "sim"))]
pub mod sim;

pub use origin::{FileIdentity, FileRange};

/// How [`Disk::open`] treats a missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The file must exist.
    Existing,
    /// Create it empty if missing (the parent directory is then marked dirty for the flush).
    /// On the real disk every file created is the owner's alone (mode 0600, directories
    /// 0700): mail, indexes and secrets such as the URLAUTH access keys.
    CreateIfMissing,
}

/// A disk rooted at one directory.
pub trait Disk {
    /// An open file. Cheap to clone; clones refer to the same open file.
    type File: DiskFile;
    /// What [`Disk::flush_begin`] hands out: the work of one flush round.
    type Flush: Flush;

    /// Opens a file under the root.
    ///
    /// # Errors
    /// The OS error, e.g. `NotFound` with [`OpenMode::Existing`].
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;
    /// Creates a directory and its parents; new directories' parents are marked dirty.
    ///
    /// # Errors
    /// The OS error.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes a file; its directory is marked dirty.
    ///
    /// # Errors
    /// The OS error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames a file over another; the directory is marked dirty.
    ///
    /// # Errors
    /// The OS error.
    fn rename(&self, source: &Path, target: &Path) -> io::Result<()>;
    /// The names of the entries of a directory, sorted.
    ///
    /// # Errors
    /// The OS error.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// True when the path exists.
    fn exists(&self, path: &Path) -> bool;

    /// The epoch that writes made now belong to: the durability ticket for a reply.
    fn epoch_open(&self) -> Epoch;
    /// The newest epoch known durable. Always `< epoch_open()`.
    fn epoch_durable(&self) -> Epoch;
    /// Closes the open epoch and returns the work needed to make it durable; `None` when
    /// nothing was written since the last flush (then every ticket so far is already durable).
    fn flush_begin(&self) -> Option<Self::Flush>;
    /// Records that `flush` ran successfully: its epoch is now durable.
    fn flush_end(&self, epoch: Epoch);
    /// The counters of the disk's journal, when it has one (for the server's metrics).
    fn journal_stats(&self) -> Option<JournalStats> {
        None
    }
    /// A job that `fdatasync`s `files` (their data, whichever epoch wrote it; not their names),
    /// to run on any thread, outside the epochs: a journal's background checkpoint. The
    /// default cannot.
    ///
    /// # Errors
    /// `Unsupported` by default; the OS error reopening a released file.
    fn sync_files(&self, files: &[Self::File]) -> io::Result<SyncJob> {
        let _ = files;
        Err(io::Error::new(io::ErrorKind::Unsupported, "this disk syncs in rounds only"))
    }
    /// Work the disk wants run off the round path, if any now: the runtime runs `run` on
    /// another thread and reports with [`Disk::checkpoint_done`], then asks again.
    fn checkpoint_job(&self) -> Option<CheckpointJob> {
        None
    }
    /// How the job [`Disk::checkpoint_job`] handed out with `id` ended. An error is an fsync
    /// error: fatal, as a failed round is.
    fn checkpoint_done(&self, id: u64, result: io::Result<()>) {
        let _ = (id, result);
    }
}

/// Blocking work on another thread ([`Disk::sync_files`]).
pub type SyncJob = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// A disk's background work ([`Disk::checkpoint_job`]).
pub struct CheckpointJob {
    /// Names the job in [`Disk::checkpoint_done`].
    pub id: u64,
    /// Runs it, blocking.
    pub run: SyncJob,
}

/// What a journaled disk ([`journal::Journaled`]) did since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Checkpoints of every kind: the users' files synced so the journal's space is reused.
    pub checkpoints: u64,
    /// Of those, background ones (synced on other threads while rounds went on).
    pub background_checkpoints: u64,
    /// Of those, blocking checkpoints (a rename or removal that a barrier could not serve).
    pub blocking_checkpoints: u64,
    /// Barriers: the syncs on the shard's thread before a rename or removal of a file with
    /// records (its data, then a batch voiding its records).
    pub barriers: u64,
    /// Bytes of batches written to the journal.
    pub bytes_written: u64,
}

/// One flush round: fdatasync of every file and fsync of every directory written in an epoch.
/// It is `Send` so the runtime may run it off the reactor thread.
pub trait Flush: Send + 'static {
    /// The epoch this flush makes durable.
    fn epoch(&self) -> Epoch;
    /// Makes everything durable, blocking.
    ///
    /// # Errors
    /// Any fsync error. An fsync error is fatal for the store: the caller must not call
    /// `flush_end` and must stop acknowledging (see ARCHITECTURE.md, "fsync errors").
    fn run(self) -> io::Result<()>;
    /// The descriptors a runtime needs to make this round durable itself, without [`run`]:
    /// `fdatasync` each of [`FlushTargets::files`] (concurrently, in any order), and only once
    /// all of them succeeded, `fsync` each of [`FlushTargets::dirs`] (files before directories,
    /// so a new name never becomes durable pointing at data that is not). The runtime then owns
    /// the descriptors (duplicates: closing them closes nothing of the disk's). `None` when only
    /// [`run`] can do it (the simulated disk); `Some(Err)` when the descriptors cannot be had
    /// now (e.g. the process is out of descriptors), and the runtime falls back to [`run`].
    ///
    /// [`run`]: Flush::run
    fn targets(&self) -> Option<io::Result<FlushTargets>> {
        None
    }
}

/// What a flush round syncs, as descriptors a runtime can hand to io_uring ([`Flush::targets`]).
#[derive(Debug, Default)]
pub struct FlushTargets {
    /// Files to `fdatasync`.
    pub files: Vec<std::os::fd::OwnedFd>,
    /// Directories to `fsync`, after every file.
    pub dirs: Vec<std::os::fd::OwnedFd>,
}

/// An open file. Positioned I/O only; no cursor.
// `len` is fallible I/O, not a container length, so an `is_empty` would add nothing.
#[allow(clippy::len_without_is_empty)]
pub trait DiskFile: Clone {
    /// Current length in bytes.
    ///
    /// # Errors
    /// The OS error.
    fn len(&self) -> io::Result<u64>;
    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// `UnexpectedEof` past the end, or the OS error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset` and marks the file dirty in the open epoch.
    ///
    /// # Errors
    /// The OS error (e.g. `StorageFull`).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset` *without* marking the file dirty: the write is made
    /// durable by the first flush round that covers a later [`DiskFile::write_all_at`] or
    /// [`DiskFile::set_len`] of the same file (the OS syncs the whole file then), and not
    /// before. Until then a crash may keep it, lose it or tear it. For data that recovery can
    /// rebuild from elsewhere (index records of appends: the spool has them); the caller must
    /// track what is not yet durable. The default is [`DiskFile::write_all_at`] (conservative).
    ///
    /// # Errors
    /// The OS error (e.g. `StorageFull`).
    fn write_all_at_unsynced(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.write_all_at(buf, offset)
    }
    /// Marks the file dirty in the open epoch without writing: that epoch's round syncs it,
    /// and with it every earlier write, unsynced ones included (a journal's checkpoint).
    ///
    /// # Errors
    /// The OS error (e.g. reopening a released handle).
    fn mark_dirty(&self) -> io::Result<()>;
    /// Truncates or extends the file; marks it dirty.
    ///
    /// # Errors
    /// The OS error.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// A read-only view of `[offset, offset + len)`, which must lie below `len()`. The OS disk
    /// serves it from a memory map of the file (no copy); the simulated disk from a snapshot.
    ///
    /// # Errors
    /// The OS error, or `UnexpectedEof` if the range passes the end.
    fn view(&self, offset: u64, len: u64) -> io::Result<Bytes>;
    /// Hints that `[offset, offset + len)` will be viewed soon, so that reading the view later
    /// does not stall the thread on a major page fault (the OS disk asks the kernel to read the
    /// mapped range ahead). Advisory; the default does nothing.
    ///
    /// # Errors
    /// `UnexpectedEof` past the end, or the OS error.
    fn will_need(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// Read-only bytes that keep their backing (a memory map or a buffer) alive.
#[derive(Clone)]
pub struct Bytes {
    backing: Rc<dyn AsRef<[u8]>>,
    start: usize,
    end: usize,
    /// The file the backing maps, and the file offset of the backing's first byte (views of
    /// the real disk only; [`Bytes::file_range`]).
    origin: Option<(Rc<FileIdentity>, u64)>,
}

impl Bytes {
    /// A view of `backing[start..end]`.
    ///
    /// # Panics
    /// If the range is not inside `backing`.
    #[must_use]
    pub fn new(backing: Rc<dyn AsRef<[u8]>>, start: usize, end: usize) -> Bytes {
        assert!(start <= end);
        assert!(end <= (*backing).as_ref().len());
        Bytes { backing, start, end, origin: None }
    }

    /// These bytes, recorded as mapped from `file`, whose byte `backing_offset` is the
    /// backing's first byte.
    #[must_use]
    pub fn with_origin(self, file: Rc<FileIdentity>, backing_offset: u64) -> Bytes {
        Bytes { origin: Some((file, backing_offset)), ..self }
    }

    /// The file range these bytes were mapped from, if they were (views of the real disk):
    /// what a runtime reads to bring them into memory (`origin.rs`).
    #[must_use]
    pub fn file_range(&self) -> Option<FileRange> {
        let (file, backing_offset) = self.origin.as_ref()?;
        Some(FileRange {
            file: file.clone(),
            offset: backing_offset + self.start as u64,
            len: (self.end - self.start) as u64,
        })
    }

    /// Bytes owned by a fresh buffer.
    #[must_use]
    pub fn from_vec(data: Vec<u8>) -> Bytes {
        let end = data.len();
        Bytes::new(Rc::new(data), 0, end)
    }

    /// True when every page under these bytes is in memory: sending them cannot stall on a
    /// major page fault ([`crate::mmap::resident`]).
    #[must_use]
    pub fn is_resident(&self) -> bool {
        crate::mmap::resident(self)
    }

    /// Starts reading the pages under these bytes ahead, in the background
    /// ([`crate::mmap::will_need`]).
    pub fn will_need(&self) {
        crate::mmap::will_need(self);
    }

    /// A sub-range of this view.
    ///
    /// # Panics
    /// If the range is not inside this view.
    #[must_use]
    pub fn slice(&self, start: usize, end: usize) -> Bytes {
        assert!(start <= end && end <= self.end - self.start);
        Bytes {
            backing: self.backing.clone(),
            start: self.start + start,
            end: self.start + end,
            origin: self.origin.clone(),
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &(*self.backing).as_ref()[self.start..self.end]
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.end - self.start)
    }
}
