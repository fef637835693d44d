//! `skua import` into a running server. Each batch of a folder goes to the server as a
//! restore stream (`skua_shard::admin_proto`'s byte frames, `crate::admin::stream`) of one
//! snapshot: one mailbox, its messages, their bytes. The server writes it on the user's home
//! shard with the same `Importer` an offline import uses (through `skua restore`'s
//! `Restorer`), so both modes keep the same UIDs, flags, keywords and dates and skip the same
//! messages. A message without a UID of its own goes with UID 0, which only a stream carries.
//!
//! ```text
//!  source folder ─ sort (import_order) ─ batches of ≤ BATCH_MESSAGES / BATCH_BYTES
//!    each batch ─► Start, Mailbox(name, keyword table), Subscriptions([]), Messages…,
//!                  Body × n, End ─► admin.sock (op restore) ─► RestoreReport, summed
//! ```

use std::path::PathBuf;

use anyhow::bail;
use skua_core::backup::{
    MESSAGES_PER_RECORD_MAX, MailboxState, MessageState, Record, SnapshotEnd, SnapshotStart, sha256,
};
use skua_core::limits::KEYWORDS_PER_MAILBOX_MAX;
use skua_protocols::import::import_order;
use skua_shard::admin_proto::{AdminRequest, Op, RestoreReport};

use super::{Message, Report};

/// Most messages sent in one stream.
const BATCH_MESSAGES: usize = 1000;

/// About the most message bytes sent in one stream (a batch holds at least one message).
const BATCH_BYTES: usize = 64 << 20;

/// The running server a user's import goes to, and what it did so far.
pub(crate) struct Online {
    /// Its admin socket.
    pub socket: PathBuf,
    /// Its pid, when the lock says.
    pub pid: Option<u32>,
    /// The user, as the passwd-file spells it.
    pub user: String,
    /// The sum of the server's reports.
    pub report: Report,
}

impl Online {
    /// Imports `messages` into the mailbox `name` (made when missing).
    ///
    /// # Errors
    /// The server refused or went away; a batch with more keywords than a mailbox may have.
    pub(crate) fn folder(&mut self, name: &str, messages: &[Message]) -> anyhow::Result<()> {
        let mut sorted: Vec<&Message> = messages.iter().collect();
        sorted.sort_by_key(|m| import_order(m));
        let mut start = 0;
        while start < sorted.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < sorted.len()
                && end - start < BATCH_MESSAGES
                && (end == start || bytes + sorted[end].bytes.len() <= BATCH_BYTES)
            {
                bytes += sorted[end].bytes.len();
                end += 1;
            }
            self.batch(name, &sorted[start..end])?;
            start = end;
        }
        Ok(())
    }

    /// Sends one batch as a snapshot stream and adds the server's report.
    fn batch(&mut self, name: &str, batch: &[&Message]) -> anyhow::Result<()> {
        let mut keywords: Vec<String> = Vec::new();
        for keyword in batch.iter().flat_map(|m| &m.keywords) {
            if !keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword)) {
                keywords.push(keyword.clone());
            }
        }
        if keywords.len() > KEYWORDS_PER_MAILBOX_MAX {
            bail!(
                "{name}: {} keywords among {} messages, more than a mailbox may have \
                 ({KEYWORDS_PER_MAILBOX_MAX})",
                keywords.len(),
                batch.len()
            );
        }
        let now_millis = crate::admin::now_unix_millis();
        let states: Vec<MessageState> = batch
            .iter()
            .map(|m| {
                let bits = m.keywords.iter().fold(0u64, |bits, keyword| {
                    let at = keywords.iter().position(|k| k.eq_ignore_ascii_case(keyword));
                    bits | at.map_or(0, |i| 1u64 << i)
                });
                let date = m.date.unwrap_or(skua_core::types::InternalDate {
                    unix_seconds: now_millis / 1000,
                    zone_minutes: 0,
                });
                MessageState {
                    mailbox: 0,
                    uid: m.uid.unwrap_or(0),
                    system: m.system.0,
                    keywords: bits,
                    date_unix_seconds: date.unix_seconds,
                    zone_minutes: date.zone_minutes,
                    size: u32::try_from(m.bytes.len()).unwrap_or(u32::MAX),
                }
            })
            .collect();
        let request =
            AdminRequest { users: vec![self.user.clone()], ..AdminRequest::new(Op::Restore) };
        let user = self.user.clone();
        let answer = crate::admin::stream::send(&self.socket, &request, now_millis, &mut |sink| {
            sink(Record::Start(SnapshotStart {
                time_unix_millis: now_millis,
                user: user.clone(),
                mailboxes: 1,
                messages: states.len() as u32,
            }))?;
            sink(Record::Mailbox(MailboxState {
                name: name.to_owned(),
                uid_validity: 0,
                uid_next: 0,
                special_use: 0,
                keywords: keywords.clone(),
                acl: Vec::new(),
            }))?;
            sink(Record::Subscriptions(Vec::new()))?;
            for chunk in states.chunks(MESSAGES_PER_RECORD_MAX) {
                sink(Record::Messages(chunk.to_vec()))?;
            }
            for message in batch {
                let digest = sha256(&message.bytes);
                sink(Record::Body { digest, bytes: message.bytes.clone() })?;
            }
            sink(Record::End(SnapshotEnd::default()))
        });
        let value = crate::admin::server_answer(answer, &self.socket, self.pid)?;
        let done: RestoreReport = serde_json::from_value(value)?;
        self.report.mailboxes_created += done.mailboxes_created as usize;
        self.report.messages_imported += done.messages_restored as usize;
        self.report.messages_skipped += done.messages_skipped as usize;
        self.report.uids_kept += done.uids_kept as usize;
        Ok(())
    }
}
