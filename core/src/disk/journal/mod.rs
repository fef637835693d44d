//! The shard journal: a [`Disk`] over a [`Disk`] whose flush rounds sync one file.
//!
//! Without it a round `fdatasync`s every file its epoch wrote, and on a file system that
//! shares nothing between concurrent syncs that is a device flush per file. [`Journaled`]
//! writes every user write to its file at once, unsynced, and records it in the open epoch's
//! *batch*; [`Disk::flush_begin`] appends the batch to the journal file and hands out the inner
//! disk's round, which then syncs the journal (and the directories the epoch changed) only.
//!
//! The journal is circular. The users' files are synced by *checkpoints*, after which the
//! header moves the chain's start past what they made durable and the space is reused:
//! - in the background ([`Disk::checkpoint_job`]): once half the journal is in use, the
//!   runtime syncs every file with records on other threads while rounds go on;
//! - on the calling thread ([`Journaled::checkpoint_now`]): when a batch does not fit (the
//!   background could not keep up), at a clean stop, before a maintenance rewrite.
//!
//! Replay writes by name, so before a rename or removal of a file with records a *barrier*
//! syncs that file and then a batch of forget records that void its records. A file whose
//! name went away is written without the journal. [`Journaled::open`] replays the journal
//! before anything reads the files. The format, and why each step is in its order, is in
//! FORMAT.md, "The shard journal".

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use super::{Bytes, CheckpointJob, Disk, DiskFile, Flush, FlushTargets, JournalStats, OpenMode};
use crate::limits::JOURNAL_GROW_BYTES;
use crate::types::Epoch;

mod format;
mod replay;
#[cfg(test)]
mod tests;

use format::{
    BATCH_HEADER_BYTES, HEADER_BYTES, KIND_FORGET, KIND_SET_LEN, KIND_WRITE, Mark, SECTOR, pad,
    push_record, seal_batch, wrap_batch, write_header,
};
pub use replay::{Replayed, replay_all, replay_data_dir};

/// Files synced per background job (each holds a descriptor while it runs).
const CHECKPOINT_JOB_FILES: usize = 1024;

/// A disk whose rounds sync one journal file; see the module documentation.
pub struct Journaled<D: Disk> {
    inner: D,
    state: Rc<RefCell<State<D::File>>>,
}

impl<D: Disk + Clone> Clone for Journaled<D> {
    /// Another handle on the same disk and journal (the simulated disk's crash tests share
    /// one disk between the store and the harness).
    fn clone(&self) -> Self {
        Journaled { inner: self.inner.clone(), state: self.state.clone() }
    }
}

/// A file's current name, shared by the handles opened under it so renames follow it.
#[derive(Debug)]
struct Name {
    path: RefCell<PathBuf>,
    /// The name was removed or renamed over: the file is written without the journal.
    orphaned: Cell<bool>,
}

/// Where the next batch goes ([`State::place`]).
enum Place {
    Head,
    Wrap,
    Restart,
}

/// A background checkpoint: files still to sync, in jobs, and where the chain may start once
/// they all are.
struct Background<F> {
    id: u64,
    start: Mark,
    chunks: Vec<Vec<F>>,
    running: bool,
}

struct State<F> {
    journal: F,
    nonce: u64,
    /// The journal file's length (zero-filled up to it).
    len: u64,
    capacity: u64,
    /// Where the next batch goes, and its seq.
    head: u64,
    next_seq: u64,
    /// The chain's start as the durable header says: replay reads from here.
    start: Mark,
    /// A checkpoint is done: the start the next header gives.
    start_due: Option<Mark>,
    /// A header written and not yet durable: its round's epoch and the start it gives.
    header_pending: Option<(u64, Mark)>,
    background: Option<Background<F>>,
    next_job: u64,
    /// The open epoch's records (after room for the batch header), and their count.
    batch: Vec<u8>,
    batch_records: u32,
    /// Files with records in the open epoch's batch, by name.
    batch_files: HashMap<PathBuf, F>,
    /// Files with records in the chain, by name, with the seq of the last batch naming them.
    live: HashMap<PathBuf, (F, u64)>,
    /// A sync of the journal failed: no round may claim durability any more.
    failed: bool,
    /// Open files by current name.
    names: HashMap<PathBuf, Vec<Weak<Name>>>,
    stats: JournalStats,
}

