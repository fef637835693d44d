//! Quota in the store (RFC 9208; `core/src/store/quota.rs`): every path that adds messages or
//! mailboxes is refused before it writes when a limit has no room (APPEND, MULTIAPPEND all or
//! none, COPY, CREATE), expunge and delete free quota at once, reservations count against
//! every other check, SETQUOTA'd limits (`quota.limits`) win over the shard's and survive a
//! restart, and a crash in the middle of writing them keeps either the old or the new set,
//! never a mix and never an error.
#![cfg(feature = "sim")]

use std::path::Path;
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, SimDisk};
use skua_core::disk::{Disk, Flush};
use skua_core::error::{AppendError, CopyError, MailboxError, QuotaResource};
use skua_core::store::{NewMessage, QuotaLimits, QuotaSource, QuotaUsage, ThreadKeys, UserStore};
use skua_core::types::{Flags, MailboxId, Uid};

const USER: &str = "users/aa/alice";

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER)).expect("the store opens")
}

fn flush(disk: &SimDisk) {
    if let Some(job) = disk.flush_begin() {
        let epoch = job.epoch();
        job.run().expect("the flush runs");
        disk.flush_end(epoch);
    }
}

fn append(store: &mut UserStore<SimDisk>, id: MailboxId, size: usize) -> Result<Uid, AppendError> {
    let message = vec![b'x'; size];
    store.append(id, &message, b"c", Flags::default(), None).map(|(uid, _)| uid)
}

fn limits(storage_kib: Option<u64>, messages: Option<u64>, mailboxes: Option<u64>) -> QuotaLimits {
    QuotaLimits { storage_kib, messages, mailboxes }
}

fn over_append(result: Result<impl std::fmt::Debug, AppendError>) -> QuotaResource {
    match result {
        Err(AppendError::OverQuota(over)) => over.resource,
        other => panic!("expected over quota, got {other:?}"),
    }
}

#[test]
fn append_is_refused_past_the_storage_limit_and_expunge_frees_it() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.set_default_quota(limits(Some(2), None, None));
    let first = append(&mut store, inbox, 1500).unwrap();
    append(&mut store, inbox, 548).unwrap(); // exactly 2048 bytes: the limit may be reached
    assert_eq!(store.quota_usage().storage_kib(), 2);
    let spool_before = store.quota_usage();
    assert_eq!(over_append(append(&mut store, inbox, 1)), QuotaResource::Storage);
    assert_eq!(store.quota_usage(), spool_before, "nothing was stored");
    assert_eq!(store.messages(inbox).unwrap().len(), 2);
    store.expunge(inbox, &[first]).unwrap();
    assert_eq!(store.quota_usage().storage_bytes, 548, "expunge frees at once");
    append(&mut store, inbox, 1500).unwrap();
    store.check_invariants();
}

#[test]
fn message_limit_refuses_a_whole_multiappend() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.set_default_quota(limits(None, Some(3), None));
    append(&mut store, inbox, 10).unwrap();
    let new = |message: &'static [u8]| NewMessage {
        message,
        cache: b"",
        flags: Flags::default(),
        date: None,
        thread: ThreadKeys::NONE,
    };
    let batch = [new(b"a\r\n"), new(b"b\r\n"), new(b"c\r\n")];
    assert_eq!(over_append(store.append_all(inbox, &batch)), QuotaResource::Message);
    assert_eq!(store.messages(inbox).unwrap().len(), 1, "none of the batch");
    store.append_all(inbox, &batch[..2]).unwrap();
    assert_eq!(store.quota_usage().messages, 3);
    store.check_invariants();
}

#[test]
fn copy_is_refused_whole_and_delete_frees() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let other = store.create_mailbox("Other").unwrap();
    let uids: Vec<Uid> = (0..3).map(|_| append(&mut store, inbox, 600).unwrap()).collect();
    store.set_default_quota(limits(Some(3), None, None));
    match store.copy(inbox, &uids, other) {
        Err(CopyError::OverQuota(over)) => assert_eq!(over.resource, QuotaResource::Storage),
        other => panic!("expected over quota, got {other:?}"),
    }
    assert!(store.messages(other).unwrap().is_empty(), "no copy was made");
    // Unsorted and repeated UIDs count each message once.
    store.copy(inbox, &[uids[1], uids[1]], other).unwrap();
    assert_eq!(store.quota_usage().storage_bytes, 2400);
    store.delete_mailbox("Other").unwrap();
    assert_eq!(store.quota_usage(), QuotaUsage { storage_bytes: 1800, messages: 3, mailboxes: 1 });
    store.check_invariants();
}

