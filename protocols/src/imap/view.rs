//! The selected-mailbox view: what one session has told its client about the mailbox.
//!
//! IMAP message sequence numbers are per session: they change only when *this* session reports
//! an `EXPUNGE` or `EXISTS`. The view keeps the session's own MSN → UID list and the highest
//! modseq up to which flag changes were reported, and after each command compares them with the
//! store to produce the untagged updates the client is owed (RFC 9051 §7.4.1, §5.2):
//!
//! * `* n EXPUNGE` for messages gone from the store — only when the command allows it (not
//!   during FETCH, STORE or SEARCH, where numbers must stay put); sent in descending order so
//!   each number is right when the client applies it; once the session enabled QRESYNC
//!   ([`View::vanished`]), one `* VANISHED uids` instead, at the same points (RFC 7162
//!   §3.2.10);
//! * `* n EXISTS` when new messages arrived;
//! * `* n FETCH (FLAGS (...) UID u)` for messages whose modseq passed the reported one,
//!   except changes this session made and already reported (or asked to be silent about).
//!
//! Memory is four bytes per message plus a short list of own changes: many idle sessions on a
//! big mailbox must stay cheap.
//!
//! Time must stay cheap too: the view keeps the store's marks of the mailbox (UIDNEXT,
//! HIGHESTMODSEQ, count) from when it last matched the store, and when the marks show that
//! only appends happened since ([`View::appended_range`]), a sync needs only the new records
//! ([`View::sync_appended`]), not the whole mailbox: a delivery costs each IDLE session
//! O(new × log n), not O(n). Any other change (another session's STORE or EXPUNGE) is read
//! from the store's modseq journal, what changed since the modseq the view last matched
//! ([`View::sync_changes`], `view_changes.rs`): O(changes × log n) as well.

use std::ops::Range;

use skua_core::store::{MailboxMarks, MessageMeta};
use skua_core::types::{MailboxId, ModSeq, Uid, UidValidity};

use crate::imap::encode;
use crate::imap::types::{SeqBound, SequenceSet};

#[path = "view_changes.rs"]
mod changes;

/// The state of a selected mailbox as this session's client knows it.
#[derive(Debug)]
pub struct View {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Whose store `mailbox` is in: `None` for the session's own user, else the owner's
    /// canonical name (a shared folder, `namespace.rs`). A mailbox id means nothing in any
    /// other store: the session only ever uses the view with its owner's store.
    pub owner: Option<String>,
    /// The session's rights in the mailbox, read at SELECT (everything on an own mailbox).
    pub(crate) access: crate::imap::command::rights::Access,
    /// Selected with EXAMINE (or not writable).
    pub read_only: bool,
    /// UIDVALIDITY at selection (fixed for the mailbox id).
    pub uid_validity: UidValidity,
    /// MSN `i + 1` is `uids[i]`; strictly increasing.
    uids: Vec<Uid>,
    /// Every flag change with a modseq at or below this was reported (or predates SELECT).
    reported_modseq: ModSeq,
    /// The store's change counter at the last sync: unchanged means nothing to compare.
    change_counter: u64,
    /// Changes made by this session since the last sync, already reported or silent.
    own_changes: Vec<(Uid, ModSeq)>,
    /// How many keywords the client was told about in `FLAGS`.
    pub keywords_announced: usize,
    /// The store's marks of the mailbox when the view last matched it exactly (same live
    /// UIDs, every flag change reported): lets a sync tell "only appends since" cheaply.
    /// `None` while expunges are deferred or before the first mark.
    marks: Option<MailboxMarks>,
    /// A modseq up to which the view follows the store: every expunge at or below it was
    /// reported, and every other change was reported (or is this session's own). What
    /// [`View::sync_changes`] asks the store's journal about; `None` before the first mark.
    synced: Option<ModSeq>,
    /// The UID ranges (`from..to`, ascending, disjoint) that are `\Recent` for this session:
    /// IMAP4rev1 only, empty for a session that enabled IMAP4rev2.
    recent: Vec<(u32, u32)>,
    /// The UIDs `$` stands for (SEARCHRES): the last `SEARCH RETURN (SAVE)` in this selection,
    /// ascending. A new SELECT starts a new view, so the result is reset with it (RFC 5182).
    saved: Vec<Uid>,
    /// QRESYNC is on for this session: expunges go out as `* VANISHED uid-set` (RFC 7162
    /// §3.2.10), never as `* n EXPUNGE`.
    pub vanished: bool,
    /// UIDONLY is on for this session (RFC 9586): FETCH data goes out as
    /// `* uid UIDFETCH (...)` ([`View::write_flags_update`]).
    pub uid_only: bool,
    /// Searches kept up to date by `RETURN (UPDATE)` (RFC 5267 §4.3, `command/context.rs`);
    /// they end with the selection.
    pub(crate) contexts: crate::imap::command::context::Contexts,
}