impl<F> State<F> {
    fn is_live(&self, path: &Path) -> bool {
        self.live.contains_key(path) || self.batch_files.contains_key(path)
    }

    /// True when the chain holds no batch.
    fn empty(&self) -> bool {
        self.start.seq == self.next_seq
    }

    /// Bytes of the journal the chain holds.
    fn used(&self) -> u64 {
        if self.empty() {
            0
        } else if self.head > self.start.offset {
            self.head - self.start.offset
        } else {
            self.capacity - self.start.offset + self.head - HEADER_BYTES
        }
    }

    /// Where a batch of `padded` bytes goes without overwriting the chain: at the head; after
    /// a wrap batch at the head, at the first batch offset; or, when the chain is empty and
    /// the head too near the end, at the first batch offset under a new header. A sector is
    /// always left at the end for a wrap batch.
    fn place(&self, padded: u64) -> Option<Place> {
        let end = self.capacity - SECTOR;
        let (head, start) = (self.head, self.start.offset);
        if self.empty() {
            if head + padded <= end {
                Some(Place::Head)
            } else {
                (HEADER_BYTES + padded <= end).then_some(Place::Restart)
            }
        } else if head > start {
            if head + padded <= end {
                Some(Place::Head)
            } else {
                (HEADER_BYTES + padded <= start).then_some(Place::Wrap)
            }
        } else {
            (head + padded <= start).then_some(Place::Head)
        }
    }

    /// The chain now starts at `start` (a header saying so is durable): names whose records
    /// all lie before it are no longer live.
    fn advance_start(&mut self, start: Mark) {
        // An equal seq with another offset is a restart of an empty chain: it moves too.
        if start.seq < self.start.seq {
            return;
        }
        self.start = start;
        self.live.retain(|_, (_, last)| *last >= start.seq);
    }

    /// Names the start a finished checkpoint allows, unless a later one is known already.
    fn checkpointed(&mut self, start: Mark) {
        let known = self.start_due.or(self.header_pending.map(|(_, mark)| mark));
        if start.seq > self.start.seq && known.is_none_or(|mark| mark.seq < start.seq) {
            self.start_due = Some(start);
        }
    }
}

