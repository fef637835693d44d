//! Access control lists (RFC 4314) in the store: `acl` records of `mailboxes.log` across
//! restarts, compaction and crashes, the owner's rights that cannot be lost, and the limits
//! (`core/FORMAT.md`, "mailboxes.log", acl records).
//!
//! Crash invariant: after any crash, every mailbox's ACL is what it was after some prefix of
//! the changes made, never shorter than the acknowledged ones (each change is one replay unit,
//! the first change of a mailbox a batch of the owner's entry and the change), and the owner
//! keeps `l k x a` whatever survived.
#![cfg(feature = "sim")]

use std::path::Path;
use std::rc::Rc;

use skua_core::acl::{Acl, Identifier, Rights, RightsChange};
use skua_core::disk::sim::{CrashMode, SimDisk};
use skua_core::disk::{Disk, DiskFile, Flush, OpenMode};
use skua_core::limits::ACL_ENTRIES_MAX;
use skua_core::store::{AclError, Renamed, UserStore};
use skua_core::types::MailboxId;

const DIR: &str = "users/7f/owner";

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(DIR)).expect("opens")
}

fn flush(disk: &SimDisk) {
    if let Some(job) = disk.flush_begin() {
        let epoch = job.epoch();
        job.run().expect("flush runs");
        disk.flush_end(epoch);
    }
}

fn log_len(disk: &SimDisk) -> u64 {
    let path = Path::new(DIR).join("mailboxes.log");
    disk.open(&path, OpenMode::Existing).unwrap().len().unwrap()
}

fn id(text: &str) -> Identifier {
    Identifier::parse(text).unwrap()
}

fn rights(text: &str) -> Rights {
    Rights::parse(text).unwrap()
}

/// The ACL as `identifier rights` pairs, in order.
fn shown(acl: &Acl) -> Vec<String> {
    acl.entries().iter().map(|e| format!("{} {}", e.identifier, e.rights.letters())).collect()
}

fn set(store: &mut UserStore<SimDisk>, mailbox: MailboxId, who: &str, change: &str) {
    store.set_acl(mailbox, &id(who), RightsChange::parse(change).unwrap()).unwrap();
}

#[test]
fn the_owner_is_the_store_directory_and_has_every_right_by_default() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    assert_eq!(store.owner(), "owner");
    let work = store.create_mailbox("Work").unwrap();
    assert_eq!(shown(&store.acl(work).unwrap()), ["owner lrswipkxtea"]);
    assert_eq!(store.rights_of(work, "owner", true), Rights::ALL);
    assert_eq!(store.rights_of(work, "OWNER", true), Rights::ALL, "user names ignore case");
    assert_eq!(store.rights_of(work, "fred", true), Rights::NONE);
    assert_eq!(store.rights_of(MailboxId(999), "owner", true), Rights::NONE, "no mailbox");
    assert!(matches!(store.acl(MailboxId(999)), Err(AclError::NoSuchMailbox)));
    // Reading writes nothing; giving no rights to someone who has none writes nothing.
    let before = log_len(&disk);
    set(&mut store, work, "fred", "");
    store.delete_acl(work, &id("bob")).unwrap();
    set(&mut store, work, "owner", "+lr");
    assert_eq!(log_len(&disk), before);
    assert_eq!(shown(&store.acl(work).unwrap()), ["owner lrswipkxtea"]);
}

#[test]
fn the_owner_keeps_l_k_x_a_whatever_the_acl_says() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    set(&mut store, inbox, "owner", "r");
    assert_eq!(shown(&store.acl(inbox).unwrap()), ["owner lrkxa"], "SETACL keeps them");
    store.delete_acl(inbox, &id("owner")).unwrap();
    assert_eq!(shown(&store.acl(inbox).unwrap()), ["owner lkxa"], "DELETEACL keeps them");
    set(&mut store, inbox, "-owner", "lrkxaw");
    assert_eq!(shown(&store.acl(inbox).unwrap()), ["owner lkxa", "-owner rw"]);
    set(&mut store, inbox, "-anyone", "lrswipkxtea");
    assert_eq!(store.rights_of(inbox, "owner", true), Rights::OWNER_FIXED);
    assert_eq!(store.rights_of(inbox, "fred", true), Rights::NONE);
    set(&mut store, inbox, "-anyone", "");
    set(&mut store, inbox, "anyone", "lrp");
    set(&mut store, inbox, "fred", "lrswi");
    set(&mut store, inbox, "-fred", "w");
    set(&mut store, inbox, "authenticated", "+k");
    assert_eq!(store.rights_of(inbox, "fred", true).letters(), "lrsipk");
    assert_eq!(store.rights_of(inbox, "fred", false).letters(), "lrsip");
    assert_eq!(store.rights_of(inbox, "bob", false).letters(), "lrp");
    assert_eq!(store.rights_of(inbox, "owner", true).letters(), "lpkxa", "-owner takes r");
}

