//! SETACL keeps the grantee's grant index (`skua_core::store` `grants.rs`): before bob's ACL
//! gives alice a right, alice's store notes "bob", durably, so a LIST across every user
//! (`list_across.rs`) finds bob's mailboxes from alice's own store.
//!
//! ```text
//!  bob's store (the ACL)       alice's store (the index)
//!  check `a`, compute  ──────► note_grant("bob"), durable
//!  set the entry, OK   ◄──────
//! ```
//!
//! Like COPY between users (`transfer.rs`), the command pauses naming the store its next step
//! needs; the shard carries the session there. The order makes the index a superset of the
//! grants after any crash: the note is durable before the acl record is written. A grantee
//! who is no user gets no note (the shard answers that the store does not exist, and the
//! SETACL goes on: an identifier need not name an existing user, RFC 4314 §2). Nothing is
//! noted for `anyone`, `authenticated`, negative entries, the owner, or a change that leaves
//! the entry empty.

use skua_core::acl::{Identifier, RightsChange, Who};
use skua_core::disk::Disk;
use skua_core::store::{Noted, UserStore};

use super::{Progress, Task, durable};
use crate::imap::reply::{self, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;

/// A SETACL waiting for (or back from) the grantee's store.
#[derive(Debug)]
pub(crate) struct GrantTask {
    /// The mailbox as the client named it.
    pub(crate) name: String,
    pub(crate) identifier: Identifier,
    pub(crate) change: RightsChange,
    /// The store the ACL is in (`None`: the session's own).
    owner: Option<String>,
    /// The ACL's owner's user name: what the grantee's index notes.
    grantor: String,
    /// The grantee's store (`None`: the session's own user's).
    grantee: Option<String>,
    /// The note is durable (or none is needed): the ACL may change.
    pub(crate) noted: bool,
}

impl GrantTask {
    /// The owner of the store the next step runs on (`None`: the session's own).
    pub(crate) fn next_owner(&self) -> Option<String> {
        if self.noted { self.owner.clone() } else { self.grantee.clone() }
    }

    /// The grantee's store does not exist: there is nothing to index, the SETACL goes on.
    pub(crate) fn grantee_missing(&mut self) {
        self.noted = true;
    }
}

/// The grant note a SETACL on the store at hand needs first, if any: `identifier` a user
/// other than the mailbox's owner, and the change leaving them some right.
pub(crate) fn needed<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    id: skua_core::types::MailboxId,
    name: &str,
    identifier: &Identifier,
    change: RightsChange,
) -> Option<GrantTask> {
    let Who::User(grantee) = &identifier.who else { return None };
    if identifier.negative || grantee.eq_ignore_ascii_case(store.owner()) {
        return None;
    }
    let current = store.acl(id).ok()?.get(identifier);
    if change.apply(current).is_empty() {
        return None;
    }
    let grantor = conn.store_owner.clone().or_else(|| conn.user.clone())?;
    let own = conn.user.as_deref().is_some_and(|user| user.eq_ignore_ascii_case(grantee));
    Some(GrantTask {
        name: name.to_owned(),
        identifier: identifier.clone(),
        change,
        owner: conn.store_owner.clone(),
        grantor,
        grantee: (!own).then(|| grantee.clone()),
        noted: false,
    })
}

/// On the grantee's store: notes the grantor, then goes back to the ACL's store.
pub(crate) fn note<D: Disk>(
    store: &mut UserStore<D>,
    mut task: GrantTask,
    out: &mut Out,
) -> Progress {
    match store.note_grant(&task.grantor) {
        // The step's output (nothing but the ticket) waits for the round that makes it
        // durable before the session leaves this store.
        Ok(Noted::New) => durable(store, out),
        Ok(Noted::Known) => {}
        Ok(Noted::Refused) => {
            tracing::info!(grantor = task.grantor, "grant index full: not noted");
        }
        Err(error) => return Progress::Done(reply::storage(&error)),
    }
    task.noted = true;
    Progress::Paused(Task::Grant(task))
}

/// The grant note is done: the SETACL itself, on the ACL's store.
pub(crate) fn finish<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    task: &GrantTask,
    out: &mut Out,
) -> Completion {
    let (name, identifier) = (&task.name, &task.identifier);
    super::acl::change_acl(conn, store, name, identifier, task.change, out, "SETACL completed")
}
