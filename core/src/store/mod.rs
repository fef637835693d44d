//! One user's mail store: mailbox list, message spool, per-mailbox indexes, recovery.
//!
//! ```text
//! users/<hh>/<user>/
//!     mailboxes.log        names, ids, UIDVALIDITY, subscriptions, keywords, special use (log.rs)
//!     threads.log          Message-ID → thread map for THREADID (threads.rs)
//!     spool/NNNNNNNN.seg   append-only message and tombstone records (spool.rs, record.rs)
//!     mbox/NNNNNNNN.idx    one fixed-record index per mailbox (index.rs)
//!     metadata.log         METADATA entries (RFC 5464), replayed on first use (metadata.rs)
//!     seen.log             other users' \Seen on these mailboxes, replayed on first use (seen.rs)
//!     duplicates.log       recent deliveries by Message-ID, read on first use (duplicates.rs)
//!     quota.limits         limits set by SETQUOTA (RFC 9208), read on first use (quota.rs)
//! ```
//!
//! Every byte is described in `core/FORMAT.md`. A [`UserStore`] is opened, and recovered, on
//! the user's home shard and used only there (it is not `Send`); [`UserStore::opening`] does
//! that in bounded steps (`opening.rs`), so a long recovery never holds the shard's thread. It never fsyncs: every
//! mutation lands in the disk's open epoch, and the caller's group commit
//! ([`crate::disk::Disk::flush_begin`]) makes it durable before replying.
//! An append costs one spool write and one index write; a flag change one index write.
//!
//! Reads come from memory (the index of every mailbox is held in memory) and from the spool
//! through [`Bytes`] views (memory-mapped on the real disk).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::disk::{Bytes, Disk};
use crate::error::{OpenError, ReadError};
use crate::types::{Flags, InternalDate, MailboxId, ModSeq, Uid, UidValidity};

mod acl;
pub mod admin;
mod append_batch;
mod catalog;
mod changes;
mod checkpoint;
mod codec;
mod compact;
mod crc_seed;
mod duplicates;
mod folders;
mod grants;
mod import;
mod index;
mod log;
mod log_batch;
mod mailboxes;
mod messages;
mod metadata;
mod metadata_entries;
mod modseq_journal;
pub mod names;
mod open;
mod open_repair;
mod opening;
mod quota;
mod reader;
mod reconstruct;
mod record;
mod rename_inbox;
mod scan;
mod scan_repair;
mod seen;
mod seen_log;
mod seen_ranges;
mod special_use;
mod spool;
mod spool_compact;
mod spool_gap;
mod spool_usage;
#[cfg(test)]
mod tests;
mod threads;
mod urlauth;

pub use acl::AclError;
pub use append_batch::NewMessage;
pub use changes::{LIST_CHANGES_MAX, ListChange, ListChanges, MailboxChange};
pub use duplicates::{
    DUPLICATES_RECORDS_MAX, DUPLICATES_SYNC_EVERY, duplicate_window_seconds,
    set_duplicate_window_seconds,
};
pub use folders::DefaultFolder;
pub use grants::Noted;
pub use metadata_entries::{MetadataError, MetadataOwner};
pub use modseq_journal::{JOURNAL_MESSAGES_PER_RECORD, JOURNAL_RECORDS_MIN, MailboxChanges};
pub use opening::{OpenProgress, OpenStage, OpenWork, Opening};
pub use quota::{
    QUOTA_RESERVATIONS_MAX, QuotaLimits, QuotaReservation, QuotaSource, QuotaUsage,
    effective_limits,
};
pub use reconstruct::{ReconstructReport, reconstruct};
pub use rename_inbox::{InboxRename, InboxStep, Renamed};
pub use seen::{SeenError, SeenSet};
pub use special_use::SpecialUse;
pub use spool_compact::{CompactProgress, CompactionPolicy, CompactionStats, SpoolPin};
pub use spool_usage::{DiskUsage, ExpungedMessage};
pub use threads::ThreadKeys;
pub use urlauth::{URLAUTH_RECORDS_MAX, URLAUTH_TOKEN_HEX_LEN, UrlKeyError};

use catalog::Catalog;
use checkpoint::Checkpoints;
use index::{Entry, Index};
use spool::Spool;

