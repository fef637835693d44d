//! Loading a mailbox index file (`index.rs`) in pieces: the header first, then the records a
//! bounded number at a time, so that opening a store with a huge index never holds the
//! shard's thread for the whole file (`store/opening.rs`). [`Index::salvage`] (reconstruct) is
//! the same loop run to the end in one piece.

use std::path::{Path, PathBuf};

use super::super::checkpoint::UnsyncedRecords;
use super::super::codec::{file_len, read_at, set_len};
use super::{Counts, Entry, HEADER_BYTES, Index, IndexHeader, Loaded, RECORD_BYTES};
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::limits::MESSAGES_PER_MAILBOX_MAX;

/// What [`Index::load_start`] found.
pub(crate) enum LoadStart<F> {
    /// Missing, or shorter than a header: rebuild from the spool.
    Missing,
    /// A whole header that is damaged (its checksum fails): rebuild from the spool, keeping
    /// the flags of the records that still check out ([`Index::salvage_start`]).
    DamagedHeader,
    /// A valid header; the records are still to be read.
    Header(Box<IndexLoad<F>>),
}

/// Index records read per unit of open work: decoding a record (checksum, checks, counters)
/// costs a few tens of nanoseconds, far more than reading its 64 bytes (measured with
/// `core/tests/store_open_perf.rs`: a unit is about a microsecond).
pub(crate) const RECORDS_PER_UNIT: u64 = 16;

/// An index whose header checked out, its records being read in pieces ([`IndexLoad::step`]).
/// Reading stops at the first bad record; the records after it are then only searched for
/// one that decodes (damage in the middle of the file rather than a torn tail), and
/// [`IndexLoad::finish`] cuts the file.
pub(crate) struct IndexLoad<F> {
    index: Index<F>,
    /// The file's length.
    len: u64,
    /// Records in the file that are read (at most `limits::MESSAGES_PER_MAILBOX_MAX`).
    records: u64,
    /// Records read so far.
    next: u64,
    /// A bad record was met: the rest are searched, not loaded.
    cut: bool,
    /// A record after the cut decodes (or the cut was a record out of spool order).
    good_after_cut: bool,
}

impl<F: DiskFile> IndexLoad<F> {
    /// The header, which checked out.
    pub(crate) fn header(&self) -> &IndexHeader {
        &self.index.header
    }

    /// True when nothing is left to read.
    pub(crate) fn is_done(&self) -> bool {
        self.next == self.records
    }

    /// Reads at most `records_max` records (at least one) in one read. Returns how many.
    pub(crate) fn step(&mut self, records_max: u64) -> Result<u64, StorageError> {
        let count = (self.records - self.next).min(records_max.max(1));
        if count == 0 {
            return Ok(0);
        }
        let mut bytes = vec![0u8; usize::try_from(count).expect("bounded") * RECORD_BYTES];
        let offset = Index::<F>::slot_offset(usize::try_from(self.next).expect("bounded"));
        read_at(&self.index.file, &self.index.path, &mut bytes, offset)?;
        self.next += count;
        for chunk in bytes.chunks_exact(RECORD_BYTES) {
            if self.cut {
                if Entry::decode(chunk).is_some() {
                    self.good_after_cut = true;
                    self.next = self.records;
                    break;
                }
                continue;
            }
            let Some(entry) = Entry::decode(chunk) else {
                self.cut = true;
                continue;
            };
            let index = &mut self.index;
            if index.entries.last().is_some_and(|last| last.uid >= entry.uid) {
                self.cut = true;
                continue;
            }
            // Spool order follows UID order. A record that checks out but points before the
            // previous record's end (a misdirected or rewritten record: index records carry
            // no nonce) leaves no telling which of the two is wrong: both go, and the cut
            // makes recovery scan the spool from the last kept entry (`good_after_cut`).
            if index.entries.last().is_some_and(|last| last.spool.end() > entry.spool.pos()) {
                let dropped = index.entries.pop().expect("a last entry");
                index.counts.remove(&dropped);
                self.cut = true;
                self.good_after_cut = true;
                self.next = self.records;
                break;
            }
            index.push_loaded(entry);
        }
        Ok(count)
    }

    /// The loaded index, its file cut after the last good record.
    pub(crate) fn finish(self) -> Result<Loaded<F>, StorageError> {
        assert!(self.is_done(), "every record was read");
        let IndexLoad { mut index, len, good_after_cut, .. } = self;
        // What was loaded is the past: the journal describes changes from here on.
        index.journal_restart();
        // Records past the checkpoint may sit in the page cache only (appended unsynced by a
        // process that crashed): no header may claim them before a round has synced the file.
        let checkpoint = index.header.checkpoint;
        let past = index.entries.partition_point(|e| e.spool.pos() < checkpoint);
        if let Some(first) = index.entries.get(past) {
            index.unsynced.note_unsynced(first.spool.pos());
        }
        let keep = HEADER_BYTES as u64 + index.entries.len() as u64 * RECORD_BYTES as u64;
        let cut_records = (len - keep).div_ceil(RECORD_BYTES as u64);
        if len != keep {
            tracing::warn!(path = %index.path.display(), cut_records, "cutting index tail");
            set_len(&index.file, &index.path, keep)?;
        }
        Ok(Loaded { index, cut_records, good_after_cut })
    }
}

