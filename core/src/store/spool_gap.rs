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
}
