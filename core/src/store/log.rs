//! `mailboxes.log`: the append-only log of mailbox creation, renames, deletion, subscriptions
//! and keyword tables (byte layout: `core/FORMAT.md`, "mailboxes.log").
//!
//! Opening reads the whole log (bounded by `limits::MAILBOX_LOG_BYTES_MAX`), hands each decoded
//! replay unit (one record, or a batch of records written as one change: `log_batch.rs`) to a
//! caller-supplied check (the replay rules live in `catalog.rs`), and truncates the file at the
//! first unit that is torn, fails its checksum or breaks a rule.

use std::path::{Path, PathBuf};

use super::codec::{
    Preamble, all_zero, file_len, get_u16, get_u32, get_u64, nonce_seed, now_unix_seconds, pad8,
    put_i64, put_u16, put_u32, put_u64, read_at, set_len, write_at,
};
use super::log_batch::{decode_unit, encode_unit};
use crate::disk::{Disk, OpenMode};
use crate::error::StorageError;
use crate::limits::{MAILBOX_LOG_BYTES_MAX, MAILBOX_NAME_BYTES_MAX};
use crate::types::{MailboxId, UidValidity};

use super::special_use::SpecialUse;
use crate::acl::{Identifier, Rights};

/// File name inside the user directory.
pub(crate) const LOG_FILE: &str = "mailboxes.log";
/// Where a log with a damaged header is moved.
pub(crate) const BAD_LOG_FILE: &str = "mailboxes.log.bad";
/// Major 2 added batch records (`log_batch.rs`), major 3 special-use and provisioned records,
/// major 4 ACL records, major 5 grant records: majors, because an older reader takes a record kind it does not know for a torn tail and
/// cuts it and everything after it. Older logs are upgraded on open.
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKL\r\n\x1a\n", major: 5, minor: 0 };
/// Header bytes.
pub(crate) const HEADER_BYTES: usize = 64;
/// Fixed part of a record before the name.
pub(super) const RECORD_FIXED_BYTES: usize = 24;
const _: () = assert!(RECORD_FIXED_BYTES + MAILBOX_NAME_BYTES_MAX <= u32::MAX as usize);
// Pinned by core/FORMAT.md ("mailboxes.log").
const _: () = assert!(HEADER_BYTES == 64);
const _: () = assert!(RECORD_FIXED_BYTES == 24);

/// One change to the mailbox list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LogRecord {
    /// A new mailbox.
    Create { id: MailboxId, uid_validity: UidValidity, name: String },
    /// A mailbox's new name.
    Rename { id: MailboxId, name: String },
    /// A mailbox deleted.
    Delete { id: MailboxId },
    /// A name subscribed.
    Subscribe { name: String },
    /// A name unsubscribed.
    Unsubscribe { name: String },
    /// Keyword `bit` of mailbox `id` is `name`.
    Keyword { id: MailboxId, bit: u32, name: String },
    /// New mailboxes get an id of at least `next_id` and a UIDVALIDITY above
    /// `last_uid_validity` (ends a compacted log, which no longer holds deleted mailboxes).
    Floor { next_id: u32, last_uid_validity: u32 },
    /// Keyword `bit` of mailbox `id` is void: records may carry it from a keyword definition a
    /// crash lost, so it is never given to a keyword again (written by recovery).
    VoidKeyword { id: MailboxId, bit: u32 },
    /// Mailbox `id`'s SPECIAL-USE attributes are now `uses` (replacing the earlier set).
    SpecialUse { id: MailboxId, uses: SpecialUse },
    /// The user's default folders were made (first login, `UserStore::provision`): they are
    /// never made again, so a folder the user deleted stays deleted.
    Provisioned,
    /// Mailbox `id`'s ACL entry for `identifier` now grants (or, negative, takes away)
    /// exactly `rights`; empty rights remove the entry (RFC 4314, `core/src/acl.rs`).
    Acl { id: MailboxId, identifier: Identifier, rights: Rights },
    /// User `owner` (a canonical user name, lowercase) gave this store's user rights on one
    /// of their mailboxes: the grant index LIST follows to list other users' mailboxes
    /// (`store/grants.rs`). Never removed but by compaction of a forgotten grant.
    Granted { owner: String },
}

