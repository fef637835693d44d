//! The in-memory mailbox list: names, ids, UIDVALIDITY, keyword tables and subscriptions, as
//! replayed from `mailboxes.log`. [`Catalog::apply`] is both the replay rule check and the
//! update, so a record is accepted on replay exactly when it could have been written.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;

use super::log::LogRecord;
use super::names;
use super::special_use::SpecialUse;
use crate::acl::{Acl, Identifier, Rights};
use crate::limits::{KEYWORDS_PER_MAILBOX_MAX, MAILBOXES_PER_USER_MAX, SUBSCRIPTIONS_PER_USER_MAX};
use crate::types::{MailboxId, UidValidity};

/// One mailbox as the log describes it.
#[derive(Clone, Debug)]
pub(crate) struct CatalogEntry {
    /// Canonical name.
    pub name: String,
    /// Fixed for the life of the id.
    pub uid_validity: UidValidity,
    /// Bit `i` of a message's keywords is `keywords[i]` (a placeholder for a void bit).
    pub keywords: Vec<String>,
    /// Void bits: never set on a message, never given to a keyword (see
    /// `LogRecord::VoidKeyword`).
    pub void: u64,
    /// SPECIAL-USE attributes (RFC 6154).
    pub special_use: SpecialUse,
    /// The access control list once any ACL record named the mailbox; `None` means the
    /// default, the owner with every right (the catalog does not know the owner's name:
    /// `store/acl.rs`).
    pub acl: Option<Acl>,
}

impl CatalogEntry {
    /// The keyword bits that name keywords: defined and not void.
    pub(crate) fn valid_keywords(&self) -> u64 {
        let defined =
            if self.keywords.len() >= 64 { u64::MAX } else { (1u64 << self.keywords.len()) - 1 };
        defined & !self.void
    }

    /// The bit of keyword `name` (case-insensitive), if defined and not void.
    pub(crate) fn keyword_bit(&self, name: &str) -> Option<usize> {
        let valid = self.valid_keywords();
        self.keywords
            .iter()
            .enumerate()
            .position(|(bit, k)| valid & (1 << bit) != 0 && k.eq_ignore_ascii_case(name))
    }
}

/// The name `keywords()` shows for a void bit: a valid atom no message ever carries.
pub(crate) fn void_name(bit: u32) -> String {
    format!("$SkuaVoid{bit}")
}

/// The replayed mailbox list.
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    pub mailboxes: BTreeMap<MailboxId, CatalogEntry>,
    pub by_name: BTreeMap<String, MailboxId>,
    pub subscriptions: BTreeSet<String>,
    /// Ids of deleted mailboxes (their index files may linger until the delete is durable).
    pub deleted: BTreeSet<MailboxId>,
    /// One past the largest id ever created.
    pub next_id: u32,
    /// The largest UIDVALIDITY ever given (new ones are larger, so none is ever reused).
    pub last_uid_validity: u32,
    /// The default folders were made (`LogRecord::Provisioned`).
    pub provisioned: bool,
    /// Users who gave this user rights on a mailbox of theirs (`LogRecord::Granted`,
    /// `store/grants.rs`), lowercase.
    pub granted_by: BTreeSet<String>,
}

impl Catalog {
    /// Applies a replay unit of the log (one record, or a batch written as one change) if
    /// every record of it is consistent with the list, in order; false (and no change)
    /// otherwise, so a batch lands whole or not at all.
    pub(crate) fn apply_unit(&mut self, records: &[LogRecord]) -> bool {
        if let [record] = records {
            return self.apply(record);
        }
        // Batches are rare (renames, several new keywords), and the list is bounded.
        let mut staged = self.clone();
        if !records.iter().all(|record| staged.apply(record)) {
            return false;
        }
        *self = staged;
        true
    }

