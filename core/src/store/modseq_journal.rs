//! "What changed in a mailbox since modseq m", at a cost proportional to the changes rather
//! than to the mailbox: what a selected session needs after another session's STORE or
//! EXPUNGE (`UserStore::changes_since`), and QRESYNC's expunge history
//! (`UserStore::expunged_since`).
//!
//! Each index keeps a [`ModSeqJournal`]: one `(modseq, uid)` record for every change that
//! gave an index entry a new modseq (an append, a flag change, an expunge, a reader's `\Seen`),
//! in modseq order. The journal is *complete above its floor*: every entry whose modseq is
//! above the floor has a record with that modseq. Older records may be stale (the entry
//! changed again later and has a newer record too), which costs a look-up, never a wrong
//! answer. A question about a modseq below the floor gets no answer (`None`): the caller
//! walks the whole index as before.
//!
//! In memory only, nothing on disk: a journal starts empty when an index is loaded, with its
//! floor at the index's HIGHESTMODSEQ, so it describes the changes made while the store is
//! open, which is all a selected session can be owed. It is bounded
//! ([`ModSeqJournal::records_max`]: [`JOURNAL_RECORDS_MIN`], or one record per
//! [`JOURNAL_MESSAGES_PER_RECORD`] entries in a larger mailbox): the oldest record goes first
//! and the floor rises to its modseq. Memory per mailbox is thus at most 16 bytes a record,
//! under about one byte per message in a big mailbox, and nothing in a mailbox that did not
//! change since it was opened; a session that fell further behind than the journal reaches
//! pays one whole-mailbox walk, after at least that many changes.

use std::collections::VecDeque;

use super::UserStore;
use super::index::Entry;
use crate::disk::Disk;
use crate::error::ReadError;
use crate::types::{MailboxId, ModSeq, Uid};

use super::MessageMeta;

/// Records a journal keeps at least, whatever the mailbox's size (16 KiB).
pub const JOURNAL_RECORDS_MIN: usize = 1024;

/// In a mailbox of more than `JOURNAL_RECORDS_MIN` × this many entries, the journal keeps one
/// record per this many entries: a session that falls behind by that many changes pays one
/// walk of the mailbox, at most this many entries per change it missed.
pub const JOURNAL_MESSAGES_PER_RECORD: usize = 16;

const _: () = assert!(JOURNAL_RECORDS_MIN >= 64);
const _: () = assert!(JOURNAL_MESSAGES_PER_RECORD >= 1);

/// Which UIDs took which modseq, newest last (see the module doc).
#[derive(Debug)]
pub(crate) struct ModSeqJournal {
    /// `(modseq, uid)`, modseq non-decreasing.
    records: VecDeque<(u64, Uid)>,
    /// Every entry whose modseq is above this has a record with that modseq.
    floor: u64,
}

impl ModSeqJournal {
    /// An empty journal of an index whose entries all have modseqs at or below `floor`.
    pub(crate) fn new(floor: u64) -> ModSeqJournal {
        ModSeqJournal { records: VecDeque::new(), floor }
    }

    /// Most records kept for an index of `entries` entries.
    pub(crate) fn records_max(entries: usize) -> usize {
        JOURNAL_RECORDS_MIN.max(entries / JOURNAL_MESSAGES_PER_RECORD)
    }

    /// Notes that `uid` took `modseq`; `entries` is the index's size (for the bound). A
    /// modseq below the newest record's (recovery replaying an old tombstone) is put in its
    /// place; at or below the floor it is not needed.
    pub(crate) fn note(&mut self, modseq: u64, uid: Uid, entries: usize) {
        if modseq <= self.floor {
            return;
        }
        let records_max = ModSeqJournal::records_max(entries);
        while self.records.len() >= records_max {
            let (oldest, _) = self.records.pop_front().expect("records_max >= 1");
            self.floor = self.floor.max(oldest);
            // Records of the same modseq (one expunge) are of no use below the floor.
            while self.records.front().is_some_and(|&(m, _)| m <= self.floor) {
                self.records.pop_front();
            }
        }
        if modseq <= self.floor {
            return;
        }
        match self.records.back() {
            Some(&(newest, _)) if newest > modseq => {
                let at = self.records.partition_point(|&(m, _)| m <= modseq);
                self.records.insert(at, (modseq, uid));
            }
            _ => self.records.push_back((modseq, uid)),
        }
    }

