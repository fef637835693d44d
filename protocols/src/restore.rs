//! `skua restore`: one snapshot of a backup archive, given as a stream of records (every
//! body inline; `skua_core::backup`), written into a store with the [`Importer`]:
//!
//! - the snapshot's mailboxes are made where missing, with their SPECIAL-USE attributes and
//!   ACL entries (an existing mailbox is left as it is), and its subscriptions added;
//! - each message goes into its mailbox unless that mailbox already holds the same bytes
//!   (SHA-256), with its flags, keywords and internal date, and its UID where the mailbox
//!   never had that UID or a larger one (so a restore into a new mailbox keeps every UID).
//!
//! Re-running a restore changes nothing. UIDVALIDITY is the target's own (a mailbox made by
//! the restore gets a new one, as any new mailbox does). [`Restorer::apply`] takes one record
//! at a time and keeps no reference to the store, so a server lends it the store one step at
//! a time while the records arrive.

use skua_core::acl::{Identifier, Rights, RightsChange};
use skua_core::backup::{MailboxState, MessageState, Record};
use skua_core::disk::Disk;
use skua_core::error::MailboxError;
use skua_core::store::{AclError, SpecialUse, UserStore};
use skua_core::types::{InternalDate, SystemFlags};

use crate::import::{ImportError, Importer, Message};

/// What a restore did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreCounts {
    /// The snapshot's time, unix milliseconds.
    pub snapshot_unix_millis: i64,
    /// Mailboxes made.
    pub mailboxes_created: usize,
    /// Messages written.
    pub messages_restored: usize,
    /// Messages the target already held: skipped.
    pub messages_skipped: usize,
    /// Messages written with their UID from the snapshot.
    pub uids_kept: usize,
    /// Subscriptions added.
    pub subscriptions_added: usize,
    /// ACL entries set on mailboxes the restore made.
    pub acl_entries_set: usize,
}

/// Why a restore stopped (what was written stays; running it again goes on).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Writing a message failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A mailbox could not be made, or a name subscribed.
    #[error("mailbox {name}: {source}")]
    Mailbox {
        /// The name.
        name: String,
        /// Why.
        source: MailboxError,
    },
    /// An ACL entry of the snapshot could not be set.
    #[error("ACL of {name}: {what}")]
    Acl {
        /// The mailbox.
        name: String,
        /// Why.
        what: String,
    },
    /// A record the restore cannot use where it came (a reference: streams inline bodies).
    #[error("unexpected record in a restore stream: {0}")]
    Unexpected(&'static str),
}

/// See the module docs.
#[derive(Default)]
pub struct Restorer {
    owner: String,
    mailboxes: Vec<MailboxState>,
    subscriptions: Vec<String>,
    messages: Vec<MessageState>,
    next: usize,
    prepared: bool,
    finished: bool,
    importer: Importer,
    counts: RestoreCounts,
}

impl Restorer {
    /// A restorer waiting for a snapshot's start record.
    #[must_use]
    pub fn new() -> Restorer {
        Restorer::default()
    }

    /// What was done so far.
    #[must_use]
    pub fn counts(&self) -> RestoreCounts {
        let import = self.importer.counts;
        RestoreCounts {
            messages_restored: import.messages_imported,
            messages_skipped: import.messages_skipped,
            uids_kept: import.uids_kept,
            ..self.counts
        }
    }

    /// True once the snapshot's end record was applied.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Applies the next record of the stream (in the order `skua_core::backup::Decoder`
    /// checked) to `store`.
    ///
    /// # Errors
    /// See [`RestoreError`].
    pub fn apply<D: Disk>(
        &mut self,
        store: &mut UserStore<D>,
        record: Record,
    ) -> Result<(), RestoreError> {
        match record {
            Record::Start(start) => {
                self.owner = start.user;
                self.counts.snapshot_unix_millis = start.time_unix_millis;
            }
            Record::Mailbox(mailbox) => self.mailboxes.push(mailbox),
            Record::Subscriptions(names) => self.subscriptions = names,
            Record::Messages(messages) => self.messages.extend(messages),
            Record::Body { bytes, .. } => {
                self.prepare(store)?;
                let state = self.messages[self.next];
                self.next += 1;
                let mailbox = &self.mailboxes[state.mailbox as usize];
                let message = message_of(&state, mailbox, bytes);
                self.importer.folder(store, &mailbox.name, std::slice::from_ref(&message))?;
            }
            Record::Ref(_) => return Err(RestoreError::Unexpected("a reference")),
            Record::End(_) => {
                self.prepare(store)?;
                self.finished = true;
            }
        }
        Ok(())
    }

    /// Makes the snapshot's missing mailboxes and adds its subscriptions, once, before the
    /// first message.
    fn prepare<D: Disk>(&mut self, store: &mut UserStore<D>) -> Result<(), RestoreError> {
        if self.prepared {
            return Ok(());
        }
        self.prepared = true;
        for mailbox in &self.mailboxes {
            if store.mailbox_id(&mailbox.name).is_some() {
                continue;
            }
            let name = mailbox.name.clone();
            // Only what a client could assign (`\All` and `\Flagged` are the server's own).
            let assignable = mailbox.special_use & SpecialUse::ASSIGNABLE.bits();
            let uses = SpecialUse::from_bits(assignable).unwrap_or_default();
            let id = store
                .create_mailbox_with_use(&name, uses)
                .map_err(|source| RestoreError::Mailbox { name: name.clone(), source })?;
            self.counts.mailboxes_created += 1;
            for (identifier, bits) in &mailbox.acl {
                if identifier.eq_ignore_ascii_case(&self.owner) {
                    continue; // the owner's entry is the target owner's own
                }
                let acl = |what: String| RestoreError::Acl { name: name.clone(), what };
                let who = Identifier::parse(identifier).map_err(|e| acl(e.to_string()))?;
                let rights =
                    Rights::from_bits(*bits).ok_or_else(|| acl("unknown rights".to_owned()))?;
                store
                    .set_acl(id, &who, RightsChange::Replace(rights))
                    .map_err(|e: AclError| acl(e.to_string()))?;
                self.counts.acl_entries_set += 1;
            }
        }
        for name in &self.subscriptions {
            if !store.is_subscribed(name) {
                store
                    .subscribe(name)
                    .map_err(|source| RestoreError::Mailbox { name: name.clone(), source })?;
                self.counts.subscriptions_added += 1;
            }
        }
        Ok(())
    }
}

/// The message to import for `state`, in `mailbox`, with `bytes`.
fn message_of(state: &MessageState, mailbox: &MailboxState, bytes: Vec<u8>) -> Message {
    let keywords = (0..64usize)
        .filter(|bit| state.keywords & (1u64 << bit) != 0)
        .filter_map(|bit| mailbox.keywords.get(bit).cloned())
        .collect();
    Message {
        bytes,
        system: SystemFlags(state.system & SystemFlags::ALL),
        keywords,
        date: Some(InternalDate {
            unix_seconds: state.date_unix_seconds,
            zone_minutes: state.zone_minutes,
        }),
        // UID 0: the message has no UID of its own (only a stream carries that, for `skua
        // import` into a running server): it gets the mailbox's next.
        uid: (state.uid != 0).then_some(state.uid),
    }
}
