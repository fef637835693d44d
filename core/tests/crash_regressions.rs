//! Regression tests for store bugs the crash simulation found, each replaying the one crash
//! outcome that exposed it (`SimDisk::crash_where`), so they keep testing the same thing when
//! the random workloads change. Findings: `core/CRASH-FINDINGS.md`.
//!
//! 1. Keyword bits of a lost keyword record came back under a new name. Invariant: keyword
//!    bits never change meaning; acknowledged flags are exact after a restart.
//! 2. A crash during a new user's first open left a stray `Recovered/00000000` mailbox.
//!    Invariant: recovery never invents a mailbox the store never had.
//! 3. An unacknowledged DELETE whose log record was lost but whose index-file removal landed
//!    brought the mailbox back rebuilt from the spool: acknowledged flag changes undone and
//!    HIGHESTMODSEQ lower. Invariant: acknowledged flags stay; HIGHESTMODSEQ never goes back.
//! 4. (Follow-up of 1.) Recovery's clearing of a stray keyword bit was itself unflushed when
//!    the next keyword took the bit. (5, damage at rest: see `crash_corruption.rs`.)
//! 6. One damaged record in durable spool dropped every later record. Invariant: damage at
//!    rest loses what it hit, not what follows it.
//! 7. `reconstruct` failed on an index file shorter than its header (a crash in CREATE).
//!    Invariant: reconstruct repairs what a crash leaves; it never refuses it.
//! 8. A crash in `reconstruct` kept the rename of a rebuilt index over the old one but not the
//!    rebuilt bytes: acknowledged flags were lost. Invariant: as for any crash.
//! 9. A spool segment whose header sector was zeroed, or overwritten by another sector (a
//!    misdirected write), made open panic ("no index entry past the spool end"). Invariant:
//!    a bad disk is an error or lost mail, never a panic, never wrong bytes.
//! 10. A subtree RENAME (one log write of several records) torn at a sector boundary renamed
//!     the parent but not its child. Invariant: a rename is all or nothing.
//! 11. (Found while fixing 6.) Once recovery keeps spool records after a damaged one, an
//!     unacknowledged expunge tombstone can outlive the message record it names; the UID was
//!     given again, and the tombstone, scanned again on the next open, expunged the new,
//!     acknowledged message. Invariant: a UID a surviving record names is never given again.
//! 12. (Not a finding: pins a contract.) Appends write their index record unsynced: the flush
//!     round that acknowledges a delivery syncs the spool but not the index. Invariant: a crash
//!     that loses every unsynced index write loses no acknowledged message, flag, UID, and
//!     UIDNEXT and HIGHESTMODSEQ never go back.
//! 13. (Found with 12.) A stale index entry (its record lost, recovery's cut of it lost by a
//!     second crash) lay in a span skipped as damaged, before a later UID's record: kept as
//!     expunged, it broke spool order. Invariant: an entry no record backs is dropped unless
//!     it is damage at rest.
//! 14. (Found with 12.) A log record after one a crash lost replayed after the new records
//!     written where recovery cut the log, once a second crash lost the cut: a keyword bit
//!     changed meaning. Invariant: a record recovery cut never replays.
#![cfg(feature = "sim")]

/// The disk under the crash harness's modules: the bare simulated disk.
type TestDisk = skua_core::disk::sim::SimDisk;

#[path = "crash/model.rs"]
#[allow(dead_code)]
mod model;
#[path = "crash/store.rs"]
#[allow(dead_code)]
mod store;

use skua_core::disk::sim::{Damage, Fate, PendingOp, SimDisk};
use skua_core::disk::{Disk, Flush};
use skua_core::types::{FlagsOp, SystemFlags};

use model::INBOX;
use store::Store;

fn flush(disk: &SimDisk) {
    let job = disk.flush_begin().expect("something to flush");
    let epoch = job.epoch();
    job.run().expect("the flush runs");
    disk.flush_end(epoch);
}

