//! Access control lists (RFC 4314): the typed model the store keeps per mailbox and the
//! protocols crate parses into and formats from.
//!
//! - [`Right`]: one of the eleven RFC 4314 rights `l r s w i p k x t e a`.
//! - [`Rights`]: a bit set of them. Bit `i` is [`Right::ALL`]`[i]`; the bits are on disk
//!   (`core/FORMAT.md`, "acl records"), so they never move. The obsolete RFC 2086 rights are
//!   virtual: `c` ("create") stands for `k`, `d` ("delete") for `x t e` (RFC 4314 §2.1.1, the
//!   mapping of servers whose `d` controls DELETE); they are accepted on input and shown on
//!   output beside their members, never stored.
//! - [`Identifier`]: a user name, `anyone` or `authenticated`, positive or negative (`-name`).
//!   User names follow [`UserName`]'s rules (skua's user names are case-insensitive, so an
//!   identifier is kept lowercased); `anyone` and `authenticated` are matched in any case.
//! - [`Acl`]: ordered entries, at most [`ACL_ENTRIES_MAX`] per mailbox.
//!
//! The effective rights of a user (RFC 4314 §2) are the union of the rights of every positive
//! entry that matches them minus the union of the rights of every negative entry that matches
//! them: [`Acl::effective_rights`]. The owner's rights that can never be lost (`l k x a`,
//! [`Rights::OWNER_FIXED`]) are added by the store (`UserStore::rights_of`), which knows the
//! owner; this module knows no owner.

use std::fmt;

use crate::limits::{ACL_ENTRIES_MAX, ACL_IDENTIFIER_BYTES_MAX};
use crate::paths::UserName;

/// One RFC 4314 right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Right {
    /// `l`: the mailbox is visible to LIST, SUBSCRIBE names it.
    Lookup,
    /// `r`: SELECT, STATUS, FETCH, SEARCH, COPY from.
    Read,
    /// `s`: keep `\Seen` across sessions.
    Seen,
    /// `w`: flags other than `\Seen` and `\Deleted`.
    Write,
    /// `i`: APPEND, COPY/MOVE into.
    Insert,
    /// `p`: post (deliver to the mailbox's address, e.g. LMTP `+detail`).
    Post,
    /// `k`: create mailboxes below it.
    CreateMailbox,
    /// `x`: delete (and rename) the mailbox.
    DeleteMailbox,
    /// `t`: set or clear `\Deleted`.
    DeleteMessages,
    /// `e`: EXPUNGE.
    Expunge,
    /// `a`: administer (SETACL, DELETEACL, GETACL, LISTRIGHTS).
    Administer,
}

impl Right {
    /// Every right, in bit order (the order rights are written in).
    pub const ALL: [Right; 11] = [
        Right::Lookup,
        Right::Read,
        Right::Seen,
        Right::Write,
        Right::Insert,
        Right::Post,
        Right::CreateMailbox,
        Right::DeleteMailbox,
        Right::DeleteMessages,
        Right::Expunge,
        Right::Administer,
    ];

    /// The right's letter.
    #[must_use]
    pub fn letter(self) -> char {
        LETTERS[self as usize] as char
    }

    /// The right of a letter, if it is one of the eleven (not the virtual `c`/`d`).
    #[must_use]
    pub fn from_letter(letter: char) -> Option<Right> {
        let at = LETTERS.iter().position(|&l| char::from(l) == letter)?;
        Some(Right::ALL[at])
    }
}

/// The letters of [`Right::ALL`], in bit order.
const LETTERS: &[u8; 11] = b"lrswipkxtea";
const _: () = assert!(LETTERS.len() == Right::ALL.len());

/// A set of rights. Bit `i` is [`Right::ALL`]`[i]` (on disk: never reorder).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights(u32);

/// Why a rights string was refused (RFC 4314 §3.1: the command answers BAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RightsError {
    /// A character that is not a right skua knows (RFC 4314 §3.1: an unrecognized right
    /// must not be ignored).
    #[error("unknown right {0:?}")]
    UnknownRight(char),
}

impl Rights {
    /// No rights.
    pub const NONE: Rights = Rights(0);
    /// Every right.
    pub const ALL: Rights = Rights((1 << Right::ALL.len()) - 1);
    /// What the owner of a mailbox always has, whatever its ACL says: `l k x a`, so the
    /// owner can always see, create below, delete and repair the ACL of their own mailbox.
    pub const OWNER_FIXED: Rights = Rights(
        1 << Right::Lookup as u32
            | 1 << Right::CreateMailbox as u32
            | 1 << Right::DeleteMailbox as u32
            | 1 << Right::Administer as u32,
    );
    /// The members of the virtual `c` ("create") right.
    pub const CREATE: Rights = Rights(1 << Right::CreateMailbox as u32);
    /// The members of the virtual `d` ("delete") right.
    pub const DELETE: Rights = Rights(
        1 << Right::DeleteMailbox as u32
            | 1 << Right::DeleteMessages as u32
            | 1 << Right::Expunge as u32,
    );

