//! `seen.log`: the append-only log of per-reader `\Seen` sets on this store's mailboxes
//! (byte layout: `core/FORMAT.md`, "seen.log"). What the store API does with it is `seen.rs`.
//!
//! The log is the whole truth: it is replayed into memory (a set of UID ranges per mailbox and
//! reader) the first time anything asks for a reader's `\Seen`, not on every open, so users
//! whose folders nobody else reads pay nothing. Each record is one change to one reader's set
//! (ranges added, ranges removed, or the whole set replaced) with a sequence number that
//! strictly increases over the file; after recovery cuts a torn or damaged tail, the next
//! record takes a sequence number past any the cut bytes can hold, so a record of the cut tail
//! never replays after the new ones, whatever a later crash keeps of the cut.
//!
//! Sets belong to the mailbox's id and UIDVALIDITY: they follow RENAME (the id stays) and
//! vanish with DELETE (the id is never given again); sets of mailboxes that are gone are
//! dropped from memory when seen and from the file by compaction.
//!
//! Compaction is staged across flush rounds like `metadata.log`'s: a compacted copy (one
//! replace record per set) is written to `seen.log.tmp`, later records go to both files, and
//! once everything written to the copy is durable it is renamed over the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::codec::{
    Preamble, all_zero, file_len, get_u32, get_u64, nonce_seed, now_unix_seconds, put_i64, put_u32,
    put_u64, read_at, set_len, write_at,
};
use super::seen_ranges::{self, Ranges};
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::limits::{
    SEEN_LOG_BYTES_MAX, SEEN_LOG_COMPACT_MIN_BYTES, SEEN_RANGES_PER_READER_MAX,
    SEEN_READER_BYTES_MAX,
};
use crate::types::{Epoch, MailboxId};

/// File name inside the user directory.
pub(crate) const SEEN_FILE: &str = "seen.log";
/// The compacted copy on its way to replace the log.
pub(crate) const SEEN_TMP_FILE: &str = "seen.log.tmp";
/// Where a log with a damaged header is moved.
pub(crate) const SEEN_BAD_FILE: &str = "seen.log.bad";
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKV\r\n\x1a\n", major: 1, minor: 0 };
/// Header bytes.
pub(crate) const HEADER_BYTES: usize = 64;
/// Fixed part of a record, before the reader's name.
const RECORD_FIXED_BYTES: usize = 32;
/// One range: first and last UID.
const RANGE_BYTES: usize = 8;
// Pinned by core/FORMAT.md ("seen.log").
const _: () = assert!(HEADER_BYTES == 64);
const _: () = assert!(RECORD_FIXED_BYTES == 32);
const _: () = assert!(RANGE_BYTES == 8);
/// Every record takes at least this many bytes (a one-byte name padded to 8, no ranges): the
/// sequence-number jump after a cut tail relies on it.
const RECORD_BYTES_MIN: u64 = 40;

/// Whose sets: a mailbox, named by id and UIDVALIDITY (so a record of a mailbox whose creation
/// a crash lost never attaches to a later one given the same id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Owner {
    /// The mailbox's id.
    pub id: MailboxId,
    /// Its UIDVALIDITY (never zero).
    pub uid_validity: u32,
}

/// What a record does to its reader's set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The ranges join the set.
    Add = 1,
    /// The ranges leave the set.
    Remove = 2,
    /// The ranges are the whole set (none: the set is gone).
    Replace = 3,
}

/// One record: one change to one reader's set of one mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub sequence: u64,
    pub kind: Kind,
    pub owner: Owner,
    pub reader: String,
    pub ranges: Ranges,
}

impl Record {
    /// Where the ranges start: after the name, padded to 8.
    fn ranges_at(reader_len: usize) -> usize {
        RECORD_FIXED_BYTES + reader_len.next_multiple_of(8)
    }