fn is_log(op: &PendingOp) -> bool {
    op.path.ends_with("mailboxes.log")
}

/// Reopens after a crash that dropped nothing unflushed: a clean restart.
fn restart(disk: &SimDisk) -> (SimDisk, Store) {
    let disk = disk.crash(0, skua_core::disk::sim::CrashMode::DropPending);
    let store = Store::open(&disk).expect("the store opens");
    (disk, store)
}

#[test]
fn keyword_bits_of_a_lost_keyword_record_are_never_reused() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    store.append(INBOX, b"Subject: one\r\n\r\nbody\r\n", b"c", 0, &[], 1).unwrap();
    flush(&disk);
    // Unacknowledged STORE with a new keyword: the index write lands, the log write does not.
    store.store_flags(INBOX, &[1], FlagsOp::Add, SystemFlags::FLAGGED, &["urgent"]).unwrap();
    let (crashed, report) = disk.crash_where(|op| if is_log(op) { Fate::Lost } else { Fate::Kept });
    assert!(report.ops.iter().any(|op| op.contains("mailboxes.log") && op.ends_with("lost")));

    let mut recovered = Store::open(&crashed).unwrap();
    let snapshot = recovered.snapshot().unwrap();
    let message = snapshot[INBOX].message(1).expect("acknowledged UID 1 survives");
    assert!(message.keywords.is_empty(), "the keyword's name was lost: {:?}", message.keywords);

    // An acknowledged append allocates a keyword: it must get a bit no old message carries.
    recovered.append(INBOX, b"Subject: two\r\n\r\nbody\r\n", b"c", 0, &["fresh"], 2).unwrap();
    flush(&crashed);
    let (_, reopened) = restart(&crashed);
    let after = reopened.snapshot().unwrap();
    let old = after[INBOX].message(1).expect("UID 1 survives a clean restart");
    assert_eq!(old.flags(), message.flags(), "UID 1 gained a keyword nobody set");
    let new = after[INBOX].message(2).expect("the acknowledged append survives");
    assert_eq!(new.keywords.iter().collect::<Vec<_>>(), ["fresh"]);
}

#[test]
fn a_crash_in_the_first_open_leaves_no_stray_mailbox() {
    // The first open's writes land without the log's header; in the case that exposed the bug
    // the log file kept its entry and its length (a `set_len` to the header size) but not the
    // header bytes, so the log looked damaged while the index of INBOX was intact.
    let outcomes: [fn(&PendingOp) -> Fate; 3] = [
        |op| if is_log(op) { Fate::Lost } else { Fate::Kept },
        |op| {
            if is_log(op) && op.kind != "create" { Fate::Lost } else { Fate::Kept }
        },
        |op| {
            if is_log(op) && op.kind == "write" { Fate::Lost } else { Fate::Kept }
        },
    ];
    for (case, outcome) in outcomes.into_iter().enumerate() {
        let disk = SimDisk::new();
        let _store = Store::open(&disk).unwrap();
        let (crashed, report) = disk.crash_where(outcome);
        let recovered = Store::open(&crashed).unwrap().snapshot().unwrap();
        let names: Vec<&String> = recovered.keys().collect();
        assert_eq!(names, [INBOX], "case {case}: {:#?}", report.ops);
        // A second crash in the middle of that recovery must not invent one either.
        let (again, report) = crashed.crash_where(outcome);
        let twice = Store::open(&again).unwrap().snapshot().unwrap();
        assert_eq!(
            twice.keys().collect::<Vec<_>>(),
            [INBOX],
            "case {case}, twice: {:#?}",
            report.ops
        );
    }
}

