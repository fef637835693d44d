//! What migration into skua needs of the store (`skua import`, `src/import/`): keeping the
//! source's UIDs where the target allows it.

use super::UserStore;
use crate::disk::Disk;
use crate::types::{MailboxId, Uid};

impl<D: Disk> UserStore<D> {
    /// Makes the next message appended to mailbox `id` get UID `uid`, when no message of the
    /// mailbox ever had `uid` or a larger one (UIDs never go back); true when it will. Nothing
    /// is written: the UID is in the appended message's records, and the mailbox's UIDNEXT
    /// only ever grows, so a crash before the append leaves at most a gap in the UIDs.
    pub fn next_uid_at_least(&mut self, id: MailboxId, uid: Uid) -> bool {
        let Some(index) = self.indexes.get_mut(&id) else { return false };
        if uid.get() < index.uid_next() {
            return false;
        }
        if let Some(below) = uid.get().checked_sub(1).and_then(Uid::new) {
            index.raise_uid_next_past(below);
        }
        true
    }
}
