//! `ipurge` and `unexpunge` on the simulated disk: what goes is exactly what the criteria
//! select, a dry run changes nothing, quota counters follow, a large purge runs in batches,
//! a crash at any point of a purge loses no message it did not select, and a restore brings
//! back the same bytes under new UIDs, all or nothing.

use std::path::Path;
use std::rc::Rc;

use super::*;
use crate::disk::sim::{CrashMode, SimDisk};
use crate::store::admin::check;
use crate::store::tests::flush;
use crate::types::InternalDate;

const DIR: &str = "users/8e/alice";
const NOW: i64 = 2_000_000_000;
const DAY: i64 = 86_400;

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(DIR)).unwrap()
}

fn body(n: u32, len: usize) -> Vec<u8> {
    let mut bytes = format!("Subject: message\r\n number {n}\r\n\r\n").into_bytes();
    bytes.resize(len, b'x');
    bytes
}

/// INBOX: UIDs 1..=4 aged 100, 40, 10, 1 days, sizes 1000, 5000, 1000, 5000 bytes;
/// Archive: UIDs 1, 2 aged 100 and 1 days, 5000 bytes each. All durable.
fn store_with_ages(disk: &SimDisk) -> UserStore<SimDisk> {
    let mut store = open(disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let archive = store.create_mailbox("Archive").unwrap();
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    let date = |days: i64| Some(InternalDate { unix_seconds: NOW - days * DAY, zone_minutes: 60 });
    for (n, (days, len)) in [(100, 1000), (40, 5000), (10, 1000), (1, 5000)].into_iter().enumerate()
    {
        store.append(inbox, &body(n as u32, len), b"", seen, date(days)).unwrap();
    }
    for (n, days) in [100, 1].into_iter().enumerate() {
        store.append(archive, &body(10 + n as u32, 5000), b"", seen, date(days)).unwrap();
    }
    flush(disk);
    store
}

fn criteria(days: Option<u32>, bytes: Option<u64>) -> PurgeCriteria {
    PurgeCriteria {
        older_than_days: days,
        larger_than_bytes: bytes,
        mailbox: None,
        dry_run: false,
        now_unix_seconds: NOW,
    }
}

fn live_uids(store: &UserStore<SimDisk>, mailbox: &str) -> Vec<u32> {
    let id = store.mailbox_id(mailbox).unwrap();
    store.messages(id).unwrap().iter().map(|m| m.uid.get()).collect()
}

#[test]
fn ipurge_by_days_expunges_the_old_messages_of_every_mailbox() {
    let disk = SimDisk::new();
    let mut store = store_with_ages(&disk);
    let before = store.quota_usage();
    let report = store.ipurge("alice", &criteria(Some(30), None)).unwrap();
    assert_eq!(report.messages, 3);
    assert_eq!(report.bytes, 11_000);
    let by_name: Vec<(&str, &[u32])> =
        report.mailboxes.iter().map(|m| (m.mailbox.as_str(), &m.uids[..])).collect();
    assert_eq!(by_name, [("Archive", &[1][..]), ("INBOX", &[1, 2][..])]);
    assert_eq!(live_uids(&store, "INBOX"), [3, 4]);
    assert_eq!(live_uids(&store, "Archive"), [2]);
    let after = store.quota_usage();
    assert_eq!(after.messages, before.messages - 3);
    assert_eq!(after.storage_bytes, before.storage_bytes - 11_000);
    assert!(store.quota_report("alice").unwrap().counters_exact());
    // Purged like an IMAP EXPUNGE: retained, restorable, with the expunge's time.
    let inbox = store.mailbox_id("INBOX").unwrap();
    let retained = store.expunged_retained(inbox).unwrap();
    assert_eq!(retained.iter().map(|m| m.uid.get()).collect::<Vec<_>>(), [1, 2]);
    assert!(retained.iter().all(|m| m.expunged_at.is_some()));
    // The boundary: exactly 10 days old is not "more than 10 days".
    let report = store.ipurge("alice", &criteria(Some(10), None)).unwrap();
    assert_eq!(report.messages, 0, "{report:?}");
    flush(&disk);
    drop(store);
    let mut store = open(&disk.crash(0, CrashMode::DropPending));
    assert_eq!(live_uids(&store, "INBOX"), [3, 4], "durable after a flush round");
    assert!(check(&mut store, "alice").unwrap().is_clean());
}

#[test]
fn both_conditions_narrow_and_a_mailbox_limits_the_purge() {
    let disk = SimDisk::new();
    let mut store = store_with_ages(&disk);
    let mut both = criteria(Some(30), Some(4000));
    both.mailbox = Some("inbox".to_owned());
    let report = store.ipurge("alice", &both).unwrap();
    assert_eq!(report.mailboxes.len(), 1);
    assert_eq!(report.mailboxes[0].mailbox, "INBOX");
    assert_eq!(report.mailboxes[0].uids, [2], "old and large: only UID 2");
    assert_eq!(live_uids(&store, "Archive"), [1, 2], "another mailbox is not touched");
    let size_only = store.ipurge("alice", &criteria(None, Some(4999))).unwrap();
    assert_eq!(size_only.messages, 3, "{size_only:?}");
    assert_eq!(live_uids(&store, "INBOX"), [1, 3]);
    let mut nowhere = criteria(Some(1), None);
    nowhere.mailbox = Some("Nowhere".to_owned());
    let error = store.ipurge("alice", &nowhere).unwrap_err();
    assert!(matches!(error, AdminError::NoSuchMailbox { .. }), "{error}");
    assert_eq!(live_uids(&store, "INBOX"), [1, 3], "nothing changed");
}

#[test]
fn a_dry_run_reports_the_same_and_changes_nothing() {
    let disk = SimDisk::new();
    let mut store = store_with_ages(&disk);
    let examined = store.examine("alice", "INBOX").unwrap();
    let mut dry = criteria(Some(5), Some(2000));
    dry.dry_run = true;
    let report = store.ipurge("alice", &dry).unwrap();
    assert!(report.dry_run);
    assert_eq!(report.messages, 2);
    assert_eq!(store.examine("alice", "INBOX").unwrap(), examined, "no record changed");
    assert!(disk.flush_begin().is_none(), "nothing written");
    dry.dry_run = false;
    let done = store.ipurge("alice", &dry).unwrap();
    assert_eq!((done.messages, done.bytes), (report.messages, report.bytes));
    assert_eq!(done.mailboxes, report.mailboxes);
}

#[test]
fn a_large_purge_expunges_in_batches() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let count = PURGE_BATCH_UIDS + 5;
    let old = Some(InternalDate { unix_seconds: NOW - 10 * DAY, zone_minutes: 0 });
    for n in 0..count {
        store.append(inbox, &body(n as u32, 100), b"", Flags::default(), old).unwrap();
    }
    let modseq = store.mailbox_marks(inbox).unwrap().highest_modseq.0;
    let report = store.ipurge("alice", &criteria(Some(1), None)).unwrap();
    assert_eq!(report.messages, count as u64);
    assert_eq!(store.mailbox_marks(inbox).unwrap().highest_modseq.0, modseq + 2, "two calls");
    assert_eq!(store.mailbox_info(inbox).unwrap().messages, 0);
    assert!(store.quota_report("alice").unwrap().counters_exact());
}

