//! Unit tests of the store on the simulated disk: every operation, reopen, and recovery.

use std::path::Path;
use std::rc::Rc;

use super::*;
use crate::disk::sim::SimDisk;
use crate::types::{FlagsOp, Keywords, SystemFlags};

fn open(disk: &Rc<SimDisk>) -> UserStore<SimDisk> {
    UserStore::open(disk.clone(), Path::new("u")).unwrap()
}

#[test]
fn fresh_store_has_inbox() {
    let disk = Rc::new(SimDisk::new());
    let store = open(&disk);
    let boxes = store.mailboxes();
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0].name, "INBOX");
    assert_eq!(boxes[0].uid_next, Uid::MIN);
    assert_eq!(store.mailbox_id("inbox"), Some(boxes[0].id));
    store.check_invariants();
}

#[test]
fn append_read_reopen() {
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let flags = Flags {
        system: SystemFlags(SystemFlags::SEEN),
        keywords: Keywords(0),
    };
    let (uid, modseq) = store
        .append(inbox, b"Subject: hi\r\n\r\nbody", b"cache", flags, None)
        .unwrap();
    assert_eq!(uid, Uid::MIN);
    assert!(modseq.0 > 1);
    assert_eq!(
        &*store.body(inbox, uid).unwrap(),
        b"Subject: hi\r\n\r\nbody"
    );
    assert_eq!(&*store.cache(inbox, uid).unwrap(), b"cache");
    store.check_invariants();
    drop(store);
    let store = open(&disk);
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    let messages = store.messages(inbox).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].flags, flags);
    assert_eq!(
        &*store.body(inbox, uid).unwrap(),
        b"Subject: hi\r\n\r\nbody"
    );
    store.check_invariants();
}

#[test]
fn flags_expunge_copy() {
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let work = store.create_mailbox("Work").unwrap();
    let junk = store.keyword_bits(inbox, &["$Junk"]).unwrap();
    let none = Flags::default();
    for i in 0..5u8 {
        store
            .append(inbox, &[b'a' + i; 10], b"", none, None)
            .unwrap();
    }
    let uids: Vec<Uid> = store
        .messages(inbox)
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    let keyword = Flags {
        system: SystemFlags(SystemFlags::FLAGGED),
        keywords: junk,
    };
    let outcome = store
        .store_flags(inbox, &uids[..2], FlagsOp::Add, keyword, None)
        .unwrap();
    assert_eq!(outcome.changed.len(), 2);
    let stale = store
        .store_flags(inbox, &uids[..1], FlagsOp::Remove, keyword, Some(ModSeq(1)))
        .unwrap();
    assert_eq!(stale.modified, vec![uids[0]]);
    let pairs = store.copy(inbox, &uids[..3], work).unwrap();
    assert_eq!(pairs.len(), 3);
    let copied = store.messages(work).unwrap();
    assert_eq!(copied[0].flags.system, SystemFlags(SystemFlags::FLAGGED));
    assert_eq!(store.keywords(work).unwrap(), vec!["$Junk".to_owned()]);
    assert_eq!(&*store.body(work, pairs[2].1).unwrap(), &[b'c'; 10]);
    store.expunge(inbox, &uids[1..3]).unwrap();
    assert_eq!(store.messages(inbox).unwrap().len(), 3);
    store.check_invariants();
    drop(store);
    let store = open(&disk);
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    assert_eq!(store.messages(inbox).unwrap().len(), 3);
    assert_eq!(store.messages(work).unwrap().len(), 3);
    let info = store.mailbox_info(work).unwrap();
    assert_eq!(info.messages, 3);
    assert_eq!(info.size, 30);
}

/// Runs one flush round of the simulated disk.
fn flush(disk: &SimDisk) {
    use crate::disk::{Disk, Flush};
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().unwrap();
        disk.flush_end(epoch);
    }
}

