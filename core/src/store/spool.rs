//! The spool: numbered, append-only segment files holding message and tombstone records
//! (`core/FORMAT.md`, "Spool segments").
//!
//! The active (last) segment takes every append; a new segment is started when a record would
//! take it past `limits::SEGMENT_BYTES_TARGET`. Older segments are opened on first read and
//! kept open. Bodies are read as [`Bytes`] views (memory-mapped on the real disk).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::codec::{
    Preamble, SpoolPos, file_len, get_u32, get_u64, new_nonce, now_unix_seconds, put_i64, put_u32,
    put_u64, read_at, write_at,
};
use crate::disk::{Bytes, Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::limits::{SEGMENT_BYTES_TARGET, SEGMENT_FILES_OPEN_MAX, SEGMENTS_MAX};

/// Directory of the segments inside the user directory.
pub(crate) const SPOOL_DIR: &str = "spool";
/// Bytes of a segment header.
pub(crate) const SEGMENT_HEADER_BYTES: u64 = 64;
// Pinned by core/FORMAT.md ("Spool segments"); the header is one write inside one sector.
const _: () = assert!(SEGMENT_HEADER_BYTES == 64);
const PREAMBLE: Preamble = Preamble { magic: *b"\x89SKS\r\n\x1a\n", major: 1, minor: 2 };

/// Where a record lives, and its checksum (kept by whatever refers to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SpoolRef {
    pub segment: u32,
    pub offset: u32,
    /// Padded record length.
    pub len: u32,
    pub crc: u32,
}

impl SpoolRef {
    /// The record's start as a spool position.
    pub(crate) fn pos(self) -> SpoolPos {
        SpoolPos::new(self.segment, self.offset)
    }

    /// The position just past the record.
    pub(crate) fn end(self) -> SpoolPos {
        SpoolPos::new(self.segment, self.offset + self.len)
    }
}

/// The segment file name for `number`.
pub(crate) fn segment_name(number: u32) -> String {
    format!("{number:08}.seg")
}

/// The number of a segment file name; `None` for other names.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    let valid = digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| digits.parse().ok()).flatten().filter(|n| (1..=SEGMENTS_MAX).contains(n))
}

/// A segment header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub number: u32,
    pub nonce: u64,
    pub header_size: u32,
}

/// Encodes a segment header.
pub(crate) fn encode_segment_header(number: u32, nonce: u64) -> [u8; 64] {
    let mut header = [0u8; 64];
    PREAMBLE.write(&mut header, 64);
    put_u32(&mut header, 16, number);
    put_u64(&mut header, 24, nonce);
    put_i64(&mut header, 32, now_unix_seconds());
    let crc = crc32c::crc32c(&header[..60]);
    put_u32(&mut header, 60, crc);
    header
}

/// Reads and checks a segment's header; `Ok(None)` when it is torn or damaged.
pub(crate) fn read_segment_header<F: DiskFile>(
    file: &F,
    path: &Path,
) -> Result<Option<SegmentHeader>, StorageError> {
    let len = file_len(file, path)?;
    if len < SEGMENT_HEADER_BYTES {
        return Ok(None);
    }
    let mut header = [0u8; 64];
    read_at(file, path, &mut header, 0)?;
    let Some(header_size) = PREAMBLE.check(&header, 60, path)? else {
        return Ok(None);
    };
    // A header_size past the file's end is damage: appends would go below it, where the next
    // open does not look.
    let valid = u64::from(header_size) >= SEGMENT_HEADER_BYTES
        && u64::from(header_size) <= len
        && header_size % 8 == 0
        && super::codec::all_zero(&header[20..24])
        && super::codec::all_zero(&header[40..60]);
    let number = get_u32(&header, 16);
    Ok(valid.then(|| SegmentHeader { number, nonce: get_u64(&header, 24), header_size }))
}