impl<D: Disk> Journaled<D> {
    /// Opens (or creates) the journal at `path` on `inner`, replays it onto the files, syncs
    /// them and empties the journal. Nothing may have read or written the files through
    /// `inner` since the process started. `capacity`: the journal's size bound
    /// ([`crate::limits::JOURNAL_BYTES_MAX`] for the server; tests pass less).
    ///
    /// # Errors
    /// An I/O error reading the journal, applying a record or syncing.
    pub fn open(inner: D, path: &Path, capacity: u64) -> io::Result<(Journaled<D>, Replayed)> {
        let capacity = pad(capacity).max(HEADER_BYTES + 4 * SECTOR);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            inner.create_dir_all(parent)?;
        }
        let journal = inner.open(path, OpenMode::CreateIfMissing)?;
        let (next_seq, replayed) = replay::replay(&inner, &journal)?;
        let len = journal.len()?;
        let start = Mark { seq: next_seq, offset: HEADER_BYTES };
        let state = State {
            journal,
            // A new nonce: batches a crash left intact past a lost one would otherwise check
            // out once the new chain's seqs reach theirs, and replay stale writes.
            nonce: rand::random(),
            len,
            capacity,
            head: HEADER_BYTES,
            next_seq,
            start,
            start_due: None,
            header_pending: None,
            background: None,
            next_job: 1,
            batch: vec![0; BATCH_HEADER_BYTES],
            batch_records: 0,
            batch_files: HashMap::new(),
            live: HashMap::new(),
            failed: false,
            names: HashMap::new(),
            stats: JournalStats::default(),
        };
        let disk = Journaled { inner, state: Rc::new(RefCell::new(state)) };
        {
            let mut state = disk.state.borrow_mut();
            disk.grow(&mut state, len.max(JOURNAL_GROW_BYTES).min(capacity))?;
            write_header(&state.journal, state.nonce, start)?;
        }
        sync_now(&disk.inner)?;
        Ok((disk, replayed))
    }

    /// The disk under the journal.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Syncs every file with records in the journal and empties the journal, on this thread.
    ///
    /// # Errors
    /// A sync error. The disk is then failed: every later round fails too.
    pub fn checkpoint_now(&self) -> io::Result<()> {
        let result = self.try_checkpoint_now();
        if result.is_err() {
            self.state.borrow_mut().failed = true;
        }
        result
    }

    fn try_checkpoint_now(&self) -> io::Result<()> {
        {
            let mut state = self.state.borrow_mut();
            if state.failed {
                return Err(failed());
            }
            mark_all_dirty(&state)?;
            clear_batch(&mut state);
            state.batch_files.clear();
        }
        // Files first: only once they are durable may the header drop the records.
        sync_now(&self.inner)?;
        let start = {
            let state = self.state.borrow();
            let start = Mark { seq: state.next_seq, offset: HEADER_BYTES };
            write_header(&state.journal, state.nonce, start)?;
            start
        };
        sync_now(&self.inner)?;
        let mut state = self.state.borrow_mut();
        state.head = HEADER_BYTES;
        state.start = start;
        state.live.clear();
        state.start_due = None;
        state.header_pending = None;
        state.background = None;
        state.stats.checkpoints += 1;
        state.stats.blocking_checkpoints += 1;
        Ok(())
    }

    /// Zero-fills the journal up to `len` (never shrinks it).
    fn grow(&self, state: &mut State<D::File>, len: u64) -> io::Result<()> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        while state.len < len {
            let step = (len - state.len).min(ZEROS.len() as u64);
            state.journal.write_all_at(&ZEROS[..step as usize], state.len)?;
            state.len += step;
        }
        Ok(())
    }

    /// Writes `bytes` into the journal at `at`, growing it first if needed.
    fn put(&self, state: &mut State<D::File>, bytes: &[u8], at: u64) -> io::Result<()> {
        let end = at + bytes.len() as u64;
        if end > state.len {
            self.grow(state, end.max(state.len + JOURNAL_GROW_BYTES).min(state.capacity))?;
        }
        state.journal.write_all_at(bytes, at)?;
        state.stats.bytes_written += bytes.len() as u64;
        Ok(())
    }

    /// Writes the header a finished checkpoint allows (it becomes durable with this round).
    fn write_due_header(&self, state: &mut State<D::File>, epoch: u64) -> io::Result<()> {
        if let Some(start) = state.start_due.take() {
            write_header(&state.journal, state.nonce, start)?;
            state.header_pending = Some((epoch, start));
        }
        Ok(())
    }

    /// Appends the batch gathered so far and starts a new one; false, with the batch kept, if
    /// it does not fit.
    fn append_batch(&self, state: &mut State<D::File>, epoch: u64) -> io::Result<bool> {
        let padded = pad(state.batch.len() as u64);
        let Some(place) = state.place(padded) else { return Ok(false) };
        let at = match place {
            Place::Head => state.head,
            Place::Wrap => {
                let marker = wrap_batch(state.next_seq, epoch, state.nonce);
                let head = state.head;
                self.put(state, &marker, head)?;
                state.next_seq += 1;
                HEADER_BYTES
            }
            Place::Restart => {
                // The chain is empty: it restarts here, under a header written in this round
                // (if only one of the two survives a crash, replay finds nothing, and nothing
                // was acknowledged through this batch).
                let start = Mark { seq: state.next_seq, offset: HEADER_BYTES };
                write_header(&state.journal, state.nonce, start)?;
                state.header_pending = Some((epoch, start));
                state.start_due = None;
                HEADER_BYTES
            }
        };
        let (seq, records, nonce) = (state.next_seq, state.batch_records, state.nonce);
        seal_batch(&mut state.batch, seq, epoch, records, nonce);
        state.batch.resize(padded as usize, 0);
        let batch = std::mem::take(&mut state.batch);
        let written = self.put(state, &batch, at);
        state.batch = batch;
        written?;
        state.head = at + padded;
        state.next_seq += 1;
        let files = std::mem::take(&mut state.batch_files);
        state.live.extend(files.into_iter().map(|(path, file)| (path, (file, seq))));
        clear_batch(state);
        Ok(true)
    }

    /// Starts a background checkpoint once half the journal is in use: every live file is to
    /// be synced, after which the chain may start at the head as it is now.
    fn maybe_start_background(&self, state: &mut State<D::File>) {
        let busy = state.background.is_some()
            || state.start_due.is_some()
            || state.header_pending.is_some();
        if busy || state.used() * 2 < state.capacity {
            return;
        }
        let files: Vec<D::File> = state.live.values().map(|(file, _)| file.clone()).collect();
        let chunks = files.chunks(CHECKPOINT_JOB_FILES).map(<[D::File]>::to_vec).collect();
        let id = state.next_job;
        state.next_job += 1;
        let start = Mark { seq: state.next_seq, offset: state.head };
        state.background = Some(Background { id, start, chunks, running: false });
    }

    /// Before a rename or removal: no record the journal could replay may name `paths` once
    /// the name changes. A *barrier*, on this thread: the batch so far goes to the journal and
    /// the files named `paths` are synced (one round of the disk below), then a batch of
    /// forget records is written and synced (a second round), so a replay skips their earlier
    /// records. Two rounds of a few files; a checkpoint only when the journal has no room.
    fn before_name_change(&self, paths: &[&Path]) -> io::Result<()> {
        if !paths.iter().any(|path| self.state.borrow().is_live(path)) {
            return Ok(());
        }
        let result = self.try_barrier(paths);
        if result.is_err() {
            self.state.borrow_mut().failed = true;
        }
        match result {
            Ok(true) => Ok(()),
            Ok(false) => self.checkpoint_now(),
            Err(error) => Err(error),
        }
    }

    /// [`Journaled::before_name_change`]'s barrier; false when the journal has no room.
    fn try_barrier(&self, paths: &[&Path]) -> io::Result<bool> {
        let epoch = self.inner.epoch_open().0;
        {
            let mut state = self.state.borrow_mut();
            if state.failed {
                return Err(failed());
            }
            for path in paths {
                let live = state.live.get(*path).map(|(file, _)| file);
                if let Some(file) = live.or(state.batch_files.get(*path)) {
                    file.mark_dirty()?;
                }
            }
            // Everything written so far goes with this round: it closes the open epoch, which
            // is then durable as a whole.
            if state.batch_records > 0 && !self.append_batch(&mut state, epoch)? {
                return Ok(false);
            }
        }
        // The files' data first: only once it is durable may their records be voided.
        sync_now(&self.inner)?;
        let epoch = self.inner.epoch_open().0;
        let mut state = self.state.borrow_mut();
        for path in paths {
            push_record(&mut state.batch, KIND_FORGET, path, 0, &[])?;
            state.batch_records += 1;
        }
        if !self.append_batch(&mut state, epoch)? {
            return Ok(false);
        }
        for path in paths {
            state.live.remove(*path);
        }
        state.stats.barriers += 1;
        drop(state);
        sync_now(&self.inner)?;
        Ok(true)
    }

    /// Marks the open files named `path` orphaned (their name is gone).
    fn orphan(&self, path: &Path) {
        let mut state = self.state.borrow_mut();
        let Some(list) = state.names.remove(path) else { return };
        for name in list.iter().filter_map(Weak::upgrade) {
            name.orphaned.set(true);
        }
    }
}

