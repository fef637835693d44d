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
    let flags = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    let (uid, modseq) = store.append(inbox, b"Subject: hi\r\n\r\nbody", b"cache", flags, None).unwrap();
    assert_eq!(uid, Uid::MIN);
    assert!(modseq.0 > 1);
    assert_eq!(&*store.body(inbox, uid).unwrap(), b"Subject: hi\r\n\r\nbody");
    assert_eq!(&*store.cache(inbox, uid).unwrap(), b"cache");
    store.check_invariants();
    drop(store);
    let store = open(&disk);
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    let messages = store.messages(inbox).unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].flags, flags);
    assert_eq!(&*store.body(inbox, uid).unwrap(), b"Subject: hi\r\n\r\nbody");
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
        store.append(inbox, &[b'a' + i; 10], b"", none, None).unwrap();
    }
    let uids: Vec<Uid> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    let keyword = Flags { system: SystemFlags(SystemFlags::FLAGGED), keywords: junk };
    let outcome = store.store_flags(inbox, &uids[..2], FlagsOp::Add, keyword, None).unwrap();
    assert_eq!(outcome.changed.len(), 2);
    let stale = store.store_flags(inbox, &uids[..1], FlagsOp::Remove, keyword, Some(ModSeq(1))).unwrap();
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