    /// The set of raw bits, if every bit names a right.
    #[must_use]
    pub fn from_bits(bits: u32) -> Option<Rights> {
        (bits & !Self::ALL.0 == 0).then_some(Rights(bits))
    }

    /// The raw bits.
    #[must_use]
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The set of one right.
    #[must_use]
    pub fn of(right: Right) -> Rights {
        Rights(1 << right as u32)
    }

    /// Parses an RFC 4314 rights string: letters of the eleven rights and the virtual `c`
    /// and `d` (mapped to their members), in any order, repeated or not. Empty is no rights.
    ///
    /// # Errors
    /// The first character that is not a right (uppercase and digits included).
    pub fn parse(text: &str) -> Result<Rights, RightsError> {
        let mut rights = Rights::NONE;
        for letter in text.chars() {
            rights = rights.union(match letter {
                'c' => Rights::CREATE,
                'd' => Rights::DELETE,
                _ => {
                    Rights::of(Right::from_letter(letter).ok_or(RightsError::UnknownRight(letter))?)
                }
            });
        }
        Ok(rights)
    }

    /// True when every right of `other` is in the set.
    #[must_use]
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when `right` is in the set.
    #[must_use]
    pub fn has(self, right: Right) -> bool {
        self.contains(Rights::of(right))
    }

    /// True when the set is empty.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets.
    #[must_use]
    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// The set without `other`.
    #[must_use]
    pub fn without(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// The rights in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Right> {
        Right::ALL.into_iter().filter(move |&r| self.has(r))
    }

    /// The canonical string without the virtual rights: the letters in bit order
    /// (`lrswipkxtea`). What LISTRIGHTS names and what the store writes.
    #[must_use]
    pub fn letters(self) -> String {
        self.iter().map(Right::letter).collect()
    }
}

/// The canonical form an ACL or MYRIGHTS response gives (RFC 4314 §2.1.1): the letters in bit
/// order, then `c` when `k` is in the set and `d` when any of `x t e` is.
impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.letters())?;
        if self.0 & Rights::CREATE.0 != 0 {
            f.write_str("c")?;
        }
        if self.0 & Rights::DELETE.0 != 0 {
            f.write_str("d")?;
        }
        Ok(())
    }
}

/// Whom an ACL entry is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Who {
    /// One user, by lowercased user name.
    User(String),
    /// Everyone, authenticated or not (RFC 4314 §2).
    Anyone,
    /// Every authenticated user (a skua identifier, as Cyrus has).
    Authenticated,
}

/// An ACL identifier: whom, and whether the entry grants (positive) or takes away
/// (negative, written `-name`) rights.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier {
    /// Whom the entry is about.
    pub who: Who,
    /// A negative entry (RFC 4314 §2): its rights are taken away.
    pub negative: bool,
}

/// Why an identifier was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// Empty, or `-` alone.
    #[error("empty identifier")]
    Empty,
    /// Longer than `limits::ACL_IDENTIFIER_BYTES_MAX` bytes.
    #[error("identifier too long")]
    TooLong,
    /// Not a user name skua could have (non-ASCII, a space, a leading dot, ...).
    #[error("identifier is not a user name, anyone or authenticated")]
    Invalid,
}

impl Identifier {
    /// The positive identifier of user `name` (lowercased).
    ///
    /// # Errors
    /// `name` is not a valid user name (or is `anyone`, `authenticated`, or starts with `-`).
    pub fn user(name: &str) -> Result<Identifier, IdentifierError> {
        match Identifier::parse(name)? {
            id @ Identifier { who: Who::User(_), negative: false } => Ok(id),
            _ => Err(IdentifierError::Invalid),
        }
    }

    /// `anyone`.
    #[must_use]
    pub fn anyone() -> Identifier {
        Identifier { who: Who::Anyone, negative: false }
    }

