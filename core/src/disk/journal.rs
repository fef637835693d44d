//! The shard journal: a [`Disk`] over a [`Disk`] whose flush rounds sync one file.
//!
//! Without it a round `fdatasync`s every file its epoch wrote, and on a file system that
//! shares nothing between concurrent syncs that is a device flush per file. [`Journaled`]
//! writes every user write to its file at once, unsynced, and records it in the open epoch's
//! *batch*; [`Disk::flush_begin`] appends the batch to the journal file and hands out the inner
//! disk's round, which then syncs the journal (and the directories the epoch changed) only.
//! The users' files are synced at *checkpoints*: when the journal is full, one round syncs
//! every file written since its restart instead of writing a batch, and once that round is
//! durable the next batch restarts the journal at its start. [`Journaled::open`] replays what
//! the journal holds onto the files before anything reads them.
//!
//! Replay writes by name, so a name with records must not change: a rename or removal that
//! touches one runs a blocking checkpoint first ([`Journaled::checkpoint_now`]), and a file
//! whose name went away is written without the journal. The format, and why each step is in
//! its order, is in FORMAT.md, "The shard journal".

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use super::{Bytes, Disk, DiskFile, Flush, FlushTargets, JournalStats, OpenMode};
use crate::limits::JOURNAL_GROW_BYTES;
use crate::types::Epoch;

const MAGIC: [u8; 8] = *b"\x89SKJ\r\n\x1a\n";
const FORMAT_MAJOR: u16 = 1;
const FORMAT_MINOR: u16 = 0;
/// The header is sector 0; batches start after it, each on a sector boundary.
const HEADER_BYTES: u64 = 512;
const SECTOR: u64 = 512;
const BATCH_HEADER_BYTES: usize = 32;
const RECORD_HEADER_BYTES: usize = 16;
const KIND_WRITE: u8 = 1;
const KIND_SET_LEN: u8 = 2;
/// Voids the records of its path before it (a rename or removal of that name follows).
const KIND_FORGET: u8 = 3;

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

struct State<F> {
    journal: F,
    nonce: u64,
    /// The journal file's length (zero-filled up to it).
    len: u64,
    capacity: u64,
    /// Where the next batch goes.
    head: u64,
    next_seq: u64,
    /// The open epoch's records (after room for the batch header), and their count.
    batch: Vec<u8>,
    batch_records: u32,
    /// Files with records in the open epoch's batch, by name.
    batch_files: HashMap<PathBuf, F>,
    /// Files with records in the journal since its last restart, by name.
    live: HashMap<PathBuf, F>,
    /// Names whose records precede a restart not yet durable (its epoch), still replayable.
    retiring: Option<(u64, HashMap<PathBuf, F>)>,
    /// A checkpoint round's epoch, until it is durable.
    checkpoint_epoch: Option<u64>,
    /// A checkpoint made every record durable in the files: the next batch restarts.
    restart_due: bool,
    /// A blocking checkpoint failed: no round may claim durability any more.
    failed: bool,
    /// Open files by current name.
    names: HashMap<PathBuf, Vec<Weak<Name>>>,
    /// Counters for tests and metrics.
    checkpoints: u64,
    blocking_checkpoints: u64,
    barriers: u64,
    bytes_written: u64,
}

impl<F> State<F> {
    /// Appends a record to the open epoch's batch.
    fn push_record(&mut self, kind: u8, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let name = path.to_str().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "journal: a path that is not UTF-8")
        })?;
        let path_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "journal: path too long"))?;
        let data_len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "journal: write too large"))?;
        let batch = &mut self.batch;
        batch.extend_from_slice(&[kind, 0]);
        batch.extend_from_slice(&path_len.to_le_bytes());
        batch.extend_from_slice(&data_len.to_le_bytes());
        batch.extend_from_slice(&offset.to_le_bytes());
        batch.extend_from_slice(name.as_bytes());
        batch.extend_from_slice(data);
        self.batch_records += 1;
        Ok(())
    }

    fn is_live(&self, path: &Path) -> bool {
        self.live.contains_key(path)
            || self.batch_files.contains_key(path)
            || self.retiring.as_ref().is_some_and(|(_, files)| files.contains_key(path))
    }

    /// The names of open files called `path`, dropping dead entries.
    fn named(&mut self, path: &Path) -> Vec<Rc<Name>> {
        let Some(list) = self.names.get_mut(path) else { return Vec::new() };
        let alive: Vec<Rc<Name>> = list.iter().filter_map(Weak::upgrade).collect();
        if alive.is_empty() {
            self.names.remove(path);
        } else {
            list.retain(|weak| weak.strong_count() > 0);
        }
        alive
    }
}

