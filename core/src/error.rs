//! Typed errors of the mail store: one shared [`StorageError`] for what the disk did, and one
//! enum per operation family wrapping it, so a caller matches only what can happen.
//!
//! Bad input and a bad disk are operating errors and come back as `Err`; a broken invariant of
//! our own is a bug and panics (see `STYLE.md`, "Assertions"). The mapping of these errors to
//! IMAP responses and LMTP replies lives in one place outside core.

use std::io;
use std::path::PathBuf;

/// What went wrong underneath an operation: the disk failed, or what it holds is damaged.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O operation failed (e.g. the disk is full: `StorageFull`).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory, relative to the disk root.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file holds something that cannot be read back and cannot be repaired in place.
    #[error("corrupt {what} in {path} at offset {offset}")]
    Corrupt {
        /// What was being read (e.g. "index header").
        what: &'static str,
        /// The file, relative to the disk root.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
    },
    /// A file was written by a newer, incompatible skua (`format_major` too high).
    #[error("{path} has format version {major}; this skua reads version {supported}")]
    UnsupportedFormat {
        /// The file, relative to the disk root.
        path: PathBuf,
        /// The file's `format_major`.
        major: u16,
        /// The newest major this build reads.
        supported: u16,
    },
}

impl StorageError {
    /// Wraps an I/O error with the path it happened on.
    #[must_use]
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> StorageError {
        StorageError::Io { path: path.into(), source }
    }

    /// True when the disk ran out of space or quota: the caller may say "try later".
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StorageError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded))
    }
}

/// Why a user's store could not be opened (or reconstructed).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The disk failed, or a file is damaged beyond what recovery repairs.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a mailbox name is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("empty mailbox name")]
    Empty,
    /// Longer than `limits::MAILBOX_NAME_BYTES_MAX` bytes.
    #[error("mailbox name too long")]
    TooLong,
    /// More than `limits::MAILBOX_LEVELS_MAX` hierarchy levels.
    #[error("mailbox hierarchy too deep")]
    TooDeep,
    /// A control character (NUL, CR, LF, ...) or DEL.
    #[error("mailbox name contains a control character")]
    ControlCharacter,
    /// An empty hierarchy level: a leading, trailing or doubled `/`.
    #[error("mailbox name has an empty hierarchy level")]
    EmptyLevel,
    /// `*` or `%`, which LIST would treat as wildcards.
    #[error("mailbox name contains a wildcard")]
    Wildcard,
    /// A hierarchy level `.` or `..`: refused for new names, since every tool that maps
    /// folders to files (Maildir, backups) would take it for a directory link.
    #[error("mailbox name has a . or .. hierarchy level")]
    DotLevel,
    /// The client sent a name its encoding could not decode (not modified UTF-7).
    #[error("mailbox name is not valid modified UTF-7")]
    Undecodable,
}

/// Errors of CREATE, DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// No mailbox has that name.
    #[error("no such mailbox")]
    NotFound,
    /// The (target) name is taken.
    #[error("mailbox already exists")]
    AlreadyExists,
    /// The name is not acceptable.
    #[error("invalid mailbox name: {0}")]
    InvalidName(#[from] NameError),
    /// INBOX cannot be deleted.
    #[error("INBOX cannot be deleted")]
    CannotDeleteInbox,
    /// A mailbox cannot be renamed to one of its own descendants.
    #[error("a mailbox cannot be renamed under itself")]
    RenameUnderItself,
    /// Too many mailboxes or subscriptions (`limits::MAILBOXES_PER_USER_MAX`, ...).
    #[error("too many mailboxes or subscriptions")]
    TooMany,
    /// The user's MAILBOX quota (RFC 9208) has no room for the mailboxes a CREATE makes.
    #[error(transparent)]
    OverQuota(OverQuota),
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of APPEND (and of delivery, which appends).
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The target mailbox does not exist.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The message or its cache blob is larger than the store accepts.
    #[error("message of {size} bytes is too large")]
    TooLarge {
        /// The message (or cache) size that was refused.
        size: u64,
    },
    /// The mailbox cannot take more messages (UIDs or records exhausted).
    #[error("mailbox is full")]
    MailboxFull,
    /// The user's quota (RFC 9208) has no room for the message(s); nothing was written.
    #[error(transparent)]
    OverQuota(OverQuota),
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of reading messages, bodies, cache blobs and keyword tables.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The mailbox does not exist (any more).
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// No live message has that UID.
    #[error("no such message")]
    NoSuchMessage,
    /// The disk failed, or the spool record does not match its index entry.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ReadError {
    /// True when the message's own spool record is damaged (`StorageError::Corrupt` from
    /// [`body`], [`cache`] or [`prefetch`] of one UID): only that message is unreadable, every
    /// other message of the mailbox still reads, so a FETCH over many messages answers the
    /// healthy ones and NO for this one. An I/O error (`StorageError::Io`) is not damage.
    ///
    /// [`body`]: crate::store::UserStore::body
    /// [`cache`]: crate::store::UserStore::cache
    /// [`prefetch`]: crate::store::UserStore::prefetch
    #[must_use]
    pub fn is_damaged_message(&self) -> bool {
        matches!(self, ReadError::Storage(StorageError::Corrupt { .. }))
    }
}

/// Errors of STORE and EXPUNGE.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The mailbox does not exist (any more).
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// A reader's `\Seen` set cannot take the change (a bound of `seen.log`, `seen.rs`).
    #[error("{0}")]
    ReaderSeen(String),
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of allocating keyword bits.
#[derive(Debug, thiserror::Error)]
pub enum KeywordError {
    /// The mailbox does not exist (any more).
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The mailbox's keyword table is full (`limits::KEYWORDS_PER_MAILBOX_MAX`).
    #[error("too many keywords in this mailbox")]
    TooMany,
    /// Not an IMAP atom, or longer than `limits::KEYWORD_BYTES_MAX`.
    #[error("invalid keyword")]
    Invalid,
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Errors of COPY (and of the copy half of MOVE).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source mailbox does not exist (any more).
    #[error("no such source mailbox")]
    NoSuchMailbox,
    /// The target mailbox does not exist.
    #[error("no such target mailbox")]
    NoSuchTarget,
    /// The target cannot take more messages.
    #[error("target mailbox is full")]
    MailboxFull,
    /// The user's quota (RFC 9208) has no room for the copies; nothing was written.
    #[error(transparent)]
    OverQuota(OverQuota),
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A quota resource (RFC 9208 §5): what an [`OverQuota`] refusal ran out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaResource {
    /// `STORAGE`: the sum of the live messages' sizes (limits in units of 1024 octets).
    Storage,
    /// `MESSAGE`: the number of live messages.
    Message,
    /// `MAILBOX`: the number of mailboxes.
    Mailbox,
}

impl QuotaResource {
    /// The resource's name as RFC 9208 spells it on the wire.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            QuotaResource::Storage => "STORAGE",
            QuotaResource::Message => "MESSAGE",
            QuotaResource::Mailbox => "MAILBOX",
        }
    }
}

/// An operation was refused because it would take the user past a quota limit (usage plus
/// what is reserved plus what the operation adds would exceed the limit). Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("over quota: {} limit reached", .resource.name())]
pub struct OverQuota {
    /// The resource without room.
    pub resource: QuotaResource,
}
