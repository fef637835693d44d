//! THREADID (issue 9, OBJECTID's "data" row; RFC 8474 §5.2): a message joins the thread of the
//! first Message-ID it names that the store knows (its own, its References, its In-Reply-To),
//! across mailboxes; COPY keeps it; it never changes, across restarts, crashes and a lost
//! `threads.log`; and the Message-ID map always equals what a replay of the spool gives.
#![cfg(feature = "sim")]

mod store_support;

use std::io::ErrorKind;
use std::path::Path;
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, Damage, FailOp, SimDisk};
use skua_core::disk::{Disk, DiskFile};
use skua_core::store::{NewMessage, ThreadKeys, UserStore};
use skua_core::types::{Flags, MailboxId, Uid};
use store_support::{flush, settle};

const USER: &str = "users/aa/alice";

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER)).expect("the store opens")
}

/// Appends a message with these ids (empty: none) and returns its UID.
fn put(
    store: &mut UserStore<SimDisk>,
    id: MailboxId,
    message_id: &str,
    in_reply_to: &str,
    references: &[&str],
) -> Uid {
    let references: Vec<String> = references.iter().map(|r| (*r).to_string()).collect();
    let keys = ThreadKeys { message_id, in_reply_to, references: &references };
    let body = format!("Message-ID: <{message_id}>\r\n\r\nbody\r\n");
    let (uid, _) = store
        .append_threaded(id, body.as_bytes(), b"cache", keys, Flags::default(), None)
        .expect("append");
    uid
}

fn thread(store: &UserStore<SimDisk>, id: MailboxId, uid: Uid) -> u64 {
    store.thread_id(id, uid).expect("thread id")
}

fn agrees(store: &UserStore<SimDisk>) {
    assert_eq!(store.thread_map(), store.thread_map_from_spool().unwrap(), "map == spool replay");
}

#[test]
fn replies_join_their_thread_across_mailboxes_and_copies_keep_it() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let sent = store.create_mailbox("Sent").unwrap();
    let root = put(&mut store, inbox, "root@x", "", &[]);
    let root_thread = thread(&store, inbox, root);
    assert_eq!(root_thread, store.email_id(inbox, root).unwrap(), "a new thread is its root's id");
    let reply = put(&mut store, sent, "reply@y", "root@x", &["root@x"]);
    let deeper = put(&mut store, inbox, "deeper@x", "reply@y", &[]);
    let by_references = put(&mut store, inbox, "refs@z", "", &["root@x", "reply@y"]);
    let other = put(&mut store, inbox, "other@x", "", &[]);
    let no_ids = put(&mut store, inbox, "", "", &[]);
    assert_eq!(thread(&store, sent, reply), root_thread);
    assert_eq!(thread(&store, inbox, deeper), root_thread, "In-Reply-To alone links");
    assert_eq!(thread(&store, inbox, by_references), root_thread);
    assert_ne!(thread(&store, inbox, other), root_thread);
    assert_eq!(thread(&store, inbox, no_ids), store.email_id(inbox, no_ids).unwrap());
    // The same Message-ID again (a Sent copy, a list copy) joins the first one's thread.
    let again = put(&mut store, inbox, "other@x", "", &[]);
    assert_eq!(thread(&store, inbox, again), thread(&store, inbox, other));
    // A message naming two threads joins the first it names; earlier messages stay put.
    let both = put(&mut store, inbox, "both@q", "", &["other@x", "root@x"]);
    assert_eq!(thread(&store, inbox, both), thread(&store, inbox, other));
    assert_eq!(thread(&store, sent, reply), root_thread);
    // COPY (and so MOVE) keeps the thread, and a copy of a copy too.
    let archive = store.create_mailbox("Archive").unwrap();
    let copied = store.copy(sent, &[reply], archive).unwrap();
    assert_eq!(thread(&store, archive, copied[0].1), root_thread);
    agrees(&store);
}

#[test]
fn replies_that_arrive_before_their_parent_share_its_thread() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let first = put(&mut store, inbox, "c1@x", "parent@x", &["parent@x"]);
    let second = put(&mut store, inbox, "c2@x", "parent@x", &["parent@x"]);
    let parent = put(&mut store, inbox, "parent@x", "", &[]);
    let t = thread(&store, inbox, first);
    assert_eq!(thread(&store, inbox, second), t, "siblings of a parent never seen");
    assert_eq!(thread(&store, inbox, parent), t, "the parent, arriving last");
    agrees(&store);
}

#[test]
fn a_batch_gets_threads_in_order_and_a_refused_one_teaches_nothing() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    settle(&mut store, &disk);
    let refs = vec!["a@x".to_string()];
    let batch = [
        NewMessage {
            message: b"A",
            cache: b"",
            flags: Flags::default(),
            date: None,
            thread: ThreadKeys { message_id: "a@x", ..ThreadKeys::NONE },
        },
        NewMessage {
            message: b"B",
            cache: b"",
            flags: Flags::default(),
            date: None,
            thread: ThreadKeys { message_id: "b@x", references: &refs, ..ThreadKeys::NONE },
        },
    ];
    // The second record's index write fails: the whole batch is refused and forgotten.
    disk.fail_after(FailOp::Write, ".idx", ErrorKind::StorageFull, 1, 1);
    store.append_all(inbox, &batch).unwrap_err();
    assert!(store.thread_map().is_empty(), "a refused batch leaves no Message-ID behind");
    flush(&disk);
    let done = store.append_all(inbox, &batch).unwrap();
    let (a, b) = (done[0].0, done[1].0);
    assert_eq!(thread(&store, inbox, b), thread(&store, inbox, a));
    assert_eq!(thread(&store, inbox, a), store.email_id(inbox, a).unwrap());
    // A message naming `b@x` after the refused attempt joins the stored one's thread, not a
    // thread of a record that was cut away.
    let c = put(&mut store, inbox, "c@x", "b@x", &[]);
    assert_eq!(thread(&store, inbox, c), thread(&store, inbox, a));
    agrees(&store);
}

