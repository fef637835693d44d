//! Duplicate suppression for deliveries: which Message-IDs were delivered to which mailbox,
//! and when, kept per user in `duplicates.log` (byte layout: `core/FORMAT.md`,
//! "duplicates.log").
//!
//! A record names the keyed hash of a Message-ID (the `threads.log` key, so nobody without
//! the key can choose colliding ids), a mailbox id, the UID the delivery got and the time.
//! A record is *advisory*: it suppresses a delivery only when the message it names is still
//! in its mailbox and that message's own THREADID trailer holds the same hash under the same
//! key. So a record a crash kept while losing the append it describes (one flush round may
//! keep any subset of its writes), a record whose message was expunged since, and a stale
//! record left behind a torn one all suppress nothing: the rule is "a duplicate, never a
//! loss". A record is written in the same epoch as its append, but only every
//! [`DUPLICATES_SYNC_EVERY`]th with a normal write: the others are unsynced, and made durable
//! by the next normal one's round. So a crash of the machine may lose the last few records of
//! acknowledged deliveries (never their messages), and then lets one later copy through.
//!
//! The file is read on the first delivery after open (not on open), created by the first
//! record, and bounded: past [`DUPLICATES_RECORDS_MAX`] records it is compacted (records
//! past the window and superseded ones dropped, the oldest forgotten first when still too
//! many) into `duplicates.log.new`, which replaces the log only once it is durable; until
//! then every record is written to both files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::UserStore;
use super::codec::{
    Preamble, all_zero, file_len, get_i64, get_u32, get_u64, new_nonce, nonce_seed,
    now_unix_seconds, put_i64, put_u32, put_u64, read_at, set_len, write_at,
};
use super::record;
use super::threads::ThreadKeys;
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::types::{Epoch, MailboxId, Uid};

/// File name inside the user directory.
pub(crate) const DUPLICATES_FILE: &str = "duplicates.log";
/// The compacted copy, until it replaces the log.
const COMPACTED_FILE: &str = "duplicates.log.new";
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKD\r\n\x1a\n", major: 1, minor: 0 };
const HEADER_BYTES: usize = 64;
/// Sixteen records fill a 512-byte sector, so none straddles two.
const RECORD_BYTES: usize = 32;
/// The most records the log holds (512 KiB). Compaction starts at three quarters of it and
/// keeps at most half, so it runs at most once per quarter of this many deliveries.
pub const DUPLICATES_RECORDS_MAX: u32 = 16_384;
const COMPACT_AT_RECORDS: u32 = DUPLICATES_RECORDS_MAX / 4 * 3;
const KEEP_RECORDS_MAX: usize = (DUPLICATES_RECORDS_MAX / 2) as usize;
/// Every this many records, one is a normal write; the others are written unsynced, and that
/// normal write's flush round makes them durable with it (fdatasync syncs the whole file).
/// So a delivery's round syncs the log only once per this many deliveries to the user, not
/// every time (measured: about 10 % more LMTP deliveries per second at 8 connections), and a
/// crash of the machine (not of the process: the page cache outlives it) may lose the last
/// records before the next synced one. A lost record lets one later copy of its message
/// through: a duplicate, never a loss (`core/FORMAT.md`, "duplicates.log").
pub const DUPLICATES_SYNC_EVERY: u32 = 8;
// Pinned by core/FORMAT.md ("duplicates.log").
const _: () = assert!(HEADER_BYTES == 64 && RECORD_BYTES == 32);
const _: () = assert!(512_usize.is_multiple_of(RECORD_BYTES));
const _: () = assert!(HEADER_BYTES.is_multiple_of(RECORD_BYTES));
const _: () = assert!(KEEP_RECORDS_MAX < COMPACT_AT_RECORDS as usize);
const _: () = assert!(COMPACT_AT_RECORDS < DUPLICATES_RECORDS_MAX);
const _: () = assert!((DUPLICATES_RECORDS_MAX as usize) * RECORD_BYTES <= 1 << 20);

/// The window the server was configured with (`[lmtp] duplicate_window`), in seconds; 0 is
/// off. Process-wide because it is set once at start-up from the configuration and the
/// delivery path has no other way to it (see [`set_duplicate_window_seconds`]).
static WINDOW_SECONDS: AtomicU64 = AtomicU64::new(0);

