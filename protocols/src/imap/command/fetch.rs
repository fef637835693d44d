//! FETCH / UID FETCH (RFC 9051 §6.4.5) with CONDSTORE's `CHANGEDSINCE` and `MODSEQ`
//! (RFC 7162 §3.1.4-5).
//!
//! Index data (FLAGS, UID, sizes, dates, MODSEQ) comes from the store's records; ENVELOPE and
//! BODYSTRUCTURE from the cache blob computed at append; body sections are slices of the mapped
//! spool, emitted as [`OutChunk::Spool`](crate::imap::session::OutChunk) chunks after a literal
//! header — never copied. Fetching a body section without `.PEEK` sets `\Seen` first (in one
//! store call for all messages) and reports `FLAGS` with the data.

use skua_core::disk::Disk;
use skua_core::store::{MessageMeta, UserStore};
use skua_core::types::{Flags, FlagsOp, Keywords, MailboxId, ModSeq, SystemFlags, Uid};

use super::fetch_body;
use super::{durable, lookup, view};
use crate::imap::encode;
use crate::imap::reply::{self, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{FetchAttribute, SequenceSet};

/// A parsed FETCH.
pub(crate) struct FetchRequest<'a> {
    /// UID FETCH
    pub uid: bool,
    /// The messages.
    pub set: &'a SequenceSet,
    /// The items (macros expanded).
    pub attributes: Vec<FetchAttribute>,
    /// `CHANGEDSINCE`
    pub changed_since: Option<u64>,
}

/// FETCH / UID FETCH
pub(crate) fn fetch<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut request: FetchRequest<'_>,
    out: &mut Out,
) -> Completion {
    let wants_modseq = request.changed_since.is_some()
        || request.attributes.iter().any(|a| matches!(a, FetchAttribute::ModSeq));
    if wants_modseq {
        if !conn.config.condstore {
            return Completion::bad("MODSEQ needs CONDSTORE");
        }
        conn.enabled.condstore = true;
    }
    let condstore = conn.enabled.condstore;
    let attributes = effective_attributes(&mut request, condstore);
    let selected = view(conn);
    let mailbox = selected.mailbox;
    let mut targets: Vec<(u32, Uid)> = selected
        .resolve(request.set, request.uid)
        .into_iter()
        .map(|i| (crate::imap::view::msn_from_index(i), selected.uids()[i]))
        .collect();
    let sets_seen = !selected.read_only && attributes.iter().any(sets_seen_flag);
    let mut messages = match lookup(store, mailbox, uids_of(&targets)) {
        Ok(messages) => messages,
        Err(error) => return reply::read(&error),
    };
    let find =
        |messages: &[MessageMeta], uid: Uid| messages.binary_search_by_key(&uid, |m| m.uid).ok();
    // Messages expunged by another session but not yet reported are skipped.
    targets.retain(|&(_, uid)| {
        find(&messages, uid)
            .is_some_and(|i| request.changed_since.is_none_or(|since| messages[i].modseq.0 > since))
    });
    let mut flags_changed: Vec<Uid> = Vec::new();
    if sets_seen {
        match mark_seen(store, mailbox, &messages, &targets) {
            Ok(changed) if !changed.is_empty() => {
                durable(store, out);
                flags_changed = changed;
                messages = match lookup(store, mailbox, uids_of(&targets)) {
                    Ok(messages) => messages,
                    Err(error) => return reply::read(&error),
                };
            }
            Ok(_) => {}
            Err(completion) => return completion,
        }
    }
    let keywords = store.keyword_table(mailbox).unwrap_or_default();
    let reports_flags = attributes.contains(&FetchAttribute::Flags);
    let reads_body = fetch_body::needs_body(&attributes);
    let mut prefetched = 0;
    for (position, &(msn, uid)) in targets.iter().enumerate() {
        if reads_body {
            prefetched = fetch_body::prefetch_ahead(store, mailbox, &targets, position, prefetched);
        }
        let Some(index) = find(&messages, uid) else {
            continue;
        };
        let message = &messages[index];
        let add_flags = flags_changed.binary_search(&uid).is_ok();
        if add_flags || reports_flags {
            // The client now knows these flags: the next sync need not repeat them.
            view(conn).own_change(uid, message.modseq);
        }
        let item = FetchItem { msn, message, keywords, add_flags, condstore };
        if let Err(completion) = write_message(store, mailbox, &item, &attributes, out) {
            return completion;
        }
    }
    Completion::ok("FETCH completed")
}

/// The UIDs of `(msn, uid)` targets.
fn uids_of(targets: &[(u32, Uid)]) -> impl ExactSizeIterator<Item = Uid> + '_ {
    targets.iter().map(|&(_, uid)| uid)
}

