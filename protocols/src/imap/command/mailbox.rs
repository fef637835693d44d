//! CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE and STATUS (RFC 9051 §6.3.4-6.3.11).
//! Name rules (INBOX, hierarchy, renaming INBOX) live in the store; this maps outcomes.

use skua_core::disk::Disk;
use skua_core::store::{MailboxInfo, Renamed, SpecialUse, UserStore};
use skua_core::types::MailboxId;

use super::rename_inbox::RenameInboxTask;
use super::slice::Slice;
use super::{Progress, durable};
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::StatusAttribute;

/// A name without the trailing hierarchy separator RFC 9051 §6.3.4 lets CREATE carry.
pub(crate) fn trim_separator(name: &str) -> &str {
    let trimmed = name.trim_end_matches('/');
    if trimmed.is_empty() { name } else { trimmed }
}

/// CREATE, and CREATE with `USE (...)` (CREATE-SPECIAL-USE, RFC 6154 §3): an attribute
/// skua does not know, or one it never gives (`\All` and `\Flagged` describe virtual
/// mailboxes), is refused with `NO [USEATTR]` and nothing is created.
pub(crate) fn create<D: Disk>(
    store: &mut UserStore<D>,
    name: &str,
    uses: &[String],
    out: &mut Out,
) -> Completion {
    let mut set = SpecialUse::NONE;
    for attribute in uses {
        match SpecialUse::from_name(attribute) {
            Some(one) if SpecialUse::ASSIGNABLE.contains(one) => set = set.union(one),
            Some(_) => {
                let text = format!("{attribute} is not given to real mailboxes");
                return Completion::no(text).with(Code::UseAttr);
            }
            None => {
                let text = format!("Unknown special-use attribute {attribute}");
                return Completion::no(text).with(Code::UseAttr);
            }
        }
    }
    match store.create_mailbox_with_use(trim_separator(name), set) {
        Ok(id) => created(store, id, out),
        Err(error) => reply::mailbox(&error),
    }
}

/// CREATE's OK for the new mailbox `id`, once durable: RFC 8474 §4.1's tagged OK carries the
/// new mailbox's MAILBOXID.
pub(crate) fn created<D: Disk>(store: &UserStore<D>, id: MailboxId, out: &mut Out) -> Completion {
    durable(store, out);
    let done = Completion::ok("CREATE completed");
    match store.mailbox_info(id) {
        Some(info) => done.with(Code::MailboxId(super::objectid::mailbox_id(&info))),
        None => done,
    }
}

/// DELETE. Deleting the selected mailbox deselects it.
pub(crate) fn delete<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    name: &str,
    out: &mut Out,
) -> Completion {
    let id = store.mailbox_id(name);
    match store.delete_mailbox(name) {
        Ok(()) => {
            if id.is_some() && conn.selected.as_ref().map(|v| v.mailbox) == id {
                conn.selected = None;
                out.put(b"* OK [CLOSED] Selected mailbox deleted\r\n");
            }
            durable(store, out);
            Completion::ok("DELETE completed")
        }
        Err(error) => reply::mailbox(&error),
    }
}

/// RENAME. Renaming INBOX moves its messages, in slices (`rename_inbox.rs`).
pub(crate) fn rename<D: Disk>(
    store: &mut UserStore<D>,
    old: &str,
    new: &str,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    match store.rename_mailbox(old, trim_separator(new)) {
        Ok(Renamed::Done) => {
            durable(store, out);
            Progress::Done(Completion::ok("RENAME completed"))
        }
        Ok(Renamed::Inbox(job)) => {
            durable(store, out);
            super::rename_inbox::resume(RenameInboxTask::new(job), store, out, slice)
        }
        Err(error) => Progress::Done(reply::mailbox(&error)),
    }
}

/// SUBSCRIBE (`on`) / UNSUBSCRIBE
pub(crate) fn subscribe<D: Disk>(
    store: &mut UserStore<D>,
    name: &str,
    on: bool,
    out: &mut Out,
) -> Completion {
    let result = if on { store.subscribe(name) } else { store.unsubscribe(name) };
    match result {
        Ok(()) => {
            durable(store, out);
            Completion::ok(if on { "SUBSCRIBE completed" } else { "UNSUBSCRIBE completed" })
        }
        Err(error) => reply::mailbox(&error),
    }
}

