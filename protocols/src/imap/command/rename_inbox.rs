//! RENAME INBOX (RFC 9051 §6.3.6) as a resumable command: the store's move of INBOX's
//! messages (`skua_core::store::InboxRename`, see `core/FORMAT.md`, "Write and flush order")
//! runs a bounded number of messages per step and a bounded number of steps per slice.
//!
//! Between copying and expunging, the store waits until the copies are durable. The command
//! pauses there with a write that carries the durability ticket (`Out::durable_at`), so the
//! shard makes the copies durable before it resumes the command; that write holds one
//! informational `* OK` line (RFC 9051 §7.1.1), since a pause without output is not waited
//! on. Sessions with INBOX selected (this one included) then see the messages expunged by
//! their next sync, and stay on INBOX: it keeps its id and UIDVALIDITY.

use skua_core::disk::Disk;
use skua_core::store::{InboxRename, InboxStep, UserStore};

use super::slice::Slice;
use super::{Progress, Task, durable};
use crate::imap::reply::{self, Completion};
use crate::imap::session::out::Out;

/// Messages copied or expunged per store step: with [`STEP_UNITS`], about one slice of work.
const STEP_MESSAGES: usize = 16;
/// Work units per step: a copied message costs about a few index records (reading, checking
/// and writing its spool record).
const STEP_UNITS: u64 = STEP_MESSAGES as u64 * 4;

/// A RENAME INBOX between slices.
#[derive(Debug)]
pub(crate) struct RenameInboxTask {
    job: InboxRename,
    /// The `* OK` line of the wait was written (once per command).
    announced: bool,
}

impl RenameInboxTask {
    pub(crate) fn new(job: InboxRename) -> RenameInboxTask {
        RenameInboxTask { job, announced: false }
    }
}

/// Runs one slice of a RENAME INBOX.
pub(crate) fn resume<D: Disk>(
    mut task: RenameInboxTask,
    store: &mut UserStore<D>,
    out: &mut Out,
    slice: &mut Slice,
) -> Progress {
    loop {
        if slice.spent(out) {
            return Progress::Paused(Task::RenameInbox(task));
        }
        match store.rename_inbox_step(&mut task.job, STEP_MESSAGES) {
            Ok(InboxStep::More) => {
                slice.spend(STEP_UNITS);
                durable(store, out);
            }
            Ok(InboxStep::WaitDurable(epoch)) => {
                out.durable_at(epoch);
                if !std::mem::replace(&mut task.announced, true) {
                    out.put(b"* OK Messages copied, emptying INBOX\r\n");
                }
                return Progress::Paused(Task::RenameInbox(task));
            }
            Ok(InboxStep::Done) => {
                durable(store, out);
                return Progress::Done(Completion::ok("RENAME completed"));
            }
            Err(error) => {
                durable(store, out);
                return Progress::Done(reply::mailbox(&error));
            }
        }
    }
}
