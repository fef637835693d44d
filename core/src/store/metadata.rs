//! `metadata.log`: the append-only log of a user's METADATA entries (RFC 5464), server entries
//! and per-mailbox entries (byte layout: `core/FORMAT.md`, "metadata.log").
//!
//! The log is the whole truth: it is replayed into memory (a map per owner) the first time a
//! session asks for metadata, not on every open, so users who never use METADATA pay nothing.
//! Each record is one SETMETADATA (its changes replay all or none) with a sequence number that
//! strictly increases over the file. When recovery cuts a torn or damaged tail, the next record
//! takes a sequence number past any the cut bytes can hold, so a record of the cut tail can never
//! replay after the new ones, whatever a later crash keeps of the cut.
//!
//! Mailbox entries belong to the mailbox's id and UIDVALIDITY: they follow RENAME (the id
//! stays) and vanish with DELETE (the id is never given again); entries of mailboxes that are
//! gone are dropped from memory when seen and from the file by compaction.
//!
//! Compaction is staged across flush rounds like `mailboxes.log`'s: a compacted copy is written
//! to `metadata.log.tmp`, later records go to both files, and once everything written to the
//! copy is durable it is renamed over the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::codec::{
    Preamble, all_zero, file_len, get_u16, get_u32, get_u64, nonce_seed, now_unix_seconds, pad8,
    put_i64, put_u16, put_u32, put_u64, read_at, set_len, write_at,
};
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::limits::{
    METADATA_ENTRIES_PER_MAILBOX_MAX, METADATA_ENTRY_NAME_BYTES_MAX, METADATA_LOG_BYTES_MAX,
    METADATA_LOG_COMPACT_MIN_BYTES, METADATA_VALUE_BYTES_MAX,
};
use crate::types::{Epoch, MailboxId};

/// File name inside the user directory.
pub(crate) const METADATA_FILE: &str = "metadata.log";
/// The compacted copy on its way to replace the log.
pub(crate) const METADATA_TMP_FILE: &str = "metadata.log.tmp";
/// Where a log with a damaged header is moved.
pub(crate) const METADATA_BAD_FILE: &str = "metadata.log.bad";
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKM\r\n\x1a\n", major: 1, minor: 0 };
/// Header bytes.
pub(crate) const HEADER_BYTES: usize = 64;
/// Fixed part of a record, before its changes.
const RECORD_FIXED_BYTES: usize = 32;
/// Fixed part of one change, before its name and value.
const CHANGE_FIXED_BYTES: usize = 8;
// Pinned by core/FORMAT.md ("metadata.log").
const _: () = assert!(HEADER_BYTES == 64);
const _: () = assert!(RECORD_FIXED_BYTES == 32);
const _: () = assert!(CHANGE_FIXED_BYTES == 8);
/// Every record takes at least this many bytes (a change with a one-byte name, padded): the
/// sequence-number jump after a cut tail relies on it.
const RECORD_BYTES_MIN: u64 = 48;
const _: () = assert!(RECORD_BYTES_MIN <= (RECORD_FIXED_BYTES + CHANGE_FIXED_BYTES + 8) as u64);

/// Whose entry: the user's server entries, or one mailbox's (named by id and UIDVALIDITY, so a
/// record of a mailbox whose creation a crash lost never attaches to a later one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Owner {
    /// Server entries (mailbox name `""`).
    Server,
    /// A mailbox's entries.
    Mailbox {
        /// The mailbox's id.
        id: MailboxId,
        /// Its UIDVALIDITY.
        uid_validity: u32,
    },
}

/// One entry's new value (`None`: removed).
pub(crate) type Change = (String, Option<Vec<u8>>);

/// One record: the changes of one SETMETADATA to one owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub sequence: u64,
    pub owner: Owner,
    pub changes: Vec<Change>,
}

