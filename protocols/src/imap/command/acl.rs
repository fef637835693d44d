//! GETACL, SETACL, DELETEACL, LISTRIGHTS and MYRIGHTS (RFC 4314, `ACL` and `RIGHTS=texk`),
//! and the `* MYRIGHTS` lines of LIST's `RETURN (MYRIGHTS)` (RFC 8440, LIST-MYRIGHTS).
//!
//! ACLs live in the user's store (`skua_core::store`, `mailboxes.log` acl records), so they
//! follow RENAME and vanish with DELETE. Every command here asks one function what the acting
//! user may do ([`rights`]): today every mailbox a session can name is its own user's, so the
//! acting user is the store's owner ([`acting_user`]), whose fixed rights (`l k x a`) make
//! every command here allowed; the shared-folder work calls the same function with another
//! user. What a user without the rights gets follows RFC 4314 §4 and §6: without `l` (and
//! without the right the command needs) the mailbox looks nonexistent, so its existence is not
//! revealed; with `l` but without `a`, GETACL/SETACL/DELETEACL/LISTRIGHTS answer NO.
//!
//! *The owner's fixed rights.* A SETACL or DELETEACL that would take `l k x a` from the
//! owner's own entry succeeds and the entry keeps them (RFC 4314 §2 lets a server tie rights
//! to an identifier; §3.1's NO is for a change that cannot be made at all), so GETACL shows
//! what is in effect; a negative entry for the owner never holds them. LISTRIGHTS names them
//! as the owner's required rights.

use skua_core::acl::{Identifier, Right, Rights, RightsChange};
use skua_core::disk::Disk;
use skua_core::store::{AclError, UserStore};
use skua_core::types::MailboxId;

use super::durable;
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;

/// The user the session acts as: the logged-in user on another user's store (a shared
/// folder), the store's owner on its own.
pub(crate) fn acting_user<'a, D: Disk>(conn: &'a Conn, store: &'a UserStore<D>) -> &'a str {
    match (&conn.store_owner, &conn.user) {
        (Some(_), Some(user)) => user,
        _ => store.owner(),
    }
}

/// The one rights check: what `user` (an authenticated session's user) may do in mailbox
/// `id` of `store` (RFC 4314 §2, the owner's fixed rights included).
pub(crate) fn rights<D: Disk>(store: &UserStore<D>, id: MailboxId, user: &str) -> Rights {
    store.rights_of(id, user, true)
}

/// What a command needs.
#[derive(Clone, Copy)]
enum Needs {
    /// `a` (GETACL, SETACL, DELETEACL, LISTRIGHTS).
    Administer,
    /// Any right at all (MYRIGHTS).
    Any,
}

/// The mailbox `name` and the acting user's rights in it, or the refusal: NONEXISTENT when
/// there is no such mailbox or the user may neither see it nor do what is asked (its
/// existence stays hidden, RFC 4314 §6), NO when they see it but lack the right.
fn allowed<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    name: &str,
    needs: Needs,
) -> Result<(MailboxId, Rights), Completion> {
    let nonexistent = || Completion::no("No such mailbox").with(Code::Nonexistent);
    let id = store.mailbox_id(super::route::local_name(conn, name)).ok_or_else(nonexistent)?;
    let rights = rights(store, id, acting_user(conn, store));
    let granted = match needs {
        Needs::Administer => rights.has(Right::Administer),
        Needs::Any => !rights.is_empty(),
    };
    match (granted, rights.has(Right::Lookup)) {
        (true, _) => Ok((id, rights)),
        (false, true) => Err(Completion::no("Permission denied").with(Code::NoPerm)),
        (false, false) => Err(nonexistent()),
    }
}

/// The mailbox's name as responses echo it: the store's canonical name for an own mailbox,
/// the client's name (with its namespace prefix) for another user's.
fn name_of<D: Disk>(conn: &Conn, store: &UserStore<D>, id: MailboxId, asked: &str) -> String {
    if conn.store_owner.is_some() {
        return asked.to_owned();
    }
    store.mailbox_info(id).map(|info| info.name).unwrap_or_default()
}

