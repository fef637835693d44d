//! Little-endian field access, checksums and shared file-header pieces for the on-disk format
//! (`core/FORMAT.md`). Every encoder and decoder in `store/` goes through these helpers, so the
//! byte order and checksum rules live in one place.

use std::path::Path;

use crate::disk::DiskFile;
use crate::error::StorageError;

/// Writes `value` at `at`.
pub(crate) fn put_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Writes `value` at `at`.
pub(crate) fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Writes `value` at `at`.
pub(crate) fn put_u64(buf: &mut [u8], at: usize, value: u64) {
    buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Writes `value` at `at`.
pub(crate) fn put_i16(buf: &mut [u8], at: usize, value: i16) {
    buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Writes `value` at `at`.
pub(crate) fn put_i64(buf: &mut [u8], at: usize, value: i64) {
    buf[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Reads the value at `at`.
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(buf[at..at + 2].try_into().expect("two bytes"))
}

/// Reads the value at `at`.
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("four bytes"))
}

/// Reads the value at `at`.
pub(crate) fn get_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(buf[at..at + 8].try_into().expect("eight bytes"))
}

/// Reads the value at `at`.
pub(crate) fn get_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_le_bytes(buf[at..at + 2].try_into().expect("two bytes"))
}

/// Reads the value at `at`.
pub(crate) fn get_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(buf[at..at + 8].try_into().expect("eight bytes"))
}

/// True when every byte is zero (reserved fields).
pub(crate) fn all_zero(buf: &[u8]) -> bool {
    buf.iter().all(|&b| b == 0)
}

/// `len` rounded up to a multiple of 8.
pub(crate) fn pad8(len: u64) -> u64 {
    len.div_ceil(8) * 8
}

/// The checksum seed for a nonce'd checksum: crc32c of the nonce's 8 LE bytes.
pub(crate) fn nonce_seed(nonce: u64) -> u32 {
    crc32c::crc32c(&nonce.to_le_bytes())
}

/// A random nonce for a new file.
pub(crate) fn new_nonce() -> u64 {
    rand::random()
}

/// The wall clock, seconds since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The fixed start of every skua file: magic, format_major, format_minor, header_size.
pub(crate) struct Preamble {
    /// The file kind's magic.
    pub magic: [u8; 8],
    /// The format_major this build writes (and the newest it reads).
    pub major: u16,
    /// The format_minor this build writes.
    pub minor: u16,
}

impl Preamble {
    /// Writes magic, versions and `header_size` into the first 16 bytes of `header`.
    pub(crate) fn write(&self, header: &mut [u8], header_size: u32) {
        header[0..8].copy_from_slice(&self.magic);
        put_u16(header, 8, self.major);
        put_u16(header, 10, self.minor);
        put_u32(header, 12, header_size);
    }

    /// Checks a file header: first its checksum (`crc32c(header[..crc_at])`, stored as a u32
    /// at `crc_at`), then its magic, then its major; returns its `header_size`.
    ///
    /// `Ok(None)` means a damaged (or torn) header: the checksum fails or the magic is wrong.
    /// The caller repairs it or decides it is a torn creation. The checksum comes first so
    /// that a flipped bit in the version field reads as damage, never as a newer format
    /// (which would lock the user out for good); this relies on every major keeping
    /// `header_crc` at the same place, covering the bytes before it (`core/FORMAT.md`,
    /// "Conventions").
    ///
    /// # Errors
    /// [`StorageError::UnsupportedFormat`] for an intact header of a newer major.
    pub(crate) fn check(
        &self,
        header: &[u8],
        crc_at: usize,
        path: &Path,
    ) -> Result<Option<u32>, StorageError> {
        if crc32c::crc32c(&header[..crc_at]) != get_u32(header, crc_at) {
            return Ok(None);
        }
        if header[0..8] != self.magic {
            return Ok(None);
        }
        let major = get_u16(header, 8);
        if major > self.major {
            return Err(StorageError::UnsupportedFormat {
                path: path.to_path_buf(),
                major,
                supported: self.major,
            });
        }
        Ok(Some(get_u32(header, 12)))
    }
}

/// A spool position: `(segment << 32) | offset`, ordered like `(segment, offset)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct SpoolPos(pub u64);

impl SpoolPos {
    /// The position of `offset` in `segment`.
    pub(crate) fn new(segment: u32, offset: u32) -> SpoolPos {
        SpoolPos((u64::from(segment) << 32) | u64::from(offset))
    }

    /// The segment number.
    pub(crate) fn segment(self) -> u32 {
        u32::try_from(self.0 >> 32).expect("high half")
    }

    /// The offset within the segment.
    pub(crate) fn offset(self) -> u32 {
        u32::try_from(self.0 & 0xffff_ffff).expect("low half")
    }
}

/// Reads `buf.len()` bytes at `offset`, mapping the error to the file's path.
pub(crate) fn read_at<F: DiskFile>(
    file: &F,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), StorageError> {
    file.read_exact_at(buf, offset).map_err(|e| StorageError::io(path, e))
}

/// Writes `buf` at `offset`, mapping the error to the file's path.
pub(crate) fn write_at<F: DiskFile>(
    file: &F,
    path: &Path,
    buf: &[u8],
    offset: u64,
) -> Result<(), StorageError> {
    file.write_all_at(buf, offset).map_err(|e| StorageError::io(path, e))
}

/// The file's length, mapping the error to its path.
pub(crate) fn file_len<F: DiskFile>(file: &F, path: &Path) -> Result<u64, StorageError> {
    file.len().map_err(|e| StorageError::io(path, e))
}

/// Truncates (or extends) the file, mapping the error to its path.
pub(crate) fn set_len<F: DiskFile>(file: &F, path: &Path, len: u64) -> Result<(), StorageError> {
    file.set_len(len).map_err(|e| StorageError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_little_endian() {
        let mut buf = [0u8; 32];
        put_u16(&mut buf, 0, 0x0102);
        put_u32(&mut buf, 2, 0x0304_0506);
        put_u64(&mut buf, 6, 0x0708_090a_0b0c_0d0e);
        put_i16(&mut buf, 14, -2);
        put_i64(&mut buf, 16, -3);
        assert_eq!(&buf[0..2], &[2, 1]);
        assert_eq!(get_u16(&buf, 0), 0x0102);
        assert_eq!(get_u32(&buf, 2), 0x0304_0506);
        assert_eq!(get_u64(&buf, 6), 0x0708_090a_0b0c_0d0e);
        assert_eq!(get_i16(&buf, 14), -2);
        assert_eq!(get_i64(&buf, 16), -3);
        assert!(all_zero(&buf[24..]));
    }

    #[test]
    fn spool_positions_order_by_segment_then_offset() {
        let a = SpoolPos::new(1, u32::MAX);
        let b = SpoolPos::new(2, 0);
        assert!(a < b);
        assert_eq!(b.segment(), 2);
        assert_eq!(a.offset(), u32::MAX);
        assert_eq!(pad8(0), 0);
        assert_eq!(pad8(1), 8);
        assert_eq!(pad8(16), 16);
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_ne!(nonce_seed(1), nonce_seed(2));
    }
}
