//! Reading the spool record by record, checking every checksum, and cutting a torn tail.
//!
//! Used by recovery on open (from the oldest checkpoint) and by reconstruct (from the start).
//! The first record that is short, malformed or fails its checksum ends the spool: its segment
//! is truncated there and later segments are removed. Nothing after it was acknowledged,
//! because acknowledgements wait for a flush and a flush covers every earlier write.

use std::path::Path;

use super::codec::{SpoolPos, all_zero, file_len, nonce_seed, read_at, set_len};
use super::record::{Head, RECORD_HEADER_BYTES, decode_header, tombstone_uids};
use super::spool::{SEGMENT_HEADER_BYTES, Spool, SpoolRef, read_segment_header};
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::types::Uid;

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
    pub records: Vec<Scanned>,
    /// Bytes cut (torn tail plus removed segments).
    pub truncated_bytes: u64,
}

/// Scans from `from` to the end of the spool, cutting at the first bad record.
pub(crate) fn scan<D: Disk>(
    disk: &D,
    spool: &mut Spool<D>,
    from: SpoolPos,
) -> Result<ScanResult, StorageError> {
    let mut result = ScanResult::default();
    let numbers: Vec<u32> = spool
        .segments()
        .iter()
        .copied()
        .filter(|&n| n >= from.segment())
        .collect();
    for number in numbers {
        let file = spool.file(disk, number)?;
        let path = spool.path(number);
        let len = file_len(&file, &path)?;
        let header = read_segment_header(&file, &path)?.filter(|h| h.number == number);
        let Some(header) = header else {
            // A torn segment creation: nothing in it or after it was acknowledged.
            result.truncated_bytes += len;
            cut_after(disk, spool, number - 1, &mut result)?;
            break;
        };
        let mut offset = u64::from(header.header_size).max(SEGMENT_HEADER_BYTES);
        if number == from.segment() {
            offset = offset.max(u64::from(from.offset()));
        }
        while offset < len {
            match check_record(&file, &path, header.nonce, number, offset, len)? {
                Some(scanned) => {
                    offset += u64::from(scanned.spool.len);
                    result.records.push(scanned);
                }
                None => break,
            }
        }
        if offset < len {
            tracing::warn!(path = %path.display(), offset, len, "cutting torn spool tail");
            result.truncated_bytes += len - offset;
            set_len(&file, &path, offset)?;
            cut_after(disk, spool, number, &mut result)?;
            break;
        }
    }
    Ok(result)
}

/// Removes every segment after `number`, counting their bytes.
fn cut_after<D: Disk>(
    disk: &D,
    spool: &mut Spool<D>,
    number: u32,
    result: &mut ScanResult,
) -> Result<(), StorageError> {
    for &later in spool.segments().iter().filter(|&&n| n > number) {
        let file = spool.file(disk, later)?;
        result.truncated_bytes += file_len(&file, &spool.path(later))?;
    }
    spool.remove_after(disk, number)
}

/// Checks the record at `offset`; `None` if it is torn or damaged.
fn check_record<F: DiskFile>(
    file: &F,
    path: &Path,
    nonce: u64,
    segment: u32,
    offset: u64,
    len: u64,
) -> Result<Option<Scanned>, StorageError> {
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
    let unpadded = RECORD_HEADER_BYTES as u64 + u64::from(header.payload_len);
    let mut crc = crc32c::crc32c_append(nonce_seed(nonce), &head_bytes[8..]);
    let mut tombstone_bytes = Vec::new();
    let mut buf = vec![0u8; SCAN_CHUNK_BYTES.min(usize::try_from(record_len).expect("bounded"))];
    let mut at = RECORD_HEADER_BYTES as u64;
    while at < record_len {
        let n = usize::try_from((record_len - at).min(buf.len() as u64)).expect("bounded");
        read_at(file, path, &mut buf[..n], offset + at)?;
        // Split the chunk into payload (checksummed) and padding (must be zero).
        let payload_n =
            usize::try_from(unpadded.saturating_sub(at).min(n as u64)).expect("bounded");
        crc = crc32c::crc32c_append(crc, &buf[..payload_n]);
        if !all_zero(&buf[payload_n..n]) {
            return Ok(None);
        }
        if let Head::Tombstone { .. } = header.head {
            tombstone_bytes.extend_from_slice(&buf[..payload_n]);
        }
        at += n as u64;
    }
    if crc != header.crc {
        return Ok(None);
    }
    let uids = match header.head {
        Head::Tombstone { .. } => match tombstone_uids(&tombstone_bytes) {
            Some(uids) => uids,
            None => return Ok(None),
        },
        Head::Message(_) => Vec::new(),
    };
    let spool_ref = SpoolRef {
        segment,
        offset: u32::try_from(offset).expect("checked above"),
        len: u32::try_from(record_len).expect("checked above"),
        crc: header.crc,
    };
    Ok(Some(Scanned {
        spool: spool_ref,
        head: header.head,
        uids,
    }))
}