/// `GETACL mailbox`: `* ACL mailbox *(identifier rights)`, then OK.
pub(crate) fn get_acl<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    name: &str,
    out: &mut Out,
) -> Completion {
    let id = match allowed(conn, store, name, Needs::Administer) {
        Ok((id, _)) => id,
        Err(refusal) => return refusal,
    };
    let acl = match store.acl(id) {
        Ok(acl) => acl,
        Err(error) => return refused(error),
    };
    let b = out.buf();
    b.extend_from_slice(b"* ACL ");
    encode::mailbox(b, &name_of(conn, store, id, name), conn.enabled.utf8_names());
    for entry in acl.entries() {
        b.push(b' ');
        encode::astring(b, entry.identifier.to_string().as_bytes());
        b.push(b' ');
        encode::astring(b, entry.rights.to_string().as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    Completion::ok("GETACL completed")
}

/// `SETACL mailbox identifier mod-rights`; the reply waits for durability. A change that
/// gives another user a right first notes the grant in that user's store
/// (`acl_grant.rs`): the command then pauses and comes back.
pub(crate) fn set_acl<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    name: &str,
    identifier: &Identifier,
    change: RightsChange,
    out: &mut Out,
) -> super::Progress {
    let id = match allowed(conn, store, name, Needs::Administer) {
        Ok((id, _)) => id,
        Err(refusal) => return super::Progress::Done(refusal),
    };
    if let Some(task) = super::acl_grant::needed(conn, store, id, name, identifier, change) {
        return super::Progress::Paused(super::Task::Grant(task));
    }
    super::Progress::Done(change_acl(
        conn,
        store,
        name,
        identifier,
        change,
        out,
        "SETACL completed",
    ))
}

/// `DELETEACL mailbox identifier`: SETACL with no rights (RFC 4314 §3.2).
pub(crate) fn delete_acl<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    name: &str,
    identifier: &Identifier,
    out: &mut Out,
) -> Completion {
    let change = RightsChange::Replace(Rights::NONE);
    change_acl(conn, store, name, identifier, change, out, "DELETEACL completed")
}

/// SETACL or DELETEACL on the store at hand (checked again: a SETACL that visited the
/// grantee's store comes back here).
pub(crate) fn change_acl<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    name: &str,
    identifier: &Identifier,
    change: RightsChange,
    out: &mut Out,
    done: &'static str,
) -> Completion {
    let id = match allowed(conn, store, name, Needs::Administer) {
        Ok((id, _)) => id,
        Err(refusal) => return refusal,
    };
    match store.set_acl(id, identifier, change) {
        Ok(_) => {
            durable(store, out);
            Completion::ok(done)
        }
        Err(error) => refused(error),
    }
}

/// `LISTRIGHTS mailbox identifier`: the rights always granted to the identifier (the owner's
/// fixed ones; none for anyone else), then each right that may be granted on its own, then
/// the obsolete `c` and `d` whose members are not all required (RFC 4314 §2.1.1, §3.4).
pub(crate) fn list_rights<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    name: &str,
    identifier: &Identifier,
    spelled: &str,
    out: &mut Out,
) -> Completion {
    let id = match allowed(conn, store, name, Needs::Administer) {
        Ok((id, _)) => id,
        Err(refusal) => return refusal,
    };
    let required =
        if identifier.is_user(store.owner()) { Rights::OWNER_FIXED } else { Rights::NONE };
    let b = out.buf();
    b.extend_from_slice(b"* LISTRIGHTS ");
    encode::mailbox(b, &name_of(conn, store, id, name), conn.enabled.utf8_names());
    b.push(b' ');
    encode::astring(b, spelled.as_bytes());
    b.push(b' ');
    encode::astring(b, required.letters().as_bytes());
    for right in Rights::ALL.without(required).iter() {
        b.push(b' ');
        b.push(u8::try_from(right.letter()).expect("ASCII"));
    }
    for (letter, members) in [(b'c', Rights::CREATE), (b'd', Rights::DELETE)] {
        if !required.contains(members) {
            b.extend_from_slice(&[b' ', letter]);
        }
    }
    b.extend_from_slice(b"\r\n");
    Completion::ok("LISTRIGHTS completed")
}

/// `MYRIGHTS mailbox`: `* MYRIGHTS mailbox rights`, then OK.
pub(crate) fn my_rights<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    name: &str,
    out: &mut Out,
) -> Completion {
    let (id, rights) = match allowed(conn, store, name, Needs::Any) {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    write_my_rights(out.buf(), &name_of(conn, store, id, name), rights, conn.enabled.utf8_names());
    Completion::ok("MYRIGHTS completed")
}

/// A `* MYRIGHTS mailbox rights` line (MYRIGHTS, and LIST-MYRIGHTS after a LIST line).
pub(crate) fn write_my_rights(b: &mut Vec<u8>, name: &str, rights: Rights, utf8_names: bool) {
    b.extend_from_slice(b"* MYRIGHTS ");
    encode::mailbox(b, name, utf8_names);
    b.push(b' ');
    encode::astring(b, rights.to_string().as_bytes());
    b.extend_from_slice(b"\r\n");
}

/// LIST-MYRIGHTS (RFC 8440): the acting user's rights in mailbox `id`, when they have any.
pub(crate) fn write_for_list<D: Disk>(
    b: &mut Vec<u8>,
    store: &UserStore<D>,
    id: MailboxId,
    name: &str,
    utf8_names: bool,
) {
    let rights = rights(store, id, store.owner());
    if !rights.is_empty() {
        write_my_rights(b, name, rights, utf8_names);
    }
}

/// The reply for a store refusal.
fn refused(error: AclError) -> Completion {
    match error {
        AclError::NoSuchMailbox => Completion::no("No such mailbox").with(Code::Nonexistent),
        AclError::TooManyEntries => Completion::no("Too many ACL entries").with(Code::Limit),
        AclError::Storage(error) => reply::storage(&error),
    }
}
