//! The modseq journal alone, and `UserStore::changes_since` against a walk of the whole index
//! on the simulated disk, across random changes and reopens.

use std::path::Path;
use std::rc::Rc;

use proptest::prelude::*;

use super::super::MessageMeta;
use super::*;
use crate::disk::sim::SimDisk;
use crate::types::{Flags, FlagsOp, Keywords, SystemFlags};

fn uid(n: u32) -> Uid {
    Uid::new(n).unwrap()
}

#[test]
fn journal_answers_above_its_floor_only() {
    let mut journal = ModSeqJournal::new(10);
    assert_eq!(journal.uids_since(9), None);
    assert_eq!(journal.uids_since(10), Some(vec![]));
    journal.note(11, uid(5), 10);
    journal.note(12, uid(2), 10);
    journal.note(13, uid(5), 10);
    // At or below the floor: not needed, not kept.
    journal.note(10, uid(9), 10);
    assert_eq!(journal.uids_since(10), Some(vec![uid(2), uid(5)]));
    assert_eq!(journal.uids_since(12), Some(vec![uid(5)]));
    assert_eq!(journal.uids_since(13), Some(vec![]));
    // Recovery may replay an old modseq: it goes in its place.
    journal.note(12, uid(7), 10);
    assert_eq!(journal.uids_since(11), Some(vec![uid(2), uid(5), uid(7)]));
    assert_eq!(journal.uids_since(12), Some(vec![uid(5)]));
    // Entries cut from the index: nothing before now can be answered.
    journal.reset(20);
    assert_eq!(journal.uids_since(13), None);
    assert_eq!(journal.uids_since(20), Some(vec![]));
}

#[test]
fn journal_is_bounded_and_its_floor_follows_what_it_dropped() {
    let mut journal = ModSeqJournal::new(0);
    let max = ModSeqJournal::records_max(100);
    assert_eq!(max, JOURNAL_RECORDS_MIN);
    for m in 1..=(max as u64 + 10) {
        journal.note(m, uid(1 + (m % 7) as u32), 100);
    }
    assert_eq!(journal.records.len(), max);
    assert_eq!(journal.floor, 10);
    assert_eq!(journal.uids_since(9), None);
    assert!(journal.uids_since(10).is_some());
    // One expunge gives many UIDs the same modseq: dropping one drops them all.
    let mut journal = ModSeqJournal::new(0);
    for n in 1..=max as u32 {
        journal.note(1, uid(n), 100);
    }
    journal.note(2, uid(1), 100);
    assert_eq!(journal.floor, 1);
    assert_eq!(journal.uids_since(1), Some(vec![uid(1)]));
    // A big mailbox keeps one record per JOURNAL_MESSAGES_PER_RECORD entries.
    let entries = JOURNAL_RECORDS_MIN * JOURNAL_MESSAGES_PER_RECORD * 4;
    assert_eq!(ModSeqJournal::records_max(entries), JOURNAL_RECORDS_MIN * 4);
}

fn open(disk: &Rc<SimDisk>) -> UserStore<SimDisk> {
    UserStore::open(disk.clone(), Path::new("u")).unwrap()
}

fn append(store: &mut UserStore<SimDisk>, id: MailboxId) {
    store.append(id, b"Subject: x\r\n\r\nbody\r\n", b"", Flags::default(), None).unwrap();
}

/// The answer by walking every entry, as `changes_since` must give it.
fn walked(store: &UserStore<SimDisk>, id: MailboxId, since: ModSeq) -> MailboxChanges {
    let changed: Vec<MessageMeta> =
        store.messages(id).unwrap().into_iter().filter(|m| m.modseq > since).collect();
    let entries = store.indexes[&id].entries();
    let expunged = entries.iter().filter(|e| e.expunged && e.modseq > since.0);
    MailboxChanges { changed, expunged: expunged.map(|e| e.uid).collect() }
}

#[derive(Clone, Debug)]
enum Op {
    Append,
    Flag(usize, u16),
    Expunge(usize, usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Append),
        3 => (0usize..64, 0u16..32).prop_map(|(p, s)| Op::Flag(p, s)),
        1 => (0usize..64, 1usize..4).prop_map(|(p, n)| Op::Expunge(p, n)),
        1 => Just(Op::Reopen),
    ]
}

fn live(store: &UserStore<SimDisk>, id: MailboxId) -> Vec<Uid> {
    store.messages(id).unwrap().iter().map(|m| m.uid).collect()
}

fn apply(store: &mut UserStore<SimDisk>, id: MailboxId, op: &Op) {
    let uids = live(store, id);
    match *op {
        Op::Append => append(store, id),
        Op::Flag(pick, system) if !uids.is_empty() => {
            let flags = Flags { system: SystemFlags(system), keywords: Keywords(0) };
            let target = [uids[pick % uids.len()]];
            store.store_flags(id, &target, FlagsOp::Replace, flags, None).unwrap();
        }
        Op::Expunge(pick, count) if !uids.is_empty() => {
            let doomed: Vec<Uid> = uids.iter().cycle().skip(pick).take(count).copied().collect();
            store.expunge(id, &doomed).unwrap();
        }
        Op::Flag(..) | Op::Expunge(..) | Op::Reopen => {}
    }
}

