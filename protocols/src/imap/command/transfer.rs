//! COPY / MOVE between two users' stores: from a shared folder into the user's own mailbox,
//! from the own mailbox into a shared folder, or between two other users' folders.
//!
//! The two mailboxes live in two stores, usually on two shards, and a session only ever holds
//! one store (`route.rs`). So the command travels: it reads a batch of messages on the source
//! store into owned bytes, pauses naming the target's owner (the shard carries the session
//! there, `Step::Elsewhere`), appends the batch there, and comes back for the next one. Nothing
//! of either store crosses but those bytes, flag names and dates.
//!
//! ```text
//!  source store            target store
//!  read batch 1  ───────►  append batch 1          COPY: every batch, then the tagged OK
//!  (MOVE) expunge 1 ◄────  `* OK [COPYUID]`         on the target with the whole COPYUID
//!  read batch 2  ───────►  append batch 2          MOVE: the tagged OK on the source, after
//!  (MOVE) expunge 2 ◄────  `* OK [COPYUID]`         the last expunge
//! ```
//!
//! Durability follows `copy_move.rs`: a MOVE's sources are expunged only after the step that
//! wrote their copies came back, and that step's output (the `* OK [COPYUID ...]` line)
//! waited for the target's flush round. A crash between the two leaves a message in both
//! mailboxes, never in neither. A COPY that fails part way expunges the copies it made (the
//! target store is at hand when it fails), so the target is as before (RFC 9051 §6.4.7).
//!
//! Rights (RFC 4314 §4): `r` on the source (it is selected), `t` and `e` too for MOVE, `i` on
//! the target. Flags the target's rights do not cover are dropped, as for APPEND (`\Seen`
//! needs `s`, `\Deleted` `t`, the others `w`); on another user's mailbox `\Seen` is the
//! reader's own (`UserStore::set_reader`).

use skua_core::disk::Disk;
use skua_core::store::{NewMessage, UserStore};
use skua_core::types::{Flags, InternalDate, Keywords, MailboxId, SystemFlags, Uid, UidValidity};

use super::copy_move::copy_uid;
use super::rights::Access;
use super::slice::Slice;
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, durable, lookup, view};
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::mime::cache::{build_with_keys, thread_keys};

/// The most message bytes one batch carries from the source store to the target's (at least
/// one message goes, however big): bounds what a travelling session holds.
pub(crate) const TRANSFER_BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;

/// A message on its way to the target store.
#[derive(Debug)]
struct Carried {
    source: Uid,
    bytes: Vec<u8>,
    system: SystemFlags,
    /// Keyword names (keyword bits mean nothing in another store).
    keywords: Vec<String>,
    date: InternalDate,
}

/// A COPY or MOVE between two stores, between its steps (see the module docs).
#[derive(Debug)]
pub(crate) struct TransferTask {
    uid: bool,
    move_messages: bool,
    /// The source's store (the selected mailbox's owner; `None`: the session's own).
    source_owner: Option<String>,
    source: MailboxId,
    /// The target's store and the target's name as the client gave it.
    target_owner: Option<String>,
    target_name: String,
    /// The target once found (its id and UIDVALIDITY), on the first visit.
    target: Option<(MailboxId, UidValidity)>,
    /// The messages named, in order; `position` is the next one to read.
    wanted: Vec<Uid>,
    position: usize,
    /// The batch read at the source, not yet appended.
    carried: Vec<Carried>,
    /// (source, target) of every message copied so far.
    pairs: Vec<(Uid, Uid)>,
    /// MOVE: the sources of the last batch, whose copies are durable; expunged on the source.
    to_expunge: Vec<Uid>,
}

impl TransferTask {
    /// The owner of the store the next step runs on (`None`: the session's own).
    pub(crate) fn next_owner(&self) -> Option<String> {
        if self.carried.is_empty() { self.source_owner.clone() } else { self.target_owner.clone() }
    }
}

