//! `store::reconstruct` on the real disk: indexes rebuilt from the spool and the mailbox log,
//! flags kept from old index records that validate, expunges honoured, counts reported.

mod store_support;

use std::path::Path;

use skua_core::store::reconstruct;
use skua_core::types::{Flags, FlagsOp, Keywords, SystemFlags, Uid};
use store_support::{USER, World, append_many, check};

#[test]
fn reconstruct_keeps_valid_flags_and_expunges() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let work = store.create_mailbox("Work").unwrap();
    let uids = append_many(&mut store, inbox, 0, 6);
    append_many(&mut store, work, 20, 2);
    let label = store.keyword_bits(inbox, &["Label"]).unwrap();
    let flags = Flags { system: SystemFlags(SystemFlags::FLAGGED), keywords: label };
    store.store_flags(inbox, &uids[..4], FlagsOp::Add, flags, None).unwrap();
    store.expunge(inbox, &[uids[5]]).unwrap();
    let gone = store.create_mailbox("Gone").unwrap();
    append_many(&mut store, gone, 40, 1);
    store.delete_mailbox("Gone").unwrap();
    let before = store.messages(inbox).unwrap();
    let info_before = store.mailbox_info(inbox).unwrap();
    world.flush();
    drop(store);
    // Damage record 2 of INBOX's index and delete Work's index outright.
    let index = world.index_path(inbox);
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[128 + 2 * 64 + 5] ^= 0x40;
    std::fs::write(&index, bytes).unwrap();
    std::fs::remove_file(world.index_path(work)).unwrap();

    let report = reconstruct(world.disk.clone(), Path::new(USER)).unwrap();
    assert_eq!(report.mailboxes, 2);
    assert_eq!(report.messages, 5 + 2);
    assert_eq!(report.expunged, 1);
    assert_eq!(report.flags_kept, 5, "INBOX records 0, 1, 3, 4, 5 validate");
    assert_eq!(report.flags_reset, 1 + 2, "the damaged one and Work's");
    assert_eq!(report.orphaned_records, 1, "the deleted mailbox's message");
    assert_eq!(report.spool_records, 6 + 2 + 1 + 1, "messages and one tombstone");
    world.flush();

    let store = world.open();
    let after = store.messages(inbox).unwrap();
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old.uid, new.uid);
        if new.uid == uids[2] {
            assert_eq!(new.flags, Flags::default(), "the damaged record's flags are lost");
            assert!(new.modseq > info_before.highest_modseq, "a rebuilt record gets a new modseq");
        } else {
            assert_eq!(old, new);
        }
    }
    assert_eq!(store.message(inbox, uids[5]).unwrap(), None);
    let info = store.mailbox_info(inbox).unwrap();
    assert_eq!(info.uid_next, info_before.uid_next);
    assert!(info.highest_modseq >= info_before.highest_modseq);
    assert_eq!(store.keywords(inbox).unwrap(), vec!["Label"]);
    assert_eq!(store.messages(work).unwrap().len(), 2);
    assert_eq!(after[0].flags.keywords, Keywords(1));
    check(&store);
}

#[test]
fn reconstruct_of_an_intact_store_changes_nothing() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 3);
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    store.store_flags(inbox, &uids[1..], FlagsOp::Replace, seen, None).unwrap();
    let before = store.messages(inbox).unwrap();
    let info = store.mailbox_info(inbox).unwrap();
    world.flush();
    drop(store);
    let report = reconstruct(world.disk.clone(), Path::new(USER)).unwrap();
    assert_eq!(report.flags_kept, 3);
    assert_eq!(report.flags_reset, 0);
    assert_eq!(report.index_records_dropped, 0);
    let store = world.open();
    assert_eq!(store.messages(inbox).unwrap(), before);
    assert_eq!(store.mailbox_info(inbox).unwrap(), info);
    assert_eq!(store.message(inbox, Uid::MIN).unwrap().unwrap().flags, Flags::default());
}