#[test]
fn a_crash_anywhere_in_a_purge_loses_no_message_it_did_not_select() {
    let disk = SimDisk::new();
    drop(store_with_ages(&disk));
    let keep_inbox = [3, 4];
    let mut cases = 0;
    for mode in CrashMode::ALL {
        for seed in 0..6 {
            let fork = disk.crash(0, CrashMode::DropPending);
            let mut store = open(&fork);
            store.ipurge("alice", &criteria(Some(30), None)).unwrap();
            drop(store);
            let mut store = open(&fork.crash(seed, mode));
            let context = format!("{mode:?} seed {seed}");
            let live = live_uids(&store, "INBOX");
            assert!(keep_inbox.iter().all(|uid| live.contains(uid)), "{context}: {live:?}");
            assert!(live_uids(&store, "Archive").contains(&2), "{context}");
            assert!(check(&mut store, "alice").unwrap().is_clean(), "{context}");
            #[cfg(debug_assertions)]
            store.check_invariants();
            cases += 1;
        }
    }
    assert_eq!(cases, CrashMode::ALL.len() * 6);
}

#[test]
fn unexpunge_lists_and_restores_the_same_bytes_under_new_uids() {
    let disk = SimDisk::new();
    let mut store = store_with_ages(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let original = store.body(inbox, Uid::new(2).unwrap()).unwrap().to_vec();
    let deleted = Flags { system: SystemFlags(SystemFlags::DELETED), keywords: Keywords(0) };
    let two = [Uid::new(1).unwrap(), Uid::new(2).unwrap()];
    store.store_flags(inbox, &two, crate::types::FlagsOp::Add, deleted, None).unwrap();
    store.expunge(inbox, &two).unwrap();
    let policy = CompactionPolicy {
        retention_seconds: 7 * 86_400,
        free_bytes_min: 1,
        now_unix_seconds: NOW,
    };
    let listed = store.expunged_report("alice", "inbox", &policy).unwrap();
    assert_eq!(listed.mailbox, "INBOX");
    assert_eq!(listed.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2]);
    let second = &listed.messages[1];
    assert_eq!((second.size, second.internal_date), (5000, NOW - 40 * DAY));
    let at = second.expunged_at.expect("the expunge's time");
    assert_eq!(second.retained_until, Some(at + 7 * 86_400));
    assert_eq!(second.subject.as_deref(), Some("message number 1"));
    assert_eq!(second.restored_as, None);

    let quota = store.quota_usage();
    let error = store.restore_expunged("alice", "INBOX", Some(&[2, 3, 9])).unwrap_err();
    assert!(matches!(&error, AdminError::NotRestorable { uids, .. } if uids == &[3, 9]), "{error}");
    assert_eq!(
        error.to_string(),
        "user alice's mailbox \"INBOX\" has no restorable expunged message with UID 3, 9"
    );
    assert_eq!(live_uids(&store, "INBOX"), [3, 4], "nothing restored");

    let report = store.restore_expunged("alice", "INBOX", Some(&[2])).unwrap();
    assert_eq!(report.restored, [Restored { old_uid: 2, new_uid: 5, size: 5000 }]);
    assert_eq!(report.bytes, 5000);
    let new = Uid::new(5).unwrap();
    assert_eq!(store.body(inbox, new).unwrap().to_vec(), original);
    let flags = store.message(inbox, new).unwrap().unwrap().flags;
    assert_eq!(flags.system, SystemFlags(SystemFlags::SEEN), "\\Deleted removed, \\Seen kept");
    assert_eq!(store.quota_usage().storage_bytes, quota.storage_bytes + 5000);
    assert!(store.quota_report("alice").unwrap().counters_exact());

    // Restored once: listed with its copy, and not restored again.
    let listed = store.expunged_report("alice", "INBOX", &policy).unwrap();
    assert_eq!(listed.messages[1].restored_as, Some(5));
    let again = store.restore_expunged("alice", "INBOX", Some(&[2])).unwrap_err();
    assert!(matches!(again, AdminError::NotRestorable { .. }), "{again}");
    let rest = store.restore_expunged("alice", "INBOX", None).unwrap();
    assert_eq!(rest.restored, [Restored { old_uid: 1, new_uid: 6, size: 1000 }]);
    assert!(store.restore_expunged("alice", "INBOX", None).unwrap().restored.is_empty());
    let missing = store.restore_expunged("alice", "Nowhere", None).unwrap_err();
    assert!(matches!(missing, AdminError::NoSuchMailbox { .. }));

    flush(&disk);
    drop(store);
    let mut store = open(&disk.crash(0, CrashMode::DropPending));
    assert_eq!(live_uids(&store, "INBOX"), [3, 4, 5, 6]);
    assert_eq!(store.body(inbox, new).unwrap().to_vec(), original);
    assert!(check(&mut store, "alice").unwrap().is_clean());
}

#[test]
fn the_subject_is_read_from_the_header_only() {
    assert_eq!(
        subject_of(b"From: a\r\nSUBJECT: hi\r\n there\r\n\r\nbody").as_deref(),
        Some("hi there")
    );
    assert_eq!(subject_of(b"From: a\r\n\r\nSubject: in the body"), None);
    assert_eq!(subject_of(b""), None);
    let long = format!("Subject: {}\r\n\r\n", "y".repeat(1000));
    assert_eq!(subject_of(long.as_bytes()).unwrap().len(), SUBJECT_CHARS_MAX);
}
