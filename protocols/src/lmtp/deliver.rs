//! One user's copy: choose each recipient's mailbox, analyse the message for IMAP (the cache
//! blob) and append it once per distinct mailbox. Runs on the user's home shard, with the
//! user's store.

use skua_core::acl::Right;
use skua_core::disk::Disk;
use skua_core::error::{AppendError, StorageError};
use skua_core::store::UserStore;
use skua_core::types::{Flags, InternalDate, MailboxId, Uid};

use crate::lmtp::DeliveryFailure;
use crate::lmtp::delivery::Delivery;
use crate::mime;

/// Stores copy `copy` of `delivery` in the store of its user, dated `date` (the shard's clock
/// at delivery), with no flags: one message per distinct mailbox its targets choose
/// ([`target_mailbox`]), each starting with the trace header fields of the first target that
/// chose it (`Delivery::message_for`). Returns the new UIDs, one per mailbox.
///
/// A message whose Message-ID was delivered to the same mailbox within the server's
/// duplicate window (`core/src/store/duplicates.rs`) is not stored again: the earlier copy's
/// UID is the answer.
///
/// Computes each message's cache blob with [`mime::cache::build_with_keys`], whose
/// Message-IDs decide its THREADID in the store (CPU proportional to the message's header and
/// MIME structure; bounded by the MIME limits). The appends land in the disk's open epoch:
/// the caller must wait for the group commit before answering `250`.
///
/// # Errors
/// The [`DeliveryFailure`] to report for every recipient of the copy: `TooLarge` for a
/// message the store refuses by size, `OverQuota` for a mailbox that can take no more
/// messages, `StorageFull` for a full disk, `Temporary` for anything else. When the copy goes
/// to two mailboxes and the second append fails, the first stays stored and the whole copy is
/// reported failed (the MTA's retry may store that one again).
///
/// # Panics
/// If `copy` is not an index of `delivery.copies`.
pub fn deliver<D: Disk>(
    store: &mut UserStore<D>,
    delivery: &Delivery,
    copy: usize,
    date: InternalDate,
) -> Result<Vec<Uid>, DeliveryFailure> {
    let targets = &delivery.copies[copy].targets;
    let mut mailboxes: Vec<MailboxId> = Vec::with_capacity(1);
    let mut uids = Vec::with_capacity(1);
    for target in targets {
        let Some(mailbox) = target_mailbox(store, target.detail.as_deref()) else {
            return Err(DeliveryFailure::temporary("the store has no INBOX"));
        };
        if mailboxes.contains(&mailbox) {
            continue;
        }
        mailboxes.push(mailbox);
        let message = delivery.message_for(target, date);
        uids.push(append(store, mailbox, &message, date)?);
    }
    Ok(uids)
}

/// The mailbox a recipient's `+detail` delivers into: the user's mailbox of that name, or
/// INBOX (`None` only when the store has no INBOX).
///
/// The detail is a mailbox name with `/` as the hierarchy separator: the exact name first
/// (case-sensitive, except that `INBOX` is case-insensitive as in IMAP), then, when the
/// detail has a `.` and no `/`, with each `.` read as `/` (so `user+Lists.rust` reaches
/// `Lists/rust`, as addresses written for servers with a `.` separator expect). A detail is
/// only ever looked up among existing mailboxes: it never creates one and never becomes a
/// path. This is the one place the folder is chosen, and a folder other than INBOX is taken
/// only when its ACL lets anyone post to it (`p` for `anyone`, RFC 4314: the sender is not
/// authenticated), as the owner decides with SETACL.
pub fn target_mailbox<D: Disk>(store: &UserStore<D>, detail: Option<&str>) -> Option<MailboxId> {
    let inbox = store.mailbox_id("INBOX")?;
    let Some(detail) = detail else {
        return Some(inbox);
    };
    let exact = store.mailbox_id(detail);
    let dotted = || {
        let dots_as_separator = detail.contains('.') && !detail.contains('/');
        dots_as_separator.then(|| store.mailbox_id(&detail.replace('.', "/"))).flatten()
    };
    let may_post =
        |id: &MailboxId| *id == inbox || store.rights_of(*id, "", false).has(Right::Post);
    Some(exact.or_else(dotted).filter(may_post).unwrap_or(inbox))
}

/// Appends one message to `mailbox`.
fn append<D: Disk>(
    store: &mut UserStore<D>,
    mailbox: MailboxId,
    message: &[u8],
    date: InternalDate,
) -> Result<Uid, DeliveryFailure> {
    let (cache, keys) = mime::cache::build_with_keys(message);
    let (window, now) = (skua_core::store::duplicate_window_seconds(), date.unix_seconds);
    if let Some(uid) = store.duplicate_of(mailbox, &keys.message_id, now, window) {
        tracing::info!(uid = uid.get(), message_id = %keys.message_id, "duplicate suppressed");
        return Ok(uid);
    }
    let thread = mime::cache::thread_keys(&keys);
    match store.append_threaded(mailbox, message, &cache, thread, Flags::default(), Some(date)) {
        Ok((uid, _modseq)) => {
            store.duplicate_note(mailbox, &keys.message_id, uid, now, window);
            Ok(uid)
        }
        Err(error) => Err(failure_of(&error)),
    }
}

/// The per-recipient outcome of an append error.
fn failure_of(error: &AppendError) -> DeliveryFailure {
    match error {
        AppendError::TooLarge { .. } => DeliveryFailure::TooLarge,
        AppendError::MailboxFull | AppendError::OverQuota(_) => DeliveryFailure::OverQuota,
        AppendError::NoSuchMailbox => DeliveryFailure::temporary("mailbox vanished"),
        AppendError::Storage(storage) => storage_failure(storage),
    }
}

fn storage_failure(error: &StorageError) -> DeliveryFailure {
    if error.is_disk_full() {
        DeliveryFailure::StorageFull
    } else {
        DeliveryFailure::temporary(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn append_errors_map_to_recipient_failures() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        let broken = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(failure_of(&AppendError::TooLarge { size: 1 }), DeliveryFailure::TooLarge);
        assert_eq!(failure_of(&AppendError::MailboxFull), DeliveryFailure::OverQuota);
        assert!(matches!(failure_of(&AppendError::NoSuchMailbox), DeliveryFailure::Temporary(_)));
        let storage = AppendError::Storage(StorageError::io("spool", full));
        assert_eq!(failure_of(&storage), DeliveryFailure::StorageFull);
        let storage = AppendError::Storage(StorageError::io("spool", broken));
        assert!(matches!(failure_of(&storage), DeliveryFailure::Temporary(_)));
    }
}