impl Record {
    /// The record's bytes, padded to 8, checksummed with `nonce`.
    pub(crate) fn encode(&self, nonce: u64) -> Vec<u8> {
        assert!(!self.changes.is_empty() && self.changes.len() <= METADATA_ENTRIES_PER_MAILBOX_MAX);
        let mut buf = vec![0u8; RECORD_FIXED_BYTES];
        put_u64(&mut buf, 8, self.sequence);
        let (scope, id, uid_validity) = match self.owner {
            Owner::Server => (0u8, 0, 0),
            Owner::Mailbox { id, uid_validity } => (1u8, id.0, uid_validity),
        };
        buf[16] = scope;
        put_u32(&mut buf, 20, id);
        put_u32(&mut buf, 24, uid_validity);
        put_u32(&mut buf, 28, u32::try_from(self.changes.len()).expect("bounded"));
        for (name, value) in &self.changes {
            assert!(!name.is_empty() && name.len() <= METADATA_ENTRY_NAME_BYTES_MAX);
            let mut fixed = [0u8; CHANGE_FIXED_BYTES];
            put_u16(&mut fixed, 0, u16::try_from(name.len()).expect("bounded"));
            fixed[2] = if value.is_some() { 1 } else { 2 };
            let value = value.as_deref().unwrap_or_default();
            assert!(value.len() <= METADATA_VALUE_BYTES_MAX as usize);
            put_u32(&mut fixed, 4, u32::try_from(value.len()).expect("bounded"));
            buf.extend_from_slice(&fixed);
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(value);
        }
        let size = buf.len();
        put_u32(&mut buf, 0, u32::try_from(size).expect("bounded by the limits"));
        buf.resize(usize::try_from(pad8(size as u64)).expect("small"), 0);
        let crc = crc32c::crc32c_append(nonce_seed(nonce), &buf[8..size]);
        put_u32(&mut buf, 4, crc);
        buf
    }

