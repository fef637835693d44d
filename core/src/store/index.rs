//! Mailbox index files, `mbox/NNNNNNNN.idx`: a checksummed header and fixed 64-byte records,
//! one per message ever appended, in UID order (`core/FORMAT.md`, "Mailbox index").
//!
//! [`Index`] keeps every record in memory (loaded when the store opens) plus the counters STATUS
//! needs, so `messages()` and `mailbox_info()` read no file. Appends write one record at the
//! end; flag changes and expunges rewrite one record in place.

use std::path::{Path, PathBuf};

use super::checkpoint::UnsyncedRecords;
use super::codec::{
    Preamble, SpoolPos, all_zero, file_len, get_i16, get_i64, get_u16, get_u32, get_u64, put_i16,
    put_i64, put_u16, put_u32, put_u64, read_at, set_len, write_at,
};
use super::modseq_journal::ModSeqJournal;
use super::spool::SpoolRef;
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::limits::{MESSAGES_PER_MAILBOX_MAX, MODSEQ_MAX, MODSEQ_READ_MAX};
use crate::types::{
    Epoch, Flags, InternalDate, Keywords, MailboxId, SystemFlags, Uid, UidValidity,
};

#[path = "index_load.rs"]
mod load;
pub(crate) use load::{IndexLoad, LoadStart, RECORDS_PER_UNIT, SalvageLoad};

/// Directory of the index files inside the user directory.
pub(crate) const INDEX_DIR: &str = "mbox";
/// Bytes of the header.
pub(crate) const HEADER_BYTES: usize = 128;
/// Bytes of a record.
pub(crate) const RECORD_BYTES: usize = 64;
const SECTOR_BYTES: usize = 512;
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKI\r\n\x1a\n", major: 1, minor: 2 };
// A record never straddles a sector, so a torn write never tears a record.
const _: () = assert!(HEADER_BYTES.is_multiple_of(RECORD_BYTES));
const _: () = assert!(SECTOR_BYTES.is_multiple_of(RECORD_BYTES));
const _: () = assert!(HEADER_BYTES <= SECTOR_BYTES);
// Pinned by core/FORMAT.md ("Mailbox index").
const _: () = assert!(HEADER_BYTES == 128);
const _: () = assert!(RECORD_BYTES == 64);

/// The index file name of a mailbox.
pub(crate) fn index_path(user_dir: &Path, id: MailboxId) -> PathBuf {
    user_dir.join(INDEX_DIR).join(format!("{:08}.idx", id.0))
}

/// The mailbox id of an index file name; `None` for other names.
pub(crate) fn parse_index_name(name: &str) -> Option<MailboxId> {
    let digits = name.strip_suffix(".idx")?;
    let valid = digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| digits.parse().ok().map(MailboxId)).flatten()
}

/// The header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexHeader {
    pub mailbox: MailboxId,
    pub uid_validity: UidValidity,
    pub uid_next: u32,
    pub highest_modseq: u64,
    pub checkpoint: SpoolPos,
    pub messages: u32,
    /// The mailbox's creation (its log record) is known durable: if the log ever lacks this
    /// mailbox, the log was damaged and the index is salvaged rather than removed.
    pub sealed: bool,
    /// The first UID no session has been told of yet: messages from here on are `\Recent`
    /// for the next session that learns of them (format_minor 1; a minor-0 header reads as
    /// `uid_next`, nothing recent).
    pub first_recent_uid: u32,
}

/// Bit of the header's `flags` field: see [`IndexHeader::sealed`].
const FLAG_SEALED: u32 = 1;

