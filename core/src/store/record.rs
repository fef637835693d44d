//! Spool records: encoding, decoding and checking (byte layout: `core/FORMAT.md`, "Spool
//! segments"). Pure functions over byte slices; the files are handled in `spool.rs`.

use super::codec::{
    all_zero, get_i16, get_i64, get_u16, get_u32, get_u64, nonce_seed, pad8, put_i16, put_i64,
    put_u16, put_u32, put_u64,
};
use crate::limits::{CACHE_BYTES_MAX, MESSAGE_BYTES_MAX, MODSEQ_READ_MAX, TOMBSTONE_UIDS_MAX};
use crate::types::{Flags, InternalDate, Keywords, MailboxId, SystemFlags, Uid};

/// Bytes of a record header.
pub(crate) const RECORD_HEADER_BYTES: usize = 48;
const KIND_MESSAGE: u8 = 1;
const KIND_TOMBSTONE: u8 = 2;
/// Bit of a message record's byte 1 (spool format 1.1): the payload ends with the message's
/// EMAILID (`core/FORMAT.md`, "Spool segments").
const FLAG_EMAIL_ID: u8 = 1;
/// Bytes of the EMAILID trailer.
pub(crate) const EMAIL_ID_BYTES: usize = 8;
/// Bit of a message record's byte 1 (spool format 1.2): after the EMAILID the payload holds
/// the THREADID trailer, whose key count is byte 2 (`core/FORMAT.md`, "Spool segments").
const FLAG_THREAD: u8 = 2;
/// Bytes of the THREADID trailer before its key hashes: thread id, key id, reserved.
pub(crate) const THREAD_TRAILER_BYTES: usize = 16;
/// Most key hashes a THREADID trailer holds (`core/FORMAT.md`; `store/threads.rs`).
pub(crate) const THREAD_KEYS_MAX: usize = 16;
const _: () = assert!(THREAD_KEYS_MAX <= u8::MAX as usize);
/// Largest payload of any record.
pub(crate) const PAYLOAD_BYTES_MAX: u32 = MESSAGE_BYTES_MAX
    + CACHE_BYTES_MAX
    + EMAIL_ID_BYTES as u32
    + THREAD_TRAILER_BYTES as u32
    + 8 * THREAD_KEYS_MAX as u32;
const _: () = assert!(RECORD_HEADER_BYTES.is_multiple_of(8));
// Pinned by core/FORMAT.md ("Spool segments", records).
const _: () = assert!(RECORD_HEADER_BYTES == 48);
const _: () = assert!(TOMBSTONE_UIDS_MAX * 4 <= PAYLOAD_BYTES_MAX);

/// What a message record says about its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MessageHead {
    pub mailbox: MailboxId,
    pub uid: Uid,
    pub date: InternalDate,
    /// Flags at append (for reconstruct; the index holds the current ones).
    pub flags: Flags,
    pub message_len: u32,
    pub cache_len: u32,
    /// The payload ends with the message's EMAILID (records written before spool format 1.1
    /// have none: their EMAILID is their own spool position, see [`email_id`]).
    pub email_id_stored: bool,
    /// The payload ends with a THREADID trailer holding this many key hashes (records written
    /// before spool format 1.2 have none: their THREADID is their EMAILID, see [`thread`]).
    pub thread_keys: Option<u8>,
}

/// A message's THREADID trailer (spool format 1.2): its thread, and the keyed hashes of the
/// Message-IDs it names (its own, then those it refers to), for `store/threads.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThreadTrailer {
    /// The thread id (the EMAILID of the thread's first message).
    pub thread_id: u64,
    /// Which hash key made `keys` (`threads.log`'s key id).
    pub key_id: u32,
    /// The key hashes, at most [`THREAD_KEYS_MAX`].
    pub keys: Vec<u64>,
}