/// Sets the duplicate window for every delivery of this process (the server does it once at
/// start-up). 0 turns suppression off.
pub fn set_duplicate_window_seconds(seconds: u64) {
    WINDOW_SECONDS.store(seconds, Ordering::Relaxed);
}

/// The duplicate window set by [`set_duplicate_window_seconds`] (0: off, the default).
#[must_use]
pub fn duplicate_window_seconds() -> u64 {
    WINDOW_SECONDS.load(Ordering::Relaxed)
}

/// One remembered delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    uid: Uid,
    unix_seconds: i64,
}

/// The log as read, or what is known of it.
#[derive(Default)]
pub(crate) enum Duplicates<F> {
    /// Not read yet.
    #[default]
    Unread,
    /// Read (or created).
    Loaded(Box<DuplicateLog<F>>),
}

impl<F> std::fmt::Debug for Duplicates<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Duplicates::Unread => f.write_str("Unread"),
            Duplicates::Loaded(log) => write!(f, "Loaded({} records)", log.records),
        }
    }
}

/// An open log file and where its next record goes.
struct LogFile<F> {
    file: F,
    path: PathBuf,
    seed: u32,
    end: u64,
}

impl<F: DiskFile> LogFile<F> {
    /// Writes a new header (fresh nonce) and `records` from offset 0, and cuts the file there.
    fn create(
        file: F,
        path: PathBuf,
        records: &[[u8; RECORD_BYTES]],
    ) -> Result<Self, StorageError> {
        let nonce = new_nonce();
        let seed = nonce_seed(nonce);
        let mut bytes = vec![0u8; HEADER_BYTES + RECORD_BYTES * records.len()];
        PREAMBLE.write(&mut bytes, HEADER_BYTES as u32);
        put_u64(&mut bytes, 16, nonce);
        put_i64(&mut bytes, 24, now_unix_seconds());
        let header_crc = crc32c::crc32c(&bytes[..60]);
        put_u32(&mut bytes, 60, header_crc);
        for (slot, record) in records.iter().enumerate() {
            let at = HEADER_BYTES + slot * RECORD_BYTES;
            bytes[at..at + RECORD_BYTES].copy_from_slice(record);
            seal(seed, &mut bytes[at..at + RECORD_BYTES]);
        }
        set_len(&file, &path, 0)?;
        write_at(&file, &path, &bytes, 0)?;
        Ok(LogFile { file, path, seed, end: bytes.len() as u64 })
    }

    /// Appends one record (sealed with this file's nonce): a normal write when `synced`, else
    /// one the file's next normal write makes durable (see [`DUPLICATES_SYNC_EVERY`]).
    fn append(&mut self, record: &[u8; RECORD_BYTES], synced: bool) -> Result<(), StorageError> {
        let mut sealed = *record;
        seal(self.seed, &mut sealed);
        if synced {
            write_at(&self.file, &self.path, &sealed, self.end)?;
        } else {
            self.file
                .write_all_at_unsynced(&sealed, self.end)
                .map_err(|e| StorageError::io(&self.path, e))?;
        }
        self.end += RECORD_BYTES as u64;
        Ok(())
    }
}

/// The replayed log: what it says, in memory.
pub(crate) struct DuplicateLog<F> {
    log: LogFile<F>,
    /// Records in the log's valid prefix.
    records: u32,
    /// Records appended since the last one written with a normal write.
    unsynced: u32,
    /// The last record per (hash, mailbox), under the current key.
    seen: HashMap<(u64, MailboxId), Seen>,
    /// A compacted copy written in the epoch given, that replaces the log once it is durable.
    compacted: Option<(Epoch, LogFile<F>)>,
}

/// A record's checksum: CRC-32C seeded by the file's nonce over bytes 4..32.
fn seal(seed: u32, record: &mut [u8]) {
    let crc = crc32c::crc32c_append(seed, &record[4..RECORD_BYTES]);
    put_u32(record, 0, crc);
}