impl IndexHeader {
    pub(crate) fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut buf = [0u8; HEADER_BYTES];
        PREAMBLE.write(&mut buf, HEADER_BYTES as u32);
        put_u32(&mut buf, 16, RECORD_BYTES as u32);
        put_u32(&mut buf, 20, self.mailbox.0);
        put_u32(&mut buf, 24, self.uid_validity.get());
        put_u32(&mut buf, 28, self.uid_next);
        put_u64(&mut buf, 32, self.highest_modseq);
        put_u64(&mut buf, 40, self.checkpoint.0);
        put_u32(&mut buf, 48, self.messages);
        put_u32(&mut buf, 52, if self.sealed { FLAG_SEALED } else { 0 });
        put_u32(&mut buf, 56, self.first_recent_uid);
        let crc = crc32c::crc32c(&buf[..124]);
        put_u32(&mut buf, 124, crc);
        buf
    }

    /// Decodes a header; `Ok(None)` when torn or damaged.
    pub(crate) fn decode(
        buf: &[u8; HEADER_BYTES],
        path: &Path,
    ) -> Result<Option<IndexHeader>, StorageError> {
        let Some(header_size) = PREAMBLE.check(buf, 124, path)? else {
            return Ok(None);
        };
        let minor = get_u16(buf, 10);
        // Values read from disk are input: a checkpoint that is not a record boundary (8-byte
        // aligned) or a HIGHESTMODSEQ that leaves no room makes the header bad (rebuilt).
        let valid = header_size as usize == HEADER_BYTES
            && get_u32(buf, 16) as usize == RECORD_BYTES
            && get_u64(buf, 32) <= MODSEQ_READ_MAX
            && SpoolPos(get_u64(buf, 40)).offset().is_multiple_of(8)
            && get_u32(buf, 52) & !FLAG_SEALED == 0
            && all_zero(&buf[if minor >= 1 { 60 } else { 56 }..124]);
        let uid_validity = std::num::NonZeroU32::new(get_u32(buf, 24)).map(UidValidity);
        let (true, Some(uid_validity)) = (valid, uid_validity) else {
            return Ok(None);
        };
        let uid_next = get_u32(buf, 28).max(1);
        let first_recent_uid =
            if minor >= 1 { get_u32(buf, 56).clamp(1, uid_next) } else { uid_next };
        Ok(Some(IndexHeader {
            mailbox: MailboxId(get_u32(buf, 20)),
            uid_validity,
            first_recent_uid,
            uid_next,
            highest_modseq: get_u64(buf, 32),
            checkpoint: SpoolPos(get_u64(buf, 40)),
            messages: get_u32(buf, 48),
            sealed: get_u32(buf, 52) & FLAG_SEALED != 0,
        }))
    }
}

/// One message's index record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub uid: Uid,
    pub flags: Flags,
    pub expunged: bool,
    pub modseq: u64,
    pub date: InternalDate,
    pub size: u32,
    pub spool: SpoolRef,
    /// When the message was saved into this mailbox (RFC 8514 SAVEDATE), unix seconds; 0 when
    /// unknown (records written before format 1.2, or rebuilt from the spool).
    pub save_date: u32,
}

impl Entry {
    pub(crate) fn encode(&self) -> [u8; RECORD_BYTES] {
        assert_eq!(self.flags.system.0 & !SystemFlags::ALL, 0);
        let mut buf = [0u8; RECORD_BYTES];
        put_u32(&mut buf, 0, self.uid.get());
        put_u16(&mut buf, 4, self.flags.system.0);
        buf[6] = u8::from(self.expunged);
        put_u64(&mut buf, 8, self.modseq);
        put_u64(&mut buf, 16, self.flags.keywords.0);
        put_i64(&mut buf, 24, self.date.unix_seconds);
        put_i16(&mut buf, 32, self.date.zone_minutes);
        put_u32(&mut buf, 36, self.size);
        put_u32(&mut buf, 40, self.spool.segment);
        put_u32(&mut buf, 44, self.spool.offset);
        put_u32(&mut buf, 48, self.spool.len);
        put_u32(&mut buf, 52, self.spool.crc);
        put_u32(&mut buf, 56, self.save_date);
        let crc = crc32c::crc32c(&buf[..60]);
        put_u32(&mut buf, 60, crc);
        buf
    }