/// The records of an index file that check out on their own, read in pieces
/// ([`Index::salvage_start`]).
pub(crate) struct SalvageLoad<F> {
    /// `None` when the file is missing.
    file: Option<F>,
    path: PathBuf,
    records: u64,
    next: u64,
    entries: Vec<Entry>,
}

impl<F: DiskFile> SalvageLoad<F> {
    /// True when nothing is left to read.
    pub(crate) fn is_done(&self) -> bool {
        self.next == self.records
    }

    /// Reads at most `records_max` records (at least one) in one read. Returns how many.
    pub(crate) fn step(&mut self, records_max: u64) -> Result<u64, StorageError> {
        let count = (self.records - self.next).min(records_max.max(1));
        let Some(file) = self.file.as_ref().filter(|_| count > 0) else {
            return Ok(0);
        };
        let mut bytes = vec![0u8; usize::try_from(count).expect("bounded") * RECORD_BYTES];
        let offset = Index::<F>::slot_offset(usize::try_from(self.next).expect("bounded"));
        read_at(file, &self.path, &mut bytes, offset)?;
        self.entries.extend(bytes.chunks_exact(RECORD_BYTES).filter_map(Entry::decode));
        self.next += count;
        Ok(count)
    }

    /// The records that checked out, in file order.
    pub(crate) fn into_entries(self) -> Vec<Entry> {
        assert!(self.is_done(), "every record was read");
        self.entries
    }
}

impl<F: DiskFile> Index<F> {
    /// Opens an index file and checks its header; the records are read by
    /// [`IndexLoad::step`], in pieces of a caller's choosing (the store opens in bounded
    /// steps: `store/opening.rs`).
    pub(crate) fn load_start<D: Disk<File = F>>(
        disk: &D,
        path: PathBuf,
    ) -> Result<LoadStart<F>, StorageError> {
        if !disk.exists(&path) {
            return Ok(LoadStart::Missing);
        }
        let file = disk.open(&path, OpenMode::Existing).map_err(|e| StorageError::io(&path, e))?;
        let len = file_len(&file, &path)?;
        if len < HEADER_BYTES as u64 {
            return Ok(LoadStart::Missing);
        }
        let mut header = [0u8; HEADER_BYTES];
        read_at(&file, &path, &mut header, 0)?;
        let Some(header) = IndexHeader::decode(&header, &path)? else {
            return Ok(LoadStart::DamagedHeader);
        };
        let records = ((len - HEADER_BYTES as u64) / RECORD_BYTES as u64)
            .min(u64::from(MESSAGES_PER_MAILBOX_MAX));
        let index = Index {
            file,
            path,
            header,
            // Reserved whole: growing it by doubling would copy every entry loaded so far in
            // whichever step passed a power of two (milliseconds for a large index).
            entries: Vec::with_capacity(usize::try_from(records).expect("bounded")),
            counts: Counts::default(),
            uid_next: header.uid_next,
            highest_modseq: header.highest_modseq,
            first_recent_uid: header.first_recent_uid,
            verified: std::cell::RefCell::new(Vec::new()),
            unsynced: UnsyncedRecords::default(),
            journal: super::ModSeqJournal::new(header.highest_modseq),
        };
        let load = IndexLoad { index, len, records, next: 0, cut: false, good_after_cut: false };
        Ok(LoadStart::Header(Box::new(load)))
    }

    /// Every record of an index file that checks out on its own, whatever the header or the
    /// records around it look like (reconstruct: keep what can be kept). Reads only.
    pub(crate) fn salvage<D: Disk<File = F>>(
        disk: &D,
        path: &Path,
    ) -> Result<Vec<Entry>, StorageError> {
        let mut load = Self::salvage_start(disk, path)?;
        while !load.is_done() {
            load.step(u64::MAX)?;
        }
        Ok(load.into_entries())
    }

    /// Makes room for `additional` more entries at once (a rebuild knows how many it will
    /// append: growing by doubling would copy them all in one step).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
    }

    /// [`Index::salvage`] in pieces ([`SalvageLoad::step`]). Reads only.
    pub(crate) fn salvage_start<D: Disk<File = F>>(
        disk: &D,
        path: &Path,
    ) -> Result<SalvageLoad<F>, StorageError> {
        let mut load = SalvageLoad {
            file: None,
            path: path.to_path_buf(),
            records: 0,
            next: 0,
            entries: vec![],
        };
        if !disk.exists(path) {
            return Ok(load);
        }
        let file = disk.open(path, OpenMode::Existing).map_err(|e| StorageError::io(path, e))?;
        let len = file_len(&file, path)?;
        load.records = (len.saturating_sub(HEADER_BYTES as u64) / RECORD_BYTES as u64)
            .min(u64::from(MESSAGES_PER_MAILBOX_MAX));
        // Reserved whole, like a loaded index's entries (no step copies them all).
        load.entries.reserve(usize::try_from(load.records).expect("bounded"));
        load.file = Some(file);
        Ok(load)
    }
}