/// Enough messages to pass the checkpoint interval (16 MiB), so `threads.log` is written.
fn fill(store: &mut UserStore<SimDisk>, disk: &SimDisk, inbox: MailboxId, serial: &mut u32) {
    let body = vec![b'x'; 1 << 20];
    for _ in 0..18 {
        *serial += 1;
        let id = format!("big{serial}@x");
        let parent = format!("big{}@x", *serial - 1);
        let references = vec![parent.clone()];
        let keys = ThreadKeys { message_id: &id, in_reply_to: &parent, references: &references };
        store.append_threaded(inbox, &body, b"", keys, Flags::default(), None).unwrap();
        flush(disk);
    }
}

#[test]
fn threads_survive_restarts_before_and_after_the_log_is_written() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let root = put(&mut store, inbox, "root@x", "", &[]);
    let t = thread(&store, inbox, root);
    flush(&disk);
    // A restart before any checkpoint: the map comes back from the spool.
    let disk = disk.crash(0, CrashMode::DropPending);
    let mut store = open(&disk);
    assert_eq!(thread(&store, inbox, root), t);
    let reply = put(&mut store, inbox, "reply@x", "root@x", &[]);
    assert_eq!(thread(&store, inbox, reply), t);
    let mut serial = 0;
    fill(&mut store, &disk, inbox, &mut serial);
    settle(&mut store, &disk);
    let log = Path::new(USER).join("threads.log");
    let len = disk.open(&log, skua_core::disk::OpenMode::Existing).unwrap().len().unwrap();
    assert!(len > 64, "the checkpoint wrote the map's entries ({len} bytes)");
    agrees(&store);
    let before = store.thread_map();
    drop(store);
    let disk = disk.crash(0, CrashMode::DropPending);
    let mut store = open(&disk);
    assert_eq!(store.thread_map(), before, "the log and the spool past it give the same map");
    let late = put(&mut store, inbox, "late@x", "", &["root@x"]);
    assert_eq!(thread(&store, inbox, late), t);
    agrees(&store);
}

#[test]
fn a_lost_threads_log_keeps_every_thread_id() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let root = put(&mut store, inbox, "root@x", "", &[]);
    let reply = put(&mut store, inbox, "reply@x", "root@x", &[]);
    let t = thread(&store, inbox, root);
    flush(&disk);
    drop(store);
    let disk = disk.crash(0, CrashMode::DropPending);
    disk.remove_file(&Path::new(USER).join("threads.log")).unwrap();
    let mut store = open(&disk);
    assert_eq!(thread(&store, inbox, root), t, "stored in the spool record");
    assert_eq!(thread(&store, inbox, reply), t);
    // The hash key went with the file: old ids no longer link (a documented loss), new ones do.
    let fresh = put(&mut store, inbox, "fresh@x", "", &[]);
    let answer = put(&mut store, inbox, "answer@x", "fresh@x", &[]);
    assert_eq!(thread(&store, inbox, answer), thread(&store, inbox, fresh));
    agrees(&store);
}

#[test]
fn a_damaged_threads_log_header_is_set_aside_and_a_new_map_started() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let root = put(&mut store, inbox, "root@x", "", &[]);
    let t = thread(&store, inbox, root);
    flush(&disk);
    drop(store);
    let disk = disk.crash(0, CrashMode::DropPending);
    let log = Path::new(USER).join("threads.log");
    // A flipped bit in the hash key: the header checksum fails, the key is lost.
    disk.damage(&log, Damage::Flip { offset: 30, mask: 0x04 }).unwrap();
    let mut store = open(&disk);
    assert!(disk.exists(&Path::new(USER).join("threads.log.bad")), "kept for inspection");
    assert_eq!(thread(&store, inbox, root), t, "stored in the spool record");
    let fresh = put(&mut store, inbox, "fresh@x", "", &[]);
    let answer = put(&mut store, inbox, "answer@x", "", &["fresh@x"]);
    assert_eq!(thread(&store, inbox, answer), thread(&store, inbox, fresh));
    agrees(&store);
}

/// Regression: a store from before `threads.log` (or one whose log was lost) got a new log
/// covering nothing, so every open scanned its whole spool again until its first checkpoint,
/// although no record already there can teach a new key anything. The new log now covers the
/// spool as it was recovered.
#[test]
fn a_new_threads_log_does_not_make_every_open_scan_the_whole_spool() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let mut serial = 0;
    fill(&mut store, &disk, inbox, &mut serial);
    settle(&mut store, &disk);
    drop(store);
    let store = open(&disk);
    let checkpointed = store.recovery().spool_records_scanned;
    assert!(checkpointed < 18, "the index checkpoint bounds the scan ({checkpointed} records)");
    drop(store);
    disk.remove_file(&Path::new(USER).join("threads.log")).unwrap();
    let store = open(&disk);
    drop(store);
    flush(&disk);
    let store = open(&disk);
    assert_eq!(
        store.recovery().spool_records_scanned,
        checkpointed,
        "the new log adds nothing to the scan"
    );
    agrees(&store);
}