    /// Applies a record if it is consistent with the list; false (and no change) otherwise.
    pub(crate) fn apply(&mut self, record: &LogRecord) -> bool {
        match record {
            LogRecord::Create { id, uid_validity, name } => self.create(*id, *uid_validity, name),
            LogRecord::Rename { id, name } => self.rename(*id, name),
            LogRecord::Delete { id } => self.delete(*id),
            LogRecord::Subscribe { name } => {
                let ok = names::canonical(name).is_ok_and(|c| &c == name)
                    && self.subscriptions.len() < SUBSCRIPTIONS_PER_USER_MAX;
                ok && self.subscriptions.insert(name.clone())
            }
            LogRecord::Unsubscribe { name } => self.subscriptions.remove(name),
            LogRecord::Keyword { id, bit, name } => self.keyword(*id, *bit, name),
            LogRecord::VoidKeyword { id, bit } => self.void_keyword(*id, *bit),
            LogRecord::SpecialUse { id, uses } => match self.mailboxes.get_mut(id) {
                Some(entry) => {
                    entry.special_use = *uses;
                    true
                }
                None => false,
            },
            LogRecord::Provisioned => {
                self.provisioned = true;
                true
            }
            LogRecord::Acl { id, identifier, rights } => self.acl(*id, identifier, *rights),
            LogRecord::Granted { owner } => {
                // A repeat changes nothing; past the bound is corruption (the writer stops).
                self.granted_by.contains(owner)
                    || (self.granted_by.len() < crate::limits::GRANTS_RECEIVED_MAX
                        && self.granted_by.insert(owner.clone()))
            }
            LogRecord::Floor { next_id, last_uid_validity } => {
                self.next_id = self.next_id.max(*next_id);
                self.last_uid_validity = self.last_uid_validity.max(*last_uid_validity);
                true
            }
        }
    }

    fn create(&mut self, id: MailboxId, uid_validity: UidValidity, name: &str) -> bool {
        let valid_name = names::canonical(name).is_ok_and(|c| c == name);
        if !valid_name
            || id.0 < self.next_id
            || uid_validity.get() <= self.last_uid_validity
            || self.by_name.contains_key(name)
            || self.mailboxes.len() >= MAILBOXES_PER_USER_MAX
        {
            return false;
        }
        let Some(next_id) = id.0.checked_add(1) else {
            return false;
        };
        self.next_id = next_id;
        self.last_uid_validity = uid_validity.get();
        self.by_name.insert(name.to_owned(), id);
        let entry = CatalogEntry {
            name: name.to_owned(),
            uid_validity,
            keywords: Vec::new(),
            void: 0,
            special_use: SpecialUse::NONE,
            acl: None,
        };
        self.mailboxes.insert(id, entry);
        true
    }

    fn rename(&mut self, id: MailboxId, name: &str) -> bool {
        let valid_name = names::canonical(name).is_ok_and(|c| c == name);
        if !valid_name || self.by_name.contains_key(name) {
            return false;
        }
        let Some(entry) = self.mailboxes.get_mut(&id) else {
            return false;
        };
        self.by_name.remove(&entry.name);
        entry.name = name.to_owned();
        self.by_name.insert(name.to_owned(), id);
        true
    }

    fn delete(&mut self, id: MailboxId) -> bool {
        let Some(entry) = self.mailboxes.remove(&id) else {
            return false;
        };
        self.by_name.remove(&entry.name);
        self.deleted.insert(id);
        true
    }

    fn keyword(&mut self, id: MailboxId, bit: u32, name: &str) -> bool {
        let Some(entry) = self.mailboxes.get_mut(&id) else {
            return false;
        };
        let next = entry.keywords.len();
        let fresh = entry.keyword_bit(name).is_none();
        if bit as usize != next
            || next >= KEYWORDS_PER_MAILBOX_MAX
            || !names::is_keyword(name)
            || !fresh
        {
            return false;
        }
        entry.keywords.push(name.to_owned());
        true
    }

