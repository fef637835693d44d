//! Resumable commands: a command that touches many messages or mailboxes does a bounded slice
//! of its work per `ImapSession::next` call and pauses, so one client's `FETCH 1:*` or
//! `SEARCH TEXT` over a huge mailbox never holds the shard's thread (and every other session on
//! it) for longer than one slice, and never builds more output than one slice's worth.
//!
//! ```text
//!  command ─ start ─┬─ Done(completion) ─ sync, tagged reply
//!                   └─ Paused(task) ──── Step::Write / Step::Yield ─┐
//!                        ▲                                        │ the shard writes, yields
//!                        └──────────── resume(task) ◄─────────────┘ to its other sessions
//! ```
//!
//! A slice ends when its work units ([`SLICE_WORK_UNITS`]) or its output
//! ([`SLICE_OUTPUT_BYTES_MAX`], owned bytes and spool slices together) are spent, whichever
//! comes first, or, once it did [`SLICE_WORK_UNITS_MIN`], as soon as the shard's [`Interrupt`]
//! says another session is waiting (the shard gives one to long commands only). The shard writes a paused command's output before it resumes it, so a client
//! that stops reading stops the command: the session never holds more than one slice of output.
//!
//! Between slices other sessions of the same user may change the store. Tasks keep what they
//! need as owned data (UIDs, not references), look records up again in every slice, and skip
//! messages expunged meanwhile, exactly as a command that saw another session's expunge does.

use crate::imap::limits::{SLICE_OUTPUT_BYTES_MAX, SLICE_WORK_UNITS, SLICE_WORK_UNITS_MIN};
use crate::imap::session::out::Out;

/// Asks the runtime whether another session has input waiting (true: end the slice early). A
/// plain function, so that it is cheap to call per unit of work and the session stays `Send`;
/// the shard passes one that looks at its reactor's completions without a system call.
pub type Interrupt = fn() -> bool;

/// The budget of one slice.
#[derive(Debug)]
pub(crate) struct Slice {
    work: u64,
    interrupt: Option<Interrupt>,
}

impl Slice {
    /// A fresh budget, ended early by `interrupt` (if any) once past its minimum.
    pub(crate) fn new(interrupt: Option<Interrupt>) -> Slice {
        Slice { work: 0, interrupt }
    }

    /// Counts `units` of work done.
    pub(crate) fn spend(&mut self, units: u64) {
        self.work = self.work.saturating_add(units);
    }

    /// True when the slice is used up: its work, or the output written into `out`.
    pub(crate) fn spent(&self, out: &Out) -> bool {
        self.work >= SLICE_WORK_UNITS
            || out.total_bytes() >= SLICE_OUTPUT_BYTES_MAX
            || (self.work >= SLICE_WORK_UNITS_MIN
                && self.interrupt.is_some_and(|waiting| waiting()))
    }
}

/// Work units for scanning `bytes` of message text (a SEARCH TEXT or BODY key): one per
/// [`SCAN_BYTES_PER_UNIT`], at least one.
pub(crate) fn scan_units(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(SCAN_BYTES_PER_UNIT).max(1)
}

/// Bytes of message text one work unit stands for: a unit is about what handling one message's
/// index record costs, and a substring scan covers a few KiB in that time.
pub(crate) const SCAN_BYTES_PER_UNIT: u64 = 4096;
