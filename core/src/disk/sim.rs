//! The simulated disk: a [`Disk`] in memory that knows what a crash would keep.
//!
//! For crash tests (`core/tests/crash*.rs`) and fuzz targets; compiled only for tests and with
//! the `sim` feature. Every file and directory entry has a *live* state (what reads see) and a
//! *durable* state (what survives a crash). Mutations since the last flush are a list of
//! pending operations: a flush round ([`Disk::flush_begin`], [`Flush::run`],
//! [`Disk::flush_end`]) replays them onto the durable image. A created, renamed or removed file
//! is a pending directory operation like any write, so it too is lost unless a flush covered it.
//!
//! [`SimDisk::crash`] returns the disk as a restart would find it: the durable image plus what
//! the chosen [`CrashMode`] keeps of the pending operations (none, all, a prefix, any subset,
//! with writes torn at 512-byte sectors), drawn deterministically from a seed.
//! [`SimDisk::freeze_after_flushes`] stops the durable image at the Nth flush: later flush runs
//! fail (the store must then stop acknowledging), so the crash lands between flush N and N+1.
//! [`SimDisk::crash_where`] lets a regression test pick each pending write's fate itself, and
//! [`SimDisk::corrupt`] damages bytes at rest (a flipped bit, a zeroed sector) to test that
//! checksums catch what a crash cannot cause. [`SimDisk::fail_next`] makes chosen writes fail
//! (`ENOSPC`, `EIO`) to test what a refused operation leaves behind.
//!
//! The state sits behind `Arc<Mutex<..>>` only because a [`Flush`] must be `Send`; the sim is a
//! test tool and its cost does not matter.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Bytes, Disk, DiskFile, Flush, OpenMode};
use crate::types::Epoch;

mod corrupt;
mod crash;
mod fault;
mod image;
mod rng;
#[cfg(test)]
mod tests;

pub use corrupt::Damage;
pub use crash::{CrashMode, CrashReport, Fate, PendingOp};
pub use fault::FailOp;
pub use image::{SECTOR_BYTES, SIM_FILE_BYTES_MAX};
pub use rng::SimRng;

use image::{Image, InodeId, Op, normalize};

/// An operation not yet covered by a flush, with the epoch it was made in.
#[derive(Clone, Debug)]
struct Pending {
    epoch: u64,
    /// Written by [`DiskFile::write_all_at_unsynced`]: a flush round applies it only if the
    /// same round also flushes a normal write or resize of its inode.
    unsynced: bool,
    op: Op,
    /// The file or entry it changes, named as when it was made (see [`PendingOp::path`]).
    path: PathBuf,
    /// The op described with the file names of the moment it was made, for reports.
    label: String,
}

/// Everything the simulated disk knows.
#[derive(Debug)]
struct State {
    live: Image,
    durable: Image,
    /// Sorted by epoch, since epochs only grow.
    pending: Vec<Pending>,
    next_inode: InodeId,
    epoch_open: u64,
    epoch_durable: u64,
    /// The newest epoch a flush run made durable (`flush_end` may not pass it).
    epoch_flushed: u64,
    flushes_done: u64,
    freeze_after: Option<u64>,
    frozen: bool,
    /// Operations to refuse (`fault.rs`).
    fail: Vec<fault::FailRule>,
    failures_injected: u64,
    /// How long each flush run sleeps first ([`SimDisk::delay_flushes`]).
    flush_delay: std::time::Duration,
}

impl State {
    fn from_image(image: Image, next_inode: InodeId) -> State {
        State {
            live: image.clone(),
            durable: image,
            pending: Vec::new(),
            next_inode,
            epoch_open: 1,
            epoch_durable: 0,
            epoch_flushed: 0,
            flushes_done: 0,
            freeze_after: None,
            frozen: false,
            fail: Vec::new(),
            failures_injected: 0,
            flush_delay: std::time::Duration::ZERO,
        }
    }

    /// Applies a mutation to the live image and remembers it as pending.
    fn mutate(&mut self, op: Op) -> io::Result<()> {
        self.mutate_as(op, false)
    }

    fn mutate_as(&mut self, op: Op, unsynced: bool) -> io::Result<()> {
        let (path, mut label) = (self.live.path_of(&op), self.live.describe(&op));
        if unsynced {
            label.push_str(" (unsynced)");
        }
        self.live.apply(&op)?;
        self.pending.push(Pending { epoch: self.epoch_open, unsynced, op, path, label });
        Ok(())
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().expect("sim disk: a test panicked while holding the disk")
}

/// The simulated disk. Cheap to clone; clones share one state.
#[derive(Clone, Debug)]
pub struct SimDisk {
    state: Shared,
}

impl Default for SimDisk {
    fn default() -> SimDisk {
        SimDisk::new()
    }
}

impl SimDisk {
    /// An empty disk: only the root directory, durable.
    #[must_use]
    pub fn new() -> SimDisk {
        SimDisk { state: Arc::new(Mutex::new(State::from_image(Image::default(), 1))) }
    }

