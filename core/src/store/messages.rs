//! APPEND, STORE, EXPUNGE and COPY: everything that writes spool records or index records.
//!
//! Write order (see `core/FORMAT.md`, "Write and flush order"): the spool record first, then the
//! index record; memory changes only after both writes succeeded, and the spool end advances
//! only then. A failed operation cuts the spool back to where it ended before it
//! ([`UserStore::cut_spool_back`]), so it leaves no record that recovery would bring back (a
//! delivery refused with 452 must not reappear after a restart).

use std::collections::BTreeMap;

use super::codec::{SpoolPos, get_u32, now_unix_seconds, pad8};
use super::index::Entry;
use super::record::{
    self, EMAIL_ID_BYTES, Head, MessageHead, RECORD_HEADER_BYTES, THREAD_TRAILER_BYTES,
    ThreadTrailer,
};
use super::threads::ThreadKeys;
use super::{StoreOutcome, UserStore, quota};
use crate::disk::Disk;
use crate::error::{AppendError, CopyError, ReadError, StorageError, UpdateError};
use crate::limits::{CACHE_BYTES_MAX, MESSAGE_BYTES_MAX, TOMBSTONE_UIDS_MAX};
use crate::types::{Flags, FlagsOp, InternalDate, Keywords, MailboxId, ModSeq, SystemFlags, Uid};

impl<D: Disk> UserStore<D> {
    /// Appends a message (and its cache blob) to mailbox `id` with `flags`, dated `date` or
    /// now. One spool write and one index write; durable after the caller's next flush round.
    ///
    /// # Errors
    /// No such mailbox, message or cache too large, mailbox full, or the disk failed.
    ///
    /// # Panics
    /// If `flags` has bits that name no system flag or no keyword of the mailbox (a bug: keyword
    /// bits come from [`UserStore::keyword_bits`]).
    pub fn append(
        &mut self,
        id: MailboxId,
        message: &[u8],
        cache: &[u8],
        flags: Flags,
        date: Option<InternalDate>,
    ) -> Result<(Uid, ModSeq), AppendError> {
        self.append_threaded(id, message, cache, ThreadKeys::NONE, flags, date)
    }

    /// [`UserStore::append`] of a message naming the Message-IDs in `keys`, which decide its
    /// THREADID (`store/threads.rs`): delivery and IMAP APPEND pass what they parsed.
    ///
    /// # Errors
    /// As [`UserStore::append`].
    ///
    /// # Panics
    /// As [`UserStore::append`].
    pub fn append_threaded(
        &mut self,
        id: MailboxId,
        message: &[u8],
        cache: &[u8],
        keys: ThreadKeys<'_>,
        flags: Flags,
        date: Option<InternalDate>,
    ) -> Result<(Uid, ModSeq), AppendError> {
        if self.catalog.mailboxes.contains_key(&id) {
            let adds = quota::Adds { bytes: message.len() as u64, messages: 1, mailboxes: 0 };
            self.quota_check(adds).map_err(quota::QuotaRefusal::into_append)?;
        }
        let before = self.quota_mark(id);
        let result = self.append_threaded_counted(id, message, cache, keys, flags, date);
        self.quota_settle(id, before);
        result
    }

    /// [`UserStore::append_threaded`] after its quota check (`store/quota.rs`).
    fn append_threaded_counted(
        &mut self,
        id: MailboxId,
        message: &[u8],
        cache: &[u8],
        keys: ThreadKeys<'_>,
        flags: Flags,
        date: Option<InternalDate>,
    ) -> Result<(Uid, ModSeq), AppendError> {
        self.before_mutation().map_err(|e| self.logged("append", e))?;
        let keywords =
            self.catalog.mailboxes.get(&id).ok_or(AppendError::NoSuchMailbox)?.valid_keywords();
        assert_eq!(flags.system.0 & !SystemFlags::ALL, 0, "unknown system flag bits");
        assert_eq!(flags.keywords.0 & !keywords, 0, "keyword bits name no keyword");
        if message.len() > MESSAGE_BYTES_MAX as usize {
            return Err(AppendError::TooLarge { size: message.len() as u64 });
        }
        if cache.len() > CACHE_BYTES_MAX as usize {
            return Err(AppendError::TooLarge { size: cache.len() as u64 });
        }
        let date =
            date.unwrap_or(InternalDate { unix_seconds: now_unix_seconds(), zone_minutes: 0 });
        let result = self
            .append_record(id, message, cache, flags, date, Origin::New(keys))
            .map_err(|e| match e {
                AppendError::Storage(error) => AppendError::Storage(self.logged("append", error)),
                other => other,
            })?;
        self.change_counter += 1;
        self.changes.touch(id, super::changes::MailboxChange { messages: true, flags: false });
        Ok(result)
    }

