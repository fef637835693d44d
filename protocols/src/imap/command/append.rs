//! APPEND (RFC 9051 §6.3.12) with UIDPLUS's `[APPENDUID]` (RFC 4315). The cache blob
//! (ENVELOPE, BODYSTRUCTURE, section offsets) is computed here, once, and stored beside the body.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::InternalDate;

use super::durable;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::Flag;

/// APPEND
pub(crate) fn append<D: Disk>(
    _conn: &mut Conn,
    store: &mut UserStore<D>,
    name: &str,
    flags: &[Flag],
    date: Option<InternalDate>,
    message: &[u8],
    out: &mut Out,
) -> Completion {
    let Some(id) = store.mailbox_id(name) else {
        return Completion::no("No such mailbox").with(Code::TryCreate);
    };
    let Some(info) = store.mailbox_info(id) else {
        return Completion::no("No such mailbox").with(Code::TryCreate);
    };
    if message.is_empty() {
        return Completion::no("Empty message").with(Code::Cannot);
    }
    let flags = match super::store::flags_for(store, id, flags) {
        Ok(flags) => flags,
        Err(completion) => return completion,
    };
    let cache = crate::mime::cache::build(message);
    match store.append(id, message, &cache, flags, date) {
        Ok((uid, _modseq)) => {
            durable(store, out);
            Completion::ok("APPEND completed").with(Code::AppendUid(info.uid_validity, uid))
        }
        Err(error) => {
            // A refused append cut the spool back; the NO waits until that is durable, so a
            // crash cannot revive a message the client was told was not stored.
            durable(store, out);
            reply::append(&error)
        }
    }
}