/// The segment appends go to.
struct Active<F> {
    number: u32,
    file: F,
    path: PathBuf,
    nonce: u64,
    header_size: u32,
    /// Where the next record goes: everything below is committed.
    end: u64,
}

/// One user's spool.
pub(crate) struct Spool<D: Disk> {
    dir: PathBuf,
    /// Every segment number present.
    segments: Vec<u32>,
    files: RefCell<BTreeMap<u32, D::File>>,
    /// Segment nonces, read from segment headers on first need (to verify records on read).
    nonces: RefCell<BTreeMap<u32, u64>>,
    active: Option<Active<D::File>>,
}

impl<D: Disk> Spool<D> {
    /// The spool under `user_dir` (the directory must exist), with its segments listed but not
    /// yet checked: recovery checks and cuts, then calls [`Spool::activate`].
    pub(crate) fn list(disk: &D, user_dir: &Path) -> Result<Spool<D>, StorageError> {
        let dir = user_dir.join(SPOOL_DIR);
        let names = disk.list_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let mut segments: Vec<u32> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        segments.sort_unstable();
        Ok(Spool {
            dir,
            segments,
            files: RefCell::new(BTreeMap::new()),
            nonces: RefCell::new(BTreeMap::new()),
            active: None,
        })
    }

    /// Segment numbers, ascending.
    pub(crate) fn segments(&self) -> &[u32] {
        &self.segments
    }

    /// The path of a segment.
    pub(crate) fn path(&self, number: u32) -> PathBuf {
        self.dir.join(segment_name(number))
    }

    /// The open file of a segment (opened on first use).
    pub(crate) fn file(&self, disk: &D, number: u32) -> Result<D::File, StorageError> {
        if let Some(file) = self.files.borrow().get(&number) {
            return Ok(file.clone());
        }
        let path = self.path(number);
        let file = disk.open(&path, OpenMode::Existing).map_err(|e| StorageError::io(&path, e))?;
        let mut files = self.files.borrow_mut();
        if files.len() >= SEGMENT_FILES_OPEN_MAX {
            // Close the others (views keep their maps alive); the active segment stays open, as
            // its handle tracks the length appends reach.
            let active = self.active.as_ref().map(|a| a.number);
            files.retain(|&n, _| Some(n) == active);
        }
        files.insert(number, file.clone());
        Ok(file)
    }

    /// Forgets the open file of a segment, so the next read opens it by name again (spool
    /// compaction renamed a rewritten file over it; views of the old file keep their maps).
    pub(crate) fn forget_file(&self, number: u32) {
        assert!(self.active.as_ref().is_none_or(|a| a.number != number), "not the active one");
        self.files.borrow_mut().remove(&number);
    }

    /// Removes segments after `number` (recovery: they were written after a torn record).
    pub(crate) fn remove_after(&mut self, disk: &D, number: u32) -> Result<(), StorageError> {
        while let Some(&last) = self.segments.last().filter(|&&last| last > number) {
            let path = self.path(last);
            self.files.borrow_mut().remove(&last);
            disk.remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            self.segments.pop();
        }
        Ok(())
    }

    /// Makes the last segment the active one (after recovery checked it). A last segment with
    /// a bad header holds no records (recovery removed any that did), so it is rewritten.
    pub(crate) fn activate(&mut self, disk: &D) -> Result<(), StorageError> {
        let Some(&number) = self.segments.last() else {
            self.active = None;
            return Ok(());
        };
        let file = self.file(disk, number)?;
        let path = self.path(number);
        let (nonce, header_size) = match read_segment_header(&file, &path)? {
            Some(header) if header.number == number => (header.nonce, header.header_size),
            _ => {
                let nonce = new_nonce();
                write_at(&file, &path, &encode_segment_header(number, nonce), 0)?;
                super::codec::set_len(&file, &path, SEGMENT_HEADER_BYTES)?;
                (nonce, 64)
            }
        };
        let end = file_len(&file, &path)?;
        self.nonces.borrow_mut().insert(number, nonce);
        self.active = Some(Active { number, file, path, nonce, header_size, end });
        Ok(())
    }

