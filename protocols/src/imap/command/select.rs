//! SELECT / EXAMINE (RFC 9051 §6.3.2-3, RFC 7162 §3.1.2, with QRESYNC §3.2.5) and CLOSE
//! (§6.4.1).

use skua_core::disk::Disk;
use skua_core::store::{MailboxMarks, UserStore};
use skua_core::types::{SystemFlags, Uid};

use super::slice::Slice;
use super::{Progress, durable, qresync, route, view};
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::QresyncParams;
use crate::imap::view::View;

/// SELECT/EXAMINE's parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SelectParams<'a> {
    /// `(CONDSTORE)`
    pub condstore: bool,
    /// `(QRESYNC (...))`
    pub qresync: Option<&'a QresyncParams>,
}

/// SELECT (`read_only == false`) or EXAMINE.
pub(crate) fn select<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    name: &str,
    read_only: bool,
    params: SelectParams<'_>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    // RFC 7162 §3.2.5: QRESYNC without ENABLE QRESYNC is BAD (and, being BAD, the current
    // selection stays).
    if params.qresync.is_some() && !conn.enabled.qresync {
        return Progress::Done(Completion::bad("QRESYNC needs ENABLE QRESYNC first"));
    }
    let condstore = params.condstore;
    if conn.selected.take().is_some() | conn.parked.take().is_some() {
        out.put(b"* OK [CLOSED] Previous mailbox closed\r\n");
    }
    if condstore {
        if !conn.config.condstore {
            return Progress::Done(Completion::bad("CONDSTORE is not supported"));
        }
        conn.enabled.condstore = true;
    }
    let Some(id) = store.mailbox_id(route::local_name(conn, name)) else {
        return Progress::Done(Completion::no("No such mailbox").with(Code::Nonexistent));
    };
    let access = super::rights::of(conn, store, id);
    if !access.read {
        return Progress::Done(access.refusal());
    }
    let read_only = read_only || !access.writable();
    let (info, messages, keywords) =
        match (store.mailbox_info(id), store.messages(id), store.keywords(id)) {
            (Some(info), Ok(messages), Ok(keywords)) => (info, messages, keywords),
            (None, _, _) => {
                return Progress::Done(Completion::no("No such mailbox").with(Code::Nonexistent));
            }
            (_, Err(error), _) | (_, _, Err(error)) => return Progress::Done(reply::read(&error)),
        };
    let mut selected = View::new(
        id,
        read_only,
        info.uid_validity,
        &messages,
        info.highest_modseq,
        store.change_counter(),
    );
    if !conn.enabled.rev2 {
        take_recent(&mut selected, store);
    }
    write_flags(&keywords, read_only, out.buf());
    let b = out.buf();
    b.extend_from_slice(format!("* {} EXISTS\r\n", messages.len()).as_bytes());
    if !conn.enabled.rev2 {
        b.extend_from_slice(format!("* {} RECENT\r\n", selected.recent_count()).as_bytes());
    }
    // `[UNSEEN n]` is a sequence number: not for a UIDONLY session (RFC 9586).
    if !conn.enabled.rev2 && !conn.enabled.uidonly {
        let unseen = messages.iter().position(|m| !m.flags.system.contains(SystemFlags::SEEN));
        if let Some(index) = unseen {
            b.extend_from_slice(format!("* OK [UNSEEN {}] First unseen\r\n", index + 1).as_bytes());
        }
    }
    b.extend_from_slice(
        format!("* OK [UIDVALIDITY {}] UIDs valid\r\n", info.uid_validity.get()).as_bytes(),
    );
    b.extend_from_slice(
        format!("* OK [UIDNEXT {}] Predicted next UID\r\n", info.uid_next.get()).as_bytes(),
    );
    if conn.config.condstore {
        b.extend_from_slice(
            format!("* OK [HIGHESTMODSEQ {}] Highest\r\n", info.highest_modseq.0).as_bytes(),
        );
    }
    // RFC 8474 §4.2
    let mailbox_id = super::objectid::mailbox_id(&info);
    b.extend_from_slice(format!("* OK [MAILBOXID ({mailbox_id})] Ok\r\n").as_bytes());
    if conn.enabled.rev2 {
        b.extend_from_slice(b"* LIST () \"/\" ");
        encode::mailbox(b, &info.name, true);
        b.extend_from_slice(b"\r\n");
    }
    selected.keywords_announced = keywords.len();
    selected.set_marks(MailboxMarks {
        uid_next: info.uid_next,
        highest_modseq: info.highest_modseq,
        messages: info.messages,
    });
    selected.vanished = conn.enabled.qresync || conn.enabled.uidonly;
    selected.uid_only = conn.enabled.uidonly;
    let resync = match params.qresync {
        Some(qresync) => match qresync::vanished_after_select(&selected, store, qresync, out) {
            Ok(since) => since,
            Err(completion) => return Progress::Done(completion),
        },
        None => None,
    };
    selected.owner = conn.store_owner.clone();
    selected.access = access;
    conn.selected = Some(selected);
    let completion = if read_only {
        Completion::ok("EXAMINE completed").with(Code::ReadOnly)
    } else {
        Completion::ok("SELECT completed").with(Code::ReadWrite)
    };
    match resync {
        Some(since) => {
            let view = conn.selected.as_ref().expect("selected above");
            match qresync::ResyncTask::new(view, store, since, completion) {
                Ok(task) => qresync::resume(conn, store, task, out, slice),
                Err(completion) => Progress::Done(completion),
            }
        }
        None => Progress::Done(completion),
    }
}

