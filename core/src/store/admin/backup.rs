//! `skua backup`: a snapshot of one state of a store, as archive records (`crate::backup`,
//! `core/FORMAT.md`, "Backup archives").
//!
//! Consistency: [`UserStore::backup_begin`] reads every piece of metadata (mailboxes,
//! subscriptions, every live message's flags, date, size and spool reference) in one
//! synchronous step, and takes a [`SpoolPin`]. The bodies are then read by those references
//! in later steps ([`SnapshotSource::next_records`], a bounded batch each), while sessions
//! go on changing the store in between. That is sound because a message record is never
//! rewritten (the spool is append-only and a record keeps its offset for life) and the only
//! thing that removes one, spool compaction, plans no rewrite while the pin is held: a
//! message expunged, or a mailbox deleted, after the metadata step is still read as it was.
//! The bodies are the bytes the metadata step saw, each checked against its record checksum.

use std::collections::VecDeque;

use super::super::UserStore;
use super::super::index::Entry;
use super::super::record::{self, Head};
use super::super::spool_compact::SpoolPin;
use crate::backup::{
    MESSAGES_PER_RECORD_MAX, MailboxState, MessageState, Record, SnapshotEnd, SnapshotStart, sha256,
};
use crate::disk::Disk;
use crate::error::StorageError;
use crate::types::MailboxId;

/// Where one message's bytes are, as the metadata step saw it: its index entry then.
struct BodyRef {
    entry: Entry,
    mailbox: MailboxId,
}

/// A snapshot being read: its metadata records, taken at once, then its bodies in batches.
/// Holds compaction off the store until dropped.
pub struct SnapshotSource {
    metadata: VecDeque<Record>,
    bodies: Vec<BodyRef>,
    next: usize,
    ended: bool,
    _pin: SpoolPin,
}

impl<D: Disk> UserStore<D> {
    /// Starts a snapshot of this store, taken now (`now_unix_millis`), of user `user`: reads
    /// all its metadata in this one step (see the module docs).
    #[must_use]
    pub fn backup_begin(&self, user: &str, now_unix_millis: i64) -> SnapshotSource {
        let pin = self.pin_spool();
        let mut entries: Vec<(MailboxId, &super::super::catalog::CatalogEntry)> =
            self.catalog.mailboxes.iter().map(|(id, entry)| (*id, entry)).collect();
        entries.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let mut mailboxes = Vec::with_capacity(entries.len());
        let mut messages = Vec::new();
        let mut bodies = Vec::new();
        for (ordinal, (id, entry)) in entries.iter().enumerate() {
            let index = &self.indexes[id];
            mailboxes.push(Record::Mailbox(MailboxState {
                name: entry.name.clone(),
                uid_validity: entry.uid_validity.get(),
                uid_next: index.uid_next(),
                special_use: entry.special_use.bits(),
                keywords: entry.keywords.clone(),
                acl: entry.acl.as_ref().map_or_else(Vec::new, |acl| {
                    acl.entries()
                        .iter()
                        .map(|e| (e.identifier.to_string(), e.rights.bits()))
                        .collect()
                }),
            }));
            for e in index.entries().iter().filter(|e| !e.expunged) {
                messages.push(MessageState {
                    mailbox: ordinal as u32,
                    uid: e.uid.get(),
                    system: e.flags.system.0,
                    keywords: e.flags.keywords.0,
                    date_unix_seconds: e.date.unix_seconds,
                    zone_minutes: e.date.zone_minutes,
                    size: e.size,
                });
                bodies.push(BodyRef { entry: *e, mailbox: *id });
            }
        }
        let mut metadata = VecDeque::new();
        metadata.push_back(Record::Start(SnapshotStart {
            time_unix_millis: now_unix_millis,
            user: user.to_owned(),
            mailboxes: mailboxes.len() as u32,
            messages: messages.len() as u32,
        }));
        metadata.extend(mailboxes);
        metadata
            .push_back(Record::Subscriptions(self.catalog.subscriptions.iter().cloned().collect()));
        for chunk in messages.chunks(MESSAGES_PER_RECORD_MAX) {
            metadata.push_back(Record::Messages(chunk.to_vec()));
        }
        SnapshotSource { metadata, bodies, next: 0, ended: false, _pin: pin }
    }

    /// The bytes of the message record at `body`, checked (checksum, and that it is the
    /// message the metadata step named).
    fn backup_body(&self, body: &BodyRef) -> Result<Vec<u8>, StorageError> {
        let entry = body.entry;
        let (header, bytes) = self.spool.view_record(&self.disk, entry.spool, true)?;
        let Head::Message(head) = header.head else {
            return Err(self.misdirected(entry));
        };
        if head.mailbox != body.mailbox || head.uid != entry.uid || head.message_len != entry.size {
            return Err(self.misdirected(entry));
        }
        let start = record::RECORD_HEADER_BYTES;
        Ok(bytes.slice(start, start + head.message_len as usize).as_ref().to_vec())
    }
}

impl SnapshotSource {
    /// Messages in the snapshot.
    #[must_use]
    pub fn messages(&self) -> usize {
        self.bodies.len()
    }

    /// Bodies given so far.
    #[must_use]
    pub fn bodies_given(&self) -> usize {
        self.next
    }

    /// True once the end record was given.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.ended
    }

    /// The next records: the metadata first, then bodies (with their SHA-256) until about
    /// `bytes_max` bytes of them (at least one), then the end record; empty once done.
    /// `store` must be the store the snapshot was begun on.
    ///
    /// # Errors
    /// A body's record cannot be read or is damaged: the snapshot cannot be completed.
    pub fn next_records<D: Disk>(
        &mut self,
        store: &UserStore<D>,
        bytes_max: usize,
    ) -> Result<Vec<Record>, StorageError> {
        let mut records = Vec::new();
        let mut bytes = 0usize;
        while let Some(record) = self.metadata.pop_front() {
            bytes += metadata_bytes(&record);
            records.push(record);
            if bytes >= bytes_max {
                return Ok(records);
            }
        }
        while let Some(body) = self.bodies.get(self.next) {
            if !records.is_empty() && bytes + body.entry.size as usize > bytes_max {
                return Ok(records);
            }
            let message = store.backup_body(body)?;
            bytes += message.len();
            records.push(Record::Body { digest: sha256(&message), bytes: message });
            self.next += 1;
        }
        if !self.ended {
            self.ended = true;
            records.push(Record::End(SnapshotEnd::default()));
        }
        Ok(records)
    }
}

/// About how many bytes a metadata record takes (for batching only).
fn metadata_bytes(record: &Record) -> usize {
    match record {
        Record::Messages(messages) => messages.len() * crate::backup::MESSAGE_ENTRY_BYTES,
        Record::Subscriptions(names) => names.iter().map(|n| n.len() + 2).sum(),
        _ => 256,
    }
}