impl LogRecord {
    fn parts(&self) -> (u8, u32, u32, std::borrow::Cow<'_, str>) {
        let (kind, id, value, name): (u8, u32, u32, &str) = match self {
            LogRecord::Create { id, uid_validity, name } => (1, id.0, uid_validity.get(), name),
            LogRecord::Rename { id, name } => (2, id.0, 0, name),
            LogRecord::Delete { id } => (3, id.0, 0, ""),
            LogRecord::Subscribe { name } => (4, 0, 0, name),
            LogRecord::Unsubscribe { name } => (5, 0, 0, name),
            LogRecord::Keyword { id, bit, name } => (6, id.0, *bit, name),
            LogRecord::Floor { next_id, last_uid_validity } => {
                (7, *next_id, *last_uid_validity, "")
            }
            LogRecord::VoidKeyword { id, bit } => (8, id.0, *bit, ""),
            LogRecord::SpecialUse { id, uses } => (10, id.0, uses.bits(), ""),
            LogRecord::Provisioned => (11, 0, 0, ""),
            LogRecord::Acl { id, identifier, rights } => {
                return (12, id.0, rights.bits(), identifier.to_string().into());
            }
            LogRecord::Granted { owner } => (13, 0, 0, owner),
        };
        (kind, id, value, name.into())
    }

    /// The record's bytes, padded, checksummed with `nonce`.
    pub(crate) fn encode(&self, nonce: u64) -> Vec<u8> {
        let (kind, id, value, name) = self.parts();
        assert!(name.len() <= MAILBOX_NAME_BYTES_MAX);
        let size = RECORD_FIXED_BYTES + name.len();
        let mut buf = vec![0u8; usize::try_from(pad8(size as u64)).expect("small")];
        put_u32(&mut buf, 0, u32::try_from(size).expect("bounded"));
        buf[8] = kind;
        put_u32(&mut buf, 12, id);
        put_u32(&mut buf, 16, value);
        put_u16(&mut buf, 20, u16::try_from(name.len()).expect("bounded"));
        buf[RECORD_FIXED_BYTES..size].copy_from_slice(name.as_bytes());
        let crc = crc32c::crc32c_append(nonce_seed(nonce), &buf[8..size]);
        put_u32(&mut buf, 4, crc);
        buf
    }

    /// Decodes the record at the start of `buf`; `None` if torn, corrupt or unknown. Returns the
    /// record and its padded length.
    pub(crate) fn decode(buf: &[u8], nonce: u64) -> Option<(LogRecord, usize)> {
        if buf.len() < RECORD_FIXED_BYTES {
            return None;
        }
        let size = usize::try_from(get_u32(buf, 0)).ok()?;
        let name_len = usize::from(get_u16(buf, 20));
        if size != RECORD_FIXED_BYTES + name_len || name_len > MAILBOX_NAME_BYTES_MAX {
            return None;
        }
        let padded = usize::try_from(pad8(size as u64)).ok()?;
        if buf.len() < padded || !all_zero(&buf[size..padded]) {
            return None;
        }
        if crc32c::crc32c_append(nonce_seed(nonce), &buf[8..size]) != get_u32(buf, 4) {
            return None;
        }
        if !all_zero(&buf[9..12]) || !all_zero(&buf[22..24]) {
            return None;
        }
        let id = MailboxId(get_u32(buf, 12));
        let value = get_u32(buf, 16);
        let name = std::str::from_utf8(&buf[RECORD_FIXED_BYTES..size]).ok()?.to_owned();
        let record = match buf[8] {
            1 => LogRecord::Create {
                id,
                uid_validity: UidValidity(std::num::NonZeroU32::new(value)?),
                name,
            },
            2 => LogRecord::Rename { id, name },
            3 if name.is_empty() => LogRecord::Delete { id },
            4 => LogRecord::Subscribe { name },
            5 => LogRecord::Unsubscribe { name },
            6 => LogRecord::Keyword { id, bit: value, name },
            7 if name.is_empty() => LogRecord::Floor { next_id: id.0, last_uid_validity: value },
            8 if name.is_empty() => LogRecord::VoidKeyword { id, bit: value },
            10 if name.is_empty() => {
                LogRecord::SpecialUse { id, uses: SpecialUse::from_bits(value)? }
            }
            11 if name.is_empty() && id.0 == 0 && value == 0 => LogRecord::Provisioned,
            // Only the canonical spelling (lowercase) is ever written.
            12 => LogRecord::Acl {
                id,
                identifier: Identifier::parse(&name).ok().filter(|i| i.to_string() == name)?,
                rights: Rights::from_bits(value)?,
            },
            13 if id.0 == 0 && value == 0 && super::grants::valid_owner(&name) => {
                LogRecord::Granted { owner: name }
            }
            _ => return None,
        };
        Some((record, padded))
    }
}

