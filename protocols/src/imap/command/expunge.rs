//! EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9): removes `\Deleted` messages (those in
//! the UID set, for UID EXPUNGE) and reports each with `* n EXPUNGE`.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::{SystemFlags, Uid};

use super::{durable, view};
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::SequenceSet;

/// EXPUNGE (`uids == None`) or UID EXPUNGE.
pub(crate) fn expunge<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    uids: Option<&SequenceSet>,
    out: &mut Out,
) -> Completion {
    let selected = view(conn);
    if selected.read_only {
        return Completion::no("Mailbox is read-only").with(Code::ReadOnly);
    }
    let mailbox = selected.mailbox;
    let messages = match store.messages(mailbox) {
        Ok(messages) => messages,
        Err(error) => return reply::read(&error),
    };
    let largest = selected.uids().last().map_or(0, |u| u.get());
    let doomed: Vec<Uid> = messages
        .iter()
        .filter(|m| m.flags.system.contains(SystemFlags::DELETED))
        .filter(|m| selected.msn_of(m.uid).is_some())
        .filter(|m| uids.is_none_or(|set| set.contains(m.uid.get(), largest)))
        .map(|m| m.uid)
        .collect();
    if !doomed.is_empty() {
        if let Err(error) = store.expunge(mailbox, &doomed) {
            return reply::update(&error);
        }
        durable(store, out);
        view(conn).expunged_by_self(&doomed, out.buf());
    }
    Completion::ok("EXPUNGE completed")
}