    /// An ACL record: the mailbox exists, the entry stays within `limits::ACL_ENTRIES_MAX`,
    /// and a removal names an entry that is there (the writer writes no other).
    fn acl(&mut self, id: MailboxId, identifier: &Identifier, rights: Rights) -> bool {
        let Some(entry) = self.mailboxes.get_mut(&id) else {
            return false;
        };
        let acl = entry.acl.get_or_insert_with(Acl::new);
        if rights.is_empty() && acl.get(identifier).is_empty() {
            if acl.entries().is_empty() {
                entry.acl = None;
            }
            return false;
        }
        if acl.set(identifier, rights).is_err() {
            return false;
        }
        // An ACL is never empty (the store keeps the owner's entry), so one that replays
        // empty is the default again, as a compacted log (which writes no entry) would say.
        if acl.entries().is_empty() {
            entry.acl = None;
        }
        true
    }

    fn void_keyword(&mut self, id: MailboxId, bit: u32) -> bool {
        let Some(entry) = self.mailboxes.get_mut(&id) else {
            return false;
        };
        if bit as usize != entry.keywords.len() || entry.keywords.len() >= KEYWORDS_PER_MAILBOX_MAX
        {
            return false;
        }
        entry.keywords.push(void_name(bit));
        entry.void |= 1 << bit;
        true
    }

    /// Makes sure new mailboxes get an id above `id` and a UIDVALIDITY above `uid_validity`:
    /// they were used by a mailbox whose creation was lost in a crash.
    pub(crate) fn raise_floor(
        &mut self,
        (id, uid_validity): (Option<MailboxId>, Option<UidValidity>),
    ) {
        if let Some(id) = id {
            self.next_id = self.next_id.max(id.0.saturating_add(1));
        }
        if let Some(uid_validity) = uid_validity {
            self.last_uid_validity = self.last_uid_validity.max(uid_validity.get());
        }
    }

    /// The id of a canonical name.
    pub(crate) fn id(&self, canonical_name: &str) -> Option<MailboxId> {
        self.by_name.get(canonical_name).copied()
    }

