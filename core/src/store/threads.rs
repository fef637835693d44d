//! THREADID (RFC 8474 §5.2): which thread a new message joins, and the per-user map from
//! Message-ID to thread that decides it (byte layout: `core/FORMAT.md`, `threads.log`).
//!
//! A message's thread is decided once, when it is stored, and written into its spool record
//! (the THREADID trailer, next to the EMAILID), so it never changes. The decision looks up, in
//! order, the message's own Message-ID, its References (first to last), and its In-Reply-To;
//! the first one the map knows gives the thread, else the message starts a thread of its own
//! (its thread id is its EMAILID). Then every id it names that the map does not know yet is
//! mapped to that thread: a reply that arrives before its parent, or two replies to a parent
//! the user never got, end up in one thread. A message that names ids of two threads joins
//! the first found and the threads stay apart (earlier messages never move).
//!
//! The map holds 64-bit keyed hashes of the ids (HMAC-SHA-256 with a random per-user key kept
//! in the `threads.log` header, cut to 8 bytes), so a sender cannot choose ids whose hashes
//! collide with another's. The spool record carries the hashes it added to the decision (at
//! most [`THREAD_KEYS_MAX`]), so the spool alone can rebuild the map: replaying message
//! records in spool order, "insert if absent", gives the map the live appends built.
//!
//! Persistence: `threads.log` is a copy of the map for the spool before `covered`. Entries
//! learned by appends wait in memory (`pending`) until their spool record is durable; the
//! store's checkpoint appends them to the log, and once that write is durable the header's
//! `covered` moves to the checkpoint. On open the log is replayed and the spool records past
//! `covered` (the recovery scan starts no later) are replayed from their trailers. A failed
//! append forgets what it taught the map ([`Threads::forget_from`]), as the spool forgets its
//! record. Memory: about 16 bytes of table per distinct id (plus the table's slack), and
//! 16 bytes per pending entry; at most `1 + THREAD_KEYS_MAX` ids per message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::codec::{
    Preamble, SpoolPos, all_zero, file_len, get_i64, get_u32, get_u64, new_nonce, nonce_seed,
    now_unix_seconds, put_i64, put_u32, put_u64, read_at, set_len, write_at,
};
use super::opening::Budget;
pub(crate) use super::record::THREAD_KEYS_MAX;
use super::record::{self, Head, ThreadTrailer};
use super::scan::ScanResult;
use super::spool::Spool;
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::types::Epoch;

/// File name inside the user directory.
pub(crate) const THREADS_FILE: &str = "threads.log";
/// Where a log with a damaged header is moved.
const BAD_THREADS_FILE: &str = "threads.log.bad";
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKT\r\n\x1a\n", major: 1, minor: 0 };
/// Header bytes.
const HEADER_BYTES: usize = 64;
/// Record bytes: hash, thread id, reserved, checksum.
const RECORD_BYTES: usize = 24;
/// Bytes of the hash key.
const KEY_BYTES: usize = 16;
/// Records read per piece of a replay (about 4 KiB).
const REPLAY_RECORDS: usize = 170;
// Pinned by core/FORMAT.md ("threads.log").
const _: () = assert!(HEADER_BYTES == 64);
const _: () = assert!(RECORD_BYTES == 24);

/// The ids a new message names, as the caller parsed them (core does not parse messages):
/// its Message-ID, In-Reply-To and References identifiers, brackets removed. Empty strings
/// mean "none".
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadKeys<'a> {
    /// The message's own Message-ID.
    pub message_id: &'a str,
    /// The first In-Reply-To identifier.
    pub in_reply_to: &'a str,
    /// The References identifiers, in order.
    pub references: &'a [String],
}

impl ThreadKeys<'_> {
    /// No ids: the message starts a thread of its own.
    pub const NONE: ThreadKeys<'static> =
        ThreadKeys { message_id: "", in_reply_to: "", references: &[] };

    /// The ids to look up and to learn, in lookup order, distinct, at most
    /// [`THREAD_KEYS_MAX`]: the own id, the first reference (the root), the last references
    /// (the nearest ancestors), In-Reply-To.
    fn ordered(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::with_capacity(THREAD_KEYS_MAX);
        let mut candidates: Vec<&str> = vec![self.message_id];
        if let Some((first, rest)) = self.references.split_first() {
            candidates.push(first);
            let keep = rest.len().saturating_sub(THREAD_KEYS_MAX - 3);
            candidates.extend(rest[keep..].iter().map(String::as_str));
        }
        candidates.push(self.in_reply_to);
        for id in candidates {
            if !id.is_empty() && !ids.contains(&id) && ids.len() < THREAD_KEYS_MAX {
                ids.push(id);
            }
        }
        ids
    }
}