    /// The shared body of APPEND and COPY: checks nothing but fullness. A copy keeps its
    /// source's EMAILID and THREADID; a new message gets the record's own spool position as
    /// its EMAILID, which no other record ever had (`core/FORMAT.md`, "Spool segments"), and
    /// the thread its keys decide (`store/threads.rs`). On failure the spool
    /// is cut back to where it ended before (`core/FORMAT.md`, "Write and flush order"), so no
    /// record of a refused append is left for recovery to bring back.
    pub(super) fn append_record(
        &mut self,
        id: MailboxId,
        message: &[u8],
        cache: &[u8],
        flags: Flags,
        date: InternalDate,
        origin: Origin<'_>,
    ) -> Result<(Uid, ModSeq), AppendError> {
        let index = self.indexes.get(&id).ok_or(AppendError::NoSuchMailbox)?;
        if index.is_full() {
            return Err(AppendError::MailboxFull);
        }
        let uid = Uid::new(index.uid_next()).expect("uid_next >= 1");
        let head = MessageHead {
            mailbox: id,
            uid,
            date,
            flags,
            message_len: u32::try_from(message.len()).expect("checked"),
            cache_len: u32::try_from(cache.len()).expect("checked"),
            email_id_stored: true,
            thread_keys: None,
        };
        let mark = self.spool.end_pos();
        self.append_record_writes(head, message, cache, origin).map_err(|error| {
            self.cut_spool_back(mark);
            AppendError::Storage(error)
        })
    }

    /// The writes of one append: the spool record, then the index record.
    fn append_record_writes(
        &mut self,
        mut head: MessageHead,
        message: &[u8],
        cache: &[u8],
        origin: Origin<'_>,
    ) -> Result<(Uid, ModSeq), StorageError> {
        let decision = match origin {
            Origin::New(keys) => Some(self.threads.decide(&keys)),
            Origin::Copy { .. } => None,
        };
        let key_count = decision.as_ref().map_or(0, |d| d.keys.len());
        head.thread_keys = Some(u8::try_from(key_count).expect("at most THREAD_KEYS_MAX"));
        let trailers = EMAIL_ID_BYTES + THREAD_TRAILER_BYTES + 8 * key_count;
        let record_len =
            pad8((RECORD_HEADER_BYTES + message.len() + cache.len() + trailers) as u64);
        let nonce = self.spool.prepare(&self.disk, record_len)?;
        // `prepare` made room: the record goes at the spool's end.
        let pos = self.spool.end_pos();
        let (email_id, trailer) = match (origin, decision) {
            (Origin::Copy { email_id, thread_id }, _) => {
                let trailer =
                    ThreadTrailer { thread_id, key_id: self.threads.key_id(), keys: vec![] };
                (email_id, trailer)
            }
            (Origin::New(_), decision) => {
                let decision = decision.expect("decided above");
                let thread_id = decision.thread_id.unwrap_or(pos.0);
                let key_id = self.threads.key_id();
                (pos.0, ThreadTrailer { thread_id, key_id, keys: decision.keys })
            }
        };
        let bytes =
            record::encode_message(nonce, &head, message, cache, Some(email_id), Some(&trailer));
        let spool_ref = self.spool.write(&bytes, get_u32(&bytes, 4))?;
        let index = self.indexes.get_mut(&head.mailbox).expect("the caller found it");
        let modseq = index.next_modseq();
        let entry = Entry {
            uid: head.uid,
            flags: head.flags,
            expunged: false,
            modseq,
            date: head.date,
            size: head.message_len,
            spool: spool_ref,
            save_date: save_date_now(),
        };
        // The spool record is this append's durable copy; the index record joins a flush
        // round later (see `Index::append_unsynced`).
        index.append_unsynced(entry)?;
        self.spool.commit(spool_ref);
        self.threads.learn(spool_ref.pos(), &trailer);
        assert!(spool_ref.end() <= self.spool.end_pos(), "no index entry past the spool end");
        self.checkpoints.note_write(self.disk.epoch_open(), self.spool.end_pos());
        Ok((head.uid, ModSeq(modseq)))
    }