#[test]
fn an_unacknowledged_delete_never_undoes_acknowledged_changes() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    store.create("Folder1").unwrap();
    flush(&disk);
    let draft = SystemFlags::DELETED | SystemFlags::DRAFT;
    store.append("Folder1", b"Subject: one\r\n\r\nbody\r\n", b"c", draft, &[], 1).unwrap();
    flush(&disk);
    store.store_flags("Folder1", &[1], FlagsOp::Replace, SystemFlags::DELETED, &[]).unwrap();
    flush(&disk);
    let acked = store.snapshot().unwrap();
    // In flight: the delete. The log write is lost, everything else it did lands.
    store.delete("Folder1").unwrap();
    let (crashed, report) = disk.crash_where(|op| if is_log(op) { Fate::Lost } else { Fate::Kept });
    let recovered = Store::open(&crashed).unwrap().snapshot().unwrap();
    if let Some(folder) = recovered.get("Folder1") {
        let was = &acked["Folder1"];
        assert!(folder.highest_modseq >= was.highest_modseq, "{:#?}", report.ops);
        assert_eq!(folder.messages, was.messages, "{:#?}", report.ops);
    }
}

/// Follow-up of 1: recovery clears the stray bit on disk, but that write is itself unflushed.
/// If the next keyword allocation (same bit) reaches the disk and the clearing write does not,
/// the old message would show the new keyword.
#[test]
fn clearing_a_stray_keyword_bit_is_durable_before_the_bit_is_reused() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    store.append(INBOX, b"Subject: one\r\n\r\nbody\r\n", b"c", 0, &[], 1).unwrap();
    flush(&disk);
    store.store_flags(INBOX, &[1], FlagsOp::Add, SystemFlags::FLAGGED, &["urgent"]).unwrap();
    let (crashed, _) = disk.crash_where(|op| if is_log(op) { Fate::Lost } else { Fate::Kept });

    let mut recovered = Store::open(&crashed).unwrap();
    let before = recovered.snapshot().unwrap()[INBOX].message(1).unwrap().clone();
    recovered.append(INBOX, b"Subject: two\r\n\r\nbody\r\n", b"c", 0, &["fresh"], 2).unwrap();
    // Crash again before any flush: the new keyword record lands, no index write does.
    let is_index = |op: &PendingOp| op.path.extension().is_some_and(|e| e == "idx");
    let (again, report) =
        crashed.crash_where(|op| if is_index(op) { Fate::Lost } else { Fate::Kept });
    let after = Store::open(&again).unwrap().snapshot().unwrap();
    let old = after[INBOX].message(1).expect("acknowledged UID 1 survives");
    assert!(!old.keywords.contains("fresh"), "UID 1 gained `fresh`: {:#?}", report.ops);
    assert!(old.keywords.is_subset(&before.keywords), "{:?} vs {:?}", old.flags(), before.flags());
}

#[test]
fn reconstruct_takes_an_index_file_cut_short_by_a_crash() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    flush(&disk);
    // In flight: CREATE. The log record and the index file's name land, its header does not.
    store.create("Work").unwrap();
    let is_index_write = |op: &PendingOp| op.path.ends_with("00000001.idx") && op.kind != "create";
    let (crashed, report) =
        disk.crash_where(|op| if is_index_write(op) { Fate::Lost } else { Fate::Kept });
    if let Err(error) = Store::reconstruct(&crashed) {
        panic!("reconstruct failed: {error}\n{:#?}", report.ops);
    }
    flush(&crashed);
    let (_, reopened) = restart(&crashed);
    let names: Vec<String> = reopened.snapshot().unwrap().into_keys().collect();
    assert!(names.contains(&INBOX.to_owned()), "{names:?}");
}

