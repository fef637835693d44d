//! Which mailboxes changed, and how the mailbox list changed, since a session last looked: what
//! a session with NOTIFY (RFC 5465) reads on each wake, at a cost proportional to the changes,
//! not to the number of mailboxes.
//!
//! * *Message changes.* Every mailbox that had messages added or expunged, or flags changed,
//!   gets the store's next *generation*; the tracker keeps, per mailbox, the generation of its
//!   last change of each kind, and an ordered map from a mailbox's newest generation to the
//!   mailbox. A session remembers the generation it last read and asks for the mailboxes past
//!   it: O(changed × log mailboxes), and one entry per mailbox whatever the number of changes.
//! * *List changes* (create, delete, rename, subscribe, unsubscribe) are kept in order in a
//!   bounded journal ([`LIST_CHANGES_MAX`] entries, each a name or two). A session that fell
//!   further behind than the journal reaches learns so ([`ListChanges::Lost`]) and must give
//!   up on what it missed (NOTIFY's `NOTIFICATIONOVERFLOW`).
//!
//! Nothing here is persisted: it describes changes made while the store is open, which is all
//! a live session can be owed.

use std::collections::{BTreeMap, VecDeque};

use crate::types::MailboxId;

/// List changes the journal keeps: a session further behind than this overflows.
pub const LIST_CHANGES_MAX: usize = 1024;

/// The kinds of change a mailbox had since a generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailboxChange {
    /// Messages were added or expunged.
    pub messages: bool,
    /// Flags of messages changed.
    pub flags: bool,
}

/// One change of the mailbox list, as NOTIFY's `MailboxName` and `SubscriptionChange` events
/// report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListChange {
    /// A mailbox was created.
    Created(String),
    /// A mailbox was deleted.
    Deleted(String),
    /// A mailbox was renamed (each child of a renamed mailbox is a change of its own).
    Renamed {
        /// The name before.
        old: String,
        /// The name after.
        new: String,
    },
    /// A name was subscribed.
    Subscribed(String),
    /// A name was unsubscribed.
    Unsubscribed(String),
}

/// What [`UserStore::list_changes_since`](super::UserStore::list_changes_since) found.
#[derive(Debug, PartialEq, Eq)]
pub enum ListChanges<'a> {
    /// The changes after the position asked about, oldest first, each with its position.
    Since(Vec<(u64, &'a ListChange)>),
    /// Some changes after that position are no longer kept.
    Lost,
}

/// Per-mailbox generations of the last change of each kind.
#[derive(Clone, Copy, Debug, Default)]
struct Marks {
    /// The newest of the two below (the key in `by_generation`).
    newest: u64,
    messages: u64,
    flags: u64,
}

/// The tracker (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// The last generation given out (0: none yet).
    generation: u64,
    marks: BTreeMap<MailboxId, Marks>,
    by_generation: BTreeMap<u64, MailboxId>,
    /// Position of the last list change (0: none yet); positions count up from 1.
    list_position: u64,
    list: VecDeque<(u64, ListChange)>,
}

impl Changes {
    /// Notes a change of `kind` in mailbox `id`.
    pub(super) fn touch(&mut self, id: MailboxId, kind: MailboxChange) {
        self.generation += 1;
        let generation = self.generation;
        let marks = self.marks.entry(id).or_default();
        if marks.newest != 0 {
            self.by_generation.remove(&marks.newest);
        }
        marks.newest = generation;
        if kind.messages {
            marks.messages = generation;
        }
        if kind.flags {
            marks.flags = generation;
        }
        self.by_generation.insert(generation, id);
    }

    /// Forgets a deleted mailbox.
    pub(super) fn forget(&mut self, id: MailboxId) {
        if let Some(marks) = self.marks.remove(&id) {
            self.by_generation.remove(&marks.newest);
        }
    }

    /// Appends a list change, dropping the oldest past [`LIST_CHANGES_MAX`].
    pub(super) fn list_change(&mut self, change: ListChange) {
        self.list_position += 1;
        if self.list.len() == LIST_CHANGES_MAX {
            self.list.pop_front();
        }
        self.list.push_back((self.list_position, change));
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn list_position(&self) -> u64 {
        self.list_position
    }

    /// Mailboxes changed after `generation`, oldest change first, with what changed.
    pub(super) fn since(
        &self,
        generation: u64,
    ) -> impl Iterator<Item = (MailboxId, MailboxChange)> + '_ {
        let after = generation.saturating_add(1);
        self.by_generation.range(after..).map(move |(_, &id)| {
            let marks = self.marks[&id];
            (
                id,
                MailboxChange {
                    messages: marks.messages > generation,
                    flags: marks.flags > generation,
                },
            )
        })
    }

