//! Damage the spool scan steps over instead of cutting: a segment header whose nonce can be
//! recovered, and a bad record with good records after it (`core/FORMAT.md`, "Recovery on
//! open", step 4).
//!
//! A crash only ever tears the *tail* of what was written since the last flush, so recovery
//! used to cut the spool at the first bad record. Damage at rest (a flipped bit, a zeroed or
//! misdirected sector) can hit durable, acknowledged records anywhere; cutting there would
//! throw away every later record, all intact and checksummed. So:
//!
//! - a segment whose header is bad gets its nonce back from its own records (`crc_seed.rs`),
//!   starting only from records the indexes reference (their checksum copy proves the record
//!   header authentic, so bytes a client wrote can never pose as the start of a record chain),
//!   confirmed by a second record; the header is then rewritten;
//! - a bad record is skipped when a good record follows it in the same segment: the search
//!   tries every 8-byte-aligned position after it, and only a record whose checksum holds with
//!   the segment's nonce counts (a client cannot forge one).

use std::path::Path;

use super::codec::{get_u64, read_at};
use super::crc_seed::{nonce_for, seed_for};
use super::record::{RECORD_HEADER_BYTES, check_whole, decode_header};
use super::scan::{RecordCheck, Scanned, check_record};
use super::spool::{SEGMENT_HEADER_BYTES, SpoolRef};
use crate::disk::DiskFile;
use crate::error::StorageError;
use crate::limits::{
    NONCE_RECOVERY_RECORD_BYTES_MAX, NONCE_RECOVERY_RECORDS_MAX, RESYNC_CHECKED_BYTES_MAX,
};

/// Bytes read at once while searching for the next good record.
const RESYNC_CHUNK_BYTES: u64 = 1 << 20;
const _: () = assert!(RESYNC_CHUNK_BYTES > RECORD_HEADER_BYTES as u64);

/// The nonce of a segment whose header is bad, recovered from the records that `hints`
/// (references the indexes hold into this segment, by offset) point at; `None` when no two
/// records agree. The damaged header's own nonce field is tried first (damage elsewhere in the
/// header leaves it intact).
///
/// # Errors
/// The disk failed.
pub(crate) fn recover_nonce<F: DiskFile>(
    file: &F,
    path: &Path,
    len: u64,
    hints: &[SpoolRef],
) -> Result<Option<u64>, StorageError> {
    let stored = if len >= SEGMENT_HEADER_BYTES {
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        read_at(file, path, &mut header, 0)?;
        Some(get_u64(&header, 24))
    } else {
        None
    };
    // A record checks out only with its segment's nonce, which no client knows: if the first
    // record checks out with the nonce field of the damaged header, the damage hit another
    // field (a flipped version bit, the creation time, the checksum) and the nonce is the
    // segment's. This needs no references, so `reconstruct` repairs such a header too.
    if let Some(nonce) = stored
        && check_record(file, path, nonce, 0, SEGMENT_HEADER_BYTES, len)?.is_some()
    {
        return Ok(Some(nonce));
    }
    let usable: Vec<SpoolRef> = hints
        .iter()
        .copied()
        .filter(|r| {
            u64::from(r.offset) >= SEGMENT_HEADER_BYTES
                && u64::from(r.offset) + u64::from(r.len) <= len
                && r.len <= NONCE_RECOVERY_RECORD_BYTES_MAX
        })
        .take(NONCE_RECOVERY_RECORDS_MAX)
        .collect();
    for (i, reference) in usable.iter().enumerate() {
        let Some(bytes) = read_referenced(file, path, *reference)? else {
            continue;
        };
        if let Some(nonce) = stored.filter(|&n| check_whole(n, &bytes).is_some()) {
            return Ok(Some(nonce));
        }
        let header = decode_header(&bytes).expect("read_referenced decoded it");
        let unpadded = RECORD_HEADER_BYTES + header.payload_len as usize;
        let Some(nonce) = seed_for(&bytes[8..unpadded], reference.crc).and_then(nonce_for) else {
            continue;
        };
        let next = reference.offset + reference.len;
        let confirmed = check_at(file, path, len, nonce, next)?
            || any_checks(file, path, nonce, &usable[i + 1..])?;
        if confirmed {
            return Ok(Some(nonce));
        }
    }
    Ok(None)
}

