//! QRESYNC (RFC 7162 §3.2): `ENABLE QRESYNC`, the resynchronisation a `SELECT`/`EXAMINE` with
//! the `QRESYNC` parameter does, and `UID FETCH ... (CHANGEDSINCE m VANISHED)`.
//!
//! Once enabled, the session's view reports expunges as `* VANISHED uids`
//! ([`View::vanished`](crate::imap::view::View)), wherever `* n EXPUNGE` went before.
//!
//! What vanished since a client's modseq comes from the store's expunge history
//! (`UserStore::vanished_since`): expunged entries above the modseq, and UIDs whose entries
//! were lost (reported to everyone, so the answer is a superset, never missing a UID). Before
//! it goes out it is cut to the UIDs the client asked about (`known-uids`, the UID FETCH set)
//! and never names a UID this session still shows as a message: `VANISHED (EARLIER)` does
//! not change the client's message count (RFC 7162 §3.2.10), so naming a message the client
//! still counts would leave its numbers wrong; such a message is reported by the next sync's
//! plain `VANISHED` instead. `seq-match-data` is accepted and not used: it only lets a server
//! shorten its answer, and skua's history is exact above the modseq anyway.
//!
//! A QRESYNC SELECT's FETCHes are resumable ([`ResyncTask`]): the VANISHED (EARLIER) line
//! comes first, then the changed messages a slice at a time, then the tagged OK.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::{ModSeq, Uid};

use super::slice::Slice;
use super::{LOOKUP_ONE_BY_ONE_MAX, Progress, Task, durable, lookup, view};
use crate::imap::encode;
use crate::imap::reply::{self, Completion};
use crate::imap::session::Conn;
use crate::imap::session::out::Out;
use crate::imap::types::{QresyncParams, SeqBound, SequenceSet};
use crate::imap::view::View;

/// `ENABLE QRESYNC`: from now on expunges go out as VANISHED (the caller turns CONDSTORE on
/// with it, RFC 7162 §3.2.3).
pub(crate) fn enable(conn: &mut Conn) {
    conn.enabled.qresync = true;
    if let Some(view) = conn.selected.as_mut() {
        view.vanished = true;
    }
}

/// The QRESYNC part of a SELECT/EXAMINE (RFC 7162 §3.2.5.2), after its usual responses and
/// with `view` just built: when the UIDVALIDITY matches, `* VANISHED (EARLIER)` for what the
/// client knew and is gone since its modseq, and `Some(modseq)`: the FETCHes of every message
/// changed (or added) since follow, a slice at a time ([`ResyncTask`]). A UIDVALIDITY
/// mismatch: `None`, nothing more (the client must resynchronise from scratch).
pub(crate) fn vanished_after_select<D: Disk>(
    view: &View,
    store: &UserStore<D>,
    params: &QresyncParams,
    out: &mut Out,
) -> Result<Option<ModSeq>, Completion> {
    if params.uid_validity != view.uid_validity.get() {
        return Ok(None);
    }
    let since = ModSeq(params.modseq);
    let vanished = store.vanished_since(view.mailbox, since).map_err(|e| reply::read(&e))?;
    let largest = store.mailbox_marks(view.mailbox).map_or(0, |m| m.uid_next.get() - 1);
    let known = params.known_uids.as_ref().map(|set| normalized(set, largest));
    let uids = visible_vanished(&vanished, known.as_deref(), view);
    if !uids.is_empty() {
        write_vanished_earlier(&uids, out.buf());
        durable(store, out);
    }
    Ok(Some(since))
}

/// The FETCHes of a QRESYNC SELECT between slices: `* n FETCH (FLAGS .. MODSEQ .. UID ..)` for
/// each message of the new view whose modseq passed the client's. Which ones is found in one
/// pass over the index records when the task starts (O(n), as SELECT itself is; four bytes per
/// changed message kept), and the answers go out a lookup-sized chunk at a time, so a resync
/// after a long absence from a big mailbox never builds its whole answer at once. A message
/// another session changes meanwhile is reported as it is now; one it expunges is skipped
/// (the sync after the command reports it).
#[derive(Debug)]
pub(crate) struct ResyncTask {
    /// The changed messages, ascending; `position` is the next one to answer.
    changed: Vec<Uid>,
    position: usize,
    /// The SELECT's tagged reply, for when the walk is done.
    completion: Completion,
}

