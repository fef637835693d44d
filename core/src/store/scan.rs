//! Reading the spool record by record, checking every checksum, and cutting a torn tail.
//!
//! Used by recovery on open (from the oldest checkpoint) and by reconstruct (from the start).
//! A bad record followed by a good one in its segment is damage in durable data: it is skipped
//! (`scan_repair.rs`). A bad record with no good record after it in its segment is a torn tail:
//! the segment is cut there (nothing after it was acknowledged, because acknowledgements wait
//! for a flush and a flush covers every earlier write). A segment whose header is bad gets its
//! nonce back from its records if it can; otherwise the last segment is a torn creation and is
//! removed, and an earlier one is left alone and skipped (its records cannot be verified).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::codec::{SpoolPos, all_zero, file_len, nonce_seed, read_at, set_len, write_at};
use super::opening::Budget;
use super::record::{Head, RECORD_HEADER_BYTES, RecordHeader, decode_header, tombstone_uids};
use super::scan_repair::{Resync, recover_nonce};
use super::spool::{
    SEGMENT_HEADER_BYTES, Spool, SpoolRef, encode_segment_header, read_segment_header,
};
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::types::{MailboxId, Uid};

/// Bytes read at once while checksumming a payload.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// One good record.
#[derive(Clone, Debug)]
pub(crate) struct Scanned {
    pub spool: SpoolRef,
    pub head: Head,
    /// A tombstone's UIDs (empty for messages).
    pub uids: Vec<Uid>,
}

/// What a scan found.
#[derive(Debug, Default)]
pub(crate) struct ScanResult {
    /// Good records in spool order.
    pub records: Records,
    /// Bytes cut (torn tail plus removed segments).
    pub truncated_bytes: u64,
    /// Segments removed (a torn creation: the last segment's header was bad and its nonce
    /// could not be recovered). Index entries into them must go.
    pub removed_segments: Vec<u32>,
    /// Segment headers rewritten with a nonce recovered from their records.
    pub headers_repaired: u64,
    /// Bytes of bad records skipped because good records follow them (left on disk).
    pub damaged_bytes: u64,
    /// The skipped spans, `[start, end)`, in spool order.
    pub damaged: Vec<(SpoolPos, SpoolPos)>,
    /// Gap records stepped over (spool compaction's, `spool_gap.rs`), `[start, end)`.
    pub gaps: Vec<(SpoolPos, SpoolPos)>,
    /// For each mailbox, the positions in `records` of its records (messages and tombstones).
    by_mailbox: BTreeMap<MailboxId, Vec<usize>>,
}

impl ScanResult {
    /// Adds a good record (in spool order).
    fn push(&mut self, scanned: Scanned) {
        let mailbox = match scanned.head {
            Head::Message(head) => head.mailbox,
            Head::Tombstone { mailbox, .. } => mailbox,
        };
        debug_assert!(self.records.last().is_none_or(|r| r.spool.end() <= scanned.spool.pos()));
        self.by_mailbox.entry(mailbox).or_default().push(self.records.len());
        self.records.push(scanned);
    }

    /// The positions in `records` of the records of `mailbox`, in spool order.
    pub(crate) fn of_mailbox(&self, mailbox: MailboxId) -> &[usize] {
        self.by_mailbox.get(&mailbox).map_or(&[], Vec::as_slice)
    }

    /// The record that starts at `pos`, if one was found there.
    pub(crate) fn at(&self, pos: SpoolPos) -> Option<&Scanned> {
        let at = self.records.partition_point(|r| r.spool.pos() < pos);
        (at < self.records.len()).then(|| &self.records[at]).filter(|r| r.spool.pos() == pos)
    }

    /// True when the record `spool` refers to lies wholly inside a gap record (spool
    /// compaction took it away).
    pub(crate) fn in_gap(&self, spool: SpoolRef) -> bool {
        let (first, last) = (spool.pos(), spool.end());
        self.gaps.iter().any(|&(start, end)| start <= first && last <= end)
    }

    /// True when the record `spool` refers to lies wholly in a skipped damaged span. (A
    /// reference that runs past the span's end does not: the good record after the span sits
    /// where it claims its own bytes, so it was never written there; such an entry is
    /// treated as torn.)
    pub(crate) fn is_damaged(&self, spool: SpoolRef) -> bool {
        let (first, last) = (spool.pos(), spool.end());
        self.damaged.iter().any(|&(start, end)| start <= first && last <= end)
    }
}