    /// Decodes a record; `None` when its checksum fails or a field is out of range (a modseq
    /// past [`MODSEQ_READ_MAX`], a spool reference that is unaligned, shorter than a record
    /// header or whose end passes `u32::MAX`).
    pub(crate) fn decode(buf: &[u8]) -> Option<Entry> {
        let buf = buf.get(..RECORD_BYTES)?;
        let system = get_u16(buf, 4);
        let valid = crc32c::crc32c(&buf[..60]) == get_u32(buf, 60)
            && system & !SystemFlags::ALL == 0
            && buf[6] <= 1
            && buf[7] == 0
            && get_u64(buf, 8) <= MODSEQ_READ_MAX
            && spool_reference_fits(get_u32(buf, 44), get_u32(buf, 48))
            && all_zero(&buf[34..36]);
        if !valid {
            return None;
        }
        Some(Entry {
            uid: Uid::new(get_u32(buf, 0))?,
            flags: Flags { system: SystemFlags(system), keywords: Keywords(get_u64(buf, 16)) },
            expunged: buf[6] == 1,
            modseq: get_u64(buf, 8),
            date: InternalDate { unix_seconds: get_i64(buf, 24), zone_minutes: get_i16(buf, 32) },
            size: get_u32(buf, 36),
            spool: SpoolRef {
                segment: get_u32(buf, 40),
                offset: get_u32(buf, 44),
                len: get_u32(buf, 48),
                crc: get_u32(buf, 52),
            },
            save_date: get_u32(buf, 56),
        })
    }
}

/// True when a spool reference read from disk can name a record: 8-byte aligned offset and
/// length, at least a record header long, and an end that fits in a `u32` offset.
fn spool_reference_fits(offset: u32, len: u32) -> bool {
    offset.is_multiple_of(8)
        && len.is_multiple_of(8)
        && len as usize >= super::record::RECORD_HEADER_BYTES
        && offset.checked_add(len).is_some()
}

/// Counters over live (not expunged) entries, kept up to date on every change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub messages: u32,
    pub unseen: u32,
    pub deleted: u32,
    pub size: u64,
}

impl Counts {
    fn add(&mut self, entry: &Entry) {
        if entry.expunged {
            return;
        }
        self.messages += 1;
        self.unseen += u32::from(!entry.flags.system.contains(SystemFlags::SEEN));
        self.deleted += u32::from(entry.flags.system.contains(SystemFlags::DELETED));
        self.size += u64::from(entry.size);
    }

    fn remove(&mut self, entry: &Entry) {
        if entry.expunged {
            return;
        }
        self.messages -= 1;
        self.unseen -= u32::from(!entry.flags.system.contains(SystemFlags::SEEN));
        self.deleted -= u32::from(entry.flags.system.contains(SystemFlags::DELETED));
        self.size -= u64::from(entry.size);
    }
}

/// An index file loaded ([`IndexLoad::finish`]).
pub(crate) struct Loaded<F> {
    /// The index: its records up to the first bad one (the file was cut there).
    pub index: Index<F>,
    /// Records cut.
    pub cut_records: u64,
    /// A record after the cut decodes, so the cut record was damaged in the middle of the
    /// file rather than torn at its tail.
    pub good_after_cut: bool,
}

/// One mailbox's index, in memory and on disk.
pub(crate) struct Index<F> {
    file: F,
    path: PathBuf,
    /// The header as last written.
    header: IndexHeader,
    entries: Vec<Entry>,
    counts: Counts,
    uid_next: u32,
    highest_modseq: u64,
    /// See [`IndexHeader::first_recent_uid`]; the header's copy is written at checkpoints.
    first_recent_uid: u32,
    /// One bit per slot: the spool record's checksum was verified in this process (written
    /// here, checked by recovery, or checked on a first read), so reads need not check it.
    verified: std::cell::RefCell<Vec<u64>>,
    /// Appended records that may not be durable yet (see [`Index::append_unsynced`]).
    unsynced: UnsyncedRecords,
    /// Which UIDs took which modseq since the index was loaded (`modseq_journal.rs`).
    journal: ModSeqJournal,
}