    /// Flush runs completed so far: the crash points of this disk are `0..=flushes_done()`.
    #[must_use]
    pub fn flushes_done(&self) -> u64 {
        lock(&self.state).flushes_done
    }

    /// Operations made since the last completed flush.
    #[must_use]
    pub fn pending_ops(&self) -> usize {
        lock(&self.state).pending.len()
    }

    /// Freezes the durable image after `flushes` flush runs: every later [`Flush::run`] fails
    /// with an I/O error and makes nothing durable. Writes still reach the live image.
    pub fn freeze_after_flushes(&self, flushes: u64) {
        let mut state = lock(&self.state);
        state.freeze_after = Some(flushes);
        if state.flushes_done >= flushes {
            state.frozen = true;
        }
    }

    /// Makes every later [`Flush::run`] sleep this long before it syncs anything: a slow
    /// device, for tests of rounds that overlap.
    pub fn delay_flushes(&self, delay: std::time::Duration) {
        lock(&self.state).flush_delay = delay;
    }

    /// True once a flush run failed because of [`SimDisk::freeze_after_flushes`].
    #[must_use]
    pub fn is_frozen(&self) -> bool {
        lock(&self.state).frozen
    }

    /// The durable contents of a file, or `None` if its name is not durable. For tests of the
    /// sim and for diagnostics.
    #[must_use]
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let path = normalize(path).ok()?;
        let state = lock(&self.state);
        state.durable.inode(&path).map(|inode| state.durable.contents(inode).to_vec())
    }
}

impl Disk for SimDisk {
    type File = SimFile;
    type Flush = SimFlush;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        let path = normalize(path)?;
        let mut state = lock(&self.state);
        if let Some(inode) = state.live.inode(&path) {
            return Ok(SimFile { state: self.state.clone(), inode });
        }
        if state.live.is_dir(&path) {
            return Err(io::Error::new(io::ErrorKind::IsADirectory, "sim disk: a directory"));
        }
        if mode == OpenMode::Existing {
            return Err(io::Error::new(io::ErrorKind::NotFound, "sim disk: no such file"));
        }
        let inode = state.next_inode;
        state.mutate(Op::Create { path, inode })?;
        state.next_inode += 1;
        Ok(SimFile { state: self.state.clone(), inode })
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path)?;
        let mut state = lock(&self.state);
        for ancestor in path.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if !state.live.is_dir(ancestor) {
                state.mutate(Op::Mkdir { path: ancestor.to_path_buf() })?;
            }
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let path = normalize(path)?;
        lock(&self.state).mutate(Op::Remove { path })
    }

    fn rename(&self, source: &Path, target: &Path) -> io::Result<()> {
        let (source, target) = (normalize(source)?, normalize(target)?);
        lock(&self.state).mutate(Op::Rename { source, target })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let path = normalize(path)?;
        lock(&self.state).live.list(&path)
    }

    fn exists(&self, path: &Path) -> bool {
        let Ok(path) = normalize(path) else {
            return false;
        };
        let state = lock(&self.state);
        state.live.is_dir(&path) || state.live.inode(&path).is_some()
    }

    fn epoch_open(&self) -> Epoch {
        Epoch(lock(&self.state).epoch_open)
    }

    fn epoch_durable(&self) -> Epoch {
        Epoch(lock(&self.state).epoch_durable)
    }

    fn flush_begin(&self) -> Option<SimFlush> {
        let mut state = lock(&self.state);
        let open = state.epoch_open;
        if !state.pending.iter().any(|p| p.epoch == open && !p.unsynced) {
            return None;
        }
        state.epoch_open += 1;
        Some(SimFlush { state: self.state.clone(), epoch: open })
    }

    fn sync_files(&self, files: &[SimFile]) -> io::Result<super::SyncJob> {
        let inodes: std::collections::HashSet<InodeId> = files.iter().map(|f| f.inode).collect();
        let shared = self.state.clone();
        Ok(Box::new(move || {
            let mut state = lock(&shared);
            if state.frozen || state.freeze_after == Some(state.flushes_done) {
                state.frozen = true;
                return Err(io::Error::other("sim disk: frozen, the crash point was reached"));
            }
            // Like fdatasync of each file: every pending write and resize of those inodes, in
            // order, whatever epoch made it; their names (creates, renames) stay pending.
            let ours = |p: &Pending| {
                matches!(p.op, Op::Write { inode, .. } | Op::SetLen { inode, .. }
                    if inodes.contains(&inode))
            };
            let (synced, kept): (Vec<Pending>, Vec<Pending>) =
                std::mem::take(&mut state.pending).into_iter().partition(ours);
            state.pending = kept;
            for pending in &synced {
                state.durable.apply(&pending.op).expect("a write replays onto the durable image");
            }
            state.flushes_done += 1;
            Ok(())
        }))
    }

    fn flush_end(&self, epoch: Epoch) {
        let mut state = lock(&self.state);
        assert!(epoch.0 < state.epoch_open, "flush_end of an epoch never closed");
        assert!(epoch.0 <= state.epoch_flushed, "flush_end of an epoch whose flush did not run");
        state.epoch_durable = state.epoch_durable.max(epoch.0);
    }
}

