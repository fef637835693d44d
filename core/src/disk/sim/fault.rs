//! Injected I/O errors: a disk that refuses a write (`ENOSPC`, `EIO`) the way a full or failing
//! disk does, for tests that a failed operation leaves nothing behind that recovery would take
//! for data (issue 7, defect 5).
//!
//! A rule names an operation kind, a file-name suffix (`.idx`, `.seg`, `mailboxes.log`) and a
//! count; the next matching operations fail with the given error kind and change nothing, live
//! or durable. Every other operation goes through as usual.

use std::io;

use super::image::{InodeId, Op};
use super::{SimDisk, State, lock};

/// Which operation a [`SimDisk::fail_next`] rule refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOp {
    /// `write_all_at` and `write_all_at_unsynced`.
    Write,
    /// `set_len`.
    SetLen,
}

/// An armed rule.
#[derive(Clone, Debug)]
pub(super) struct FailRule {
    op: FailOp,
    suffix: String,
    kind: io::ErrorKind,
    /// Matching operations still let through before the failures start.
    skip: u32,
    /// Failures still to inject.
    remaining: u32,
}

impl SimDisk {
    /// Makes the next `times` operations of kind `op` on files whose name ends with `suffix`
    /// fail with `kind`, changing nothing. Rules add up; each counts only its own matches.
    pub fn fail_next(&self, op: FailOp, suffix: &str, kind: io::ErrorKind, times: u32) {
        self.fail_after(op, suffix, kind, 0, times);
    }

    /// As [`SimDisk::fail_next`], but lets the first `skip` matching operations through.
    pub fn fail_after(&self, op: FailOp, suffix: &str, kind: io::ErrorKind, skip: u32, times: u32) {
        let rule = FailRule { op, suffix: suffix.to_owned(), kind, skip, remaining: times };
        if times > 0 {
            lock(&self.state).fail.push(rule);
        }
    }

    /// Failures injected so far by [`SimDisk::fail_next`] and [`SimDisk::fail_after`] rules.
    #[must_use]
    pub fn failures_injected(&self) -> u64 {
        lock(&self.state).failures_injected
    }
}

impl State {
    /// The injected error for `op` on `inode`, if a rule takes it (and counts it down).
    pub(super) fn injected(&mut self, kind: FailOp, inode: InodeId) -> Option<io::Error> {
        if self.fail.is_empty() {
            return None;
        }
        let path = self.live.path_of(&Op::SetLen { inode, len: 0 });
        let path = path.to_string_lossy();
        let mut error = None;
        for rule in self.fail.iter_mut().filter(|r| r.op == kind && path.ends_with(&r.suffix)) {
            if rule.skip > 0 {
                rule.skip -= 1;
            } else if error.is_none() {
                rule.remaining -= 1;
                error = Some(io::Error::new(rule.kind, "sim disk: injected failure"));
            }
        }
        self.fail.retain(|r| r.remaining > 0);
        self.failures_injected += u64::from(error.is_some());
        error
    }
}
