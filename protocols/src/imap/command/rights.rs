//! What the session may do on a mailbox of the store at hand (RFC 4314 §4): everything on its
//! own user's mailboxes, what the owner's ACL grants on another user's.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::MailboxId;

use crate::imap::reply::{Code, Completion};
use crate::imap::session::Conn;

/// The rights that decide IMAP commands, from the mailbox's ACL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    /// `l`: the mailbox is visible.
    pub lookup: bool,
    /// `r`: SELECT, EXAMINE, STATUS, FETCH, SEARCH, COPY from.
    pub read: bool,
    /// `s`: keep `\Seen`.
    pub seen: bool,
    /// `w`: flags other than `\Seen` and `\Deleted`.
    pub write: bool,
    /// `i`: APPEND, COPY into.
    pub insert: bool,
    /// `t`: `\Deleted`.
    pub delete: bool,
    /// `e`: EXPUNGE.
    pub expunge: bool,
}

impl Access {
    /// Everything (the owner).
    pub(crate) const ALL: Access = Access {
        lookup: true,
        read: true,
        seen: true,
        write: true,
        insert: true,
        delete: true,
        expunge: true,
    };

    /// Nothing.
    pub(crate) const NONE: Access = Access {
        lookup: false,
        read: false,
        seen: false,
        write: false,
        insert: false,
        delete: false,
        expunge: false,
    };

    /// SELECT opens read-write only with a right that changes the mailbox.
    pub(crate) fn writable(self) -> bool {
        self.seen || self.write || self.insert || self.delete || self.expunge
    }

    /// The refusal for a missing right: a mailbox the user may not even see does not exist
    /// for them (RFC 4314 §4), one they may see says NOPERM.
    pub(crate) fn refusal(self) -> Completion {
        if self.lookup {
            Completion::no("Permission denied").with(Code::NoPerm)
        } else {
            Completion::no("No such mailbox").with(Code::Nonexistent)
        }
    }
}

/// The session's rights on mailbox `id` of the store at hand.
pub(crate) fn of<D: Disk>(conn: &Conn, store: &UserStore<D>, id: MailboxId) -> Access {
    if conn.store_owner.is_none() {
        return Access::ALL;
    }
    // Another user's mailbox: its ACL decides (wired when ACLs land; until then nothing).
    let _ = (store, id);
    Access::NONE
}
