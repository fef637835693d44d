//! One crash case: crash the workload's disk, recover the store on what survived, check it
//! against the workload's snapshots, then prove the recovered store still works.

use std::panic::{AssertUnwindSafe, catch_unwind};

use skua_core::disk::sim::{CrashMode, SimDisk};
use skua_core::disk::{Disk, Flush};
use skua_core::types::SystemFlags;

use crate::model::{INBOX, Snapshot, Violations, check_invariants, check_recovered};
use crate::store::Store;
use crate::workload::{Runner, body_bytes};

/// Serial numbers of the messages appended after recovery, apart from the workload's.
const HEALTH_SERIAL: u64 = 1_000_000;

/// Crashes `runner`'s disk with `mode` and `seed`, recovers, checks; the violations found.
/// A panic inside the store counts as a violation.
pub fn crash_and_check(runner: &Runner, seed: u64, mode: CrashMode) -> Violations {
    let mut out = Violations::default();
    let (disk, report) = runner.disk.crash_with_report(seed, mode);
    let outcome =
        catch_unwind(AssertUnwindSafe(|| recover_and_check(runner, &disk, seed, &mut out)));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        out.0.push(format!("store panicked: {message}"));
    }
    if !out.is_empty() {
        out.0.push(format!("(crash kept {} of {} pending ops, {} torn)", report.kept, report.pending, report.torn));
    }
    out
}

fn recover_and_check(runner: &Runner, disk: &SimDisk, seed: u64, out: &mut Violations) {
    let mut store = match Store::open(disk) {
        Ok(store) => store,
        Err(error) => return out.0.push(format!("recovery failed: {error}")),
    };
    let recovered = match store.snapshot() {
        Ok(snapshot) => snapshot,
        Err(error) => return out.0.push(format!("recovered store unreadable: {error}")),
    };
    check_invariants(&recovered, &runner.written, out);
    check_recovered(&recovered, &runner.acked, &runner.in_flight, out);
    if out.is_empty() {
        check_crash_in_recovery(runner, disk, seed, out);
    }
    if out.is_empty() {
        check_healthy(&mut store, disk, &recovered, runner, out);
    }
}

/// Recovery's own repairs are unflushed writes too: a second crash right after it (keeping
/// some of them, torn) must recover to a state that passes the same checks.
fn check_crash_in_recovery(runner: &Runner, disk: &SimDisk, seed: u64, out: &mut Violations) {
    if disk.pending_ops() == 0 {
        return;
    }
    let again = disk.crash(seed.rotate_left(17), CrashMode::TornSubset);
    let snapshot = match Store::open(&again).and_then(|store| store.snapshot()) {
        Ok(snapshot) => snapshot,
        Err(error) => return out.0.push(format!("recovery after a crash in recovery failed: {error}")),
    };
    let mut second = Violations::default();
    check_invariants(&snapshot, &runner.written, &mut second);
    check_recovered(&snapshot, &runner.acked, &runner.in_flight, &mut second);
    out.0.extend(second.0.into_iter().map(|v| format!("after a crash in recovery: {v}")));
}

/// Appends and flushes on the recovered store, loses everything unflushed, and opens again:
/// the new message and everything recovered must be there.
fn check_healthy(
    store: &mut Store,
    disk: &SimDisk,
    recovered: &Snapshot,
    runner: &Runner,
    out: &mut Violations,
) {
    let body = body_bytes(HEALTH_SERIAL, 900);
    let uid = match store.append(INBOX, &body, b"health cache", SystemFlags::SEEN, &[], HEALTH_SERIAL) {
        Ok(uid) => uid,
        Err(error) => return out.0.push(format!("append after recovery failed: {error}")),
    };
    if let Some(job) = disk.flush_begin() {
        let epoch = job.epoch();
        if let Err(error) = job.run() {
            return out.0.push(format!("flush after recovery failed: {error}"));
        }
        disk.flush_end(epoch);
    }
    let Ok(before) = store.snapshot() else {
        return out.0.push("store unreadable after the health append".to_owned());
    };
    let reopened = match Store::open(&disk.crash(0, CrashMode::DropPending)) {
        Ok(store) => store,
        Err(error) => return out.0.push(format!("second recovery failed: {error}")),
    };
    let after = match reopened.snapshot() {
        Ok(snapshot) => snapshot,
        Err(error) => return out.0.push(format!("second recovery unreadable: {error}")),
    };
    let mut written = runner.written.clone();
    written.insert(body.clone());
    check_invariants(&after, &written, out);
    // Everything was flushed: the second recovery must find exactly the state before it.
    check_recovered(&after, &before, &[], out);
    if after.get(INBOX).and_then(|m| m.message(uid)).is_none_or(|m| m.body != body) {
        out.0.push(format!("INBOX UID {uid} appended after recovery is missing"));
    }
    if after.keys().ne(recovered.keys()) {
        out.0.push("mailboxes changed across a clean restart".to_owned());
    }
}