/// The bytes of the record `reference` points at, if its header decodes and agrees with the
/// reference (length and checksum copy).
fn read_referenced<F: DiskFile>(
    file: &F,
    path: &Path,
    reference: SpoolRef,
) -> Result<Option<Vec<u8>>, StorageError> {
    let mut bytes = vec![0u8; reference.len as usize];
    read_at(file, path, &mut bytes, u64::from(reference.offset))?;
    let agrees = decode_header(&bytes)
        .is_some_and(|h| h.crc == reference.crc && h.record_len() == u64::from(reference.len));
    Ok(agrees.then_some(bytes))
}

/// True when a whole record at `offset` checks out with `nonce`.
fn check_at<F: DiskFile>(
    file: &F,
    path: &Path,
    len: u64,
    nonce: u64,
    offset: u32,
) -> Result<bool, StorageError> {
    let offset = u64::from(offset);
    if offset + RECORD_HEADER_BYTES as u64 > len {
        return Ok(false);
    }
    let mut head = [0u8; RECORD_HEADER_BYTES];
    read_at(file, path, &mut head, offset)?;
    let Some(header) = decode_header(&head) else {
        return Ok(false);
    };
    let record_len = header.record_len();
    if offset + record_len > len || record_len > u64::from(NONCE_RECOVERY_RECORD_BYTES_MAX) {
        return Ok(false);
    }
    let mut bytes = vec![0u8; usize::try_from(record_len).expect("bounded")];
    read_at(file, path, &mut bytes, offset)?;
    Ok(check_whole(nonce, &bytes).is_some())
}