impl ResyncTask {
    /// The FETCHes a SELECT of `view` that answers `completion` owes a client at modseq
    /// `since`.
    ///
    /// # Errors
    /// The store's read error, as the tagged reply.
    pub(crate) fn new<D: Disk>(
        view: &View,
        store: &UserStore<D>,
        since: ModSeq,
        completion: Completion,
    ) -> Result<ResyncTask, Completion> {
        let messages = store.live_messages(view.mailbox).map_err(|e| reply::read(&e))?;
        let changed = messages.filter(|m| m.modseq > since).map(|m| m.uid).collect();
        Ok(ResyncTask { changed, position: 0, completion })
    }
}

/// Runs one more slice of a QRESYNC SELECT's FETCHes.
pub(crate) fn resume<D: Disk>(
    conn: &Conn,
    store: &UserStore<D>,
    mut task: ResyncTask,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    let Some(view) = conn.selected.as_ref() else {
        return Progress::Done(Completion::bad("No mailbox selected"));
    };
    let keywords = store.keyword_table(view.mailbox).unwrap_or_default();
    while task.position < task.changed.len() {
        if slice.spent(out) {
            return Progress::Paused(Task::Resync(task));
        }
        let end = (task.position + LOOKUP_ONE_BY_ONE_MAX).min(task.changed.len());
        let chunk = &task.changed[task.position..end];
        task.position = end;
        slice.spend(chunk.len() as u64);
        let messages = match lookup(store, view.mailbox, chunk.iter().copied()) {
            Ok(messages) => messages,
            Err(error) => return Progress::Done(reply::read(&error)),
        };
        let written = out.buffered();
        for uid in chunk {
            let Ok(index) = messages.binary_search_by_key(uid, |m| m.uid) else {
                continue;
            };
            if let Some(msn) = view.msn_of(*uid) {
                let recent = view.is_recent(*uid);
                view.write_flags_update(out.buf(), msn, &messages[index], keywords, true, recent);
            }
        }
        if out.buffered() != written {
            durable(store, out);
        }
    }
    Progress::Done(task.completion)
}

/// Checks a FETCH's `VANISHED` modifier (RFC 7162 §3.2.6): only with UID FETCH, with
/// CHANGEDSINCE, and once QRESYNC is enabled; `Err` is the BAD to answer.
pub(crate) fn check_fetch_modifier(
    conn: &Conn,
    uid: bool,
    changed_since: Option<u64>,
) -> Result<(), Completion> {
    if !conn.enabled.qresync {
        return Err(Completion::bad("VANISHED needs ENABLE QRESYNC"));
    }
    if !uid {
        return Err(Completion::bad("VANISHED is only allowed with UID FETCH"));
    }
    if changed_since.is_none() {
        return Err(Completion::bad("VANISHED needs CHANGEDSINCE"));
    }
    Ok(())
}

/// `UID FETCH set (...) (CHANGEDSINCE m VANISHED)`: `* VANISHED (EARLIER)` with the UIDs of
/// `set` expunged since `since`, written before the FETCH responses.
pub(crate) fn fetch_vanished<D: Disk>(
    conn: &mut Conn,
    store: &UserStore<D>,
    set: &SequenceSet,
    since: u64,
    out: &mut Out,
) -> Result<(), Completion> {
    let view = view(conn);
    let vanished =
        store.vanished_since(view.mailbox, ModSeq(since)).map_err(|e| reply::read(&e))?;
    // `*` is the largest UID in use: the view's, or above it one the history names.
    let largest = store.mailbox_marks(view.mailbox).map_or(0, |m| m.uid_next.get() - 1);
    let largest = largest.max(view.uids().last().map_or(0, |u| u.get()));
    let asked = if set.is_saved() {
        // `$`: the saved result's UIDs still in the view; none of them has vanished for
        // this client yet.
        Vec::new()
    } else {
        normalized(set, largest)
    };
    let uids = visible_vanished(&vanished, Some(&asked), view);
    write_vanished_earlier(&uids, out.buf());
    Ok(())
}