    /// Parses the wire form: `anyone`, `authenticated` (any case), or a user name, each with
    /// an optional leading `-` for a negative entry.
    ///
    /// # Errors
    /// Empty (or `-` alone), too long, or not a user name.
    pub fn parse(text: &str) -> Result<Identifier, IdentifierError> {
        if text.len() > ACL_IDENTIFIER_BYTES_MAX {
            return Err(IdentifierError::TooLong);
        }
        let (negative, name) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if name.is_empty() {
            return Err(IdentifierError::Empty);
        }
        // A user name may start with `-`, but such a user could only ever be named as a
        // negative entry: refused, so one spelling means one thing.
        if name.starts_with('-') {
            return Err(IdentifierError::Invalid);
        }
        let who = if name.eq_ignore_ascii_case("anyone") {
            Who::Anyone
        } else if name.eq_ignore_ascii_case("authenticated") {
            Who::Authenticated
        } else {
            let name = UserName::new(name).map_err(|_| IdentifierError::Invalid)?;
            Who::User(name.as_str().to_owned())
        };
        Ok(Identifier { who, negative })
    }

    /// The same identifier, positive.
    #[must_use]
    pub fn positive(&self) -> Identifier {
        Identifier { who: self.who.clone(), negative: false }
    }

    /// True when the entry applies to `user` (lowercase compare) in a session that is
    /// `authenticated` or not, ignoring its sign.
    #[must_use]
    pub fn matches(&self, user: &str, authenticated: bool) -> bool {
        match &self.who {
            Who::User(name) => name.eq_ignore_ascii_case(user),
            Who::Anyone => true,
            Who::Authenticated => authenticated,
        }
    }

    /// True when this is the positive identifier of user `name`.
    #[must_use]
    pub fn is_user(&self, name: &str) -> bool {
        !self.negative && matches!(&self.who, Who::User(n) if n.eq_ignore_ascii_case(name))
    }
}

/// The wire form (and the form in `mailboxes.log`): `[-]name`, `anyone`, `authenticated`.
impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        match &self.who {
            Who::User(name) => f.write_str(name),
            Who::Anyone => f.write_str("anyone"),
            Who::Authenticated => f.write_str("authenticated"),
        }
    }
}

/// How SETACL changes an identifier's rights (RFC 4314 §3.1 `mod-rights`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RightsChange {
    /// `rights`: the identifier has exactly these.
    Replace(Rights),
    /// `+rights`: add these.
    Add(Rights),
    /// `-rights`: take these away.
    Remove(Rights),
}

impl RightsChange {
    /// Parses `mod-rights`: an optional `+` or `-`, then a rights string.
    ///
    /// # Errors
    /// An unknown right.
    pub fn parse(text: &str) -> Result<RightsChange, RightsError> {
        if let Some(rest) = text.strip_prefix('+') {
            Ok(RightsChange::Add(Rights::parse(rest)?))
        } else if let Some(rest) = text.strip_prefix('-') {
            Ok(RightsChange::Remove(Rights::parse(rest)?))
        } else {
            Ok(RightsChange::Replace(Rights::parse(text)?))
        }
    }

    /// The rights after the change, from `current`.
    #[must_use]
    pub fn apply(self, current: Rights) -> Rights {
        match self {
            RightsChange::Replace(rights) => rights,
            RightsChange::Add(rights) => current.union(rights),
            RightsChange::Remove(rights) => current.without(rights),
        }
    }
}

/// One entry of an ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclEntry {
    /// Whom it is about.
    pub identifier: Identifier,
    /// What it grants (or, negative, takes away). Never empty in an [`Acl`].
    pub rights: Rights,
}

/// Why an ACL change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AclLimitError {
    /// The ACL already has `limits::ACL_ENTRIES_MAX` entries.
    #[error("too many ACL entries")]
    TooManyEntries,
}

/// A mailbox's access control list: entries in the order their identifiers were first
/// given, one per identifier (a positive and a negative entry of one name are two), none
/// with empty rights, at most [`ACL_ENTRIES_MAX`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    entries: Vec<AclEntry>,
}

impl Acl {
    /// An empty ACL.
    #[must_use]
    pub fn new() -> Acl {
        Acl::default()
    }

    /// The ACL a new mailbox has: its owner with every right.
    #[must_use]
    pub fn owner_default(owner: &Identifier) -> Acl {
        Acl { entries: vec![AclEntry { identifier: owner.clone(), rights: Rights::ALL }] }
    }

    /// The entries, in order.
    #[must_use]
    pub fn entries(&self) -> &[AclEntry] {
        &self.entries
    }

    /// The rights of exactly `identifier` (sign included), empty when it has no entry.
    #[must_use]
    pub fn get(&self, identifier: &Identifier) -> Rights {
        self.entries.iter().find(|e| &e.identifier == identifier).map_or(Rights::NONE, |e| e.rights)
    }