/// The attributes to answer: UID added for UID FETCH, MODSEQ when CONDSTORE is on and
/// CHANGEDSINCE was given (RFC 7162 §3.1.4.1).
/// Takes the request's list (no copy).
fn effective_attributes(request: &mut FetchRequest<'_>, condstore: bool) -> Vec<FetchAttribute> {
    let mut attributes = std::mem::take(&mut request.attributes);
    if request.uid && !attributes.contains(&FetchAttribute::Uid) {
        attributes.insert(0, FetchAttribute::Uid);
    }
    if condstore && request.changed_since.is_some() && !attributes.contains(&FetchAttribute::ModSeq)
    {
        attributes.push(FetchAttribute::ModSeq);
    }
    attributes
}

/// True for items that set `\Seen` (RFC 9051 §6.4.5: BODY[...] without PEEK, RFC822,
/// RFC822.TEXT).
fn sets_seen_flag(attribute: &FetchAttribute) -> bool {
    matches!(
        attribute,
        FetchAttribute::BodySection { peek: false, .. }
            | FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Text
    )
}

/// Sets `\Seen` on the targets lacking it; returns their UIDs (ascending).
fn mark_seen<D: Disk>(
    store: &mut UserStore<D>,
    mailbox: MailboxId,
    messages: &[MessageMeta],
    targets: &[(u32, Uid)],
) -> Result<Vec<Uid>, Completion> {
    let unseen: Vec<Uid> = targets
        .iter()
        .filter(|(_, uid)| {
            messages
                .binary_search_by_key(uid, |m| m.uid)
                .is_ok_and(|i| !messages[i].flags.system.contains(SystemFlags::SEEN))
        })
        .map(|&(_, uid)| uid)
        .collect();
    if unseen.is_empty() {
        return Ok(unseen);
    }
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords::default() };
    store
        .store_flags(mailbox, &unseen, FlagsOp::Add, seen, None)
        .map_err(|error| reply::update(&error))?;
    Ok(unseen)
}

/// One message's FETCH response context.
struct FetchItem<'a> {
    msn: u32,
    message: &'a MessageMeta,
    keywords: &'a [String],
    /// FLAGS must be reported (this FETCH set `\Seen`) even if not asked for.
    add_flags: bool,
    /// CONDSTORE is on for this session.
    condstore: bool,
}

/// Writes `* msn FETCH (...)` for one message.
fn write_message<D: Disk>(
    store: &UserStore<D>,
    mailbox: MailboxId,
    item: &FetchItem<'_>,
    attributes: &[FetchAttribute],
    out: &mut Out,
) -> Result<(), Completion> {
    let message = item.message;
    // Everything that can fail is read before the first byte of the response is written.
    let sources = fetch_body::Sources::load(store, mailbox, message.uid, attributes)?;
    out.put(b"* ");
    encode::number(out.buf(), u64::from(item.msn));
    out.put(b" FETCH (");
    let mut first = true;
    let mut flags_written = false;
    for attribute in attributes {
        if !first {
            out.put(b" ");
        }
        first = false;
        match attribute {
            FetchAttribute::Flags => {
                flags_written = true;
                write_flags(out, message.flags, item.keywords);
            }
            FetchAttribute::Uid => {
                out.put(b"UID ");
                encode::number(out.buf(), u64::from(message.uid.get()));
            }
            FetchAttribute::Rfc822Size => {
                out.put(b"RFC822.SIZE ");
                encode::number(out.buf(), u64::from(message.size));
            }
            FetchAttribute::InternalDate => {
                out.put(b"INTERNALDATE ");
                encode::internal_date(out.buf(), message.internal_date);
            }
            FetchAttribute::ModSeq => write_modseq(out, message.modseq),
            FetchAttribute::Envelope
            | FetchAttribute::Body
            | FetchAttribute::BodyStructure
            | FetchAttribute::BodySection { .. }
            | FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Header
            | FetchAttribute::Rfc822Text => sources.write(attribute, out),
        }
    }
    if item.add_flags && !flags_written {
        if !first {
            out.put(b" ");
        }
        write_flags(out, message.flags, item.keywords);
    }
    // RFC 7162 §3.1: with CONDSTORE on, a FETCH that set \Seen reports UID and MODSEQ too.
    if item.add_flags && item.condstore {
        if !attributes.contains(&FetchAttribute::Uid) {
            out.put(b" UID ");
            encode::number(out.buf(), u64::from(message.uid.get()));
        }
        if !attributes.contains(&FetchAttribute::ModSeq) {
            out.put(b" ");
            write_modseq(out, message.modseq);
        }
    }
    out.put(b")\r\n");
    Ok(())
}

fn write_flags(out: &mut Out, flags: Flags, keywords: &[String]) {
    out.put(b"FLAGS ");
    encode::flags(out.buf(), flags, keywords);
}

fn write_modseq(out: &mut Out, modseq: ModSeq) {
    out.put(b"MODSEQ (");
    encode::number(out.buf(), modseq.0);
    out.put(b")");
}
