//! The store as one *reader* sees it: another user who reads this user's mailboxes (a shared
//! folder), whose `\Seen` is their own (`seen.log`, `seen.rs`) while every other flag is the
//! mailbox's.
//!
//! While a reader is set ([`UserStore::set_reader`]), every flag read (`messages`,
//! `live_messages`, `message`, `mailbox_info`'s unseen count) shows the reader's `\Seen`
//! instead of the owner's, and `store_flags` sends `\Seen` to the reader's set and leaves the
//! owner's bit alone; so the session code above reads and writes flags the same way for an own
//! mailbox and for someone else's. The runtime sets the reader only for the length of one
//! session step on the owner's shard, and clears it after.

use super::seen::SeenError;
use super::{MessageMeta, UserStore};
use crate::disk::Disk;
use crate::error::{StorageError, UpdateError};
use crate::types::{Flags, FlagsOp, MailboxId, ModSeq, SystemFlags, Uid};

impl<D: Disk> UserStore<D> {
    /// Reads and flag changes from here on are `reader`'s (see the module docs); `None`: the
    /// owner's again. Loads `seen.log` on first use.
    ///
    /// # Errors
    /// Reading `seen.log` failed; the reader is then not set.
    pub fn set_reader(&mut self, reader: Option<&str>) -> Result<(), StorageError> {
        if reader.is_some() {
            self.load_seen()?;
        }
        self.reader = reader.map(str::to_owned);
        Ok(())
    }

    /// The reader set by [`UserStore::set_reader`].
    #[must_use]
    pub fn reader(&self) -> Option<&str> {
        self.reader.as_deref()
    }

    /// The reader's seen ranges on `id`, when a reader is set.
    pub(super) fn reader_ranges(&self, id: MailboxId) -> Option<&[(u32, u32)]> {
        let reader = self.reader.as_deref()?;
        self.seen.as_ref()?;
        let owner = self.seen_owner(id)?;
        Some(self.seen_ranges(owner, reader))
    }

    /// `meta` with the reader's `\Seen`, when a reader is set.
    pub(super) fn as_read(
        &self,
        ranges: Option<&[(u32, u32)]>,
        mut meta: MessageMeta,
    ) -> MessageMeta {
        if let Some(ranges) = ranges {
            let seen = contains(ranges, meta.uid.get());
            meta.flags.system.0 = (meta.flags.system.0 & !SystemFlags::SEEN)
                | if seen { SystemFlags::SEEN } else { 0 };
        }
        meta
    }

    /// The reader's unseen count of `id` (live messages not in their set).
    pub(super) fn reader_unseen_of(&self, id: MailboxId, ranges: &[(u32, u32)]) -> u32 {
        let Some(index) = self.indexes.get(&id) else { return 0 };
        let live = index.entries().iter().filter(|e| !e.expunged);
        let unseen = live.filter(|e| !contains(ranges, e.uid.get())).count();
        u32::try_from(unseen).unwrap_or(u32::MAX)
    }

    /// `store_flags` with a reader set: every flag but `\Seen` as usual (a replace keeps the
    /// owner's `\Seen` bit), `\Seen` into the reader's set. Changes of both kinds come back
    /// in one outcome (a UID once, with its newest modseq).
    pub(super) fn store_flags_as_reader(
        &mut self,
        reader: &str,
        id: MailboxId,
        uids: &[Uid],
        op: FlagsOp,
        flags: Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<super::StoreOutcome, UpdateError> {
        let has_seen = flags.system.contains(SystemFlags::SEEN);
        let seen = match op {
            FlagsOp::Add => has_seen.then_some(true),
            FlagsOp::Remove => has_seen.then_some(false),
            FlagsOp::Replace => Some(has_seen),
        };
        let rest = Flags {
            system: SystemFlags(flags.system.0 & !SystemFlags::SEEN),
            keywords: flags.keywords,
        };
        let mut outcome = self.store_flags_keeping_seen(id, uids, op, rest, unchanged_since)?;
        let Some(on) = seen else { return Ok(outcome) };
        let unchanged: Vec<Uid> =
            uids.iter().copied().filter(|uid| !outcome.modified.contains(uid)).collect();
        let changed =
            self.set_reader_seen(id, reader, &unchanged, on).map_err(|error| match error {
                SeenError::NoSuchMailbox => UpdateError::NoSuchMailbox,
                SeenError::Storage(storage) => UpdateError::Storage(storage),
                other => UpdateError::ReaderSeen(other.to_string()),
            })?;
        for (uid, modseq) in changed {
            match outcome.changed.iter_mut().find(|(u, _)| *u == uid) {
                Some(entry) => entry.1 = entry.1.max(modseq),
                None => outcome.changed.push((uid, modseq)),
            }
        }
        outcome.changed.sort_unstable_by_key(|(uid, _)| *uid);
        Ok(outcome)
    }
}

/// True when `uid` is in the sorted, disjoint inclusive ranges.
fn contains(ranges: &[(u32, u32)], uid: u32) -> bool {
    let at = ranges.partition_point(|&(_, last)| last < uid);
    ranges.get(at).is_some_and(|&(first, _)| first <= uid)
}