/// Records kept in chunks of [`RECORDS_CHUNK`], so that adding one never copies more than a
/// chunk: a flat vector would copy every record found so far in whichever scan step passes a
/// power of two (milliseconds for a large spool, inside one bounded step).
#[derive(Debug, Default)]
pub(crate) struct Records {
    chunks: Vec<Vec<Scanned>>,
    len: usize,
}

/// Records per chunk of [`Records`].
const RECORDS_CHUNK: usize = 4096;

impl Records {
    fn push(&mut self, record: Scanned) {
        if self.chunks.last().is_none_or(|chunk| chunk.len() == RECORDS_CHUNK) {
            self.chunks.push(Vec::with_capacity(RECORDS_CHUNK));
        }
        self.chunks.last_mut().expect("a chunk with room").push(record);
        self.len += 1;
    }

    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The last one.
    pub(crate) fn last(&self) -> Option<&Scanned> {
        self.chunks.last().and_then(|chunk| chunk.last())
    }

    /// Every record from position `start` on, in spool order.
    pub(crate) fn iter_from(&self, start: usize) -> impl Iterator<Item = &Scanned> {
        let (chunk, skip) = (start / RECORDS_CHUNK, start % RECORDS_CHUNK);
        let first = self.chunks.get(chunk).map_or(&[][..], |c| c.get(skip..).unwrap_or(&[]));
        first.iter().chain(self.chunks.iter().skip(chunk + 1).flatten())
    }

    /// Every record, in spool order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Scanned> {
        self.iter_from(0)
    }

    /// The position of the first record for which `before` is false (it must be true for a
    /// prefix of the records and false for the rest).
    pub(crate) fn partition_point(&self, before: impl Fn(&Scanned) -> bool) -> usize {
        let chunk = self.chunks.partition_point(|c| c.last().is_some_and(&before));
        let inside = self.chunks.get(chunk).map_or(0, |c| c.partition_point(&before));
        chunk * RECORDS_CHUNK + inside
    }
}

impl std::ops::Index<usize> for Records {
    type Output = Scanned;

    fn index(&self, position: usize) -> &Scanned {
        &self.chunks[position / RECORDS_CHUNK][position % RECORDS_CHUNK]
    }
}

/// References the indexes hold into one segment, by offset (at most a few are used).
pub(crate) type Hints<'a> = &'a dyn Fn(u32) -> Vec<SpoolRef>;

/// Scans from `from` to the end of the spool (see the module docs), in one piece. Segments
/// before `from` only have their header checked (and repaired if damaged). `hints` gives, for
/// a segment whose header is bad, the references the indexes hold into it.
pub(crate) fn scan<D: Disk>(
    disk: &D,
    spool: &mut Spool<D>,
    from: SpoolPos,
    hints: Hints<'_>,
) -> Result<ScanResult, StorageError> {
    let mut scanner = Scanner::new(spool.segments(), from);
    scanner.step(disk, spool, hints, &mut Budget::unlimited())?;
    assert!(scanner.is_done(), "an unlimited budget scans everything");
    Ok(scanner.into_result())
}

/// A scan done in pieces: each [`Scanner::step`] checks records until its budget is spent
/// (one unit per 4 KiB of record, at least one per record; a segment header is one unit). A
/// large record is checked across steps ([`RecordCheck`]), and so is the search for the next
/// good record after a damaged one (`Resync`); the repair of a segment header is done whole.
pub(crate) struct Scanner<F> {
    from: SpoolPos,
    /// The segments present when the scan started, ascending.
    numbers: Vec<u32>,
    /// The next segment to start, in `numbers`.
    next: usize,
    /// The segment being scanned.
    current: Option<Cursor<F>>,
    result: ScanResult,
    /// Spool bytes checked or skipped so far.
    covered: u64,
}

/// Where a scan is in one segment.
struct Cursor<F> {
    number: u32,
    file: F,
    path: PathBuf,
    nonce: u64,
    /// The next record's offset: every record before it checked out or was skipped.
    offset: u64,
    len: u64,
    /// A bad record with no good record after it was found at `offset`: the tail is cut.
    torn: bool,
    /// The record at `offset`, while it is being checked in pieces.
    check: Option<RecordCheck>,
    /// The search for the next good record after the bad one at `offset`, in pieces.
    search: Option<Resync>,
}

