//! Reading an archive or a stream: bytes are fed in pieces of any size, records come out
//! checked (checksum, payload, place in their snapshot), so what a consumer is handed is a
//! well-formed snapshot in order. Sans-IO: the caller reads the file or the socket.
//!
//! ```text
//!  header ─► ( Start ─► Mailbox × start.mailboxes ─► Subscriptions
//!               ─► Messages… (start.messages in all) ─► (Body | Ref) × start.messages ─► End )*
//! ```

use super::codec::{decode_header, decode_payload, frame_len, record_crc, record_crc_ok};
use super::{
    ARCHIVE_HEADER_BYTES, ArchiveError, MailboxState, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, Record, SNAPSHOT_MESSAGES_MAX, SnapshotEnd, SnapshotStart,
};
use crate::limits::MAILBOXES_PER_USER_MAX;

/// Where in the grammar above the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Header,
    Between,
    Mailboxes,
    Subscriptions,
    Messages,
    Bodies,
}

/// See the module docs.
pub struct Decoder {
    buffer: Vec<u8>,
    /// Offset in the archive of `buffer[0]`.
    offset: u64,
    /// Offset of the record last returned.
    last_offset: u64,
    phase: Phase,
    refs_allowed: bool,
    start: Option<SnapshotStart>,
    mailboxes_seen: u32,
    /// Each message's mailbox and size, in order (what its body must have).
    sizes: Vec<u32>,
    bodies_seen: u32,
    end: SnapshotEnd,
    chain: u32,
    created_unix_millis: i64,
}

impl Decoder {
    /// A decoder of an archive file from its first byte: references to earlier bodies are
    /// allowed (whether they resolve is the reader's business: it knows the bodies).
    #[must_use]
    pub fn archive() -> Decoder {
        Decoder::new(true)
    }

    /// A decoder of a stream (one snapshot, every body inline): a reference is damage.
    #[must_use]
    pub fn stream() -> Decoder {
        Decoder::new(false)
    }

    fn new(refs_allowed: bool) -> Decoder {
        Decoder {
            buffer: Vec::new(),
            offset: 0,
            last_offset: 0,
            phase: Phase::Header,
            refs_allowed,
            start: None,
            mailboxes_seen: 0,
            sizes: Vec::new(),
            bodies_seen: 0,
            end: SnapshotEnd::default(),
            chain: 0,
            created_unix_millis: 0,
        }
    }

    /// A decoder of an archive's records from offset `offset`, where a snapshot starts (the
    /// header was read before).
    #[must_use]
    pub fn archive_at(offset: u64) -> Decoder {
        let mut decoder = Decoder::archive();
        decoder.offset = offset;
        decoder.phase = Phase::Between;
        decoder
    }

    /// Adds input. Call [`Decoder::next_record`] until it gives `None` before feeding more, so that
    /// at most one record and one piece of input are buffered.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet decoded.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Offset of the record [`Decoder::next_record`] last returned, from the archive's start.
    #[must_use]
    pub fn last_offset(&self) -> u64 {
        self.last_offset
    }

    /// Offset just past everything decoded so far.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// True between snapshots (after an end record, or before the first start).
    #[must_use]
    pub fn between_snapshots(&self) -> bool {
        self.phase == Phase::Between
    }

    /// The header's `created_unix_millis` (0 before the header was read).
    #[must_use]
    pub fn created_unix_millis(&self) -> i64 {
        self.created_unix_millis
    }

    /// The next record, or `None` when more input is needed.
    ///
    /// # Errors
    /// [`ArchiveError::NotArchive`] for a bad header, [`ArchiveError::Damaged`] for a record
    /// that fails its checksum, does not decode, or comes out of order. The decoder must not
    /// be used after an error.
    pub fn next_record(&mut self) -> Result<Option<Record>, ArchiveError> {
        if self.phase == Phase::Header {
            if self.buffer.len() < ARCHIVE_HEADER_BYTES {
                return Ok(None);
            }
            let (created, size) = decode_header(&self.buffer)?;
            if self.buffer.len() < size as usize {
                return Ok(None);
            }
            self.created_unix_millis = created;
            self.consume(size as usize);
            self.phase = Phase::Between;
        }
        if self.buffer.len() < RECORD_HEADER_BYTES {
            return Ok(None);
        }
        let Some(len) = frame_len(&self.buffer[..RECORD_HEADER_BYTES]) else {
            return Err(self.damaged("record frame checksum fails".to_owned()));
        };
        if len > RECORD_PAYLOAD_BYTES_MAX {
            return Err(self.damaged(format!("record length {len} is past the bound")));
        }
        if self.buffer.len() < RECORD_HEADER_BYTES + len {
            return Ok(None);
        }
        let (header, payload) =
            self.buffer[..RECORD_HEADER_BYTES + len].split_at(RECORD_HEADER_BYTES);
        if !record_crc_ok(header, payload) {
            return Err(self.damaged("record checksum fails".to_owned()));
        }
        let crc = record_crc(header);
        let Some(record) = decode_payload(header[4], payload) else {
            return Err(self.damaged(format!("record of kind {} does not decode", header[4])));
        };
        self.accept(&record, crc)?;
        self.last_offset = self.offset;
        self.consume(RECORD_HEADER_BYTES + len);
        Ok(Some(record))
    }