/// Empties the batch for the next epoch (a huge write's buffer is not kept).
fn clear_batch<F>(state: &mut State<F>) {
    if state.batch.capacity() as u64 > JOURNAL_GROW_BYTES {
        state.batch = Vec::new();
    }
    state.batch.clear();
    state.batch.resize(BATCH_HEADER_BYTES, 0);
    state.batch_records = 0;
}

/// Every file with records marked dirty in the inner disk's open epoch.
fn mark_all_dirty<F: DiskFile>(state: &State<F>) -> io::Result<()> {
    let live = state.live.values().map(|(file, _)| file);
    for file in live.chain(state.batch_files.values()) {
        file.mark_dirty()?;
    }
    Ok(())
}

/// Runs one round of the inner disk on this thread.
fn sync_now<D: Disk>(inner: &D) -> io::Result<()> {
    if let Some(flush) = inner.flush_begin() {
        let epoch = flush.epoch();
        flush.run()?;
        inner.flush_end(epoch);
    }
    Ok(())
}

fn failed() -> io::Error {
    io::Error::other("journal: a sync failed; nothing more is acknowledged")
}

/// A round of a [`Journaled`] disk: the inner disk's, or a refusal once a sync failed.
#[derive(Debug)]
pub enum JournalFlush<F> {
    /// The inner round: it syncs the journal (and any checkpoint's files).
    Inner(F),
    /// Fails when run: a sync failed before.
    Failed(Epoch),
}