impl<F: DiskFile> Index<F> {
    /// Creates a new, empty index file (overwriting a damaged one).
    pub(crate) fn create<D: Disk<File = F>>(
        disk: &D,
        path: PathBuf,
        header: IndexHeader,
    ) -> Result<Index<F>, StorageError> {
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        write_at(&file, &path, &header.encode(), 0)?;
        set_len(&file, &path, HEADER_BYTES as u64)?;
        Ok(Index {
            file,
            path,
            header,
            entries: Vec::new(),
            counts: Counts::default(),
            uid_next: header.uid_next,
            highest_modseq: header.highest_modseq,
            first_recent_uid: header.first_recent_uid,
            verified: std::cell::RefCell::new(Vec::new()),
            unsynced: UnsyncedRecords::default(),
            journal: ModSeqJournal::new(header.highest_modseq),
        })
    }

    fn push_loaded(&mut self, entry: Entry) {
        self.uid_next = self.uid_next.max(entry.uid.get().saturating_add(1));
        self.highest_modseq = self.highest_modseq.max(entry.modseq);
        self.counts.add(&entry);
        self.entries.push(entry);
    }

    /// Clears, in memory, keyword bits outside `valid` (the bits that name keywords) in the
    /// entries of `slots`. Records on disk may carry bits from a keyword definition a crash
    /// lost; recovery makes those bits void for good, so masking them on every load is enough
    /// (a rewrite of the record writes the masked bits).
    pub(crate) fn mask_keywords(&mut self, slots: std::ops::Range<usize>, valid: u64) {
        for entry in &mut self.entries[slots] {
            entry.flags.keywords.0 &= valid;
        }
    }

    /// Keyword bits set on any entry of `slots` outside `valid`.
    pub(crate) fn stray_keywords(&self, slots: std::ops::Range<usize>, valid: u64) -> u64 {
        self.entries[slots].iter().fold(0, |bits, e| bits | (e.flags.keywords.0 & !valid))
    }

    /// The header as last written.
    pub(crate) fn header(&self) -> &IndexHeader {
        &self.header
    }

    /// Every entry, expunged ones included, in UID order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Which UIDs took which modseq (`modseq_journal.rs`).
    pub(crate) fn journal(&self) -> &ModSeqJournal {
        &self.journal
    }

    /// Starts the journal afresh above every modseq given so far (a load just finished).
    pub(crate) fn journal_restart(&mut self) {
        self.journal = ModSeqJournal::new(self.highest_modseq);
    }

    /// Live counters.
    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    /// Recounts the counters from the entries; true when they differed (`skua quota --fix`
    /// on a running server). O(entries).
    pub(crate) fn recount(&mut self) -> bool {
        let mut counts = Counts::default();
        for entry in &self.entries {
            counts.add(entry);
        }
        let differed = counts != self.counts;
        self.counts = counts;
        differed
    }

    /// Skews the counters (tests of the recount only).
    #[cfg(test)]
    pub(crate) fn skew_counts_for_test(&mut self) {
        self.counts.messages += 1;
        self.counts.size += 7;
    }

    /// The next UID to give.
    pub(crate) fn uid_next(&self) -> u32 {
        self.uid_next
    }

    /// The largest modseq given.
    pub(crate) fn highest_modseq(&self) -> u64 {
        self.highest_modseq
    }

    /// Raises HIGHESTMODSEQ to at least `modseq` (recovery: a tombstone's modseq).
    pub(crate) fn raise_highest_modseq(&mut self, modseq: u64) {
        self.highest_modseq = self.highest_modseq.max(modseq);
    }

    /// Raises UIDNEXT past `uid` (recovery: a tombstone names a UID whose message record a
    /// crash lost, so the UID was given and must never be given again).
    pub(crate) fn raise_uid_next_past(&mut self, uid: Uid) {
        self.uid_next = self.uid_next.max(uid.get().saturating_add(1));
    }