    /// Says the input ended: an error unless it ended between snapshots.
    ///
    /// # Errors
    /// [`ArchiveError::Truncated`].
    pub fn finish(&self) -> Result<(), ArchiveError> {
        if self.phase == Phase::Header {
            return Err(ArchiveError::Truncated("header"));
        }
        if !self.buffer.is_empty() {
            return Err(ArchiveError::Truncated("record"));
        }
        if self.phase != Phase::Between {
            return Err(ArchiveError::Truncated("snapshot"));
        }
        Ok(())
    }

    fn consume(&mut self, len: usize) {
        self.buffer.drain(..len);
        self.offset += len as u64;
    }

    fn damaged(&self, what: String) -> ArchiveError {
        ArchiveError::Damaged { offset: self.offset, what }
    }

    /// Checks `record` comes where it does, and moves the phase on.
    fn accept(&mut self, record: &Record, crc: u32) -> Result<(), ArchiveError> {
        let out_of_order = |phase: Phase| format!("record out of order (expected {phase:?})");
        match (self.phase, record) {
            (Phase::Between, Record::Start(start)) => {
                if start.mailboxes as usize > MAILBOXES_PER_USER_MAX || start.mailboxes == 0 {
                    return Err(self.damaged("mailbox count out of range".to_owned()));
                }
                if start.messages > SNAPSHOT_MESSAGES_MAX {
                    return Err(self.damaged("message count out of range".to_owned()));
                }
                self.start = Some(start.clone());
                self.mailboxes_seen = 0;
                self.sizes.clear();
                self.bodies_seen = 0;
                self.end = SnapshotEnd::default();
                self.chain = 0;
                self.phase = Phase::Mailboxes;
            }
            (Phase::Mailboxes, Record::Mailbox(mailbox)) => {
                check_mailbox(mailbox).map_err(|what| self.damaged(what.to_owned()))?;
                self.mailboxes_seen += 1;
                if self.mailboxes_seen == self.expected().mailboxes {
                    self.phase = Phase::Subscriptions;
                }
            }
            (Phase::Subscriptions, Record::Subscriptions(names)) => {
                if names.len() > crate::limits::SUBSCRIPTIONS_PER_USER_MAX {
                    return Err(self.damaged("too many subscriptions".to_owned()));
                }
                self.phase =
                    if self.expected().messages == 0 { Phase::Bodies } else { Phase::Messages };
            }
            (Phase::Messages, Record::Messages(messages)) => {
                let (mailboxes, total) = (self.expected().mailboxes, self.expected().messages);
                if self.sizes.len() + messages.len() > total as usize {
                    return Err(self.damaged("more messages than the snapshot said".to_owned()));
                }
                for m in messages {
                    // UID 0 ("none of its own") only in a stream: an import's source message.
                    if m.mailbox >= mailboxes || (m.uid == 0 && self.refs_allowed) {
                        return Err(self.damaged("a message names no mailbox or UID 0".to_owned()));
                    }
                    if m.system & !crate::types::SystemFlags::ALL != 0 {
                        return Err(self.damaged("a message with unknown system flags".to_owned()));
                    }
                    if m.size > crate::limits::MESSAGE_BYTES_MAX {
                        return Err(self.damaged("a message larger than the bound".to_owned()));
                    }
                    self.sizes.push(m.size);
                }
                if self.sizes.len() == total as usize {
                    self.phase = Phase::Bodies;
                }
            }
            (Phase::Bodies, Record::Body { digest: _, bytes }) => {
                let Some(&size) = self.sizes.get(self.bodies_seen as usize) else {
                    return Err(self.damaged(out_of_order(Phase::Bodies)));
                };
                if bytes.len() != size as usize {
                    return Err(
                        self.damaged("a body's length is not its message's size".to_owned())
                    );
                }
                self.bodies_seen += 1;
                self.end.bodies += 1;
                self.end.body_bytes += bytes.len() as u64;
            }
            (Phase::Bodies, Record::Ref(_)) => {
                if !self.refs_allowed {
                    return Err(self.damaged("a reference in a stream".to_owned()));
                }
                if self.bodies_seen as usize >= self.sizes.len() {
                    return Err(self.damaged(out_of_order(Phase::Bodies)));
                }
                self.bodies_seen += 1;
            }
            (Phase::Bodies, Record::End(end)) => {
                let expected = SnapshotEnd {
                    messages: self.expected().messages,
                    bodies: self.end.bodies,
                    body_bytes: self.end.body_bytes,
                    chain: self.chain,
                };
                if self.bodies_seen != expected.messages {
                    return Err(
                        self.damaged("the snapshot ends before its last message".to_owned())
                    );
                }
                if *end != expected {
                    return Err(
                        self.damaged("the end record does not match the snapshot".to_owned())
                    );
                }
                self.phase = Phase::Between;
                return Ok(());
            }
            (phase, _) => return Err(self.damaged(out_of_order(phase))),
        }
        self.chain = crc32c::crc32c_append(self.chain, &crc.to_le_bytes());
        Ok(())
    }

    fn expected(&self) -> &SnapshotStart {
        self.start.as_ref().expect("inside a snapshot")
    }
}

/// A mailbox record's bounds (the store's own; a name is checked again by the store when a
/// restore creates it).
fn check_mailbox(mailbox: &MailboxState) -> Result<(), &'static str> {
    if mailbox.name.is_empty() || mailbox.name.len() > crate::limits::MAILBOX_NAME_BYTES_MAX {
        return Err("mailbox name length out of range");
    }
    if mailbox.keywords.len() > crate::limits::KEYWORDS_PER_MAILBOX_MAX {
        return Err("too many keywords");
    }
    if mailbox.acl.len() > crate::limits::ACL_ENTRIES_MAX {
        return Err("too many ACL entries");
    }
    Ok(())
}
