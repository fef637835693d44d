//! Reading a cache blob without copying: [`CacheView::parse`] checks the layout once, then the
//! accessors hand out slices of the blob.

use thiserror::Error;

use super::keys::SortKeys;
use super::{
    FIXED_SIZE, FLAG_NO_SEPARATOR, FLAG_SENT_DATE, FLAG_TRUNCATED, FLAGS_ALL, KIND_LEAF,
    KIND_MESSAGE, KIND_MULTIPART, MAGIC, PART_MESSAGE_ROOT, PART_SIZE, VERSION, VERSION_KEYS_LAST,
    VERSION_NO_KEYS,
};
use crate::mime::limits::PARTS_MAX;

/// Why a cache blob cannot be read. The store can always rebuild the blob from the message
/// with [`build`](super::build).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// Shorter than its fixed header or than a length it declares.
    #[error("cache blob truncated")]
    Truncated,
    /// Does not start with the cache magic.
    #[error("not a MIME cache blob")]
    BadMagic,
    /// Written by another format version.
    #[error("unsupported MIME cache version {0}")]
    UnsupportedVersion(u8),
    /// Reserved bits or bytes are not zero.
    #[error("reserved bits set in MIME cache blob")]
    Reserved,
    /// Bytes after the part table.
    #[error("trailing bytes after MIME cache blob")]
    TrailingBytes,
    /// The part table is inconsistent.
    #[error("corrupt MIME part table")]
    PartTable,
    /// A string of the key section is not UTF-8.
    #[error("MIME cache key text is not UTF-8")]
    KeyText,
}

/// A parsed cache blob, borrowing it.
#[derive(Clone, Copy, Debug)]
pub struct CacheView<'a> {
    flags: u8,
    sent_zone_minutes: i16,
    sent_date: i64,
    header_len: u32,
    envelope: &'a [u8],
    body_structure: &'a [u8],
    body: &'a [u8],
    parts: &'a [u8],
    /// The key section (versions 2 and 3); `None` in a version 1 blob.
    keys: Option<&'a [u8]>,
}

/// What SORT and THREAD read of a blob ([`CacheView::order_fields`]).
#[derive(Clone, Copy, Debug)]
pub struct OrderFields<'a> {
    /// The Date: header as seconds since the epoch (UTC), if it parsed.
    pub sent_date: Option<i64>,
    /// The key section; `None` in a version 1 blob.
    pub keys: Option<&'a [u8]>,
}

impl OrderFields<'_> {
    /// The keys, or `None` for a version 1 blob.
    ///
    /// # Errors
    /// [`CacheError`] when the key section is damaged.
    pub fn sort_keys(&self) -> Result<Option<SortKeys>, CacheError> {
        self.keys.map(SortKeys::decode).transpose()
    }
}

/// One part table entry, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartEntry {
    pub header_offset: u32,
    pub header_len: u32,
    pub body_len: u32,
    pub subtree: u16,
    pub kind: u8,
    pub message_root: bool,
    pub flags_valid: bool,
}

/// A cursor over the blob that fails instead of reading past its end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8], CacheError> {
        if self.bytes.len() < length {
            return Err(CacheError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(length);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CacheError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u32(&mut self) -> Result<u32, CacheError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// The fixed header: version (one this code reads), flags (no reserved bit set), sent
    /// zone and date, header length.
    fn fixed(&mut self) -> Result<(u8, u8, i16, i64, u32), CacheError> {
        if self.array::<3>()? != MAGIC {
            return Err(CacheError::BadMagic);
        }
        let [version, flags, reserved] = self.array()?;
        if version != VERSION && version != VERSION_KEYS_LAST && version != VERSION_NO_KEYS {
            return Err(CacheError::UnsupportedVersion(version));
        }
        if reserved != 0 || flags & !FLAGS_ALL != 0 {
            return Err(CacheError::Reserved);
        }
        let zone = i16::from_le_bytes(self.array()?);
        let date = i64::from_le_bytes(self.array()?);
        Ok((version, flags, zone, date, self.u32()?))
    }

    fn length_prefixed(&mut self) -> Result<&'a [u8], CacheError> {
        let length = self.u32()?;
        self.take(usize::try_from(length).map_err(|_| CacheError::Truncated)?)
    }
}