    /// Cuts the spool back to `mark` after a failed operation (see [`Spool::cut_back`]). If
    /// the disk refuses the cut too, the store remembers it and refuses every mutation until a
    /// retry succeeds (`before_mutation`): a later record in a new segment would leave the
    /// failed one behind, intact, for recovery to bring back.
    ///
    /// [`Spool::cut_back`]: super::spool::Spool::cut_back
    pub(super) fn cut_spool_back(&mut self, mark: SpoolPos) {
        self.threads.forget_from(mark);
        match self.spool.cut_back(&self.disk, mark) {
            Ok(()) => self.checkpoints.cut(mark),
            Err(error) => {
                tracing::error!(
                    user = %self.dir.display(),
                    %error,
                    "cannot cut a failed write from the spool; refusing writes until it is cut"
                );
                self.pending_cut = Some(mark);
            }
        }
    }

    /// Logs a failed write once, with the user's directory and the file (ENOSPC, EIO: what an
    /// operator must see), and hands the error back.
    pub(super) fn logged(&self, operation: &'static str, error: StorageError) -> StorageError {
        if let StorageError::Io { path, source } = &error {
            tracing::error!(
                user = %self.dir.display(),
                file = %path.display(),
                kind = ?source.kind(),
                %source,
                "{operation} failed"
            );
        }
        error
    }