impl<F: DiskFile> Scanner<F> {
    /// A scan of `segments` from `from`.
    pub(crate) fn new(segments: &[u32], from: SpoolPos) -> Scanner<F> {
        let numbers = segments.to_vec();
        Scanner { from, numbers, next: 0, current: None, result: ScanResult::default(), covered: 0 }
    }

    /// True when every segment was scanned.
    pub(crate) fn is_done(&self) -> bool {
        self.current.is_none() && self.next == self.numbers.len()
    }

    /// What the scan found so far.
    pub(crate) fn result(&self) -> &ScanResult {
        &self.result
    }

    /// Spool bytes checked or skipped so far.
    pub(crate) fn covered_bytes(&self) -> u64 {
        self.covered
    }

    /// What the scan found.
    pub(crate) fn into_result(self) -> ScanResult {
        assert!(self.is_done(), "the scan is finished");
        self.result
    }

    /// Scans until `budget` is spent or the spool is done.
    pub(crate) fn step<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        spool: &mut Spool<D>,
        hints: Hints<'_>,
        budget: &mut Budget,
    ) -> Result<(), StorageError> {
        while budget.left() && !self.is_done() {
            match &mut self.current {
                None => self.start_segment(disk, spool, hints)?,
                Some(cursor) if cursor.offset < cursor.len && !cursor.torn => {
                    let covered = scan_record(cursor, &mut self.result, budget.room_bytes())?;
                    self.covered += covered;
                    budget.spend_bytes(covered);
                    continue;
                }
                Some(cursor) => {
                    if cursor.offset < cursor.len {
                        let (path, offset, len) = (&cursor.path, cursor.offset, cursor.len);
                        tracing::warn!(path = %path.display(), offset, len, "cutting torn spool tail");
                        self.result.truncated_bytes += len - offset;
                        set_len(&cursor.file, path, offset)?;
                    }
                    self.current = None;
                }
            }
            budget.spend(1);
        }
        Ok(())
    }

    /// Checks the header of the next segment and starts its records (if it is at or past
    /// `from`); removes a last segment whose header is bad beyond repair.
    fn start_segment<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        spool: &mut Spool<D>,
        hints: Hints<'_>,
    ) -> Result<(), StorageError> {
        let number = self.numbers[self.next];
        self.next += 1;
        let file = spool.file(disk, number)?;
        let path = spool.path(number);
        let len = file_len(&file, &path)?;
        let result = &mut self.result;
        let Some((nonce, start)) = segment_nonce(&file, &path, number, len, hints, result)? else {
            if Some(&number) == self.numbers.last() {
                // A torn segment creation: nothing in it was acknowledged.
                tracing::warn!(path = %path.display(), "removing a segment with a bad header");
                self.result.truncated_bytes += len;
                self.result.removed_segments.push(number);
                spool.remove_after(disk, number - 1)?;
            } else {
                tracing::error!(path = %path.display(), "segment header damaged beyond repair");
            }
            return Ok(());
        };
        if number < self.from.segment() {
            return Ok(());
        }
        let mut offset = start;
        if number == self.from.segment() {
            offset = offset.max(u64::from(self.from.offset()));
        }
        let (check, search) = (None, None);
        let torn = false;
        self.current = Some(Cursor { number, file, path, nonce, offset, len, torn, check, search });
        Ok(())
    }
}

/// The nonce of a segment and where its records start; a bad header is rewritten with a nonce
/// recovered from the segment's records. `None` when the header is bad beyond repair.
fn segment_nonce<F: DiskFile>(
    file: &F,
    path: &Path,
    number: u32,
    len: u64,
    hints: Hints<'_>,
    result: &mut ScanResult,
) -> Result<Option<(u64, u64)>, StorageError> {
    if let Some(header) = read_segment_header(file, path)?.filter(|h| h.number == number) {
        let start = u64::from(header.header_size).max(SEGMENT_HEADER_BYTES);
        // skua writes only 64-byte segment headers. A longer header_size (a newer minor's)
        // has header bytes at 64, never a record that checks out with the segment's nonce
        // (which no client knows): when one does, header_size is damage, and trusting it would
        // skip records and put appends where the next open does not look.
        let first_record = start != SEGMENT_HEADER_BYTES
            && check_record(file, path, header.nonce, number, SEGMENT_HEADER_BYTES, len)?.is_some();
        if first_record {
            tracing::warn!(path = %path.display(), "segment header_size damaged; rewritten");
            write_at(file, path, &encode_segment_header(number, header.nonce), 0)?;
            result.headers_repaired += 1;
            return Ok(Some((header.nonce, SEGMENT_HEADER_BYTES)));
        }
        return Ok(Some((header.nonce, start)));
    }
    let Some(nonce) = recover_nonce(file, path, len, &hints(number))? else {
        return Ok(None);
    };
    tracing::warn!(path = %path.display(), "segment header damaged; rewritten with its nonce");
    write_at(file, path, &encode_segment_header(number, nonce), 0)?;
    result.headers_repaired += 1;
    Ok(Some((nonce, SEGMENT_HEADER_BYTES)))
}