/// Starts a COPY or MOVE of `wanted` (source UIDs, in the client's order) from the selected
/// mailbox into `target_name` in `target_owner`'s store. Runs on the source store.
pub(crate) fn start<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    request: &super::copy_move::CopyRequest<'_>,
    target_owner: Option<String>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let selected = view(conn);
    let wanted: Vec<Uid> = selected
        .resolve(request.set, request.uid)
        .into_iter()
        .map(|i| selected.uids()[i])
        .collect();
    let task = TransferTask {
        uid: request.uid,
        move_messages: request.move_messages,
        source_owner: conn.store_owner.clone(),
        source: view(conn).mailbox,
        target_owner,
        target_name: request.target_name.to_owned(),
        target: None,
        wanted,
        position: 0,
        carried: Vec::new(),
        pairs: Vec::new(),
        to_expunge: Vec::new(),
    };
    at_source(conn, store, task, out, slice)
}

/// Runs the step of a transfer that belongs to the store at hand.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    task: TransferTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if task.carried.is_empty() {
        at_source(conn, store, task, out, slice)
    } else {
        at_target(conn, store, task, out)
    }
}

/// On the source store: expunges what a MOVE's last batch copied, then reads the next batch
/// (or ends the command).
fn at_source<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut task: TransferTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if conn.selected.as_ref().is_none_or(|selected| selected.mailbox != task.source) {
        // Only the command's end changes the selection; checked since `view()` would panic.
        return Progress::Done(Completion::bad("No mailbox selected"));
    }
    if !task.to_expunge.is_empty() {
        let moved = std::mem::take(&mut task.to_expunge);
        if let Err(error) = store.expunge(task.source, &moved) {
            return Progress::Done(reply::update(&error));
        }
        durable(store, out);
        view(conn).expunged_by_self(&moved, out.buf());
    }
    while task.position < task.wanted.len() {
        if let Err(completion) = read_batch(store, &mut task, slice) {
            return Progress::Done(completion);
        }
        if !task.carried.is_empty() {
            return Progress::Paused(Task::Transfer(task));
        }
    }
    if task.pairs.is_empty() {
        let verb = if task.move_messages { "MOVE" } else { "COPY" };
        return Progress::Done(if task.uid {
            Completion::ok(format!("{verb} completed, nothing matched"))
        } else {
            Completion::no("Messages were expunged").with(Code::ExpungeIssued)
        });
    }
    debug_assert!(task.move_messages, "a COPY ends on the target store");
    Progress::Done(Completion::ok("MOVE completed"))
}

/// Reads the next batch of wanted messages (those still there) into `task.carried`.
fn read_batch<D: Disk>(
    store: &UserStore<D>,
    task: &mut TransferTask,
    slice: &mut Slice,
) -> Result<(), Completion> {
    let end = (task.position + LOOKUP_ONE_BY_ONE_MAX).min(task.wanted.len());
    let chunk = &task.wanted[task.position..end];
    // Messages expunged by another session (but still in this view) are not copied.
    let live = lookup(store, task.source, chunk.iter().copied()).map_err(|e| reply::read(&e))?;
    let keyword_table = store.keyword_table(task.source).map_err(|e| reply::read(&e))?;
    let mut bytes = 0usize;
    let mut taken = 0;
    for &uid in chunk {
        if !task.carried.is_empty() && bytes >= TRANSFER_BATCH_BYTES_MAX {
            break;
        }
        taken += 1;
        let Ok(found) = live.binary_search_by_key(&uid, |m| m.uid) else { continue };
        let meta = &live[found];
        let body = store.body(task.source, uid).map_err(|e| reply::read(&e))?;
        bytes += body.len();
        let keywords = (0..keyword_table.len())
            .filter(|&bit| meta.flags.keywords.0 & (1 << bit) != 0)
            .map(|bit| keyword_table[bit].clone())
            .collect();
        task.carried.push(Carried {
            source: uid,
            bytes: body.to_vec(),
            system: meta.flags.system,
            keywords,
            date: meta.internal_date,
        });
    }
    slice.spend(taken as u64);
    task.position += taken;
    Ok(())
}

