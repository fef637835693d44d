//! Backup archives (`skua backup` / `skua restore`, issue 11): an append-only file of
//! *snapshots* of users' stores, each restorable on its own. The byte layout is in
//! `core/FORMAT.md`, "Backup archives"; this module is its one implementation.
//!
//! The same record stream is used three ways, so there is one encoder and one decoder:
//!
//! ```text
//!  store ──(store::admin::backup: SnapshotSource)──► records ──► archive file (Appender:
//!                                                                   bodies the file holds
//!                                                                   become references)
//!  archive file ──(Scan::replay: one snapshot, bodies inline)──► records ──► restore
//!  either stream over the admin socket: the same bytes, cut into frames (skua-shard)
//! ```
//!
//! A stream (what a server sends for a backup, what a client sends for a restore) is an
//! archive of one snapshot whose bodies are all inline; [`Decoder`] reads both, checking
//! every record's checksum and the order of a snapshot's records, so a consumer can trust
//! what it is handed. Nothing here reads a clock or opens a file: the caller passes the time
//! and an `impl Read`/`impl Write`.

mod archive;
mod codec;
mod decoder;

#[cfg(test)]
mod tests;

pub use archive::{Appender, Scan, SnapshotInfo, replay};
pub use codec::{Writer, encode_header};
pub use decoder::Decoder;

/// The archive's magic (`core/FORMAT.md`, "Backup archives").
pub const ARCHIVE_MAGIC: [u8; 8] = [0x89, b'S', b'K', b'B', b'\r', b'\n', 0x1a, b'\n'];
/// Archive format major version this code reads and writes.
pub const ARCHIVE_FORMAT_MAJOR: u16 = 1;
/// Archive format minor version this code writes.
pub const ARCHIVE_FORMAT_MINOR: u16 = 0;
/// The archive header's length.
pub const ARCHIVE_HEADER_BYTES: usize = 64;
/// A record's header: payload length, kind, reserved, frame checksum, record checksum.
pub const RECORD_HEADER_BYTES: usize = 16;
/// Messages described by one messages record; a snapshot with more writes several.
pub const MESSAGES_PER_RECORD_MAX: usize = 4096;
/// The encoded size of one message in a messages record.
pub const MESSAGE_ENTRY_BYTES: usize = 32;
/// Largest payload of any record: a body record holding the largest message.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 32 + crate::limits::MESSAGE_BYTES_MAX as usize;
/// Most messages one snapshot may describe (every mailbox full would be more, but a store
/// that large is not backed up in one snapshot: the decoder's memory is bounded by this).
pub const SNAPSHOT_MESSAGES_MAX: u32 = 50_000_000;

const _: () = assert!(4 + MESSAGES_PER_RECORD_MAX * MESSAGE_ENTRY_BYTES < RECORD_PAYLOAD_BYTES_MAX);
const _: () = assert!(RECORD_PAYLOAD_BYTES_MAX < u32::MAX as usize);
// The subscriptions record is the largest metadata record: every name at its longest.
const _: () = assert!(
    4 + crate::limits::SUBSCRIPTIONS_PER_USER_MAX * (2 + crate::limits::MAILBOX_NAME_BYTES_MAX)
        < RECORD_PAYLOAD_BYTES_MAX
);

/// A SHA-256 digest: what identifies a message's bytes in an archive.
pub type Digest = [u8; 32];

/// The SHA-256 of `bytes`.
#[must_use]
pub fn sha256(bytes: &[u8]) -> Digest {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// The first record of a snapshot: when, whose, and how much follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStart {
    /// When the snapshot was taken (the metadata step), unix milliseconds.
    pub time_unix_millis: i64,
    /// Whose store it is.
    pub user: String,
    /// Mailbox records that follow.
    pub mailboxes: u32,
    /// Messages described (and bodies or references that follow).
    pub messages: u32,
}

/// One mailbox of a snapshot, as the store had it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxState {
    /// Canonical name.
    pub name: String,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: u32,
    /// SPECIAL-USE attribute bits (`store::SpecialUse::bits`).
    pub special_use: u32,
    /// The keyword table: bit `i` of a message's keywords is `keywords[i]`.
    pub keywords: Vec<String>,
    /// ACL entries (identifier, rights bits); empty: the default (the owner, every right).
    pub acl: Vec<(String, u32)>,
}

/// One message of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageState {
    /// Index of its mailbox among the snapshot's mailbox records.
    pub mailbox: u32,
    /// UID.
    pub uid: u32,
    /// System flag bits (`types::SystemFlags`).
    pub system: u16,
    /// Keyword bits, by the mailbox's keyword table.
    pub keywords: u64,
    /// INTERNALDATE, unix seconds.
    pub date_unix_seconds: i64,
    /// INTERNALDATE's zone, minutes east of UTC.
    pub zone_minutes: i16,
    /// Length of its bytes.
    pub size: u32,
}

/// The last record of a snapshot: what it held, and a checksum over its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotEnd {
    /// Messages described.
    pub messages: u32,
    /// Body records in this snapshot (the others are references to earlier ones).
    pub bodies: u32,
    /// Bytes of those bodies.
    pub body_bytes: u64,
    /// CRC-32C over the checksums of every record of the snapshot before this one, in order
    /// (each as 4 LE bytes): a record lost or moved between two intact ones shows here.
    pub chain: u32,
}

/// One record of an archive or a stream (`core/FORMAT.md`, "Backup archives").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Kind 1.
    Start(SnapshotStart),
    /// Kind 2.
    Mailbox(MailboxState),
    /// Kind 3: subscribed names (they need not exist).
    Subscriptions(Vec<String>),
    /// Kind 4: up to [`MESSAGES_PER_RECORD_MAX`] messages.
    Messages(Vec<MessageState>),
    /// Kind 5: the bytes of the next message, with their SHA-256.
    Body {
        /// SHA-256 of `bytes`.
        digest: Digest,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Kind 6: the next message's bytes are those of an earlier body record of the archive.
    Ref(Digest),
    /// Kind 7.
    End(SnapshotEnd),
}

/// Why an archive or a stream cannot be read (further).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing the file or stream failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Not an archive, or one of a newer major version.
    #[error("not a skua backup archive: {0}")]
    NotArchive(&'static str),
    /// A record's checksum failed, or it is malformed or out of order, at this offset.
    #[error("damaged at byte {offset}: {what}")]
    Damaged {
        /// Offset of the record in the archive or stream.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The data ended inside a record or a snapshot.
    #[error("ends inside a {0} (truncated)")]
    Truncated(&'static str),
    /// A body's bytes do not have the digest given with them.
    #[error("a body's bytes do not match its SHA-256")]
    DigestMismatch,
    /// The snapshot has no mailbox by that name.
    #[error("the snapshot has no mailbox {0:?}")]
    NoSuchMailbox(String),
    /// A reference to a body the archive does not hold, or a reference in a stream.
    #[error("a reference to a body that is not there")]
    MissingBody,
}