/// A log header with `nonce`.
pub(crate) fn encode_header(nonce: u64) -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    PREAMBLE.write(&mut header, HEADER_BYTES as u32);
    put_u64(&mut header, 16, nonce);
    put_i64(&mut header, 24, now_unix_seconds());
    let crc = crc32c::crc32c(&header[..60]);
    put_u32(&mut header, 60, crc);
    header
}

/// Rewrites a header of an older major (1: no batch records) as the current one, in place (the
/// header is sector 0, so the write is never torn), before anything could append a batch.
/// Nonce, creation time and `header_size` stay.
fn upgrade_header<F: crate::disk::DiskFile>(
    file: &F,
    path: &Path,
    header: &mut [u8; HEADER_BYTES],
) -> Result<(), StorageError> {
    if get_u16(header, 8) >= PREAMBLE.major {
        return Ok(());
    }
    let header_size = get_u32(header, 12);
    PREAMBLE.write(header, header_size);
    let crc = crc32c::crc32c(&header[..60]);
    put_u32(header, 60, crc);
    tracing::info!(path = %path.display(), "upgrading mailbox log to format {}", PREAMBLE.major);
    write_at(file, path, header, 0)
}

/// A damaged header (its checksum fails) whose nonce field still checks the first record: the
/// damage hit another field (a flipped version bit, the creation time, the checksum itself),
/// and the nonce in it is the file's, since a record checks out only with it. The header is
/// rewritten in place (current major, the same nonce, `header_size` 64, the only size ever
/// written) and the log replays as usual. Returns the header size, or `None` when the first
/// record does not check out (the caller moves the log aside and starts anew).
fn repair_header<F: crate::disk::DiskFile>(
    file: &F,
    path: &Path,
    header: &mut [u8; HEADER_BYTES],
    len: u64,
) -> Result<Option<u32>, StorageError> {
    let nonce = get_u64(header, 16);
    let unit_bytes_max = (RECORD_FIXED_BYTES + crate::limits::LOG_BATCH_BYTES_MAX) as u64;
    let first_len = (len - HEADER_BYTES as u64).min(unit_bytes_max);
    let mut first = vec![0u8; usize::try_from(first_len).expect("bounded")];
    read_at(file, path, &mut first, HEADER_BYTES as u64)?;
    if decode_unit(&first, nonce).is_none() {
        return Ok(None);
    }
    let created = super::codec::get_i64(header, 24);
    *header = [0u8; HEADER_BYTES];
    PREAMBLE.write(header, HEADER_BYTES as u32);
    put_u64(header, 16, nonce);
    put_i64(header, 24, created);
    let crc = crc32c::crc32c(&header[..60]);
    put_u32(header, 60, crc);
    tracing::warn!(path = %path.display(), "mailbox log header damaged; rewritten with its nonce");
    write_at(file, path, header, 0)?;
    Ok(Some(HEADER_BYTES as u32))
}

