//! SPECIAL-USE attributes of a mailbox (RFC 6154 §2): what a client should use the mailbox
//! for (`\Sent`, `\Trash`, ...). The store keeps them per mailbox id in `mailboxes.log`
//! (a `special-use` record, `core/FORMAT.md`), so they follow RENAME and vanish with DELETE.
//!
//! The set is a bit set: bit `i` is [`SpecialUse::ALL_NAMES`]`[i]`. The bits are on disk, so
//! a bit keeps its meaning forever; a new attribute takes the next bit (a new log minor).

/// A set of SPECIAL-USE attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpecialUse(u32);

impl SpecialUse {
    /// No attribute.
    pub const NONE: SpecialUse = SpecialUse(0);
    /// `\All`: a virtual mailbox of every message (skua has none: never assignable).
    pub const ALL: SpecialUse = SpecialUse(1 << 0);
    /// `\Archive`
    pub const ARCHIVE: SpecialUse = SpecialUse(1 << 1);
    /// `\Drafts`
    pub const DRAFTS: SpecialUse = SpecialUse(1 << 2);
    /// `\Flagged`: a virtual mailbox of flagged messages (skua has none: never assignable).
    pub const FLAGGED: SpecialUse = SpecialUse(1 << 3);
    /// `\Junk`
    pub const JUNK: SpecialUse = SpecialUse(1 << 4);
    /// `\Sent`
    pub const SENT: SpecialUse = SpecialUse(1 << 5);
    /// `\Trash`
    pub const TRASH: SpecialUse = SpecialUse(1 << 6);

    /// The attribute names, bit `i` first, as RFC 6154 spells them.
    pub const ALL_NAMES: [&'static str; 7] =
        ["\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"];

    /// Every bit a reader of this format knows.
    pub const KNOWN: SpecialUse = SpecialUse((1 << Self::ALL_NAMES.len()) - 1);

    /// The attributes a real mailbox may carry: all but the virtual `\All` and `\Flagged`,
    /// whose mailboxes would have to show messages of other mailboxes (RFC 6154 §2).
    pub const ASSIGNABLE: SpecialUse = SpecialUse(Self::KNOWN.0 & !Self::ALL.0 & !Self::FLAGGED.0);

    /// The set of raw bits `bits`, if every one of them is known.
    #[must_use]
    pub fn from_bits(bits: u32) -> Option<SpecialUse> {
        (bits & !Self::KNOWN.0 == 0).then_some(SpecialUse(bits))
    }

    /// The raw bits (as in the log record).
    #[must_use]
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The attribute named `name` (`\Sent`, case-insensitive, RFC 9051 §4: flags and
    /// attributes are case-insensitive), if it is one of RFC 6154's.
    #[must_use]
    pub fn from_name(name: &str) -> Option<SpecialUse> {
        let at = Self::ALL_NAMES.iter().position(|known| known.eq_ignore_ascii_case(name))?;
        Some(SpecialUse(1 << at))
    }

    /// True when no attribute is set.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every attribute of `other` is in `self`.
    #[must_use]
    pub fn contains(self, other: SpecialUse) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets together.
    #[must_use]
    pub fn union(self, other: SpecialUse) -> SpecialUse {
        SpecialUse(self.0 | other.0)
    }

    /// The attributes of `self` that are not in `other`.
    #[must_use]
    pub fn without(self, other: SpecialUse) -> SpecialUse {
        SpecialUse(self.0 & !other.0)
    }

    /// The attribute names in the set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL_NAMES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|x| *x.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_pinned() {
        // The bits are on disk (core/FORMAT.md, "special-use"): they never move.
        assert_eq!(SpecialUse::from_name("\\Sent"), Some(SpecialUse(1 << 5)));
        assert_eq!(SpecialUse::from_name("\\sENT"), Some(SpecialUse::SENT));
        assert_eq!(SpecialUse::from_name("\\Inbox"), None);
        assert_eq!(SpecialUse::KNOWN.bits(), 0x7f);
        let set = SpecialUse::JUNK.union(SpecialUse::TRASH);
        assert_eq!(set.names().collect::<Vec<_>>(), ["\\Junk", "\\Trash"]);
        assert!(!SpecialUse::ASSIGNABLE.contains(SpecialUse::ALL));
        assert!(!SpecialUse::ASSIGNABLE.contains(SpecialUse::FLAGGED));
        assert!(SpecialUse::ASSIGNABLE.contains(SpecialUse::ARCHIVE));
        assert_eq!(SpecialUse::from_bits(0x80), None);
        assert_eq!(SpecialUse::from_bits(0x21), Some(SpecialUse::ALL.union(SpecialUse::SENT)));
    }
}