/// What `sync` found to report, already written to the output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// EXPUNGE responses sent.
    pub expunged: usize,
    /// Whether EXISTS was sent.
    pub exists_sent: bool,
    /// FETCH responses sent.
    pub fetches: usize,
}

impl View {
    /// A view of `messages` as they are now (the SELECT snapshot).
    #[must_use]
    pub fn new(
        mailbox: MailboxId,
        read_only: bool,
        uid_validity: UidValidity,
        messages: &[MessageMeta],
        highest_modseq: ModSeq,
        change_counter: u64,
    ) -> View {
        let uids: Vec<Uid> = messages.iter().map(|m| m.uid).collect();
        debug_assert!(uids.windows(2).all(|w| w[0] < w[1]));
        View {
            mailbox,
            owner: None,
            access: crate::imap::command::rights::Access::ALL,
            read_only,
            uid_validity,
            uids,
            reported_modseq: highest_modseq,
            change_counter,
            own_changes: Vec::new(),
            keywords_announced: 0,
            marks: None,
            synced: None,
            recent: Vec::new(),
            saved: Vec::new(),
            vanished: false,
            uid_only: false,
            contexts: crate::imap::command::context::Contexts::default(),
        }
    }

    /// Saves a search result for `$` (SEARCHRES, RFC 5182): these UIDs, ascending.
    pub fn save_result(&mut self, uids: Vec<Uid>) {
        debug_assert!(uids.windows(2).all(|w| w[0] < w[1]));
        self.saved = uids;
    }

    /// `set` with `$` replaced by the UIDs it stands for that are still in the view, as a UID
    /// set (`None` when none is left): for commands that test membership by UID (SEARCH keys,
    /// UID EXPUNGE). Any other set is returned as it is.
    #[must_use]
    pub fn concrete(&self, set: &SequenceSet) -> Option<SequenceSet> {
        if !set.is_saved() {
            return Some(set.clone());
        }
        let live: Vec<u32> = self
            .saved
            .iter()
            .filter(|u| self.uids.binary_search(u).is_ok())
            .map(|u| u.get())
            .collect();
        SequenceSet::of_sorted(&live)
    }

