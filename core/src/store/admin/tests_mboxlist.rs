//! `mboxlist dump|undump` and `arbitron` on the simulated disk: a dump undumped into an empty
//! store dumps the same (ids, UIDs and counts aside), existing mailboxes are left alone, a bad
//! line changes nothing, and arbitron names the readers of shared mailboxes only.

use std::path::Path;
use std::rc::Rc;

use super::*;
use crate::acl::{Identifier, Rights, RightsChange};
use crate::disk::sim::SimDisk;
use crate::store::SpecialUse;
use crate::types::{Flags, Uid};

fn open(disk: &Rc<SimDisk>, dir: &str) -> UserStore<SimDisk> {
    UserStore::open(disk.clone(), Path::new(dir)).unwrap()
}

/// alice's store: a Sent folder, a shared tree given to bob, a subscription, one message.
fn alice(disk: &Rc<SimDisk>) -> UserStore<SimDisk> {
    let mut store = open(disk, "users/8e/alice");
    store.create_mailbox_with_use("Sent", SpecialUse::SENT).unwrap();
    let shared = store.create_mailbox("Team/Plans").unwrap();
    store.subscribe("Team/Plans").unwrap();
    let bob = Identifier::user("bob").unwrap();
    store.set_acl(shared, &bob, RightsChange::Replace(Rights::parse("lrs").unwrap())).unwrap();
    store.append(shared, b"Subject: x\r\n\r\nplans", b"", Flags::default(), None).unwrap();
    store
}

/// What a dump says apart from what undump does not carry over (ids, UIDs, counts).
fn shape(lines: &[MailboxLine]) -> Vec<MailboxLine> {
    lines
        .iter()
        .map(|l| MailboxLine {
            id: 0,
            uid_validity: 0,
            uid_next: 0,
            highest_modseq: 0,
            messages: 0,
            ..l.clone()
        })
        .collect()
}

#[test]
fn a_dump_undumped_into_an_empty_store_dumps_the_same() {
    let source = Rc::new(SimDisk::new());
    let dump = alice(&source).mboxlist_dump("alice");
    let names: Vec<&str> = dump.iter().map(|l| l.mailbox.as_str()).collect();
    assert_eq!(names, ["INBOX", "Sent", "Team", "Team/Plans"]);
    let plans = &dump[3];
    assert_eq!((plans.messages, plans.subscribed), (1, true));
    assert_eq!(plans.acl.get("bob").map(String::as_str), Some("lrs"));
    assert_eq!(dump[1].special_use, ["\\Sent"]);
    assert_eq!(
        grantees(&dump).get("bob").map(|o| o.iter().cloned().collect::<Vec<_>>()),
        Some(vec!["alice".to_owned()])
    );

    let target = Rc::new(SimDisk::new());
    let mut fresh = open(&target, "users/8e/alice");
    let dry = fresh.mboxlist_undump("alice", &dump, true).unwrap();
    assert_eq!(dry.created.len(), 3);
    assert_eq!(fresh.mailboxes().len(), 1, "a dry run makes nothing");
    let report = fresh.mboxlist_undump("alice", &dump, false).unwrap();
    assert_eq!(report.existing, ["INBOX"]);
    let made: Vec<&str> = report.created.iter().map(|l| l.mailbox.as_str()).collect();
    assert_eq!(made, ["Sent", "Team", "Team/Plans"]);
    assert_eq!(shape(&fresh.mboxlist_dump("alice")), shape(&dump));
    let again = fresh.mboxlist_undump("alice", &dump, false).unwrap();
    assert!(again.created.is_empty(), "a second undump changes nothing");
}

#[test]
fn existing_mailboxes_are_left_alone_and_a_bad_line_changes_nothing() {
    let disk = Rc::new(SimDisk::new());
    let mut store = alice(&disk);
    let before = store.mboxlist_dump("alice");
    let mut lines = before.clone();
    lines[1].special_use = vec!["\\Trash".to_owned()];
    lines[3].acl.clear();
    let report = store.mboxlist_undump("alice", &lines, false).unwrap();
    assert!(report.created.is_empty());
    assert_eq!(store.mboxlist_dump("alice"), before, "nothing of an existing one changed");
    let mut bad = before.clone();
    bad.push(MailboxLine { mailbox: "New".to_owned(), ..before[1].clone() });
    bad.push(MailboxLine {
        mailbox: "Bad".to_owned(),
        special_use: vec!["\\All".to_owned()],
        ..before[1].clone()
    });
    let error = store.mboxlist_undump("alice", &bad, false).unwrap_err();
    assert_eq!(error.kind(), "bad-request", "{error}");
    let mut other = before.clone();
    other[0].user = "bob".to_owned();
    assert!(store.mboxlist_undump("alice", &other, false).is_err());
    let mut acl = before;
    acl.push(MailboxLine { mailbox: "Acl".to_owned(), ..acl[3].clone() });
    acl.last_mut().unwrap().acl.insert("bob".to_owned(), "lr?".to_owned());
    assert!(store.mboxlist_undump("alice", &acl, false).is_err());
    assert!(store.mailbox_id("New").is_none() && store.mailbox_id("Acl").is_none(), "nothing made");
}

#[test]
fn arbitron_names_the_readers_of_shared_mailboxes_only() {
    let disk = Rc::new(SimDisk::new());
    let mut store = alice(&disk);
    let report = store.arbitron("alice", false).unwrap();
    assert!(!report.read_times);
    let names: Vec<&str> = report.mailboxes.iter().map(|m| m.mailbox.as_str()).collect();
    assert_eq!(names, ["Team/Plans"], "only the mailbox given to someone else");
    assert!(report.mailboxes[0].readers.is_empty(), "bob has read nothing yet");
    assert_eq!(report.mailboxes[0].acl_identifiers, ["bob"]);
    assert!(!disk.exists(Path::new("users/8e/alice/seen.log")), "a report creates no file");
    let plans = store.mailbox_id("Team/Plans").unwrap();
    store.set_reader_seen(plans, "bob", &[Uid::new(1).unwrap()], true).unwrap();
    let report = store.arbitron("alice", false).unwrap();
    let readers = &report.mailboxes[0].readers;
    assert_eq!(readers, &[Reader { reader: "bob".to_owned(), seen_messages: 1 }]);
    let public = store.arbitron("alice", true).unwrap();
    assert_eq!(public.mailboxes.len(), 4, "the public owner's mailboxes are all shared");
}