impl<'a> CacheView<'a> {
    /// Checks and reads a blob written by [`build`](super::build).
    ///
    /// # Errors
    /// [`CacheError`] when the blob is truncated, of another version, or inconsistent.
    pub fn parse(blob: &'a [u8]) -> Result<CacheView<'a>, CacheError> {
        if blob.len() < FIXED_SIZE {
            return Err(CacheError::Truncated);
        }
        let mut reader = Reader { bytes: blob };
        let (version, flags, sent_zone_minutes, sent_date, header_len) = reader.fixed()?;
        // Checked when read (`sort_keys`): FETCH, which parses every blob it serves, never
        // reads the key section.
        let mut keys = None;
        if version == VERSION {
            keys = Some(reader.length_prefixed()?);
        }
        let envelope = reader.length_prefixed()?;
        let body_structure = reader.length_prefixed()?;
        let body = reader.length_prefixed()?;
        let count = usize::try_from(reader.u32()?).map_err(|_| CacheError::PartTable)?;
        if count == 0 || count > PARTS_MAX {
            return Err(CacheError::PartTable);
        }
        let parts = reader.take(count * PART_SIZE)?;
        if version == VERSION_KEYS_LAST {
            keys = Some(reader.length_prefixed()?);
        }
        if !reader.bytes.is_empty() {
            return Err(CacheError::TrailingBytes);
        }
        let view = CacheView {
            flags,
            sent_zone_minutes,
            sent_date,
            header_len,
            envelope,
            body_structure,
            body,
            parts,
            keys,
        };
        view.check_parts()?;
        Ok(view)
    }

    /// What SORT and THREAD read of a blob: the sent date and the key section (`None` in a
    /// version 1 blob). Reads no further than it must: the fixed header alone when `keys` is
    /// false, and the key section that follows it in a version 3 blob (one or two cache lines:
    /// SORT touches every blob of a mailbox, so what it reads of each is what it costs); a
    /// version 2 blob is walked to its key section after the part table. Nothing else is
    /// checked: the part table is never read here.
    ///
    /// # Errors
    /// [`CacheError`] when the blob is truncated, of another version, or has reserved bits set.
    pub fn order_fields(blob: &'a [u8], keys: bool) -> Result<OrderFields<'a>, CacheError> {
        let mut reader = Reader { bytes: blob };
        let (version, flags, _zone, sent, _header_len) = reader.fixed()?;
        let sent_date = (flags & FLAG_SENT_DATE != 0).then_some(sent);
        if !keys || version == VERSION_NO_KEYS {
            return Ok(OrderFields { sent_date, keys: None });
        }
        if version == VERSION_KEYS_LAST {
            for _ in 0..3 {
                reader.length_prefixed()?;
            }
            let count = usize::try_from(reader.u32()?).map_err(|_| CacheError::PartTable)?;
            if count == 0 || count > PARTS_MAX {
                return Err(CacheError::PartTable);
            }
            reader.take(count * PART_SIZE)?;
        }
        Ok(OrderFields { sent_date, keys: Some(reader.length_prefixed()?) })
    }

    /// Checks each entry's kind, flags and subtree size: every subtree stays inside the table
    /// and inside its parent, leaves have no children, a message part has exactly one child
    /// that is a message root. One pass with a stack of open subtree ends.
    fn check_parts(&self) -> Result<(), CacheError> {
        let count = self.part_count();
        let mut ends: Vec<usize> = Vec::new();
        for index in 0..count {
            let entry = self.entry(index).ok_or(CacheError::PartTable)?;
            while ends.last().is_some_and(|&end| end <= index) {
                ends.pop();
            }
            let end = index + usize::from(entry.subtree);
            let parent_end = ends.last().copied().unwrap_or(count);
            let kind_ok = match entry.kind {
                KIND_LEAF => entry.subtree == 1,
                KIND_MULTIPART => entry.subtree > 1,
                KIND_MESSAGE => self.entry(index + 1).is_some_and(|c| {
                    c.message_root && usize::from(c.subtree) + 1 == usize::from(entry.subtree)
                }),
                _ => false,
            };
            if entry.subtree == 0
                || !entry.flags_valid
                || end > parent_end
                || !kind_ok
                || (index == 0 && end != count)
            {
                return Err(CacheError::PartTable);
            }
            let follows_message =
                index > 0 && self.entry(index - 1).is_some_and(|e| e.kind == KIND_MESSAGE);
            if entry.message_root != (index == 0 || follows_message) {
                return Err(CacheError::PartTable);
            }
            ends.push(end);
        }
        Ok(())
    }

    /// The SORT and THREAD keys, or `None` for a version 1 blob (which has none: compute them
    /// with [`SortKeys::extract`]).
    ///
    /// # Errors
    /// [`CacheError`] when the key section is damaged.
    pub fn sort_keys(&self) -> Result<Option<SortKeys>, CacheError> {
        self.keys.map(SortKeys::decode).transpose()
    }

    /// The ENVELOPE response bytes (RFC 9051 §7.5.2).
    #[must_use]
    pub fn envelope(&self) -> &'a [u8] {
        self.envelope
    }

    /// The BODYSTRUCTURE response bytes (extensible form).
    #[must_use]
    pub fn body_structure(&self) -> &'a [u8] {
        self.body_structure
    }