/// Checks at most about `bytes_max` more bytes of the record at the cursor (at least one);
/// once it is checked, adds it, or, if it is bad, searches on for the next good record in the
/// segment, in pieces too (marking the cursor torn when there is none). Returns the bytes it
/// read and checksummed.
fn scan_record<F: DiskFile>(
    cursor: &mut Cursor<F>,
    result: &mut ScanResult,
    bytes_max: u64,
) -> Result<u64, StorageError> {
    let Cursor { number, ref file, ref path, nonce, offset, len, .. } = *cursor;
    let mut covered = 0;
    if cursor.search.is_none() {
        // The header read that starts a check counts as checked bytes too.
        let (check, header) = match cursor.check.as_mut() {
            Some(check) => (Some(check), 0),
            None => {
                cursor.check = RecordCheck::start(file, path, nonce, number, offset, len)?;
                // Not a record: a gap spool compaction left is stepped over whole (looked
                // for only here, so the common path reads each header once).
                if cursor.check.is_none()
                    && let Some(gap) = super::spool_gap::gap_at(file, path, nonce, offset, len)?
                {
                    let start = u32::try_from(offset).expect("segments < 4 GiB");
                    let end = u32::try_from(offset + gap).expect("segments < 4 GiB");
                    result.gaps.push((SpoolPos::new(number, start), SpoolPos::new(number, end)));
                    cursor.offset = offset + gap;
                    return Ok(RECORD_HEADER_BYTES as u64);
                }
                (cursor.check.as_mut(), RECORD_HEADER_BYTES as u64)
            }
        };
        let (checked, outcome) = match check {
            Some(check) => check.advance(file, path, bytes_max.saturating_sub(header).max(1))?,
            None => (0, Some(None)),
        };
        covered = checked + header;
        match outcome {
            None => return Ok(covered),
            Some(Some(scanned)) => {
                cursor.check = None;
                cursor.offset = u64::from(scanned.spool.offset) + u64::from(scanned.spool.len);
                result.push(scanned);
                return Ok(covered);
            }
            Some(None) => {
                cursor.check = None;
                cursor.search = Some(Resync::new(nonce, number, offset + 8));
            }
        }
    }
    let search = cursor.search.as_mut().expect("a bad record starts a search");
    let (searched, outcome) = search.advance(file, path, len, bytes_max.saturating_sub(covered))?;
    covered += searched;
    let Some(outcome) = outcome else {
        return Ok(covered);
    };
    let gap = search.gap();
    cursor.search = None;
    let Some(next) = outcome else {
        // A gap after the damage: the damage is skipped, the gap stepped over next.
        if let Some(gap) = gap {
            tracing::error!(path = %path.display(), offset, "skipping a damaged spool record");
            result.damaged_bytes += gap - offset;
            let (start, end) = (u32::try_from(offset), u32::try_from(gap));
            let (start, end) = (start.expect("segments < 4 GiB"), end.expect("segments < 4 GiB"));
            result.damaged.push((SpoolPos::new(number, start), SpoolPos::new(number, end)));
            cursor.offset = gap;
            return Ok(covered);
        }
        cursor.torn = true;
        return Ok(covered);
    };
    let skipped = u64::from(next.spool.offset) - offset;
    tracing::error!(path = %path.display(), offset, skipped, "skipping a damaged spool record");
    result.damaged_bytes += skipped;
    let start = u32::try_from(offset).expect("segments < 4 GiB");
    result.damaged.push((SpoolPos::new(number, start), SpoolPos::new(number, next.spool.offset)));
    cursor.offset = u64::from(next.spool.offset) + u64::from(next.spool.len);
    result.push(next);
    Ok(covered)
}

