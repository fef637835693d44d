//! STORE / UID STORE (RFC 9051 §6.4.6) with CONDSTORE's `UNCHANGEDSINCE` (RFC 7162 §3.1.3).
//!
//! After the store changes the flags, the session reports each named message's flags (unless
//! `.SILENT`) and records the change as its own, so the view's next sync does not report it a
//! second time.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::{Flags, FlagsOp, MailboxId, ModSeq, SystemFlags, Uid};

use super::{durable, lookup, view};
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{Flag, SequenceSet};
use crate::imap::view::write_flags_fetch;

/// A parsed STORE.
pub(crate) struct StoreRequest<'a> {
    /// UID STORE
    pub uid: bool,
    /// The messages.
    pub set: &'a SequenceSet,
    /// Replace / add / remove.
    pub op: FlagsOp,
    /// `.SILENT`
    pub silent: bool,
    /// The flags.
    pub flags: &'a [Flag],
    /// `UNCHANGEDSINCE`
    pub unchanged_since: Option<u64>,
}

/// Turns wire flags into store flags, allocating keyword bits as needed.
///
/// # Errors
/// The reply for a flag that cannot be stored (`\Recent`, other `\` extensions) or a full
/// keyword table.
pub(crate) fn flags_for<D: Disk>(
    store: &mut UserStore<D>,
    mailbox: MailboxId,
    flags: &[Flag],
) -> Result<Flags, Completion> {
    let mut system = 0u16;
    let mut keywords: Vec<&str> = Vec::new();
    for flag in flags {
        match flag {
            Flag::Seen => system |= SystemFlags::SEEN,
            Flag::Answered => system |= SystemFlags::ANSWERED,
            Flag::Flagged => system |= SystemFlags::FLAGGED,
            Flag::Deleted => system |= SystemFlags::DELETED,
            Flag::Draft => system |= SystemFlags::DRAFT,
            Flag::Keyword(name) => keywords.push(name),
            Flag::Extension(name) => {
                return Err(Completion::bad(format!("Flag \\{name} cannot be stored")));
            }
        }
    }
    let keywords = if keywords.is_empty() {
        skua_core::types::Keywords::default()
    } else {
        store.keyword_bits(mailbox, &keywords).map_err(|e| reply::keywords(&e))?
    };
    Ok(Flags { system: SystemFlags(system), keywords })
}

/// STORE / UID STORE
pub(crate) fn store<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    request: &StoreRequest<'_>,
    out: &mut Out,
) -> Completion {
    if request.unchanged_since.is_some() {
        if !conn.config.condstore {
            return Completion::bad("UNCHANGEDSINCE needs CONDSTORE");
        }
        conn.enabled.condstore = true;
    }
    let condstore = conn.enabled.condstore;
    let selected = view(conn);
    if selected.read_only {
        return Completion::no("Mailbox is read-only").with(Code::ReadOnly);
    }
    let mailbox = selected.mailbox;
    let named: Vec<Uid> = selected
        .resolve(request.set, request.uid)
        .into_iter()
        .map(|i| selected.uids()[i])
        .collect();
    let live = match lookup(store, mailbox, named.iter().copied()) {
        Ok(messages) => messages,
        Err(error) => return reply::read(&error),
    };
    // Messages expunged by another session (not yet reported here) are left alone.
    let uids: Vec<Uid> =
        named.into_iter().filter(|uid| live.binary_search_by_key(uid, |m| m.uid).is_ok()).collect();
    if uids.is_empty() {
        return Completion::ok("STORE completed");
    }
    let flags = match flags_for(store, mailbox, request.flags) {
        Ok(flags) => flags,
        Err(completion) => return completion,
    };
    let unchanged_since = request.unchanged_since.map(ModSeq);
    let outcome = match store.store_flags(mailbox, &uids, request.op, flags, unchanged_since) {
        Ok(outcome) => outcome,
        Err(error) => return reply::update(&error),
    };
    durable(store, out);
    let (messages, keywords) =
        match (lookup(store, mailbox, uids.iter().copied()), store.keyword_table(mailbox)) {
            (Ok(m), Ok(k)) => (m, k),
            (Err(error), _) | (_, Err(error)) => return reply::read(&error),
        };
    let selected = view(conn);
    // New keywords are announced before the FETCH responses that carry them.
    super::announce_new_keywords(selected, keywords, out.buf());
    for uid in &uids {
        if outcome.modified.contains(uid) {
            continue;
        }
        let Ok(index) = messages.binary_search_by_key(uid, |m| m.uid) else {
            continue;
        };
        let message = &messages[index];
        selected.own_change(message.uid, message.modseq);
        let Some(msn) = selected.msn_of(message.uid) else {
            continue;
        };
        if !request.silent {
            write_flags_fetch(out.buf(), msn, message, keywords, condstore);
        } else if condstore && outcome.changed.iter().any(|&(changed, _)| changed == *uid) {
            // RFC 7162 §3.1.3: even a silent STORE reports the new modseq of what it changed.
            let line = format!(
                "* {msn} FETCH (UID {} MODSEQ ({}))\r\n",
                message.uid.get(),
                message.modseq.0
            );
            out.put(line.as_bytes());
        }
    }
    if outcome.modified.is_empty() {
        Completion::ok("STORE completed")
    } else {
        let set = uid_set(&outcome.modified, request.uid, selected);
        Completion::ok("Conditional STORE failed for some messages").with(Code::Modified(set))
    }
}

/// Formats UIDs (or their MSNs) as a compact sequence set `1:3,7`.
pub(crate) fn uid_set(uids: &[Uid], as_uids: bool, selected: &crate::imap::view::View) -> String {
    let mut numbers: Vec<u32> = if as_uids {
        uids.iter().map(|u| u.get()).collect()
    } else {
        uids.iter().filter_map(|u| selected.msn_of(*u)).collect()
    };
    numbers.sort_unstable();
    let mut text = Vec::new();
    encode::sequence_set(&mut text, &numbers);
    String::from_utf8_lossy(&text).into_owned()
}
