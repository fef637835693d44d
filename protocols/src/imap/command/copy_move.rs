//! COPY / UID COPY (RFC 9051 §6.4.7) and MOVE / UID MOVE (RFC 6851), with UIDPLUS's
//! `[COPYUID uidvalidity source-uids target-uids]` (RFC 4315).
//!
//! MOVE is copy, then expunge of the sources: `* OK [COPYUID ...]`, the `EXPUNGE`s, then the
//! tagged OK (RFC 6851 §4.3). The expunge of a chunk's sources waits until its copies are
//! durable: the command pauses after the copies with the `OK [COPYUID ...]` line, which
//! carries the durability ticket, and expunges on its next turn, after the shard wrote that
//! line (so after the round). Were both in one round, a crash that kept part of the round's
//! writes could keep the expunge and lose the copies: the messages would be in neither
//! mailbox. A crash between the two leaves them in both, which loses nothing.

use std::fmt::Write as _;

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::{MailboxId, Uid, UidValidity};

use super::slice::Slice;
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, durable, lookup, view};
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::SequenceSet;

/// A COPY or MOVE between slices (see `slice.rs`). Each slice copies one chunk of messages;
/// a MOVE reports the chunk with an untagged `OK [COPYUID ...]` (RFC 6851 §4.3 allows one per
/// batch), pauses until the copies are durable, and expunges and reports the chunk's sources
/// on its next turn. A COPY that fails
/// part way expunges what it already copied, so the target is as before (RFC 9051 §6.4.7).
#[derive(Debug)]
pub(crate) struct CopyTask {
    uid: bool,
    move_messages: bool,
    target: MailboxId,
    target_validity: UidValidity,
    /// The messages named, in order; `position` is the next one.
    wanted: Vec<Uid>,
    position: usize,
    /// (source, target) of every message copied so far.
    pairs: Vec<(Uid, Uid)>,
    /// MOVE: sources copied in the last slice, to expunge once the copies are durable.
    to_expunge: Vec<Uid>,
}

/// A parsed COPY or MOVE.
pub(crate) struct CopyRequest<'a> {
    /// UID COPY / UID MOVE
    pub uid: bool,
    /// The messages.
    pub set: &'a SequenceSet,
    /// The target mailbox's name.
    pub target_name: &'a str,
    /// MOVE, not COPY.
    pub move_messages: bool,
}

/// COPY or MOVE: checks the request and runs its first slice.
pub(crate) fn copy<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    request: &CopyRequest<'_>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let CopyRequest { uid, set, target_name, move_messages } = *request;
    let selected = view(conn);
    if move_messages && selected.read_only {
        return Progress::Done(Completion::no("Mailbox is read-only").with(Code::ReadOnly));
    }
    if move_messages && !(selected.access.delete && selected.access.expunge) {
        // MOVE deletes and expunges the sources: `t` and `e` on the source (RFC 4314 §4).
        return Progress::Done(Completion::no("Permission denied").with(Code::NoPerm));
    }
    let target_owner = match super::route::owner_of_name(conn, target_name) {
        Ok(owner) => owner.map(str::to_owned),
        Err(completion) => return Progress::Done(completion),
    };
    if !super::route::same_owner(target_owner.as_deref(), conn.store_owner.as_deref()) {
        // The target is in another user's store: the command travels (`transfer.rs`).
        return super::transfer::start(conn, store, request, target_owner, out, slice);
    }
    let Some(target) = store.mailbox_id(super::route::local_name(conn, target_name)) else {
        return Progress::Done(Completion::no("No such mailbox").with(Code::TryCreate));
    };
    let target_access = super::rights::of(conn, store, target);
    if !target_access.insert {
        return Progress::Done(target_access.refusal());
    }
    let Some(target_info) = store.mailbox_info(target) else {
        return Progress::Done(Completion::no("No such mailbox").with(Code::TryCreate));
    };
    let selected = view(conn);
    let wanted: Vec<Uid> =
        selected.resolve(set, uid).into_iter().map(|i| selected.uids()[i]).collect();
    let task = CopyTask {
        uid,
        move_messages,
        target,
        target_validity: target_info.uid_validity,
        wanted,
        position: 0,
        pairs: Vec::new(),
        to_expunge: Vec::new(),
    };
    resume(conn, store, task, out, slice)
}