/// `set`'s ranges as ascending, disjoint inclusive `(low, high)` pairs, `*` as `largest`.
fn normalized(set: &SequenceSet, largest: u32) -> Vec<(u32, u32)> {
    let value = |b: SeqBound| match b {
        SeqBound::Value(v) => v,
        SeqBound::Largest => largest,
    };
    let mut ranges: Vec<(u32, u32)> = set
        .ranges()
        .iter()
        .map(|&(a, b)| (value(a).min(value(b)), value(a).max(value(b))))
        .filter(|&(low, _)| low >= 1)
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (low, high) in ranges {
        match merged.last_mut() {
            Some(last) if low <= last.1.saturating_add(1) => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

/// `vanished` (the store's ranges) cut to `asked` (all when `None`), without any UID the
/// view still holds; ascending disjoint ranges. O((ranges + asked) × log view).
fn visible_vanished(
    vanished: &[std::ops::RangeInclusive<u32>],
    asked: Option<&[(u32, u32)]>,
    view: &View,
) -> Vec<(u32, u32)> {
    let all = [(1, u32::MAX)];
    let asked = asked.unwrap_or(&all);
    let mut result = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < vanished.len() && j < asked.len() {
        let (a, b) = (*vanished[i].start(), *vanished[i].end());
        let (c, d) = asked[j];
        let (low, high) = (a.max(c), b.min(d));
        if low <= high {
            subtract_view(low, high, view, &mut result);
        }
        if b < d {
            i += 1;
        } else {
            j += 1;
        }
    }
    result
}

/// Pushes `low..=high` without the view's UIDs, split where they fall.
fn subtract_view(low: u32, high: u32, view: &View, result: &mut Vec<(u32, u32)>) {
    let uids = view.uids();
    let start = uids.partition_point(|u| u.get() < low);
    let end = uids.partition_point(|u| u.get() <= high);
    // u64: the UID after `u32::MAX` must not wrap.
    let mut from = u64::from(low);
    for uid in &uids[start..end] {
        let uid = u64::from(uid.get());
        if uid > from {
            result.push((narrow(from), narrow(uid - 1)));
        }
        from = uid + 1;
    }
    if from <= u64::from(high) {
        result.push((narrow(from), high));
    }
}

/// A value known to fit (at most a UID).
fn narrow(value: u64) -> u32 {
    u32::try_from(value).expect("at most a UID")
}

/// `* VANISHED (EARLIER) uid-set` when there is anything to name.
fn write_vanished_earlier(ranges: &[(u32, u32)], out: &mut Vec<u8>) {
    if ranges.is_empty() {
        return;
    }
    out.extend_from_slice(b"* VANISHED (EARLIER) ");
    for (i, &(low, high)) in ranges.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        encode::number(out, u64::from(low));
        if high != low {
            out.push(b':');
            encode::number(out, u64::from(high));
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use skua_core::store::MessageMeta;
    use skua_core::types::{Flags, InternalDate, MailboxId, Uid, UidValidity};
    use std::num::NonZeroU32;

    fn view_of(uids: &[u32]) -> View {
        let messages: Vec<MessageMeta> = uids
            .iter()
            .map(|&u| MessageMeta {
                uid: Uid::new(u).unwrap(),
                modseq: ModSeq(1),
                flags: Flags::default(),
                internal_date: InternalDate { unix_seconds: 0, zone_minutes: 0 },
                size: 1,
                save_date: None,
            })
            .collect();
        let validity = UidValidity(NonZeroU32::new(1).unwrap());
        View::new(MailboxId(1), false, validity, &messages, ModSeq(1), 0)
    }

    proptest::proptest! {
        /// The range arithmetic is the set definition: a UID is named exactly when it
        /// vanished, was asked about, and is not in the view.
        #[test]
        fn visible_vanished_is_the_set_definition(
            gone in proptest::collection::btree_set(1u32..80, 0..30),
            asked in proptest::collection::vec((1u32..90, 1u32..90), 0..4),
            shown in proptest::collection::btree_set(1u32..80, 0..30),
            all in proptest::bool::ANY,
        ) {
            let gone: Vec<u32> = gone.into_iter().collect();
            let mut vanished: Vec<std::ops::RangeInclusive<u32>> = Vec::new();
            for &u in &gone {
                match vanished.last_mut() {
                    Some(last) if *last.end() + 1 == u => *last = *last.start()..=u,
                    _ => vanished.push(u..=u),
                }
            }
            let shown: Vec<u32> = shown.into_iter().collect();
            let view = view_of(&shown);
            let set = SequenceSet::new(
                asked.iter().map(|&(a, b)| (SeqBound::Value(a), SeqBound::Value(b))).collect(),
            );
            let asked_ranges = set.as_ref().map(|s| normalized(s, 100)).unwrap_or_default();
            let filter = if all { None } else { Some(&asked_ranges[..]) };
            let result = visible_vanished(&vanished, filter, &view);
            let named: Vec<u32> =
                result.iter().flat_map(|&(low, high)| low..=high).collect();
            let expected: Vec<u32> = gone
                .iter()
                .copied()
                .filter(|u| all || asked_ranges.iter().any(|&(l, h)| l <= *u && *u <= h))
                .filter(|u| !shown.contains(u))
                .collect();
            proptest::prop_assert_eq!(named, expected);
            proptest::prop_assert!(result.windows(2).all(|w| w[0].1 < w[1].0));
        }
    }
}
