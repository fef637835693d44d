//! EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, §6.4.9): removes `\Deleted` messages (those in
//! the UID set, for UID EXPUNGE) and reports each with `* n EXPUNGE`.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::{SystemFlags, Uid};

use super::slice::Slice;
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, durable, lookup, view};
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::SequenceSet;

/// An EXPUNGE between slices (see `slice.rs`): each slice expunges the `\\Deleted` messages
/// among the next chunk of the view's UIDs and reports them.
#[derive(Debug)]
pub(crate) struct ExpungeTask {
    /// UID EXPUNGE's set, and the largest UID when it started (for `*`).
    uids: Option<(SequenceSet, u32)>,
    /// The view's UIDs below this one are done. The view shrinks as messages are reported, so
    /// the cursor is a UID, not a position.
    next_uid: u32,
}

/// EXPUNGE (`uids == None`) or UID EXPUNGE: checks the request and runs its first slice.
pub(crate) fn expunge<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    uids: Option<SequenceSet>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let selected = view(conn);
    if selected.read_only {
        return Progress::Done(Completion::no("Mailbox is read-only").with(Code::ReadOnly));
    }
    if !selected.access.expunge {
        return Progress::Done(Completion::no("Permission denied").with(Code::NoPerm));
    }
    let largest = selected.uids().last().map_or(0, |u| u.get());
    let uids = match uids.map(|set| selected.concrete(&set)) {
        // `UID EXPUNGE $` with nothing saved (or all of it gone): nothing to expunge.
        Some(None) => return Progress::Done(Completion::ok("EXPUNGE completed")),
        Some(Some(set)) => Some(set),
        None => None,
    };
    let task = ExpungeTask { uids: uids.map(|set| (set, largest)), next_uid: 1 };
    resume(conn, store, task, out, slice)
}

/// Runs one more slice of an EXPUNGE.
pub(crate) fn resume<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    mut task: ExpungeTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    loop {
        if slice.spent(out) {
            return Progress::Paused(Task::Expunge(task));
        }
        let selected = view(conn);
        let mailbox = selected.mailbox;
        let from = selected.uids().partition_point(|u| u.get() < task.next_uid);
        let end = (from + LOOKUP_ONE_BY_ONE_MAX).min(selected.len());
        if from == end {
            return Progress::Done(Completion::ok("EXPUNGE completed"));
        }
        let chunk: Vec<Uid> = selected.uids()[from..end].to_vec();
        slice.spend(chunk.len() as u64);
        task.next_uid = chunk[chunk.len() - 1].get().saturating_add(1);
        let messages = match lookup(store, mailbox, chunk.iter().copied()) {
            Ok(messages) => messages,
            Err(error) => return Progress::Done(reply::read(&error)),
        };
        let doomed: Vec<Uid> = chunk
            .iter()
            .copied()
            .filter(|uid| {
                task.uids.as_ref().is_none_or(|(set, largest)| set.contains(uid.get(), *largest))
            })
            .filter(|uid| {
                messages
                    .binary_search_by_key(uid, |m| m.uid)
                    .is_ok_and(|i| messages[i].flags.system.contains(SystemFlags::DELETED))
            })
            .collect();
        if doomed.is_empty() {
            continue;
        }
        if let Err(error) = store.expunge(mailbox, &doomed) {
            return Progress::Done(reply::update(&error));
        }
        durable(store, out);
        view(conn).expunged_by_self(&doomed, out.buf());
    }
}
