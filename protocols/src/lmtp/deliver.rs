//! One recipient's copy: analyse the message once for IMAP (the cache blob) and append it to
//! the user's INBOX. Runs on the user's home shard, with the user's store.

use skua_core::disk::Disk;
use skua_core::error::{AppendError, StorageError};
use skua_core::store::UserStore;
use skua_core::types::{Flags, InternalDate, Uid};

use crate::lmtp::DeliveryFailure;
use crate::mime;

/// Stores `message` (exactly these bytes: the session already prepended `Return-Path:`) in
/// the INBOX of `store`, dated `date` (the shard's clock at delivery), with no flags.
///
/// A message whose Message-ID was delivered to the same mailbox within the server's
/// duplicate window (`core/src/store/duplicates.rs`) is not stored again: the earlier copy's
/// UID is the answer.
///
/// Computes the cache blob with [`mime::cache::build_with_keys`], whose Message-IDs decide the
/// message's THREADID in the store (CPU proportional to the message's
/// header and MIME structure; bounded by the MIME limits). The append lands in the disk's
/// open epoch: the caller must wait for the group commit before answering `250`.
///
/// # Errors
/// The [`DeliveryFailure`] to report for this recipient: `TooLarge` for a message the store
/// refuses by size, `OverQuota` for a mailbox that can take no more messages, `StorageFull`
/// for a full disk, `Temporary` for anything else.
pub fn deliver<D: Disk>(
    store: &mut UserStore<D>,
    message: &[u8],
    date: InternalDate,
) -> Result<Uid, DeliveryFailure> {
    let Some(inbox) = store.mailbox_id("INBOX") else {
        return Err(DeliveryFailure::temporary("the store has no INBOX"));
    };
    let (cache, keys) = mime::cache::build_with_keys(message);
    let (window, now) = (skua_core::store::duplicate_window_seconds(), date.unix_seconds);
    if let Some(uid) = store.duplicate_of(inbox, &keys.message_id, now, window) {
        tracing::info!(uid = uid.get(), message_id = %keys.message_id, "duplicate suppressed");
        return Ok(uid);
    }
    let thread = mime::cache::thread_keys(&keys);
    match store.append_threaded(inbox, message, &cache, thread, Flags::default(), Some(date)) {
        Ok((uid, _modseq)) => {
            store.duplicate_note(inbox, &keys.message_id, uid, now, window);
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
        AppendError::NoSuchMailbox => DeliveryFailure::temporary("INBOX vanished"),
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