/// One flush round of the simulated disk. Running it replays the pending operations of its
/// epoch and every earlier one onto the durable image, as an fsync covers earlier writes too.
#[derive(Debug)]
pub struct SimFlush {
    state: Shared,
    epoch: u64,
}

impl Flush for SimFlush {
    fn epoch(&self) -> Epoch {
        Epoch(self.epoch)
    }

    fn run(self) -> io::Result<()> {
        let delay = lock(&self.state).flush_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut state = lock(&self.state);
        if state.frozen || state.freeze_after == Some(state.flushes_done) {
            state.frozen = true;
            return Err(io::Error::other("sim disk: frozen, the crash point was reached"));
        }
        let covered = state.pending.iter().take_while(|p| p.epoch <= self.epoch).count();
        // Like fdatasync: a file this round syncs has all its earlier writes synced, unsynced
        // ones included; an unsynced write to a file the round does not sync stays pending.
        let synced: std::collections::HashSet<InodeId> = state.pending[..covered]
            .iter()
            .filter(|p| !p.unsynced)
            .filter_map(|p| match p.op {
                Op::Write { inode, .. } | Op::SetLen { inode, .. } => Some(inode),
                _ => None,
            })
            .collect();
        let mut ops = Vec::with_capacity(covered);
        let mut kept = Vec::new();
        for pending in state.pending.drain(..covered) {
            let flushed = !pending.unsynced
                || matches!(pending.op, Op::Write { inode, .. } if synced.contains(&inode));
            if flushed {
                ops.push(pending);
            } else {
                kept.push(pending);
            }
        }
        state.pending.splice(0..0, kept);
        for pending in &ops {
            state
                .durable
                .apply(&pending.op)
                .expect("an op valid on the live image replays onto the durable image");
        }
        state.epoch_flushed = state.epoch_flushed.max(self.epoch);
        state.flushes_done += 1;
        Ok(())
    }
}

/// An open file of the simulated disk: a handle on an inode, so it survives renames.
#[derive(Clone, Debug)]
pub struct SimFile {
    state: Shared,
    inode: InodeId,
}

impl DiskFile for SimFile {
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.state).live.contents(self.inode).len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let state = lock(&self.state);
        let range = byte_range(state.live.contents(self.inode), offset, buf.len() as u64)?;
        buf.copy_from_slice(&state.live.contents(self.inode)[range]);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let op = Op::Write { inode: self.inode, offset, data: buf.to_vec() };
        let mut state = lock(&self.state);
        if let Some(error) = state.injected(FailOp::Write, self.inode) {
            return Err(error);
        }
        state.mutate(op)
    }

    fn write_all_at_unsynced(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let op = Op::Write { inode: self.inode, offset, data: buf.to_vec() };
        let mut state = lock(&self.state);
        if let Some(error) = state.injected(FailOp::Write, self.inode) {
            return Err(error);
        }
        state.mutate_as(op, true)
    }

    fn mark_dirty(&self) -> io::Result<()> {
        // An empty write: changes nothing, but makes the round sync the inode.
        lock(&self.state).mutate(Op::Write { inode: self.inode, offset: 0, data: Vec::new() })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = lock(&self.state);
        if let Some(error) = state.injected(FailOp::SetLen, self.inode) {
            return Err(error);
        }
        state.mutate(Op::SetLen { inode: self.inode, len })
    }

    fn view(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        let state = lock(&self.state);
        let contents = state.live.contents(self.inode);
        let range = byte_range(contents, offset, len)?;
        Ok(Bytes::from_vec(contents[range].to_vec()))
    }
}

/// `offset..offset + len` as an index range into `contents`, or `UnexpectedEof`.
fn byte_range(contents: &[u8], offset: u64, len: u64) -> io::Result<std::ops::Range<usize>> {
    let end = offset.checked_add(len).filter(|&end| end <= contents.len() as u64);
    let Some(end) = end else {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "sim disk: read past the end"));
    };
    let start = usize::try_from(offset).expect("below contents.len()");
    Ok(start..usize::try_from(end).expect("below contents.len()"))
}