#[test]
fn create_counts_the_superiors_it_makes() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    store.set_default_quota(limits(None, None, Some(3)));
    match store.create_mailbox("a/b/c") {
        Err(MailboxError::OverQuota(over)) => assert_eq!(over.resource, QuotaResource::Mailbox),
        other => panic!("expected over quota, got {other:?}"),
    }
    assert_eq!(store.mailboxes().len(), 1, "nothing created");
    store.create_mailbox("a/b").unwrap();
    assert_eq!(store.quota_usage().mailboxes, 3);
    assert!(matches!(store.create_mailbox("c"), Err(MailboxError::OverQuota(_))));
    store.delete_mailbox("a/b").unwrap();
    store.create_mailbox("c").unwrap();
}

#[test]
fn reservations_count_against_every_other_check() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.set_default_quota(limits(Some(4), Some(3), None));
    let first = store.reserve(2048).unwrap();
    let second = store.reserve(1024).unwrap();
    assert_eq!(store.quota_reserved(), (3072, 2));
    // 1024 bytes are left: a third reservation of more is refused, so is an append.
    assert!(matches!(store.reserve(1025), Err(AppendError::OverQuota(_))));
    assert_eq!(over_append(append(&mut store, inbox, 1025)), QuotaResource::Storage);
    // The message count is reserved too.
    append(&mut store, inbox, 10).unwrap();
    assert_eq!(over_append(append(&mut store, inbox, 10)), QuotaResource::Message);
    // Consuming a reservation stores its message in its own room.
    let message = vec![b'y'; 2000];
    store
        .append_reserved(first, inbox, &message, b"", ThreadKeys::NONE, Flags::default(), None)
        .unwrap();
    assert_eq!(store.quota_reserved(), (1024, 1));
    assert!(store.release(second));
    assert_eq!(store.quota_reserved(), (0, 0));
    append(&mut store, inbox, 10).unwrap();
    assert_eq!(over_append(append(&mut store, inbox, 10)), QuotaResource::Message);
    store.check_invariants();
}

#[test]
fn a_message_larger_than_its_reservation_is_checked_again() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.set_default_quota(limits(Some(1), None, None));
    let reservation = store.reserve(100).unwrap();
    let message = vec![b'z'; 1025];
    let result = store.append_reserved(
        reservation,
        inbox,
        &message,
        b"",
        ThreadKeys::NONE,
        Flags::default(),
        None,
    );
    assert_eq!(over_append(result), QuotaResource::Storage);
    assert_eq!(store.quota_reserved(), (0, 0), "consumed even when refused");
}

#[test]
fn stored_limits_win_and_survive_a_restart() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    store.set_default_quota(limits(Some(10), None, None));
    assert_eq!(store.quota_limits().unwrap(), (limits(Some(10), None, None), QuotaSource::Given));
    store.set_quota(limits(None, Some(5), None)).unwrap();
    assert_eq!(store.quota_limits().unwrap(), (limits(None, Some(5), None), QuotaSource::Stored));
    store.set_quota(limits(Some(1), Some(2), Some(3))).unwrap();
    flush(&disk);
    drop(store);
    let mut store = open(&disk.crash(0, CrashMode::DropPending));
    store.set_default_quota(limits(Some(10), None, None));
    let expected = (limits(Some(1), Some(2), Some(3)), QuotaSource::Stored);
    assert_eq!(store.quota_limits().unwrap(), expected);
    store.clear_quota().unwrap();
    assert_eq!(store.quota_limits().unwrap().1, QuotaSource::Given);
}

#[test]
fn a_crash_while_setting_limits_keeps_the_old_or_the_new_set() {
    let old = limits(Some(1), None, None);
    let new = limits(Some(2), Some(2), None);
    for mode in [CrashMode::Prefix, CrashMode::Subset, CrashMode::TornSubset] {
        for seed in 0..64 {
            let disk = SimDisk::new();
            let mut store = open(&disk);
            store.set_quota(old).unwrap();
            flush(&disk);
            store.set_quota(new).unwrap();
            let crashed = disk.crash(seed, mode);
            let mut store = open(&crashed);
            let (found, source) = store.quota_limits().unwrap();
            assert_eq!(source, QuotaSource::Stored, "seed {seed} {mode:?}");
            assert!(found == old || found == new, "seed {seed} {mode:?}: {found:?}");
            // And the next write after the crash lands.
            store.set_quota(new).unwrap();
            assert_eq!(store.quota_limits().unwrap().0, new);
        }
    }
}

#[test]
fn rename_inbox_near_the_limit_is_not_refused() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    append(&mut store, inbox, 1000).unwrap();
    store.set_default_quota(limits(Some(1), Some(1), Some(2)));
    let skua_core::store::Renamed::Inbox(mut job) = store.rename_mailbox("INBOX", "Old").unwrap()
    else {
        panic!("RENAME INBOX gives a job");
    };
    loop {
        match store.rename_inbox_step(&mut job, 10).unwrap() {
            skua_core::store::InboxStep::More => {}
            skua_core::store::InboxStep::WaitDurable(_) => flush(&disk),
            skua_core::store::InboxStep::Done => break,
        }
    }
    assert_eq!(store.quota_usage(), QuotaUsage { storage_bytes: 1000, messages: 1, mailboxes: 2 });
    store.check_invariants();
}