    /// Gives `identifier` exactly `rights` (removing its entry when empty). A new identifier
    /// goes last.
    ///
    /// # Errors
    /// A new entry would pass [`ACL_ENTRIES_MAX`]; the ACL is unchanged.
    pub fn set(&mut self, identifier: &Identifier, rights: Rights) -> Result<(), AclLimitError> {
        let at = self.entries.iter().position(|e| &e.identifier == identifier);
        match (at, rights.is_empty()) {
            (Some(at), true) => {
                self.entries.remove(at);
            }
            (Some(at), false) => self.entries[at].rights = rights,
            (None, true) => {}
            (None, false) => {
                if self.entries.len() >= ACL_ENTRIES_MAX {
                    return Err(AclLimitError::TooManyEntries);
                }
                self.entries.push(AclEntry { identifier: identifier.clone(), rights });
            }
        }
        Ok(())
    }

    /// The rights RFC 4314 §2 gives `user` (in a session that is `authenticated` or not):
    /// the union of the rights of the positive entries that match, minus the union of the
    /// rights of the negative entries that match.
    #[must_use]
    pub fn effective_rights(&self, user: &str, authenticated: bool) -> Rights {
        let mut granted = Rights::NONE;
        let mut denied = Rights::NONE;
        for entry in self.entries.iter().filter(|e| e.identifier.matches(user, authenticated)) {
            if entry.identifier.negative {
                denied = denied.union(entry.rights);
            } else {
                granted = granted.union(entry.rights);
            }
        }
        granted.without(denied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_bits_are_pinned_and_round_trip() {
        // On disk (core/FORMAT.md, "acl records"): bit i is "lrswipkxtea"[i].
        assert_eq!(Rights::parse("l").unwrap().bits(), 1);
        assert_eq!(Rights::parse("a").unwrap().bits(), 1 << 10);
        assert_eq!(Rights::ALL.bits(), 0x7ff);
        assert_eq!(Rights::ALL.letters(), "lrswipkxtea");
        assert_eq!(Rights::ALL.to_string(), "lrswipkxteacd");
        assert_eq!(Rights::OWNER_FIXED.letters(), "lkxa");
        assert_eq!(Rights::parse("aaxl").unwrap().letters(), "lxa");
        assert_eq!(Rights::parse("").unwrap(), Rights::NONE);
        assert_eq!(Rights::from_bits(0x800), None);
    }

    #[test]
    fn obsolete_rights_map_to_their_members() {
        assert_eq!(Rights::parse("c").unwrap().letters(), "k");
        assert_eq!(Rights::parse("d").unwrap().letters(), "xte");
        assert_eq!(Rights::parse("lrd").unwrap().to_string(), "lrxted");
        assert_eq!(Rights::parse("t").unwrap().to_string(), "td", "any member shows d");
        assert_eq!(Rights::parse("lr").unwrap().to_string(), "lr");
    }

    #[test]
    fn unknown_rights_are_refused() {
        for bad in ["L", "lrX", "0", "l r", "é", "lr9"] {
            assert!(Rights::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Rights::parse("lrZ"), Err(RightsError::UnknownRight('Z')));
    }

    #[test]
    fn identifiers_parse_and_print() {
        let id = Identifier::parse("-Fred").unwrap();
        assert!(id.negative);
        assert_eq!(id.who, Who::User("fred".into()));
        assert_eq!(id.to_string(), "-fred");
        assert_eq!(Identifier::parse("ANYONE").unwrap().to_string(), "anyone");
        assert_eq!(Identifier::parse("-authenticated").unwrap().to_string(), "-authenticated");
        assert_eq!(Identifier::parse(""), Err(IdentifierError::Empty));
        assert_eq!(Identifier::parse("-"), Err(IdentifierError::Empty));
        assert_eq!(Identifier::parse("--x"), Err(IdentifierError::Invalid));
        assert_eq!(Identifier::parse("a b"), Err(IdentifierError::Invalid));
        assert_eq!(Identifier::parse("jürgen"), Err(IdentifierError::Invalid));
        assert_eq!(Identifier::parse(".x"), Err(IdentifierError::Invalid));
        let long = "a".repeat(ACL_IDENTIFIER_BYTES_MAX + 1);
        assert_eq!(Identifier::parse(&long), Err(IdentifierError::TooLong));
        let longest = format!("-{}", "a".repeat(ACL_IDENTIFIER_BYTES_MAX - 1));
        assert!(Identifier::parse(&longest).is_ok());
    }

    #[test]
    fn effective_rights_subtract_negative_entries() {
        let mut acl = Acl::new();
        acl.set(&Identifier::parse("fred").unwrap(), Rights::parse("lrswi").unwrap()).unwrap();
        acl.set(&Identifier::parse("anyone").unwrap(), Rights::parse("lrp").unwrap()).unwrap();
        acl.set(&Identifier::parse("-fred").unwrap(), Rights::parse("w").unwrap()).unwrap();
        acl.set(&Identifier::parse("authenticated").unwrap(), Rights::parse("k").unwrap()).unwrap();
        assert_eq!(acl.effective_rights("fred", true).letters(), "lrsipk");
        assert_eq!(acl.effective_rights("Fred", false).letters(), "lrsip");
        assert_eq!(acl.effective_rights("bob", true).letters(), "lrpk");
        assert_eq!(acl.effective_rights("bob", false).letters(), "lrp");
        acl.set(&Identifier::parse("-anyone").unwrap(), Rights::parse("r").unwrap()).unwrap();
        assert_eq!(acl.effective_rights("fred", true).letters(), "lsipk");
    }

    #[test]
    fn entries_are_bounded_and_empty_rights_remove() {
        let mut acl = Acl::new();
        for i in 0..ACL_ENTRIES_MAX {
            acl.set(&Identifier::parse(&format!("u{i}")).unwrap(), Rights::ALL).unwrap();
        }
        let extra = Identifier::parse("extra").unwrap();
        assert_eq!(acl.set(&extra, Rights::ALL), Err(AclLimitError::TooManyEntries));
        assert_eq!(acl.entries().len(), ACL_ENTRIES_MAX);
        // Changing an existing entry and removing one still work at the limit.
        let first = Identifier::parse("u0").unwrap();
        acl.set(&first, Rights::parse("l").unwrap()).unwrap();
        acl.set(&first, Rights::NONE).unwrap();
        assert_eq!(acl.get(&first), Rights::NONE);
        acl.set(&extra, Rights::ALL).unwrap();
        assert_eq!(acl.entries().last().unwrap().identifier, extra);
    }

    #[test]
    fn mod_rights_parse() {
        let lr = Rights::parse("lr").unwrap();
        assert_eq!(RightsChange::parse("+lr"), Ok(RightsChange::Add(lr)));
        assert_eq!(RightsChange::parse("-lr"), Ok(RightsChange::Remove(lr)));
        assert_eq!(RightsChange::parse("lr"), Ok(RightsChange::Replace(lr)));
        assert_eq!(RightsChange::parse(""), Ok(RightsChange::Replace(Rights::NONE)));
        assert!(RightsChange::parse("+-l").is_err());
        assert_eq!(RightsChange::Remove(lr).apply(Rights::ALL).letters(), "swipkxtea");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn rights() -> impl Strategy<Value = Rights> {
            (0u32..0x800).prop_map(|b| Rights::from_bits(b).unwrap())
        }

        fn identifier() -> impl Strategy<Value = Identifier> {
            let who = prop_oneof![
                Just(Who::Anyone),
                Just(Who::Authenticated),
                "[a-c]{1,2}".prop_map(Who::User),
            ];
            (who, any::<bool>()).prop_map(|(who, negative)| Identifier { who, negative })
        }

        proptest! {
            #[test]
            fn rights_format_parse_round_trip(r in rights()) {
                prop_assert_eq!(Rights::parse(&r.letters()).unwrap(), r);
                // The virtual `d` is shown when any of `x t e` is there, so it reads back as
                // all of them (RFC 4314 §2.1.1): exact only when they come together.
                let shown = Rights::parse(&r.to_string()).unwrap();
                prop_assert!(shown.contains(r));
                let whole = |g: Rights| r.contains(g) || r.without(g) == r;
                prop_assert_eq!(shown == r, whole(Rights::DELETE));
            }

            #[test]
            fn identifier_format_parse_round_trip(id in identifier()) {
                prop_assert_eq!(Identifier::parse(&id.to_string()).unwrap(), id);
            }

            /// RFC 4314 §2: a right is effective exactly when some matching positive entry
            /// grants it and no matching negative entry takes it away.
            #[test]
            fn effective_rights_law(
                entries in proptest::collection::vec((identifier(), rights()), 0..12),
                user in "[a-c]{1,2}",
                authenticated in any::<bool>(),
            ) {
                let mut acl = Acl::new();
                for (id, r) in &entries {
                    acl.set(id, *r).unwrap();
                }
                let effective = acl.effective_rights(&user, authenticated);
                for right in Right::ALL {
                    let matching = |negative: bool| acl.entries().iter().any(|e| {
                        e.identifier.negative == negative
                            && e.identifier.matches(&user, authenticated)
                            && e.rights.has(right)
                    });
                    prop_assert_eq!(effective.has(right), matching(false) && !matching(true));
                }
            }
        }
    }
}