    /// The BODY response bytes (non-extensible form).
    #[must_use]
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The Date: header as seconds since the Unix epoch (UTC), if it parsed.
    #[must_use]
    pub fn sent_date(&self) -> Option<i64> {
        (self.flags & FLAG_SENT_DATE != 0).then_some(self.sent_date)
    }

    /// The Date: header's zone offset in minutes, if it parsed.
    #[must_use]
    pub fn sent_zone_minutes(&self) -> Option<i16> {
        (self.flags & FLAG_SENT_DATE != 0).then_some(self.sent_zone_minutes)
    }

    /// The calendar day the Date: header names, in its own zone, as days since 1970-01-01:
    /// what SENTBEFORE/SENTON/SENTSINCE compare ("disregarding time and timezone").
    #[must_use]
    pub fn sent_day(&self) -> Option<i64> {
        let local = self.sent_date()? + i64::from(self.sent_zone_minutes) * 60;
        Some(local.div_euclid(86_400))
    }

    /// Bytes of the message header block, its terminating blank line included.
    #[must_use]
    pub fn header_len(&self) -> u32 {
        self.header_len
    }

    /// True when a MIME limit was hit and the structure was simplified.
    #[must_use]
    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TRUNCATED != 0
    }

    /// True when the message has no blank line between header and body.
    #[must_use]
    pub fn missing_separator(&self) -> bool {
        self.flags & FLAG_NO_SEPARATOR != 0
    }

    /// Number of MIME entities in the part table.
    #[must_use]
    pub fn part_count(&self) -> usize {
        self.parts.len() / PART_SIZE
    }

    /// Part table entry `index`.
    pub(crate) fn entry(&self, index: usize) -> Option<PartEntry> {
        let bytes = self.parts.get(index * PART_SIZE..(index + 1) * PART_SIZE)?;
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        Some(PartEntry {
            header_offset: u32_at(0),
            header_len: u32_at(4),
            body_len: u32_at(8),
            subtree: u16::from_le_bytes([bytes[12], bytes[13]]),
            kind: bytes[14],
            message_root: bytes[15] & PART_MESSAGE_ROOT != 0,
            flags_valid: bytes[15] & !PART_MESSAGE_ROOT == 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::cache::build;

    const MESSAGE: &[u8] = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: s\r\n\r\ntwo\r\n--b--\r\n";

    #[test]
    fn round_trip_and_part_table() {
        let blob = build(MESSAGE);
        let view = CacheView::parse(&blob).expect("parses");
        assert_eq!(view.part_count(), 4);
        let kinds: Vec<(u8, u16, bool)> = (0..4)
            .map(|i| view.entry(i).map(|e| (e.kind, e.subtree, e.message_root)).expect("entry"))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (KIND_MULTIPART, 4, true),
                (KIND_LEAF, 1, false),
                (KIND_MESSAGE, 2, false),
                (KIND_LEAF, 1, true)
            ]
        );
        assert_eq!(view.entry(4), None);
    }

    /// The blob `build` writes (version 3) as a version 2 blob (key section after the part
    /// table) and as a version 1 blob (none), and the key section's length.
    fn older_forms(blob: &[u8]) -> (Vec<u8>, Vec<u8>, usize) {
        let keys_len = u32::from_le_bytes(blob[FIXED_SIZE..FIXED_SIZE + 4].try_into().unwrap());
        let keys_end = FIXED_SIZE + 4 + keys_len as usize;
        let mut v1 = blob[..FIXED_SIZE].to_vec();
        v1.extend_from_slice(&blob[keys_end..]);
        v1[3] = VERSION_NO_KEYS;
        let mut v2 = v1.clone();
        v2[3] = VERSION_KEYS_LAST;
        v2.extend_from_slice(&blob[FIXED_SIZE..keys_end]);
        (v2, v1, keys_len as usize)
    }

    #[test]
    fn refuses_damaged_blobs() {
        let blob = build(MESSAGE);
        assert_eq!(CacheView::parse(&blob[..10]).err(), Some(CacheError::Truncated));
        assert_eq!(CacheView::parse(&blob[..blob.len() - 1]).err(), Some(CacheError::Truncated));
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(CacheView::parse(&longer).err(), Some(CacheError::TrailingBytes));
        let mut magic = blob.clone();
        magic[0] = b'X';
        assert_eq!(CacheView::parse(&magic).err(), Some(CacheError::BadMagic));
        let mut version = blob.clone();
        version[3] = 4;
        assert_eq!(CacheView::parse(&version).err(), Some(CacheError::UnsupportedVersion(4)));
        assert_eq!(
            CacheView::order_fields(&version, false).err(),
            Some(CacheError::UnsupportedVersion(4))
        );
        let mut reserved = blob.clone();
        reserved[5] = 1;
        assert_eq!(CacheView::parse(&reserved).err(), Some(CacheError::Reserved));
        let table = blob.len() - 4 * PART_SIZE;
        let mut subtree = blob.clone();
        subtree[table + 12] = 9;
        assert_eq!(CacheView::parse(&subtree).err(), Some(CacheError::PartTable));
        let mut kind = blob.clone();
        kind[table + PART_SIZE + 14] = KIND_MULTIPART;
        assert_eq!(CacheView::parse(&kind).err(), Some(CacheError::PartTable));
        let mut root = blob.clone();
        root[table + 3 * PART_SIZE + 15] = 0;
        assert_eq!(CacheView::parse(&root).err(), Some(CacheError::PartTable));
        // A damaged key section fails only the key read, not FETCH's parse.
        let mut flags = blob.clone();
        flags[FIXED_SIZE + 4] = 0x80;
        let view = CacheView::parse(&flags).expect("the rest is intact");
        assert_eq!(view.sort_keys(), Err(CacheError::Reserved));
        let fields = CacheView::order_fields(&flags, true).expect("the keys are found");
        assert_eq!(fields.sort_keys(), Err(CacheError::Reserved));
        let (v2, _, keys_len) = older_forms(&blob);
        let mut v2_flags = v2.clone();
        v2_flags[v2.len() - keys_len] = 0x80;
        let view = CacheView::parse(&v2_flags).expect("the rest is intact");
        assert_eq!(view.sort_keys(), Err(CacheError::Reserved));
    }

    #[test]
    fn versions_1_and_2_still_read() {
        let blob = build(MESSAGE);
        assert_eq!(blob[3], VERSION);
        let view = CacheView::parse(&blob).expect("parses");
        let keys = SortKeys::extract(MESSAGE);
        assert_eq!(view.sort_keys(), Ok(Some(keys.clone())));
        let (v2, v1, _) = older_forms(&blob);
        for (old, old_keys) in [(&v2, Some(keys.clone())), (&v1, None)] {
            let old_view = CacheView::parse(old).expect("an older version parses");
            assert_eq!(old_view.sort_keys(), Ok(old_keys.clone()));
            assert_eq!(old_view.envelope(), view.envelope());
            assert_eq!(old_view.body_structure(), view.body_structure());
            assert_eq!(old_view.body(), view.body());
            assert_eq!(old_view.part_count(), view.part_count());
            let fields = CacheView::order_fields(old, true).expect("order fields");
            assert_eq!(fields.sort_keys(), Ok(old_keys));
            assert_eq!(fields.sent_date, view.sent_date());
            assert_eq!(CacheView::order_fields(old, false).unwrap().keys, None);
            assert_eq!(
                CacheView::order_fields(&old[..old.len() - 1], true).err(),
                Some(CacheError::Truncated).filter(|_| old[3] == VERSION_KEYS_LAST)
            );
        }
        let fields = CacheView::order_fields(&blob, true).expect("order fields");
        assert_eq!(fields.sort_keys(), Ok(Some(keys)));
        assert_eq!(fields.sent_date, view.sent_date());
        // Only the fixed header and the key section are read.
        let keys_end = FIXED_SIZE + 4 + fields.keys.unwrap().len();
        assert!(CacheView::order_fields(&blob[..keys_end], true).is_ok());
        assert_eq!(
            CacheView::order_fields(&blob[..keys_end - 1], true).err(),
            Some(CacheError::Truncated)
        );
        assert!(CacheView::order_fields(&blob[..FIXED_SIZE], false).is_ok());
    }
}