#[test]
fn a_crash_in_reconstruct_keeps_acknowledged_flags() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    store.append(INBOX, b"Subject: one\r\n\r\nbody\r\n", b"c", 0, &[], 1).unwrap();
    flush(&disk);
    store.store_flags(INBOX, &[1], FlagsOp::Add, SystemFlags::SEEN, &["urgent"]).unwrap();
    flush(&disk);
    let acked = store.snapshot().unwrap();
    drop(store);
    Store::reconstruct(&disk).unwrap();
    // The rebuilt index replaces the old one by a rename; the rename lands, its bytes do not.
    let (crashed, report) =
        disk.crash_where(|op| if op.kind == "write" { Fate::Lost } else { Fate::Kept });
    let recovered = Store::open(&crashed).unwrap().snapshot().unwrap();
    let (was, now) = (&acked[INBOX], &recovered[INBOX]);
    assert_eq!(now.messages, was.messages, "{:#?}", report.ops);
    assert!(now.highest_modseq >= was.highest_modseq, "{:#?}", report.ops);
}

#[test]
fn a_misdirected_sector_over_a_segment_header_is_no_panic() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    let mut bodies = Vec::new();
    for serial in 1..=4 {
        let body = format!("Subject: {serial}\r\n\r\n{}\r\n", "x".repeat(1500)).into_bytes();
        store.append(INBOX, &body, b"c", 0, &[], serial).unwrap();
        flush(&disk);
        bodies.push(body);
    }
    drop(store);
    let (clean, _) = restart(&disk);
    let segment = std::path::Path::new("users/crash-test/spool/00000001.seg");
    let sectors = clean.durable_contents(segment).expect("the segment exists").len() / 512;
    let zeroed = std::iter::once(Damage::Zero { offset: 0 });
    let misdirected =
        (1..sectors).map(|source| Damage::Misdirect { source: source * 512, target: 0 });
    for damage in zeroed.chain(misdirected) {
        let damaged = clean.crash(0, skua_core::disk::sim::CrashMode::DropPending);
        damaged.damage(segment, damage).unwrap();
        let opened =
            std::panic::catch_unwind(|| Store::open(&damaged).map(|s| s.read_everything()));
        let Ok(opened) = opened else { panic!("open panicked after {damage:?}") };
        let mut served = Vec::new();
        for (_, _, uid, body) in opened.expect("a damaged header sector is repaired") {
            if let Ok(body) = body {
                assert_eq!(body, bodies[uid as usize - 1], "{damage:?}: UID {uid} served wrong");
                served.push(uid);
            }
        }
        // Only UID 1's record shares sector 0 with the header; the nonce is recovered from
        // the others, so they stay readable.
        for uid in 2..=4 {
            assert!(served.contains(&uid), "{damage:?}: UID {uid} lost; served {served:?}");
        }
    }
}

#[test]
fn one_damaged_record_in_durable_spool_loses_only_itself() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    let mut bodies = Vec::new();
    for serial in 1..=6 {
        let body = format!("Subject: {serial}\r\n\r\n{}\r\n", "y".repeat(700)).into_bytes();
        store.append(INBOX, &body, b"c", 0, &[], serial).unwrap();
        flush(&disk);
        bodies.push(body);
    }
    store.store_flags(INBOX, &[6], FlagsOp::Add, SystemFlags::SEEN, &[]).unwrap();
    flush(&disk);
    drop(store);
    let (clean, _) = restart(&disk);
    let segment = std::path::Path::new("users/crash-test/spool/00000001.seg");
    // A bit in the middle of UID 3's body (header 64 bytes, records of ~780 bytes).
    let offset = 64 + 2 * 784 + 400;
    let damaged = clean.crash(0, skua_core::disk::sim::CrashMode::DropPending);
    damaged.damage(segment, Damage::Flip { offset, mask: 0x10 }).unwrap();
    let store = Store::open(&damaged).unwrap();
    let served: Vec<u32> = store
        .read_everything()
        .into_iter()
        .filter_map(|(_, _, uid, body)| {
            let body = body.ok()?;
            assert_eq!(body, bodies[uid as usize - 1], "UID {uid} served wrong");
            Some(uid)
        })
        .collect();
    assert_eq!(served, [1, 2, 4, 5, 6], "only the damaged message is lost");
    let snapshot = store.snapshot().unwrap();
    assert_eq!(snapshot[INBOX].message(6).unwrap().flags().0, SystemFlags::SEEN);
}

