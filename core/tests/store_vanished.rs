//! The expunge history QRESYNC reads (`UserStore::vanished_since`): expunges above a modseq
//! are named, and a message that `reconstruct` could not find again (its spool record
//! damaged) is named to every client whatever modseq it last saw. Bug: before
//! `vanished_since`, the history was only the expunged index entries (`expunged_since`), so
//! a message lost this way vanished without any `VANISHED (EARLIER)` ever naming it, and a
//! QRESYNC client kept it forever.

mod store_support;

use std::path::Path;

use skua_core::store::reconstruct;
use skua_core::types::ModSeq;
use store_support::{USER, World, append_many, check, message};

#[test]
fn expunges_above_the_modseq_are_named_in_ranges() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 6);
    let before = store.mailbox_info(inbox).unwrap().highest_modseq;
    assert_eq!(store.vanished_since(inbox, ModSeq(0)).unwrap(), vec![]);
    let first = store.expunge(inbox, &[uids[1], uids[2]]).unwrap();
    store.expunge(inbox, &[uids[4]]).unwrap();
    let (u2, u3, u5) = (uids[1].get(), uids[2].get(), uids[4].get());
    assert_eq!(store.vanished_since(inbox, before).unwrap(), vec![u2..=u3, u5..=u5]);
    assert_eq!(store.vanished_since(inbox, first).unwrap(), vec![u5..=u5]);
    let now = store.mailbox_info(inbox).unwrap().highest_modseq;
    assert_eq!(store.vanished_since(inbox, now).unwrap(), vec![]);
    // The history survives a reopen.
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(store.vanished_since(inbox, before).unwrap(), vec![u2..=u3, u5..=u5]);
    check(&store);
}

#[test]
fn a_message_reconstruct_lost_is_named_whatever_the_modseq() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 3);
    let info = store.mailbox_info(inbox).unwrap();
    world.flush();
    drop(store);
    // Damage the middle of the second message's bytes in the spool.
    let segment = world.path("spool/00000001.seg");
    let mut bytes = std::fs::read(&segment).unwrap();
    let body = message(1, 100 + 37);
    let at =
        bytes.windows(body.len()).position(|w| w == &body[..]).expect("message 1 in the spool");
    bytes[at + body.len() / 2] ^= 0x55;
    std::fs::write(&segment, bytes).unwrap();

    reconstruct(world.disk.clone(), Path::new(USER)).unwrap();
    world.flush();
    let store = world.open();
    let live: Vec<_> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    assert_eq!(live, vec![uids[0], uids[2]], "the damaged message is gone");
    let lost = uids[1].get();
    // A client that synced at the last modseq before the damage, or at the newest one, is
    // still told.
    assert_eq!(store.vanished_since(inbox, info.highest_modseq).unwrap(), vec![lost..=lost]);
    let now = store.mailbox_info(inbox).unwrap().highest_modseq;
    assert_eq!(store.vanished_since(inbox, now).unwrap(), vec![lost..=lost]);
    // The old, exact history does not know of it: the bug.
    assert!(store.expunged_since(inbox, ModSeq(0)).unwrap().is_empty());
    check(&store);
}
