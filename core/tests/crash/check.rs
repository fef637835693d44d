//! One crash case: crash the workload's disk, recover the store on what survived, check it
//! against the workload's snapshots, then prove the recovered store still works.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use skua_core::disk::sim::CrashMode;

use crate::TestDisk;
use crate::disk::CrashDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::types::SystemFlags;

use crate::model::{Snapshot, Violations, check_invariants, check_recovered};
use crate::store::Store;
use crate::workload::{Runner, body_bytes};

/// Serial numbers of the messages appended after recovery, apart from the workload's.
const HEALTH_SERIAL: u64 = 1_000_000;

/// The keyword the health check gives its messages: new to every mailbox.
const HEALTH_KEYWORD: &str = "health-check";

/// Crashes `runner`'s disk with `mode` and `seed`, recovers, checks; the violations found.
/// A panic inside the store counts as a violation.
pub fn crash_and_check(runner: &Runner, seed: u64, mode: CrashMode) -> Violations {
    let mut out = Violations::default();
    let (disk, report) = runner.disk.crashed_with_report(seed, mode);
    // The same crash again, for `skua reconstruct` instead of the recovery on open.
    let for_reconstruct = runner.disk.crashed(seed, mode);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        recover_and_check(runner, &disk, seed, &mut out);
        if out.is_empty() {
            reconstruct_and_check(runner, &for_reconstruct, seed, &mut out);
        }
    }));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        out.0.push(format!("store panicked: {message}"));
    }
    if !out.is_empty() {
        let (kept, pending, torn) = (report.kept, report.pending, report.torn);
        out.0.push(format!("(crash kept {kept} of {pending} pending ops whole, {torn} torn)"));
        if std::env::var_os("SKUA_CRASH_VERBOSE").is_some() {
            out.0.extend(report.ops.iter().map(|op| format!("    {op}")));
        }
    }
    out
}

/// What a reopened store is checked against: the bodies ever written, the acknowledged state
/// and the states in flight.
struct Expected<'a> {
    written: &'a BTreeSet<Vec<u8>>,
    acked: &'a Snapshot,
    in_flight: &'a [Snapshot],
}

/// Opens the store on `disk` and checks it; its snapshot, or `None` after a violation (each
/// prefixed with `label`).
fn reopen_checked(
    disk: &TestDisk,
    label: &str,
    expected: &Expected<'_>,
    out: &mut Violations,
) -> Option<(Store, Snapshot)> {
    let opened = Store::open(disk).and_then(|store| store.snapshot().map(|s| (store, s)));
    let (store, snapshot) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            out.0.push(format!("{label}: recovery failed: {error}"));
            return None;
        }
    };
    let mut found = Violations::default();
    check_invariants(&snapshot, expected.written, &mut found);
    check_recovered(&snapshot, expected.acked, expected.in_flight, &mut found);
    if let Err(violation) = store.thread_map_agrees() {
        found.0.push(violation);
    }
    if let Err(violation) = store.quota_agrees(&snapshot) {
        found.0.push(violation);
    }
    if found.is_empty() {
        return Some((store, snapshot));
    }
    out.0.extend(found.0.into_iter().map(|v| format!("{label}: {v}")));
    None
}

fn recover_and_check(runner: &Runner, disk: &TestDisk, seed: u64, out: &mut Violations) {
    let expected =
        Expected { written: &runner.written, acked: &runner.acked, in_flight: &runner.in_flight };
    let Some((mut store, recovered)) = reopen_checked(disk, "after the crash", &expected, out)
    else {
        return;
    };
    // Recovery's own repairs are unflushed writes too: crash again right after it.
    if disk.sim().pending_ops() > 0 {
        let again = disk.crashed(seed.rotate_left(17), CrashMode::TornSubset);
        if reopen_checked(&again, "after a crash in recovery", &expected, out).is_none() {
            return;
        }
    }
    check_healthy(&mut store, disk, seed, &recovered, runner, out);
}

