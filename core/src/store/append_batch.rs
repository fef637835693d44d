//! Appending several messages to one mailbox as one operation, all or none: IMAP MULTIAPPEND
//! (RFC 3502) and CATENATE's assembled messages go through here.
//!
//! What "all or none" means, and does not:
//! - *Refusals.* Every check that can refuse the whole batch (mailbox, sizes, room for the
//!   UIDs) runs before the first write. A write that fails part-way (ENOSPC, EIO, a full
//!   mailbox) takes back the records written so far exactly as a failed COPY does: the index
//!   is cut back to its length before the batch and the spool to its end before it
//!   (`core/FORMAT.md`, "Write and flush order"), so neither other sessions nor recovery see
//!   any of the batch. UIDNEXT and HIGHESTMODSEQ stay past the UIDs taken (RFC 9051 allows
//!   unused UIDs; they are never reused).
//! - *Crashes.* The batch is acknowledged only after a flush round made all of its records
//!   durable (the caller's ticket), so an acknowledged batch survives whole. A crash *before*
//!   the acknowledgement may keep any subset of the batch's records, exactly as it may keep a
//!   not yet acknowledged COPY or delivery: the spool records are self-describing and recovery
//!   brings back every intact one. The client was not told the batch succeeded, so it will
//!   send it again; the price is a possible duplicate, never a loss. Making an unacknowledged
//!   batch vanish whole across a crash would need a batch marker in the spool record and
//!   recovery dropping incomplete batches: a format change left for later.
//! - *Sessions.* The batch is written in one step of the user's shard, so no other session of
//!   the user runs between its records: they see all of it or none of it.

use super::messages::Origin;
use super::threads::ThreadKeys;
use super::{UserStore, quota};
use crate::disk::Disk;
use crate::error::AppendError;
use crate::limits::{CACHE_BYTES_MAX, MESSAGE_BYTES_MAX};
use crate::types::{Flags, InternalDate, MailboxId, ModSeq, SystemFlags, Uid};

use super::codec::now_unix_seconds;

/// One message of [`UserStore::append_all`].
#[derive(Clone, Copy, Debug)]
pub struct NewMessage<'a> {
    /// The message bytes.
    pub message: &'a [u8],
    /// Its cache blob (opaque to the store, see [`UserStore::append`]).
    pub cache: &'a [u8],
    /// Initial flags (keyword bits from [`UserStore::keyword_bits`]).
    pub flags: Flags,
    /// Internal date; `None`: now.
    pub date: Option<InternalDate>,
    /// The Message-IDs it names, which decide its THREADID (see [`UserStore::append_threaded`]).
    pub thread: ThreadKeys<'a>,
}

impl<D: Disk> UserStore<D> {
    /// Appends `messages` to mailbox `id` in order, all or none (see the module documentation
    /// for what that guarantees across a crash). Returns each message's UID and modseq; the
    /// UIDs are consecutive. Durable after the caller's next flush round.
    ///
    /// # Errors
    /// No such mailbox, a message or cache too large, no room for that many UIDs, or the disk
    /// failed; in every case no message of the batch is left in the mailbox.
    ///
    /// # Panics
    /// If `messages` is empty, or flags name no flag (as [`UserStore::append`]).
    pub fn append_all(
        &mut self,
        id: MailboxId,
        messages: &[NewMessage<'_>],
    ) -> Result<Vec<(Uid, ModSeq)>, AppendError> {
        assert!(!messages.is_empty(), "an empty batch");
        if self.catalog.mailboxes.contains_key(&id) {
            let bytes = messages.iter().map(|new| new.message.len() as u64).sum();
            let adds = quota::Adds { bytes, messages: messages.len() as u64, mailboxes: 0 };
            self.quota_check(adds).map_err(quota::QuotaRefusal::into_append)?;
        }
        let before = self.quota_mark(id);
        let result = self.append_all_counted(id, messages);
        self.quota_settle(id, before);
        result
    }

    /// [`UserStore::append_all`] after its quota check (`store/quota.rs`).
    fn append_all_counted(
        &mut self,
        id: MailboxId,
        messages: &[NewMessage<'_>],
    ) -> Result<Vec<(Uid, ModSeq)>, AppendError> {
        self.before_mutation().map_err(|e| self.logged("append", e))?;
        let keywords =
            self.catalog.mailboxes.get(&id).ok_or(AppendError::NoSuchMailbox)?.valid_keywords();
        for new in messages {
            assert_eq!(new.flags.system.0 & !SystemFlags::ALL, 0, "unknown system flag bits");
            assert_eq!(new.flags.keywords.0 & !keywords, 0, "keyword bits name no keyword");
            if new.message.len() > MESSAGE_BYTES_MAX as usize {
                return Err(AppendError::TooLarge { size: new.message.len() as u64 });
            }
            if new.cache.len() > CACHE_BYTES_MAX as usize {
                return Err(AppendError::TooLarge { size: new.cache.len() as u64 });
            }
        }
        let index = self.indexes.get(&id).ok_or(AppendError::NoSuchMailbox)?;
        let room = u64::from(u32::MAX - index.uid_next());
        if messages.len() as u64 >= room || index.is_full() {
            return Err(AppendError::MailboxFull);
        }
        let index_len = index.entries().len();
        let mark = self.spool.end_pos();
        let now = InternalDate { unix_seconds: now_unix_seconds(), zone_minutes: 0 };
        let mut done = Vec::with_capacity(messages.len());
        for new in messages {
            let date = new.date.unwrap_or(now);
            let origin = Origin::New(new.thread);
            match self.append_record(id, new.message, new.cache, new.flags, date, origin) {
                Ok(appended) => done.push(appended),
                Err(error) => {
                    let taken: Vec<(Uid, Uid)> = done.iter().map(|&(uid, _)| (uid, uid)).collect();
                    // `append_record` cut back its own record; the ones before it go the way a
                    // failed COPY's do.
                    self.undo_copy(id, index_len, mark, &taken);
                    return Err(match error {
                        AppendError::Storage(error) => {
                            AppendError::Storage(self.logged("append", error))
                        }
                        other => other,
                    });
                }
            }
        }
        self.change_counter += 1;
        self.changes.touch(id, super::changes::MailboxChange { messages: true, flags: false });
        Ok(done)
    }
}