/// Gives `view` (an IMAP4rev1 session's) the messages no session has been told of yet as
/// `\Recent` (RFC 3501 §2.3.2): claimed for a read-write view, so that no other session gets
/// them; only seen for a read-only one (EXAMINE leaves them recent for the next SELECT).
pub(crate) fn take_recent<D: Disk>(view: &mut View, store: &mut UserStore<D>) {
    let first = if view.read_only {
        store.first_unclaimed_recent(view.mailbox)
    } else {
        store.claim_recent(view.mailbox)
    };
    if let (Some(first), Some(marks)) = (first, store.mailbox_marks(view.mailbox)) {
        view.add_recent(first, marks.uid_next);
    }
}

/// Writes `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` for a mailbox's keywords.
pub(crate) fn write_flags(keywords: &[String], read_only: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for keyword in keywords {
        out.push(b' ');
        out.extend_from_slice(keyword.as_bytes());
    }
    out.extend_from_slice(b")\r\n");
    if read_only {
        out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
        return;
    }
    out.extend_from_slice(b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for keyword in keywords {
        out.push(b' ');
        out.extend_from_slice(keyword.as_bytes());
    }
    if keywords.len() < skua_core::limits::KEYWORDS_PER_MAILBOX_MAX {
        out.extend_from_slice(b" \\*");
    }
    out.extend_from_slice(b")] Flags permitted\r\n");
}

/// CLOSE: expunges `\Deleted` messages silently when read-write, then deselects.
pub(crate) fn close<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    out: &mut Out,
) -> Completion {
    let selected = view(conn);
    // Without `e` nothing is expunged (RFC 4314 §4), and CLOSE still succeeds.
    let (mailbox, read_only) = (selected.mailbox, selected.read_only || !selected.access.expunge);
    conn.selected = None;
    if read_only {
        return Completion::ok("CLOSE completed");
    }
    let deleted: Vec<Uid> = match store.messages(mailbox) {
        Ok(messages) => messages
            .iter()
            .filter(|m| m.flags.system.contains(SystemFlags::DELETED))
            .map(|m| m.uid)
            .collect(),
        Err(error) => return reply::read(&error),
    };
    if !deleted.is_empty() {
        if let Err(error) = store.expunge(mailbox, &deleted) {
            return reply::update(&error);
        }
        durable(store, out);
    }
    Completion::ok("CLOSE completed")
}
