//! MULTIAPPEND's all-or-none in the store (`UserStore::append_all`, RFC 3502): a batch whose
//! third message hits ENOSPC must leave none of its messages, neither to the sessions that
//! read the store afterwards nor to recovery after a restart (the spool records of the first
//! two would otherwise be brought back by recovery's catch-up). Without the take-back, a
//! plain loop of `append` calls leaves the first two in the mailbox.
//!
//! Invariant: a refused batch leaves the mailbox as it was (UIDNEXT may have moved past the
//! UIDs it took); an accepted one is whole, with consecutive UIDs, and survives a restart.
#![cfg(feature = "sim")]

mod store_support;

use std::io::ErrorKind;
use std::path::Path;
use std::rc::Rc;
use store_support::{flush, settle};

use skua_core::disk::sim::{CrashMode, FailOp, SimDisk};
use skua_core::error::AppendError;
use skua_core::store::{NewMessage, ThreadKeys, UserStore};
use skua_core::types::{Flags, MailboxId};

const USER: &str = "users/aa/alice";

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER)).expect("the store opens")
}

fn bodies(store: &UserStore<SimDisk>, id: MailboxId) -> Vec<Vec<u8>> {
    let metas = store.messages(id).unwrap();
    metas.iter().map(|m| store.body(id, m.uid).unwrap().to_vec()).collect()
}

fn batch<'a>(messages: &'a [&'a [u8]]) -> Vec<NewMessage<'a>> {
    messages
        .iter()
        .map(|message| NewMessage {
            message,
            cache: b"cache",
            flags: Flags::default(),
            date: None,
            thread: ThreadKeys::NONE,
        })
        .collect()
}

const KEPT: &[u8] = b"Subject: kept\r\n\r\nA\r\n";
const BATCH: [&[u8]; 3] =
    [b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n", b"Subject: three\r\n\r\n3\r\n"];

#[test]
fn a_batch_refused_at_its_third_message_leaves_nothing_even_after_a_restart() {
    for (op, suffix) in [(FailOp::Write, ".seg"), (FailOp::Write, ".idx")] {
        let disk = SimDisk::new();
        let mut store = open(&disk);
        let inbox = store.mailbox_id("INBOX").unwrap();
        store.append(inbox, KEPT, b"cache", Flags::default(), None).unwrap();
        settle(&mut store, &disk);
        // Two writes of this kind succeed (messages one and two), the third fails.
        disk.fail_after(op, suffix, ErrorKind::StorageFull, 2, 1);
        let refused = store.append_all(inbox, &batch(&BATCH)).unwrap_err();
        assert!(matches!(&refused, AppendError::Storage(e) if e.is_disk_full()), "{refused:?}");
        assert_eq!(disk.failures_injected(), 1);
        assert_eq!(bodies(&store, inbox), vec![KEPT.to_vec()], "{suffix}: seen by sessions");
        drop(store);
        flush(&disk);
        let disk = disk.crash(0, CrashMode::DropPending);
        let store = open(&disk);
        assert_eq!(
            bodies(&store, inbox),
            vec![KEPT.to_vec()],
            "{suffix}: the refused batch came back: {:?}",
            store.recovery()
        );
    }
}

#[test]
fn an_accepted_batch_is_whole_with_consecutive_uids_and_survives_a_restart() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let appended = store.append_all(inbox, &batch(&BATCH)).unwrap();
    let uids: Vec<u32> = appended.iter().map(|(uid, _)| uid.get()).collect();
    assert_eq!(uids, [1, 2, 3]);
    let modseqs: Vec<u64> = appended.iter().map(|(_, modseq)| modseq.0).collect();
    assert!(modseqs.windows(2).all(|w| w[0] < w[1]), "{modseqs:?}");
    drop(store);
    flush(&disk);
    let disk = disk.crash(0, CrashMode::DropPending);
    let store = open(&disk);
    let expected: Vec<Vec<u8>> = BATCH.iter().map(|b| b.to_vec()).collect();
    assert_eq!(bodies(&store, inbox), expected);
}

#[test]
fn a_batch_that_cannot_fit_is_refused_before_any_write() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let too_big = vec![b'x'; skua_core::limits::MESSAGE_BYTES_MAX as usize + 1];
    let messages: [&[u8]; 2] = [KEPT, &too_big];
    let refused = store.append_all(inbox, &batch(&messages)).unwrap_err();
    assert!(matches!(refused, AppendError::TooLarge { .. }), "{refused:?}");
    assert!(bodies(&store, inbox).is_empty());
    assert_eq!(store.mailbox_info(inbox).unwrap().uid_next.get(), 1, "no UID was taken");
}