/// What STATUS, SELECT and LIST need to know about a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The mailbox's id.
    pub id: MailboxId,
    /// Its name (canonical: `INBOX` uppercase).
    pub name: String,
    /// Fixed for the life of the id.
    pub uid_validity: UidValidity,
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// The largest modseq given to any change in the mailbox.
    pub highest_modseq: ModSeq,
    /// Live messages.
    pub messages: u32,
    /// Live messages without `\Seen`.
    pub unseen: u32,
    /// Live messages with `\Deleted`.
    pub deleted: u32,
    /// Sum of live message sizes in bytes.
    pub size: u64,
    /// True when the name is subscribed.
    pub subscribed: bool,
}

/// A mailbox's cheap counters, without its name: what a selected session compares to tell
/// whether anything but appends happened since it last looked (see
/// [`UserStore::mailbox_marks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailboxMarks {
    /// The UID the next message will get.
    pub uid_next: Uid,
    /// The largest modseq given to any change in the mailbox.
    pub highest_modseq: ModSeq,
    /// Live messages.
    pub messages: u32,
}

/// One message's metadata, from the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    /// Its UID.
    pub uid: Uid,
    /// The modseq of its last change.
    pub modseq: ModSeq,
    /// Its flags (keyword bits index the mailbox's keyword table).
    pub flags: Flags,
    /// Its INTERNALDATE.
    pub internal_date: InternalDate,
    /// RFC822.SIZE: the message's length in bytes.
    pub size: u32,
    /// When it was saved into this mailbox (APPEND, delivery, COPY/MOVE target; RFC 8514
    /// SAVEDATE), unix seconds; `None` when unknown (`core/FORMAT.md`, mailbox index records).
    pub save_date: Option<i64>,
}

impl MessageMeta {
    fn of(entry: &Entry) -> MessageMeta {
        MessageMeta {
            uid: entry.uid,
            modseq: ModSeq(entry.modseq),
            flags: entry.flags,
            internal_date: entry.date,
            size: entry.size,
            save_date: (entry.save_date != 0).then_some(i64::from(entry.save_date)),
        }
    }
}

/// What a STORE did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreOutcome {
    /// UIDs not changed because their modseq was above UNCHANGEDSINCE (RFC 7162 `[MODIFIED]`).
    pub modified: Vec<Uid>,
    /// UIDs whose flags changed, with their new modseq.
    pub changed: Vec<(Uid, ModSeq)>,
}

/// What recovery found and repaired when the store was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the tail of `mailboxes.log`.
    pub log_truncated_bytes: u64,
    /// Spool records checked (those written since the oldest checkpoint).
    pub spool_records_scanned: u64,
    /// Bytes cut from torn spool tails, including removed segments.
    pub spool_truncated_bytes: u64,
    /// Spool segment headers found damaged and rewritten with the nonce recovered from their
    /// records.
    pub spool_headers_repaired: u64,
    /// Bytes of damaged spool records skipped (good records follow them). They are left on
    /// disk, so every open that scans them reports them again: like `spool_records_scanned`,
    /// this is what recovery found, not a change, and [`RecoveryReport::is_clean`] ignores it.
    pub spool_damaged_bytes: u64,
    /// Index records dropped: torn, or pointing at spool records that are not there.
    pub index_records_dropped: u64,
    /// Index records added from spool records the index lacked.
    pub index_records_added: u64,
    /// Expunges applied from spool tombstones the index lacked.
    pub expunges_applied: u64,
    /// Indexes rebuilt from the spool because they were missing or their header was damaged.
    pub indexes_rebuilt: u64,
    /// Of those, indexes whose header was damaged: the flags of their records that still
    /// check out were kept.
    pub index_headers_repaired: u64,
    /// True when `mailboxes.log` had a damaged header and was started anew (the old file is
    /// kept as `mailboxes.log.bad`).
    pub log_replaced: bool,
    /// Mailboxes whose creation was durable but which the log lacks (it was damaged), named
    /// `Recovered/<id>` so their mail stays reachable.
    pub mailboxes_salvaged: u64,
    /// Keyword bits that records carried but the log had lost (a keyword defined in flight at
    /// the crash): made void for good, so no later keyword takes them.
    pub keywords_voided: u64,
}