/// What replay found in a journal (for tests and the server's log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Batches applied.
    pub batches: u64,
    /// Records applied (records of files that no longer exist are skipped, not counted).
    pub records: u64,
}

impl<D: Disk> Journaled<D> {
    /// Opens (or creates) the journal at `path` on `inner`, replays it onto the files, syncs
    /// them and restarts the journal. Nothing may have read or written the files through
    /// `inner` since the process started. `capacity`: the journal's size bound
    /// ([`crate::limits::JOURNAL_BYTES_MAX`] for the server; tests pass less).
    ///
    /// # Errors
    /// An I/O error reading the journal, applying a record or syncing.
    pub fn open(inner: D, path: &Path, capacity: u64) -> io::Result<(Journaled<D>, Replayed)> {
        let capacity = capacity.max(HEADER_BYTES + SECTOR);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            inner.create_dir_all(parent)?;
        }
        let journal = inner.open(path, OpenMode::CreateIfMissing)?;
        let (_, next_seq, replayed) = replay(&inner, &journal)?;
        // A new nonce: batches a crash left intact past a lost one would otherwise check out
        // once the new chain's seqs reach theirs, and replay stale writes.
        let nonce = rand::random();
        let len = journal.len()?;
        let state = State {
            journal,
            nonce,
            len,
            capacity,
            head: HEADER_BYTES,
            next_seq,
            batch: vec![0; BATCH_HEADER_BYTES],
            batch_records: 0,
            batch_files: HashMap::new(),
            live: HashMap::new(),
            retiring: None,
            checkpoint_epoch: None,
            restart_due: false,
            failed: false,
            names: HashMap::new(),
            checkpoints: 0,
            blocking_checkpoints: 0,
            barriers: 0,
            bytes_written: 0,
        };
        let disk = Journaled { inner, state: Rc::new(RefCell::new(state)) };
        {
            let mut state = disk.state.borrow_mut();
            disk.grow(&mut state, (len.max(JOURNAL_GROW_BYTES.min(capacity))).min(capacity))?;
            write_header(&state)?;
        }
        sync_now(&disk.inner)?;
        Ok((disk, replayed))
    }

    /// The disk under the journal.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Checkpoint rounds run so far, and blocking checkpoints among them.
    #[must_use]
    pub fn checkpoints(&self) -> (u64, u64) {
        let state = self.state.borrow();
        (state.checkpoints, state.blocking_checkpoints)
    }

    /// Syncs every file with records in the journal and restarts the journal, on this thread:
    /// afterwards no record names a file, so names may change.
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
            state.batch.truncate(BATCH_HEADER_BYTES);
            state.batch_records = 0;
            state.batch_files.clear();
        }
        // Files first: only once they are durable may the header drop the records.
        sync_now(&self.inner)?;
        let mut state = self.state.borrow_mut();
        state.head = HEADER_BYTES;
        write_header(&state)?;
        drop(state);
        sync_now(&self.inner)?;
        let mut state = self.state.borrow_mut();
        state.live.clear();
        state.retiring = None;
        state.checkpoint_epoch = None;
        state.restart_due = false;
        state.checkpoints += 1;
        state.blocking_checkpoints += 1;
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

    /// Writes the open epoch's batch at the head, restarting the journal first if a checkpoint
    /// allows it; or, when it does not fit, makes this round a checkpoint round.
    fn write_batch(&self, state: &mut State<D::File>, epoch: u64) -> io::Result<()> {
        if !self.append_batch(state, epoch)? {
            // Full: sync every file instead (the records stay replayable until the restart).
            mark_all_dirty(state)?;
            let files = std::mem::take(&mut state.batch_files);
            state.live.extend(files);
            state.checkpoint_epoch = Some(epoch);
            state.checkpoints += 1;
            clear_batch(state);
        }
        Ok(())
    }

    /// Appends the batch gathered so far at the head (restarting the journal first if a
    /// checkpoint allows it) and starts a new one; false, with the batch kept, if it does not
    /// fit.
    fn append_batch(&self, state: &mut State<D::File>, epoch: u64) -> io::Result<bool> {
        let padded = pad(state.batch.len() as u64);
        if state.restart_due && HEADER_BYTES + padded <= state.capacity {
            let old = std::mem::take(&mut state.live);
            state.retiring = Some((epoch, old));
            state.head = HEADER_BYTES;
            state.restart_due = false;
            write_header(state)?;
        }
        if state.head + padded > state.capacity {
            return Ok(false);
        }
        let seq = state.next_seq;
        let records = state.batch_records;
        let nonce = state.nonce;
        seal_batch(&mut state.batch, seq, epoch, records, nonce);
        state.batch.resize(padded as usize, 0);
        let end = state.head + padded;
        if end > state.len {
            let want = end.max(state.len + JOURNAL_GROW_BYTES).min(state.capacity);
            self.grow(state, want)?;
        }
        state.journal.write_all_at(&state.batch, state.head)?;
        state.bytes_written += padded;
        state.head = end;
        state.next_seq += 1;
        let files = std::mem::take(&mut state.batch_files);
        state.live.extend(files);
        clear_batch(state);
        Ok(true)
    }

    /// Before a rename or removal: no record the journal could replay may name `paths` once
    /// the name changes. A *barrier*, on this thread: the batch so far goes to the journal and
    /// the files named `paths` are synced (one round of the disk below), then a batch of
    /// forget records is written and synced (a second round), so a replay skips their earlier
    /// records. Two rounds of a few files, where a checkpoint would sync every file written
    /// since the restart (it still does when the names have records in the chain before a
    /// restart not yet durable, or the journal is full).
    fn before_name_change(&self, paths: &[&Path]) -> io::Result<()> {
        let (live, old_chain) = {
            let state = self.state.borrow();
            let live = paths.iter().any(|path| state.is_live(path));
            let retiring = state.retiring.as_ref();
            let old_chain = paths
                .iter()
                .any(|path| retiring.is_some_and(|(_, files)| files.contains_key(*path)));
            (live, old_chain)
        };
        if !live {
            return Ok(());
        }
        if old_chain {
            return self.checkpoint_now();
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
                if let Some(file) = state.live.get(*path).or(state.batch_files.get(*path)) {
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
            state.push_record(KIND_FORGET, path, 0, &[])?;
        }
        if !self.append_batch(&mut state, epoch)? {
            return Ok(false);
        }
        for path in paths {
            state.live.remove(*path);
        }
        state.barriers += 1;
        drop(state);
        sync_now(&self.inner)?;
        Ok(true)
    }

    /// Marks the open files named `path` orphaned (their name is gone).
    fn orphan(&self, path: &Path) {
        for name in self.state.borrow_mut().named(path) {
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
    let retiring = state.retiring.iter().flat_map(|(_, files)| files.values());
    for file in state.live.values().chain(state.batch_files.values()).chain(retiring) {
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
    io::Error::other("journal: a checkpoint failed to sync; nothing more is acknowledged")
}

/// `len` rounded up to whole sectors.
fn pad(len: u64) -> u64 {
    len.div_ceil(SECTOR) * SECTOR
}

fn crc_seed(nonce: u64) -> u32 {
    crc32c::crc32c(&nonce.to_le_bytes())
}

/// Fills in the batch header of `batch` (its first 32 bytes).
fn seal_batch(batch: &mut [u8], seq: u64, epoch: u64, records: u32, nonce: u64) {
    let payload = u32::try_from(batch.len() - BATCH_HEADER_BYTES).expect("batch below 4 GiB");
    batch[4..8].copy_from_slice(&payload.to_le_bytes());
    batch[8..16].copy_from_slice(&seq.to_le_bytes());
    batch[16..24].copy_from_slice(&epoch.to_le_bytes());
    batch[24..28].copy_from_slice(&records.to_le_bytes());
    batch[28..32].fill(0);
    let crc = crc32c::crc32c_append(crc_seed(nonce), &batch[4..]);
    batch[0..4].copy_from_slice(&crc.to_le_bytes());
}

fn write_header<F: DiskFile>(state: &State<F>) -> io::Result<()> {
    write_header_of(&state.journal, state.nonce, state.next_seq)
}

/// Writes a header with `nonce` whose chain starts at `start_seq`.
fn write_header_of<F: DiskFile>(journal: &F, nonce: u64, start_seq: u64) -> io::Result<()> {
    let mut header = [0u8; HEADER_BYTES as usize];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
    header[10..12].copy_from_slice(&FORMAT_MINOR.to_le_bytes());
    header[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
    header[16..24].copy_from_slice(&nonce.to_le_bytes());
    header[24..32].copy_from_slice(&start_seq.to_le_bytes());
    let crc = crc32c::crc32c(&header[..508]);
    header[508..512].copy_from_slice(&crc.to_le_bytes());
    journal.write_all_at(&header, 0)
}

/// The header's nonce and start_seq, if it is whole.
fn read_header<F: DiskFile>(journal: &F) -> io::Result<Option<(u64, u64)>> {
    if journal.len()? < HEADER_BYTES {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_BYTES as usize];
    journal.read_exact_at(&mut header, 0)?;
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[508..512].try_into().expect("4 bytes"));
    let whole = header[0..8] == MAGIC
        && u16::from_le_bytes([header[8], header[9]]) == FORMAT_MAJOR
        && crc32c::crc32c(&header[..508]) == crc;
    Ok(whole.then(|| (word(16), word(24))))
}

/// Replays the chain of batches onto the files and syncs them; the nonce to keep and the next
/// seq. A journal without a whole header gets a new nonce and replays nothing. Two passes:
/// the first finds the chain and where each path was last forgotten, the second applies
/// every write and length change not voided by a later forget record of its path.
fn replay<D: Disk>(inner: &D, journal: &D::File) -> io::Result<(u64, u64, Replayed)> {
    let Some((nonce, start_seq)) = read_header(journal)? else {
        return Ok((rand::random(), 1, Replayed::default()));
    };
    let mut chain = Vec::new();
    let mut forgotten: HashMap<String, (usize, usize)> = HashMap::new();
    let mut at = HEADER_BYTES;
    while let Some(batch) = read_batch(journal, nonce, at, start_seq + chain.len() as u64)? {
        for (index, record) in records(&batch)?.iter().enumerate() {
            if record.kind == KIND_FORGET {
                forgotten.insert(record.path.to_owned(), (chain.len(), index));
            }
        }
        chain.push(at);
        at = pad(at + batch.len() as u64);
    }
    let mut replayed = Replayed { batches: chain.len() as u64, records: 0 };
    let mut touched: HashMap<PathBuf, D::File> = HashMap::new();
    for (number, &at) in chain.iter().enumerate() {
        let seq = start_seq + number as u64;
        let batch = read_batch(journal, nonce, at, seq)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "journal: a batch changed during replay")
        })?;
        for (index, record) in records(&batch)?.into_iter().enumerate() {
            let voided = forgotten.get(record.path).is_some_and(|&last| (number, index) <= last);
            if !voided && apply(inner, &record, &mut touched)? {
                replayed.records += 1;
            }
        }
    }
    for file in touched.values() {
        file.mark_dirty()?;
    }
    sync_now(inner)?;
    Ok((nonce, start_seq + chain.len() as u64, replayed))
}