    /// The position where the next record would go (segment 0 offset 0 when empty).
    pub(crate) fn end_pos(&self) -> SpoolPos {
        self.active.as_ref().map_or(SpoolPos::default(), |a| {
            SpoolPos::new(a.number, u32::try_from(a.end).expect("segments < 4 GiB"))
        })
    }

    /// The nonce records of the next append are sealed with, starting a new segment first when
    /// a record of `record_len` bytes would not fit the active one.
    pub(crate) fn prepare(&mut self, disk: &D, record_len: u64) -> Result<u64, StorageError> {
        let fits = self.active.as_ref().is_some_and(|a| {
            a.end == u64::from(a.header_size)
                || a.end + record_len <= u64::from(SEGMENT_BYTES_TARGET)
        });
        if !fits {
            self.start_segment(disk)?;
        }
        Ok(self.active.as_ref().expect("a segment is active").nonce)
    }

    fn start_segment(&mut self, disk: &D) -> Result<(), StorageError> {
        let number = self.segments.last().map_or(1, |n| n + 1);
        if number > SEGMENTS_MAX {
            return Err(StorageError::Corrupt {
                what: "spool full (limits::SEGMENTS_MAX)",
                path: self.dir.clone(),
                offset: 0,
            });
        }
        let path = self.path(number);
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        let nonce = new_nonce();
        write_at(&file, &path, &encode_segment_header(number, nonce), 0)?;
        self.segments.push(number);
        self.files.borrow_mut().insert(number, file.clone());
        self.nonces.borrow_mut().insert(number, nonce);
        self.active =
            Some(Active { number, file, path, nonce, header_size: 64, end: SEGMENT_HEADER_BYTES });
        Ok(())
    }

    /// Writes a sealed record (made with the nonce from [`Spool::prepare`]) at the end of the
    /// active segment. It counts as written only after [`Spool::commit`]: until then the next
    /// write goes to the same place.
    pub(crate) fn write(&self, record: &[u8], crc: u32) -> Result<SpoolRef, StorageError> {
        let active = self.active.as_ref().expect("prepare() made a segment active");
        assert_eq!(record.len() % 8, 0);
        write_at(&active.file, &active.path, record, active.end)?;
        Ok(SpoolRef {
            segment: active.number,
            offset: u32::try_from(active.end).expect("segments < 4 GiB"),
            len: u32::try_from(record.len()).expect("records < 4 GiB"),
            crc,
        })
    }

    /// Commits the record just written.
    pub(crate) fn commit(&mut self, spool_ref: SpoolRef) {
        let active = self.active.as_mut().expect("a segment is active");
        assert_eq!(spool_ref.segment, active.number);
        assert_eq!(u64::from(spool_ref.offset), active.end);
        active.end += u64::from(spool_ref.len);
    }

    /// Cuts the spool back to `mark` (an earlier [`Spool::end_pos`]): what a failed operation
    /// wrote after it, committed by this operation or not, goes. The segment holding `mark` is
    /// cut to it, and any segment started since is cut to its header (it stays, empty, as the
    /// active one: a segment number is never given twice). The cuts are `set_len`s, which join
    /// the open epoch's flush round with the writes they undo (`core/FORMAT.md`, "Write and
    /// flush order"). Idempotent, so a failed cut can be retried.
    ///
    /// # Errors
    /// The disk refused a cut; the spool is then as before the call, or partly cut (retry).
    pub(crate) fn cut_back(&mut self, disk: &D, mark: SpoolPos) -> Result<(), StorageError> {
        let later: Vec<u32> =
            self.segments.iter().copied().filter(|&n| n > mark.segment()).collect();
        for number in later.into_iter().rev() {
            let path = self.path(number);
            super::codec::set_len(&self.file(disk, number)?, &path, SEGMENT_HEADER_BYTES)?;
        }
        if self.segments.contains(&mark.segment()) {
            let path = self.path(mark.segment());
            let file = self.file(disk, mark.segment())?;
            super::codec::set_len(&file, &path, u64::from(mark.offset()))?;
        }
        if let Some(active) = self.active.as_mut() {
            active.end = if active.number == mark.segment() {
                u64::from(mark.offset())
            } else {
                u64::from(active.header_size)
            };
        }
        Ok(())
    }