/// The map, its log, and what waits to be logged (see the module docs). Its `Debug` leaves
/// the hash key out (a key in a log line would let its reader choose colliding ids).
pub(crate) struct Threads<F> {
    file: F,
    path: PathBuf,
    nonce: u64,
    created: i64,
    raw_key: [u8; KEY_BYTES],
    key: ring::hmac::Key,
    key_id: u32,
    /// Every message record before this spool position has its entries in the log.
    covered: SpoolPos,
    /// The log's length.
    end: u64,
    map: HashMap<u64, u64>,
    /// Entries not in the log yet: (spool position of the record that taught it, hash), in
    /// spool order.
    pending: Vec<(SpoolPos, u64)>,
    /// A checkpoint whose entries were written in `Epoch`: `covered` moves there once it is
    /// durable.
    written: Option<(Epoch, SpoolPos)>,
    /// Made by this open (a new store, one from before `threads.log`, or a damaged header):
    /// its key is new, so no record already in the spool can teach it anything (see
    /// [`Threads::start_at`]).
    fresh: bool,
}

impl<F> std::fmt::Debug for Threads<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("path", &self.path)
            .field("key_id", &self.key_id)
            .field("covered", &self.covered)
            .field("end", &self.end)
            .field("ids", &self.map.len())
            .field("pending", &self.pending.len())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// Teaches `threads` the scanned message records past its coverage, in spool order, from
/// `next` on, a unit of work each (only each record's trailer is read); true when done.
///
/// # Errors
/// The disk failed.
pub(super) fn learn_step<D: Disk>(
    threads: &mut Threads<D::File>,
    scanned: &ScanResult,
    spool: &Spool<D>,
    disk: &D,
    next: &mut usize,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    let Some(covered) = threads.covered() else {
        return Ok(true);
    };
    if *next == 0 {
        *next = scanned.records.partition_point(|r| r.spool.pos() < covered);
    }
    while *next < scanned.records.len() {
        if !budget.left() {
            return Ok(false);
        }
        let record = &scanned.records[*next];
        *next += 1;
        let Head::Message(head) = record.head else {
            continue;
        };
        let Some((at, len)) = record::thread_span(&head) else {
            continue;
        };
        let segment = record.spool.segment;
        let file = spool.file(disk, segment)?;
        let mut trailer = vec![0u8; len];
        let offset = u64::from(record.spool.offset) + at as u64;
        read_at(&file, &spool.path(segment), &mut trailer, offset)?;
        threads.learn(record.spool.pos(), &record::parse_thread(&head, &trailer));
        budget.spend(1);
    }
    Ok(true)
}

/// The map rebuilt from the spool alone: every message record in spool order, "insert if
/// absent" (tests: the live map must equal it).
///
/// # Errors
/// The disk failed.
#[cfg(feature = "sim")]
pub(super) fn replay_spool<D: Disk>(
    disk: &D,
    dir: &Path,
    key_id: u32,
) -> Result<std::collections::BTreeMap<u64, u64>, StorageError> {
    let mut spool = Spool::list(disk, dir)?;
    let scanned = super::scan::scan(disk, &mut spool, SpoolPos(0), &|_| Vec::new())?;
    let mut map = std::collections::BTreeMap::new();
    for record in scanned.records.iter() {
        let Head::Message(head) = record.head else {
            continue;
        };
        let Some((at, len)) = record::thread_span(&head) else {
            continue;
        };
        let mut trailer = vec![0u8; len];
        let offset = u64::from(record.spool.offset) + at as u64;
        let file = spool.file(disk, record.spool.segment)?;
        read_at(&file, &spool.path(record.spool.segment), &mut trailer, offset)?;
        let trailer = record::parse_thread(&head, &trailer);
        if trailer.key_id == key_id {
            for hash in trailer.keys {
                map.entry(hash).or_insert(trailer.thread_id);
            }
        }
    }
    Ok(map)
}

/// What deciding a new message's thread gives: its thread (`None`: a new one, its own
/// EMAILID) and the hashes of the ids it names.
pub(crate) struct Decision {
    pub thread_id: Option<u64>,
    pub keys: Vec<u64>,
}

impl<F: DiskFile> Threads<F> {
    /// Opens (or creates) the log and replays it. A damaged header loses the key: the file is
    /// moved aside and a new one started (`covered` 0, so the whole spool is replayed, and
    /// records hashed with the old key teach nothing). A torn tail is cut.
    pub(crate) fn open<D: Disk<File = F>>(
        disk: &D,
        dir: &Path,
    ) -> Result<Threads<F>, StorageError> {
        let path = dir.join(THREADS_FILE);
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        let len = file_len(&file, &path)?;
        if len < HEADER_BYTES as u64 {
            // New, or a creation a crash tore: nothing in it was ever relied on.
            return Self::create(file, path);
        }
        let mut header = [0u8; HEADER_BYTES];
        read_at(&file, &path, &mut header, 0)?;
        if PREAMBLE.check(&header, 60, &path)? == Some(HEADER_BYTES as u32) {
            return Self::replay(file, path, &header, len);
        }
        tracing::warn!(path = %path.display(), "threads.log header damaged: started anew");
        let bad = dir.join(BAD_THREADS_FILE);
        disk.rename(&path, &bad).map_err(|e| StorageError::io(&path, e))?;
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        Self::create(file, path)
    }

