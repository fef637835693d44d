//! Regression tests for issue 7, defect 5: "A delivery refused with 452 comes back after a
//! restart". The spool write of an append succeeded, the index write hit ENOSPC, the append
//! was refused, and the spool record stayed: recovery's catch-up on the next open added the
//! message back (the MTA retried, and the user got it twice). COPY and EXPUNGE leave records
//! behind the same way.
//!
//! Invariant: an operation the store refused leaves nothing in the spool that a later
//! recovery could take for data; the store stays usable afterwards.
#![cfg(feature = "sim")]

mod store_support;

use std::io::ErrorKind;
use std::path::Path;
use std::rc::Rc;
use store_support::{flush, settle};

use skua_core::disk::sim::{CrashMode, FailOp, SimDisk};
use skua_core::error::{AppendError, CopyError, StorageError, UpdateError};
use skua_core::store::UserStore;
use skua_core::types::{Flags, MailboxId, Uid};

const USER: &str = "users/aa/alice";

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER)).expect("the store opens")
}

/// A clean restart: everything flushed survives, nothing else.
fn restart(disk: &SimDisk) -> (SimDisk, UserStore<SimDisk>) {
    flush(disk);
    let disk = disk.crash(0, CrashMode::DropPending);
    let store = open(&disk);
    (disk, store)
}

fn append(store: &mut UserStore<SimDisk>, id: MailboxId, body: &[u8]) -> Result<Uid, AppendError> {
    store.append(id, body, b"cache", Flags::default(), None).map(|(uid, _)| uid)
}

fn bodies(store: &UserStore<SimDisk>, id: MailboxId) -> Vec<Vec<u8>> {
    let metas = store.messages(id).unwrap();
    metas.iter().map(|m| store.body(id, m.uid).unwrap().to_vec()).collect()
}

fn disk_full(error: &StorageError) -> bool {
    error.is_disk_full()
}

#[test]
fn an_append_refused_at_the_index_write_does_not_come_back_after_a_restart() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    append(&mut store, inbox, b"Subject: kept\r\n\r\nA\r\n").unwrap();
    settle(&mut store, &disk);
    disk.fail_next(FailOp::Write, ".idx", ErrorKind::StorageFull, 1);
    let refused = append(&mut store, inbox, b"Subject: refused\r\n\r\nB\r\n").unwrap_err();
    assert!(matches!(&refused, AppendError::Storage(e) if disk_full(e)), "{refused:?}");
    assert_eq!(disk.failures_injected(), 1);
    assert_eq!(bodies(&store, inbox), vec![b"Subject: kept\r\n\r\nA\r\n".to_vec()]);
    drop(store);
    let (_disk, store) = restart(&disk);
    assert_eq!(
        bodies(&store, inbox),
        vec![b"Subject: kept\r\n\r\nA\r\n".to_vec()],
        "the refused message came back: {:?}",
        store.recovery()
    );
    assert_eq!(store.recovery().index_records_added, 0, "{:?}", store.recovery());
}

#[test]
fn a_refused_append_followed_by_a_new_segment_stays_gone() {
    // Before the fix the next append overwrote the refused record when it went to the same
    // segment; a record that starts a new segment left it whole at the old segment's end.
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let first = append(&mut store, inbox, b"Subject: kept\r\n\r\nA\r\n").unwrap();
    settle(&mut store, &disk);
    disk.fail_next(FailOp::Write, ".idx", ErrorKind::StorageFull, 1);
    append(&mut store, inbox, b"Subject: refused\r\n\r\nB\r\n").unwrap_err();
    let big = vec![b'x'; usize::try_from(skua_core::limits::SEGMENT_BYTES_TARGET).unwrap() - 100];
    let uid = append(&mut store, inbox, &big).unwrap();
    drop(store);
    let (_disk, store) = restart(&disk);
    let uids: Vec<Uid> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    assert_eq!(uids, vec![first, uid], "{:?}", store.recovery());
    // The refused record had taken the same UID: before the fix it came back in place of the
    // acknowledged one.
    assert_eq!(store.body(inbox, uid).unwrap().len(), big.len(), "{:?}", store.recovery());
}

#[test]
fn the_store_takes_appends_again_once_the_disk_has_room() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    settle(&mut store, &disk);
    disk.fail_next(FailOp::Write, ".seg", ErrorKind::StorageFull, 1);
    append(&mut store, inbox, b"Subject: refused\r\n\r\nspool full\r\n").unwrap_err();
    disk.fail_next(FailOp::Write, ".idx", ErrorKind::Other, 1);
    append(&mut store, inbox, b"Subject: refused\r\n\r\nindex EIO\r\n").unwrap_err();
    append(&mut store, inbox, b"Subject: one\r\n\r\n1\r\n").unwrap();
    append(&mut store, inbox, b"Subject: two\r\n\r\n2\r\n").unwrap();
    #[cfg(debug_assertions)]
    store.check_invariants();
    drop(store);
    let (_disk, store) = restart(&disk);
    assert_eq!(
        bodies(&store, inbox),
        vec![b"Subject: one\r\n\r\n1\r\n".to_vec(), b"Subject: two\r\n\r\n2\r\n".to_vec()]
    );
}