    /// The nonce of a segment, from its header (cached).
    fn nonce(&self, disk: &D, number: u32) -> Result<u64, StorageError> {
        if let Some(&nonce) = self.nonces.borrow().get(&number) {
            return Ok(nonce);
        }
        let path = self.path(number);
        let header = read_segment_header(&self.file(disk, number)?, &path)?
            .filter(|h| h.number == number)
            .ok_or(StorageError::Corrupt { what: "spool segment header", path, offset: 0 })?;
        self.nonces.borrow_mut().insert(number, header.nonce);
        Ok(header.nonce)
    }

    /// A view of a whole record, checked against its reference: the header must decode and
    /// carry the checksum the reference kept (a cheap check for misdirected writes). With
    /// `verify`, the record's own checksum is checked too (every payload byte), so damaged
    /// bytes are never served; callers verify a record once and remember it.
    pub(crate) fn view_record(
        &self,
        disk: &D,
        spool_ref: SpoolRef,
        verify: bool,
    ) -> Result<(super::record::RecordHeader, Bytes), StorageError> {
        // Paths are built only for errors: formatting one per read showed in FETCH profiles.
        let corrupt = || StorageError::Corrupt {
            what: "spool record",
            path: self.path(spool_ref.segment),
            offset: u64::from(spool_ref.offset),
        };
        if self.active.as_ref().is_some_and(|a| {
            a.number == spool_ref.segment
                && u64::from(spool_ref.offset) + u64::from(spool_ref.len) > a.end
        }) {
            return Err(corrupt());
        }
        let file = self.file(disk, spool_ref.segment)?;
        let bytes = file
            .view(u64::from(spool_ref.offset), u64::from(spool_ref.len))
            .map_err(|e| StorageError::io(self.path(spool_ref.segment), e))?;
        let header = super::record::decode_header(&bytes).ok_or_else(corrupt)?;
        if header.crc != spool_ref.crc || header.record_len() != u64::from(spool_ref.len) {
            return Err(corrupt());
        }
        if verify
            && super::record::check_whole(self.nonce(disk, spool_ref.segment)?, &bytes).is_none()
        {
            return Err(corrupt());
        }
        Ok((header, bytes))
    }

    /// Hints that a record will be read soon (see `DiskFile::will_need`).
    pub(crate) fn will_need(&self, disk: &D, spool_ref: SpoolRef) -> Result<(), StorageError> {
        let file = self.file(disk, spool_ref.segment)?;
        file.will_need(u64::from(spool_ref.offset), u64::from(spool_ref.len))
            .map_err(|e| StorageError::io(self.path(spool_ref.segment), e))
    }

    /// Marks every segment from `first` on dirty (see `MailboxLog::touch`).
    pub(crate) fn touch_from(&self, disk: &D, first: u32) -> Result<(), StorageError> {
        for &number in self.segments.iter().filter(|&&n| n >= first) {
            let file = self.file(disk, number)?;
            let path = self.path(number);
            let len = file_len(&file, &path)?;
            super::codec::set_len(&file, &path, len)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names() {
        assert_eq!(segment_name(1), "00000001.seg");
        assert_eq!(parse_segment_name("00000001.seg"), Some(1));
        assert_eq!(parse_segment_name("00000000.seg"), None);
        assert_eq!(parse_segment_name("0000001.seg"), None);
        assert_eq!(parse_segment_name("0000000a.seg"), None);
        assert_eq!(parse_segment_name("00000001.seg.tmp"), None);
    }
}
