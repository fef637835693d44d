//! Which user's store a command runs on (shared folders, `namespace.rs`).
//!
//! A session is given one store per `next()`: its own user's on its home shard, or, while a
//! command on another user's mailbox runs, that user's store on the user's home shard (the
//! shard carries the session there: `Step::Elsewhere`). Before a command runs, [`route`] says
//! whether the store at hand is the right one; if not, the command waits, unrun, and the
//! session asks for the store it needs. So one command costs one trip to the owner's shard,
//! and the store a command sees is always the one its names and mailbox ids belong to.
//!
//! What runs where:
//! - SELECT, EXAMINE, STATUS, APPEND and the ACL commands: the store of the mailbox they name.
//! - Commands on the selected mailbox (FETCH, STORE, SEARCH, SORT, THREAD, EXPUNGE, COPY,
//!   MOVE, CLOSE, UNSELECT, IDLE, NOOP, CANCELUPDATE): the selected mailbox's store.
//! - COPY/MOVE into another user's store than the source's start on the source's store and
//!   travel between the two (`transfer.rs`).
//! - CREATE, DELETE and RENAME: the store of the mailbox they name (`mailbox_foreign.rs`
//!   checks `k` and `x`); RENAME between two users' stores is refused (`[NOPERM]`), as are
//!   CREATE with special-use attributes, METADATA and RESETKEY on another user's mailboxes.
//! - Everything else (LIST, LSUB, SUBSCRIBE, ENABLE, NAMESPACE, NOTIFY, ...): the own store.

use crate::imap::namespace::Place;
use crate::imap::reply::{Code, Completion};
use crate::imap::session::Conn;
use crate::imap::types::CommandBody;

/// Where a command must run.
#[derive(Debug)]
pub(crate) enum Route {
    /// On the store at hand.
    Here,
    /// On this user's store (`None`: the session's own user).
    Elsewhere(Option<String>),
    /// Not at all: answer this.
    Refuse(Completion),
}

/// Whose store `body` needs, compared with the store at hand (`conn.store_owner`).
pub(crate) fn route(conn: &Conn, body: &CommandBody) -> Route {
    let needed = match needed_owner(conn, body) {
        Ok(needed) => needed,
        Err(refusal) => return Route::Refuse(refusal),
    };
    if same_owner(needed.as_deref(), conn.store_owner.as_deref()) {
        Route::Here
    } else {
        Route::Elsewhere(needed)
    }
}