/// A record with its checksum left zero (sealed by [`LogFile::append`]).
fn encode(key_id: u32, hash: u64, mailbox: MailboxId, seen: Seen) -> [u8; RECORD_BYTES] {
    let mut record = [0u8; RECORD_BYTES];
    put_u32(&mut record, 4, key_id);
    put_u64(&mut record, 8, hash);
    put_u32(&mut record, 16, mailbox.0);
    put_u32(&mut record, 20, seen.uid.get());
    put_i64(&mut record, 24, seen.unix_seconds);
    record
}

/// What a replay gives: the file's checksum seed, the valid prefix's record count, and the
/// last record per (hash, mailbox) under the current key.
type Replayed = (u32, u32, HashMap<(u64, MailboxId), Seen>);

/// Replays `bytes` (the file from offset 0); `None` when the header is damaged, torn or not
/// ours.
fn replay(
    bytes: &[u8],
    key_id: u32,
    path: &std::path::Path,
) -> Result<Option<Replayed>, StorageError> {
    if bytes.len() < HEADER_BYTES {
        return Ok(None);
    }
    let Some(header_size) = PREAMBLE.check(&bytes[..HEADER_BYTES], 60, path)? else {
        return Ok(None);
    };
    if header_size as usize != HEADER_BYTES || !all_zero(&bytes[32..60]) {
        return Ok(None);
    }
    let seed = nonce_seed(get_u64(bytes, 16));
    let mut seen = HashMap::new();
    let mut records = 0;
    for record in bytes[HEADER_BYTES..].chunks_exact(RECORD_BYTES) {
        let crc = crc32c::crc32c_append(seed, &record[4..]);
        let uid = Uid::new(get_u32(record, 20));
        let (Some(uid), true) = (uid, crc == get_u32(record, 0)) else { break };
        records += 1;
        if get_u32(record, 4) == key_id {
            let at = Seen { uid, unix_seconds: get_i64(record, 24) };
            seen.insert((get_u64(record, 8), MailboxId(get_u32(record, 16))), at);
        }
    }
    Ok(Some((seed, records, seen)))
}