/// The open log: where the next record goes.
pub(crate) struct MailboxLog<F> {
    pub(super) file: F,
    pub(super) path: PathBuf,
    pub(super) nonce: u64,
    pub(super) end: u64,
    /// A compacted copy being made durable before it replaces this file (`compact.rs`).
    pub(super) compaction: Option<super::compact::Compaction<F>>,
    /// The length at which compaction is considered next.
    pub(super) next_compaction_check: u64,
}

/// What [`MailboxLog::open`] found.
pub(crate) struct LogOpen<F> {
    /// The log, positioned after the last good record.
    pub log: MailboxLog<F>,
    /// Bytes cut from a torn or corrupt tail.
    pub truncated_bytes: u64,
    /// The header was damaged: the old file was moved to `mailboxes.log.bad` and this log is
    /// new and empty (the caller salvages what the index files still say).
    pub header_damaged: bool,
}

impl<F: crate::disk::DiskFile> MailboxLog<F> {
    /// Opens (or creates) the log in `dir`, feeding each good replay unit (one record, or every
    /// record of a batch) to `accept`, which returns false (and applies nothing) for a unit that
    /// breaks a replay rule. The tail from the first bad unit on is cut.
    pub(crate) fn open<D: Disk<File = F>>(
        disk: &D,
        dir: &Path,
        mut accept: impl FnMut(&[LogRecord]) -> bool,
    ) -> Result<LogOpen<F>, StorageError> {
        let path = dir.join(LOG_FILE);
        // A compaction that never replaced the log (see `compact.rs`).
        let staging = dir.join(super::compact::LOG_TMP_FILE);
        if disk.exists(&staging) {
            disk.remove_file(&staging).map_err(|e| StorageError::io(&staging, e))?;
        }
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        let len = file_len(&file, &path)?;
        if len < HEADER_BYTES as u64 {
            return Self::create(file, path, len);
        }
        let mut header = [0u8; HEADER_BYTES];
        read_at(&file, &path, &mut header, 0)?;
        let header_size = PREAMBLE.check(&header, 60, &path)?;
        // A header_size read from disk is input: one shorter than the header or past the
        // file's end (or past what is ever read) makes the header bad, like a failed checksum.
        let read_len = len.min(MAILBOX_LOG_BYTES_MAX);
        let fits = |size: u32| size as usize >= HEADER_BYTES && u64::from(size) <= read_len;
        let header_size = match header_size.filter(|&size| fits(size)) {
            Some(size) => Some(size),
            None => repair_header(&file, &path, &mut header, len)?,
        };
        let Some(header_size) = header_size else {
            tracing::error!(path = %path.display(), "mailbox log header damaged; starting anew");
            let aside = dir.join(BAD_LOG_FILE);
            disk.rename(&path, &aside).map_err(|e| StorageError::io(&path, e))?;
            let file = disk
                .open(&path, OpenMode::CreateIfMissing)
                .map_err(|e| StorageError::io(&path, e))?;
            let mut opened = Self::create(file, path, 0)?;
            opened.header_damaged = true;
            return Ok(opened);
        };
        let nonce = get_u64(&header, 16);
        upgrade_header(&file, &path, &mut header)?;
        let mut body =
            vec![0u8; usize::try_from(read_len - u64::from(header_size)).expect("bounded")];
        read_at(&file, &path, &mut body, u64::from(header_size))?;
        let mut at = 0usize;
        while let Some((records, padded)) = decode_unit(&body[at..], nonce) {
            if !accept(&records) {
                break;
            }
            at += padded;
        }
        let mut end = u64::from(header_size) + at as u64;
        let truncated_bytes = len - end;
        if truncated_bytes > 0 {
            tracing::warn!(path = %path.display(), truncated_bytes, "cutting mailbox log tail");
            // Stale records in the tail must never replay after new ones (see `encode_filler`).
            let filler = super::log_batch::encode_filler(end, truncated_bytes, nonce);
            if end + filler.len() as u64 <= MAILBOX_LOG_BYTES_MAX {
                write_at(&file, &path, &filler, end)?;
                end += filler.len() as u64;
            }
            set_len(&file, &path, end)?;
        }
        let log = MailboxLog::new(file, path, nonce, end);
        Ok(LogOpen { log, truncated_bytes, header_damaged: false })
    }

