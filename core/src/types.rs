//! The nouns of the mail store, as newtypes so that no bare integer carries two meanings.
//!
//! These types are the contract between `skua-core` and its callers (`skua-protocols`,
//! `skua-shard`, the CLI). Their on-disk encodings are described in `core/FORMAT.md`.

use std::num::NonZeroU32;

/// A message's unique identifier within one mailbox (RFC 9051 §2.3.1.1). Never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub NonZeroU32);

impl Uid {
    /// The smallest UID, 1.
    pub const MIN: Uid = Uid(NonZeroU32::MIN);

    /// Builds a UID from its wire value; `None` for zero.
    #[must_use]
    pub fn new(value: u32) -> Option<Uid> {
        NonZeroU32::new(value).map(Uid)
    }

    /// The wire / on-disk value.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// A mailbox's UIDVALIDITY (RFC 9051 §2.3.1.1). Fixed for the life of a mailbox id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidValidity(pub NonZeroU32);

impl UidValidity {
    /// The wire / on-disk value.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// A modification sequence number (RFC 7162). Per mailbox, strictly increasing with each change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ModSeq(pub u64);

/// A mailbox's identity inside one user's store. Names map to ids; ids never become paths by
/// way of a name, and an id is never reused within a user's store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MailboxId(pub u32);

/// Seconds since the Unix epoch, UTC, plus the zone offset the client gave (RFC 9051
/// INTERNALDATE keeps the zone for display).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InternalDate {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix_seconds: i64,
    /// Offset from UTC in minutes, as given by the client or the server's choice at delivery.
    pub zone_minutes: i16,
}

/// System flags (RFC 9051 §2.3.2) as bits; keywords are kept apart in [`Keywords`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SystemFlags(pub u16);

impl SystemFlags {
    /// `\Seen`
    pub const SEEN: u16 = 1 << 0;
    /// `\Answered`
    pub const ANSWERED: u16 = 1 << 1;
    /// `\Flagged`
    pub const FLAGGED: u16 = 1 << 2;
    /// `\Deleted`
    pub const DELETED: u16 = 1 << 3;
    /// `\Draft`
    pub const DRAFT: u16 = 1 << 4;
    /// Every bit that names a flag; the rest must stay zero on disk.
    pub const ALL: u16 = 0x1f;

    /// True when every bit of `bits` is set.
    #[must_use]
    pub fn contains(self, bits: u16) -> bool {
        self.0 & bits == bits
    }
}

/// A set of keywords, as bits indexing the mailbox's keyword table (at most
/// [`crate::limits::KEYWORDS_PER_MAILBOX_MAX`] names per mailbox).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Keywords(pub u64);

/// The flags of one message: system flags and keyword bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// `\Seen`, `\Answered`, ...
    pub system: SystemFlags,
    /// Keyword bits, meaningful only with the owning mailbox's keyword table.
    pub keywords: Keywords,
}

/// How STORE combines the given flags with the current ones (RFC 9051 §6.4.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagsOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// A durability ticket: the group-commit epoch that must be durable before a reply that
/// depends on a mutation may be sent. See `ARCHITECTURE.md`, "Group commit".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);