#[test]
fn a_torn_subtree_rename_is_all_or_nothing() {
    // Filler mailboxes move the log's end until the rename's write straddles a sector.
    for fillers in 0..32 {
        let disk = SimDisk::new();
        let mut store = Store::open(&disk).unwrap();
        for filler in 0..fillers {
            store.create(&format!("Filler{filler}")).unwrap();
        }
        store.create("Work").unwrap();
        store.create("Work/2026").unwrap();
        flush(&disk);
        store.rename("Work", "Projects").unwrap();
        let mut tear = None;
        let (crashed, report) = disk.crash_where(|op| {
            let boundary = (op.offset / 512 + 1) * 512;
            if is_log(op) && op.kind == "write" && boundary < op.offset + op.len {
                tear = Some(usize::try_from(boundary - op.offset).unwrap());
                return Fate::Torn(tear.unwrap());
            }
            Fate::Kept
        });
        if tear.is_none() {
            continue;
        }
        let names: Vec<String> =
            Store::open(&crashed).unwrap().snapshot().unwrap().into_keys().collect();
        let old = names.contains(&"Work".to_owned()) && names.contains(&"Work/2026".to_owned());
        let new =
            names.contains(&"Projects".to_owned()) && names.contains(&"Projects/2026".to_owned());
        assert!(old != new, "half a rename: {names:?}\n{:#?}", report.ops);
        return;
    }
    panic!("no filler count made the rename straddle a sector");
}

#[test]
fn a_tombstone_that_outlived_its_message_never_expunges_a_new_one() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    for serial in 1..=2 {
        let body = format!("Subject: {serial}\r\n\r\nbody\r\n").into_bytes();
        store.append(INBOX, &body, b"c", 0, &[], serial).unwrap();
    }
    flush(&disk);
    // Unacknowledged: UID 3 appended, then UIDs 2 and 3 expunged. The crash loses the message
    // record of UID 3 and every index write, and keeps the tombstone after the hole.
    let body = format!("Subject: 3\r\n\r\n{}\r\n", "x".repeat(600)).into_bytes();
    assert_eq!(store.append(INBOX, &body, b"c", 0, &[], 3).unwrap(), 3);
    store.expunge(INBOX, &[2, 3]).unwrap();
    let mut spool_writes = 0;
    let (crashed, report) = disk.crash_where(|op| {
        if op.kind != "write" || op.path.ends_with("mailboxes.log") {
            return Fate::Kept;
        }
        let spool = op.path.to_string_lossy().contains("spool");
        spool_writes += usize::from(spool);
        if spool && spool_writes == 2 { Fate::Kept } else { Fate::Lost }
    });
    let mut recovered = Store::open(&crashed).unwrap();
    let uid =
        recovered.append(INBOX, b"Subject: new\r\n\r\nacknowledged\r\n", b"c", 0, &[], 4).unwrap();
    assert_ne!(uid, 3, "UID 3 was given to a message a surviving tombstone expunges");
    flush(&crashed);
    drop(recovered);
    let (_, again) = restart(&crashed);
    let snapshot = again.snapshot().unwrap();
    assert!(
        snapshot[INBOX].message(uid).is_some(),
        "the acknowledged UID {uid} was lost\n{:#?}",
        report.ops
    );
}