impl<D: Disk> UserStore<D> {
    fn duplicates_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads the log once (a missing or damaged one reads as empty; the first record
    /// writes a new header over it).
    fn duplicate_log(&mut self) -> Result<&mut DuplicateLog<D::File>, StorageError> {
        if matches!(self.duplicates, Duplicates::Unread) {
            let path = self.duplicates_path(DUPLICATES_FILE);
            let file = self
                .disk
                .open(&path, OpenMode::CreateIfMissing)
                .map_err(|e| StorageError::io(&path, e))?;
            let limit = (HEADER_BYTES + RECORD_BYTES * DUPLICATES_RECORDS_MAX as usize) as u64;
            let len = file_len(&file, &path)?.min(limit);
            let mut bytes = vec![0u8; usize::try_from(len).expect("bounded by the limit")];
            read_at(&file, &path, &mut bytes, 0)?;
            let log = match replay(&bytes, self.threads.key_id(), &path)? {
                Some((seed, records, seen)) => {
                    let end = (HEADER_BYTES + RECORD_BYTES * records as usize) as u64;
                    DuplicateLog {
                        log: LogFile { file, path, seed, end },
                        records,
                        unsynced: 0,
                        seen,
                        compacted: None,
                    }
                }
                None => {
                    if len > 0 {
                        tracing::warn!(file = %path.display(), "duplicate log damaged: started anew");
                    }
                    let log = LogFile::create(file, path, &[])?;
                    DuplicateLog {
                        log,
                        records: 0,
                        unsynced: 0,
                        seen: HashMap::new(),
                        compacted: None,
                    }
                }
            };
            self.duplicates = Duplicates::Loaded(Box::new(log));
        }
        match &mut self.duplicates {
            Duplicates::Loaded(log) => Ok(log),
            Duplicates::Unread => unreachable!("loaded above"),
        }
    }

    /// The keyed hash of a Message-ID (as `threads.log` makes it); `None` for no id.
    fn duplicate_hash(&self, message_id: &str) -> Option<u64> {
        let keys = ThreadKeys { message_id, in_reply_to: "", references: &[] };
        (!message_id.is_empty()).then(|| self.threads.decide(&keys).keys[0])
    }

    /// The UID of an earlier delivery of the message with `message_id` to mailbox `id`, when
    /// one was made within `window_seconds` before `now_unix_seconds` and that message is
    /// still in the mailbox (its spool record names the same Message-ID). `None` when the
    /// window is 0, the message has no Message-ID, or nothing matches; a log that cannot be
    /// read is logged and suppresses nothing.
    pub fn duplicate_of(
        &mut self,
        id: MailboxId,
        message_id: &str,
        now_unix_seconds: i64,
        window_seconds: u64,
    ) -> Option<Uid> {
        if window_seconds == 0 {
            return None;
        }
        let hash = self.duplicate_hash(message_id)?;
        let seen = match self.duplicate_log() {
            Ok(log) => log.seen.get(&(hash, id)).copied()?,
            Err(error) => {
                tracing::error!(%error, "duplicate log unreadable: nothing suppressed");
                return None;
            }
        };
        if !within(seen.unix_seconds, now_unix_seconds, window_seconds) {
            return None;
        }
        self.still_holds(id, seen.uid, hash).then_some(seen.uid)
    }

    /// True when message `uid` of mailbox `id` is live and its spool record's first thread
    /// hash (its own Message-ID's) is `hash` under the current key.
    fn still_holds(&self, id: MailboxId, uid: Uid, hash: u64) -> bool {
        if !matches!(self.message(id, uid), Ok(Some(_))) {
            return false;
        }
        let Ok((header, bytes, _, _)) = self.record(id, uid) else { return false };
        let record::Head::Message(head) = header.head else { return false };
        record::thread(&head, &bytes).is_some_and(|trailer| {
            trailer.key_id == self.threads.key_id() && trailer.keys.first() == Some(&hash)
        })
    }

    /// Remembers that the message with `message_id` was just appended to mailbox `id` as
    /// `uid`: one record, a normal write of the open epoch (durable with the append's round).
    /// Nothing for a window of 0 or no Message-ID. A failed write is logged: the delivery
    /// stands, and a later copy of it will simply not be suppressed.
    pub fn duplicate_note(
        &mut self,
        id: MailboxId,
        message_id: &str,
        uid: Uid,
        now_unix_seconds: i64,
        window_seconds: u64,
    ) {
        if window_seconds == 0 {
            return;
        }
        let Some(hash) = self.duplicate_hash(message_id) else { return };
        let key_id = self.threads.key_id();
        let seen = Seen { uid, unix_seconds: now_unix_seconds };
        if let Err(error) = self.duplicate_write(key_id, hash, id, seen, window_seconds) {
            tracing::error!(%error, "duplicate log write failed: this delivery is not remembered");
        }
    }

    fn duplicate_write(
        &mut self,
        key_id: u32,
        hash: u64,
        id: MailboxId,
        seen: Seen,
        window_seconds: u64,
    ) -> Result<(), StorageError> {
        let durable = self.disk.epoch_durable();
        let compacted_path = self.duplicates_path(COMPACTED_FILE);
        let disk = self.disk.clone();
        let log = self.duplicate_log()?;
        log.install_compacted(&*disk, durable)?;
        if log.compacted.is_none() && log.records >= COMPACT_AT_RECORDS {
            let file = disk
                .open(&compacted_path, OpenMode::CreateIfMissing)
                .map_err(|e| StorageError::io(&compacted_path, e))?;
            let kept = log.kept(key_id, seen.unix_seconds, window_seconds);
            let copy = LogFile::create(file, compacted_path, &kept)?;
            log.compacted = Some((disk.epoch_open(), copy));
        }
        if log.records >= DUPLICATES_RECORDS_MAX {
            // Only while a compacted copy waits for its round: rare, and harmless.
            tracing::warn!("duplicate log full until its compaction is durable: not remembered");
            return Ok(());
        }
        let record = encode(key_id, hash, id, seen);
        // While a compacted copy waits for its round, records are synced in both files: a
        // crash may yet drop the rename, and the old log must then hold what the copy does.
        let synced = log.unsynced + 1 >= DUPLICATES_SYNC_EVERY || log.compacted.is_some();
        log.log.append(&record, synced)?;
        log.records += 1;
        log.unsynced = if synced { 0 } else { log.unsynced + 1 };
        if let Some((_, copy)) = &mut log.compacted {
            copy.append(&record, synced)?;
        }
        log.seen.insert((hash, id), seen);
        Ok(())
    }

    /// Records in the duplicate log's valid prefix (tests); `None` before it is read.
    #[must_use]
    pub fn duplicate_records(&self) -> Option<u32> {
        match &self.duplicates {
            Duplicates::Loaded(log) => Some(log.records),
            Duplicates::Unread => None,
        }
    }
}

impl<F: DiskFile> DuplicateLog<F> {
    /// The records a compaction keeps: the last per (hash, mailbox), within the window, the
    /// newest [`KEEP_RECORDS_MAX`] of them, oldest first.
    fn kept(&self, key_id: u32, now: i64, window_seconds: u64) -> Vec<[u8; RECORD_BYTES]> {
        let mut live: Vec<(&(u64, MailboxId), &Seen)> = self
            .seen
            .iter()
            .filter(|(_, seen)| within(seen.unix_seconds, now, window_seconds))
            .collect();
        live.sort_by_key(|(key, seen)| (seen.unix_seconds, key.1, seen.uid));
        let skip = live.len().saturating_sub(KEEP_RECORDS_MAX);
        live[skip..]
            .iter()
            .map(|((hash, mailbox), seen)| encode(key_id, *hash, *mailbox, **seen))
            .collect()
    }

