//! COPY / UID COPY (RFC 9051 §6.4.7) and MOVE / UID MOVE (RFC 6851), with UIDPLUS's
//! `[COPYUID uidvalidity source-uids target-uids]` (RFC 4315).
//!
//! MOVE is copy, then expunge of the sources: `* OK [COPYUID ...]`, the `EXPUNGE`s, then the
//! tagged OK (RFC 6851 §4.3), all released after the one group commit that covers both.

use std::fmt::Write as _;

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::Uid;

use super::{durable, lookup, view};
use crate::imap::reply::{self, Code, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::SequenceSet;

/// COPY (`move_messages == false`) or MOVE.
pub(crate) fn copy<D: Disk>(
    conn: &mut Conn,
    store: &mut UserStore<D>,
    uid: bool,
    set: &SequenceSet,
    target_name: &str,
    move_messages: bool,
    out: &mut Out,
) -> Completion {
    let verb = if move_messages { "MOVE" } else { "COPY" };
    let selected = view(conn);
    if move_messages && selected.read_only {
        return Completion::no("Mailbox is read-only").with(Code::ReadOnly);
    }
    let source = selected.mailbox;
    let Some(target) = store.mailbox_id(target_name) else {
        return Completion::no("No such mailbox").with(Code::TryCreate);
    };
    let Some(target_info) = store.mailbox_info(target) else {
        return Completion::no("No such mailbox").with(Code::TryCreate);
    };
    let wanted: Vec<Uid> =
        selected.resolve(set, uid).into_iter().map(|i| selected.uids()[i]).collect();
    // Messages expunged by another session (but still in this view) are not copied.
    let live = match lookup(store, source, wanted.iter().copied()) {
        Ok(messages) => messages,
        Err(error) => return reply::read(&error),
    };
    let uids: Vec<Uid> =
        wanted.into_iter().filter(|u| live.binary_search_by_key(u, |m| m.uid).is_ok()).collect();
    if uids.is_empty() {
        return if uid {
            Completion::ok(format!("{verb} completed, nothing matched"))
        } else {
            Completion::no("Messages were expunged").with(Code::ExpungeIssued)
        };
    }
    let pairs = match store.copy(source, &uids, target) {
        Ok(pairs) => pairs,
        Err(error) => return reply::copy(&error),
    };
    let source_set = run_set(pairs.iter().map(|p| p.0.get()));
    let target_set = run_set(pairs.iter().map(|p| p.1.get()));
    let code = Code::CopyUid(target_info.uid_validity, source_set, target_set);
    if !move_messages {
        durable(store, out);
        return Completion::ok("COPY completed").with(code);
    }
    let moved: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
    if let Err(error) = store.expunge(source, &moved) {
        durable(store, out);
        return reply::update(&error);
    }
    durable(store, out);
    Completion::ok("Moved").with(code).write("*", out.buf());
    view(conn).expunged_by_self(&moved, out.buf());
    Completion::ok("MOVE completed")
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