    /// The record's bytes (a multiple of 8), checksummed with `nonce`.
    pub(crate) fn encode(&self, nonce: u64) -> Vec<u8> {
        assert!(!self.reader.is_empty() && self.reader.len() <= SEEN_READER_BYTES_MAX);
        assert!(self.ranges.len() <= SEEN_RANGES_PER_READER_MAX);
        assert!(self.kind == Kind::Replace || !self.ranges.is_empty());
        assert!(seen_ranges::is_canonical(&self.ranges));
        assert_ne!(self.owner.uid_validity, 0);
        let ranges_at = Self::ranges_at(self.reader.len());
        let size = ranges_at + RANGE_BYTES * self.ranges.len();
        let mut buf = vec![0u8; size];
        put_u32(&mut buf, 0, u32::try_from(size).expect("bounded by the limits"));
        put_u64(&mut buf, 8, self.sequence);
        buf[16] = self.kind as u8;
        buf[17] = u8::try_from(self.reader.len()).expect("bounded");
        put_u32(&mut buf, 20, self.owner.id.0);
        put_u32(&mut buf, 24, self.owner.uid_validity);
        put_u32(&mut buf, 28, u32::try_from(self.ranges.len()).expect("bounded"));
        buf[RECORD_FIXED_BYTES..RECORD_FIXED_BYTES + self.reader.len()]
            .copy_from_slice(self.reader.as_bytes());
        for (i, &(first, last)) in self.ranges.iter().enumerate() {
            put_u32(&mut buf, ranges_at + RANGE_BYTES * i, first);
            put_u32(&mut buf, ranges_at + RANGE_BYTES * i + 4, last);
        }
        let crc = crc32c::crc32c_append(nonce_seed(nonce), &buf[8..size]);
        put_u32(&mut buf, 4, crc);
        debug_assert_eq!(Record::decode(&buf, nonce).map(|(r, _)| r).as_ref(), Some(self));
        buf
    }

    /// Decodes the record at the start of `buf`; `None` if torn, damaged or not a record.
    /// Returns the record and its length.
    pub(crate) fn decode(buf: &[u8], nonce: u64) -> Option<(Record, usize)> {
        if buf.len() < RECORD_FIXED_BYTES {
            return None;
        }
        let size = usize::try_from(get_u32(buf, 0)).ok()?;
        if size < RECORD_BYTES_MIN as usize || size % 8 != 0 || buf.len() < size {
            return None;
        }
        if crc32c::crc32c_append(nonce_seed(nonce), &buf[8..size]) != get_u32(buf, 4) {
            return None;
        }
        let kind = match buf[16] {
            1 => Kind::Add,
            2 => Kind::Remove,
            3 => Kind::Replace,
            _ => return None,
        };
        let reader_len = usize::from(buf[17]);
        let uid_validity = get_u32(buf, 24);
        let count = usize::try_from(get_u32(buf, 28)).ok()?;
        if !all_zero(&buf[18..20])
            || reader_len == 0
            || reader_len > SEEN_READER_BYTES_MAX
            || uid_validity == 0
            || count > SEEN_RANGES_PER_READER_MAX
            || (count == 0 && kind != Kind::Replace)
        {
            return None;
        }
        let ranges_at = Self::ranges_at(reader_len);
        if size != ranges_at + RANGE_BYTES * count
            || !all_zero(&buf[RECORD_FIXED_BYTES + reader_len..ranges_at])
        {
            return None;
        }
        let name = &buf[RECORD_FIXED_BYTES..RECORD_FIXED_BYTES + reader_len];
        let reader = std::str::from_utf8(name).ok()?.to_owned();
        let ranges: Ranges = (0..count)
            .map(|i| {
                let at = ranges_at + RANGE_BYTES * i;
                (get_u32(buf, at), get_u32(buf, at + 4))
            })
            .collect();
        if !seen_ranges::is_canonical(&ranges) {
            return None;
        }
        let owner = Owner { id: MailboxId(get_u32(buf, 20)), uid_validity };
        Some((Record { sequence: get_u64(buf, 8), kind, owner, reader, ranges }, size))
    }
}

/// A log header with `nonce`.
fn encode_header(nonce: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    PREAMBLE.write(&mut header, HEADER_BYTES as u32);
    put_u64(&mut header, 16, nonce);
    put_i64(&mut header, 24, now_unix_seconds());
    let crc = crc32c::crc32c(&header[..60]);
    put_u32(&mut header, 60, crc);
    header
}

/// Every set, by mailbox, then by reader. No set is empty.
pub(crate) type Sets = BTreeMap<Owner, BTreeMap<String, Ranges>>;

