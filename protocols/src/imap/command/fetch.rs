//! FETCH / UID FETCH (RFC 9051 §6.4.5) with CONDSTORE's `CHANGEDSINCE` and `MODSEQ`
//! (RFC 7162 §3.1.4-5).
//!
//! Index data (FLAGS, UID, sizes, dates, MODSEQ) comes from the store's records; ENVELOPE and
//! BODYSTRUCTURE from the cache blob computed at append; body sections are slices of the mapped
//! spool, emitted as [`OutChunk::Spool`](crate::imap::session::OutChunk) chunks after a literal
//! header — never copied. Fetching a body section without `.PEEK` sets `\Seen` first (in one
//! store call for all messages) and reports `FLAGS` with the data. BINARY items (RFC 3516) are
//! planned and, when large, streamed over several slices by `fetch_binary.rs`; PREVIEW
//! (RFC 8970) is made by `mime::preview`. The PARTIAL modifier (RFC 9394 §3.3) narrows the
//! messages asked for to one page before anything is read (`fetch_partial.rs`).

use skua_core::disk::Disk;
use skua_core::store::{MessageMeta, UserStore};
use skua_core::types::{Flags, FlagsOp, Keywords, MailboxId, ModSeq, SystemFlags, Uid};

use skua_core::error::ReadError;

use super::fetch_binary::{
    self, BINARY_INLINE_BYTES_MAX, BinaryStream, MEASURE_STEP_INPUT_BYTES, MessageMeasures,
    PartPlan,
};
use super::fetch_body;
use super::objectid;
use super::slice::Slice;
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, durable, lookup, view};
use crate::imap::encode;
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{FetchAttribute, PartialRange, SequenceSet};

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
    /// `VANISHED` (RFC 7162 §3.2.6)
    pub vanished: bool,
    /// `PARTIAL` (RFC 9394 §3.3)
    pub partial: Option<PartialRange>,
}

/// A FETCH between slices: everything it needs, owned (see `slice.rs`).
#[derive(Debug)]
pub(crate) struct FetchTask {
    /// The items to answer (UID and MODSEQ added where required).
    attributes: Vec<FetchAttribute>,
    /// `CHANGEDSINCE`
    changed_since: Option<u64>,
    /// `(msn, uid)` of every message asked for, in order; `position` is the next one.
    targets: Vec<(u32, Uid)>,
    position: usize,
    /// Body items without `.PEEK` in a read-write mailbox: `\Seen` is set as messages are
    /// reached, one lookup-sized chunk at a time.
    sets_seen: bool,
    /// Targets before this index have had `\Seen` set where needed.
    seen_until: usize,
    /// UIDs whose `\Seen` this FETCH set (ascending): their FLAGS are reported.
    flags_changed: Vec<Uid>,
    /// How far ahead bodies were asked to be paged in.
    prefetched: usize,
    /// Messages whose data could not be read (damaged on disk): the rest are still answered,
    /// and the tagged reply is NO naming these.
    damaged: Vec<(Uid, ReadError)>,
    /// The large BINARY items of the message being answered, still being sent.
    stream: Option<BinaryStream>,
    /// The large BINARY parts of the next message to answer, being measured first.
    measures: Option<MessageMeasures>,
}