proptest! {
    #[test]
    fn changes_since_is_the_walk_for_every_modseq_it_answers(
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let disk = Rc::new(SimDisk::new());
        let mut store = open(&disk);
        let inbox = store.mailbox_id("INBOX").unwrap();
        // The highest modseq when the store was last opened: the journal reaches back there.
        let mut opened_at = store.mailbox_marks(inbox).unwrap().highest_modseq;
        for op in &ops {
            if let Op::Reopen = op {
                drop(store);
                store = open(&disk);
                opened_at = store.mailbox_marks(inbox).unwrap().highest_modseq;
                continue;
            }
            apply(&mut store, inbox, op);
            store.check_invariants();
            let highest = store.mailbox_marks(inbox).unwrap().highest_modseq;
            for since in 0..=highest.0 + 1 {
                let answer = store.changes_since(inbox, ModSeq(since)).unwrap();
                if since < opened_at.0 {
                    prop_assert_eq!(answer, None, "since {}", since);
                    continue;
                }
                let walk = walked(&store, inbox, ModSeq(since));
                prop_assert_eq!(store.expunged_since(inbox, ModSeq(since)).unwrap(),
                    walk.expunged.clone());
                prop_assert_eq!(answer, Some(walk), "since {}", since);
            }
        }
    }
}

#[test]
fn after_reopen_old_questions_fall_back_and_new_changes_are_answered() {
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    for _ in 0..5 {
        append(&mut store, inbox);
    }
    let before = store.mailbox_marks(inbox).unwrap().highest_modseq;
    store.expunge(inbox, &[uid(2)]).unwrap();
    let answer = store.changes_since(inbox, before).unwrap().unwrap();
    assert_eq!(answer.expunged, vec![uid(2)]);
    drop(store);
    let mut store = open(&disk);
    assert_eq!(store.changes_since(inbox, before).unwrap(), None);
    // The walk still answers QRESYNC's question.
    assert_eq!(store.expunged_since(inbox, before).unwrap(), vec![uid(2)]);
    let reopened = store.mailbox_marks(inbox).unwrap().highest_modseq;
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    store.store_flags(inbox, &[uid(4)], FlagsOp::Add, seen, None).unwrap();
    let answer = store.changes_since(inbox, reopened).unwrap().unwrap();
    assert_eq!(answer.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![uid(4)]);
    assert!(answer.expunged.is_empty());
    assert!(matches!(store.changes_since(MailboxId(999), reopened), Err(ReadError::NoSuchMailbox)));
}

#[test]
fn a_change_costs_the_change_not_the_mailbox() {
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    for _ in 0..3000 {
        append(&mut store, inbox);
    }
    let since = store.mailbox_marks(inbox).unwrap().highest_modseq;
    let flagged = Flags { system: SystemFlags(SystemFlags::FLAGGED), keywords: Keywords(0) };
    store.store_flags(inbox, &[uid(17), uid(2500)], FlagsOp::Add, flagged, None).unwrap();
    store.expunge(inbox, &[uid(3)]).unwrap();
    let handed_out = store.metas_handed_out();
    let answer = store.changes_since(inbox, since).unwrap().unwrap();
    assert_eq!(answer.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![uid(17), uid(2500)]);
    assert_eq!(answer.expunged, vec![uid(3)]);
    assert_eq!(store.metas_handed_out() - handed_out, 2);
    // The walk it replaces hands out every live message.
    let handed_out = store.metas_handed_out();
    store.messages(inbox).unwrap();
    assert_eq!(store.metas_handed_out() - handed_out, 2999);
}

#[test]
fn an_undone_copy_restarts_the_journal() {
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    append(&mut store, inbox);
    let since = store.mailbox_marks(inbox).unwrap().highest_modseq;
    let (len, mark) = (store.indexes[&inbox].entries().len(), store.spool.end_pos());
    // An append taken back as a failed COPY's copies are (with the usage bookkeeping).
    append(&mut store, inbox);
    assert_eq!(store.changes_since(inbox, since).unwrap().unwrap().changed.len(), 1);
    let before = store.quota_mark(inbox);
    store.undo_copy(inbox, len, mark, &[(uid(1), uid(2))]);
    store.quota_settle(inbox, before);
    assert_eq!(live(&store, inbox), vec![uid(1)]);
    assert_eq!(store.changes_since(inbox, since).unwrap(), None);
    let now = store.mailbox_marks(inbox).unwrap().highest_modseq;
    assert_eq!(store.changes_since(inbox, now).unwrap(), Some(MailboxChanges::default()));
    store.check_invariants();
}
