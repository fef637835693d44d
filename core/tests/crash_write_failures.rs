//! Crash simulation of refused writes (issue 7, defect 5: "A delivery refused with 452 comes
//! back after a restart"). A write of an APPEND or COPY fails (ENOSPC or EIO, injected by the
//! simulated disk at the spool or the index step, or at the cut that undoes it); the store
//! refuses the operation; the shard's next flush round runs; more work follows, part of it
//! never flushed; then the disk crashes in every mode, with several seeds each.
//!
//! Invariant: after the round that follows a refusal, no crash and no recovery (open or
//! `reconstruct`) brings the refused message back, and every acknowledged message and flag is
//! there. (Before that round the refused record and its cut are both unflushed, like any
//! write not yet acknowledged: see `core/FORMAT.md`, "Write and flush order".)
//!
//! Seeds per crash mode: `SKUA_CRASH_SEEDS` (default 40).
#![cfg(feature = "sim")]

mod store_support;

use std::io::ErrorKind;
use std::path::Path;
use std::rc::Rc;
use store_support::{flush, settle};

use skua_core::disk::sim::{CrashMode, FailOp, SimDisk};
use skua_core::store::UserStore;
use skua_core::types::{Flags, FlagsOp, MailboxId, SystemFlags, Uid};

const USER: &str = "users/aa/alice";
const SEEDS_DEFAULT: u64 = 40;

fn open(disk: &SimDisk) -> Result<UserStore<SimDisk>, String> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER)).map_err(|e| format!("{e:?}"))
}

/// Where the refused operation fails.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// APPEND: the spool record's write.
    AppendSpool,
    /// APPEND: the index record's write, after the spool record was written.
    AppendIndex,
    /// APPEND: the index write, then the cut of the spool record (refused once; the next
    /// mutation makes it).
    AppendIndexThenCut,
    /// COPY of two messages: the second copy's index write; the disk is full for the spool
    /// from then on (no tombstone can be written to undo the first copy).
    CopySecond,
}

const FAILURES: [Failure; 4] =
    [Failure::AppendSpool, Failure::AppendIndex, Failure::AppendIndexThenCut, Failure::CopySecond];

const REFUSED: &[u8] = b"Subject: refused\r\n\r\nthe store said no\r\n";

/// The workload up to the crash point; returns the disk and what was acknowledged.
struct Acked {
    inbox: Vec<(Uid, Vec<u8>, Flags)>,
}

fn workload(failure: Failure) -> (SimDisk, Acked) {
    let disk = SimDisk::new();
    let mut store = open(&disk).unwrap();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let archive = store.create_mailbox("Archive").unwrap();
    let a = b"Subject: a\r\n\r\nfirst\r\n".to_vec();
    let b = b"Subject: b\r\n\r\nsecond\r\n".to_vec();
    let uid_a = store.append(inbox, &a, b"ca", Flags::default(), None).unwrap().0;
    let uid_b = store.append(inbox, &b, b"cb", Flags::default(), None).unwrap().0;
    settle(&mut store, &disk);
    let refused = match failure {
        Failure::AppendSpool | Failure::AppendIndex | Failure::AppendIndexThenCut => {
            let suffix = if matches!(failure, Failure::AppendSpool) { ".seg" } else { ".idx" };
            disk.fail_next(FailOp::Write, suffix, ErrorKind::StorageFull, 1);
            if matches!(failure, Failure::AppendIndexThenCut) {
                disk.fail_next(FailOp::SetLen, ".seg", ErrorKind::Other, 1);
            }
            store.append(archive, REFUSED, b"cr", Flags::default(), None).map(drop).is_err()
        }
        Failure::CopySecond => {
            disk.fail_after(FailOp::Write, "00000001.idx", ErrorKind::StorageFull, 1, 1);
            disk.fail_after(FailOp::Write, ".seg", ErrorKind::StorageFull, 2, 1000);
            let refused = store.copy(inbox, &[uid_a, uid_b], archive).is_err();
            disk.fail_next(FailOp::Write, ".seg", ErrorKind::StorageFull, 0);
            refused
        }
    };
    assert!(refused, "{failure:?}: the operation must be refused");
    assert!(store.messages(archive).unwrap().is_empty(), "{failure:?}: refused means absent");
    // The shard's next round (it would carry the refusal's reply), then acknowledged work.
    flush(&disk);
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), ..Flags::default() };
    let stored = store.store_flags(inbox, &[uid_a], FlagsOp::Add, seen, None);
    flush(&disk);
    let acked_flags_a = if stored.is_ok() { seen } else { Flags::default() };
    // A copy of CopySecond leaves the spool full: nothing more is written there then.
    if !matches!(failure, Failure::CopySecond) {
        // Never flushed: a crash may keep or lose it, and it lands where the refused record
        // was.
        store.append(inbox, b"Subject: d\r\n\r\nunflushed\r\n", b"cd", seen, None).unwrap();
        store.store_flags(inbox, &[uid_b], FlagsOp::Add, seen, None).unwrap();
    }
    let acked = Acked { inbox: vec![(uid_a, a, acked_flags_a), (uid_b, b, Flags::default())] };
    (disk, acked)
}