/// Checks the record at `offset`, in one piece; `None` if it is torn or damaged.
pub(super) fn check_record<F: DiskFile>(
    file: &F,
    path: &Path,
    nonce: u64,
    segment: u32,
    offset: u64,
    len: u64,
) -> Result<Option<Scanned>, StorageError> {
    let Some(mut check) = RecordCheck::start(file, path, nonce, segment, offset, len)? else {
        return Ok(None);
    };
    let (_, outcome) = check.advance(file, path, u64::MAX)?;
    Ok(outcome.expect("an unlimited check finishes"))
}

/// A record being checked in pieces ([`RecordCheck::advance`]), so that a record of many
/// megabytes is checksummed across several scan steps rather than inside one.
pub(crate) struct RecordCheck {
    segment: u32,
    offset: u64,
    header: RecordHeader,
    /// Bytes of the record checked so far (its header first).
    at: u64,
    /// The checksum of those bytes (with the nonce; the header's bytes from 8 on).
    crc: u32,
    /// A tombstone's payload, gathered to decode its UIDs at the end.
    tombstone_bytes: Vec<u8>,
}

impl RecordCheck {
    /// Reads and decodes the header of the record at `offset`; `None` when it is torn or
    /// damaged, or claims more bytes than the segment holds.
    pub(super) fn start<F: DiskFile>(
        file: &F,
        path: &Path,
        nonce: u64,
        segment: u32,
        offset: u64,
        len: u64,
    ) -> Result<Option<RecordCheck>, StorageError> {
        if len - offset < RECORD_HEADER_BYTES as u64 {
            return Ok(None);
        }
        let mut head_bytes = [0u8; RECORD_HEADER_BYTES];
        read_at(file, path, &mut head_bytes, offset)?;
        let Some(header) = decode_header(&head_bytes) else {
            return Ok(None);
        };
        let record_len = header.record_len();
        if record_len > len - offset || offset + record_len > u64::from(u32::MAX) {
            return Ok(None);
        }
        let crc = crc32c::crc32c_append(nonce_seed(nonce), &head_bytes[8..]);
        let at = RECORD_HEADER_BYTES as u64;
        Ok(Some(RecordCheck { segment, offset, header, at, crc, tombstone_bytes: Vec::new() }))
    }

    /// Checks at most `bytes_max` more bytes (at least one). Returns the bytes checked, and,
    /// once the whole record was, whether it is good: `Some(Some(record))` or `Some(None)`.
    pub(super) fn advance<F: DiskFile>(
        &mut self,
        file: &F,
        path: &Path,
        bytes_max: u64,
    ) -> Result<(u64, Option<Option<Scanned>>), StorageError> {
        let record_len = self.header.record_len();
        let unpadded = RECORD_HEADER_BYTES as u64 + u64::from(self.header.payload_len);
        let until = record_len.min(self.at.saturating_add(bytes_max.max(1)));
        let first = self.at;
        let chunk = (SCAN_CHUNK_BYTES as u64).min(until - self.at);
        let mut buf = vec![0u8; usize::try_from(chunk).expect("bounded")];
        while self.at < until {
            let n = usize::try_from((until - self.at).min(chunk)).expect("bounded");
            read_at(file, path, &mut buf[..n], self.offset + self.at)?;
            // Split the chunk into payload (checksummed) and padding (must be zero).
            let payload_n =
                usize::try_from(unpadded.saturating_sub(self.at).min(n as u64)).expect("bounded");
            self.crc = crc32c::crc32c_append(self.crc, &buf[..payload_n]);
            if !all_zero(&buf[payload_n..n]) {
                return Ok((self.at + n as u64 - first, Some(None)));
            }
            if let Head::Tombstone { .. } = self.header.head {
                self.tombstone_bytes.extend_from_slice(&buf[..payload_n]);
            }
            self.at += n as u64;
        }
        let checked = self.at - first;
        if self.at < record_len {
            return Ok((checked, None));
        }
        Ok((checked, Some(self.finish())))
    }

    /// The record, once every byte was checked; `None` if its checksum fails.
    fn finish(&mut self) -> Option<Scanned> {
        if self.crc != self.header.crc {
            return None;
        }
        let uids = match self.header.head {
            Head::Tombstone { .. } => tombstone_uids(&self.tombstone_bytes)?,
            Head::Message(_) => Vec::new(),
        };
        let spool = SpoolRef {
            segment: self.segment,
            offset: u32::try_from(self.offset).expect("checked at start"),
            len: u32::try_from(self.header.record_len()).expect("checked at start"),
            crc: self.header.crc,
        };
        Some(Scanned { spool, head: self.header.head, uids })
    }
}