    /// Decodes the record at the start of `buf`; `None` if torn, damaged or not a record.
    /// Returns the record and its padded length.
    pub(crate) fn decode(buf: &[u8], nonce: u64) -> Option<(Record, usize)> {
        if buf.len() < RECORD_FIXED_BYTES {
            return None;
        }
        let size = usize::try_from(get_u32(buf, 0)).ok()?;
        if size < RECORD_FIXED_BYTES + CHANGE_FIXED_BYTES {
            return None;
        }
        let padded = usize::try_from(pad8(size as u64)).ok()?;
        if buf.len() < padded || !all_zero(&buf[size..padded]) {
            return None;
        }
        if crc32c::crc32c_append(nonce_seed(nonce), &buf[8..size]) != get_u32(buf, 4) {
            return None;
        }
        if !all_zero(&buf[17..20]) {
            return None;
        }
        let (id, uid_validity) = (get_u32(buf, 20), get_u32(buf, 24));
        let owner = match buf[16] {
            0 if id == 0 && uid_validity == 0 => Owner::Server,
            1 if uid_validity != 0 => Owner::Mailbox { id: MailboxId(id), uid_validity },
            _ => return None,
        };
        let count = usize::try_from(get_u32(buf, 28)).ok()?;
        if count == 0 || count > METADATA_ENTRIES_PER_MAILBOX_MAX {
            return None;
        }
        let mut changes = Vec::with_capacity(count);
        let mut at = RECORD_FIXED_BYTES;
        for _ in 0..count {
            let fixed = buf.get(at..at + CHANGE_FIXED_BYTES)?;
            let name_len = usize::from(get_u16(fixed, 0));
            let value_len = get_u32(fixed, 4);
            let set = match fixed[2] {
                1 => true,
                2 if value_len == 0 => false,
                _ => return None,
            };
            if fixed[3] != 0
                || name_len == 0
                || name_len > METADATA_ENTRY_NAME_BYTES_MAX
                || value_len > METADATA_VALUE_BYTES_MAX
            {
                return None;
            }
            let name_at = at + CHANGE_FIXED_BYTES;
            let value_at = name_at + name_len;
            let end = value_at + usize::try_from(value_len).ok()?;
            if end > size {
                return None;
            }
            let name = std::str::from_utf8(&buf[name_at..value_at]).ok()?.to_owned();
            changes.push((name, set.then(|| buf[value_at..end].to_vec())));
            at = end;
        }
        if at != size {
            return None;
        }
        let sequence = get_u64(buf, 8);
        Some((Record { sequence, owner, changes }, padded))
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

/// Every entry, by owner, then by name.
pub(crate) type Entries = BTreeMap<Owner, BTreeMap<String, Vec<u8>>>;

/// Applies one record's changes to `entries`.
fn apply(entries: &mut Entries, owner: Owner, changes: &[Change]) {
    let map = entries.entry(owner).or_default();
    for (name, value) in changes {
        match value {
            Some(value) => {
                map.insert(name.clone(), value.clone());
            }
            None => {
                map.remove(name);
            }
        }
    }
    if map.is_empty() {
        entries.remove(&owner);
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

/// The open log and the entries it replays to.
pub(crate) struct MetadataLog<F> {
    file: F,
    path: PathBuf,
    nonce: u64,
    end: u64,
    next_sequence: u64,
    /// Every live entry (and, until dropped, entries of mailboxes that are gone).
    pub(crate) entries: Entries,
    staged: Option<Staged<F>>,
    next_compaction_check: u64,
}

/// What [`MetadataLog::open`] found.
pub(crate) struct Opened<F> {
    /// The log, positioned after the last good record.
    pub log: MetadataLog<F>,
    /// Bytes cut from a torn or damaged tail.
    pub truncated_bytes: u64,
    /// The header was damaged: the file was moved to `metadata.log.bad` and this log is new.
    pub replaced: bool,
}

impl<F: DiskFile> MetadataLog<F> {
    /// Opens (or creates) the log in `dir` and replays it; a torn or damaged tail is cut.
    ///
    /// # Errors
    /// The disk failed, or the log is from a newer skua.
    pub(crate) fn open<D: Disk<File = F>>(disk: &D, dir: &Path) -> Result<Opened<F>, StorageError> {
        let path = dir.join(METADATA_FILE);
        let staging = dir.join(METADATA_TMP_FILE);
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
        let read_len = len.min(METADATA_LOG_BYTES_MAX);
        let header_size = PREAMBLE
            .check(&header, 60, &path)?
            .filter(|&size| size as usize >= HEADER_BYTES && u64::from(size) <= read_len);
        let Some(header_size) = header_size else {
            // Metadata is not mail: a damaged header costs the entries, never the store.
            tracing::error!(path = %path.display(), "metadata log header damaged; starting anew");
            let aside = dir.join(METADATA_BAD_FILE);
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
        let mut entries = Entries::new();
        let mut at = 0usize;
        let mut last_sequence = 0u64;
        while let Some((record, padded)) = Record::decode(&body[at..], nonce) {
            if record.sequence <= last_sequence {
                break;
            }
            last_sequence = record.sequence;
            apply(&mut entries, record.owner, &record.changes);
            at += padded;
        }
        let end = u64::from(header_size) + at as u64;
        let truncated_bytes = len - end;
        let mut next_sequence = last_sequence + 1;
        // Cuts a torn tail; and always marks the file dirty, so that the next flush round
        // makes durable what was just replayed (a crashed process may have left it in the
        // page cache only, never synced).
        set_len(&file, &path, end)?;
        if truncated_bytes > 0 {
            tracing::warn!(path = %path.display(), truncated_bytes, "cutting metadata log tail");
            // The cut bytes hold at most one record per RECORD_BYTES_MIN, each numbered one
            // above the one before: start past all of them, so none can ever follow a new one.
            next_sequence += truncated_bytes / RECORD_BYTES_MIN + 1;
        }
        let log = MetadataLog::new(file, path, nonce, end, next_sequence, entries);
        Ok(Opened { log, truncated_bytes, replaced: false })
    }

    fn create(file: F, path: PathBuf, len: u64, replaced: bool) -> Result<Opened<F>, StorageError> {
        let nonce = super::codec::new_nonce();
        set_len(&file, &path, 0)?;
        write_at(&file, &path, &encode_header(nonce), 0)?;
        let log = MetadataLog::new(file, path, nonce, HEADER_BYTES as u64, 1, Entries::new());
        Ok(Opened { log, truncated_bytes: len, replaced })
    }

    fn new(
        file: F,
        path: PathBuf,
        nonce: u64,
        end: u64,
        next_sequence: u64,
        entries: Entries,
    ) -> MetadataLog<F> {
        let next_compaction_check = first_check(end);
        MetadataLog {
            file,
            path,
            nonce,
            end,
            next_sequence,
            entries,
            staged: None,
            next_compaction_check,
        }
    }

    /// Writes one record of `changes` to `owner` and applies it. On error nothing is applied
    /// (the next record overwrites the same bytes).
    ///
    /// # Errors
    /// The disk failed, or the log is full (`limits::METADATA_LOG_BYTES_MAX`).
    pub(crate) fn append(
        &mut self,
        owner: Owner,
        changes: Vec<Change>,
        now: Epoch,
    ) -> Result<(), StorageError> {
        let record = Record { sequence: self.next_sequence, owner, changes };
        let bytes = record.encode(self.nonce);
        if self.end + bytes.len() as u64 > METADATA_LOG_BYTES_MAX {
            return Err(StorageError::Corrupt {
                what: "metadata log full (limits::METADATA_LOG_BYTES_MAX)",
                path: self.path.clone(),
                offset: self.end,
            });
        }
        write_at(&self.file, &self.path, &bytes, self.end)?;
        self.end += bytes.len() as u64;
        self.next_sequence += 1;
        self.staged_append(&record, now);
        apply(&mut self.entries, owner, &record.changes);
        Ok(())
    }

    /// Bytes the log holds (header included).
    #[cfg(test)]
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
                tracing::warn!(%error, "abandoning metadata log compaction");
                self.staged = None;
            }
        }
    }

    /// Finishes a compaction whose copy is durable (`durable`: the disk's durable epoch), then
    /// starts one when the log has grown past its next check and a compacted copy of it would
    /// be at most half its size. Entries of owners `live` refuses are dropped first. A failure
    /// abandons the compaction (the log stays whole; the copy is removed on the next open).
    pub(crate) fn housekeeping<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        dir: &Path,
        durable: Epoch,
        live: impl Fn(Owner) -> bool,
    ) {
        self.entries.retain(|&owner, _| live(owner));
        if let Err(error) =
            self.finish_compaction(disk, durable).and_then(|()| self.compact(disk, dir))
        {
            tracing::warn!(%error, "metadata log compaction failed");
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
        tracing::info!(before = self.end, after = staged.end, "metadata log compacted");
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
        for (&owner, map) in &self.entries {
            let changes = map.iter().map(|(n, v)| (n.clone(), Some(v.clone()))).collect();
            bytes.extend_from_slice(&Record { sequence, owner, changes }.encode(nonce));
            sequence += 1;
        }
        if bytes.len() as u64 * 2 > self.end {
            return Ok(());
        }
        let path = dir.join(METADATA_TMP_FILE);
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
}

/// The length at which a log of `end` bytes is next considered for compaction.
fn first_check(end: u64) -> u64 {
    end.saturating_mul(2).max(METADATA_LOG_COMPACT_MIN_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::sim::SimDisk;

    fn sample() -> Record {
        Record {
            sequence: 7,
            owner: Owner::Mailbox { id: MailboxId(3), uid_validity: 99 },
            changes: vec![
                ("/private/comment".into(), Some(b"hello\r\n\0".to_vec())),
                ("/shared/comment".into(), None),
            ],
        }
    }

    #[test]
    fn records_round_trip() {
        for record in [
            sample(),
            Record {
                sequence: 1,
                owner: Owner::Server,
                changes: vec![("/a".into(), Some(vec![]))],
            },
        ] {
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

    fn open(disk: &SimDisk) -> Opened<crate::disk::sim::SimFile> {
        MetadataLog::open(disk, Path::new("u")).unwrap()
    }

    #[test]
    fn a_record_cut_from_the_tail_never_replays_after_new_ones() {
        let disk = SimDisk::new();
        disk.create_dir_all(Path::new("u")).unwrap();
        let mut log = open(&disk).log;
        let set = |v: &str| vec![("/private/x".to_owned(), Some(v.as_bytes().to_vec()))];
        log.append(Owner::Server, set("a"), Epoch(0)).unwrap();
        let cut_at = log.end;
        log.append(Owner::Server, set("b"), Epoch(0)).unwrap();
        let b_end = log.end;
        log.append(Owner::Server, set("c"), Epoch(0)).unwrap();
        // Damage "b": the replay stops there, and "c" (intact) is cut with it.
        let path = Path::new("u").join(METADATA_FILE);
        write_at(&log.file, &path, &[0xff], cut_at + 9).unwrap();
        let opened = open(&disk);
        assert_eq!(opened.truncated_bytes, log.end - cut_at);
        let mut log = opened.log;
        assert_eq!(log.entries[&Owner::Server]["/private/x"], b"a");
        // A new record of "b"'s length lands where "b" was; suppose the cut itself was lost
        // so "c" still follows it: "c" must not replay after the new record.
        log.append(Owner::Server, set("d"), Epoch(0)).unwrap();
        assert_eq!(log.end, b_end, "same length as b");
        let c = Record { sequence: 3, owner: Owner::Server, changes: set("c") }.encode(log.nonce);
        write_at(&log.file, &path, &c, b_end).unwrap();
        let opened = open(&disk);
        assert_eq!(opened.log.entries[&Owner::Server]["/private/x"], b"d");
        assert_eq!(opened.truncated_bytes, c.len() as u64, "the stale record is cut again");
    }

    #[test]
    fn compaction_replaces_the_log_once_durable() {
        let disk = SimDisk::new();
        disk.create_dir_all(Path::new("u")).unwrap();
        let mut log = open(&disk).log;
        let value = vec![b'v'; 1000];
        let mut round = 0u32;
        while log.len_bytes() < METADATA_LOG_COMPACT_MIN_BYTES {
            let changes = vec![(format!("/private/n{}", round % 4), Some(value.clone()))];
            log.append(Owner::Server, changes, disk.epoch_open()).unwrap();
            round += 1;
        }
        let before = log.len_bytes();
        log.housekeeping(&disk, Path::new("u"), disk.epoch_durable(), |_| true);
        assert!(log.staged.is_some(), "compaction started");
        log.append(
            Owner::Server,
            vec![("/private/late".into(), Some(b"1".to_vec()))],
            disk.epoch_open(),
        )
        .unwrap();
        // Not durable yet: the log stays.
        log.housekeeping(&disk, Path::new("u"), disk.epoch_durable(), |_| true);
        assert!(log.staged.is_some());
        let job = crate::disk::Disk::flush_begin(&disk).unwrap();
        let epoch = crate::disk::Flush::epoch(&job);
        crate::disk::Flush::run(job).unwrap();
        disk.flush_end(epoch);
        log.housekeeping(&disk, Path::new("u"), disk.epoch_durable(), |_| true);
        assert!(log.staged.is_none());
        assert!(log.len_bytes() * 10 < before, "{} vs {before}", log.len_bytes());
        let entries = log.entries.clone();
        let reopened = open(&disk).log;
        assert_eq!(reopened.entries, entries);
        assert_eq!(reopened.entries[&Owner::Server].len(), 5);
    }
}