/// True when two store owners (`None`: the session's own user) are the same user.
pub(crate) fn same_owner(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// The owner of the store `body` needs (`None`: own), or why it cannot run.
fn needed_owner(conn: &Conn, body: &CommandBody) -> Result<Option<String>, Completion> {
    let selected =
        || conn.selected.as_ref().or(conn.parked.as_ref()).and_then(|view| view.owner.as_deref());
    let named = |name| owner_of_name(conn, name).map(|owner| owner.map(str::to_owned));
    let own_only = |name| own_only(conn, name).map(|owner| owner.map(str::to_owned));
    Ok(match body {
        CommandBody::Select { mailbox, .. }
        | CommandBody::Examine { mailbox, .. }
        | CommandBody::Status { mailbox, .. }
        | CommandBody::Append { mailbox, .. }
        | CommandBody::GetAcl(mailbox)
        | CommandBody::SetAcl { mailbox, .. }
        | CommandBody::DeleteAcl { mailbox, .. }
        | CommandBody::ListRights { mailbox, .. }
        | CommandBody::MyRights(mailbox) => named(mailbox)?,
        CommandBody::Create(name) | CommandBody::Delete(name) => managed(conn, name)?,
        CommandBody::CreateSpecialUse { mailbox, .. } => own_only(mailbox)?,
        CommandBody::Rename(old, new) => {
            let owner = managed(conn, old)?;
            if !same_owner(owner.as_deref(), managed(conn, new)?.as_deref()) {
                return Err(
                    Completion::no("Not permitted between users' namespaces").with(Code::NoPerm)
                );
            }
            owner
        }
        CommandBody::GetMetadata { mailbox, .. } | CommandBody::SetMetadata { mailbox, .. } => {
            own_only(mailbox)?
        }
        CommandBody::ResetKey { mailbox: Some(mailbox), .. } => own_only(mailbox)?,
        CommandBody::List { reference, patterns, .. } => list_owner(conn, reference, patterns),
        CommandBody::GetQuota(root) | CommandBody::SetQuota { root, .. } => quota_owner(conn, root),
        CommandBody::Lsub { reference, pattern } => {
            list_owner(conn, reference, std::slice::from_ref(pattern))
        }
        CommandBody::Fetch { .. }
        | CommandBody::Store { .. }
        | CommandBody::Copy { .. }
        | CommandBody::Move { .. }
        | CommandBody::Search { .. }
        | CommandBody::Sort { .. }
        | CommandBody::Thread { .. }
        | CommandBody::Expunge { .. }
        | CommandBody::Close
        | CommandBody::Unselect
        | CommandBody::Idle
        | CommandBody::Noop
        | CommandBody::CancelUpdate(_) => selected().map(str::to_owned),
        _ => None,
    })
}

/// The owner a LIST is about: another user when every pattern (with the reference) lies
/// inside that one user's namespace (`Other Users/bob/...`, `Shared/...`), else the own
/// store. A wildcard in the user's place (`Other Users/*`) names no one user: listing every
/// user's shared mailboxes at once needs an index of grants (not yet), so such a LIST lists
/// the own store, where nothing lives under the prefix.
fn list_owner(conn: &Conn, reference: &str, patterns: &[String]) -> Option<String> {
    let user = conn.user.as_deref().unwrap_or("");
    let mut owner: Option<String> = None;
    for pattern in patterns {
        let full = format!("{reference}{pattern}");
        let found = match conn.config.namespaces.place(user, &full) {
            Place::Foreign { owner, .. } if !owner.contains(['*', '%']) => owner.to_owned(),
            _ => return None,
        };
        match &owner {
            Some(seen) if !seen.eq_ignore_ascii_case(&found) => return None,
            _ => owner = Some(found),
        }
    }
    owner
}

/// An administrator's GETQUOTA/SETQUOTA of another user's root (named by the user) runs on
/// that user's store; every other quota root is the own store's (`command/quota.rs`).
fn quota_owner(conn: &Conn, root: &str) -> Option<String> {
    let own = conn.user.as_deref().is_some_and(|user| user.eq_ignore_ascii_case(root));
    (conn.admin && !root.is_empty() && !own).then(|| root.to_owned())
}

/// The owner of the store a named mailbox is in (`None`: the session's own).
pub(crate) fn owner_of_name<'a>(
    conn: &'a Conn,
    name: &'a str,
) -> Result<Option<&'a str>, Completion> {
    match conn.config.namespaces.place(conn.user.as_deref().unwrap_or(""), name) {
        Place::Own(_) => Ok(None),
        Place::Foreign { owner, .. } => Ok(Some(owner)),
        Place::Root => Err(Completion::no("Not a mailbox").with(Code::Nonexistent)),
    }
}

/// CREATE, DELETE, RENAME: the owner of the store a name is in, where a name in another
/// user's namespace runs on that user's store (with its rights), and the session's own names
/// only in their plain spelling ([`own_only`]).
fn managed(conn: &Conn, name: &str) -> Result<Option<String>, Completion> {
    match owner_of_name(conn, name)? {
        Some(owner) if !owner.eq_ignore_ascii_case(conn.user.as_deref().unwrap_or("")) => {
            Ok(Some(owner.to_owned()))
        }
        _ => own_only(conn, name).map(|owner| owner.map(str::to_owned)),
    }
}

/// Commands that only work on the session's own mailboxes.
/// Names inside the other namespaces (even the session's own `Other Users/<self>/...`
/// spelling) are refused, so no mailbox of the personal namespace ever shadows them.
fn own_only<'a>(conn: &'a Conn, name: &'a str) -> Result<Option<&'a str>, Completion> {
    match owner_of_name(conn, name)? {
        None if local_name(conn, name).len() == name.len() => Ok(None),
        _ => Err(Completion::no("Not permitted in another user's namespace").with(Code::NoPerm)),
    }
}

/// The name of `name` inside the store at hand: the part after the owner's prefix when the
/// store is another user's, else the name itself.
pub(crate) fn local_name<'a>(conn: &Conn, name: &'a str) -> &'a str {
    let local_len = match conn.config.namespaces.place(conn.user.as_deref().unwrap_or(""), name) {
        Place::Own(local) | Place::Foreign { name: local, .. } => local.len(),
        Place::Root => name.len(),
    };
    // The local name is always the end of the client's name.
    &name[name.len() - local_len..]
}