/// True when any referenced record checks out with `nonce`.
fn any_checks<F: DiskFile>(
    file: &F,
    path: &Path,
    nonce: u64,
    references: &[SpoolRef],
) -> Result<bool, StorageError> {
    for &reference in references {
        if let Some(bytes) = read_referenced(file, path, reference)?
            && check_whole(nonce, &bytes).is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The first good record at an 8-byte-aligned position in `[from, len)` of a segment, if any
/// is found before `limits::RESYNC_CHECKED_BYTES_MAX` bytes were checksummed; in one piece
/// (the scan uses [`Resync`] in pieces).
///
/// # Errors
/// The disk failed.
#[cfg(test)]
pub(crate) fn resync<F: DiskFile>(
    file: &F,
    path: &Path,
    nonce: u64,
    segment: u32,
    from: u64,
    len: u64,
) -> Result<Option<Scanned>, StorageError> {
    let mut search = Resync::new(nonce, segment, from);
    let (_, found) = search.advance(file, path, len, u64::MAX)?;
    Ok(found.expect("an unlimited search finishes"))
}

/// The search for the next good record after a damaged one, done in pieces
/// ([`Resync::advance`]): every 8-byte-aligned position is tried, in order; where a record
/// header decodes and fits in the segment, the record is checked (in pieces too), and the
/// first that checks out ends the search.
pub(crate) struct Resync {
    nonce: u64,
    segment: u32,
    /// The next position to try (or the one whose record is being checked).
    at: u64,
    /// Bytes of candidate records checksummed so far.
    checked: u64,
    /// The record at `at`, being checked.
    candidate: Option<RecordCheck>,
    /// Bytes read ahead from `window_start`, where headers are decoded.
    window: Vec<u8>,
    window_start: u64,
    /// A gap record (spool compaction's) found before any good record: the search ended
    /// there, and the scan steps over the gap rather than cutting the segment.
    gap: Option<u64>,
}

impl Resync {
    /// A search from `from` (8-byte aligned).
    pub(crate) fn new(nonce: u64, segment: u32, from: u64) -> Resync {
        assert!(from.is_multiple_of(8));
        let (candidate, window, window_start) = (None, Vec::new(), from);
        let gap = None;
        Resync { nonce, segment, at: from, checked: 0, candidate, window, window_start, gap }
    }

    /// Where a gap record ended the search without a good record before it.
    pub(crate) fn gap(&self) -> Option<u64> {
        self.gap
    }

    /// Searches on, reading and checksumming at most about `bytes_max` bytes (at least one
    /// position). Returns the bytes read and checksummed, and, once the search is over, its
    /// outcome: `Some(Some(record))`, or `Some(None)` when no good record follows.
    ///
    /// # Errors
    /// The disk failed.
    pub(crate) fn advance<F: DiskFile>(
        &mut self,
        file: &F,
        path: &Path,
        len: u64,
        bytes_max: u64,
    ) -> Result<(u64, Option<Option<Scanned>>), StorageError> {
        let head_bytes = RECORD_HEADER_BYTES as u64;
        let mut spent = 0u64;
        loop {
            if let Some(check) = self.candidate.as_mut() {
                let (bytes, outcome) =
                    check.advance(file, path, bytes_max.saturating_sub(spent))?;
                spent += bytes;
                match outcome {
                    None => return Ok((spent, None)),
                    Some(Some(found)) => return Ok((spent, Some(Some(found)))),
                    Some(None) => {
                        self.candidate = None;
                        self.at += 8;
                    }
                }
            }
            if self.at + head_bytes > len {
                return Ok((spent, Some(None)));
            }
            if spent >= bytes_max {
                return Ok((spent, None));
            }
            spent += self.fill_window(file, path, len, bytes_max.saturating_sub(spent))?;
            if let Some(outcome) = self.try_window(file, path, len)? {
                return Ok((spent, Some(outcome)));
            }
        }
    }

    /// Makes the window hold at least a header's bytes at `at`: reads from `at` (about
    /// `bytes_max` bytes, from 4 KiB to `RESYNC_CHUNK_BYTES`) unless it does already.
    /// Returns the bytes read.
    fn fill_window<F: DiskFile>(
        &mut self,
        file: &F,
        path: &Path,
        len: u64,
        bytes_max: u64,
    ) -> Result<u64, StorageError> {
        let head_bytes = RECORD_HEADER_BYTES as u64;
        let window_end = self.window_start + self.window.len() as u64;
        if self.at >= self.window_start && self.at + head_bytes <= window_end {
            return Ok(0);
        }
        let wanted = bytes_max.clamp(4096, RESYNC_CHUNK_BYTES).max(head_bytes);
        let window_len = (len - self.at).min(wanted);
        self.window.resize(usize::try_from(window_len).expect("bounded"), 0);
        read_at(file, path, &mut self.window, self.at)?;
        self.window_start = self.at;
        Ok(window_len)
    }

    /// Tries the positions from `at` whose header lies in the window; stops at the first
    /// candidate record (kept in `candidate`), or when the checked bytes pass their bound
    /// (`Some(None)`: the search gives up).
    fn try_window<F: DiskFile>(
        &mut self,
        file: &F,
        path: &Path,
        len: u64,
    ) -> Result<Option<Option<Scanned>>, StorageError> {
        let head_bytes = RECORD_HEADER_BYTES as u64;
        let window_end = self.window_start + self.window.len() as u64;
        while self.at + head_bytes <= window_end {
            let inside = usize::try_from(self.at - self.window_start).expect("bounded");
            let gap = super::spool_gap::decode_gap(self.nonce, &self.window[inside..]);
            if gap.is_some_and(|gap| self.at + gap <= len) {
                self.gap = Some(self.at);
                return Ok(Some(None));
            }
            if let Some(header) = decode_header(&self.window[inside..])
                && self.at + header.record_len() <= len
            {
                self.checked += header.record_len();
                if self.checked > RESYNC_CHECKED_BYTES_MAX {
                    let offset = self.at;
                    tracing::warn!(path = %path.display(), offset, "giving up the search for a good record");
                    return Ok(Some(None));
                }
                let start = RecordCheck::start(file, path, self.nonce, self.segment, self.at, len);
                if let Some(check) = start? {
                    self.candidate = Some(check);
                    return Ok(None);
                }
            }
            self.at += 8;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::sim::SimDisk;
    use crate::disk::{Disk, OpenMode};
    use crate::store::codec::{nonce_seed, write_at};
    use crate::store::record::{MessageHead, encode_message};
    use crate::store::spool::encode_segment_header;
    use crate::types::{Flags, InternalDate, MailboxId, Uid};

    const NONCE: u64 = 0x5eed_f00d_1234_5678;

    /// A segment of five message records; returns the file and their references.
    fn segment(disk: &SimDisk) -> (crate::disk::sim::SimFile, Vec<SpoolRef>) {
        let path = Path::new("s.seg");
        let file = disk.open(path, OpenMode::CreateIfMissing).unwrap();
        write_at(&file, path, &encode_segment_header(1, NONCE), 0).unwrap();
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut references = Vec::new();
        for uid in 1..=5u32 {
            let message = format!("Subject: {uid}\r\n\r\n{}", "z".repeat(300 * uid as usize));
            let head = MessageHead {
                mailbox: MailboxId(0),
                uid: Uid::new(uid).unwrap(),
                date: InternalDate { unix_seconds: 1, zone_minutes: 0 },
                flags: Flags::default(),
                message_len: u32::try_from(message.len()).unwrap(),
                cache_len: 1,
                email_id_stored: false,
                thread_keys: None,
            };
            let record = encode_message(NONCE, &head, message.as_bytes(), b"c", None, None);
            write_at(&file, path, &record, offset).unwrap();
            let header = decode_header(&record).unwrap();
            references.push(SpoolRef {
                segment: 1,
                offset: u32::try_from(offset).unwrap(),
                len: u32::try_from(record.len()).unwrap(),
                crc: header.crc,
            });
            offset += record.len() as u64;
        }
        (file, references)
    }

    #[test]
    fn resync_finds_the_record_after_a_damaged_one() {
        let disk = SimDisk::new();
        let (file, refs) = segment(&disk);
        let path = Path::new("s.seg");
        let len = file.len().unwrap();
        write_at(&file, path, &[0xff; 16], u64::from(refs[1].offset) + 100).unwrap();
        let found = resync(&file, path, NONCE, 1, u64::from(refs[1].offset) + 8, len).unwrap();
        assert_eq!(found.unwrap().spool, refs[2]);
        let last = u64::from(refs[4].offset) + 8;
        assert!(resync(&file, path, NONCE, 1, last, len).unwrap().is_none(), "nothing after");
        let wrong_nonce = resync(&file, path, NONCE + 1, 1, 64, len).unwrap();
        assert!(wrong_nonce.is_none(), "records only count with the segment's nonce");
    }

    #[test]
    fn a_search_in_pieces_finds_what_one_piece_finds() {
        let disk = SimDisk::new();
        let (file, refs) = segment(&disk);
        let path = Path::new("s.seg");
        let len = file.len().unwrap();
        write_at(&file, path, &[0xff; 16], u64::from(refs[1].offset) + 100).unwrap();
        for (from, nonce) in [(u64::from(refs[1].offset) + 8, NONCE), (64, NONCE + 1)] {
            let whole = resync(&file, path, nonce, 1, from, len).unwrap().map(|r| r.spool);
            for piece in [1, 7, 100, 4096] {
                let mut search = Resync::new(nonce, 1, from);
                let mut advances = 0;
                let found = loop {
                    advances += 1;
                    let (bytes, outcome) = search.advance(&file, path, len, piece).unwrap();
                    assert!(bytes <= piece.max(4096) + 4096, "{bytes} bytes for {piece}");
                    if let Some(found) = outcome {
                        break found.map(|r| r.spool);
                    }
                };
                assert_eq!(found, whole, "pieces of {piece} bytes");
                assert!(piece >= 4096 || advances > 1, "pieces of {piece} bytes: one advance");
            }
        }
    }

    #[test]
    fn a_zeroed_header_sector_gives_its_nonce_back_from_referenced_records() {
        let disk = SimDisk::new();
        let (file, refs) = segment(&disk);
        let path = Path::new("s.seg");
        let len = file.len().unwrap();
        write_at(&file, path, &[0u8; 512], 0).unwrap();
        let nonce = recover_nonce(&file, path, len, &refs).unwrap().unwrap();
        assert_eq!(nonce_seed(nonce), nonce_seed(NONCE));
        assert!(recover_nonce(&file, path, len, &[]).unwrap().is_none(), "no references");
        // One reference alone cannot be confirmed... unless the record after it checks out.
        let lone = recover_nonce(&file, path, len, &refs[4..]).unwrap();
        assert!(lone.is_none(), "the last record has nothing after it to confirm the seed");
        let confirmed = recover_nonce(&file, path, len, &refs[3..4]).unwrap();
        assert_eq!(confirmed.map(nonce_seed), Some(nonce_seed(NONCE)));
    }

    #[test]
    fn a_header_with_its_nonce_intact_is_trusted_on_one_record() {
        let disk = SimDisk::new();
        let (file, refs) = segment(&disk);
        let path = Path::new("s.seg");
        let len = file.len().unwrap();
        write_at(&file, path, &[0xee; 4], 0).unwrap();
        assert_eq!(recover_nonce(&file, path, len, &refs[4..]).unwrap(), Some(NONCE));
    }
}
