//! RENAME INBOX (RFC 9051 §6.3.6): the messages of INBOX move to a new mailbox and INBOX
//! stays, empty. INBOX keeps its id and UIDVALIDITY, so a session with INBOX selected simply
//! sees the messages expunged (`* n EXPUNGE`, or VANISHED) and stays on INBOX.
//!
//! ```text
//! start:      create the target (and its superiors): one log write      [`Renamed::Inbox`]
//! copying:    copy INBOX's messages below its UIDNEXT at the start to the target, a bounded
//!             number per step (full spool records, flags and internal dates kept, as COPY)
//! settling:   wait until every copy is durable                          [`InboxStep::WaitDurable`]
//! expunging:  expunge the copied messages from INBOX, a bounded number per step
//! ```
//!
//! Crash safety: the expunges are written only once every copy is durable, so a crash leaves
//! a message in INBOX, in both mailboxes, or (once its expunge is durable) in the target only,
//! never in neither. (In one flush round the disk may keep any subset of the writes, so an
//! expunge in the same round as the copies could survive without them.) Messages that arrive
//! in INBOX meanwhile (UID at or above the start's UIDNEXT) stay in INBOX.
//!
//! Between steps other sessions may change INBOX: a message expunged meanwhile is not copied
//! (or, if copied already, stays in the target); a flag changed after its message was copied
//! stays changed in INBOX only, and goes with the expunge. Two RENAME INBOX at once copy the
//! same messages into both targets (nothing is lost, some are doubled).

use super::UserStore;
use crate::disk::Disk;
use crate::error::{CopyError, MailboxError, UpdateError};
use crate::types::{Epoch, MailboxId, Uid};

/// What [`UserStore::rename_mailbox`] did.
#[must_use]
#[derive(Debug)]
pub enum Renamed {
    /// The mailbox (and its children) has the new name.
    Done,
    /// INBOX: the target exists; its messages are to be moved with
    /// [`UserStore::rename_inbox_step`] until it says [`InboxStep::Done`].
    Inbox(InboxRename),
}

/// A RENAME INBOX in progress (see the module docs).
#[must_use]
#[derive(Debug)]
pub struct InboxRename {
    inbox: MailboxId,
    target: MailboxId,
    /// INBOX's UIDNEXT when the rename started: later messages stay.
    below: u32,
    phase: Phase,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Copying { next: u32 },
    Settling { epoch: Epoch },
    Expunging { next: u32 },
    Done,
}

/// Where a RENAME INBOX stands after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxStep {
    /// Step again.
    More,
    /// Step again once this epoch is durable (every copy is in it or before it).
    WaitDurable(Epoch),
    /// INBOX's messages are in the target and no longer in INBOX.
    Done,
}

impl InboxRename {
    /// The new mailbox.
    #[must_use]
    pub fn target(&self) -> MailboxId {
        self.target
    }
}

impl<D: Disk> UserStore<D> {
    pub(super) fn rename_inbox_start(
        &mut self,
        inbox: MailboxId,
        new: String,
    ) -> Result<InboxRename, MailboxError> {
        let target = self.create_mailbox(&new)?;
        let below = self.indexes[&inbox].uid_next();
        Ok(InboxRename { inbox, target, below, phase: Phase::Copying { next: 1 } })
    }

    /// One step of a RENAME INBOX: copies or expunges at most `messages_max` messages.
    ///
    /// # Errors
    /// INBOX or the target vanished (the target deleted by another session: INBOX keeps what
    /// was not expunged yet), or the disk failed. The move stops there; what was copied stays.
    pub fn rename_inbox_step(
        &mut self,
        job: &mut InboxRename,
        messages_max: usize,
    ) -> Result<InboxStep, MailboxError> {
        assert!(messages_max > 0);
        match job.phase {
            Phase::Copying { next } => {
                let uids = self.inbox_uids(job, next, messages_max)?;
                let Some(&last) = uids.last() else {
                    if next == 1 {
                        job.phase = Phase::Done;
                        return Ok(InboxStep::Done);
                    }
                    let epoch = self.disk.epoch_open();
                    job.phase = Phase::Settling { epoch };
                    return Ok(InboxStep::WaitDurable(epoch));
                };
                self.copy_counted(job.inbox, &uids, job.target).map_err(|error| match error {
                    CopyError::NoSuchMailbox | CopyError::NoSuchTarget => MailboxError::NotFound,
                    CopyError::MailboxFull => MailboxError::TooMany,
                    CopyError::OverQuota(over) => MailboxError::OverQuota(over),
                    CopyError::Storage(error) => MailboxError::Storage(error),
                })?;
                job.phase = Phase::Copying { next: last.get() + 1 };
                Ok(InboxStep::More)
            }
            Phase::Settling { epoch } => {
                if self.disk.epoch_durable() < epoch {
                    return Ok(InboxStep::WaitDurable(epoch));
                }
                job.phase = Phase::Expunging { next: 1 };
                Ok(InboxStep::More)
            }
            Phase::Expunging { next } => {
                if !self.catalog.mailboxes.contains_key(&job.target) {
                    return Err(MailboxError::NotFound);
                }
                let uids = self.inbox_uids(job, next, messages_max)?;
                let Some(&last) = uids.last() else {
                    job.phase = Phase::Done;
                    return Ok(InboxStep::Done);
                };
                self.expunge(job.inbox, &uids).map_err(|error| match error {
                    UpdateError::NoSuchMailbox | UpdateError::ReaderSeen(_) => {
                        MailboxError::NotFound
                    }
                    UpdateError::Storage(error) => MailboxError::Storage(error),
                })?;
                job.phase = Phase::Expunging { next: last.get() + 1 };
                Ok(InboxStep::More)
            }
            Phase::Done => Ok(InboxStep::Done),
        }
    }

    /// INBOX's live UIDs from `next` up to the start's UIDNEXT, at most `max`.
    fn inbox_uids(
        &self,
        job: &InboxRename,
        next: u32,
        max: usize,
    ) -> Result<Vec<Uid>, MailboxError> {
        let index = self.indexes.get(&job.inbox).ok_or(MailboxError::NotFound)?;
        let entries = index.entries();
        let from = entries.partition_point(|entry| entry.uid.get() < next);
        Ok(entries[from..]
            .iter()
            .take_while(|entry| entry.uid.get() < job.below)
            .filter(|entry| !entry.expunged)
            .take(max)
            .map(|entry| entry.uid)
            .collect())
    }
}