#[test]
fn an_acknowledged_delivery_survives_losing_its_unsynced_index_record() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    store.create("Folder1").unwrap();
    for serial in 1..=2 {
        let body = format!("Subject: {serial}\r\n\r\nbody\r\n").into_bytes();
        store.append(INBOX, &body, b"c", 0, &[], serial).unwrap();
    }
    flush(&disk);
    store.store_flags(INBOX, &[1], FlagsOp::Add, SystemFlags::FLAGGED, &[]).unwrap();
    flush(&disk);
    // Acknowledged deliveries: their rounds sync the spool, not the index records.
    let seen = SystemFlags::SEEN | SystemFlags::ANSWERED;
    let body = b"Subject: 3\r\n\r\nacknowledged\r\n";
    assert_eq!(store.append(INBOX, body, b"c", seen, &[], 3).unwrap(), 3);
    assert_eq!(store.append("Folder1", body, b"c", 0, &[], 4).unwrap(), 1);
    flush(&disk);
    assert_eq!(store.append(INBOX, body, b"c", 0, &[], 5).unwrap(), 4);
    flush(&disk);
    let acked = store.snapshot().unwrap();
    let is_index = |op: &PendingOp| op.path.extension().is_some_and(|e| e == "idx");
    let (crashed, report) =
        disk.crash_where(|op| if is_index(op) { Fate::Lost } else { Fate::Kept });
    for file in ["00000000.idx", "00000001.idx"] {
        assert!(
            report.ops.iter().any(|op| op.contains(file) && op.contains("(unsynced): lost")),
            "an acknowledged index record of {file} was still unsynced: {:#?}",
            report.ops
        );
    }
    let recovered = Store::open(&crashed).unwrap().snapshot().unwrap();
    assert_nothing_acknowledged_lost(&acked, &recovered, &[INBOX, "Folder1"]);
}

/// Every acknowledged message is back with its flags and body; UIDNEXT and HIGHESTMODSEQ are
/// not lower.
fn assert_nothing_acknowledged_lost(
    acked: &model::Snapshot,
    recovered: &model::Snapshot,
    names: &[&str],
) {
    for &name in names {
        let (was, now) = (&acked[name], &recovered[name]);
        for (uid, message) in &was.messages {
            let back = now.message(*uid).unwrap_or_else(|| panic!("{name} UID {uid} lost"));
            assert_eq!(back.flags(), message.flags(), "{name} UID {uid}");
            assert_eq!(back.body, message.body);
        }
        // An unacknowledged delivery may survive too (its spool record landed), never more.
        assert!(
            now.messages.iter().all(|(uid, _)| was.message(*uid).is_some() || *uid >= was.uid_next),
            "{name}: a message appeared among acknowledged UIDs"
        );
        assert!(now.uid_next >= was.uid_next, "{name}: UIDNEXT went back");
        assert!(now.highest_modseq >= was.highest_modseq, "{name}: HIGHESTMODSEQ went back");
    }
}

/// 12, at a checkpoint: the header write that moves the checkpoint lands, the unsynced index
/// records of the acknowledged deliveries before it do not. The header must not claim them.
#[test]
fn a_checkpoint_never_passes_an_unsynced_index_record() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    flush(&disk);
    let big = vec![b'x'; 1 << 20];
    // 17 MiB of acknowledged deliveries: past `limits::CHECKPOINT_INTERVAL_BYTES`.
    for serial in 1..=17 {
        store.append(INBOX, &big, b"c", 0, &[], serial).unwrap();
        flush(&disk);
    }
    let acked = store.snapshot().unwrap();
    // The next mutation writes the checkpoint into the header.
    store.append(INBOX, b"Subject: 18\r\n\r\nx\r\n", b"c", 0, &[], 18).unwrap();
    let mut header_kept = false;
    let (crashed, report) = disk.crash_where(|op| {
        let index = op.path.extension().is_some_and(|e| e == "idx");
        if index && op.kind == "write" && op.offset == 0 {
            header_kept = true;
            Fate::Kept
        } else if op.unsynced {
            Fate::Lost
        } else {
            Fate::Kept
        }
    });
    assert!(header_kept, "no checkpoint was written: {:#?}", report.ops);
    let recovered = Store::open(&crashed).unwrap().snapshot().unwrap();
    assert_nothing_acknowledged_lost(&acked, &recovered, &[INBOX]);
}

