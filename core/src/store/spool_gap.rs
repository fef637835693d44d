//! Gap records (spool format 1.3; `core/FORMAT.md`, "Spool segments", gaps): what spool
//! compaction (`spool_compact.rs`) leaves where records that nothing needs any more were.
//!
//! A gap is a 48-byte record header (kind 3) whose length covers the space of the records it
//! replaced; the bytes after its header are never written, so on a file system with holes they
//! take no space. Its checksum covers its header only (with the segment's nonce, so client
//! bytes cannot pose as one): a scan reads 48 bytes and steps over the whole span. Every other
//! reader takes a gap for a record that is not there (`record::decode_header` refuses kind 3).

use std::path::Path;

use super::codec::{all_zero, get_u32, nonce_seed, put_u32, read_at};
use super::record::RECORD_HEADER_BYTES;
use crate::disk::DiskFile;
use crate::error::StorageError;

/// The kind byte of a gap record.
pub(crate) const KIND_GAP: u8 = 3;
/// Bytes of a gap record's header (the only bytes of it that are written).
pub(crate) const GAP_HEADER_BYTES: u64 = RECORD_HEADER_BYTES as u64;

/// Encodes the header of a gap of `len` bytes (a multiple of 8, at least a header).
pub(crate) fn encode_gap(nonce: u64, len: u64) -> [u8; RECORD_HEADER_BYTES] {
    assert!(len >= GAP_HEADER_BYTES && len.is_multiple_of(8));
    let payload = u32::try_from(len - GAP_HEADER_BYTES).expect("a gap lies inside a segment");
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0] = KIND_GAP;
    put_u32(&mut header, 8, payload);
    let crc = crc32c::crc32c_append(nonce_seed(nonce), &header[8..]);
    put_u32(&mut header, 4, crc);
    // Pair assertion: what we write decodes the way the scan will decode it.
    debug_assert_eq!(decode_gap(nonce, &header), Some(len));
    header
}

/// The length of the gap whose header is `header`; `None` when it is not a gap that checks
/// out with `nonce`.
pub(crate) fn decode_gap(nonce: u64, header: &[u8]) -> Option<u64> {
    let header = header.get(..RECORD_HEADER_BYTES)?;
    let valid = header[0] == KIND_GAP
        && all_zero(&header[1..4])
        && all_zero(&header[12..])
        && get_u32(header, 8).is_multiple_of(8)
        && crc32c::crc32c_append(nonce_seed(nonce), &header[8..]) == get_u32(header, 4);
    valid.then(|| GAP_HEADER_BYTES + u64::from(get_u32(header, 8)))
}

/// The length of the gap at `offset` of a segment of `len` bytes, if one is there and lies
/// wholly inside the segment.
///
/// # Errors
/// The disk failed.
pub(crate) fn gap_at<F: DiskFile>(
    file: &F,
    path: &Path,
    nonce: u64,
    offset: u64,
    len: u64,
) -> Result<Option<u64>, StorageError> {
    if len.saturating_sub(offset) < GAP_HEADER_BYTES {
        return Ok(None);
    }
    let mut header = [0u8; RECORD_HEADER_BYTES];
    read_at(file, path, &mut header, offset)?;
    Ok(decode_gap(nonce, &header).filter(|&gap| gap <= len - offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_round_trip_and_damage() {
        let header = encode_gap(7, 4096);
        assert_eq!(decode_gap(7, &header), Some(4096));
        assert_eq!(decode_gap(8, &header), None, "another segment's nonce");
        assert!(super::super::record::decode_header(&header).is_none(), "never a record");
        for byte in 0..header.len() {
            for bit in 0..8 {
                let mut bad = header;
                bad[byte] ^= 1 << bit;
                assert_eq!(decode_gap(7, &bad), None, "byte {byte} bit {bit}");
            }
        }
        assert_eq!(decode_gap(7, &encode_gap(7, 48)), Some(48), "a bare header");
    }

    /// A segment: record 1, a damaged record 2, a gap of 1 MiB (its body a hole), record 3.
    /// Returns the disk and the offsets of record 2, the gap and record 3.
    fn damaged_before_a_gap() -> (crate::disk::sim::SimDisk, u64, u64, u64) {
        use crate::disk::{Disk, OpenMode};
        use crate::store::codec::write_at;
        use crate::store::record::{MessageHead, encode_message};
        use crate::store::spool::encode_segment_header;
        use crate::types::{Flags, InternalDate, MailboxId, Uid};
        const NONCE: u64 = 0x0123_4567_89ab_cdef;
        let disk = crate::disk::sim::SimDisk::new();
        disk.create_dir_all(Path::new("u/spool")).unwrap();
        let path = Path::new("u/spool/00000001.seg");
        let file = disk.open(path, OpenMode::CreateIfMissing).unwrap();
        write_at(&file, path, &encode_segment_header(1, NONCE), 0).unwrap();
        let record = |uid: u32| {
            let head = MessageHead {
                mailbox: MailboxId(0),
                uid: Uid::new(uid).unwrap(),
                date: InternalDate { unix_seconds: 1, zone_minutes: 0 },
                flags: Flags::default(),
                message_len: 2000,
                cache_len: 0,
                email_id_stored: false,
                thread_keys: None,
            };
            encode_message(NONCE, &head, &[b'x'; 2000], b"", None, None)
        };
        let first = record(1);
        let mut second = record(2);
        second[100] ^= 1;
        let damaged = 64 + first.len() as u64;
        let gap = damaged + second.len() as u64;
        let third = gap + (1 << 20);
        write_at(&file, path, &first, 64).unwrap();
        write_at(&file, path, &second, damaged).unwrap();
        write_at(&file, path, &encode_gap(NONCE, 1 << 20), gap).unwrap();
        write_at(&file, path, &record(3), third).unwrap();
        (disk, damaged, gap, third)
    }

    #[test]
    fn damage_right_before_a_gap_does_not_cut_the_records_after_it() {
        //! A damaged record followed by a gap: the search for the next good record used to
        //! find none (a gap is no record, and its body is zeros), so the scan took the rest of
        //! the segment for a torn tail and cut it, with record 3. It stops at the gap now.
        use crate::store::codec::SpoolPos;
        let (disk, damaged, gap, third) = damaged_before_a_gap();
        let mut spool = crate::store::spool::Spool::list(&disk, Path::new("u")).unwrap();
        let scanned =
            crate::store::scan::scan(&disk, &mut spool, SpoolPos(0), &|_| Vec::new()).unwrap();
        let uids: Vec<u32> = scanned
            .records
            .iter()
            .map(|r| match r.head {
                crate::store::record::Head::Message(h) => h.uid.get(),
                crate::store::record::Head::Tombstone { .. } => 0,
            })
            .collect();
        assert_eq!(uids, [1, 3]);
        assert_eq!(scanned.truncated_bytes, 0);
        assert_eq!(scanned.damaged_bytes, gap - damaged);
        let at = |offset: u64| SpoolPos::new(1, u32::try_from(offset).unwrap());
        assert_eq!(scanned.gaps, [(at(gap), at(third))]);
    }
}
