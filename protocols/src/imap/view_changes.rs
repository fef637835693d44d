//! [`View::sync_changes`]: the sync from what changed since the view's synced modseq, which
//! the store answers from its modseq journal (`UserStore::changes_since`), instead of the
//! whole mailbox. It writes what [`View::sync`] writes given the whole mailbox, byte for byte
//! (`command/sync_tests.rs` compares the two on random changes).
//!
//! Why the changes are enough: when the view's synced modseq S was taken, the view held every
//! live message and had reported every change up to S, and its reported modseq was at least
//! the modseq of every live message. Every message whose state differs from what the client
//! knows has since taken a modseq above S: an expunge (its UID is in `changes.expunged`), a
//! flag change or an append (in `changes.changed`, with its current flags). A live message
//! outside `changes.changed` has a modseq at or below the reported one, so the full sync
//! would skip it too.

use skua_core::store::{MailboxChanges, MailboxMarks, MessageMeta};

use super::{SyncReport, View, write_exists};

impl View {
    /// Applies `changes`, the store's answer to "what changed after [`View::synced_modseq`]",
    /// and writes the updates the client is owed, as [`View::sync`] would given the whole
    /// mailbox: EXPUNGE / VANISHED (only with `allow_expunge`), FETCH for flag changes
    /// (not this session's own; with `condstore`, `MODSEQ`), EXISTS for new messages. `now`
    /// are the store's marks the changes were read at.
    #[allow(clippy::too_many_arguments)]
    pub fn sync_changes(
        &mut self,
        changes: &MailboxChanges,
        change_counter: u64,
        now: MailboxMarks,
        allow_expunge: bool,
        keywords: &[String],
        condstore: bool,
        out: &mut Vec<u8>,
    ) -> SyncReport {
        let mut report = SyncReport::default();
        if allow_expunge {
            // UIDs the view no longer holds (this session's own expunges) are skipped.
            let gone = self.indexes_of(&changes.expunged);
            report.expunged = gone.len();
            self.remove_reporting(&gone, out);
        }
        self.report_live(&changes.changed, keywords, condstore, out, &mut report);
        if self.uids.len() == now.messages as usize {
            // Complete: the view matches the store at `now`.
            self.change_counter = change_counter;
            self.set_marks(now);
        } else {
            // Expunges wait (FETCH, STORE or SEARCH by number): the synced modseq stays where
            // the expunges were last reported, so the next sync finds them again.
            self.marks = None;
        }
        report
    }

    /// The part of a sync after the expunges: FETCH for the messages of `messages` (live, UID
    /// order) the client knows whose modseq passed the reported one, except own changes;
    /// those past the last known UID are new (`* n EXISTS`). Raises the reported modseq to
    /// the highest seen. [`View::sync`] passes the whole mailbox, [`View::sync_changes`] the
    /// messages changed since the synced modseq, [`View::sync_appended`] the new ones.
    pub(super) fn report_live(
        &mut self,
        messages: &[MessageMeta],
        keywords: &[String],
        condstore: bool,
        out: &mut Vec<u8>,
        report: &mut SyncReport,
    ) {
        debug_assert!(messages.windows(2).all(|w| w[0].uid < w[1].uid));
        let known_max = self.uids.last().copied();
        let first_new = known_max.map_or(0, |max| messages.partition_point(|m| m.uid <= max));
        let mut highest = self.reported_modseq;
        // Sorted, so each message costs a binary search, not a scan of a long list.
        self.own_changes.sort_unstable();
        for message in &messages[..first_new] {
            highest = highest.max(message.modseq);
            if message.modseq <= self.reported_modseq
                || self.own_changes.binary_search(&(message.uid, message.modseq)).is_ok()
            {
                continue;
            }
            if let Some(msn) = self.msn_of(message.uid) {
                let recent = self.is_recent(message.uid);
                self.write_flags_update(out, msn, message, keywords, condstore, recent);
                report.fetches += 1;
            }
        }
        let added = &messages[first_new..];
        self.uids.reserve(added.len());
        for message in added {
            highest = highest.max(message.modseq);
            self.uids.push(message.uid);
        }
        if !added.is_empty() {
            write_exists(out, self.uids.len());
            report.exists_sent = true;
        }
        self.reported_modseq = highest;
        self.own_changes.clear();
    }
}
