//! NOTIFY (RFC 5465) in the session: what a session with NOTIFY set remembers, and the
//! waiting that lets it notify between commands.
//!
//! With NOTIFY set, a session that has no complete command to run reports what changed
//! (`command::notify::report`) and then answers [`Step::Idle`] instead of
//! [`Step::NeedInput`]: the runtime calls `next` again on input *or* when the user's store
//! changed, exactly as in IDLE, so notifications go out while the client is quiet (RFC 5465
//! §3: the server sends them whenever it is allowed to). Input that arrives meanwhile is read
//! as any other.

use skua_core::disk::Disk;
use skua_core::store::UserStore;
use skua_core::types::MailboxId;

use super::out::Out;
use super::{ImapSession, Phase, Step, flush_or};
use crate::imap::command;
use crate::imap::parser::EventGroup;

/// What one session's `NOTIFY SET` asked for, and how far it has reported.
#[derive(Debug)]
pub(crate) struct NotifyState {
    /// The event groups (validated by the command), in the order given.
    pub groups: Vec<EventGroup>,
    /// The store's mailbox generation up to which message changes were looked at
    /// (`UserStore::mailbox_generation`).
    pub generation: u64,
    /// The store's list position up to which list changes were looked at.
    pub list_position: u64,
    /// The mailbox of the paused `fetch` below.
    pub fetch_mailbox: Option<MailboxId>,
    /// The FETCH of new messages' items, paused between slices.
    pub fetch: Option<command::fetch::FetchTask>,
}

impl ImapSession {
    /// True when NOTIFY is set: waiting for input also waits for store changes.
    pub(super) fn notifying(&self) -> bool {
        self.conn.notify.is_some() && matches!(self.phase, Phase::Authenticated)
    }

    /// True while NOTIFY's FETCH of new messages is paused between slices.
    pub(super) fn notify_fetch_pending(&self) -> bool {
        matches!(self.phase, Phase::Authenticated)
            && self.conn.notify.as_ref().is_some_and(|n| n.fetch.is_some())
    }

    /// No complete command is buffered: with NOTIFY set, report what changed and wait for
    /// input or a change (`Step::Idle`); otherwise wait for input.
    pub(super) fn wait_notifying<D: Disk>(
        &mut self,
        store: Option<&mut UserStore<D>>,
        mut out: Out,
    ) -> Step {
        if !self.notifying() || self.conn.store_owner.is_some() {
            // NOTIFY follows the own store; another user's is only at hand for one command.
            return flush_or(out, Step::NeedInput);
        }
        let Some(store) = store else {
            return flush_or(out, Step::NeedInput);
        };
        command::notify::report(&mut self.conn, store, &mut out);
        if self.conn.closing {
            self.phase = Phase::Logout;
            return flush_or(out, Step::NeedInput);
        }
        if self.conn.notify.as_ref().is_some_and(|n| n.fetch.is_some()) {
            // The new messages' FETCH paused: it goes on after the others had a turn.
            return flush_or(out, Step::Yield);
        }
        let wait = if self.conn.notify.is_some() { Step::Idle } else { Step::NeedInput };
        flush_or(out, wait)
    }
}