#[test]
fn acls_replay_follow_rename_and_compaction_and_vanish_with_delete() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let work = store.create_mailbox("Work").unwrap();
    let child = store.create_mailbox("Work/Sub").unwrap();
    set(&mut store, work, "fred", "lrs");
    set(&mut store, work, "-anyone", "w");
    set(&mut store, child, "anyone", "lp");
    let work_acl = ["owner lrswipkxtea", "fred lrs", "-anyone w"];
    let child_acl = ["owner lrswipkxtea", "anyone lp"];
    assert_eq!(shown(&store.acl(work).unwrap()), work_acl);
    assert!(matches!(store.rename_mailbox("Work", "Job").unwrap(), Renamed::Done));
    flush(&disk);
    drop(store);
    let mut store = open(&disk);
    assert_eq!(store.mailbox_id("Job"), Some(work));
    assert_eq!(shown(&store.acl(work).unwrap()), work_acl, "kept by rename and restart");
    assert_eq!(shown(&store.acl(child).unwrap()), child_acl, "a child's too");
    // Grow the log past its compaction threshold with ACL churn.
    let before = log_len(&disk);
    let long = "c".repeat(200);
    for i in 0..1000 {
        let who = format!("{long}{}", i % 3);
        set(&mut store, work, &who, "lr");
        set(&mut store, work, &who, "");
    }
    assert!(log_len(&disk) > before + 256 * 1024);
    let grown = log_len(&disk);
    for _ in 0..4 {
        flush(&disk);
        store.subscribe("INBOX").unwrap();
    }
    assert!(log_len(&disk) < grown / 2, "the log was compacted");
    flush(&disk);
    drop(store);
    let mut store = open(&disk);
    assert_eq!(shown(&store.acl(work).unwrap()), work_acl, "kept by compaction");
    assert_eq!(shown(&store.acl(child).unwrap()), child_acl);
    store.delete_mailbox("Job").unwrap();
    assert!(matches!(store.acl(work), Err(AclError::NoSuchMailbox)));
    let again = store.create_mailbox("Job").unwrap();
    assert_eq!(shown(&store.acl(again).unwrap()), ["owner lrswipkxtea"], "not inherited");
    flush(&disk);
    drop(store);
    let store = open(&disk);
    assert_eq!(shown(&store.acl(again).unwrap()), ["owner lrswipkxtea"]);
}

#[test]
fn an_acl_is_bounded_and_a_refused_change_writes_nothing() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    // The owner's entry is one of them.
    for i in 1..ACL_ENTRIES_MAX {
        set(&mut store, inbox, &format!("user{i}"), "lr");
    }
    let before = log_len(&disk);
    let refused = store.set_acl(inbox, &id("extra"), RightsChange::Add(rights("l")));
    assert!(matches!(refused, Err(AclError::TooManyEntries)));
    assert_eq!(log_len(&disk), before);
    assert_eq!(store.acl(inbox).unwrap().entries().len(), ACL_ENTRIES_MAX);
    // Changing and removing entries still works at the limit.
    set(&mut store, inbox, "user1", "+w");
    store.delete_acl(inbox, &id("user2")).unwrap();
    set(&mut store, inbox, "extra", "l");
    flush(&disk);
    drop(store);
    let store = open(&disk);
    let acl = store.acl(inbox).unwrap();
    assert_eq!(acl.entries().len(), ACL_ENTRIES_MAX);
    assert_eq!(acl.get(&id("user1")).letters(), "lrw");
    assert_eq!(acl.get(&id("extra")).letters(), "l");
}

/// The workload: changes to two mailboxes' ACLs, the first of each a batch.
fn step(i: usize) -> (bool, &'static str, &'static str) {
    const STEPS: [(bool, &str, &str); 10] = [
        (true, "fred", "lrs"),
        (false, "anyone", "lp"),
        (true, "-fred", "s"),
        (true, "owner", "-rw"),
        (false, "authenticated", "+lr"),
        (true, "fred", "+wi"),
        (false, "anyone", ""),
        (true, "bob", "lrswipkxtea"),
        (true, "-fred", ""),
        (false, "owner", "l"),
    ];
    STEPS[i]
}

fn snapshot(store: &UserStore<SimDisk>, a: MailboxId, b: MailboxId) -> (Vec<String>, Vec<String>) {
    (shown(&store.acl(a).unwrap()), shown(&store.acl(b).unwrap()))
}

#[test]
fn every_crash_leaves_a_prefix_of_the_acl_changes() {
    let steps = 10;
    // The states after each prefix, from a store that never crashes.
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let a = store.create_mailbox("A").unwrap();
    let b = store.create_mailbox("B").unwrap();
    let mut states = vec![snapshot(&store, a, b)];
    for i in 0..steps {
        let (first, who, change) = step(i);
        set(&mut store, if first { a } else { b }, who, change);
        states.push(snapshot(&store, a, b));
    }
    let mut checked = 0;
    for done in 1..=steps {
        for acked in [done / 2, done - 1] {
            let disk = SimDisk::new();
            let mut store = open(&disk);
            let (a, b) = (store.create_mailbox("A").unwrap(), store.create_mailbox("B").unwrap());
            flush(&disk);
            for i in 0..done {
                let (first, who, change) = step(i);
                set(&mut store, if first { a } else { b }, who, change);
                if i + 1 == acked {
                    flush(&disk);
                }
            }
            for mode in CrashMode::ALL {
                for seed in 0..4 {
                    let crashed = disk.crash(seed, mode);
                    let store = open(&crashed);
                    let got = snapshot(&store, a, b);
                    let prefix = (acked..=done).find(|&j| states[j] == got);
                    assert!(
                        prefix.is_some(),
                        "done {done} acked {acked} {mode:?} seed {seed}: not a prefix: {got:?}"
                    );
                    for mailbox in [a, b] {
                        let owner = store.rights_of(mailbox, "owner", true);
                        assert!(owner.contains(Rights::OWNER_FIXED));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 300, "{checked}");
}