/// FETCH / UID FETCH: checks the request and runs its first slice.
pub(crate) fn fetch<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut request: FetchRequest<'_>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if request.vanished
        && let Err(bad) =
            super::qresync::check_fetch_modifier(conn, request.uid, request.changed_since)
    {
        return Progress::Done(bad);
    }
    let wants_modseq = request.changed_since.is_some()
        || request.attributes.iter().any(|a| matches!(a, FetchAttribute::ModSeq));
    if wants_modseq {
        if !conn.config.condstore {
            return Progress::Done(Completion::bad("MODSEQ needs CONDSTORE"));
        }
        super::enable_condstore(conn, out);
    }
    if request.vanished {
        let since = request.changed_since.unwrap_or(0);
        if let Err(no) = super::qresync::fetch_vanished(conn, store, request.set, since, out) {
            return Progress::Done(no);
        }
    }
    let attributes = effective_attributes(&mut request, conn.enabled.condstore);
    let selected = view(conn);
    // PARTIAL picks its page among the messages the set names; CHANGEDSINCE then filters the
    // page as it would the whole set (RFC 9394 §3.3-3.4). VANISHED is not narrowed: it reports
    // expunged UIDs of the set, not FETCH results.
    let indexes = match request.partial {
        Some(range) => super::fetch_partial::select(selected, request.set, request.uid, range),
        None => selected.resolve(request.set, request.uid),
    };
    let targets: Vec<(u32, Uid)> = indexes
        .into_iter()
        .map(|i| (crate::imap::view::msn_from_index(i), selected.uids()[i]))
        .collect();
    let sets_seen =
        !selected.read_only && selected.access.seen && attributes.iter().any(sets_seen_flag);
    let task = FetchTask {
        attributes,
        changed_since: request.changed_since,
        targets,
        position: 0,
        sets_seen,
        seen_until: 0,
        flags_changed: Vec::new(),
        prefetched: 0,
        damaged: Vec::new(),
        stream: None,
        measures: None,
    };
    resume(conn, store, task, out, slice)
}

/// Runs one more slice of a FETCH.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut task: FetchTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let mailbox = view(conn).mailbox;
    while task.position < task.targets.len() || task.stream.is_some() {
        if slice.spent(out) {
            return Progress::Paused(Task::Fetch(task));
        }
        if let Some(stream) = &mut task.stream {
            // Read again each slice: spool views cannot be kept in the (Send) task.
            let message = store.body(mailbox, stream.uid()).ok();
            let (decoded, done) = stream.pump(message.as_deref(), out);
            slice.spend(super::slice::scan_units(usize::try_from(decoded).unwrap_or(usize::MAX)));
            if !done {
                return Progress::Paused(Task::Fetch(task));
            }
            if stream.lost() {
                task.damaged.push((stream.uid(), ReadError::NoSuchMessage));
            }
            task.stream = None;
            continue;
        }
        if let Some(measures) = task.measures.as_mut().filter(|m| !m.done()) {
            // Bounded steps; the message is answered once all its large parts are measured.
            let message = store.body(mailbox, measures.uid()).ok();
            let looked = measures.step(message.as_deref(), MEASURE_STEP_INPUT_BYTES);
            slice.spend(super::slice::scan_units(looked));
            continue;
        }
        // One lookup-sized chunk: O(chunk × log n) to find its records, never O(mailbox).
        let end = (task.position + LOOKUP_ONE_BY_ONE_MAX).min(task.targets.len());
        if task.sets_seen && task.seen_until < end {
            let mut chunk = &task.targets[task.seen_until..end];
            // The FETCH stops at a message whose BINARY part cannot be decoded: neither it nor
            // the messages after it get `\Seen`.
            let decodable = fetch_body::binary_decodable_prefix(
                store,
                mailbox,
                uids_of(chunk),
                &task.attributes,
            );
            chunk = &chunk[..decodable];
            let messages = match lookup(store, mailbox, uids_of(chunk)) {
                Ok(messages) => messages,
                Err(error) => return Progress::Done(reply::read(&error)),
            };
            match mark_seen(store, mailbox, &messages, chunk) {
                Ok(changed) if !changed.is_empty() => {
                    durable(store, out);
                    task.flags_changed.extend(changed);
                }
                Ok(_) => {}
                Err(completion) => return Progress::Done(completion),
            }
            task.seen_until = end;
        }
        let chunk = &task.targets[task.position..end];
        let messages = match lookup(store, mailbox, uids_of(chunk)) {
            Ok(messages) => messages,
            Err(error) => return Progress::Done(reply::read(&error)),
        };
        if let Err(completion) = write_chunk(conn, store, &mut task, &messages, end, out, slice) {
            return Progress::Done(completion);
        }
    }
    Progress::Done(completion_of(&task.damaged))
}