impl RecoveryReport {
    /// True when recovery changed nothing.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        *self
            == RecoveryReport {
                spool_records_scanned: self.spool_records_scanned,
                spool_damaged_bytes: self.spool_damaged_bytes,
                ..Self::default()
            }
    }
}

/// One user's mail store. See the module docs.
pub struct UserStore<D: Disk> {
    disk: Rc<D>,
    dir: PathBuf,
    log: log::MailboxLog<D::File>,
    catalog: Catalog,
    indexes: std::collections::BTreeMap<MailboxId, Index<D::File>>,
    spool: Spool<D>,
    checkpoints: Checkpoints,
    deferred: checkpoint::Deferred,
    change_counter: u64,
    /// Which mailboxes and names changed, for NOTIFY sessions (`changes.rs`).
    changes: changes::Changes,
    recovery: RecoveryReport,
    /// Set when a failed operation's spool records could not be cut away: the spool position
    /// to cut back to. Every mutation retries the cut first and is refused until it is made
    /// (see [`UserStore::cut_spool_back`]).
    pending_cut: Option<codec::SpoolPos>,
    /// The Message-ID → thread map (THREADID, `threads.rs`).
    threads: threads::Threads<D::File>,
    /// Messages whose damaged record was already logged (see `UserStore::damaged`).
    damaged_logged: std::cell::RefCell<std::collections::BTreeSet<(MailboxId, Uid)>>,
    /// URLAUTH access keys (`urlauth.keys`), read on first use (`urlauth.rs`).
    url_keys: urlauth::UrlKeys<D::File>,
    /// `metadata.log` and its entries, replayed on first use (`metadata_entries.rs`).
    metadata: Option<Box<metadata::MetadataLog<D::File>>>,
    /// `seen.log`: other users' `\Seen` sets on this store's mailboxes, replayed on first use
    /// (`seen.rs`).
    seen: Option<Box<seen_log::SeenLog<D::File>>>,
    /// `duplicates.log`: recent deliveries by Message-ID, read on first use (`duplicates.rs`).
    duplicates: duplicates::Duplicates<D::File>,
    /// Spool compaction's state (`spool_compact.rs`).
    spool_compaction: spool_compact::SpoolCompaction<D::File>,
    /// The user whose view reads and flag changes take, when not the owner (`reader.rs`).
    reader: Option<String>,
    /// Usage totals, limits and reservations (`quota.rs`).
    quota: quota::Quota<D::File>,
    /// See [`UserStore::metas_handed_out`].
    metas_handed_out: std::cell::Cell<u64>,
}

impl<D: Disk> UserStore<D> {
    /// Opens the store in `dir` (relative to the disk root), creating it if missing and
    /// repairing what a crash left (see `core/FORMAT.md`, "Recovery on open"). INBOX always
    /// exists afterwards.
    ///
    /// # Errors
    /// The disk failed, or a file is damaged beyond repair or from a newer skua.
    pub fn open(disk: Rc<D>, dir: &Path) -> Result<UserStore<D>, OpenError> {
        let mut opening = UserStore::opening(disk, dir);
        loop {
            match opening.step(u64::MAX)? {
                OpenProgress::Pending(more) => opening = more,
                OpenProgress::Open { store, .. } => return Ok(store),
            }
        }
    }

    /// [`UserStore::open`] in bounded steps, for a caller that must not hold its thread for
    /// the whole open (a shard serving other users): call [`Opening::step`] until it gives
    /// the store. Nothing is read or written before the first step. Nothing else may touch
    /// the store's directory until the store is open.
    #[must_use]
    pub fn opening(disk: Rc<D>, dir: &Path) -> Opening<D> {
        Opening::new(disk, dir)
    }

    /// The disk the store writes to (for durability tickets: `disk().epoch_open()`).
    #[must_use]
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The store's directory, relative to the disk root.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What recovery did when the store was opened.
    #[must_use]
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// A number that changes on every mutation: sessions compare it to learn that they must
    /// look for changes (IDLE, NOOP).
    #[must_use]
    pub fn change_counter(&self) -> u64 {
        self.change_counter
    }

    /// The generation of the newest message change (append, expunge, flags) in any mailbox:
    /// remember it, and [`UserStore::mailboxes_changed_since`] names what changed after it.
    #[must_use]
    pub fn mailbox_generation(&self) -> u64 {
        self.changes.generation()
    }

