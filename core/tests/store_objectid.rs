//! EMAILID and save dates (issue 9, OBJECTID and SAVEDATE): an EMAILID is the same for a
//! message and its copies, different for every other message, and survives reopen, a lost
//! index and reconstruct; a save date is set by APPEND and COPY, kept by STORE, a reopen and
//! reconstruct, and unknown (`None`) for a message whose index record was rebuilt from the
//! spool alone.

mod store_support;

use std::path::Path;

use skua_core::store::reconstruct;
use skua_core::types::{Flags, FlagsOp, SystemFlags};
use store_support::{USER, World, append_many, check};

fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

#[test]
fn email_ids_follow_copies_and_save_dates_are_the_copy_time() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let archive = store.create_mailbox("Archive").unwrap();
    let before = now();
    let uids = append_many(&mut store, inbox, 0, 3);
    let past = skua_core::types::InternalDate { unix_seconds: 86_400, zone_minutes: 0 };
    let (old_uid, _) =
        store.append(inbox, b"Subject: old\r\n\r\nx", b"", Flags::default(), Some(past)).unwrap();
    let after = now();
    let ids: Vec<u64> = uids.iter().map(|&uid| store.email_id(inbox, uid).unwrap()).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    for meta in store.messages(inbox).unwrap() {
        let saved = meta.save_date.expect("an appended message has a save date");
        assert!((before..=after).contains(&saved), "saved {saved}, now {before}..{after}");
    }
    let old = store.message(inbox, old_uid).unwrap().unwrap();
    assert_eq!(old.internal_date, past);
    assert!(old.save_date.unwrap() >= before, "the save date is not the internal date");

    let pairs = store.copy(inbox, &[uids[1], uids[2]], archive).unwrap();
    for &(from, to) in &pairs {
        assert_eq!(store.email_id(archive, to).unwrap(), store.email_id(inbox, from).unwrap());
        assert!(store.message(archive, to).unwrap().unwrap().save_date.is_some());
    }
    // A copy of a copy keeps the id too; a MOVE is a COPY and an EXPUNGE.
    let work = store.create_mailbox("Work").unwrap();
    let again = store.copy(archive, &[pairs[0].1], work).unwrap();
    store.expunge(archive, &[pairs[0].1]).unwrap();
    assert_eq!(store.email_id(work, again[0].1).unwrap(), ids[1]);
    // STORE keeps both.
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), ..Flags::default() };
    let date = store.message(inbox, uids[0]).unwrap().unwrap().save_date;
    store.store_flags(inbox, &[uids[0]], FlagsOp::Add, seen, None).unwrap();
    assert_eq!(store.message(inbox, uids[0]).unwrap().unwrap().save_date, date);
    assert_eq!(store.email_id(inbox, uids[0]).unwrap(), ids[0]);
    world.flush();
    let inbox_before = store.messages(inbox).unwrap();
    drop(store);

    let store = world.open();
    check(&store);
    assert_eq!(store.messages(inbox).unwrap(), inbox_before, "a reopen keeps save dates");
    let again: Vec<u64> = uids.iter().map(|&uid| store.email_id(inbox, uid).unwrap()).collect();
    assert_eq!(again, ids);
    assert_eq!(store.email_id(archive, pairs[1].1).unwrap(), ids[2]);
}

#[test]
fn a_rebuilt_index_keeps_email_ids_and_reconstruct_keeps_save_dates() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let work = store.create_mailbox("Work").unwrap();
    let uids = append_many(&mut store, inbox, 0, 4);
    let copied = store.copy(inbox, &[uids[3]], work).unwrap();
    let ids: Vec<u64> = uids.iter().map(|&uid| store.email_id(inbox, uid).unwrap()).collect();
    let inbox_before = store.messages(inbox).unwrap();
    world.flush();
    drop(store);

    // reconstruct keeps an old record that validates, save date included.
    reconstruct(world.disk.clone(), Path::new(USER)).unwrap();
    world.flush();
    let store = world.open();
    assert_eq!(store.messages(inbox).unwrap(), inbox_before);
    drop(store);

    // A lost index is rebuilt from the spool: the EMAILIDs are there, the save dates are not.
    std::fs::remove_file(world.index_path(inbox)).unwrap();
    let store = world.open();
    check(&store);
    let rebuilt = store.messages(inbox).unwrap();
    assert_eq!(rebuilt.len(), 4);
    assert!(rebuilt.iter().all(|meta| meta.save_date.is_none()), "{rebuilt:?}");
    let again: Vec<u64> = uids.iter().map(|&uid| store.email_id(inbox, uid).unwrap()).collect();
    assert_eq!(again, ids);
    assert_eq!(store.email_id(work, copied[0].1).unwrap(), ids[3]);
}