/// Writes the messages of one chunk (up to target `end`) until the slice is spent.
fn write_chunk<D: Disk>(
    conn: &mut Conn,
    store: &UserStore<D>,
    task: &mut FetchTask,
    messages: &[MessageMeta],
    end: usize,
    out: &mut Out,
    slice: &mut Slice,
) -> Result<(), Completion> {
    let mailbox = view(conn).mailbox;
    let condstore = conn.enabled.condstore;
    let keywords = store.keyword_table(mailbox).unwrap_or_default();
    let reports_flags = task.attributes.contains(&FetchAttribute::Flags);
    let reads_body = fetch_body::needs_body(&task.attributes);
    while task.position < end {
        if slice.spent(out) {
            return Ok(());
        }
        let position = task.position;
        task.position += 1;
        slice.spend(1);
        if reads_body {
            task.prefetched = fetch_body::prefetch_ahead(
                store,
                mailbox,
                &task.targets,
                position,
                task.prefetched,
            );
        }
        let (msn, uid) = task.targets[position];
        // Messages expunged by another session but not yet reported are skipped.
        let Ok(index) = messages.binary_search_by_key(&uid, |m| m.uid) else {
            continue;
        };
        let message = &messages[index];
        if task.changed_since.is_some_and(|since| message.modseq.0 <= since) {
            continue;
        }
        let add_flags = task.flags_changed.binary_search(&uid).is_ok();
        if add_flags || reports_flags {
            // The client now knows these flags: the next sync need not repeat them.
            view(conn).own_change(uid, message.modseq);
        }
        let recent = view(conn).is_recent(uid);
        let uid_only = view(conn).uid_only;
        let item = FetchItem { msn, message, keywords, add_flags, condstore, recent, uid_only };
        let measured = task.measures.as_ref().filter(|m| m.uid() == uid && m.done());
        let written = write_message(store, mailbox, &item, &task.attributes, measured, out);
        if written.is_ok() || measured.is_some() {
            task.measures = None;
        }
        match written {
            Ok(None) => {}
            Err(MessageError::Unmeasured(parts)) => {
                // Measured in steps by `resume`'s loop, then this message is answered again.
                task.measures = Some(MessageMeasures::new(uid, parts));
                task.position = position;
                return Ok(());
            }
            Ok(Some(stream)) => {
                // The rest of this message's response goes out from `resume`'s loop.
                task.stream = Some(stream);
                return Ok(());
            }
            // Expunged between the lookup and the read (cannot happen within one slice, but
            // costs nothing to handle): nothing to report.
            Err(MessageError::Read(ReadError::NoSuchMessage)) => {}
            Err(MessageError::Read(ReadError::NoSuchMailbox)) => {
                return Err(reply::read(&ReadError::NoSuchMailbox));
            }
            Err(MessageError::Read(error @ ReadError::Storage(_))) => {
                task.damaged.push((uid, error));
            }
            Err(MessageError::UnknownCte) => {
                return Err(Completion::no("Unknown Content-Transfer-Encoding in a BINARY part")
                    .with(Code::UnknownCte));
            }
        }
    }
    Ok(())
}