    /// List changes after `position`.
    pub(super) fn list_since(&self, position: u64) -> ListChanges<'_> {
        let first_kept = self.list.front().map_or(self.list_position + 1, |(p, _)| *p);
        if position.saturating_add(1) < first_kept {
            return ListChanges::Lost;
        }
        let start = self.list.partition_point(|(p, _)| *p <= position);
        ListChanges::Since(self.list.range(start..).map(|(p, c)| (*p, c)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGES: MailboxChange = MailboxChange { messages: true, flags: false };
    const FLAGS: MailboxChange = MailboxChange { messages: false, flags: true };

    #[test]
    fn mailboxes_past_a_generation_once_each() {
        let mut changes = Changes::default();
        changes.touch(MailboxId(1), MESSAGES);
        let seen = changes.generation();
        changes.touch(MailboxId(2), FLAGS);
        changes.touch(MailboxId(1), FLAGS);
        changes.touch(MailboxId(2), FLAGS);
        let since: Vec<_> = changes.since(seen).collect();
        assert_eq!(
            since,
            vec![
                (MailboxId(1), MailboxChange { messages: false, flags: true }),
                (MailboxId(2), FLAGS)
            ]
        );
        // The map holds one entry per mailbox, however many changes.
        assert_eq!(changes.by_generation.len(), 2);
        assert_eq!(
            changes.since(0).next(),
            Some((MailboxId(1), MailboxChange { messages: true, flags: true }))
        );
        changes.forget(MailboxId(1));
        assert_eq!(changes.since(0).count(), 1);
        assert_eq!(changes.since(changes.generation()).count(), 0);
    }

    #[test]
    fn list_journal_is_bounded_and_says_when_it_lost_changes() {
        let mut changes = Changes::default();
        assert_eq!(changes.list_since(0), ListChanges::Since(Vec::new()));
        changes.list_change(ListChange::Created("a".into()));
        changes.list_change(ListChange::Subscribed("a".into()));
        match changes.list_since(1) {
            ListChanges::Since(list) => {
                assert_eq!(list, vec![(2, &ListChange::Subscribed("a".into()))]);
            }
            ListChanges::Lost => panic!("nothing was dropped"),
        }
        for i in 0..LIST_CHANGES_MAX {
            changes.list_change(ListChange::Created(format!("m{i}")));
        }
        assert_eq!(changes.list.len(), LIST_CHANGES_MAX);
        assert_eq!(changes.list_since(1), ListChanges::Lost);
        let position = changes.list_position();
        assert_eq!(changes.list_since(position), ListChanges::Since(Vec::new()));
        match changes.list_since(position - 1) {
            ListChanges::Since(list) => assert_eq!(list.len(), 1),
            ListChanges::Lost => panic!("the newest is kept"),
        }
    }

    #[test]
    fn the_store_notes_each_kind_of_change() {
        use crate::disk::sim::SimDisk;
        use crate::store::UserStore;
        use crate::types::{Flags, FlagsOp, SystemFlags};
        use std::rc::Rc;

        let disk = Rc::new(SimDisk::new());
        let mut store = UserStore::open(disk, std::path::Path::new("u")).unwrap();
        let inbox = store.mailbox_id("INBOX").unwrap();
        let list_start = store.list_position();
        let other = store.create_mailbox("Other").unwrap();
        let start = store.mailbox_generation();
        let (uid, _) =
            store.append(inbox, b"Subject: x\r\n\r\nx", b"", Flags::default(), None).unwrap();
        assert_eq!(
            store.mailboxes_changed_since(start).collect::<Vec<_>>(),
            vec![(inbox, MESSAGES)]
        );
        let seen = store.mailbox_generation();
        let seen_flag = Flags { system: SystemFlags(SystemFlags::SEEN), ..Flags::default() };
        store.store_flags(inbox, &[uid], FlagsOp::Add, seen_flag, None).unwrap();
        assert_eq!(store.mailboxes_changed_since(seen).collect::<Vec<_>>(), vec![(inbox, FLAGS)]);
        // Setting a flag already set changes nothing, so nothing is noted.
        let seen = store.mailbox_generation();
        store.store_flags(inbox, &[uid], FlagsOp::Add, seen_flag, None).unwrap();
        assert_eq!(store.mailboxes_changed_since(seen).count(), 0);
        store.copy(inbox, &[uid], other).unwrap();
        store.expunge(inbox, &[uid]).unwrap();
        let changed: Vec<_> = store.mailboxes_changed_since(seen).collect();
        assert_eq!(changed, vec![(other, MESSAGES), (inbox, MESSAGES)]);
        store.subscribe("Other").unwrap();
        assert!(matches!(
            store.rename_mailbox("Other", "Moved").unwrap(),
            crate::store::Renamed::Done
        ));
        store.delete_mailbox("Moved").unwrap();
        assert_eq!(
            store.mailboxes_changed_since(start).collect::<Vec<_>>(),
            vec![(inbox, MailboxChange { messages: true, flags: true })]
        );
        let ListChanges::Since(list) = store.list_changes_since(list_start) else {
            panic!("nothing lost");
        };
        let list: Vec<ListChange> = list.into_iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(
            list,
            vec![
                ListChange::Created("Other".into()),
                ListChange::Subscribed("Other".into()),
                ListChange::Renamed { old: "Other".into(), new: "Moved".into() },
                ListChange::Deleted("Moved".into()),
            ]
        );
    }
}