/// Every body in every mailbox.
fn all_bodies(store: &UserStore<SimDisk>) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for info in store.mailboxes() {
        for meta in store.messages(info.id).unwrap() {
            bodies.push(store.body(info.id, meta.uid).unwrap().to_vec());
        }
    }
    bodies
}

fn check(
    store: &UserStore<SimDisk>,
    acked: &Acked,
    failure: Failure,
    archive_copies_ok: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let inbox = store.mailbox_id("INBOX").unwrap();
    for (uid, body, flags) in &acked.inbox {
        match store.message(inbox, *uid).unwrap() {
            None => out.push(format!("acknowledged UID {} lost", uid.get())),
            Some(meta) => {
                if store.body(inbox, *uid).unwrap().to_vec() != *body {
                    out.push(format!("UID {}: wrong body", uid.get()));
                }
                if meta.flags.system.0 & flags.system.0 != flags.system.0 {
                    out.push(format!("UID {}: acknowledged flags lost", uid.get()));
                }
            }
        }
    }
    if all_bodies(store).iter().any(|b| b == REFUSED) {
        out.push(format!("{failure:?}: the refused message came back"));
    }
    let archive: MailboxId = store.mailbox_id("Archive").unwrap();
    if !archive_copies_ok && !store.messages(archive).unwrap().is_empty() {
        out.push(format!("{failure:?}: Archive holds messages of a refused operation"));
    }
    #[cfg(debug_assertions)]
    store.check_invariants();
    out
}

#[test]
fn refused_writes_stay_refused_through_any_crash() {
    let seeds = std::env::var("SKUA_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEEDS_DEFAULT);
    let mut failures = Vec::new();
    let mut crashes = 0u64;
    for failure in FAILURES {
        let (disk, acked) = workload(failure);
        for mode in CrashMode::ALL {
            let seeds = if matches!(mode, CrashMode::DropPending | CrashMode::KeepPending) {
                1
            } else {
                seeds
            };
            for seed in 0..seeds {
                crashes += 1;
                let crashed = disk.crash(seed, mode);
                let reconstructed = disk.crash(seed, mode);
                match open(&crashed) {
                    Ok(store) => failures.extend(
                        check(&store, &acked, failure, false)
                            .into_iter()
                            .map(|v| format!("{failure:?} {mode:?} SEED={seed}: {v}")),
                    ),
                    Err(error) => {
                        failures.push(format!("{failure:?} {mode:?} SEED={seed}: open: {error}"))
                    }
                }
                if let Err(error) =
                    skua_core::store::reconstruct(Rc::new(reconstructed.clone()), Path::new(USER))
                {
                    failures
                        .push(format!("{failure:?} {mode:?} SEED={seed}: reconstruct: {error}"));
                    continue;
                }
                flush(&reconstructed);
                match open(&reconstructed.crash(0, CrashMode::DropPending)) {
                    Ok(store) => {
                        failures.extend(check(&store, &acked, failure, false).into_iter().map(
                            |v| format!("{failure:?} {mode:?} SEED={seed}: after reconstruct: {v}"),
                        ))
                    }
                    Err(error) => failures.push(format!(
                        "{failure:?} {mode:?} SEED={seed}: open after reconstruct: {error}"
                    )),
                }
            }
        }
    }
    println!("{crashes} crashes checked");
    assert!(failures.is_empty(), "{} violations:\n{}", failures.len(), failures.join("\n"));
}