/// Runs one more slice of a COPY or MOVE.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut task: CopyTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    if !task.to_expunge.is_empty() {
        // The copies went out with the last slice's write, which waited for them to be
        // durable: the sources may go now.
        let moved = std::mem::take(&mut task.to_expunge);
        if let Err(error) = store.expunge(view(conn).mailbox, &moved) {
            return Progress::Done(reply::update(&error));
        }
        durable(store, out);
        view(conn).expunged_by_self(&moved, out.buf());
    }
    while task.position < task.wanted.len() {
        if slice.spent(out) {
            return Progress::Paused(Task::Copy(task));
        }
        let end = (task.position + LOOKUP_ONE_BY_ONE_MAX).min(task.wanted.len());
        slice.spend((end - task.position) as u64);
        if let Err(completion) = copy_chunk(conn, store, &mut task, end, out) {
            return Progress::Done(completion);
        }
        task.position = end;
        if !task.to_expunge.is_empty() {
            // Wait for the round that makes the copies durable (see the module docs).
            return Progress::Paused(Task::Copy(task));
        }
    }
    let verb = if task.move_messages { "MOVE" } else { "COPY" };
    if task.pairs.is_empty() {
        return Progress::Done(if task.uid {
            Completion::ok(format!("{verb} completed, nothing matched"))
        } else {
            Completion::no("Messages were expunged").with(Code::ExpungeIssued)
        });
    }
    if task.move_messages {
        return Progress::Done(Completion::ok("MOVE completed"));
    }
    Progress::Done(
        Completion::ok("COPY completed").with(copy_uid(task.target_validity, &task.pairs)),
    )
}

/// Copies the wanted messages from `task.position` to `end`; for MOVE, reports the chunk's
/// COPYUID and notes its sources for the expunge of the next turn.
fn copy_chunk<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    task: &mut CopyTask,
    end: usize,
    out: &mut Out,
) -> Result<(), Completion> {
    let source = view(conn).mailbox;
    let chunk = &task.wanted[task.position..end];
    // Messages expunged by another session (but still in this view) are not copied.
    let live = lookup(store, source, chunk.iter().copied()).map_err(|e| reply::read(&e))?;
    let uids: Vec<Uid> =
        chunk.iter().copied().filter(|u| live.binary_search_by_key(u, |m| m.uid).is_ok()).collect();
    if uids.is_empty() {
        return Ok(());
    }
    let pairs = match store.copy(source, &uids, task.target) {
        Ok(pairs) => pairs,
        Err(error) => {
            undo_copies(store, task);
            return Err(reply::copy(&error));
        }
    };
    durable(store, out);
    task.pairs.extend_from_slice(&pairs);
    if !task.move_messages {
        return Ok(());
    }
    // The line goes out with the copies' durability ticket; the expunge waits for the next
    // turn (see the module docs).
    Completion::ok("Moved").with(copy_uid(task.target_validity, &pairs)).write("*", out.buf());
    task.to_expunge = pairs.iter().map(|p| p.0).collect();
    Ok(())
}

/// A COPY failed part way: the copies made so far are expunged from the target, so that it
/// holds no partial result. (MOVE keeps what it moved: each moved message is gone from the
/// source and reported, RFC 6851 §3.3.)
fn undo_copies<D: Disk>(store: &mut UserStore<D>, task: &CopyTask) {
    if task.move_messages || task.pairs.is_empty() {
        return;
    }
    let copies: Vec<Uid> = task.pairs.iter().map(|p| p.1).collect();
    if let Err(error) = store.expunge(task.target, &copies) {
        tracing::warn!(%error, copies = copies.len(), "could not undo a partial COPY");
    }
}

/// `[COPYUID validity sources targets]` for `pairs`.
pub(crate) fn copy_uid(validity: UidValidity, pairs: &[(Uid, Uid)]) -> Code {
    let source_set = run_set(pairs.iter().map(|p| p.0.get()));
    let target_set = run_set(pairs.iter().map(|p| p.1.get()));
    Code::CopyUid(validity, source_set, target_set)
}

/// Numbers in the given order as a set, runs of consecutive values joined: `1:3,7`. The order
/// is kept because COPYUID pairs source and target sets position by position.
pub(crate) fn run_set(numbers: impl Iterator<Item = u32>) -> String {
    let mut text = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |text: &mut String, (start, end): (u32, u32)| {
        if !text.is_empty() {
            text.push(',');
        }
        // Writing to a String cannot fail.
        let _ = if start == end { write!(text, "{start}") } else { write!(text, "{start}:{end}") };
    };
    for n in numbers {
        run = match run {
            Some((start, end)) if end.checked_add(1) == Some(n) => Some((start, n)),
            Some(done) => {
                flush(&mut text, done);
                Some((n, n))
            }
            None => Some((n, n)),
        };
    }
    if let Some(done) = run {
        flush(&mut text, done);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_sets_keep_order() {
        assert_eq!(run_set([1, 2, 3, 7].into_iter()), "1:3,7");
        assert_eq!(run_set([9, 4, 5].into_iter()), "9,4:5");
        assert_eq!(run_set(std::iter::empty()), "");
    }
}
