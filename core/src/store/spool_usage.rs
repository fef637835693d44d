//! What a user's mail takes on disk ([`UserStore::disk_usage`]) and delayed expunge: the
//! expunged messages still in the spool ([`UserStore::expunged_retained`]) and their
//! restoration ([`UserStore::unexpunge`]) until spool compaction takes them
//! (`spool_compact.rs`, `core/FORMAT.md`, "Spool compaction").

use std::collections::BTreeMap;

use super::UserStore;
use super::index::Entry;
use super::spool_compact::CompactionPolicy;
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::{CopyError, ReadError, StorageError};
use crate::types::{MailboxId, Uid};

/// Bytes a user's store takes, by kind. Segment lengths are apparent sizes: the bodies of
/// gap records (what compaction freed) are holes in them, so `spool_bytes - live_bytes -
/// retained_bytes` is what compaction has freed or can free (plus tombstones and headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Lengths of the spool segment files.
    pub spool_bytes: u64,
    /// Spool records of live messages.
    pub live_bytes: u64,
    /// Spool records of expunged messages still within retention (restorable).
    pub retained_bytes: u64,
    /// Lengths of the mailbox index files.
    pub index_bytes: u64,
    /// Every other file of the store (logs, keys, leftovers).
    pub other_bytes: u64,
}

/// An expunged message that can still be restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpungedMessage {
    /// Its UID (never given again: a restored message gets a new one).
    pub uid: Uid,
    /// RFC822.SIZE.
    pub size: u32,
    /// When it was expunged, unix seconds; `None` when unknown (expunged by recovery, or
    /// before skua recorded it).
    pub expunged_at: Option<i64>,
}

impl<D: Disk> UserStore<D> {
    /// What the store takes on disk: file lengths from the disk, live and retained bytes
    /// from the indexes (`policy` says what is still retained). O(files + entries).
    ///
    /// # Errors
    /// The disk failed.
    pub fn disk_usage(&self, policy: &CompactionPolicy) -> Result<DiskUsage, StorageError> {
        let mut usage = DiskUsage::default();
        for index in self.indexes.values() {
            for entry in index.entries() {
                let len = u64::from(entry.spool.len);
                if !entry.expunged {
                    usage.live_bytes += len;
                } else if !Self::entry_dead(entry, policy) {
                    usage.retained_bytes += len;
                }
            }
        }
        let mut pending = vec![self.dir.clone()];
        while let Some(dir) = pending.pop() {
            let names = self.disk.list_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
            for name in names {
                let path = dir.join(&name);
                let Ok(file) = self.disk.open(&path, OpenMode::Existing) else {
                    pending.push(path);
                    continue;
                };
                let len = file.len().map_err(|e| StorageError::io(&path, e))?;
                let parent = dir.file_name().and_then(|n| n.to_str());
                if parent == Some(super::spool::SPOOL_DIR)
                    && super::spool::parse_segment_name(&name).is_some()
                {
                    usage.spool_bytes += len;
                } else if parent == Some("mbox") && super::index::parse_index_name(&name).is_some()
                {
                    usage.index_bytes += len;
                } else {
                    usage.other_bytes += len;
                }
            }
        }
        Ok(usage)
    }

    /// The expunged messages of `id` whose records are still in the spool (not yet taken by
    /// compaction), in UID order: what [`UserStore::unexpunge`] can restore.
    ///
    /// # Errors
    /// [`ReadError::NoSuchMailbox`].
    pub fn expunged_retained(&self, id: MailboxId) -> Result<Vec<ExpungedMessage>, ReadError> {
        let index = self.indexes.get(&id).ok_or(ReadError::NoSuchMailbox)?;
        let restorable = index.entries().iter().filter(|e| e.expunged && self.record_there(e));
        Ok(restorable
            .map(|e| ExpungedMessage {
                uid: e.uid,
                size: e.size,
                expunged_at: (e.save_date != 0).then_some(i64::from(e.save_date)),
            })
            .collect())
    }

    /// True when the entry's spool record is still there (its header matches the entry).
    fn record_there(&self, entry: &Entry) -> bool {
        self.spool.view_record(&self.disk, entry.spool, false).is_ok()
    }

    /// Restores expunged messages of `id` still in the spool: each is appended again to the
    /// same mailbox with a new UID (UIDs are never reused, RFC 9051 §2.3.1.1), its flags,
    /// internal date, EMAILID and THREADID, as COPY makes a copy. Returns (old UID, new UID)
    /// pairs; UIDs not expunged or no longer restorable are skipped. All or none: on failure
    /// the copies made so far are taken back.
    ///
    /// # Errors
    /// No such mailbox, mailbox full, or the disk failed.
    pub fn unexpunge(&mut self, id: MailboxId, uids: &[Uid]) -> Result<Vec<(Uid, Uid)>, CopyError> {
        self.before_mutation().map_err(|e| self.logged("unexpunge", e))?;
        let index = self.indexes.get(&id).ok_or(CopyError::NoSuchMailbox)?;
        let mut wanted: Vec<Uid> = uids.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let entries: Vec<Entry> = wanted
            .iter()
            .filter_map(|&uid| index.find(uid).map(|slot| index.entries()[slot]))
            .filter(|e| e.expunged && self.record_there(e))
            .collect();
        let room = u64::from(u32::MAX - index.uid_next());
        if entries.len() as u64 >= room || index.is_full() {
            return Err(CopyError::MailboxFull);
        }
        let used = entries.iter().fold(0u64, |bits, e| bits | e.flags.keywords.0);
        let same: BTreeMap<u32, u32> =
            (0..64).filter(|b| used & (1 << b) != 0).map(|b| (b, b)).collect();
        let mark = self.spool.end_pos();
        let index_len = self.indexes[&id].entries().len();
        let mut pairs = Vec::with_capacity(entries.len());
        // Restored mail counts again (an administrator's restore is not refused by quota,
        // like RENAME INBOX's copies; `store/quota.rs`).
        let before = self.quota_mark(id);
        for entry in &entries {
            match self.copy_one(id, entry, id, &same) {
                Ok(uid) => pairs.push((entry.uid, uid)),
                Err(error) => {
                    self.undo_copy(id, index_len, mark, &pairs);
                    self.quota_settle(id, before);
                    return Err(match error {
                        CopyError::Storage(e) => CopyError::Storage(self.logged("unexpunge", e)),
                        other => other,
                    });
                }
            }
        }
        self.quota_settle(id, before);
        if !pairs.is_empty() {
            self.change_counter += 1;
            self.changes.touch(id, super::changes::MailboxChange { messages: true, flags: false });
        }
        Ok(pairs)
    }
}