/// The tagged reply: OK, or NO naming the messages that could not be read (every other one
/// was answered).
fn completion_of(damaged: &[(Uid, ReadError)]) -> Completion {
    let Some((_, first)) = damaged.first() else {
        return Completion::ok("FETCH completed");
    };
    let mut uids: Vec<u32> = damaged.iter().map(|(uid, _)| uid.get()).collect();
    uids.sort_unstable();
    let mut set = Vec::new();
    encode::sequence_set(&mut set, &uids);
    let mut completion = reply::read(first);
    completion.text = format!(
        "{} (UID {}); the other messages were sent",
        completion.text,
        String::from_utf8_lossy(&set)
    )
    .into();
    completion
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

/// True for items that set `\Seen` (RFC 9051 §6.4.5: BODY[...] and BINARY[...] without PEEK,
/// RFC822, RFC822.TEXT).
fn sets_seen_flag(attribute: &FetchAttribute) -> bool {
    matches!(
        attribute,
        FetchAttribute::BodySection { peek: false, .. }
            | FetchAttribute::Binary { peek: false, .. }
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
    /// The message is `\Recent` for this session.
    recent: bool,
    /// UIDONLY (RFC 9586): `* uid UIDFETCH (...)`, the UID not repeated as an item.
    uid_only: bool,
}

/// Why one message's response could not be written (nothing of it was).
enum MessageError {
    /// Its data could not be read.
    Read(ReadError),
    /// A BINARY item's part has a transfer encoding this server does not know.
    UnknownCte,
    /// Large BINARY parts must be measured first: `(attribute index, input, encoding)`.
    Unmeasured(Vec<(usize, std::ops::Range<usize>, crate::mime::decode::TransferEncoding)>),
}

/// What the BINARY items of one message send, planned before its response starts.
enum Planned {
    /// Not a BINARY item.
    None,
    /// `BINARY[...]`: the plan (`None`: no such part).
    Binary(Option<fetch_binary::BinaryPlan>),
    /// `BINARY.SIZE[...]`: the decoded size.
    Size(u64),
}

/// Plans every BINARY item of `attributes` (in order), so that an unknown encoding fails the
/// message before any byte of it is written. Large parts not in `measured` are collected as
/// [`MessageError::Unmeasured`].
fn plan_binary(
    sources: &fetch_body::Sources,
    attributes: &[FetchAttribute],
    measured: Option<&MessageMeasures>,
) -> Result<Vec<Planned>, MessageError> {
    let mut planned = Vec::with_capacity(attributes.len());
    let mut unmeasured = Vec::new();
    for (index, attribute) in attributes.iter().enumerate() {
        let (part, partial, size_only) = match attribute {
            FetchAttribute::Binary { part, partial, .. } => (part, *partial, false),
            FetchAttribute::BinarySize { part } => (part, None, true),
            _ => {
                planned.push(Planned::None);
                continue;
            }
        };
        let known = measured.and_then(|m| m.known(index));
        let plan = sources
            .binary_plan(part, partial, known, measured.is_none(), size_only)
            .map_err(|_| MessageError::UnknownCte)?;
        let plan = match plan {
            PartPlan::Missing => None,
            PartPlan::Ready(plan) => Some(plan),
            PartPlan::Unmeasured { input, encoding } => {
                unmeasured.push((index, input, encoding));
                None
            }
        };
        planned.push(match attribute {
            FetchAttribute::BinarySize { .. } => Planned::Size(plan.map_or(0, |p| p.len)),
            _ => Planned::Binary(plan),
        });
    }
    if unmeasured.is_empty() { Ok(planned) } else { Err(MessageError::Unmeasured(unmeasured)) }
}

/// Writes `* msn FETCH (...)` (or `* uid UIDFETCH (...)`) for one message. Returns the stream that sends the rest when
/// large BINARY items remain (the response is then not closed yet).
fn write_message<D: Disk>(
    store: &UserStore<D>,
    mailbox: MailboxId,
    item: &FetchItem<'_>,
    attributes: &[FetchAttribute],
    measured: Option<&MessageMeasures>,
    out: &mut Out,
) -> Result<Option<BinaryStream>, MessageError> {
    let message = item.message;
    // Everything that can fail is read (and every BINARY item planned) before the first byte
    // of the response is written.
    let sources = fetch_body::Sources::load(store, mailbox, message.uid, attributes)
        .map_err(MessageError::Read)?;
    let mut planned = plan_binary(&sources, attributes, measured)?;
    let email_id = if attributes.contains(&FetchAttribute::EmailId) {
        Some(store.email_id(mailbox, message.uid).map_err(MessageError::Read)?)
    } else {
        None
    };
    let thread_id = if attributes.contains(&FetchAttribute::ThreadId) {
        Some(store.thread_id(mailbox, message.uid).map_err(MessageError::Read)?)
    } else {
        None
    };
    let mut streamed = Vec::new();
    out.put(b"* ");
    // Under UIDONLY the UID leads the line and is left out of the items, unless it is all
    // that was asked (an item list may not be empty).
    let skip_uid = item.uid_only && attributes.iter().any(|a| *a != FetchAttribute::Uid);
    if item.uid_only {
        encode::number(out.buf(), u64::from(message.uid.get()));
        out.put(b" UIDFETCH (");
    } else {
        encode::number(out.buf(), u64::from(item.msn));
        out.put(b" FETCH (");
    }
    let mut first = true;
    let mut flags_written = false;
    for (attribute, planned) in attributes
        .iter()
        .zip(planned.iter_mut())
        .filter(|(a, _)| !(skip_uid && **a == FetchAttribute::Uid))
    {
        if let (FetchAttribute::Binary { part, .. }, Planned::Binary(Some(plan))) =
            (attribute, &*planned)
            && plan.len > BINARY_INLINE_BYTES_MAX
        {
            // Sent after the other items, over as many slices as it needs.
            streamed.push((part.clone(), plan.clone()));
            continue;
        }
        if !first {
            out.put(b" ");
        }
        first = false;
        match attribute {
            FetchAttribute::Flags => {
                flags_written = true;
                write_flags(out, message.flags, item.keywords, item.recent);
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
            FetchAttribute::EmailId => {
                objectid::write_email_id(out.buf(), email_id.expect("read above"));
            }
            FetchAttribute::ThreadId => {
                objectid::write_thread_id(out.buf(), thread_id.expect("read above"));
            }
            FetchAttribute::SaveDate => objectid::write_save_date(out.buf(), message),
            FetchAttribute::Binary { part, .. } => match (&*planned, sources.message()) {
                (Planned::Binary(Some(plan)), Some(body)) => {
                    fetch_binary::write_inline(out, body, part, plan);
                }
                _ => {
                    fetch_binary::write_label(out, b"BINARY", part);
                    out.put(b"\"\"");
                }
            },
            FetchAttribute::BinarySize { part } => {
                fetch_binary::write_label(out, b"BINARY.SIZE", part);
                let size = if let Planned::Size(size) = planned { *size } else { 0 };
                encode::number(out.buf(), size);
            }
            FetchAttribute::Envelope
            | FetchAttribute::Body
            | FetchAttribute::BodyStructure
            | FetchAttribute::BodySection { .. }
            | FetchAttribute::Rfc822
            | FetchAttribute::Rfc822Header
            | FetchAttribute::Rfc822Text
            | FetchAttribute::Preview { .. } => sources.write(attribute, out),
        }
    }
    if item.add_flags && !flags_written {
        if !first {
            out.put(b" ");
        }
        write_flags(out, message.flags, item.keywords, item.recent);
        first = false;
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
    if !streamed.is_empty() {
        return Ok(Some(BinaryStream::new(message.uid, streamed, !first)));
    }
    out.put(b")\r\n");
    Ok(None)
}

fn write_flags(out: &mut Out, flags: Flags, keywords: &[String], recent: bool) {
    out.put(b"FLAGS ");
    encode::flags(out.buf(), flags, keywords, recent);
}

fn write_modseq(out: &mut Out, modseq: ModSeq) {
    out.put(b"MODSEQ (");
    encode::number(out.buf(), modseq.0);
    out.put(b")");
}