    /// Writes a fresh header over a file shorter than one (new, or torn while being created).
    fn create(file: F, path: PathBuf, len: u64) -> Result<LogOpen<F>, StorageError> {
        let nonce = super::codec::new_nonce();
        write_at(&file, &path, &encode_header(nonce), 0)?;
        let log = MailboxLog::new(file, path, nonce, HEADER_BYTES as u64);
        Ok(LogOpen { log, truncated_bytes: len, header_damaged: false })
    }

    pub(super) fn new(file: F, path: PathBuf, nonce: u64, end: u64) -> MailboxLog<F> {
        let next_compaction_check = super::compact::first_check(end);
        MailboxLog { file, path, nonce, end, compaction: None, next_compaction_check }
    }

    /// Appends records in one write, as one replay unit (a batch if more than one, so a torn
    /// write replays as none of them). On error nothing is considered written (the next append
    /// overwrites the same bytes).
    pub(crate) fn append_all(
        &mut self,
        records: &[LogRecord],
        now: crate::types::Epoch,
    ) -> Result<(), StorageError> {
        let bytes = encode_unit(records, self.nonce);
        if self.end + bytes.len() as u64 > MAILBOX_LOG_BYTES_MAX {
            return Err(StorageError::Corrupt {
                what: "mailbox log full (limits::MAILBOX_LOG_BYTES_MAX)",
                path: self.path.clone(),
                offset: self.end,
            });
        }
        write_at(&self.file, &self.path, &bytes, self.end)?;
        self.end += bytes.len() as u64;
        self.compaction_append(records, now);
        Ok(())
    }