/// On the target store: appends the carried batch; a COPY ends here after its last batch.
fn at_target<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut task: TransferTask,
    out: &mut Out,
) -> Progress {
    let (target, validity) = match find_target(conn, store, &task) {
        Ok(found) => found,
        Err(completion) => {
            undo_copies(store, &task);
            return Progress::Done(completion);
        }
    };
    task.target = Some((target, validity));
    let access = super::rights::of(conn, store, target);
    let carried = std::mem::take(&mut task.carried);
    let appended = match append_batch(conn, store, target, access, &carried) {
        Ok(uids) => uids,
        Err(completion) => {
            durable(store, out);
            undo_copies(store, &task);
            return Progress::Done(completion);
        }
    };
    durable(store, out);
    let pairs: Vec<(Uid, Uid)> = carried.iter().map(|m| m.source).zip(appended).collect();
    task.pairs.extend_from_slice(&pairs);
    if task.move_messages {
        // The line carries the copies' durability ticket; the sources go on the next step,
        // after it was written (see the module docs).
        Completion::ok("Moved").with(copy_uid(validity, &pairs)).write("*", out.buf());
        task.to_expunge = pairs.iter().map(|p| p.0).collect();
        return Progress::Paused(Task::Transfer(task));
    }
    if task.position < task.wanted.len() {
        return Progress::Paused(Task::Transfer(task));
    }
    Progress::Done(Completion::ok("COPY completed").with(copy_uid(validity, &task.pairs)))
}

/// The target mailbox in the store at hand, with the right to insert; the same mailbox on every
/// visit (one deleted and created again between two batches is not the target any more).
fn find_target<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    task: &TransferTask,
) -> Result<(MailboxId, UidValidity), Completion> {
    let missing = || Completion::no("No such mailbox").with(Code::TryCreate);
    let id =
        store.mailbox_id(super::route::local_name(conn, &task.target_name)).ok_or_else(missing)?;
    let access = super::rights::of(conn, store, id);
    if !access.insert {
        return Err(access.refusal());
    }
    let validity = store.mailbox_info(id).ok_or_else(missing)?.uid_validity;
    match task.target {
        Some(first) if first != (id, validity) => Err(Completion::no("Target mailbox changed")),
        _ => Ok((id, validity)),
    }
}

/// Appends `carried` to `target` (all or none), with the flags `access` lets the session set
/// (`rights::flags_to_add`). The new UIDs, in order.
fn append_batch<D: Disk>(
    conn: &Conn,
    store: &mut UserStore<D>,
    target: MailboxId,
    access: Access,
    carried: &[Carried],
) -> Result<Vec<Uid>, Completion> {
    let mut flags = Vec::with_capacity(carried.len());
    let mut reader_seen = Vec::with_capacity(carried.len());
    for message in carried {
        let names: Vec<&str> = message.keywords.iter().map(String::as_str).collect();
        let keywords = if names.is_empty() || !access.write {
            Keywords::default()
        } else {
            store.keyword_bits(target, &names).map_err(|e| reply::keywords(&e))?
        };
        let asked = Flags { system: message.system, keywords };
        let (kept, seen) = super::rights::flags_to_add(conn, access, asked);
        flags.push(kept);
        reader_seen.push(seen);
    }
    let built: Vec<_> = carried.iter().map(|m| build_with_keys(&m.bytes)).collect();
    let batch: Vec<NewMessage<'_>> = carried
        .iter()
        .zip(&built)
        .zip(&flags)
        .map(|((message, (cache, keys)), &flags)| NewMessage {
            message: &message.bytes,
            cache,
            flags,
            date: Some(message.date),
            thread: thread_keys(keys),
        })
        .collect();
    let appended = store.append_all(target, &batch).map_err(|e| reply::append(&e))?;
    let uids: Vec<Uid> = appended.iter().map(|&(uid, _)| uid).collect();
    let seen: Vec<Uid> =
        uids.iter().zip(&reader_seen).filter(|(_, seen)| **seen).map(|(&uid, _)| uid).collect();
    super::rights::mark_seen_by_reader(store, target, &seen);
    Ok(uids)
}

/// A COPY failed part way: the copies made so far are expunged from the target (the store at
/// hand), so that it holds no partial result. A MOVE keeps what it moved (RFC 6851 §3.3).
fn undo_copies<D: Disk>(store: &mut UserStore<D>, task: &TransferTask) {
    let Some((target, _)) = task.target else { return };
    if task.move_messages || task.pairs.is_empty() {
        return;
    }
    let copies: Vec<Uid> = task.pairs.iter().map(|p| p.1).collect();
    if let Err(error) = store.expunge(target, &copies) {
        tracing::warn!(%error, copies = copies.len(), "could not undo a partial COPY");
    }
}