    /// Makes the messages with UIDs in `from..to` `\Recent` for this session (a claim, or for
    /// EXAMINE what no session has claimed). Ranges arrive in ascending order.
    pub fn add_recent(&mut self, from: Uid, to: Uid) {
        let (from, to) = (from.get(), to.get());
        if from >= to {
            return;
        }
        match self.recent.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(to),
            _ => self.recent.push((from, to)),
        }
    }

    /// True when `uid` is `\Recent` for this session.
    #[must_use]
    pub fn is_recent(&self, uid: Uid) -> bool {
        let uid = uid.get();
        let after = self.recent.partition_point(|&(from, _)| from <= uid);
        after > 0 && uid < self.recent[after - 1].1
    }

    /// How many messages the client knows are `\Recent` for this session (`* n RECENT`).
    #[must_use]
    pub fn recent_count(&self) -> usize {
        self.recent
            .iter()
            .map(|&(from, to)| {
                let start = self.uids.partition_point(|uid| uid.get() < from);
                let end = self.uids.partition_point(|uid| uid.get() < to);
                end - start
            })
            .sum()
    }

    /// Number of messages the client knows (`EXISTS`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.uids.len()
    }

    /// True when the client knows no message.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    /// The UIDs in MSN order.
    #[must_use]
    pub fn uids(&self) -> &[Uid] {
        &self.uids
    }

    /// The MSN (1-based) of `uid`, if the client knows it.
    #[must_use]
    pub fn msn_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(msn_from_index)
    }

    /// Indexes (0-based) of the messages a sequence set names, ascending, duplicates removed.
    /// With `uid`, the set holds UIDs (`*` = the largest UID known), otherwise MSNs.
    #[must_use]
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<usize> {
        if set.is_saved() {
            // `$`: the saved UIDs still in the view, whether the command is UID or not.
            return self.saved.iter().filter_map(|u| self.uids.binary_search(u).ok()).collect();
        }
        let len = self.uids.len();
        let intervals = self.intervals(set, uid);
        let total: usize = intervals.iter().map(|(start, end)| end - start).sum();
        let mut indexes = Vec::with_capacity(total.min(len));
        for (start, end) in intervals {
            indexes.extend(start..end);
        }
        indexes
    }

    /// The view-index intervals `[start, end)` a (non-`$`) set names, sorted and disjoint:
    /// each range becomes an interval (a binary search for UIDs), so this costs
    /// O(ranges × log n), not a scan of the mailbox. What [`View::resolve`] and FETCH's
    /// PARTIAL page (`command/fetch_partial.rs`) walk.
    #[must_use]
    pub(crate) fn intervals(&self, set: &SequenceSet, uid: bool) -> Vec<(usize, usize)> {
        let len = self.uids.len();
        let largest = if uid {
            self.uids.last().map_or(0, |u| u.get())
        } else {
            u32::try_from(len).unwrap_or(u32::MAX)
        };
        let value = |b: SeqBound| match b {
            SeqBound::Value(v) => v,
            SeqBound::Largest => largest,
        };
        let interval = |&(a, b): &(SeqBound, SeqBound)| {
            let (low, high) = (value(a).min(value(b)), value(a).max(value(b)));
            let (start, end) = if uid {
                let start = self.uids.partition_point(|u| u.get() < low);
                let end = self.uids.partition_point(|u| u.get() <= high);
                (start, end)
            } else {
                let start = (low.max(1) - 1) as usize;
                (start.min(len), (high as usize).min(len))
            };
            (start < end).then_some((start, end))
        };
        let mut intervals: Vec<(usize, usize)> = set.ranges().iter().filter_map(interval).collect();
        intervals.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(intervals.len());
        for (start, end) in intervals {
            match merged.last_mut() {
                Some((_, last_end)) if start <= *last_end => *last_end = (*last_end).max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// False when a sequence-number set names a message the client cannot know: a number
    /// above `EXISTS` (RFC 9051 §9, `seq-number`). A range with `*` (such as `1:*` on an empty
    /// mailbox) is accepted and simply matches what exists.
    #[must_use]
    pub fn msn_set_valid(&self, set: &SequenceSet) -> bool {
        if set.is_saved() {
            return true;
        }
        let len = u32::try_from(self.uids.len()).unwrap_or(u32::MAX);
        set.ranges().iter().all(|&(a, b)| match (a, b) {
            (SeqBound::Value(a), SeqBound::Value(b)) => a <= len && b <= len,
            _ => true,
        })
    }

    /// Every flag change with a modseq at or below this was reported to the client (or
    /// predates SELECT).
    #[must_use]
    pub fn reported_modseq(&self) -> ModSeq {
        self.reported_modseq
    }

    /// Records a change this session made (and reported, or was asked not to report).
    pub fn own_change(&mut self, uid: Uid, modseq: ModSeq) {
        // Only changes past the reported modseq matter to the next sync; older ones were
        // reported already (this also keeps the list empty while nothing changes).
        if modseq > self.reported_modseq {
            self.own_changes.push((uid, modseq));
        }
    }

    /// Takes note that every store change up to `change_counter` was made by this session in
    /// a command that already told the client about it (see `command::run`): the next sync can
    /// start from here without reading the whole mailbox.
    /// `marks` are the store's marks of the mailbox now.
    pub fn absorb_own_changes(&mut self, change_counter: u64, marks: MailboxMarks) {
        self.change_counter = change_counter;
        self.reported_modseq = self.reported_modseq.max(marks.highest_modseq);
        self.own_changes.clear();
        // The command reported its own expunges too (`expunged_by_self`), so the view
        // matches the store again.
        self.set_marks(marks);
    }

    /// Notes that the view matches the store's mailbox exactly now (same live UIDs, every
    /// flag change up to `marks.highest_modseq` reported or own): see [`View::appended_range`].
    /// Only a caller that knows this (right after SELECT, a complete sync, or
    /// [`View::absorb_own_changes`]) may call it.
    pub fn set_marks(&mut self, marks: MailboxMarks) {
        self.marks = Some(marks);
        self.synced = Some(marks.highest_modseq);
    }

    /// The modseq up to which the view follows the store (every expunge at or below it
    /// reported, every other change reported or own): what a sync asks the store's journal
    /// about (`View::sync_changes`). `None` before the first mark.
    #[must_use]
    pub fn synced_modseq(&self) -> Option<ModSeq> {
        self.synced
    }

    /// The UIDs that may have been appended since the view last matched the store, when the
    /// store's `now` marks prove that nothing else happened (no expunge, no flag change): a
    /// sync then only needs these records. `None` when a full comparison is needed.
    #[must_use]
    pub fn appended_range(&self, now: &MailboxMarks) -> Option<Range<u32>> {
        let then = self.marks?;
        let (from, to) = (then.uid_next.get(), now.uid_next.get());
        let added = to.checked_sub(from)?;
        // Each addition takes one UID and one modseq, every other change a modseq of its own.
        let only_added =
            now.highest_modseq.0.checked_sub(then.highest_modseq.0)? == u64::from(added);
        let counted = u64::from(now.messages) == u64::from(then.messages) + u64::from(added)
            && then.messages as usize == self.uids.len();
        (only_added && counted).then_some(from..to)
    }

    /// Applies appends found through [`View::appended_range`]: `added` are the records of
    /// every UID in that range (all live), ascending. Writes what [`View::sync`] would write
    /// given the whole mailbox: `* n EXISTS` if anything arrived.
    pub fn sync_appended(
        &mut self,
        added: &[MessageMeta],
        change_counter: u64,
        now: MailboxMarks,
        out: &mut Vec<u8>,
    ) -> SyncReport {
        debug_assert!(added.windows(2).all(|w| w[0].uid < w[1].uid));
        debug_assert!(
            self.uids.last().is_none_or(|&max| added.first().is_none_or(|m| m.uid > max))
        );
        let mut report = SyncReport::default();
        // All new: no FETCH, so no keyword names are needed.
        self.report_live(added, &[], false, out, &mut report);
        self.change_counter = change_counter;
        self.set_marks(now);
        report
    }

    /// The store's change counter seen at the last sync.
    #[must_use]
    pub fn change_counter(&self) -> u64 {
        self.change_counter
    }

    /// Removes `uids` from the view after this session expunged them itself, writing
    /// `* n EXPUNGE` for each (descending, so the numbers stay right), or one `* VANISHED`.
    /// The view no longer matches its marks, but still follows the store up to its synced
    /// modseq ([`View::synced_modseq`]): the journal will name these UIDs, no longer in the
    /// view.
    pub fn expunged_by_self(&mut self, gone: &[Uid], out: &mut Vec<u8>) {
        let indexes = self.indexes_of(gone);
        self.marks = None;
        self.remove_reporting(&indexes, out);
    }

    /// The view indexes of those of `uids` the view holds, ascending and distinct.
    fn indexes_of(&self, uids: &[Uid]) -> Vec<usize> {
        let mut indexes: Vec<usize> =
            uids.iter().filter_map(|u| self.uids.binary_search(u).ok()).collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
    }

    /// Removes the messages at `indexes` (ascending, distinct), writing `* n EXPUNGE` for each,
    /// highest first so every number is right when the client reads it. One pass over the
    /// view, however many go: removing them one by one cost O(gone × view), seconds for a mass
    /// expunge in a big mailbox.
    fn remove_reporting(&mut self, indexes: &[usize], out: &mut Vec<u8>) {
        if self.vanished {
            if !indexes.is_empty() {
                let uids: Vec<u32> = indexes.iter().map(|&i| self.uids[i].get()).collect();
                out.extend_from_slice(b"* VANISHED ");
                encode::sequence_set(out, &uids);
                out.extend_from_slice(b"\r\n");
            }
        } else {
            for &i in indexes.iter().rev() {
                write_expunge(out, msn_from_index(i));
            }
        }
        let mut doomed = indexes.iter().copied().peekable();
        let mut index = 0;
        self.uids.retain(|_| {
            let keep = doomed.next_if_eq(&index).is_none();
            index += 1;
            keep
        });
    }

    /// Compares the view with the store's `messages` (live, UID order) and writes the updates
    /// the client is owed. `allow_expunge` is false during FETCH, STORE and SEARCH.
    /// `keywords` names the mailbox's keyword bits; `condstore` adds `MODSEQ` to FETCH updates.
    /// Leaves the synced modseq ([`View::synced_modseq`]) as it was: the caller knows whether
    /// the sync was complete and so whether the view matches the store's marks
    /// (`View::set_marks`).
    pub fn sync(
        &mut self,
        messages: &[MessageMeta],
        change_counter: u64,
        allow_expunge: bool,
        keywords: &[String],
        condstore: bool,
        out: &mut Vec<u8>,
    ) -> SyncReport {
        let mut report = SyncReport::default();
        if allow_expunge {
            report.expunged = self.sync_expunges(messages, out);
        }
        self.report_live(messages, keywords, condstore, out, &mut report);
        // With expunges deferred the view still differs from the store: sync again next time.
        if self.uids.len() == messages.len() {
            self.change_counter = change_counter;
        }
        // The caller knows the store's marks for `messages` (see `View::set_marks`).
        self.marks = None;
        report
    }

    /// Writes a message's flags (and modseq with `condstore`) as this session's client is told
    /// of them: `* msn FETCH (FLAGS .. UID u)`, or `* u UIDFETCH (FLAGS ..)` under UIDONLY.
    pub fn write_flags_update(
        &self,
        out: &mut Vec<u8>,
        msn: u32,
        message: &MessageMeta,
        keywords: &[String],
        condstore: bool,
        recent: bool,
    ) {
        if self.uid_only {
            write_flags_uidfetch(out, message, keywords, condstore, recent);
        } else {
            write_flags_fetch(out, msn, message, keywords, condstore, recent);
        }
    }

    /// Drops UIDs no longer in the store; returns how many EXPUNGEs were written.
    fn sync_expunges(&mut self, messages: &[MessageMeta], out: &mut Vec<u8>) -> usize {
        let mut gone = Vec::new();
        let mut cursor = 0;
        for (i, uid) in self.uids.iter().enumerate() {
            while cursor < messages.len() && messages[cursor].uid < *uid {
                cursor += 1;
            }
            if cursor >= messages.len() || messages[cursor].uid != *uid {
                gone.push(i);
            }
        }
        self.remove_reporting(&gone, out);
        gone.len()
    }
}

/// MSN of a 0-based index.
#[must_use]
pub fn msn_from_index(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

fn write_exists(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(b"* ");
    encode::number(out, len as u64);
    out.extend_from_slice(b" EXISTS\r\n");
}

fn write_expunge(out: &mut Vec<u8>, msn: u32) {
    out.extend_from_slice(b"* ");
    encode::number(out, u64::from(msn));
    out.extend_from_slice(b" EXPUNGE\r\n");
}

/// Writes `* msn FETCH (FLAGS (...) [MODSEQ (n)] UID u)`.
pub fn write_flags_fetch(
    out: &mut Vec<u8>,
    msn: u32,
    message: &MessageMeta,
    keywords: &[String],
    condstore: bool,
    recent: bool,
) {
    out.extend_from_slice(b"* ");
    encode::number(out, u64::from(msn));
    out.extend_from_slice(b" FETCH (FLAGS ");
    encode::flags(out, message.flags, keywords, recent);
    if condstore {
        out.extend_from_slice(b" MODSEQ (");
        encode::number(out, message.modseq.0);
        out.push(b')');
    }
    out.extend_from_slice(b" UID ");
    encode::number(out, u64::from(message.uid.get()));
    out.extend_from_slice(b")\r\n");
}

/// Writes `* u UIDFETCH (FLAGS (...) [MODSEQ (n)])` (RFC 9586: the UID is the number).
pub fn write_flags_uidfetch(
    out: &mut Vec<u8>,
    message: &MessageMeta,
    keywords: &[String],
    condstore: bool,
    recent: bool,
) {
    out.extend_from_slice(b"* ");
    encode::number(out, u64::from(message.uid.get()));
    out.extend_from_slice(b" UIDFETCH (FLAGS ");
    encode::flags(out, message.flags, keywords, recent);
    if condstore {
        out.extend_from_slice(b" MODSEQ (");
        encode::number(out, message.modseq.0);
        out.push(b')');
    }
    out.extend_from_slice(b")\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use skua_core::types::{Flags, InternalDate, SystemFlags};
    use std::num::NonZeroU32;

    fn meta(uid: u32, modseq: u64, system: u16) -> MessageMeta {
        MessageMeta {
            uid: Uid::new(uid).unwrap(),
            modseq: ModSeq(modseq),
            flags: Flags { system: SystemFlags(system), ..Flags::default() },
            internal_date: InternalDate { unix_seconds: 0, zone_minutes: 0 },
            size: 10,
            save_date: None,
        }
    }

    fn view_of(messages: &[MessageMeta], highest: u64) -> View {
        let validity = UidValidity(NonZeroU32::new(9).unwrap());
        View::new(MailboxId(1), false, validity, messages, ModSeq(highest), 1)
    }

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn expunges_wait_until_allowed_and_go_out_descending() {
        let mut view = view_of(&[meta(1, 1, 0), meta(2, 2, 0), meta(3, 3, 0)], 3);
        let now = [meta(2, 2, 0)];
        let mut out = Vec::new();
        let report = view.sync(&now, 2, false, &[], false, &mut out);
        assert_eq!(report.expunged, 0);
        assert_eq!(view.len(), 3);
        assert!(out.is_empty());
        // Deferred expunges keep the view "dirty": the counter is not taken.
        assert_eq!(view.change_counter(), 1);
        let report = view.sync(&now, 2, true, &[], false, &mut out);
        assert_eq!(report.expunged, 2);
        assert_eq!(text(&out), "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n");
        assert_eq!(view.uids(), &[Uid::new(2).unwrap()]);
        assert_eq!(view.change_counter(), 2);
    }

    #[test]
    fn new_messages_and_flag_changes() {
        let mut view = view_of(&[meta(1, 1, 0), meta(2, 2, 0)], 2);
        let now = [meta(1, 5, SystemFlags::SEEN), meta(2, 2, 0), meta(4, 4, 0)];
        let mut out = Vec::new();
        let report = view.sync(&now, 2, true, &[], false, &mut out);
        assert_eq!(report, SyncReport { expunged: 0, exists_sent: true, fetches: 1 });
        assert_eq!(text(&out), "* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n* 3 EXISTS\r\n");
        out.clear();
        // Nothing moved: nothing to say.
        view.sync(&now, 3, true, &[], true, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn stale_own_changes_are_not_kept() {
        // Repeated FETCH FLAGS on an unchanged mailbox must not grow the list.
        let mut view = view_of(&[meta(1, 1, 0), meta(2, 2, 0)], 2);
        for _ in 0..100 {
            view.own_change(Uid::new(1).unwrap(), ModSeq(1));
        }
        assert!(view.own_changes.is_empty());
    }

    #[test]
    fn own_changes_are_not_echoed() {
        let mut view = view_of(&[meta(1, 1, 0), meta(2, 2, 0)], 2);
        view.own_change(Uid::new(1).unwrap(), ModSeq(3));
        let now = [meta(1, 3, SystemFlags::FLAGGED), meta(2, 4, SystemFlags::DELETED)];
        let mut out = Vec::new();
        view.sync(&now, 2, true, &[], true, &mut out);
        assert_eq!(text(&out), "* 2 FETCH (FLAGS (\\Deleted) MODSEQ (4) UID 2)\r\n");
    }

    #[test]
    fn sets_resolve_against_the_view() {
        let view = view_of(&[meta(3, 1, 0), meta(7, 2, 0), meta(9, 3, 0)], 3);
        let set = |a, b| SequenceSet::new(vec![(a, b)]).unwrap();
        let all = set(SeqBound::Value(1), SeqBound::Largest);
        assert_eq!(view.resolve(&all, false), vec![0, 1, 2]);
        assert_eq!(view.resolve(&set(SeqBound::Value(2), SeqBound::Value(2)), false), vec![1]);
        assert_eq!(view.resolve(&set(SeqBound::Value(4), SeqBound::Value(8)), true), vec![1]);
        // `100:*` always includes the largest UID (RFC 9051 §6.4.8).
        assert_eq!(view.resolve(&set(SeqBound::Value(100), SeqBound::Largest), true), vec![2]);
        assert_eq!(view.msn_of(Uid::new(9).unwrap()), Some(3));
        assert_eq!(view.msn_of(Uid::new(8).unwrap()), None);
        assert!(view.msn_set_valid(&set(SeqBound::Value(1), SeqBound::Value(3))));
        assert!(!view.msn_set_valid(&set(SeqBound::Value(2), SeqBound::Value(4))));
        assert!(view.msn_set_valid(&set(SeqBound::Value(7), SeqBound::Largest)));
    }

    proptest::proptest! {
        #[test]
        fn resolve_matches_the_set_definition(
            uids in proptest::collection::btree_set(1u32..60, 0..20),
            ranges in proptest::collection::vec((0u32..70, 0u32..70), 1..4),
            by_uid in proptest::bool::ANY,
        ) {
            let messages: Vec<MessageMeta> = uids.iter().map(|&u| meta(u, 1, 0)).collect();
            let view = view_of(&messages, 1);
            let bound = |v: u32| if v == 0 { SeqBound::Largest } else { SeqBound::Value(v) };
            let set = SequenceSet::new(ranges.iter().map(|&(a, b)| (bound(a), bound(b))).collect())
                .unwrap();
            let largest = if by_uid {
                view.uids().last().map_or(0, |u| u.get())
            } else {
                u32::try_from(view.len()).unwrap()
            };
            let expected: Vec<usize> = (0..view.len())
                .filter(|&i| {
                    let n = if by_uid { view.uids()[i].get() } else { msn_from_index(i) };
                    set.contains(n, largest)
                })
                .collect();
            proptest::prop_assert_eq!(view.resolve(&set, by_uid), expected);
        }
    }

    fn marks(uid_next: u32, highest: u64, messages: u32) -> MailboxMarks {
        MailboxMarks {
            uid_next: Uid::new(uid_next).unwrap(),
            highest_modseq: ModSeq(highest),
            messages,
        }
    }

    #[test]
    fn marks_tell_appends_from_other_changes() {
        let mut view = view_of(&[meta(1, 1, 0), meta(2, 2, 0)], 2);
        // Never marked: no shortcut.
        assert_eq!(view.appended_range(&marks(3, 2, 2)), None);
        view.set_marks(marks(3, 2, 2));
        assert_eq!(view.appended_range(&marks(3, 2, 2)), Some(3..3));
        assert_eq!(view.appended_range(&marks(5, 4, 4)), Some(3..5));
        // One modseq more than UIDs: a flag change or an expunge happened too.
        assert_eq!(view.appended_range(&marks(5, 5, 4)), None);
        assert_eq!(view.appended_range(&marks(3, 3, 2)), None);
        // The count does not add up.
        assert_eq!(view.appended_range(&marks(5, 4, 3)), None);
        let mut out = Vec::new();
        let report =
            view.sync_appended(&[meta(3, 3, 0), meta(4, 4, 0)], 7, marks(5, 4, 4), &mut out);
        assert!(report.exists_sent);
        assert_eq!(text(&out), "* 4 EXISTS\r\n");
        assert_eq!(view.change_counter(), 7);
        assert_eq!(view.appended_range(&marks(5, 4, 4)), Some(5..5));
        // A full sync forgets the marks until its caller sets them again.
        view.sync(&[meta(1, 1, 0)], 8, false, &[], false, &mut out);
        assert_eq!(view.appended_range(&marks(5, 4, 4)), None);
    }

    #[test]
    fn qresync_views_report_vanished_uids_instead() {
        let mut view = view_of(&[meta(1, 1, 0), meta(2, 2, 0), meta(3, 3, 0), meta(4, 4, 0)], 4);
        view.vanished = true;
        let mut out = Vec::new();
        view.expunged_by_self(&[Uid::new(1).unwrap(), Uid::new(3).unwrap()], &mut out);
        assert_eq!(text(&out), "* VANISHED 1,3\r\n");
        out.clear();
        // Another session's expunges: one line, ranges joined.
        let report = view.sync(&[], 9, true, &[], true, &mut out);
        assert_eq!(report.expunged, 2);
        assert_eq!(text(&out), "* VANISHED 2,4\r\n");
        assert!(view.is_empty());
    }

    #[test]
    fn self_expunge_reports_descending() {
        let mut view = view_of(&[meta(1, 1, 0), meta(2, 2, 0), meta(3, 3, 0)], 3);
        let mut out = Vec::new();
        view.expunged_by_self(&[Uid::new(1).unwrap(), Uid::new(3).unwrap()], &mut out);
        assert_eq!(text(&out), "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n");
        assert_eq!(view.len(), 1);
    }

    #[test]
    fn removing_many_at_once_is_removing_them_one_by_one() {
        // Every subset of 8 messages: one pass gives the view and the lines that removing
        // them one by one (highest first) gives.
        let messages: Vec<MessageMeta> = (1..=8).map(|u| meta(u, u64::from(u), 0)).collect();
        for mask in 0u32..256 {
            let gone: Vec<Uid> =
                (1..=8).filter(|u| mask & (1 << (u - 1)) != 0).filter_map(Uid::new).collect();
            let mut view = view_of(&messages, 8);
            let mut out = Vec::new();
            view.expunged_by_self(&gone, &mut out);
            let mut expected_uids: Vec<Uid> = messages.iter().map(|m| m.uid).collect();
            let mut expected_out = Vec::new();
            for uid in gone.iter().rev() {
                let i = expected_uids.binary_search(uid).expect("present");
                expected_uids.remove(i);
                write_expunge(&mut expected_out, msn_from_index(i));
            }
            assert_eq!(view.uids(), &expected_uids[..], "mask {mask:08b}");
            assert_eq!(text(&out), text(&expected_out), "mask {mask:08b}");
        }
    }
}