    /// Replaces the log by its compacted copy once the copy's epoch is `durable`: the rename
    /// then only ever exposes a file whose older records are all on disk (records written
    /// since went to both files, each in its own epoch).
    fn install_compacted<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        durable: Epoch,
    ) -> Result<(), StorageError> {
        let Some((written, _)) = &self.compacted else { return Ok(()) };
        if durable < *written {
            return Ok(());
        }
        let (_, copy) = self.compacted.take().expect("checked above");
        let target = self.log.path.clone();
        disk.rename(&copy.path, &target).map_err(|e| StorageError::io(&target, e))?;
        let records = u32::try_from((copy.end - HEADER_BYTES as u64) / RECORD_BYTES as u64)
            .expect("bounded by DUPLICATES_RECORDS_MAX");
        self.log = LogFile { path: target, ..copy };
        self.records = records;
        Ok(())
    }
}

/// True when a delivery at `then` is less than `window_seconds` before `now` (a clock that
/// went back counts as within).
fn within(then: i64, now: i64, window_seconds: u64) -> bool {
    let age = now.saturating_sub(then);
    age < 0 || age.unsigned_abs() < window_seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_half_open_and_forgives_a_clock_going_back() {
        assert!(within(100, 100, 1));
        assert!(within(100, 199, 100));
        assert!(!within(100, 200, 100), "exactly one window later is outside");
        assert!(within(100, 50, 10), "the clock went back");
        assert!(!within(i64::MIN, i64::MAX, 10), "no overflow");
    }

    #[test]
    fn a_record_replays_only_with_its_checksum_and_a_uid() {
        let path = std::path::Path::new("d");
        let seen = Seen { uid: Uid::new(7).unwrap(), unix_seconds: 1_000 };
        let mut bytes = vec![0u8; HEADER_BYTES];
        PREAMBLE.write(&mut bytes, HEADER_BYTES as u32);
        put_u64(&mut bytes, 16, 42);
        let crc = crc32c::crc32c(&bytes[..60]);
        put_u32(&mut bytes, 60, crc);
        let seed = nonce_seed(42);
        for (key_id, hash) in [(5, 1), (6, 2), (5, 3)] {
            let mut record = encode(key_id, hash, MailboxId(1), seen);
            seal(seed, &mut record);
            bytes.extend_from_slice(&record);
        }
        let (_, records, map) = replay(&bytes, 5, path).unwrap().unwrap();
        assert_eq!(records, 3);
        assert_eq!(map.len(), 2, "the record under another key is skipped");
        assert_eq!(map.get(&(3, MailboxId(1))), Some(&seen));
        bytes[HEADER_BYTES + RECORD_BYTES + 9] ^= 1;
        let (_, records, map) = replay(&bytes, 5, path).unwrap().unwrap();
        assert_eq!((records, map.len()), (1, 1), "a bad checksum ends the log");
        bytes[3] ^= 1;
        assert!(replay(&bytes, 5, path).unwrap().is_none(), "a damaged header");
    }
}