    /// A UIDVALIDITY for a new mailbox: the clock, but always above every earlier one.
    pub(crate) fn next_uid_validity(&self, now_unix_seconds: i64) -> UidValidity {
        let clock = u32::try_from(now_unix_seconds.max(1)).unwrap_or(u32::MAX);
        let value = clock.max(self.last_uid_validity.saturating_add(1));
        UidValidity(NonZeroU32::new(value).expect("at least one"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u32) -> UidValidity {
        UidValidity(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn replay_rules() {
        let mut c = Catalog::default();
        let create = |id, uv, name: &str| LogRecord::Create {
            id: MailboxId(id),
            uid_validity: v(uv),
            name: name.into(),
        };
        assert!(c.apply(&create(0, 10, "INBOX")));
        assert!(!c.apply(&create(0, 11, "a")), "id reused");
        assert!(!c.apply(&create(1, 10, "a")), "uidvalidity not increasing");
        assert!(!c.apply(&create(1, 11, "INBOX")), "name taken");
        assert!(!c.apply(&create(1, 11, "inbox")), "not canonical");
        assert!(c.apply(&create(1, 11, "a")));
        assert!(c.apply(&LogRecord::Rename { id: MailboxId(1), name: "b".into() }));
        assert_eq!(c.id("b"), Some(MailboxId(1)));
        assert_eq!(c.id("a"), None);
        assert!(!c.apply(&LogRecord::Rename { id: MailboxId(9), name: "c".into() }));
        let keyword =
            |bit, name: &str| LogRecord::Keyword { id: MailboxId(1), bit, name: name.into() };
        assert!(!c.apply(&keyword(1, "k")), "bits are given in order");
        assert!(c.apply(&keyword(0, "k")));
        assert!(!c.apply(&keyword(1, "K")), "keywords are case-insensitive");
        assert!(c.apply(&LogRecord::Delete { id: MailboxId(1) }));
        assert!(!c.apply(&LogRecord::Delete { id: MailboxId(1) }));
        assert!(!c.apply(&create(1, 12, "b")), "ids are never reused");
        assert!(c.apply(&create(2, 12, "b")));
        assert_eq!(c.next_uid_validity(5), v(13));
        let rename = |id, name: &str| LogRecord::Rename { id: MailboxId(id), name: name.into() };
        assert!(c.apply(&create(3, 13, "b/c")));
        let half_good = [rename(2, "d"), rename(3, "INBOX")];
        assert!(!c.apply_unit(&half_good), "the second record breaks a rule");
        assert_eq!(c.id("b"), Some(MailboxId(2)), "so the first is not applied");
        assert!(c.apply_unit(&[rename(2, "d"), rename(3, "d/c")]));
        assert_eq!((c.id("d"), c.id("d/c")), (Some(MailboxId(2)), Some(MailboxId(3))));
        assert_eq!(c.next_uid_validity(1_000_000), v(1_000_000));
    }

    #[test]
    fn special_use_follows_the_id() {
        let mut c = Catalog::default();
        let sent = SpecialUse::SENT;
        assert!(c.apply(&LogRecord::Create {
            id: MailboxId(0),
            uid_validity: v(1),
            name: "S".into()
        }));
        assert!(!c.apply(&LogRecord::SpecialUse { id: MailboxId(1), uses: sent }), "unknown id");
        assert!(c.apply(&LogRecord::SpecialUse { id: MailboxId(0), uses: sent }));
        assert!(c.apply(&LogRecord::Rename { id: MailboxId(0), name: "T".into() }));
        assert_eq!(c.mailboxes[&MailboxId(0)].special_use, sent, "kept by rename");
        assert!(c.apply(&LogRecord::Delete { id: MailboxId(0) }));
        assert!(!c.apply(&LogRecord::SpecialUse { id: MailboxId(0), uses: sent }), "deleted");
        assert!(!c.provisioned);
        assert!(c.apply(&LogRecord::Provisioned));
        assert!(c.provisioned);
    }

    #[test]
    fn acl_follows_the_id_and_is_bounded() {
        let mut c = Catalog::default();
        let create = |id, uv, name: &str| LogRecord::Create {
            id: MailboxId(id),
            uid_validity: v(uv),
            name: name.into(),
        };
        let acl = |id, who: &str, rights: &str| LogRecord::Acl {
            id: MailboxId(id),
            identifier: Identifier::parse(who).unwrap(),
            rights: Rights::parse(rights).unwrap(),
        };
        assert!(c.apply(&create(0, 1, "A")));
        assert!(!c.apply(&acl(1, "fred", "lr")), "unknown id");
        assert!(!c.apply(&acl(0, "fred", "")), "removal of an entry that is not there");
        assert!(c.mailboxes[&MailboxId(0)].acl.is_none(), "a refused record changes nothing");
        assert!(c.apply(&acl(0, "fred", "lr")));
        assert!(c.apply(&LogRecord::Rename { id: MailboxId(0), name: "B".into() }));
        let kept = c.mailboxes[&MailboxId(0)].acl.clone().unwrap();
        assert_eq!(kept.get(&Identifier::parse("fred").unwrap()).letters(), "lr", "kept");
        assert!(c.apply(&acl(0, "fred", "")));
        assert!(!c.apply(&acl(0, "fred", "")), "already removed");
        for i in 0..crate::limits::ACL_ENTRIES_MAX {
            assert!(c.apply(&acl(0, &format!("u{i}"), "l")));
        }
        assert!(!c.apply(&acl(0, "one-more", "l")), "over the limit");
        assert!(c.apply(&LogRecord::Delete { id: MailboxId(0) }));
        assert!(!c.apply(&acl(0, "u0", "r")), "deleted");
        assert!(c.apply(&create(1, 2, "B")));
        assert!(c.mailboxes[&MailboxId(1)].acl.is_none(), "a new mailbox has the default");
    }
}