/// A small mixed workload with a flush after every few operations, crashed after each step in
/// every mode: the store always opens, its invariants hold, and every flushed append is there
/// with its bytes.
#[test]
fn crash_after_any_step_keeps_what_was_flushed() {
    use crate::disk::sim::CrashMode;
    for seed in 0..16u64 {
        let disk = Rc::new(SimDisk::new());
        let mut store = open(&disk);
        let inbox = store.mailbox_id("INBOX").unwrap();
        let mut acked: Vec<(MailboxId, Uid, Vec<u8>)> = Vec::new();
        let mut pending: Vec<(MailboxId, Uid, Vec<u8>)> = Vec::new();
        for step in 0..18u32 {
            let body = format!("message {seed}/{step}").repeat(1 + (step as usize * 97) % 40);
            match step % 6 {
                3 if step > 6 => {
                    let uids: Vec<Uid> = store
                        .messages(inbox)
                        .unwrap()
                        .iter()
                        .map(|m| m.uid)
                        .collect();
                    let seen = Flags {
                        system: SystemFlags(SystemFlags::SEEN),
                        keywords: Keywords(0),
                    };
                    store
                        .store_flags(inbox, &uids[..1], FlagsOp::Add, seen, None)
                        .unwrap();
                    store.expunge(inbox, &uids[1..2]).unwrap();
                    pending.retain(|(m, u, _)| !(*m == inbox && *u == uids[1]));
                    acked.retain(|(m, u, _)| !(*m == inbox && *u == uids[1]));
                }
                4 => {
                    let name = format!("box{step}");
                    store.create_mailbox(&name).unwrap();
                }
                5 => {
                    flush(&disk);
                    acked.append(&mut pending);
                }
                _ => {
                    let target = store.mailboxes().last().unwrap().id;
                    let target = if step % 2 == 0 { inbox } else { target };
                    let (uid, _) = store
                        .append(target, body.as_bytes(), b"c", Flags::default(), None)
                        .unwrap();
                    pending.push((target, uid, body.into_bytes()));
                }
            }
            for mode in CrashMode::ALL {
                let crashed = Rc::new(disk.crash(seed * 1000 + u64::from(step), mode));
                let recovered = UserStore::open(crashed.clone(), Path::new("u")).unwrap();
                recovered.check_invariants();
                let first_report = recovered.recovery().clone();
                for (mailbox, uid, bytes) in &acked {
                    let body = recovered.body(*mailbox, *uid);
                    assert_eq!(
                        &*body.unwrap(),
                        &bytes[..],
                        "seed {seed} step {step} {mode:?}"
                    );
                }
                // Recovery itself must leave a store that reopens cleanly.
                flush(&crashed);
                drop(recovered);
                let again = UserStore::open(crashed, Path::new("u")).unwrap();
                again.check_invariants();
                assert!(
                    again.recovery().is_clean(),
                    "seed {seed} step {step} {mode:?}\nfirst {:?}\nsecond {:?}\n{:?}",
                    first_report,
                    again.recovery(),
                    again.mailboxes()
                );
            }
        }
    }
}

/// The log's length on the live image.
fn log_len(disk: &Rc<SimDisk>) -> u64 {
    use crate::disk::{DiskFile, OpenMode};
    let file = disk
        .open(Path::new("u/mailboxes.log"), OpenMode::Existing)
        .unwrap();
    file.len().unwrap()
}

#[test]
fn log_compaction_replaces_a_grown_log_and_survives_crashes() {
    use crate::disk::sim::CrashMode;
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.keyword_bits(inbox, &["$Junk", "Work"]).unwrap();
    let gone = store.create_mailbox("Gone").unwrap();
    store.delete_mailbox("Gone").unwrap();
    store.create_mailbox("Kept/Child").unwrap();
    store.subscribe("Kept/Child").unwrap();
    while log_len(&disk) < crate::limits::LOG_COMPACT_MIN_BYTES {
        store.subscribe("churn").unwrap();
        store.unsubscribe("churn").unwrap();
    }
    let grown = log_len(&disk);
    let expect = |store: &UserStore<SimDisk>| {
        let names: Vec<String> = store.mailboxes().into_iter().map(|m| m.name).collect();
        assert_eq!(names, vec!["INBOX", "Kept/Child"]);
        // Unflushed (un)subscriptions of the steps may or may not survive a crash.
        let mut subscriptions = store.subscriptions();
        subscriptions.retain(|name| !name.starts_with("step"));
        assert_eq!(subscriptions, vec!["Kept/Child"]);
        assert_eq!(store.keywords(inbox).unwrap(), vec!["$Junk", "Work"]);
        store.check_invariants();
    };
    // Flush, start (a mutation sees the durable epoch), flush, finish (the next mutation).
    let mut crash_points = Vec::new();
    for step in 0..3 {
        flush(&disk);
        store.subscribe(&format!("step{step}")).unwrap();
        store.unsubscribe(&format!("step{step}")).unwrap();
        crash_points.push(disk.crash(u64::from(step as u8), CrashMode::TornSubset));
        crash_points.push(disk.crash(u64::from(step as u8), CrashMode::Subset));
        crash_points.push(disk.crash(u64::from(step as u8), CrashMode::KeepPending));
    }
    assert!(
        log_len(&disk) * 4 < grown,
        "{} -> {}",
        grown,
        log_len(&disk)
    );
    expect(&store);
    assert_eq!(store.subscriptions(), vec!["Kept/Child"]);
    let fresh = store.create_mailbox("After").unwrap();
    assert!(fresh.0 > gone.0, "a compacted log still never reuses ids");
    for crashed in crash_points {
        let crashed = Rc::new(crashed);
        let reopened = UserStore::open(crashed, Path::new("u")).unwrap();
        expect(&reopened);
    }
    flush(&disk);
    drop(store);
    let store = open(&disk);
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    assert!(store.mailbox_id("After").is_some());
    assert!(!disk.exists(Path::new("u/mailboxes.log.tmp")));
}