impl<F: Flush> Flush for JournalFlush<F> {
    fn epoch(&self) -> Epoch {
        match self {
            JournalFlush::Inner(flush) => flush.epoch(),
            JournalFlush::Failed(epoch) => *epoch,
        }
    }

    fn run(self) -> io::Result<()> {
        match self {
            JournalFlush::Inner(flush) => flush.run(),
            JournalFlush::Failed(_) => Err(failed()),
        }
    }

    fn targets(&self) -> Option<io::Result<FlushTargets>> {
        match self {
            JournalFlush::Inner(flush) => flush.targets(),
            JournalFlush::Failed(_) => None,
        }
    }
}

impl<D: Disk> Disk for Journaled<D> {
    type File = JournaledFile<D::File>;
    type Flush = JournalFlush<D::Flush>;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File> {
        let inner = self.inner.open(path, mode)?;
        let name =
            Rc::new(Name { path: RefCell::new(path.to_path_buf()), orphaned: Cell::new(false) });
        let mut state = self.state.borrow_mut();
        let list = state.names.entry(path.to_path_buf()).or_default();
        list.retain(|weak| weak.strong_count() > 0);
        list.push(Rc::downgrade(&name));
        Ok(JournaledFile { inner, name, state: self.state.clone() })
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.before_name_change(&[path])?;
        self.inner.remove_file(path)?;
        self.orphan(path);
        Ok(())
    }