    fn create(file: F, path: PathBuf) -> Result<Threads<F>, StorageError> {
        let key: [u8; KEY_BYTES] = rand::random();
        let mut threads = Threads::new(file, path, new_nonce(), now_unix_seconds(), key);
        threads.fresh = true;
        set_len(&threads.file, &threads.path, 0)?;
        write_at(&threads.file, &threads.path, &threads.header(), 0)?;
        Ok(threads)
    }

    fn new(file: F, path: PathBuf, nonce: u64, created: i64, key: [u8; KEY_BYTES]) -> Self {
        Threads {
            file,
            path,
            nonce,
            created,
            raw_key: key,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            key_id: crc32c::crc32c(&key),
            covered: SpoolPos(0),
            end: HEADER_BYTES as u64,
            map: HashMap::new(),
            pending: Vec::new(),
            written: None,
            fresh: false,
        }
    }

    fn replay(file: F, path: PathBuf, header: &[u8], len: u64) -> Result<Threads<F>, StorageError> {
        let mut key = [0u8; KEY_BYTES];
        key.copy_from_slice(&header[24..24 + KEY_BYTES]);
        let nonce = get_u64(header, 16);
        let mut threads = Threads::new(file, path, nonce, get_i64(header, 48), key);
        threads.covered = SpoolPos(get_u64(header, 40));
        let mut at = HEADER_BYTES as u64;
        let mut buf = vec![0u8; RECORD_BYTES * REPLAY_RECORDS];
        'replay: while at + RECORD_BYTES as u64 <= len {
            let count = usize::try_from((len - at) / RECORD_BYTES as u64)
                .unwrap_or(REPLAY_RECORDS)
                .min(REPLAY_RECORDS);
            let chunk = &mut buf[..count * RECORD_BYTES];
            read_at(&threads.file, &threads.path, chunk, at)?;
            for record in chunk.chunks_exact(RECORD_BYTES) {
                let crc = crc32c::crc32c_append(nonce_seed(nonce), &record[..20]);
                if crc != get_u32(record, 20)
                    || get_u64(record, 8) == 0
                    || !all_zero(&record[16..20])
                {
                    break 'replay;
                }
                threads.map.entry(get_u64(record, 0)).or_insert(get_u64(record, 8));
                at += RECORD_BYTES as u64;
            }
        }
        if at != len {
            tracing::warn!(path = %threads.path.display(), cut = len - at, "threads.log tail cut");
            set_len(&threads.file, &threads.path, at)?;
        }
        threads.end = at;
        Ok(threads)
    }

    /// The header bytes (`core/FORMAT.md`, `threads.log`).
    fn header(&self) -> [u8; HEADER_BYTES] {
        let mut header = [0u8; HEADER_BYTES];
        PREAMBLE.write(&mut header, HEADER_BYTES as u32);
        put_u64(&mut header, 16, self.nonce);
        header[24..24 + KEY_BYTES].copy_from_slice(&self.raw_key);
        put_u64(&mut header, 40, self.covered.0);
        put_i64(&mut header, 48, self.created);
        let crc = crc32c::crc32c(&header[..60]);
        put_u32(&mut header, 60, crc);
        header
    }

    /// Where the recovery scan must start at the latest: records past it may be missing from
    /// the log. `None` for a log this open made: nothing before the spool's end can teach a new
    /// key (records from before spool 1.2 carry no ids, later ones were hashed with a lost
    /// key), so the scan is not lengthened for it.
    pub(crate) fn covered(&self) -> Option<SpoolPos> {
        (!self.fresh).then_some(self.covered)
    }

    /// At the end of an open: a log this open made covers the whole recovered spool, `end`
    /// (see [`Threads::covered`]), so later opens do not scan the spool from its start for
    /// it (a store from before `threads.log` would otherwise be scanned whole on every open
    /// until its first checkpoint). The header is written, not waited for: if a crash loses
    /// it, the next open scans more, which is only slower.
    ///
    /// # Errors
    /// The disk failed.
    pub(crate) fn start_at(&mut self, end: SpoolPos) -> Result<(), StorageError> {
        if std::mem::take(&mut self.fresh) {
            self.covered = end;
            write_at(&self.file, &self.path, &self.header(), 0)?;
        }
        Ok(())
    }

    /// The log's length (what opening it read).
    pub(crate) fn log_bytes(&self) -> u64 {
        self.end
    }

    /// The key id the spool trailers carry.
    pub(crate) fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The keyed hash of one id.
    fn hash(&self, id: &str) -> u64 {
        let tag = ring::hmac::sign(&self.key, id.as_bytes());
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&tag.as_ref()[..8]);
        u64::from_le_bytes(eight)
    }

    /// Decides the thread of a new message naming `keys` (see the module docs).
    pub(crate) fn decide(&self, keys: &ThreadKeys<'_>) -> Decision {
        let hashes: Vec<u64> = keys.ordered().into_iter().map(|id| self.hash(id)).collect();
        let thread_id = hashes.iter().find_map(|hash| self.map.get(hash).copied());
        Decision { thread_id, keys: hashes }
    }

    /// Learns what the message record at `pos` carries: each hash the map lacks now maps to
    /// its thread. Records with another key id (hashed under a key a damaged log lost) teach
    /// nothing.
    pub(crate) fn learn(&mut self, pos: SpoolPos, trailer: &ThreadTrailer) {
        if trailer.key_id != self.key_id {
            return;
        }
        for &hash in &trailer.keys {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.map.entry(hash) {
                slot.insert(trailer.thread_id);
                debug_assert!(self.pending.last().is_none_or(|&(last, _)| last <= pos));
                self.pending.push((pos, hash));
            }
        }
    }

    /// Forgets what records at or past `mark` taught (a failed operation's records were cut
    /// from the spool).
    pub(crate) fn forget_from(&mut self, mark: SpoolPos) {
        let keep = self.pending.partition_point(|&(pos, _)| pos < mark);
        for (_, hash) in self.pending.drain(keep..) {
            self.map.remove(&hash);
        }
    }

    /// At a spool checkpoint (every record before `checkpoint` is durable): appends the
    /// pending entries of those records to the log, in epoch `open`. `covered` moves once
    /// that write is durable ([`Threads::settle`]).
    pub(crate) fn checkpoint(
        &mut self,
        checkpoint: SpoolPos,
        open: Epoch,
    ) -> Result<(), StorageError> {
        if self.written.is_some() || checkpoint <= self.covered {
            return Ok(());
        }
        let count = self.pending.partition_point(|&(pos, _)| pos < checkpoint);
        let mut bytes = Vec::with_capacity(count * RECORD_BYTES);
        for &(_, hash) in &self.pending[..count] {
            let mut record = [0u8; RECORD_BYTES];
            put_u64(&mut record, 0, hash);
            put_u64(&mut record, 8, self.map[&hash]);
            let crc = crc32c::crc32c_append(nonce_seed(self.nonce), &record[..20]);
            put_u32(&mut record, 20, crc);
            bytes.extend_from_slice(&record);
        }
        if !bytes.is_empty() {
            write_at(&self.file, &self.path, &bytes, self.end)?;
            self.end += bytes.len() as u64;
        }
        self.pending.drain(..count);
        self.written = Some((open, checkpoint));
        Ok(())
    }

    /// Moves `covered` (rewrites the header) once the entries of the last checkpoint are
    /// durable.
    pub(crate) fn settle(&mut self, durable: Epoch) -> Result<(), StorageError> {
        let Some((epoch, checkpoint)) = self.written else {
            return Ok(());
        };
        if epoch > durable {
            return Ok(());
        }
        self.covered = checkpoint;
        self.written = None;
        write_at(&self.file, &self.path, &self.header(), 0)
    }

    /// Marks the log dirty so the next flush round makes what recovery replayed durable.
    pub(crate) fn touch(&self) -> Result<(), StorageError> {
        set_len(&self.file, &self.path, self.end)
    }

    /// Entries in the map (tests).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn entries(&self) -> std::collections::BTreeMap<u64, u64> {
        self.map.iter().map(|(&k, &v)| (k, v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_looked_up_are_distinct_bounded_and_in_order() {
        let references: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
        let keys = ThreadKeys { message_id: "own", in_reply_to: "up", references: &references };
        let ids = keys.ordered();
        assert_eq!(ids.len(), THREAD_KEYS_MAX);
        assert_eq!(&ids[..3], ["own", "r0", "r27"], "own, the root, then the nearest ancestors");
        assert_eq!(ids[THREAD_KEYS_MAX - 2..], ["r39", "up"], "In-Reply-To last");
        let repeated = ThreadKeys { in_reply_to: "r39", ..keys };
        assert_eq!(
            repeated.ordered().len(),
            THREAD_KEYS_MAX - 1,
            "an id named twice is looked up once"
        );
        let none = ThreadKeys::NONE.ordered();
        assert!(none.is_empty(), "no ids: a thread of its own");
        let irt = ThreadKeys { in_reply_to: "p", ..ThreadKeys::NONE };
        assert_eq!(irt.ordered(), ["p"]);
    }
}
