//! Writing mail from elsewhere into a store: `skua import` (a Maildir tree, an mbox file,
//! another IMAP server) and `skua restore` (a backup archive, `restore.rs`), offline or on a
//! running server's home shard. It lives here, not in core, because an appended message needs
//! its cache blob and thread keys, which the MIME layer makes.
//!
//! - a folder becomes the mailbox of the same name (made when missing; `INBOX` is INBOX);
//! - a message keeps its source UID when the target mailbox never had that UID or a larger
//!   one (a new mailbox keeps every UID), else gets the next one;
//! - a message already in the target mailbox (the same bytes: SHA-256) is skipped, so running
//!   an import again changes nothing, and an interrupted one can simply be run again.

use std::collections::{HashMap, HashSet};

use skua_core::backup::{Digest, sha256};
use skua_core::disk::Disk;
use skua_core::error::{AppendError, KeywordError, MailboxError, ReadError};
use skua_core::store::{NewMessage, UserStore};
use skua_core::types::{Flags, InternalDate, Keywords, MailboxId, SystemFlags, Uid};

use crate::mime::cache::{build_with_keys, thread_keys};

/// One message to write.
#[derive(Debug)]
pub struct Message {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// System flags.
    pub system: SystemFlags,
    /// Keyword names.
    pub keywords: Vec<String>,
    /// INTERNALDATE (`None`: now, as the store gives it).
    pub date: Option<InternalDate>,
    /// The source's UID, when it has one.
    pub uid: Option<u32>,
}

/// The order a folder's messages are written in: source UIDs ascending (kept where they can
/// be), then the messages without one, as they came (a stable sort by this key).
#[must_use]
pub fn import_order(message: &Message) -> (u8, u32) {
    message.uid.map_or((1, 0), |uid| (0, uid))
}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Mailboxes made.
    pub mailboxes_created: usize,
    /// Messages written.
    pub messages_imported: usize,
    /// Already in the target (an earlier run): skipped.
    pub messages_skipped: usize,
    /// Written with their source UID.
    pub uids_kept: usize,
}

/// Why an import stopped (what was written before stays: running it again goes on).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A mailbox could not be made.
    #[error("creating mailbox {name}: {source}")]
    Mailbox {
        /// Its name.
        name: String,
        /// Why.
        source: MailboxError,
    },
    /// A message's keywords could not be defined.
    #[error("keywords in {name}: {source}")]
    Keywords {
        /// The mailbox.
        name: String,
        /// Why.
        source: KeywordError,
    },
    /// A message could not be appended.
    #[error("importing a message into {name}: {source}")]
    Append {
        /// The mailbox.
        name: String,
        /// Why.
        source: AppendError,
    },
    /// The target mailbox's messages could not be read (to skip those already there).
    #[error("reading {name}: {source}")]
    Read {
        /// The mailbox.
        name: String,
        /// Why.
        source: ReadError,
    },
}

/// Writes folders into a store (see the module docs), one folder or batch at a time. It
/// keeps no reference to the store, so a running server can lend it the store one step at a
/// time.
#[derive(Default)]
pub struct Importer {
    /// What was done so far.
    pub counts: ImportCounts,
    /// The digests of each mailbox written to, read once (not once per batch).
    present: HashMap<MailboxId, HashSet<Digest>>,
}

impl Importer {
    /// Imports `messages` into the mailbox `name` of `store` (made when missing).
    ///
    /// # Errors
    /// See [`ImportError`].
    pub fn folder<D: Disk>(
        &mut self,
        store: &mut UserStore<D>,
        name: &str,
        messages: &[Message],
    ) -> Result<(), ImportError> {
        let counts = &mut self.counts;
        let id = match store.mailbox_id(name) {
            Some(id) => id,
            None => {
                counts.mailboxes_created += 1;
                store
                    .create_mailbox(name)
                    .map_err(|source| ImportError::Mailbox { name: name.to_owned(), source })?
            }
        };
        let present = match self.present.entry(id) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => new.insert(
                digests_in(store, id)
                    .map_err(|source| ImportError::Read { name: name.to_owned(), source })?,
            ),
        };
        let mut messages: Vec<&Message> = messages.iter().collect();
        messages.sort_by_key(|m| import_order(m));
        for message in messages {
            if !present.insert(sha256(&message.bytes)) {
                counts.messages_skipped += 1;
                continue;
            }
            if let Some(uid) = message.uid.and_then(Uid::new)
                && store.next_uid_at_least(id, uid)
            {
                counts.uids_kept += 1;
            }
            append(store, id, name, message)?;
            counts.messages_imported += 1;
        }
        Ok(())
    }
}

/// Appends one message with its flags and keywords.
fn append<D: Disk>(
    store: &mut UserStore<D>,
    id: MailboxId,
    name: &str,
    message: &Message,
) -> Result<(), ImportError> {
    let names: Vec<&str> = message.keywords.iter().map(String::as_str).collect();
    let keywords = if names.is_empty() {
        Keywords::default()
    } else {
        store
            .keyword_bits(id, &names)
            .map_err(|source| ImportError::Keywords { name: name.to_owned(), source })?
    };
    let (cache, keys) = build_with_keys(&message.bytes);
    let new = NewMessage {
        message: &message.bytes,
        cache: &cache,
        flags: Flags { system: message.system, keywords },
        date: message.date,
        thread: thread_keys(&keys),
    };
    store
        .append_all(id, std::slice::from_ref(&new))
        .map_err(|source| ImportError::Append { name: name.to_owned(), source })?;
    Ok(())
}

/// The SHA-256 of every live message of mailbox `id`.
fn digests_in<D: Disk>(store: &UserStore<D>, id: MailboxId) -> Result<HashSet<Digest>, ReadError> {
    let mut digests = HashSet::new();
    for meta in store.messages(id)? {
        digests.insert(sha256(&store.body(id, meta.uid)?));
    }
    Ok(digests)
}