    /// Forgets every record: entries were removed from the index (recovery, an undone COPY),
    /// which the journal cannot describe. Entries' modseqs are at or below `highest`.
    pub(crate) fn reset(&mut self, highest: u64) {
        self.records.clear();
        self.floor = self.floor.max(highest);
    }

    /// The UIDs that took a modseq above `since`, ascending and distinct; `None` when the
    /// journal does not reach back to `since`. O(records above `since` × log).
    pub(crate) fn uids_since(&self, since: u64) -> Option<Vec<Uid>> {
        if since < self.floor {
            return None;
        }
        let from = self.records.partition_point(|&(m, _)| m <= since);
        let mut uids: Vec<Uid> = self.records.range(from..).map(|&(_, uid)| uid).collect();
        uids.sort_unstable();
        uids.dedup();
        Some(uids)
    }

    /// Checks that every entry above the floor has its record (O(n log n); tests and debug).
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn check(&self, entries: &[Entry]) {
        assert!(self.records.iter().zip(self.records.iter().skip(1)).all(|(a, b)| a.0 <= b.0));
        assert!(self.records.front().is_none_or(|&(m, _)| m > self.floor));
        let mut records: Vec<(u64, Uid)> = self.records.iter().copied().collect();
        records.sort_unstable();
        for entry in entries.iter().filter(|e| e.modseq > self.floor) {
            let record = (entry.modseq, entry.uid);
            assert!(records.binary_search(&record).is_ok(), "journal lacks {record:?}");
        }
    }
}

/// What changed in a mailbox after a modseq ([`UserStore::changes_since`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    /// Live messages whose modseq is above it (flag changes, and messages added since), in
    /// UID order, as [`UserStore::messages`] shows them.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged with a modseq above it, ascending.
    pub expunged: Vec<Uid>,
}

impl<D: Disk> UserStore<D> {
    /// The live messages of `id` whose modseq is above `since`, and the UIDs expunged above
    /// it: the same answer as filtering [`UserStore::messages`] and
    /// [`UserStore::expunged_since`], in O(changes since × log n). `None` when the store no
    /// longer (or never, before it was opened) kept the changes that far back: the caller
    /// walks the mailbox instead. See `store/modseq_journal.rs`.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn changes_since(
        &self,
        id: MailboxId,
        since: ModSeq,
    ) -> Result<Option<MailboxChanges>, ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let Some(uids) = index.journal().uids_since(since.0) else {
            return Ok(None);
        };
        let ranges = self.reader_ranges(id);
        let mut changes = MailboxChanges::default();
        for uid in uids {
            // A record may name an entry cut since (then the journal was reset) or changed
            // again; the entry's modseq only rises, so it is above `since` too.
            let Some(slot) = index.find(uid) else { continue };
            let entry = &index.entries()[slot];
            debug_assert!(entry.modseq > since.0);
            if entry.expunged {
                changes.expunged.push(uid);
            } else {
                changes.changed.push(self.as_read(ranges, MessageMeta::of(entry)));
            }
        }
        self.count_metas(changes.changed.len());
        Ok(Some(changes))
    }

    /// Expunged UIDs of `id` above `since` from the journal, when it reaches that far back.
    pub(super) fn expunged_since_journal(&self, id: MailboxId, since: ModSeq) -> Option<Vec<Uid>> {
        let index = self.indexes.get(&id)?;
        let uids = index.journal().uids_since(since.0)?;
        let expunged = uids
            .into_iter()
            .filter(|&uid| index.find(uid).is_some_and(|slot| index.entries()[slot].expunged));
        Some(expunged.collect())
    }

    /// How many message records ([`MessageMeta`]) the store has handed out since it was
    /// opened, through [`UserStore::messages`], [`UserStore::live_messages`],
    /// [`UserStore::message`] and [`UserStore::changes_since`]: the work a sync did, for tests
    /// that show it is proportional to what changed.
    #[must_use]
    pub fn metas_handed_out(&self) -> u64 {
        self.metas_handed_out.get()
    }

    pub(super) fn count_metas(&self, count: usize) {
        self.metas_handed_out.set(self.metas_handed_out.get() + count as u64);
    }
}

#[cfg(test)]
#[path = "modseq_journal_tests.rs"]
mod tests;