/// The batch at `at` if it is whole, carries `seq` and checks out with `nonce`.
fn read_batch<F: DiskFile>(
    journal: &F,
    nonce: u64,
    at: u64,
    seq: u64,
) -> io::Result<Option<Vec<u8>>> {
    let len = journal.len()?;
    if at + BATCH_HEADER_BYTES as u64 > len {
        return Ok(None);
    }
    let mut head = [0u8; BATCH_HEADER_BYTES];
    journal.read_exact_at(&mut head, at)?;
    let payload = u64::from(u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")));
    let end = at + BATCH_HEADER_BYTES as u64 + payload;
    if end > len || u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")) != seq {
        return Ok(None);
    }
    let mut batch = vec![0u8; (end - at) as usize];
    journal.read_exact_at(&mut batch, at)?;
    let crc = u32::from_le_bytes(batch[0..4].try_into().expect("4 bytes"));
    Ok((crc32c::crc32c_append(crc_seed(nonce), &batch[4..]) == crc).then_some(batch))
}

/// One record of a batch.
struct Record<'b> {
    kind: u8,
    path: &'b str,
    offset: u64,
    data: &'b [u8],
}

/// The records of a whole batch (header included), in order.
fn records(batch: &[u8]) -> io::Result<Vec<Record<'_>>> {
    let damaged = || io::Error::new(io::ErrorKind::InvalidData, "journal: damaged record");
    let mut payload = &batch[BATCH_HEADER_BYTES..];
    let mut out = Vec::new();
    while !payload.is_empty() {
        if payload.len() < RECORD_HEADER_BYTES {
            return Err(damaged());
        }
        let kind = payload[0];
        let path_len = usize::from(u16::from_le_bytes([payload[2], payload[3]]));
        let data_len = u32::from_le_bytes(payload[4..8].try_into().expect("4 bytes")) as usize;
        let offset = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
        let total = RECORD_HEADER_BYTES + path_len + data_len;
        if payload.len() < total || !matches!(kind, KIND_WRITE | KIND_SET_LEN | KIND_FORGET) {
            return Err(damaged());
        }
        let path = std::str::from_utf8(&payload[RECORD_HEADER_BYTES..][..path_len])
            .map_err(|_| damaged())?;
        let data = &payload[RECORD_HEADER_BYTES + path_len..total];
        out.push(Record { kind, path, offset, data });
        payload = &payload[total..];
    }
    Ok(out)
}