/// Applies `record` to `sets`. Replay enforces no bound on sets (the writer does, before
/// writing): a bound lowered by a later version must not cut a log written under the old one.
/// Memory stays bounded by the file (`limits::SEEN_LOG_BYTES_MAX`): a record adds at most one
/// range per 8 bytes it takes.
fn apply(sets: &mut Sets, record: &Record) {
    let readers = sets.entry(record.owner).or_default();
    let set = match readers.get_mut(&record.reader) {
        Some(set) => set,
        None => readers.entry(record.reader.clone()).or_default(),
    };
    match record.kind {
        Kind::Add => seen_ranges::add_into(set, &record.ranges),
        Kind::Remove => seen_ranges::remove_from(set, &record.ranges),
        Kind::Replace => set.clone_from(&record.ranges),
    }
    if set.is_empty() {
        readers.remove(&record.reader);
    }
    if readers.is_empty() {
        sets.remove(&record.owner);
    }
}

/// A compacted copy being made durable.
struct Staged<F> {
    file: F,
    path: PathBuf,
    nonce: u64,
    end: u64,
    /// The newest epoch that wrote to the copy: it may replace the log once this is durable.
    epoch: Epoch,
}

/// The open log and the sets it replays to.
pub(crate) struct SeenLog<F> {
    file: F,
    path: PathBuf,
    nonce: u64,
    end: u64,
    next_sequence: u64,
    /// Every set (and, until dropped, sets of mailboxes that are gone).
    pub(crate) sets: Sets,
    staged: Option<Staged<F>>,
    next_compaction_check: u64,
}

/// What [`SeenLog::open`] found.
pub(crate) struct Opened<F> {
    /// The log, positioned after the last good record.
    pub log: SeenLog<F>,
    /// Bytes cut from a torn or damaged tail.
    pub truncated_bytes: u64,
    /// The header was damaged: the file was moved to `seen.log.bad` and this log is new.
    pub replaced: bool,
}

impl<F: DiskFile> SeenLog<F> {
    /// Opens (or creates) the log in `dir` and replays it; a torn or damaged tail is cut.
    ///
    /// # Errors
    /// The disk failed, or the log is from a newer skua.
    pub(crate) fn open<D: Disk<File = F>>(disk: &D, dir: &Path) -> Result<Opened<F>, StorageError> {
        let path = dir.join(SEEN_FILE);
        let staging = dir.join(SEEN_TMP_FILE);
        if disk.exists(&staging) {
            disk.remove_file(&staging).map_err(|e| StorageError::io(&staging, e))?;
        }
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        let len = file_len(&file, &path)?;
        if len < HEADER_BYTES as u64 {
            return Self::create(file, path, len, false);
        }
        let mut header = [0u8; HEADER_BYTES];
        read_at(&file, &path, &mut header, 0)?;
        let read_len = len.min(SEEN_LOG_BYTES_MAX);
        let header_size = PREAMBLE
            .check(&header, 60, &path)?
            .filter(|&size| size as usize >= HEADER_BYTES && u64::from(size) <= read_len);
        let Some(header_size) = header_size else {
            // A damaged header costs other users' \Seen marks on this store's folders, never
            // the store: the marks are not mail.
            tracing::error!(path = %path.display(), "seen log header damaged; starting anew");
            let aside = dir.join(SEEN_BAD_FILE);
            disk.rename(&path, &aside).map_err(|e| StorageError::io(&path, e))?;
            let file = disk
                .open(&path, OpenMode::CreateIfMissing)
                .map_err(|e| StorageError::io(&path, e))?;
            return Self::create(file, path, 0, true);
        };
        let nonce = get_u64(&header, 16);
        let mut body =
            vec![0u8; usize::try_from(read_len - u64::from(header_size)).expect("bounded")];
        read_at(&file, &path, &mut body, u64::from(header_size))?;
        let mut sets = Sets::new();
        let mut at = 0usize;
        let mut last_sequence = 0u64;
        while let Some((record, len)) = Record::decode(&body[at..], nonce) {
            if record.sequence <= last_sequence {
                break;
            }
            apply(&mut sets, &record);
            last_sequence = record.sequence;
            at += len;
        }
        let end = u64::from(header_size) + at as u64;
        let truncated_bytes = len - end;
        let mut next_sequence = last_sequence + 1;
        // Cuts a torn tail; and always marks the file dirty, so that the next flush round
        // makes durable what was just replayed (a crashed process may have left it in the
        // page cache only, never synced).
        set_len(&file, &path, end)?;
        if truncated_bytes > 0 {
            tracing::warn!(path = %path.display(), truncated_bytes, "cutting seen log tail");
            // The cut bytes hold at most one record per RECORD_BYTES_MIN, each numbered one
            // above the one before: start past all of them, so none can ever follow a new one.
            next_sequence += truncated_bytes / RECORD_BYTES_MIN + 1;
        }
        let log = SeenLog::new(file, path, nonce, end, next_sequence, sets);
        Ok(Opened { log, truncated_bytes, replaced: false })
    }