    /// The mailboxes whose messages changed after `generation` (oldest change first), each
    /// once, with the kinds of change: O(changed × log mailboxes), not O(mailboxes).
    pub fn mailboxes_changed_since(
        &self,
        generation: u64,
    ) -> impl Iterator<Item = (MailboxId, MailboxChange)> + '_ {
        self.changes.since(generation)
    }

    /// The position of the newest change of the mailbox list (create, delete, rename,
    /// subscription): see [`UserStore::list_changes_since`].
    #[must_use]
    pub fn list_position(&self) -> u64 {
        self.changes.list_position()
    }

    /// The changes of the mailbox list after `position`, oldest first, or
    /// [`ListChanges::Lost`] when more than [`LIST_CHANGES_MAX`] happened since.
    #[must_use]
    pub fn list_changes_since(&self, position: u64) -> ListChanges<'_> {
        self.changes.list_since(position)
    }

    /// Every mailbox, sorted by name.
    #[must_use]
    pub fn mailboxes(&self) -> Vec<MailboxInfo> {
        self.catalog.by_name.values().filter_map(|&id| self.mailbox_info(id)).collect()
    }

    /// The id of a mailbox name (`INBOX` in any case).
    #[must_use]
    pub fn mailbox_id(&self, name: &str) -> Option<MailboxId> {
        self.catalog.id(&names::canonical_inbox(name))
    }

    /// A mailbox's name, counters and identifiers.
    #[must_use]
    pub fn mailbox_info(&self, id: MailboxId) -> Option<MailboxInfo> {
        let entry = self.catalog.mailboxes.get(&id)?;
        let index = self.indexes.get(&id).expect("every mailbox has an index");
        let counts = index.counts();
        Some(MailboxInfo {
            id,
            name: entry.name.clone(),
            uid_validity: entry.uid_validity,
            uid_next: Uid::new(index.uid_next()).expect("uid_next >= 1"),
            highest_modseq: ModSeq(index.highest_modseq()),
            messages: counts.messages,
            unseen: self
                .reader_ranges(id)
                .map_or(counts.unseen, |ranges| self.reader_unseen_of(id, ranges)),
            deleted: counts.deleted,
            size: counts.size,
            subscribed: self.catalog.subscriptions.contains(&entry.name),
        })
    }

    /// Claims `id`'s messages that no session has been told of yet, for a session that
    /// selects the mailbox read-write or learns of new messages in it (`\Recent`, RFC 3501
    /// §2.3.2): returns the first UID of them (every UID from it up to UIDNEXT is the
    /// caller's `\Recent`), and no other session gets them. A claim is in memory until the
    /// next checkpoint writes the index header: a crash before it makes them recent again.
    pub fn claim_recent(&mut self, id: MailboxId) -> Option<Uid> {
        let index = self.indexes.get_mut(&id)?;
        Some(Uid::new(index.claim_recent()).expect("UIDs start at 1"))
    }

    /// The first UID of `id` that no session has been told of yet, O(1) (EXAMINE: from it on,
    /// messages are recent without being claimed).
    #[must_use]
    pub fn first_unclaimed_recent(&self, id: MailboxId) -> Option<Uid> {
        let index = self.indexes.get(&id)?;
        Some(Uid::new(index.first_recent_uid()).expect("UIDs start at 1"))
    }

    /// Live messages of `id` that no session has been told of yet, with the first such UID
    /// (STATUS RECENT). Walks those messages: O(unclaimed).
    #[must_use]
    pub fn unclaimed_recent(&self, id: MailboxId) -> Option<(Uid, u32)> {
        let index = self.indexes.get(&id)?;
        let first = index.first_recent_uid();
        let entries = index.entries();
        let from = entries.partition_point(|entry| entry.uid.get() < first);
        let live = entries[from..].iter().filter(|entry| !entry.expunged).count();
        let first = Uid::new(first).expect("UIDs start at 1");
        Some((first, u32::try_from(live).unwrap_or(u32::MAX)))
    }

    /// A mailbox's UIDNEXT, HIGHESTMODSEQ and message count, without allocating.
    ///
    /// Every message added to a mailbox (append, copy, recovery) takes the next UID and
    /// exactly one new modseq, and every other change to it (a flag change, an expunge) takes
    /// at least one new modseq. So when HIGHESTMODSEQ rose by exactly as much as UIDNEXT since
    /// an earlier look, nothing but additions happened in between.
    #[must_use]
    pub fn mailbox_marks(&self, id: MailboxId) -> Option<MailboxMarks> {
        let index = self.indexes.get(&id)?;
        Some(MailboxMarks {
            uid_next: Uid::new(index.uid_next()).expect("uid_next >= 1"),
            highest_modseq: ModSeq(index.highest_modseq()),
            messages: index.counts().messages,
        })
    }

    /// True when `name` (canonical: `INBOX` uppercase) is subscribed, O(log subscriptions).
    #[must_use]
    pub fn is_subscribed(&self, name: &str) -> bool {
        self.catalog.subscriptions.contains(name)
    }

    /// Subscribed names, sorted (they need not exist).
    #[must_use]
    pub fn subscriptions(&self) -> Vec<String> {
        self.catalog.subscriptions.iter().cloned().collect()
    }

    /// The mailbox's keyword table: bit `i` of [`Keywords`](crate::types::Keywords) is entry `i`.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn keywords(&self, id: MailboxId) -> Result<Vec<String>, ReadError> {
        let entry = self.catalog.mailboxes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        Ok(entry.keywords.clone())
    }

    /// The mailbox's keyword table, borrowed (as [`UserStore::keywords`], without the copy).
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn keyword_table(&self, id: MailboxId) -> Result<&[String], ReadError> {
        let entry = self.catalog.mailboxes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        Ok(&entry.keywords)
    }

    /// Live (not expunged) messages in UID order.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn messages(&self, id: MailboxId) -> Result<Vec<MessageMeta>, ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let live = index.entries().iter().filter(|e| !e.expunged);
        let ranges = self.reader_ranges(id);
        let messages: Vec<MessageMeta> =
            live.map(|e| self.as_read(ranges, MessageMeta::of(e))).collect();
        self.count_metas(messages.len());
        Ok(messages)
    }

    /// Live messages in UID order, without copying them all: for callers that only scan.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn live_messages(
        &self,
        id: MailboxId,
    ) -> Result<impl Iterator<Item = MessageMeta> + '_, ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let live = index.entries().iter().filter(|e| !e.expunged);
        let ranges = self.reader_ranges(id);
        Ok(live.map(move |e| {
            self.count_metas(1);
            self.as_read(ranges, MessageMeta::of(e))
        }))
    }

    /// UIDs expunged with a modseq above `since`, ascending: what QRESYNC reports as
    /// `VANISHED (EARLIER)` (RFC 7162 §3.2.5.2). Expunged records stay in the index until
    /// compaction, so this history is complete until then. O(changes since × log n) when
    /// `since` is within the modseq journal's reach (`modseq_journal.rs`), else O(n).
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn expunged_since(&self, id: MailboxId, since: ModSeq) -> Result<Vec<Uid>, ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        if let Some(expunged) = self.expunged_since_journal(id, since) {
            return Ok(expunged);
        }
        let expunged = index.entries().iter().filter(|e| e.expunged && e.modseq > since.0);
        Ok(expunged.map(|e| e.uid).collect())
    }

    /// The UIDs a QRESYNC client that last synced at modseq `since` must be told are gone
    /// (`VANISHED (EARLIER)`, RFC 7162 §3.2.5.2), as ascending, disjoint, non-adjacent
    /// inclusive ranges: every UID expunged with a modseq above `since`, and every UID below
    /// UIDNEXT that has no index entry at all, whatever `since` is.
    ///
    /// The second part is what keeps the answer a superset of the truth when history was
    /// lost: an index entry disappears only when recovery or `reconstruct` could not find its
    /// message again (a damaged spool record, a lost segment), and nobody knows when that
    /// message went, so every client is told (RFC 7162 allows naming UIDs the client never
    /// saw; it never allows leaving one out). A store with no loss has no such UID: UIDs are
    /// given only to appended entries. See `core/FORMAT.md`, "Expunge history".
    ///
    /// O(entries) time, O(ranges) memory.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn vanished_since(
        &self,
        id: MailboxId,
        since: ModSeq,
    ) -> Result<Vec<std::ops::RangeInclusive<u32>>, ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let mut ranges: Vec<std::ops::RangeInclusive<u32>> = Vec::new();
        let mut push = |low: u32, high: u32| match ranges.last_mut() {
            Some(last) if last.end().saturating_add(1) >= low => {
                *last = *last.start()..=high.max(*last.end());
            }
            _ => ranges.push(low..=high),
        };
        let mut next = 1u32;
        for entry in index.entries() {
            let uid = entry.uid.get();
            if uid > next {
                push(next, uid - 1);
            }
            if entry.expunged && entry.modseq > since.0 {
                push(uid, uid);
            }
            next = uid.saturating_add(1);
        }
        if index.uid_next() > next {
            push(next, index.uid_next() - 1);
        }
        Ok(ranges)
    }

    /// One live message's metadata; `None` if there is none with that UID.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn message(&self, id: MailboxId, uid: Uid) -> Result<Option<MessageMeta>, ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let entry = index.find(uid).map(|slot| &index.entries()[slot]);
        let ranges = self.reader_ranges(id);
        let meta = entry.filter(|e| !e.expunged).map(|e| self.as_read(ranges, MessageMeta::of(e)));
        self.count_metas(usize::from(meta.is_some()));
        Ok(meta)
    }

    /// The message's bytes, straight from the spool (a memory map on the real disk). A message
    /// that was expunged but not yet compacted away can still be read: another session may not
    /// have been told of the expunge yet.
    ///
    /// # Errors
    /// No such mailbox or message, or the spool record does not match its index entry.
    pub fn body(&self, id: MailboxId, uid: Uid) -> Result<Bytes, ReadError> {
        let (header, bytes, message_len, _) = self.record(id, uid)?;
        let start = record::RECORD_HEADER_BYTES;
        debug_assert!(matches!(header.head, record::Head::Message(_)));
        Ok(bytes.slice(start, start + message_len))
    }

    /// The cache blob stored with the message at append (opaque to core).
    ///
    /// # Errors
    /// As [`UserStore::body`].
    pub fn cache(&self, id: MailboxId, uid: Uid) -> Result<Bytes, ReadError> {
        let (_, bytes, message_len, cache_len) = self.record(id, uid)?;
        let start = record::RECORD_HEADER_BYTES + message_len;
        Ok(bytes.slice(start, start + cache_len))
    }

    /// The message's EMAILID (RFC 8474 §5.1) as a number: the same for a message and every
    /// COPY/MOVE copy of it, different for every other message, and stored in its spool record
    /// so that it never changes (`core/FORMAT.md`, "Spool segments"). Reads the spool record.
    ///
    /// # Errors
    /// As [`UserStore::body`].
    pub fn email_id(&self, id: MailboxId, uid: Uid) -> Result<u64, ReadError> {
        let (header, bytes, _, _) = self.record(id, uid)?;
        let record::Head::Message(head) = header.head else {
            unreachable!("record() returns message records only");
        };
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let slot = index.find(uid).ok_or(ReadError::NoSuchMessage)?;
        Ok(record::email_id(&head, &bytes, index.entries()[slot].spool.pos().0))
    }

    /// The message's THREADID (RFC 8474 §5.2) as a number: decided when the message was
    /// stored and kept in its spool record, so it never changes; the same for every message
    /// of a thread and every COPY/MOVE copy (`store/threads.rs`). A record written before
    /// spool format 1.2 is a thread of its own (its EMAILID). Reads the spool record.
    ///
    /// # Errors
    /// As [`UserStore::body`].
    pub fn thread_id(&self, id: MailboxId, uid: Uid) -> Result<u64, ReadError> {
        let (header, bytes, _, _) = self.record(id, uid)?;
        let record::Head::Message(head) = header.head else {
            unreachable!("record() returns message records only");
        };
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let slot = index.find(uid).ok_or(ReadError::NoSuchMessage)?;
        let email_id = record::email_id(&head, &bytes, index.entries()[slot].spool.pos().0);
        Ok(record::thread(&head, &bytes).map_or(email_id, |t| t.thread_id))
    }

    /// The Message-ID map as (keyed hash, thread id) pairs (tests: it must equal a replay of
    /// the spool).
    #[cfg(feature = "sim")]
    #[must_use]
    pub fn thread_map(&self) -> std::collections::BTreeMap<u64, u64> {
        self.threads.entries()
    }

    /// The Message-ID map rebuilt from the spool alone (tests: [`UserStore::thread_map`] must
    /// equal it).
    ///
    /// # Errors
    /// The disk failed.
    #[cfg(feature = "sim")]
    pub fn thread_map_from_spool(
        &self,
    ) -> Result<std::collections::BTreeMap<u64, u64>, crate::error::StorageError> {
        threads::replay_spool(&*self.disk, &self.dir, self.threads.key_id())
    }

    /// Asks the disk to read a message's spool record ahead (madvise `WILLNEED` on the real
    /// disk), so that serving [`UserStore::body`] later does not stall the shard's thread on a
    /// major page fault. Advisory.
    ///
    /// # Errors
    /// No such mailbox or message, or the disk refused the hint.
    pub fn prefetch(&self, id: MailboxId, uid: Uid) -> Result<(), ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let slot = index.find(uid).ok_or(ReadError::NoSuchMessage)?;
        let spool = index.entries()[slot].spool;
        self.spool.will_need(&self.disk, spool)?;
        Ok(())
    }

    /// The spool record of a message, checked against its index entry.
    fn record(
        &self,
        id: MailboxId,
        uid: Uid,
    ) -> Result<(record::RecordHeader, Bytes, usize, usize), ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let slot = index.find(uid).ok_or(ReadError::NoSuchMessage)?;
        let entry = index.entries()[slot];
        let verify = !index.is_verified(slot);
        let (header, bytes) = match self.spool.view_record(&self.disk, entry.spool, verify) {
            Ok(record) => record,
            // An expunged message's record may be gone on purpose (spool compaction, past
            // retention): the message is gone, nothing is damaged.
            Err(crate::error::StorageError::Corrupt { .. }) if entry.expunged => {
                return Err(ReadError::NoSuchMessage);
            }
            Err(error) => return Err(self.damaged(id, uid, error).into()),
        };
        let record::Head::Message(head) = header.head else {
            return Err(self.damaged(id, uid, self.misdirected(entry)).into());
        };
        if head.mailbox != id || head.uid != uid || head.message_len != entry.size {
            return Err(self.damaged(id, uid, self.misdirected(entry)).into());
        }
        if verify {
            index.mark_verified(slot);
        }
        Ok((header, bytes, head.message_len as usize, head.cache_len as usize))
    }

    /// Logs a message whose spool record is damaged, naming it, once per process (it stays
    /// damaged: every read of it fails, and only of it), and hands the error back.
    fn damaged(
        &self,
        id: MailboxId,
        uid: Uid,
        error: crate::error::StorageError,
    ) -> crate::error::StorageError {
        if matches!(error, crate::error::StorageError::Corrupt { .. })
            && self.damaged_logged.borrow_mut().insert((id, uid))
        {
            tracing::error!(
                user = %self.dir.display(),
                mailbox = id.0,
                uid = uid.get(),
                %error,
                "message record damaged: this message cannot be read, the others can"
            );
        }
        error
    }

    fn misdirected(&self, entry: Entry) -> crate::error::StorageError {
        crate::error::StorageError::Corrupt {
            what: "spool record does not match its index entry",
            path: self.spool.path(entry.spool.segment),
            offset: u64::from(entry.spool.offset),
        }
    }

    /// O(n) checks of every in-memory structure against the invariants in `core/FORMAT.md`.
    ///
    /// # Panics
    /// When an invariant is broken (a bug).
    #[cfg(any(test, debug_assertions))]
    pub fn check_invariants(&self) {
        assert_eq!(self.catalog.mailboxes.len(), self.indexes.len());
        assert_eq!(self.catalog.mailboxes.len(), self.catalog.by_name.len());
        assert!(self.catalog.id(names::INBOX).is_some(), "INBOX exists");
        let end = self.spool.end_pos();
        for (id, index) in &self.indexes {
            assert!(self.catalog.mailboxes.contains_key(id));
            assert_eq!(index.header().mailbox, *id);
            assert_eq!(index.header().uid_validity, self.catalog.mailboxes[id].uid_validity);
            index.check_invariants(self.catalog.mailboxes[id].valid_keywords());
            for entry in index.entries() {
                assert!(entry.spool.end() <= end, "no index entry past the spool end");
            }
        }
        assert_eq!(self.quota_usage(), self.quota_recount(), "quota usage is exact");
    }
}