/// Applies a write or length change to its file; false when there is nothing to apply (a
/// forget record, or a file that does not exist: its creation never became durable, so
/// neither did the round that wrote it).
fn apply<D: Disk>(
    inner: &D,
    record: &Record<'_>,
    touched: &mut HashMap<PathBuf, D::File>,
) -> io::Result<bool> {
    if record.kind == KIND_FORGET {
        return Ok(false);
    }
    let path = PathBuf::from(record.path);
    let file = match touched.get(&path) {
        Some(file) => file.clone(),
        None => match inner.open(&path, OpenMode::Existing) {
            Ok(file) => touched.entry(path).or_insert(file).clone(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        },
    };
    match record.kind {
        KIND_WRITE => file.write_all_at_unsynced(record.data, record.offset)?,
        _ => file.set_len(record.offset)?,
    }
    Ok(true)
}

/// A round of a [`Journaled`] disk: the inner disk's, or a refusal once a checkpoint failed.
#[derive(Debug)]
pub enum JournalFlush<F> {
    /// The inner round: it syncs the journal (and any checkpoint's files).
    Inner(F),
    /// Fails when run: a blocking checkpoint could not sync.
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
        state.names.entry(path.to_path_buf()).or_default().push(Rc::downgrade(&name));
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
        let moved = state.named(source);
        state.names.remove(source);
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
        {
            let mut state = self.state.borrow_mut();
            if !state.failed
                && state.batch_records > 0
                && let Err(error) = self.write_batch(&mut state, epoch.0)
            {
                tracing::error!(%error, "journal: writing a batch failed");
                state.failed = true;
            }
            if state.failed {
                // Every round fails from now on, even one with nothing dirty in the inner disk:
                // `None` would tell the caller that every ticket so far is durable.
                return Some(JournalFlush::Failed(epoch));
            }
        }
        self.inner.flush_begin().map(JournalFlush::Inner)
    }

    fn journal_stats(&self) -> Option<JournalStats> {
        let state = self.state.borrow();
        Some(JournalStats {
            checkpoints: state.checkpoints,
            blocking_checkpoints: state.blocking_checkpoints,
            barriers: state.barriers,
            bytes_written: state.bytes_written,
        })
    }

    fn flush_end(&self, epoch: Epoch) {
        self.inner.flush_end(epoch);
        let mut state = self.state.borrow_mut();
        if state.checkpoint_epoch.is_some_and(|at| at <= epoch.0) {
            state.checkpoint_epoch = None;
            state.restart_due = true;
        }
        if state.retiring.as_ref().is_some_and(|(at, _)| *at <= epoch.0) {
            state.retiring = None;
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
        state.push_record(kind, &path, offset, data)?;
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

/// [`replay_all`] on the real disk rooted at `data_dir`; logs what it replayed.
///
/// # Errors
/// As [`replay_all`].
pub fn replay_data_dir(data_dir: &Path) -> io::Result<Replayed> {
    let replayed = replay_all(&super::os::OsDisk::new(data_dir)?)?;
    if replayed.batches > 0 {
        tracing::info!(batches = replayed.batches, records = replayed.records, "journals replayed");
    }
    Ok(replayed)
}

/// Replays every `journal/*.wal` under `inner`'s root onto the files and restarts each: what
/// must run before any store opens, whatever shard count wrote them.
///
/// # Errors
/// The first journal that cannot be replayed.
pub fn replay_all<D: Disk>(inner: &D) -> io::Result<Replayed> {
    let mut total = Replayed::default();
    let names = match inner.list_dir(Path::new("journal")) {
        Ok(names) => names,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(total),
        Err(error) => return Err(error),
    };
    for name in names.iter().filter(|name| name.ends_with(".wal")) {
        let journal = inner.open(&Path::new("journal").join(name), OpenMode::Existing)?;
        let (_, next_seq, replayed) = replay(inner, &journal)?;
        total.batches += replayed.batches;
        total.records += replayed.records;
        if replayed.batches > 0 {
            // A new nonce, as in `Journaled::open`.
            write_header_of(&journal, rand::random(), next_seq)?;
            sync_now(inner)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