/// Runs `skua reconstruct` on the crashed disk instead of the recovery on open: the rebuilt
/// indexes must pass the same checks, and so must the store after a crash in the middle of
/// the rebuild (its new indexes are renamed over the old ones, unflushed).
fn reconstruct_and_check(runner: &Runner, disk: &TestDisk, seed: u64, out: &mut Violations) {
    if let Err(error) = Store::reconstruct(disk) {
        return out.0.push(format!("reconstruct after the crash failed: {error}"));
    }
    let expected =
        Expected { written: &runner.written, acked: &runner.acked, in_flight: &runner.in_flight };
    let (torn, report) = disk.crashed_with_report(seed.rotate_left(41), CrashMode::TornSubset);
    if reopen_checked(&torn, "after a crash in reconstruct", &expected, out).is_none() {
        if std::env::var_os("SKUA_CRASH_VERBOSE").is_some() {
            out.0.push("  the crash in reconstruct:".to_owned());
            out.0.extend(report.ops.iter().map(|op| format!("    {op}")));
        }
        return;
    }
    if let Some(job) = disk.flush_begin() {
        let epoch = job.epoch();
        if let Err(error) = job.run() {
            return out.0.push(format!("flush after reconstruct failed: {error}"));
        }
        disk.flush_end(epoch);
    }
    let clean = disk.crashed(0, CrashMode::DropPending);
    let _opened = reopen_checked(&clean, "after reconstruct and a restart", &expected, out);
}

/// Appends to every mailbox (with a keyword new to it) on the recovered store; crashes before
/// the flush (the new writes and recovery's repairs may land in any part); then flushes, loses
/// nothing, and opens again: the new messages and everything recovered must be there. No old
/// message may ever gain the new keyword (a keyword bit left on disk by a lost keyword record
/// must not come back under a new name).
fn check_healthy(
    store: &mut Store,
    disk: &TestDisk,
    seed: u64,
    recovered: &Snapshot,
    runner: &Runner,
    out: &mut Violations,
) {
    let mut written = runner.written.clone();
    let mut appended = Vec::new();
    for (serial, name) in (HEALTH_SERIAL..).zip(recovered.keys()) {
        let body = body_bytes(serial, 900);
        written.insert(body.clone());
        let keywords = [HEALTH_KEYWORD];
        match store.append(name, &body, b"health cache", SystemFlags::SEEN, &keywords, serial) {
            Ok(uid) => appended.push((name.clone(), uid, body)),
            Err(error) => {
                return out.0.push(format!("append to {name} after recovery failed: {error}"));
            }
        }
    }
    let Ok(live) = store.snapshot() else {
        return out.0.push("store unreadable after the appends after recovery".to_owned());
    };
    if let Err(violation) = store.quota_agrees(&live) {
        return out.0.push(format!("after recovery and an append per mailbox: {violation}"));
    }
    let mut in_flight = runner.in_flight.clone();
    in_flight.extend([recovered.clone(), live.clone()]);
    let expected = Expected { written: &written, acked: &runner.acked, in_flight: &in_flight };
    let unflushed = disk.crashed(seed.rotate_left(29), CrashMode::TornSubset);
    let label = "after recovery, an append per mailbox and a crash before its flush";
    if reopen_checked(&unflushed, label, &expected, out).is_none() {
        return;
    }
    if let Some(job) = disk.flush_begin() {
        let epoch = job.epoch();
        if let Err(error) = job.run() {
            return out.0.push(format!("flush after recovery failed: {error}"));
        }
        disk.flush_end(epoch);
    }
    // Everything was flushed: a restart must find exactly the live state.
    let expected = Expected { written: &written, acked: &live, in_flight: &[] };
    let label = "after recovery, an acknowledged append per mailbox and a clean restart";
    let clean = disk.crashed(0, CrashMode::DropPending);
    let Some((_, after)) = reopen_checked(&clean, label, &expected, out) else {
        return;
    };
    for (name, uid, body) in appended {
        if after.get(&name).and_then(|m| m.message(uid)).is_none_or(|m| *m.body != body[..]) {
            out.0.push(format!("{label}: {name} UID {uid} is missing"));
        }
    }
}
