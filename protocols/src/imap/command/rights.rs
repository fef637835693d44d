//! What the session may do on a mailbox of the store at hand (RFC 4314 §4): everything on its
//! own user's mailboxes, what the owner's ACL grants on another user's.

use skua_core::acl::Right;
use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::{Flags, FlagsOp, Keywords, MailboxId, SystemFlags, Uid};

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

    /// SELECT opens read-write only with a right that changes the mailbox.
    pub(crate) fn writable(self) -> bool {
        self.seen || self.write || self.insert || self.delete || self.expunge
    }

    /// STORE of `flags` with `op`: `\Seen` needs `s`, `\Deleted` `t`, any other flag `w`;
    /// replacing every flag needs all three. A STORE the rights do not cover is refused whole
    /// (`NO [NOPERM]`), never half done.
    pub(crate) fn may_store(self, op: FlagsOp, flags: &Flags) -> bool {
        let others = flags.system.0 & !(SystemFlags::SEEN | SystemFlags::DELETED) != 0
            || flags.keywords.0 != 0;
        match op {
            FlagsOp::Replace => self.seen && self.delete && self.write,
            _ => {
                (self.seen || !flags.system.contains(SystemFlags::SEEN))
                    && (self.delete || !flags.system.contains(SystemFlags::DELETED))
                    && (self.write || !others)
            }
        }
    }

    /// The system flags of `system` the session may set on a message it adds (APPEND, COPY
    /// into the mailbox): `\Seen` with `s`, `\Deleted` with `t`, the others with `w`. Flags
    /// without the right are dropped, not refused (RFC 4314 §4, APPEND and COPY).
    pub(crate) fn keep(self, system: SystemFlags) -> SystemFlags {
        let mut kept = system.0;
        if !self.seen {
            kept &= !SystemFlags::SEEN;
        }
        if !self.delete {
            kept &= !SystemFlags::DELETED;
        }
        if !self.write {
            kept &= SystemFlags::SEEN | SystemFlags::DELETED;
        }
        SystemFlags(kept)
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

/// The flags a message the session adds (APPEND, COPY/MOVE into the mailbox) starts with,
/// given the flags asked for and the session's `access`: what the rights do not cover is
/// dropped (`Access::keep`; keywords need `w`). On another user's mailbox `\Seen` is the
/// reader's own, so it is not among the message's flags: the second value says to set it in
/// the reader's set once the message is there ([`mark_seen_by_reader`]).
pub(crate) fn flags_to_add(conn: &Conn, access: Access, asked: Flags) -> (Flags, bool) {
    let mut system = access.keep(asked.system);
    let keywords = if access.write { asked.keywords } else { Keywords::default() };
    let reader_seen = conn.store_owner.is_some() && system.contains(SystemFlags::SEEN);
    if reader_seen {
        system = SystemFlags(system.0 & !SystemFlags::SEEN);
    }
    (Flags { system, keywords }, reader_seen)
}

/// Sets `\Seen` on `uids` of `mailbox` in the reader's set (see [`flags_to_add`]). The
/// messages are there whatever happens; a failure only loses the reader's `\Seen`.
pub(crate) fn mark_seen_by_reader<D: Disk>(
    store: &mut UserStore<D>,
    mailbox: MailboxId,
    uids: &[Uid],
) {
    if uids.is_empty() {
        return;
    }
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords::default() };
    if let Err(error) = store.store_flags(mailbox, uids, FlagsOp::Add, seen, None) {
        tracing::warn!(%error, "could not set the reader's \\Seen on added messages");
    }
}

/// The session's rights on mailbox `id` of the store at hand.
pub(crate) fn of<D: Disk>(conn: &Conn, store: &UserStore<D>, id: MailboxId) -> Access {
    if conn.store_owner.is_none() {
        return Access::ALL;
    }
    // Another user's mailbox: its ACL decides.
    let rights = store.rights_of(id, conn.user.as_deref().unwrap_or(""), true);
    Access {
        lookup: rights.has(Right::Lookup),
        read: rights.has(Right::Read),
        // `\Seen` here is the reader's own (the owner's `seen.log`, `UserStore::set_reader`).
        seen: rights.has(Right::Seen),
        write: rights.has(Right::Write),
        insert: rights.has(Right::Insert),
        delete: rights.has(Right::DeleteMessages),
        expunge: rights.has(Right::Expunge),
    }
}
