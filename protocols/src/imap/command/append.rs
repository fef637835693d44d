//! APPEND (RFC 9051 §6.3.12) with UIDPLUS's `[APPENDUID]` (RFC 4315), MULTIAPPEND (RFC 3502:
//! several messages, all or none), literal8 messages (RFC 3516 §4.4: stored as sent, NUL
//! included), APPENDLIMIT (RFC 7889) and CATENATE (RFC 4469, `catenate.rs`). The cache blob
//! (ENVELOPE, BODYSTRUCTURE, section offsets) is computed here, once per message, and stored
//! beside the body.
//!
//! RFC 6855's `UTF8 (literal8)` data item: `utf8.rs` (8-bit header fields are stored as sent
//! in every session: see there).
//!
//! literal8 needs no `[UNKNOWN-CTE]` refusal (RFC 3516 §4.4): every mailbox stores a message's
//! bytes as sent, binary content included.
//!
//! All or none: every message is checked (size, flags) before the first is written, and the
//! store writes the batch with [`UserStore::append_all`], which takes back what it wrote if a
//! write fails part-way; see `core/src/store/append_batch.rs` for what holds across a crash.

use crate::mime::cache::{SortKeys, thread_keys};
use std::borrow::Cow;

use skua_core::disk::Disk;
use skua_core::store::{NewMessage, UserStore};
use skua_core::types::{Flags, Uid, UidValidity};

use super::durable;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::caps;
use crate::imap::session::out::Out;
use crate::imap::types::{AppendData, AppendMessage};

/// The largest message APPEND takes on this connection: `APPENDLIMIT` (RFC 7889). The framer
/// refuses a bigger literal before reading it; the store takes no bigger message either. This
/// bounds what CATENATE assembles too.
pub(crate) fn append_limit(conn: &Conn) -> u64 {
    let store_max = u64::from(skua_core::limits::MESSAGE_BYTES_MAX);
    conn.config.frame_limits.append_literal_bytes_max.min(store_max)
}

/// Appends the APPEND extensions' capabilities (after login): MULTIAPPEND (RFC 3502),
/// APPENDLIMIT (RFC 7889) with its value, since one limit holds for every mailbox, and
/// CATENATE (RFC 4469, URLs into the user's own mailboxes).
pub(crate) fn capabilities(conn: &Conn, caps: &mut String) {
    use std::fmt::Write as _;
    caps.push_str(" MULTIAPPEND CATENATE");
    write!(caps, " APPENDLIMIT={}", append_limit(conn)).expect("writing to a String");
}

/// True when literal8 messages are accepted: only while BINARY (RFC 3516) is announced, since
/// a message with NUL in it can be read back only with BINARY's FETCH (issue 9: without it,
/// the NULs were sent back in a plain literal, which may not hold NUL). Taken from the
/// capability list itself, so the two cannot disagree.
fn literal8_allowed(capabilities: &str) -> bool {
    capabilities.split(' ').any(|capability| capability.eq_ignore_ascii_case("BINARY"))
}

/// APPEND of one message or several (MULTIAPPEND).
pub(crate) fn append<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    name: &str,
    messages: &[AppendMessage],
    out: &mut Out,
) -> Completion {
    if messages.iter().any(|message| message.binary)
        && !literal8_allowed(&caps::capabilities(conn, true))
    {
        return Completion::bad("literal8 needs BINARY, which is not offered");
    }
    let Some(id) = store.mailbox_id(super::route::local_name(conn, name)) else {
        return Completion::no("No such mailbox").with(Code::TryCreate);
    };
    let access = super::rights::of(conn, store, id);
    if !access.insert {
        return access.refusal();
    }
    let Some(info) = store.mailbox_info(id) else {
        return Completion::no("No such mailbox").with(Code::TryCreate);
    };
    let limit = append_limit(conn);
    let mut bodies: Vec<Cow<'_, [u8]>> = Vec::with_capacity(messages.len());
    for message in messages {
        let body = match &message.data {
            AppendData::Literal(bytes) => Cow::Borrowed(bytes.as_slice()),
            AppendData::Catenate(parts) => {
                match super::catenate::assemble(conn, store, parts, limit) {
                    Ok(built) => Cow::Owned(built),
                    Err(completion) => return completion,
                }
            }
        };
        if body.is_empty() {
            return Completion::no("Empty message").with(Code::Cannot);
        }
        if body.len() as u64 > limit {
            return Completion::no("Message too large").with(Code::TooBig);
        }
        bodies.push(body);
    }
    let mut flags: Vec<Flags> = Vec::with_capacity(messages.len());
    let mut reader_seen: Vec<bool> = Vec::with_capacity(messages.len());
    for message in messages {
        match super::store::flags_for(store, id, &message.flags) {
            Ok(asked) => {
                let (kept, seen) = super::rights::flags_to_add(conn, access, asked);
                flags.push(kept);
                reader_seen.push(seen);
            }
            Err(completion) => return completion,
        }
    }
    let built: Vec<(Vec<u8>, SortKeys)> =
        bodies.iter().map(|body| crate::mime::cache::build_with_keys(body)).collect();
    let batch: Vec<NewMessage<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| NewMessage {
            message: &bodies[i],
            cache: &built[i].0,
            flags: flags[i],
            date: message.date,
            thread: thread_keys(&built[i].1),
        })
        .collect();
    let result = store.append_all(id, &batch);
    // Success or refusal, the reply waits for the round that makes it true: the records (or
    // the cut that took a refused batch back) are durable before the client hears of them.
    durable(store, out);
    match result {
        Ok(appended) => {
            let uids: Vec<Uid> = appended.iter().map(|&(uid, _)| uid).collect();
            let seen: Vec<Uid> = uids
                .iter()
                .zip(&reader_seen)
                .filter(|(_, seen)| **seen)
                .map(|(&uid, _)| uid)
                .collect();
            super::rights::mark_seen_by_reader(store, id, &seen);
            durable(store, out);
            Completion::ok("APPEND completed").with(append_uid(info.uid_validity, &uids))
        }
        Err(error) => reply::append(&error),
    }
}

/// `[APPENDUID uidvalidity uid]`, or with a UID set for several messages (RFC 4315 §3:
/// `append-uid = uniqueid / uid-set` with MULTIAPPEND). The store gives consecutive UIDs.
fn append_uid(validity: UidValidity, uids: &[Uid]) -> Code {
    match uids {
        [uid] => Code::AppendUid(validity, *uid),
        [first, .., last] => {
            debug_assert!(last.get() - first.get() + 1 == uids.len() as u32, "consecutive UIDs");
            Code::AppendUidSet(validity, format!("{}:{}", first.get(), last.get()))
        }
        [] => unreachable!("APPEND has at least one message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal8_follows_the_binary_capability() {
        assert!(!literal8_allowed("IMAP4rev1 IMAP4rev2 LITERAL+ UIDPLUS"));
        assert!(!literal8_allowed("IMAP4rev1 BINARYX"));
        assert!(literal8_allowed("IMAP4rev1 BINARY UIDPLUS"));
        assert!(literal8_allowed("IMAP4rev1 UIDPLUS BINARY"));
    }
}