    /// A modseq for the next change: one past the highest.
    pub(crate) fn next_modseq(&mut self) -> u64 {
        // Every modseq read from disk is at most MODSEQ_READ_MAX: 2^62 changes of room.
        assert!(self.highest_modseq < MODSEQ_MAX, "modseq room is never used up");
        self.highest_modseq += 1;
        self.highest_modseq
    }

    /// The slot of `uid`, expunged or not.
    pub(crate) fn find(&self, uid: Uid) -> Option<usize> {
        self.entries.binary_search_by_key(&uid, |e| e.uid).ok()
    }

    /// True when no more entries fit (`limits::MESSAGES_PER_MAILBOX_MAX`, or UIDs exhausted).
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= MESSAGES_PER_MAILBOX_MAX as usize || self.uid_next == u32::MAX
    }

    fn slot_offset(slot: usize) -> u64 {
        HEADER_BYTES as u64 + slot as u64 * RECORD_BYTES as u64
    }

    /// Appends an entry (one write). On error nothing changes in memory.
    pub(crate) fn append(&mut self, entry: Entry) -> Result<(), StorageError> {
        assert!(
            self.entries.last().is_none_or(|last| last.uid < entry.uid),
            "UIDs strictly increase"
        );
        assert!(entry.modseq <= self.highest_modseq, "modseq comes from next_modseq()");
        assert!(!self.is_full());
        let offset = Self::slot_offset(self.entries.len());
        self.write(&entry.encode(), offset)?;
        self.push_loaded(entry);
        self.journal.note(entry.modseq, entry.uid, self.entries.len());
        // Its spool record was just written (or checked, on catch-up) by this process.
        self.mark_verified(self.entries.len() - 1);
        Ok(())
    }

    /// Appends an entry whose spool record was just written, without adding the index file to
    /// the flush round (`DiskFile::write_all_at_unsynced`): recovery rebuilds the record from
    /// the spool if a crash loses it, since no header checkpoint passes it until a round that
    /// synced the file is durable (see [`UnsyncedRecords`]). On error nothing changes in
    /// memory.
    pub(crate) fn append_unsynced(&mut self, entry: Entry) -> Result<(), StorageError> {
        assert!(
            self.entries.last().is_none_or(|last| last.uid < entry.uid),
            "UIDs strictly increase"
        );
        assert!(entry.modseq <= self.highest_modseq, "modseq comes from next_modseq()");
        assert!(!self.is_full());
        let offset = Self::slot_offset(self.entries.len());
        self.file
            .write_all_at_unsynced(&entry.encode(), offset)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.unsynced.note_unsynced(entry.spool.pos());
        self.push_loaded(entry);
        self.journal.note(entry.modseq, entry.uid, self.entries.len());
        self.mark_verified(self.entries.len() - 1);
        Ok(())
    }

    /// Takes in the disk's epochs: forgets unsynced records a durable round has synced.
    pub(crate) fn settle_unsynced(&mut self, open: Epoch, durable: Epoch) {
        self.unsynced.settle(open, durable);
    }

    /// True when a header may claim `checkpoint` as it is: no record before it is unsynced.
    pub(crate) fn checkpoint_reachable(&self, checkpoint: SpoolPos) -> bool {
        self.unsynced.clamp(checkpoint) == checkpoint
    }

    /// A normal write: the file joins the open epoch's flush round, which then syncs every
    /// unsynced record written before it too.
    fn write(&mut self, buf: &[u8], offset: u64) -> Result<(), StorageError> {
        write_at(&self.file, &self.path, buf, offset)?;
        self.unsynced.note_synced_write();
        Ok(())
    }

    /// True when the spool record of `slot` was verified in this process.
    pub(crate) fn is_verified(&self, slot: usize) -> bool {
        self.verified.borrow().get(slot / 64).is_some_and(|word| word & (1 << (slot % 64)) != 0)
    }

    /// Remembers that the spool record of `slot` checked out.
    pub(crate) fn mark_verified(&self, slot: usize) {
        let mut verified = self.verified.borrow_mut();
        if verified.len() <= slot / 64 {
            verified.resize(slot / 64 + 1, 0);
        }
        verified[slot / 64] |= 1 << (slot % 64);
    }

    /// Rewrites the entry in `slot` (one write). On error nothing changes in memory.
    pub(crate) fn rewrite(&mut self, slot: usize, entry: Entry) -> Result<(), StorageError> {
        let old = self.entries[slot];
        assert_eq!(old.uid, entry.uid);
        assert_eq!(old.spool, entry.spool);
        assert!(entry.modseq >= old.modseq && entry.modseq <= self.highest_modseq);
        assert!(!old.expunged || entry.expunged, "an expunge is never undone in place");
        self.write(&entry.encode(), Self::slot_offset(slot))?;
        self.counts.remove(&old);
        self.counts.add(&entry);
        self.entries[slot] = entry;
        if entry.modseq != old.modseq {
            self.journal.note(entry.modseq, entry.uid, self.entries.len());
        }
        Ok(())
    }

    /// Drops entries from `slot` on (recovery: they point at spool that is not there).
    /// UIDNEXT and HIGHESTMODSEQ stay where they were: they never go backwards.
    pub(crate) fn truncate(&mut self, slot: usize) -> Result<(), StorageError> {
        set_len(&self.file, &self.path, Self::slot_offset(slot))?;
        self.unsynced.note_synced_write();
        for entry in self.entries.drain(slot..) {
            self.counts.remove(&entry);
        }
        self.journal.reset(self.highest_modseq);
        let mut verified = self.verified.borrow_mut();
        verified.truncate(slot.div_ceil(64));
        if !slot.is_multiple_of(64)
            && let Some(last) = verified.last_mut()
        {
            *last &= (1u64 << (slot % 64)) - 1;
        }
        Ok(())
    }

    /// The header of an index file, if it is there and intact. Reads only.
    pub(crate) fn read_header<D: Disk<File = F>>(
        disk: &D,
        path: &Path,
    ) -> Result<Option<IndexHeader>, StorageError> {
        if !disk.exists(path) {
            return Ok(None);
        }
        let file = disk.open(path, OpenMode::Existing).map_err(|e| StorageError::io(path, e))?;
        if file_len(&file, path)? < HEADER_BYTES as u64 {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_BYTES];
        read_at(&file, path, &mut header, 0)?;
        IndexHeader::decode(&header, path)
    }

    /// Rewrites the header with the current UIDNEXT, HIGHESTMODSEQ and count, and `checkpoint`
    /// lowered to the first record not known durable: should a crash lose that record, the
    /// header must still send recovery's spool scan to it.
    pub(crate) fn write_header(&mut self, checkpoint: SpoolPos) -> Result<(), StorageError> {
        let checkpoint = self.unsynced.clamp(checkpoint);
        let header = IndexHeader {
            uid_next: self.uid_next,
            highest_modseq: self.highest_modseq,
            checkpoint,
            messages: self.counts.messages,
            first_recent_uid: self.first_recent_uid,
            ..self.header
        };
        self.write(&header.encode(), 0)?;
        self.header = header;
        Ok(())
    }

    /// Marks the header sealed (one header write; see [`IndexHeader::sealed`]).
    pub(crate) fn seal(&mut self) -> Result<(), StorageError> {
        let header = IndexHeader { sealed: true, ..self.header };
        self.write(&header.encode(), 0)?;
        self.header = header;
        Ok(())
    }

    /// True when the header on disk lags what is in memory.
    pub(crate) fn header_stale(&self) -> bool {
        self.header.uid_next != self.uid_next
            || self.header.highest_modseq != self.highest_modseq
            || self.header.first_recent_uid != self.first_recent_uid
    }

    /// The first UID no session has been told of yet (see [`IndexHeader::first_recent_uid`]).
    pub(crate) fn first_recent_uid(&self) -> u32 {
        self.first_recent_uid.min(self.uid_next)
    }

    /// Claims the messages no session has been told of yet: returns the first such UID (every
    /// UID from it to UIDNEXT is the caller's `\Recent`), and from now on none is. In memory
    /// until the next header write (a checkpoint): a crash before it makes them recent again.
    pub(crate) fn claim_recent(&mut self) -> u32 {
        let first = self.first_recent_uid();
        self.first_recent_uid = self.uid_next;
        first
    }

    /// O(n) consistency checks (tests and debug builds).
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn check_invariants(&self, valid_keywords: u64) {
        let mut counts = Counts::default();
        for pair in self.entries.windows(2) {
            assert!(pair[0].uid < pair[1].uid, "UIDs strictly increase");
            assert!(pair[0].spool.pos() < pair[1].spool.pos(), "spool order follows UID order");
        }
        for entry in &self.entries {
            assert!(entry.uid.get() < self.uid_next);
            assert!(entry.modseq <= self.highest_modseq);
            assert_eq!(entry.flags.keywords.0 & !valid_keywords, 0, "keyword bits name keywords");
            counts.add(entry);
        }
        assert_eq!(counts, self.counts);
        self.journal.check(&self.entries);
        assert!(self.uid_next >= self.header.uid_next);
        assert!(self.highest_modseq >= self.header.highest_modseq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn entry(uid: u32) -> Entry {
        Entry {
            uid: Uid::new(uid).unwrap(),
            flags: Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(3) },
            expunged: false,
            modseq: 4,
            date: InternalDate { unix_seconds: -5, zone_minutes: 120 },
            size: 1234,
            spool: SpoolRef { segment: 1, offset: 64, len: 1288, crc: 0xdead_beef },
            save_date: 1_700_000_000,
        }
    }

    #[test]
    fn entry_round_trip_and_damage() {
        let bytes = entry(7).encode();
        assert_eq!(Entry::decode(&bytes), Some(entry(7)));
        for i in 0..RECORD_BYTES {
            let mut bad = bytes;
            bad[i] ^= 0x04;
            assert_eq!(Entry::decode(&bad), None, "flip at {i}");
        }
        assert_eq!(Entry::decode(&[0u8; RECORD_BYTES]), None);
    }

    #[test]
    fn header_round_trip() {
        let header = IndexHeader {
            mailbox: MailboxId(4),
            uid_validity: UidValidity(NonZeroU32::new(99).unwrap()),
            uid_next: 17,
            highest_modseq: 30,
            checkpoint: SpoolPos::new(2, 640),
            messages: 12,
            sealed: true,
            first_recent_uid: 15,
        };
        let bytes = header.encode();
        assert_eq!(IndexHeader::decode(&bytes, Path::new("x")).unwrap(), Some(header));
        let mut bad = bytes;
        bad[30] ^= 1;
        assert_eq!(IndexHeader::decode(&bad, Path::new("x")).unwrap(), None);
        // A flipped version bit is damage (the checksum fails), never a newer format.
        let mut flipped = bytes;
        flipped[8] ^= 2;
        assert_eq!(IndexHeader::decode(&flipped, Path::new("x")).unwrap(), None);
        // An intact header of a newer major is refused as newer.
        let mut newer = bytes;
        newer[8] = 2;
        let crc = crc32c::crc32c(&newer[..124]);
        put_u32(&mut newer, 124, crc);
        assert!(matches!(
            IndexHeader::decode(&newer, Path::new("x")),
            Err(StorageError::UnsupportedFormat { major: 2, supported: 1, .. })
        ));
    }

    #[test]
    fn names() {
        assert_eq!(index_path(Path::new("u"), MailboxId(12)), Path::new("u/mbox/00000012.idx"));
        assert_eq!(parse_index_name("00000012.idx"), Some(MailboxId(12)));
        assert_eq!(parse_index_name("00000012.idx.tmp"), None);
    }
}