    fn create(file: F, path: PathBuf, len: u64, replaced: bool) -> Result<Opened<F>, StorageError> {
        let nonce = super::codec::new_nonce();
        set_len(&file, &path, 0)?;
        write_at(&file, &path, &encode_header(nonce), 0)?;
        let log = SeenLog::new(file, path, nonce, HEADER_BYTES as u64, 1, Sets::new());
        Ok(Opened { log, truncated_bytes: len, replaced })
    }

    fn new(
        file: F,
        path: PathBuf,
        nonce: u64,
        end: u64,
        next_sequence: u64,
        sets: Sets,
    ) -> SeenLog<F> {
        let next_compaction_check = first_check(end);
        SeenLog { file, path, nonce, end, next_sequence, sets, staged: None, next_compaction_check }
    }

    /// True when a record of `ranges` ranges for `reader` fits in the log.
    pub(crate) fn fits(&self, reader: &str, ranges: usize) -> bool {
        let len = Record::ranges_at(reader.len()) + RANGE_BYTES * ranges;
        self.end + len as u64 <= SEEN_LOG_BYTES_MAX
    }

    /// Writes one record and applies it. On error nothing is applied (the next record
    /// overwrites the same bytes).
    ///
    /// # Errors
    /// The disk failed.
    ///
    /// # Panics
    /// When the record does not fit ([`SeenLog::fits`] first).
    pub(crate) fn append(
        &mut self,
        kind: Kind,
        owner: Owner,
        reader: &str,
        ranges: Ranges,
        now: Epoch,
    ) -> Result<(), StorageError> {
        let sequence = self.next_sequence;
        let record = Record { sequence, kind, owner, reader: reader.to_owned(), ranges };
        let bytes = record.encode(self.nonce);
        assert!(self.end + bytes.len() as u64 <= SEEN_LOG_BYTES_MAX, "checked by fits()");
        write_at(&self.file, &self.path, &bytes, self.end)?;
        self.end += bytes.len() as u64;
        self.next_sequence += 1;
        self.staged_append(&record, now);
        apply(&mut self.sets, &record);
        Ok(())
    }

    /// Bytes the log holds (header included).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn len_bytes(&self) -> u64 {
        self.end
    }

    /// Writes `record` to the compacted copy too; a failure abandons the compaction.
    fn staged_append(&mut self, record: &Record, now: Epoch) {
        let Some(staged) = self.staged.as_mut() else {
            return;
        };
        let bytes = record.encode(staged.nonce);
        match staged.file.write_all_at(&bytes, staged.end) {
            Ok(()) => {
                staged.end += bytes.len() as u64;
                staged.epoch = now;
            }
            Err(error) => {
                tracing::warn!(%error, "abandoning seen log compaction");
                self.staged = None;
            }
        }
    }

    /// Finishes a compaction whose copy is durable (`durable`: the disk's durable epoch), then
    /// starts one when the log has grown past its next check and a compacted copy of it would
    /// be at most half its size. Sets of mailboxes `live` refuses are dropped first. A failure
    /// abandons the compaction (the log stays whole; the copy is removed on the next open).
    pub(crate) fn housekeeping<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        dir: &Path,
        durable: Epoch,
        live: impl Fn(Owner) -> bool,
    ) {
        self.sets.retain(|&owner, _| live(owner));
        if let Err(error) =
            self.finish_compaction(disk, durable).and_then(|()| self.compact(disk, dir))
        {
            tracing::warn!(%error, "seen log compaction failed");
            self.staged = None;
        }
    }

    fn finish_compaction<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        durable: Epoch,
    ) -> Result<(), StorageError> {
        if self.staged.as_ref().is_none_or(|s| s.epoch > durable) {
            return Ok(());
        }
        let staged = self.staged.take().expect("checked above");
        disk.rename(&staged.path, &self.path).map_err(|e| StorageError::io(&staged.path, e))?;
        tracing::info!(before = self.end, after = staged.end, "seen log compacted");
        self.file = staged.file;
        self.nonce = staged.nonce;
        self.end = staged.end;
        self.next_compaction_check = first_check(self.end);
        Ok(())
    }

    fn compact<D: Disk<File = F>>(&mut self, disk: &D, dir: &Path) -> Result<(), StorageError> {
        if self.staged.is_some() || self.end < self.next_compaction_check {
            return Ok(());
        }
        self.next_compaction_check = first_check(self.end);
        let nonce = super::codec::new_nonce();
        let mut bytes = encode_header(nonce).to_vec();
        let mut sequence = self.next_sequence;
        for (&owner, readers) in &self.sets {
            for (reader, ranges) in readers {
                let reader = reader.clone();
                let ranges = ranges.clone();
                let record = Record { sequence, kind: Kind::Replace, owner, reader, ranges };
                bytes.extend_from_slice(&record.encode(nonce));
                sequence += 1;
            }
        }
        if bytes.len() as u64 * 2 > self.end {
            return Ok(());
        }
        let path = dir.join(SEEN_TMP_FILE);
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        set_len(&file, &path, 0)?;
        write_at(&file, &path, &bytes, 0)?;
        // Records in both files keep increasing from here.
        self.next_sequence = sequence;
        let end = bytes.len() as u64;
        self.staged = Some(Staged { file, path, nonce, end, epoch: disk.epoch_open() });
        Ok(())
    }

    /// True while a compacted copy waits to replace the log (tests).
    #[cfg(test)]
    pub(crate) fn compacting(&self) -> bool {
        self.staged.is_some()
    }
}