/// Writes `* STATUS name (...)` for `info`'s mailbox (STATUS, and LIST's `RETURN (STATUS)`).
/// `own_recent`: the asking session's own `\Recent` messages in it, if it has it selected.
/// `append_limit`: `APPENDLIMIT` (RFC 7889), the same for every mailbox here.
pub(crate) fn write_status<D: Disk>(
    b: &mut Vec<u8>,
    store: &UserStore<D>,
    info: &MailboxInfo,
    attributes: &[StatusAttribute],
    own_recent: u64,
    utf8_names: bool,
    append_limit: u64,
) {
    // Counting the unclaimed messages walks them (O(unclaimed)): only when RECENT is asked.
    let recent = if attributes.contains(&StatusAttribute::Recent) {
        let unclaimed = store.unclaimed_recent(info.id).map_or(0, |(_, count)| count);
        u64::from(unclaimed) + own_recent
    } else {
        0
    };
    b.extend_from_slice(b"* STATUS ");
    encode::mailbox(b, &info.name, utf8_names);
    b.extend_from_slice(b" (");
    for (i, attribute) in attributes.iter().enumerate() {
        if i > 0 {
            b.push(b' ');
        }
        let (label, value) = match attribute {
            StatusAttribute::Messages => ("MESSAGES", u64::from(info.messages)),
            StatusAttribute::UidNext => ("UIDNEXT", u64::from(info.uid_next.get())),
            StatusAttribute::UidValidity => ("UIDVALIDITY", u64::from(info.uid_validity.get())),
            StatusAttribute::Unseen => ("UNSEEN", u64::from(info.unseen)),
            StatusAttribute::Deleted => ("DELETED", u64::from(info.deleted)),
            StatusAttribute::Size => ("SIZE", info.size),
            StatusAttribute::Recent => ("RECENT", recent),
            StatusAttribute::HighestModSeq => ("HIGHESTMODSEQ", info.highest_modseq.0),
            StatusAttribute::AppendLimit => ("APPENDLIMIT", append_limit),
            StatusAttribute::DeletedStorage => {
                // RFC 9208 §4.2, in the STORAGE resource's units (1024 octets, rounded up).
                let bytes = store.deleted_storage_bytes(info.id).unwrap_or(0);
                ("DELETED-STORAGE", bytes.div_ceil(1024))
            }
            StatusAttribute::MailboxId => {
                // RFC 8474 §4.3: `MAILBOXID (objectid)`
                b.extend_from_slice(b"MAILBOXID (");
                b.extend_from_slice(super::objectid::mailbox_id(info).as_bytes());
                b.push(b')');
                continue;
            }
        };
        b.extend_from_slice(label.as_bytes());
        b.push(b' ');
        encode::number(b, value);
    }
    b.extend_from_slice(b")\r\n");
}

/// STATUS
pub(crate) fn status<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    name: &str,
    attributes: &[StatusAttribute],
    out: &mut Out,
) -> Completion {
    if attributes.contains(&StatusAttribute::HighestModSeq) {
        if !conn.config.condstore {
            return Completion::bad("HIGHESTMODSEQ needs CONDSTORE");
        }
        // A CONDSTORE enabling command (RFC 7162 §3.1).
        super::enable_condstore(conn, out);
    }
    let local = super::route::local_name(conn, name);
    let Some(mut info) = store.mailbox_id(local).and_then(|id| store.mailbox_info(id)) else {
        return Completion::no("No such mailbox").with(Code::Nonexistent);
    };
    let access = super::rights::of(conn, store, info.id);
    if !access.read {
        return access.refusal();
    }
    if conn.store_owner.is_some() {
        // Answered under the name the client used.
        name.clone_into(&mut info.name);
    }
    // \Recent: the messages no session has been told of, and this session's own when the
    // mailbox is the one it has selected.
    let own = conn.selected.as_ref().filter(|view| view.mailbox == info.id);
    let own_recent = own.map_or(0, |view| view.recent_count() as u64);
    let append_limit = super::append::append_limit(conn);
    write_status(
        out.buf(),
        store,
        &info,
        attributes,
        own_recent,
        conn.enabled.utf8_names(),
        append_limit,
    );
    Completion::ok("STATUS completed")
}