impl ThreadTrailer {
    fn bytes(&self) -> usize {
        THREAD_TRAILER_BYTES + 8 * self.keys.len()
    }
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Head {
    /// A message: the payload is the message then the cache blob.
    Message(MessageHead),
    /// An expunge: the payload is `count` UIDs.
    Tombstone { mailbox: MailboxId, modseq: u64, count: u32 },
}

/// A decoded header with its checksum field and payload length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordHeader {
    pub head: Head,
    pub crc: u32,
    pub payload_len: u32,
}

impl RecordHeader {
    /// The record's length on disk, padded.
    pub(crate) fn record_len(&self) -> u64 {
        pad8(RECORD_HEADER_BYTES as u64 + u64::from(self.payload_len))
    }
}

/// Encodes a message record: header, message, cache, the EMAILID trailer if `email_id` is
/// given (it must be exactly when `head.email_id_stored`), padding.
pub(crate) fn encode_message(
    nonce: u64,
    head: &MessageHead,
    message: &[u8],
    cache: &[u8],
    email_id: Option<u64>,
    thread: Option<&ThreadTrailer>,
) -> Vec<u8> {
    assert_eq!(head.message_len as usize, message.len());
    assert_eq!(head.cache_len as usize, cache.len());
    assert!(head.message_len <= MESSAGE_BYTES_MAX && head.cache_len <= CACHE_BYTES_MAX);
    assert_eq!(head.flags.system.0 & !SystemFlags::ALL, 0);
    assert_eq!(head.email_id_stored, email_id.is_some());
    assert_eq!(head.thread_keys, thread.map(|t| u8::try_from(t.keys.len()).expect("bounded")));
    assert!(thread.is_none() || email_id.is_some(), "the THREADID trailer follows the EMAILID");
    assert!(thread.is_none_or(|t| t.keys.len() <= THREAD_KEYS_MAX));
    let trailer = if email_id.is_some() { EMAIL_ID_BYTES } else { 0 }
        + thread.map_or(0, ThreadTrailer::bytes);
    let payload_len = message.len() + cache.len() + trailer;
    let total = usize::try_from(pad8((RECORD_HEADER_BYTES + payload_len) as u64)).expect("bounded");
    let mut buf = Vec::with_capacity(total);
    buf.resize(RECORD_HEADER_BYTES, 0);
    buf[0] = KIND_MESSAGE;
    buf[1] = if email_id.is_some() { FLAG_EMAIL_ID } else { 0 };
    if let Some(thread) = thread {
        buf[1] |= FLAG_THREAD;
        buf[2] = u8::try_from(thread.keys.len()).expect("bounded");
    }
    put_u32(&mut buf, 8, u32::try_from(payload_len).expect("bounded"));
    put_u32(&mut buf, 12, head.mailbox.0);
    put_u32(&mut buf, 16, head.uid.get());
    put_i16(&mut buf, 20, head.date.zone_minutes);
    put_u16(&mut buf, 22, head.flags.system.0);
    put_i64(&mut buf, 24, head.date.unix_seconds);
    put_u32(&mut buf, 32, head.message_len);
    put_u32(&mut buf, 36, head.cache_len);
    put_u64(&mut buf, 40, head.flags.keywords.0);
    buf.extend_from_slice(message);
    buf.extend_from_slice(cache);
    if let Some(email_id) = email_id {
        buf.extend_from_slice(&email_id.to_le_bytes());
    }
    if let Some(thread) = thread {
        buf.extend_from_slice(&thread.thread_id.to_le_bytes());
        buf.extend_from_slice(&thread.key_id.to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        for key in &thread.keys {
            buf.extend_from_slice(&key.to_le_bytes());
        }
    }
    seal(nonce, buf, total)
}

/// Encodes a tombstone naming `uids` (ascending, at most `TOMBSTONE_UIDS_MAX`).
pub(crate) fn encode_tombstone(
    nonce: u64,
    mailbox: MailboxId,
    modseq: u64,
    uids: &[Uid],
) -> Vec<u8> {
    assert!(!uids.is_empty() && uids.len() <= TOMBSTONE_UIDS_MAX as usize);
    assert!(uids.windows(2).all(|w| w[0] < w[1]));
    let payload_len = uids.len() * 4;
    let total = usize::try_from(pad8((RECORD_HEADER_BYTES + payload_len) as u64)).expect("bounded");
    let mut buf = vec![0u8; RECORD_HEADER_BYTES];
    buf[0] = KIND_TOMBSTONE;
    put_u32(&mut buf, 8, u32::try_from(payload_len).expect("bounded"));
    put_u32(&mut buf, 12, mailbox.0);
    put_u32(&mut buf, 16, u32::try_from(uids.len()).expect("bounded"));
    put_u64(&mut buf, 24, modseq);
    for uid in uids {
        buf.extend_from_slice(&uid.get().to_le_bytes());
    }
    seal(nonce, buf, total)
}

/// Checksums the unpadded record, then pads it.
fn seal(nonce: u64, mut buf: Vec<u8>, total: usize) -> Vec<u8> {
    let crc = crc32c::crc32c_append(nonce_seed(nonce), &buf[8..]);
    put_u32(&mut buf, 4, crc);
    buf.resize(total, 0);
    // Pair assertion: what we write checks out the way recovery will check it.
    debug_assert!(check_whole(nonce, &buf).is_some());
    buf
}

/// Decodes and structurally checks a header (not the checksum, which covers the payload).
pub(crate) fn decode_header(buf: &[u8]) -> Option<RecordHeader> {
    let buf = buf.get(..RECORD_HEADER_BYTES)?;
    let message = buf[0] == KIND_MESSAGE;
    let email_id_stored = message && buf[1] & FLAG_EMAIL_ID != 0;
    let thread_stored = email_id_stored && buf[1] & FLAG_THREAD != 0;
    let flags_known = buf[1] & !(FLAG_EMAIL_ID | FLAG_THREAD) == 0;
    let thread_keys = thread_stored.then_some(buf[2]);
    if buf[3] != 0
        || (buf[1] != 0 && !email_id_stored)
        || !flags_known
        || (buf[1] & FLAG_THREAD != 0 && !thread_stored)
        || (!thread_stored && buf[2] != 0)
        || thread_keys.is_some_and(|n| usize::from(n) > THREAD_KEYS_MAX)
    {
        return None;
    }
    let crc = get_u32(buf, 4);
    let payload_len = get_u32(buf, 8);
    let mailbox = MailboxId(get_u32(buf, 12));
    let head = match buf[0] {
        KIND_MESSAGE => {
            let uid = Uid::new(get_u32(buf, 16))?;
            let (message_len, cache_len) = (get_u32(buf, 32), get_u32(buf, 36));
            let system = get_u16(buf, 22);
            let sizes_ok = message_len <= MESSAGE_BYTES_MAX
                && cache_len <= CACHE_BYTES_MAX
                && u64::from(message_len)
                    + u64::from(cache_len)
                    + if email_id_stored { EMAIL_ID_BYTES as u64 } else { 0 }
                    + thread_keys.map_or(0, |n| THREAD_TRAILER_BYTES as u64 + 8 * u64::from(n))
                    == u64::from(payload_len);
            if !sizes_ok || system & !SystemFlags::ALL != 0 {
                return None;
            }
            let date =
                InternalDate { unix_seconds: get_i64(buf, 24), zone_minutes: get_i16(buf, 20) };
            let flags = Flags { system: SystemFlags(system), keywords: Keywords(get_u64(buf, 40)) };
            Head::Message(MessageHead {
                mailbox,
                uid,
                date,
                flags,
                message_len,
                cache_len,
                email_id_stored,
                thread_keys,
            })
        }
        KIND_TOMBSTONE => {
            let count = get_u32(buf, 16);
            let fields_ok = count > 0
                && count <= TOMBSTONE_UIDS_MAX
                && u64::from(count) * 4 == u64::from(payload_len)
                && all_zero(&buf[20..24])
                && all_zero(&buf[32..48])
                && get_u64(buf, 24) <= MODSEQ_READ_MAX;
            if !fields_ok {
                return None;
            }
            Head::Tombstone { mailbox, modseq: get_u64(buf, 24), count }
        }
        _ => return None,
    };
    Some(RecordHeader { head, crc, payload_len })
}

/// The EMAILID of the message record `record` (header and payload, as checked), which lies at
/// spool position `pos`: the trailer's value, or for a record without one (spool format 1.0)
/// its own position. Never zero (a record never starts at offset 0 of a segment).
pub(crate) fn email_id(head: &MessageHead, record: &[u8], pos: u64) -> u64 {
    if !head.email_id_stored {
        return pos;
    }
    let at = RECORD_HEADER_BYTES + head.message_len as usize + head.cache_len as usize;
    get_u64(record, at)
}

/// The THREADID trailer of the message record `record` (header and payload, as checked), or
/// `None` for a record without one (written before spool format 1.2: its THREADID is its
/// EMAILID, a thread of its own).
pub(crate) fn thread(head: &MessageHead, record: &[u8]) -> Option<ThreadTrailer> {
    let (at, len) = thread_span(head)?;
    Some(parse_thread(head, &record[at..at + len]))
}

/// Where a message record's THREADID trailer lies: (offset from the record's start, length).
pub(crate) fn thread_span(head: &MessageHead) -> Option<(usize, usize)> {
    let count = usize::from(head.thread_keys?);
    let at = RECORD_HEADER_BYTES + head.message_len as usize + head.cache_len as usize;
    Some((at + EMAIL_ID_BYTES, THREAD_TRAILER_BYTES + 8 * count))
}

/// Decodes the THREADID trailer bytes at [`thread_span`].
pub(crate) fn parse_thread(head: &MessageHead, trailer: &[u8]) -> ThreadTrailer {
    let count = usize::from(head.thread_keys.unwrap_or(0));
    let keys = (0..count).map(|i| get_u64(trailer, THREAD_TRAILER_BYTES + 8 * i)).collect();
    ThreadTrailer { thread_id: get_u64(trailer, 0), key_id: get_u32(trailer, 8), keys }
}

/// Checks a whole record held in memory (header, payload, padding); returns its header.
pub(crate) fn check_whole(nonce: u64, record: &[u8]) -> Option<RecordHeader> {
    let header = decode_header(record)?;
    let unpadded = RECORD_HEADER_BYTES + header.payload_len as usize;
    let padded = usize::try_from(header.record_len()).ok()?;
    if record.len() < padded || !all_zero(&record[unpadded..padded]) {
        return None;
    }
    let crc = crc32c::crc32c_append(nonce_seed(nonce), &record[8..unpadded]);
    (crc == header.crc).then_some(header)
}

/// The UIDs of a tombstone's payload; `None` unless strictly ascending and non-zero.
pub(crate) fn tombstone_uids(payload: &[u8]) -> Option<Vec<Uid>> {
    let uids: Option<Vec<Uid>> =
        payload.chunks_exact(4).map(|c| Uid::new(u32::from_le_bytes(c.try_into().ok()?))).collect();
    let uids = uids?;
    uids.windows(2).all(|w| w[0] < w[1]).then_some(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> MessageHead {
        MessageHead {
            mailbox: MailboxId(3),
            uid: Uid::new(9).unwrap(),
            date: InternalDate { unix_seconds: 1_700_000_000, zone_minutes: -300 },
            flags: Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(5) },
            message_len: 5,
            cache_len: 2,
            email_id_stored: false,
            thread_keys: None,
        }
    }

    #[test]
    fn message_round_trip() {
        let record = encode_message(7, &head(), b"hello", b"ca", None, None);
        assert_eq!(record.len(), 56);
        let header = check_whole(7, &record).unwrap();
        assert_eq!(header.head, Head::Message(head()));
        assert_eq!(header.record_len(), 56);
        assert_eq!(&record[48..53], b"hello");
    }

    #[test]
    fn message_with_email_id_round_trip() {
        let stored = MessageHead { email_id_stored: true, ..head() };
        let record = encode_message(7, &stored, b"hello", b"ca", Some(0x0102_0304_0506_0708), None);
        assert_eq!(record.len(), 64, "48 + 5 + 2 + 8, padded");
        assert_eq!(record[1], FLAG_EMAIL_ID);
        let header = check_whole(7, &record).unwrap();
        assert_eq!(header.head, Head::Message(stored));
        assert_eq!(email_id(&stored, &record, 99), 0x0102_0304_0506_0708);
        // A record without the trailer is its own EMAILID: its position.
        let plain = encode_message(7, &head(), b"hello", b"ca", None, None);
        assert_eq!(email_id(&head(), &plain, 99), 99);
        // The flag without room for the trailer, or another bit in byte 1, is damage.
        let mut bad = plain.clone();
        bad[1] = FLAG_EMAIL_ID;
        assert!(decode_header(&bad).is_none());
        let mut bad = record.clone();
        bad[1] = 2;
        assert!(decode_header(&bad).is_none());
    }

    #[test]
    fn message_with_thread_trailer_round_trip() {
        let stored = MessageHead { email_id_stored: true, thread_keys: Some(2), ..head() };
        let trailer = ThreadTrailer { thread_id: 0x40, key_id: 0xabcd, keys: vec![7, 9] };
        let record = encode_message(7, &stored, b"hello", b"ca", Some(0x88), Some(&trailer));
        assert_eq!(record.len(), 96, "48 + 5 + 2 + 8 + 16 + 16, padded");
        assert_eq!((record[1], record[2]), (FLAG_EMAIL_ID | FLAG_THREAD, 2));
        let header = check_whole(7, &record).unwrap();
        assert_eq!(header.head, Head::Message(stored));
        assert_eq!(email_id(&stored, &record, 99), 0x88);
        assert_eq!(thread(&stored, &record), Some(trailer));
        // Without the trailer a record has no thread of its own making.
        let plain = MessageHead { email_id_stored: true, ..head() };
        let record_1_1 = encode_message(7, &plain, b"hello", b"ca", Some(0x88), None);
        assert_eq!(thread(&plain, &record_1_1), None);
        // The thread bit without the EMAILID bit, a key count without the thread bit, or a
        // count past the limit is damage.
        for (byte, value) in [(1, FLAG_THREAD), (2, 1)] {
            let mut bad = record_1_1.clone();
            bad[byte] = value;
            assert!(decode_header(&bad).is_none(), "byte {byte} = {value}");
        }
        let mut bad = record.clone();
        bad[2] = 3;
        assert!(decode_header(&bad).is_none(), "a count the payload has no room for");
    }

    #[test]
    fn tombstone_round_trip() {
        let uids = [Uid::new(1).unwrap(), Uid::new(4).unwrap(), Uid::new(5).unwrap()];
        let record = encode_tombstone(7, MailboxId(2), 11, &uids);
        let header = check_whole(7, &record).unwrap();
        assert_eq!(header.head, Head::Tombstone { mailbox: MailboxId(2), modseq: 11, count: 3 });
        assert_eq!(tombstone_uids(&record[48..60]).unwrap(), uids);
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let record = encode_message(7, &head(), b"hello", b"ca", None, None);
        assert!(check_whole(8, &record).is_none());
        for byte in 0..record.len() {
            for bit in 0..8 {
                let mut bad = record.clone();
                bad[byte] ^= 1 << bit;
                assert!(check_whole(7, &bad).is_none(), "byte {byte} bit {bit}");
            }
        }
    }
}