/// The length at which a log of `end` bytes is next considered for compaction.
fn first_check(end: u64) -> u64 {
    end.saturating_mul(2).max(SEEN_LOG_COMPACT_MIN_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::sim::SimDisk;

    fn sample() -> Record {
        Record {
            sequence: 7,
            kind: Kind::Add,
            owner: Owner { id: MailboxId(3), uid_validity: 99 },
            reader: "alice@example.org".into(),
            ranges: vec![(1, 4), (9, 9), (11, u32::MAX)],
        }
    }

    #[test]
    fn records_round_trip() {
        let one = Record { reader: "a".into(), kind: Kind::Replace, ranges: vec![], ..sample() };
        let long = Record { reader: "é".repeat(127), kind: Kind::Remove, ..sample() };
        for record in [sample(), one, long] {
            let bytes = record.encode(42);
            assert_eq!(bytes.len() % 8, 0);
            assert!(bytes.len() as u64 >= RECORD_BYTES_MIN);
            let (decoded, len) = Record::decode(&bytes, 42).unwrap();
            assert_eq!(decoded, record);
            assert_eq!(len, bytes.len());
        }
    }

    #[test]
    fn damage_is_detected() {
        let bytes = sample().encode(42);
        assert!(Record::decode(&bytes, 43).is_none(), "wrong nonce");
        assert!(Record::decode(&bytes[..bytes.len() - 8], 42).is_none(), "torn");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Record::decode(&bad, 42).is_none(), "flip at {i}");
        }
    }

    #[test]
    fn records_breaking_the_layout_are_refused_even_with_a_good_checksum() {
        let reseal = |mut bytes: Vec<u8>| {
            let size = bytes.len();
            let crc = crc32c::crc32c_append(nonce_seed(42), &bytes[8..size]);
            put_u32(&mut bytes, 4, crc);
            bytes
        };
        let good = sample().encode(42);
        let mut adjacent = good.clone();
        let ranges_at = Record::ranges_at(sample().reader.len());
        put_u32(&mut adjacent, ranges_at + 4, 8); // (1, 8) then (9, 9): adjacent
        let mut zero_uid = good.clone();
        put_u32(&mut zero_uid, ranges_at, 0);
        let mut kind = good.clone();
        kind[16] = 4;
        let mut padding = good.clone();
        padding[RECORD_FIXED_BYTES + sample().reader.len()] = b'x';
        let empty_add = Record { ranges: vec![], kind: Kind::Replace, ..sample() }.encode(42);
        let mut empty_add = empty_add;
        empty_add[16] = Kind::Add as u8;
        for (what, bytes) in [
            ("adjacent", adjacent),
            ("zero uid", zero_uid),
            ("kind", kind),
            ("padding", padding),
            ("empty add", empty_add),
        ] {
            assert!(Record::decode(&reseal(bytes), 42).is_none(), "{what}");
        }
    }

    fn open(disk: &SimDisk) -> Opened<crate::disk::sim::SimFile> {
        SeenLog::open(disk, Path::new("u")).unwrap()
    }

    const OWNER: Owner = Owner { id: MailboxId(1), uid_validity: 5 };

    #[test]
    fn a_record_cut_from_the_tail_never_replays_after_new_ones() {
        let disk = SimDisk::new();
        disk.create_dir_all(Path::new("u")).unwrap();
        let mut log = open(&disk).log;
        log.append(Kind::Add, OWNER, "bob", vec![(1, 1)], Epoch(0)).unwrap();
        let cut_at = log.end;
        log.append(Kind::Add, OWNER, "bob", vec![(3, 3)], Epoch(0)).unwrap();
        let b_end = log.end;
        log.append(Kind::Add, OWNER, "bob", vec![(5, 5)], Epoch(0)).unwrap();
        // Damage the second: the replay stops there, and the third (intact) is cut with it.
        let path = Path::new("u").join(SEEN_FILE);
        write_at(&log.file, &path, &[0xff], cut_at + 9).unwrap();
        let opened = open(&disk);
        assert_eq!(opened.truncated_bytes, log.end - cut_at);
        let mut log = opened.log;
        assert_eq!(log.sets[&OWNER]["bob"], vec![(1, 1)]);
        // A new record of the same length lands where the second was; suppose the cut was
        // lost so the old third still follows it: it must not replay after the new record.
        log.append(Kind::Add, OWNER, "bob", vec![(7, 7)], Epoch(0)).unwrap();
        assert_eq!(log.end, b_end, "same length");
        let stale = Record {
            sequence: 3,
            kind: Kind::Add,
            owner: OWNER,
            reader: "bob".into(),
            ranges: vec![(5, 5)],
        };
        let stale = stale.encode(log.nonce);
        write_at(&log.file, &path, &stale, b_end).unwrap();
        let opened = open(&disk);
        assert_eq!(opened.log.sets[&OWNER]["bob"], vec![(1, 1), (7, 7)]);
        assert_eq!(opened.truncated_bytes, stale.len() as u64, "the stale record is cut again");
    }

    #[test]
    fn compaction_replaces_the_log_once_durable() {
        let disk = SimDisk::new();
        disk.create_dir_all(Path::new("u")).unwrap();
        let mut log = open(&disk).log;
        let mut round = 0u32;
        while log.len_bytes() < SEEN_LOG_COMPACT_MIN_BYTES {
            let uid = round % 50 + 1;
            let kind = if round % 3 == 2 { Kind::Remove } else { Kind::Add };
            let reader = format!("reader{}", round % 4);
            log.append(kind, OWNER, &reader, vec![(uid, uid)], disk.epoch_open()).unwrap();
            round += 1;
        }
        let before = log.len_bytes();
        log.housekeeping(&disk, Path::new("u"), disk.epoch_durable(), |_| true);
        assert!(log.compacting(), "compaction started");
        log.append(Kind::Add, OWNER, "late", vec![(2, 3)], disk.epoch_open()).unwrap();
        // Not durable yet: the log stays.
        log.housekeeping(&disk, Path::new("u"), disk.epoch_durable(), |_| true);
        assert!(log.compacting());
        let job = crate::disk::Disk::flush_begin(&disk).unwrap();
        let epoch = crate::disk::Flush::epoch(&job);
        crate::disk::Flush::run(job).unwrap();
        disk.flush_end(epoch);
        log.housekeeping(&disk, Path::new("u"), disk.epoch_durable(), |_| true);
        assert!(!log.compacting());
        assert!(log.len_bytes() * 10 < before, "{} vs {before}", log.len_bytes());
        let sets = log.sets.clone();
        let reopened = open(&disk).log;
        assert_eq!(reopened.sets, sets);
        assert_eq!(reopened.sets[&OWNER].len(), 5);
        // Sets of mailboxes that are gone leave memory, and the next compaction's copy.
        let mut log = reopened;
        log.housekeeping(&disk, Path::new("u"), disk.epoch_durable(), |_| false);
        assert!(log.sets.is_empty());
    }
}