/// 12, across a restart that kept the page cache (a process crash): the index records the old
/// process appended unsynced are read back as if durable. A checkpoint written by the new
/// process must not claim them until a round has synced them.
#[test]
fn a_restart_does_not_take_unsynced_index_records_for_durable() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    flush(&disk);
    let big = vec![b'x'; 1 << 20];
    for serial in 1..=17 {
        store.append(INBOX, &big, b"c", 0, &[], serial).unwrap();
        flush(&disk);
    }
    let acked = store.snapshot().unwrap();
    drop(store);
    // The process dies; the page cache (the live image, unsynced writes included) survives.
    let mut store = Store::open(&disk).unwrap();
    flush(&disk);
    store.append(INBOX, b"Subject: 18\r\n\r\nx\r\n", b"c", 0, &[], 18).unwrap();
    let mut header_kept = false;
    let (crashed, report) = disk.crash_where(|op| {
        let index = op.path.extension().is_some_and(|e| e == "idx");
        if index && op.kind == "write" && op.offset == 0 {
            header_kept = true;
            Fate::Kept
        } else if op.unsynced || index {
            Fate::Lost
        } else {
            Fate::Kept
        }
    });
    assert!(header_kept, "no checkpoint was written: {:#?}", report.ops);
    let recovered = Store::open(&crashed).unwrap().snapshot().unwrap();
    assert_nothing_acknowledged_lost(&acked, &recovered, &[INBOX]);
}

/// Regression 13 (found with 12): an index entry whose spool record a crash lost is cut by recovery; a
/// second crash loses that cut (a `set_len`, unflushed) and the index records appended since,
/// but keeps the spool records written since over where the lost record was. The stale entry
/// then lies inside a span the scan skips as damaged, after the new record of a later UID of
/// its mailbox. Kept as expunged, it broke spool order (the next open panicked). Invariant:
/// an entry no spool record backs is dropped unless it is damage in durable spool.
#[test]
fn a_stale_entry_overtaken_by_a_later_uid_is_dropped_not_expunged() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    store.create("Folder1").unwrap();
    for serial in 1..=2 {
        let body = format!("Subject: {serial}\r\n\r\nbody\r\n").into_bytes();
        store.append(INBOX, &body, b"c", 0, &[], serial).unwrap();
    }
    flush(&disk);
    let acked = store.snapshot().unwrap();
    // Unacknowledged: Folder1 UID 1 then INBOX UID 3. The crash loses both spool records and
    // keeps their index records.
    store.append("Folder1", &vec![b'f'; 600], b"c", 0, &[], 3).unwrap();
    assert_eq!(store.append(INBOX, &vec![b'i'; 600], b"c", 0, &[], 4).unwrap(), 3);
    let is_spool = |op: &PendingOp| op.path.extension().is_some_and(|e| e == "seg");
    let (crashed, _) = disk.crash_where(|op| if is_spool(op) { Fate::Lost } else { Fate::Kept });
    // Recovery cuts both index entries (unflushed). The next INBOX message, UID 4, goes where
    // Folder1 UID 1 was; then a long record and one more.
    let mut store = Store::open(&crashed).unwrap();
    assert_eq!(store.append(INBOX, b"Subject: 4\r\n\r\nx\r\n", b"c", 0, &[], 5).unwrap(), 4);
    store.append("Folder1", &vec![b'g'; 3000], b"c", 0, &[], 6).unwrap();
    store.append("Folder1", b"Subject: 7\r\n\r\nx\r\n", b"c", 0, &[], 7).unwrap();
    // The crash keeps the first and the last spool record, loses the one between (a damaged
    // span over where INBOX UID 3 was) and every index write (the cuts and the appends).
    let mut spool_writes = 0;
    let (again, report) = crashed.crash_where(|op| {
        let index = op.path.extension().is_some_and(|e| e == "idx");
        if is_spool(op) && op.kind == "write" {
            spool_writes += 1;
        }
        if index || (is_spool(op) && op.kind == "write" && spool_writes == 2) {
            Fate::Lost
        } else {
            Fate::Kept
        }
    });
    assert_eq!(spool_writes, 3, "{:#?}", report.ops);
    let recovered = Store::open(&again).expect("the store opens").snapshot().unwrap();
    assert_nothing_acknowledged_lost(&acked, &recovered, &[INBOX]);
    assert!(recovered[INBOX].message(3).is_none(), "INBOX UID 3 was never written whole");
    assert!(recovered[INBOX].message(4).is_some(), "INBOX UID 4 landed");
    // And a clean restart finds the same.
    let (_, store) = restart(&again);
    let uids = |m: &model::MailboxState| m.messages.iter().map(|(uid, _)| *uid).collect::<Vec<_>>();
    assert_eq!(uids(&store.snapshot().unwrap()[INBOX]), uids(&recovered[INBOX]));
}

