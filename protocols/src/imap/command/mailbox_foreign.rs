//! CREATE, DELETE and RENAME in another user's namespace (RFC 4314 §4): `k` on the parent to
//! create a mailbox below it, `x` on a mailbox to delete it, both to rename (`x` on the old
//! name, `k` on the new name's parent). The command runs on the owner's store (`route.rs`);
//! the owner's top level and INBOX stay the owner's (`NO [NOPERM]`).
//!
//! A mailbox made this way takes its parent's ACL (every entry but the owner's own, which is
//! the owner's default): whoever could work in the parent can work in the child. The create
//! and the ACL entries are separate log records, so a crash between them leaves the new
//! mailbox with the default ACL, the owner's alone: less access, never more.

use skua_core::acl::{Right, RightsChange};
use skua_core::disk::Disk;
use skua_core::store::{SpecialUse, UserStore};
use skua_core::types::MailboxId;

use super::Progress;
use super::slice::Slice;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;

/// `right` on mailbox `name` of the store at hand for the session's user, or the refusal (a
/// mailbox the user may not see does not exist for them).
fn needs<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    name: &str,
    right: Right,
) -> Result<MailboxId, Completion> {
    let nonexistent = || Completion::no("No such mailbox").with(Code::Nonexistent);
    let id = store.mailbox_id(name).ok_or_else(nonexistent)?;
    let rights = super::acl::rights(store, id, conn.user.as_deref().unwrap_or(""));
    match (rights.has(right), rights.has(Right::Lookup)) {
        (true, _) => Ok(id),
        (false, true) => Err(Completion::no("Permission denied").with(Code::NoPerm)),
        (false, false) => Err(nonexistent()),
    }
}

/// The parent of `local` (a name in the owner's store), with `k` on it.
fn parent_allowing_create<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    local: &str,
) -> Result<MailboxId, Completion> {
    match local.rsplit_once(super::list::SEPARATOR) {
        Some((parent, _)) if !parent.is_empty() => needs(conn, store, parent, Right::CreateMailbox),
        _ => Err(Completion::no("Only the owner makes top-level mailboxes").with(Code::NoPerm)),
    }
}

/// The owner's mailbox name of the client's `name`, without a trailing separator.
fn local<'a>(conn: &Conn, name: &'a str) -> &'a str {
    super::mailbox::trim_separator(super::route::local_name(conn, name))
}

/// CREATE in another user's namespace.
pub(crate) fn create<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    name: &str,
    out: &mut Out,
) -> Completion {
    let local = local(conn, name);
    let parent = match parent_allowing_create(conn, store, local) {
        Ok(parent) => parent,
        Err(refusal) => return refusal,
    };
    let id = match store.create_mailbox_with_use(local, SpecialUse::NONE) {
        Ok(id) => id,
        Err(error) => return reply::mailbox(&error),
    };
    let owner = store.owner().to_owned();
    let inherited = store.acl(parent).map(|acl| acl.entries().to_vec()).unwrap_or_default();
    for entry in inherited.iter().filter(|e| e.identifier.to_string() != owner) {
        let change = RightsChange::Replace(entry.rights);
        if let Err(error) = store.set_acl(id, &entry.identifier, change) {
            // The mailbox is there with fewer entries than its parent: less access, not more.
            tracing::warn!(%error, "a new mailbox did not take its parent's ACL whole");
            break;
        }
    }
    super::mailbox::created(store, id, out)
}

/// DELETE in another user's namespace.
pub(crate) fn delete<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    name: &str,
    out: &mut Out,
) -> Completion {
    let local = local(conn, name);
    if local.eq_ignore_ascii_case("INBOX") {
        return Completion::no("Only the owner deletes INBOX").with(Code::NoPerm);
    }
    if let Err(refusal) = needs(conn, store, local, Right::DeleteMailbox) {
        return refusal;
    }
    super::mailbox::delete(conn, store, local, out)
}

/// RENAME within another user's namespace.
pub(crate) fn rename<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    old: &str,
    new: &str,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let (old, new) = (local(conn, old), local(conn, new));
    if old.eq_ignore_ascii_case("INBOX") {
        return Progress::Done(Completion::no("Only the owner renames INBOX").with(Code::NoPerm));
    }
    if let Err(refusal) = needs(conn, store, old, Right::DeleteMailbox)
        .and_then(|_| parent_allowing_create(conn, store, new))
    {
        return Progress::Done(refusal);
    }
    super::mailbox::rename(store, old, new, out, slice)
}