    /// Re-sets the file's length, which marks it dirty so the next flush round makes what
    /// recovery validated durable (it may be in the page cache only, left by a crashed process).
    pub(crate) fn touch(&self) -> Result<(), StorageError> {
        set_len(&self.file, &self.path, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn samples() -> Vec<LogRecord> {
        let v = UidValidity(NonZeroU32::new(77).unwrap());
        vec![
            LogRecord::Create { id: MailboxId(0), uid_validity: v, name: "INBOX".into() },
            LogRecord::Rename { id: MailboxId(3), name: "a/b".into() },
            LogRecord::Delete { id: MailboxId(3) },
            LogRecord::Subscribe { name: "Entwürfe".into() },
            LogRecord::Unsubscribe { name: "x".into() },
            LogRecord::Keyword { id: MailboxId(0), bit: 5, name: "$Junk".into() },
            LogRecord::Floor { next_id: 9, last_uid_validity: 1234 },
            LogRecord::VoidKeyword { id: MailboxId(2), bit: 7 },
            LogRecord::SpecialUse { id: MailboxId(4), uses: SpecialUse::SENT },
            LogRecord::Provisioned,
            LogRecord::Acl {
                id: MailboxId(4),
                identifier: Identifier::parse("-fred").unwrap(),
                rights: Rights::parse("lrs").unwrap(),
            },
            LogRecord::Acl {
                id: MailboxId(4),
                identifier: Identifier::parse("anyone").unwrap(),
                rights: Rights::NONE,
            },
            LogRecord::Granted { owner: "bob".into() },
        ]
    }

    #[test]
    fn records_round_trip() {
        for record in samples() {
            let bytes = record.encode(42);
            assert_eq!(bytes.len() % 8, 0);
            let (decoded, len) = LogRecord::decode(&bytes, 42).unwrap();
            assert_eq!(decoded, record);
            assert_eq!(len, bytes.len());
        }
    }

    fn open_replaying(
        disk: &crate::disk::sim::SimDisk,
    ) -> (LogOpen<crate::disk::sim::SimFile>, Vec<LogRecord>) {
        let mut replayed = Vec::new();
        let opened = MailboxLog::open(disk, Path::new("u"), |unit| {
            replayed.extend_from_slice(unit);
            true
        })
        .unwrap();
        (opened, replayed)
    }

    #[test]
    fn major_1_to_4_logs_are_upgraded_and_replay() {
        for major in [1, 2, 3, 4] {
            let disk = crate::disk::sim::SimDisk::new();
            disk.create_dir_all(Path::new("u")).unwrap();
            let path = Path::new("u").join(LOG_FILE);
            let file = disk.open(&path, OpenMode::CreateIfMissing).unwrap();
            let mut header = encode_header(42);
            put_u16(&mut header, 8, major);
            let crc = crc32c::crc32c(&header[..60]);
            put_u32(&mut header, 60, crc);
            let mut bytes = header.to_vec();
            // What those majors could hold: plain records (and, from 2, batches).
            for record in &samples()[..2] {
                bytes.extend_from_slice(&record.encode(42));
            }
            write_at(&file, &path, &bytes, 0).unwrap();
            let (mut opened, replayed) = open_replaying(&disk);
            assert_eq!(replayed, samples()[..2]);
            assert_eq!(opened.truncated_bytes, 0);
            let mut upgraded = [0u8; HEADER_BYTES];
            read_at(&file, &path, &mut upgraded, 0).unwrap();
            assert_eq!(get_u16(&upgraded, 8), 5, "upgraded before a new kind can be written");
            assert_eq!(get_u64(&upgraded, 16), 42, "the nonce stays");
            assert_eq!(crc32c::crc32c(&upgraded[..60]), get_u32(&upgraded, 60));
            // The new kinds written after the upgrade replay.
            let new_kinds = samples()[8..].to_vec();
            opened.log.append_all(&new_kinds, crate::types::Epoch(0)).unwrap();
            let (_, replayed) = open_replaying(&disk);
            assert_eq!(replayed[2..], new_kinds[..]);
        }
    }

    #[test]
    fn a_torn_batch_is_cut_whole() {
        let disk = crate::disk::sim::SimDisk::new();
        disk.create_dir_all(Path::new("u")).unwrap();
        let (mut opened, _) = open_replaying(&disk);
        let single = samples()[3].clone();
        opened.log.append_all(std::slice::from_ref(&single), crate::types::Epoch(0)).unwrap();
        let start = opened.log.end;
        let batch: Vec<LogRecord> = (0..30)
            .map(|i| LogRecord::Rename { id: MailboxId(i), name: format!("box{i}") })
            .collect();
        opened.log.append_all(&batch, crate::types::Epoch(0)).unwrap();
        let end = opened.log.end;
        let (_, replayed) = open_replaying(&disk);
        assert_eq!(replayed.len(), 31, "whole batch replays");
        // Tear the batch at the first sector boundary inside it: zeros from there on.
        let file = opened.log.file.clone();
        let boundary = (start / 512 + 1) * 512;
        assert!(boundary < end);
        let zeros = vec![0u8; usize::try_from(end - boundary).unwrap()];
        write_at(&file, &opened.log.path, &zeros, boundary).unwrap();
        let (reopened, replayed) = open_replaying(&disk);
        assert_eq!(replayed, vec![single], "none of the batch");
        assert_eq!(reopened.truncated_bytes, end - start);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = samples()[0].encode(42);
        assert!(LogRecord::decode(&bytes, 43).is_none(), "wrong nonce");
        assert!(LogRecord::decode(&bytes[..bytes.len() - 8], 42).is_none(), "torn");
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(LogRecord::decode(&bad, 42).is_none(), "flip at {i}");
        }
    }
}