/// Regression 14 (found with 12): a crash kept a log record written after one it lost; recovery cut the
/// log at the lost one, and the next keyword records went where the cut was. A second crash
/// lost that cut (a `set_len`, unflushed) and the second new keyword record, but kept the
/// first: replay read the first new record, then the stale one after it, whose bit is the bit
/// the second new keyword took: a message appended with `fresh2` came back with `$Important`.
/// Invariant: keyword bits never change meaning; a record a cut removed never replays.
#[test]
fn a_log_record_cut_by_recovery_never_replays_after_new_ones() {
    let disk = SimDisk::new();
    let mut store = Store::open(&disk).unwrap();
    flush(&disk);
    // Unacknowledged: two keyword records of the same size; the crash keeps only the second.
    store.append(INBOX, b"Subject: a\r\n\r\na\r\n", b"c", 0, &["lost01"], 1).unwrap();
    store.append(INBOX, b"Subject: b\r\n\r\nb\r\n", b"c", 0, &["$Important"], 2).unwrap();
    let mut log_writes = 0;
    let (crashed, report) = disk.crash_where(|op| {
        if is_log(op) && op.kind == "write" {
            log_writes += 1;
            if log_writes == 2 {
                return Fate::Kept;
            }
        }
        Fate::Lost
    });
    assert_eq!(log_writes, 2, "{:#?}", report.ops);
    let mut store = Store::open(&crashed).unwrap();
    let (one, two) = (b"Subject: 1\r\n\r\none\r\n", b"Subject: 2\r\n\r\ntwo\r\n");
    store.append(INBOX, one, b"c", 0, &["fresh1"], 3).unwrap();
    store.append(INBOX, two, b"c", 0, &["fresh2"], 4).unwrap();
    // The crash keeps every write but the last log record, and loses the log's resizes.
    let last_log_write = crashed_log_writes(&crashed);
    let mut log_writes = 0;
    let (again, report) = crashed.crash_where(|op| {
        if !is_log(op) {
            return Fate::Kept;
        }
        if op.kind == "write" {
            log_writes += 1;
        }
        if op.kind != "write" || log_writes == last_log_write { Fate::Lost } else { Fate::Kept }
    });
    let recovered = Store::open(&again).expect("the store opens").snapshot().unwrap();
    for (_, message) in &recovered[INBOX].messages {
        let (_, keywords) = message.flags();
        let allowed: &[&str] = match &message.body[..] {
            body if body == one => &["fresh1"],
            body if body == two => &["fresh2"],
            _ => &[],
        };
        assert!(
            keywords.iter().all(|k| allowed.contains(&k.as_str())),
            "{keywords:?} on a message appended with {allowed:?}\n{:#?}",
            report.ops
        );
    }
}

/// How many log writes are pending on `disk`.
fn crashed_log_writes(disk: &SimDisk) -> usize {
    let mut count = 0;
    let _ = disk.crash_where(|op| {
        count += usize::from(is_log(op) && op.kind == "write");
        Fate::Kept
    });
    count
}