    fn rename(&self, source: &Path, target: &Path) -> io::Result<()> {
        self.before_name_change(&[source, target])?;
        self.inner.rename(source, target)?;
        self.orphan(target);
        let mut state = self.state.borrow_mut();
        let moved: Vec<Rc<Name>> = state
            .names
            .remove(source)
            .map(|list| list.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default();
        for name in &moved {
            *name.path.borrow_mut() = target.to_path_buf();
        }
        let list = state.names.entry(target.to_path_buf()).or_default();
        list.extend(moved.iter().map(Rc::downgrade));
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn epoch_open(&self) -> Epoch {
        self.inner.epoch_open()
    }

    fn epoch_durable(&self) -> Epoch {
        self.inner.epoch_durable()
    }

    fn flush_begin(&self) -> Option<Self::Flush> {
        let epoch = self.inner.epoch_open();
        let appended = {
            let mut state = self.state.borrow_mut();
            if state.failed {
                Ok(true)
            } else {
                self.write_due_header(&mut state, epoch.0).and_then(|()| {
                    if state.batch_records > 0 {
                        self.append_batch(&mut state, epoch.0)
                    } else {
                        Ok(true)
                    }
                })
            }
        };
        // No room (the background checkpoints did not keep up, or the batch is larger than
        // the journal): every file is synced now, on this thread, and the chain emptied. The
        // batch is dropped, its writes durable in their files. A round that synced them itself
        // would leave the chain's older records replayable over them until a new header.
        let written = match appended {
            Ok(true) => Ok(()),
            Ok(false) => self.checkpoint_now(),
            Err(error) => Err(error),
        };
        let mut state = self.state.borrow_mut();
        if let Err(error) = written {
            tracing::error!(%error, "journal: a batch or checkpoint failed");
            state.failed = true;
        }
        if state.failed {
            // Every round fails from now on, even one with nothing dirty in the inner disk:
            // `None` would tell the caller that every ticket so far is durable.
            return Some(JournalFlush::Failed(epoch));
        }
        self.maybe_start_background(&mut state);
        drop(state);
        self.inner.flush_begin().map(JournalFlush::Inner)
    }

    fn flush_end(&self, epoch: Epoch) {
        self.inner.flush_end(epoch);
        let mut state = self.state.borrow_mut();
        if let Some((at, start)) = state.header_pending
            && at <= epoch.0
        {
            state.header_pending = None;
            state.advance_start(start);
        }
    }

    fn journal_stats(&self) -> Option<JournalStats> {
        Some(self.state.borrow().stats)
    }

    fn checkpoint_job(&self) -> Option<CheckpointJob> {
        let mut state = self.state.borrow_mut();
        if state.failed {
            return None;
        }
        let background = state.background.as_mut()?;
        if background.running {
            return None;
        }
        let id = background.id;
        let Some(chunk) = background.chunks.pop() else {
            // Nothing to sync (no live file): done at once.
            let start = background.start;
            state.background = None;
            state.stats.checkpoints += 1;
            state.stats.background_checkpoints += 1;
            state.checkpointed(start);
            return None;
        };
        background.running = true;
        match self.inner.sync_files(&chunk) {
            Ok(run) => Some(CheckpointJob { id, run }),
            Err(error) => {
                // The disk below cannot sync files apart: full journals checkpoint in rounds.
                tracing::debug!(%error, "journal: no background checkpoint");
                state.background = None;
                None
            }
        }
    }

    fn checkpoint_done(&self, id: u64, result: io::Result<()>) {
        let mut state = self.state.borrow_mut();
        let Some(background) = state.background.as_mut().filter(|b| b.id == id) else {
            return; // superseded by a checkpoint of another kind
        };
        background.running = false;
        if let Err(error) = result {
            tracing::error!(%error, "journal: a background checkpoint failed to sync");
            state.failed = true;
            state.background = None;
            return;
        }
        if background.chunks.is_empty() {
            let start = background.start;
            state.background = None;
            state.stats.checkpoints += 1;
            state.stats.background_checkpoints += 1;
            state.checkpointed(start);
        }
    }
}

/// A file of a [`Journaled`] disk.
pub struct JournaledFile<F> {
    inner: F,
    name: Rc<Name>,
    state: Rc<RefCell<State<F>>>,
}

impl<F: Clone> Clone for JournaledFile<F> {
    fn clone(&self) -> Self {
        JournaledFile {
            inner: self.inner.clone(),
            name: self.name.clone(),
            state: self.state.clone(),
        }
    }
}

impl<F: DiskFile> JournaledFile<F> {
    /// The file under the journal.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// Appends a record of this file to the open epoch's batch.
    fn record(&self, kind: u8, offset: u64, data: &[u8]) -> io::Result<()> {
        let path = self.name.path.borrow();
        let mut state = self.state.borrow_mut();
        push_record(&mut state.batch, kind, &path, offset, data)?;
        state.batch_records += 1;
        if !state.batch_files.contains_key(path.as_path()) {
            state.batch_files.insert(path.clone(), self.inner.clone());
        }
        Ok(())
    }
}

impl<F: DiskFile> DiskFile for JournaledFile<F> {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.name.orphaned.get() {
            return self.inner.write_all_at(buf, offset);
        }
        self.inner.write_all_at_unsynced(buf, offset)?;
        self.record(KIND_WRITE, offset, buf)
    }

    fn write_all_at_unsynced(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Journaled like any write: a record costs its bytes, not a sync.
        self.write_all_at(buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.name.orphaned.get() {
            return self.inner.set_len(len);
        }
        self.inner.set_len(len)?;
        self.record(KIND_SET_LEN, len, &[])
    }

    fn view(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        self.inner.view(offset, len)
    }

    fn will_need(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.will_need(offset, len)
    }

    fn mark_dirty(&self) -> io::Result<()> {
        self.inner.mark_dirty()
    }
}

/// The journal of shard `index` under a data dir.
#[must_use]
pub fn shard_journal_path(index: usize) -> PathBuf {
    PathBuf::from(format!("journal/{index:02}.wal"))
}