#[test]
fn a_failed_copy_leaves_the_target_as_before_across_a_restart() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let target = store.create_mailbox("Archive").unwrap();
    let uids: Vec<Uid> = (0..3)
        .map(|n| append(&mut store, inbox, format!("Subject: {n}\r\n\r\n{n}\r\n").as_bytes()))
        .collect::<Result<_, _>>()
        .unwrap();
    flush(&disk);
    // Seal the new mailbox's header now (housekeeping of the next mutation), so that the
    // copy's first write to the target index is its first record.
    settle(&mut store, &disk);
    // The first copy goes through; the second one's index write fails, and the disk is full
    // for any further spool write (an undo that needs to write cannot be made).
    disk.fail_after(FailOp::Write, "00000001.idx", ErrorKind::StorageFull, 1, 1);
    disk.fail_after(FailOp::Write, ".seg", ErrorKind::StorageFull, 2, 100);
    let refused = store.copy(inbox, &uids, target).unwrap_err();
    assert!(matches!(&refused, CopyError::Storage(e) if disk_full(e)), "{refused:?}");
    assert!(store.messages(target).unwrap().is_empty(), "the target looks as before");
    drop(store);
    let (_disk, store) = restart(&disk);
    assert!(
        store.messages(target).unwrap().is_empty(),
        "copies of a refused COPY came back: {:?}",
        store.recovery()
    );
    assert_eq!(store.messages(inbox).unwrap().len(), 3);
}

#[test]
fn a_refused_expunge_leaves_no_tombstone_behind() {
    // More UIDs than one tombstone holds: the first tombstone is written, the second fails.
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let count = skua_core::limits::TOMBSTONE_UIDS_MAX + 1;
    let uids: Vec<Uid> =
        (0..count).map(|n| append(&mut store, inbox, format!("{n}").as_bytes()).unwrap()).collect();
    settle(&mut store, &disk);
    disk.fail_after(FailOp::Write, ".seg", ErrorKind::StorageFull, 1, 1);
    let refused = store.expunge(inbox, &uids).unwrap_err();
    assert!(matches!(&refused, UpdateError::Storage(e) if disk_full(e)), "{refused:?}");
    assert_eq!(store.messages(inbox).unwrap().len(), uids.len(), "nothing expunged");
    drop(store);
    let (_disk, store) = restart(&disk);
    assert_eq!(
        store.messages(inbox).unwrap().len(),
        uids.len(),
        "a refused EXPUNGE took effect after a restart: {:?}",
        store.recovery()
    );
}

#[test]
fn a_cut_the_disk_refuses_blocks_writes_until_it_is_made() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    append(&mut store, inbox, b"Subject: kept\r\n\r\nA\r\n").unwrap();
    settle(&mut store, &disk);
    // The index write fails, then the cut (a set_len of the segment) fails, and so does the
    // first retry.
    disk.fail_next(FailOp::Write, ".idx", ErrorKind::Other, 1);
    disk.fail_next(FailOp::SetLen, ".seg", ErrorKind::Other, 2);
    let mut refusals = 0;
    for body in [&b"Subject: refused\r\n\r\nB\r\n"[..], b"Subject: refused\r\n\r\nC\r\n"] {
        if append(&mut store, inbox, body).is_err() {
            refusals += 1;
        }
    }
    assert_eq!(refusals, 2, "no append is taken while the failed one's record may remain");
    let uid = append(&mut store, inbox, b"Subject: later\r\n\r\nD\r\n").unwrap();
    drop(store);
    let (_disk, store) = restart(&disk);
    let subjects: Vec<Vec<u8>> = bodies(&store, inbox);
    assert_eq!(
        subjects,
        vec![b"Subject: kept\r\n\r\nA\r\n".to_vec(), b"Subject: later\r\n\r\nD\r\n".to_vec()]
    );
    assert!(store.message(inbox, uid).unwrap().is_some());
}

#[test]
fn a_refused_append_that_started_a_segment_leaves_it_empty() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    append(&mut store, inbox, b"Subject: kept\r\n\r\nA\r\n").unwrap();
    settle(&mut store, &disk);
    // Too big for the first segment: the append starts segment 2, writes its record there,
    // and then its index write fails.
    let big = vec![b'z'; usize::try_from(skua_core::limits::SEGMENT_BYTES_TARGET).unwrap() - 100];
    disk.fail_next(FailOp::Write, ".idx", ErrorKind::StorageFull, 1);
    append(&mut store, inbox, &big).unwrap_err();
    drop(store);
    let (disk, mut store) = restart(&disk);
    assert_eq!(bodies(&store, inbox), vec![b"Subject: kept\r\n\r\nA\r\n".to_vec()]);
    // The store goes on in the emptied segment.
    append(&mut store, inbox, b"Subject: next\r\n\r\nC\r\n").unwrap();
    drop(store);
    let (_disk, store) = restart(&disk);
    assert_eq!(bodies(&store, inbox).len(), 2, "{:?}", store.recovery());
}
