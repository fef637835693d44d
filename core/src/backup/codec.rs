//! Bytes of a backup archive (`core/FORMAT.md`, "Backup archives"): the header, the record
//! frame, and each record kind's payload; [`Writer`] puts records on any `impl Write`.

use std::io::{self, Write};

use super::{
    ARCHIVE_FORMAT_MAJOR, ARCHIVE_FORMAT_MINOR, ARCHIVE_HEADER_BYTES, ARCHIVE_MAGIC, ArchiveError,
    MESSAGE_ENTRY_BYTES, MESSAGES_PER_RECORD_MAX, MailboxState, MessageState, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, Record, SnapshotEnd, SnapshotStart,
};

const _: () = assert!(ARCHIVE_HEADER_BYTES == 64);
const _: () = assert!(RECORD_HEADER_BYTES == 16);
const _: () = assert!(MESSAGE_ENTRY_BYTES == 4 + 4 + 2 + 8 + 8 + 2 + 4);

/// The archive (or stream) header, made `created_unix_millis`.
#[must_use]
pub fn encode_header(created_unix_millis: i64) -> [u8; ARCHIVE_HEADER_BYTES] {
    let mut header = [0u8; ARCHIVE_HEADER_BYTES];
    header[0..8].copy_from_slice(&ARCHIVE_MAGIC);
    header[8..10].copy_from_slice(&ARCHIVE_FORMAT_MAJOR.to_le_bytes());
    header[10..12].copy_from_slice(&ARCHIVE_FORMAT_MINOR.to_le_bytes());
    header[12..16].copy_from_slice(&(ARCHIVE_HEADER_BYTES as u32).to_le_bytes());
    header[16..24].copy_from_slice(&created_unix_millis.to_le_bytes());
    let crc = crc32c::crc32c(&header[..60]);
    header[60..64].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks a header; gives its `created_unix_millis` and `header_size`.
pub(super) fn decode_header(header: &[u8]) -> Result<(i64, u32), ArchiveError> {
    assert!(header.len() >= ARCHIVE_HEADER_BYTES);
    let crc = u32::from_le_bytes(header[60..64].try_into().expect("four bytes"));
    if crc32c::crc32c(&header[..60]) != crc {
        return Err(ArchiveError::NotArchive("the header's checksum fails"));
    }
    if header[0..8] != ARCHIVE_MAGIC {
        return Err(ArchiveError::NotArchive("wrong magic"));
    }
    let major = u16::from_le_bytes([header[8], header[9]]);
    if major != ARCHIVE_FORMAT_MAJOR {
        return Err(ArchiveError::NotArchive("format major version unknown to this skua"));
    }
    let size = u32::from_le_bytes(header[12..16].try_into().expect("four bytes"));
    if (size as usize) < ARCHIVE_HEADER_BYTES || size as usize > RECORD_PAYLOAD_BYTES_MAX {
        return Err(ArchiveError::NotArchive("header_size out of range"));
    }
    if header[24..60].iter().any(|&b| b != 0) {
        return Err(ArchiveError::NotArchive("reserved header bytes are not zero"));
    }
    let created = i64::from_le_bytes(header[16..24].try_into().expect("eight bytes"));
    Ok((created, size))
}

/// A record's frame: payload length, kind, the frame's own checksum (so a damaged length is
/// found before it is believed: it would otherwise look like a file cut short), and the
/// record's checksum over the frame's first 8 bytes and the payload (given in parts, so a
/// body is not copied to be framed).
fn frame(kind: u8, parts: &[&[u8]]) -> [u8; RECORD_HEADER_BYTES] {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    assert!(len <= RECORD_PAYLOAD_BYTES_MAX, "record payload of {len} bytes");
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[0..4].copy_from_slice(&(len as u32).to_le_bytes());
    header[4] = kind;
    let frame_crc = crc32c::crc32c(&header[..8]);
    header[8..12].copy_from_slice(&frame_crc.to_le_bytes());
    let crc = parts.iter().fold(frame_crc, |crc, p| crc32c::crc32c_append(crc, p));
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The frame of a record as read: its payload length, or `None` when the frame's checksum
/// fails or its reserved bytes are not zero.
pub(super) fn frame_len(header: &[u8]) -> Option<usize> {
    let frame_crc = u32::from_le_bytes(header[8..12].try_into().expect("four bytes"));
    if crc32c::crc32c(&header[..8]) != frame_crc || header[5..8].iter().any(|&b| b != 0) {
        return None;
    }
    Some(u32::from_le_bytes(header[0..4].try_into().expect("four bytes")) as usize)
}

/// True when `payload` is the one the record's checksum in `header` covers.
pub(super) fn record_crc_ok(header: &[u8], payload: &[u8]) -> bool {
    let crc = u32::from_le_bytes(header[12..16].try_into().expect("four bytes"));
    crc32c::crc32c_append(crc32c::crc32c(&header[..8]), payload) == crc
}

/// The record checksum in a frame (what an end record's chain covers).
pub(super) fn record_crc(header: &[u8]) -> u32 {
    u32::from_le_bytes(header[12..16].try_into().expect("four bytes"))
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    let len = u16::try_from(text.len()).expect("names are bounded below 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The kind byte and payload of a record that is not a body.
fn payload(record: &Record) -> (u8, Vec<u8>) {
    let mut out = Vec::new();
    let kind = match record {
        Record::Start(start) => {
            out.extend_from_slice(&start.time_unix_millis.to_le_bytes());
            out.extend_from_slice(&start.mailboxes.to_le_bytes());
            out.extend_from_slice(&start.messages.to_le_bytes());
            put_str(&mut out, &start.user);
            1
        }
        Record::Mailbox(mailbox) => {
            out.extend_from_slice(&mailbox.uid_validity.to_le_bytes());
            out.extend_from_slice(&mailbox.uid_next.to_le_bytes());
            out.extend_from_slice(&mailbox.special_use.to_le_bytes());
            put_str(&mut out, &mailbox.name);
            let count = u16::try_from(mailbox.keywords.len()).expect("64 keywords at most");
            out.extend_from_slice(&count.to_le_bytes());
            mailbox.keywords.iter().for_each(|k| put_str(&mut out, k));
            let count = u16::try_from(mailbox.acl.len()).expect("64 ACL entries at most");
            out.extend_from_slice(&count.to_le_bytes());
            for (identifier, rights) in &mailbox.acl {
                put_str(&mut out, identifier);
                out.extend_from_slice(&rights.to_le_bytes());
            }
            2
        }
        Record::Subscriptions(names) => {
            out.extend_from_slice(&(names.len() as u32).to_le_bytes());
            names.iter().for_each(|n| put_str(&mut out, n));
            3
        }
        Record::Messages(messages) => {
            assert!(!messages.is_empty() && messages.len() <= MESSAGES_PER_RECORD_MAX);
            out.extend_from_slice(&(messages.len() as u32).to_le_bytes());
            for m in messages {
                out.extend_from_slice(&m.mailbox.to_le_bytes());
                out.extend_from_slice(&m.uid.to_le_bytes());
                out.extend_from_slice(&m.system.to_le_bytes());
                out.extend_from_slice(&m.keywords.to_le_bytes());
                out.extend_from_slice(&m.date_unix_seconds.to_le_bytes());
                out.extend_from_slice(&m.zone_minutes.to_le_bytes());
                out.extend_from_slice(&m.size.to_le_bytes());
            }
            4
        }
        Record::Body { .. } => unreachable!("bodies are framed in parts"),
        Record::Ref(digest) => {
            out.extend_from_slice(digest);
            6
        }
        Record::End(end) => {
            out.extend_from_slice(&end.messages.to_le_bytes());
            out.extend_from_slice(&end.bodies.to_le_bytes());
            out.extend_from_slice(&end.body_bytes.to_le_bytes());
            out.extend_from_slice(&end.chain.to_le_bytes());
            7
        }
    };
    (kind, out)
}

/// A cursor over a payload; every read fails (rather than panics) past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < len {
            return None;
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(head)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|b| b.try_into().expect("N bytes"))
    }
    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }
    fn str(&mut self) -> Option<String> {
        let len = self.u16()?;
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

/// Decodes a payload of `kind` (its checksum already checked); `None` when malformed.
pub(super) fn decode_payload(kind: u8, payload: &[u8]) -> Option<Record> {
    let mut c = Cursor { bytes: payload };
    let record = match kind {
        1 => {
            let time_unix_millis = c.i64()?;
            let mailboxes = c.u32()?;
            let messages = c.u32()?;
            Record::Start(SnapshotStart { time_unix_millis, user: c.str()?, mailboxes, messages })
        }
        2 => {
            let (uid_validity, uid_next, special_use) = (c.u32()?, c.u32()?, c.u32()?);
            let name = c.str()?;
            let keywords = (0..c.u16()?).map(|_| c.str()).collect::<Option<Vec<_>>>()?;
            let acl_len = c.u16()?;
            let acl = (0..acl_len).map(|_| Some((c.str()?, c.u32()?))).collect::<Option<_>>()?;
            Record::Mailbox(MailboxState {
                name,
                uid_validity,
                uid_next,
                special_use,
                keywords,
                acl,
            })
        }
        3 => {
            let count = c.u32()?;
            // Each name takes at least its 2-byte length: a count the payload cannot hold is
            // refused before anything is allocated for it.
            if u64::from(count) * 2 > c.bytes.len() as u64 {
                return None;
            }
            Record::Subscriptions((0..count).map(|_| c.str()).collect::<Option<_>>()?)
        }
        4 => {
            let count = c.u32()? as usize;
            if count == 0
                || count > MESSAGES_PER_RECORD_MAX
                || c.bytes.len() != count * MESSAGE_ENTRY_BYTES
            {
                return None;
            }
            let mut messages = Vec::with_capacity(count);
            for _ in 0..count {
                messages.push(MessageState {
                    mailbox: c.u32()?,
                    uid: c.u32()?,
                    system: c.u16()?,
                    keywords: c.u64()?,
                    date_unix_seconds: c.i64()?,
                    zone_minutes: i16::from_le_bytes(c.array()?),
                    size: c.u32()?,
                });
            }
            Record::Messages(messages)
        }
        5 => {
            let digest = c.array()?;
            Record::Body { digest, bytes: std::mem::take(&mut c.bytes).to_vec() }
        }
        6 => Record::Ref(c.array()?),
        7 => Record::End(SnapshotEnd {
            messages: c.u32()?,
            bodies: c.u32()?,
            body_bytes: c.u64()?,
            chain: c.u32()?,
        }),
        _ => return None,
    };
    c.bytes.is_empty().then_some(record)
}

/// Puts records on `out`, keeping the count of bytes written and each snapshot's checksum
/// chain and totals, which it writes into the snapshot's end record itself.
pub struct Writer<W: Write> {
    out: W,
    written: u64,
    chain: u32,
    end: SnapshotEnd,
}

impl<W: Write> Writer<W> {
    /// A writer whose output already holds `written` bytes (a header, earlier snapshots).
    pub fn new(out: W, written: u64) -> Writer<W> {
        Writer { out, written, chain: 0, end: SnapshotEnd::default() }
    }

    /// Bytes written in all (counting the `written` it was made with).
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The output.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Gives the output back.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes the archive header.
    ///
    /// # Errors
    /// The output failed.
    pub fn header(&mut self, created_unix_millis: i64) -> io::Result<()> {
        self.out.write_all(&encode_header(created_unix_millis))?;
        self.written += ARCHIVE_HEADER_BYTES as u64;
        Ok(())
    }

    /// Writes `record`. An end record is written with this writer's own totals and chain
    /// for the snapshot (what it was given is ignored); returns them.
    ///
    /// # Errors
    /// The output failed.
    pub fn record(&mut self, record: &Record) -> io::Result<SnapshotEnd> {
        if matches!(record, Record::Start(_)) {
            self.chain = 0;
            self.end = SnapshotEnd::default();
        }
        let crc = match record {
            Record::Body { digest, bytes } => {
                self.end.bodies += 1;
                self.end.body_bytes += bytes.len() as u64;
                self.end.messages += 1;
                self.put(5, &[digest, bytes])?
            }
            Record::End(_) => {
                self.end.chain = self.chain;
                let (kind, payload) = payload(&Record::End(self.end));
                self.put(kind, &[&payload])?;
                return Ok(self.end);
            }
            other => {
                if matches!(other, Record::Ref(_)) {
                    self.end.messages += 1;
                }
                let (kind, payload) = payload(other);
                self.put(kind, &[&payload])?
            }
        };
        self.chain = crc32c::crc32c_append(self.chain, &crc.to_le_bytes());
        Ok(self.end)
    }

    fn put(&mut self, kind: u8, parts: &[&[u8]]) -> io::Result<u32> {
        let header = frame(kind, parts);
        self.out.write_all(&header)?;
        for part in parts {
            self.out.write_all(part)?;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.written += (RECORD_HEADER_BYTES + len) as u64;
        Ok(record_crc(&header))
    }
}