    /// Changes the flags of the live messages among `uids` (others are skipped). With
    /// `unchanged_since` (RFC 7162 UNCHANGEDSINCE), a message whose modseq is above it is left
    /// alone and reported in [`StoreOutcome::modified`]. A message whose flags do not change
    /// keeps its modseq.
    ///
    /// # Errors
    /// No such mailbox, or the disk failed (changes made before the failure stay).
    ///
    /// # Panics
    /// On flag bits that name nothing (as [`UserStore::append`]).
    pub fn store_flags(
        &mut self,
        id: MailboxId,
        uids: &[Uid],
        op: FlagsOp,
        flags: Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreOutcome, UpdateError> {
        if let Some(reader) = self.reader.clone() {
            return self.store_flags_as_reader(&reader, id, uids, op, flags, unchanged_since);
        }
        self.store_flags_keeping_seen(id, uids, op, flags, unchanged_since)
    }

    /// [`UserStore::store_flags`] of the owner's flags; with a reader set, a replace keeps the
    /// owner's `\Seen` bit (the reader's is in `seen.log`, `reader.rs`).
    pub(super) fn store_flags_keeping_seen(
        &mut self,
        id: MailboxId,
        uids: &[Uid],
        op: FlagsOp,
        flags: Flags,
        unchanged_since: Option<ModSeq>,
    ) -> Result<StoreOutcome, UpdateError> {
        self.before_mutation().map_err(|e| self.logged("store", e))?;
        let keep_seen = self.reader.is_some();
        let keywords =
            self.catalog.mailboxes.get(&id).ok_or(UpdateError::NoSuchMailbox)?.valid_keywords();
        assert_eq!(flags.system.0 & !SystemFlags::ALL, 0, "unknown system flag bits");
        assert_eq!(flags.keywords.0 & !keywords, 0, "keyword bits name no keyword");
        let index = self.indexes.get_mut(&id).ok_or(UpdateError::NoSuchMailbox)?;
        let mut outcome = StoreOutcome::default();
        for uid in sorted_unique(uids) {
            let Some(slot) = index.find(uid) else {
                continue;
            };
            let entry = index.entries()[slot];
            if entry.expunged {
                continue;
            }
            if unchanged_since.is_some_and(|since| entry.modseq > since.0) {
                outcome.modified.push(uid);
                continue;
            }
            let mut combined = combine(entry.flags, op, flags);
            if keep_seen {
                let owners = entry.flags.system.0 & SystemFlags::SEEN;
                combined.system.0 = (combined.system.0 & !SystemFlags::SEEN) | owners;
            }
            if combined == entry.flags {
                continue;
            }
            let modseq = index.next_modseq();
            if let Err(error) = index.rewrite(slot, Entry { flags: combined, modseq, ..entry }) {
                return Err(self.logged("store", error).into());
            }
            outcome.changed.push((uid, ModSeq(modseq)));
            self.change_counter += 1;
        }
        if !outcome.changed.is_empty() {
            self.changes.touch(id, super::changes::MailboxChange { messages: false, flags: true });
        }
        Ok(outcome)
    }

    /// Expunges the live messages among `uids`: one tombstone record in the spool (so that
    /// reconstruct does not bring them back), then each index record marked. All get one new
    /// modseq, which is returned (the current HIGHESTMODSEQ if nothing was expunged).
    ///
    /// # Errors
    /// No such mailbox, or the disk failed.
    pub fn expunge(&mut self, id: MailboxId, uids: &[Uid]) -> Result<ModSeq, UpdateError> {
        let before = self.quota_mark(id);
        let result = self.expunge_uncounted(id, uids);
        self.quota_settle(id, before);
        result
    }

    /// [`UserStore::expunge`] without the quota bookkeeping, for callers that do their own
    /// (`store/quota.rs`).
    fn expunge_uncounted(&mut self, id: MailboxId, uids: &[Uid]) -> Result<ModSeq, UpdateError> {
        self.before_mutation().map_err(|e| self.logged("expunge", e))?;
        let index = self.indexes.get_mut(&id).ok_or(UpdateError::NoSuchMailbox)?;
        let live: Vec<(usize, Uid)> = sorted_unique(uids)
            .filter_map(|uid| index.find(uid).map(|slot| (slot, uid)))
            .filter(|&(slot, _)| !index.entries()[slot].expunged)
            .collect();
        if live.is_empty() {
            return Ok(ModSeq(index.highest_modseq()));
        }
        let modseq = index.next_modseq();
        let doomed: Vec<Uid> = live.iter().map(|&(_, uid)| uid).collect();
        // A tombstone left behind by a refused EXPUNGE would expunge on the next open what
        // the client was told is still there: the spool is cut back if any write fails.
        let mark = self.spool.end_pos();
        if let Err(error) = self.expunge_tombstones(id, modseq, &doomed) {
            self.cut_spool_back(mark);
            return Err(self.logged("expunge", error).into());
        }
        self.checkpoints.note_write(self.disk.epoch_open(), self.spool.end_pos());
        self.change_counter += 1;
        self.changes.touch(id, super::changes::MailboxChange { messages: true, flags: false });
        let index = self.indexes.get_mut(&id).expect("found above");
        for (slot, _) in live {
            let entry = index.entries()[slot];
            // Once a record is marked the tombstone must stay (recovery finishes the
            // expunge from it); a failure here leaves the rest to recovery.
            // An expunged record's save date is the time of its expunge: delayed expunge
            // keeps it restorable for the retention from then (`spool_compact.rs`).
            let expunged = Entry { expunged: true, modseq, save_date: save_date_now(), ..entry };
            if let Err(error) = index.rewrite(slot, expunged) {
                return Err(self.logged("expunge", error).into());
            }
        }
        Ok(ModSeq(modseq))
    }

    /// Writes the tombstone records of an expunge (one per `TOMBSTONE_UIDS_MAX` UIDs).
    fn expunge_tombstones(
        &mut self,
        id: MailboxId,
        modseq: u64,
        doomed: &[Uid],
    ) -> Result<(), StorageError> {
        for chunk in doomed.chunks(TOMBSTONE_UIDS_MAX as usize) {
            let record_len = pad8((RECORD_HEADER_BYTES + chunk.len() * 4) as u64);
            let nonce = self.spool.prepare(&self.disk, record_len)?;
            let bytes = record::encode_tombstone(nonce, id, modseq, chunk);
            let spool_ref = self.spool.write(&bytes, get_u32(&bytes, 4))?;
            self.spool.commit(spool_ref);
        }
        Ok(())
    }

    /// Copies the live messages among `uids` (ascending) from `source` to `target`, each as a
    /// full new spool record with the same flags (keywords translated by name) and date.
    /// Returns `(source uid, new uid)` pairs. On failure the copies made so far are expunged
    /// again, so the target looks as before (RFC 9051 §6.4.7).
    ///
    /// # Errors
    /// No such source or target, target full, or the disk failed.
    pub fn copy(
        &mut self,
        source: MailboxId,
        uids: &[Uid],
        target: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>, CopyError> {
        if self.catalog.mailboxes.contains_key(&target) {
            self.quota_check_copy(source, uids)?;
        }
        self.copy_counted(source, uids, target)
    }

    /// [`UserStore::copy`] without its quota check, for RENAME INBOX (a move: the copies are
    /// expunged from INBOX right after), with the usage bookkeeping (`store/quota.rs`).
    pub(super) fn copy_counted(
        &mut self,
        source: MailboxId,
        uids: &[Uid],
        target: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>, CopyError> {
        let before = self.quota_mark(target);
        let result = self.copy_uncounted(source, uids, target);
        self.quota_settle(target, before);
        result
    }

    fn copy_uncounted(
        &mut self,
        source: MailboxId,
        uids: &[Uid],
        target: MailboxId,
    ) -> Result<Vec<(Uid, Uid)>, CopyError> {
        self.before_mutation().map_err(|e| self.logged("copy", e))?;
        let entries: Vec<Entry> = {
            let index = self.indexes.get(&source).ok_or(CopyError::NoSuchMailbox)?;
            sorted_unique(uids)
                .filter_map(|uid| index.find(uid).map(|slot| index.entries()[slot]))
                .filter(|e| !e.expunged)
                .collect()
        };
        let target_index = self.indexes.get(&target).ok_or(CopyError::NoSuchTarget)?;
        let room = u64::from(u32::MAX - target_index.uid_next());
        if entries.len() as u64 >= room || target_index.is_full() {
            return Err(CopyError::MailboxFull);
        }
        let translate = self.keyword_translation(source, target, &entries)?;
        let mark = self.spool.end_pos();
        let target_len = self.indexes[&target].entries().len();
        let mut pairs = Vec::with_capacity(entries.len());
        for entry in &entries {
            match self.copy_one(source, entry, target, &translate) {
                Ok(uid) => pairs.push((entry.uid, uid)),
                Err(error) => {
                    self.undo_copy(target, target_len, mark, &pairs);
                    return Err(match error {
                        CopyError::Storage(error) => CopyError::Storage(self.logged("copy", error)),
                        other => other,
                    });
                }
            }
        }
        self.change_counter += 1;
        if !pairs.is_empty() {
            self.changes
                .touch(target, super::changes::MailboxChange { messages: true, flags: false });
        }
        Ok(pairs)
    }

    /// Takes back the copies a failed COPY made (RFC 9051 §6.4.7: the target looks as
    /// before): their index entries are cut from the target (UIDNEXT and HIGHESTMODSEQ stay
    /// past them) and their records from the spool, so recovery cannot bring them back. If the
    /// index cannot be cut, the copies are expunged instead (a tombstone).
    pub(super) fn undo_copy(
        &mut self,
        target: MailboxId,
        target_len: usize,
        mark: SpoolPos,
        pairs: &[(Uid, Uid)],
    ) {
        if pairs.is_empty() {
            return;
        }
        self.change_counter += 1;
        self.changes.touch(target, super::changes::MailboxChange { messages: true, flags: false });
        let index = self.indexes.get_mut(&target).expect("the copy found it");
        match index.truncate(target_len) {
            Ok(()) => self.cut_spool_back(mark),
            Err(error) => {
                tracing::warn!(%error, "cannot cut a failed COPY from the target index");
                let copied: Vec<Uid> = pairs.iter().map(|&(_, new)| new).collect();
                if let Err(undo) = self.expunge_uncounted(target, &copied) {
                    tracing::warn!(%undo, "cannot undo a failed COPY");
                }
            }
        }
    }

    pub(super) fn copy_one(
        &mut self,
        source: MailboxId,
        entry: &Entry,
        target: MailboxId,
        translate: &BTreeMap<u32, u32>,
    ) -> Result<Uid, CopyError> {
        // Copies are made from verified bytes only, so damage is never duplicated.
        let (header, bytes) = self.spool.view_record(&self.disk, entry.spool, true)?;
        let Head::Message(head) = header.head else {
            return Err(CopyError::Storage(self.misdirected(*entry)));
        };
        if head.mailbox != source || head.uid != entry.uid {
            return Err(CopyError::Storage(self.misdirected(*entry)));
        }
        let start = RECORD_HEADER_BYTES;
        let middle = start + head.message_len as usize;
        let end = middle + head.cache_len as usize;
        let email_id = record::email_id(&head, &bytes, entry.spool.pos().0);
        let thread_id = record::thread(&head, &bytes).map_or(email_id, |t| t.thread_id);
        let mut keywords = 0u64;
        for (&from, &to) in translate {
            if entry.flags.keywords.0 & (1 << from) != 0 {
                keywords |= 1 << to;
            }
        }
        let flags = Flags { system: entry.flags.system, keywords: Keywords(keywords) };
        let appended = self.append_record(
            target,
            &bytes[start..middle],
            &bytes[middle..end],
            flags,
            entry.date,
            Origin::Copy { email_id, thread_id },
        );
        match appended {
            Ok((uid, _)) => Ok(uid),
            Err(AppendError::MailboxFull) => Err(CopyError::MailboxFull),
            Err(AppendError::NoSuchMailbox) => Err(CopyError::NoSuchTarget),
            Err(AppendError::TooLarge { .. }) => unreachable!("a stored message fits"),
            Err(AppendError::OverQuota(over)) => Err(CopyError::OverQuota(over)),
            Err(AppendError::Storage(error)) => Err(CopyError::Storage(error)),
        }
    }

    /// Source keyword bit → target keyword bit for the keywords `entries` use, allocating names
    /// in the target. A keyword the target's full table cannot take is dropped.
    fn keyword_translation(
        &mut self,
        source: MailboxId,
        target: MailboxId,
        entries: &[Entry],
    ) -> Result<BTreeMap<u32, u32>, CopyError> {
        let used = entries.iter().fold(0u64, |bits, e| bits | e.flags.keywords.0);
        let names = self.keywords(source).map_err(|e| match e {
            ReadError::Storage(error) => CopyError::Storage(error),
            ReadError::NoSuchMailbox | ReadError::NoSuchMessage => CopyError::NoSuchMailbox,
        })?;
        let mut translate = BTreeMap::new();
        for (bit, name) in names.iter().enumerate().filter(|&(bit, _)| used & (1 << bit) != 0) {
            match self.keyword_bits(target, &[name.as_str()]) {
                Ok(bits) => {
                    let to = bits.0.trailing_zeros();
                    translate.insert(u32::try_from(bit).expect("< 64"), to);
                }
                Err(crate::error::KeywordError::TooMany | crate::error::KeywordError::Invalid) => {}
                Err(crate::error::KeywordError::NoSuchMailbox) => {
                    return Err(CopyError::NoSuchTarget);
                }
                Err(crate::error::KeywordError::Storage(error)) => {
                    return Err(CopyError::Storage(error));
                }
            }
        }
        Ok(translate)
    }
}

/// `uids` sorted and without duplicates.
fn sorted_unique(uids: &[Uid]) -> impl Iterator<Item = Uid> {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.into_iter()
}

/// The flags after a STORE of `given` with `op` on `current`.
fn combine(current: Flags, op: FlagsOp, given: Flags) -> Flags {
    let (system, keywords) = match op {
        FlagsOp::Replace => (given.system.0, given.keywords.0),
        FlagsOp::Add => (current.system.0 | given.system.0, current.keywords.0 | given.keywords.0),
        FlagsOp::Remove => {
            (current.system.0 & !given.system.0, current.keywords.0 & !given.keywords.0)
        }
    };
    Flags { system: SystemFlags(system), keywords: Keywords(keywords) }
}

/// The save date of a record written now (`core/FORMAT.md`, mailbox index records: a `u32` of
/// unix seconds, 0 meaning unknown). A clock before 1970 or past 2106 gives 0 (unknown).
fn save_date_now() -> u32 {
    u32::try_from(now_unix_seconds()).unwrap_or(0)
}

/// Where an appended record comes from: a new message and the ids it names, or a copy that
/// keeps its source's EMAILID and THREADID.
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    New(ThreadKeys<'a>),
    Copy { email_id: u64, thread_id: u64 },
}
