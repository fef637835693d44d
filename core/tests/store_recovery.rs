//! Recovery on open, on the real disk, with files damaged by hand: torn tails of the spool,
//! the indexes and the mailbox log are cut; an index behind its spool is caught up; an index
//! that is gone is rebuilt; nothing that was flushed and is intact is lost.

mod store_support;

use std::fs::OpenOptions;
use std::io::Write;

use skua_core::types::{Flags, FlagsOp, Keywords, SystemFlags, Uid};
use store_support::{World, append_many, check, message};

fn truncate_by(path: &std::path::Path, bytes: u64) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len - bytes).unwrap();
}

fn append_junk(path: &std::path::Path, junk: &[u8]) {
    OpenOptions::new().append(true).open(path).unwrap().write_all(junk).unwrap();
}

fn flip_byte(path: &std::path::Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[usize::try_from(offset).unwrap()] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn torn_spool_tail_drops_what_it_backed() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 3);
    world.flush();
    drop(store);
    truncate_by(&world.path("spool/00000001.seg"), 5);
    let mut store = world.open();
    let report = store.recovery().clone();
    assert!(report.spool_truncated_bytes > 0, "{report:?}");
    assert_eq!(report.index_records_dropped, 1, "{report:?}");
    let live: Vec<Uid> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    assert_eq!(live, uids[..2]);
    assert_eq!(&*store.body(inbox, uids[1]).unwrap(), &message(1, 100 + 37)[..]);
    let info = store.mailbox_info(inbox).unwrap();
    assert_eq!(info.uid_next.get(), 4, "the dropped UID is not given again");
    let (uid, _) = store.append(inbox, b"after", b"", Flags::default(), None).unwrap();
    assert_eq!(uid.get(), 4);
    check(&store);
    world.flush();
    drop(store);
    let store = world.open();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    assert_eq!(&*store.body(inbox, uid).unwrap(), b"after");
}

#[test]
fn garbage_after_the_spool_is_cut() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    append_many(&mut store, inbox, 0, 2);
    world.flush();
    drop(store);
    append_junk(&world.path("spool/00000001.seg"), &[0xa5; 300]);
    // A second segment whose header never made it.
    std::fs::write(world.path("spool/00000002.seg"), [0x89, b'S']).unwrap();
    let store = world.open();
    assert_eq!(store.recovery().spool_truncated_bytes, 302);
    assert_eq!(store.messages(inbox).unwrap().len(), 2);
    assert!(!world.path("spool/00000002.seg").exists());
}

#[test]
fn torn_index_tail_is_caught_up_from_the_spool() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 4);
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    store.store_flags(inbox, &uids, FlagsOp::Add, seen, None).unwrap();
    world.flush();
    drop(store);
    truncate_by(&world.index_path(inbox), 10);
    let store = world.open();
    let report = store.recovery().clone();
    assert_eq!(report.index_records_dropped, 1, "{report:?}");
    assert_eq!(report.index_records_added, 1, "{report:?}");
    let metas = store.messages(inbox).unwrap();
    assert_eq!(metas.iter().map(|m| m.uid).collect::<Vec<_>>(), uids);
    assert_eq!(metas[0].flags, seen, "intact records keep their flags");
    assert_eq!(metas[3].flags, Flags::default(), "a rebuilt record has the flags of its append");
    check(&store);
}

#[test]
fn damaged_index_record_is_rebuilt_from_the_spool() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 4);
    world.flush();
    drop(store);
    // Record 1 (the second) starts at 128 + 64.
    flip_byte(&world.index_path(inbox), 128 + 64 + 20);
    let store = world.open();
    let live: Vec<Uid> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    assert_eq!(live, uids);
    assert_eq!(store.recovery().index_records_added, 3);
    for (i, uid) in uids.iter().enumerate() {
        let n = u32::try_from(i).unwrap();
        assert_eq!(&*store.body(inbox, *uid).unwrap(), &message(n, 100 + (i * 37) % 3000)[..]);
    }
}

#[test]
fn deleted_index_is_rebuilt_with_expunges() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let work = store.create_mailbox("Work").unwrap();
    let uids = append_many(&mut store, inbox, 0, 5);
    append_many(&mut store, work, 10, 2);
    store.expunge(inbox, &[uids[1], uids[4]]).unwrap();
    let before = store.mailbox_info(inbox).unwrap();
    world.flush();
    drop(store);
    std::fs::remove_file(world.index_path(inbox)).unwrap();
    let store = world.open();
    assert_eq!(store.recovery().indexes_rebuilt, 1);
    let live: Vec<Uid> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    assert_eq!(live, vec![uids[0], uids[2], uids[3]], "expunged mail stays expunged");
    let after = store.mailbox_info(inbox).unwrap();
    assert_eq!(after.uid_next, before.uid_next);
    assert_eq!(after.uid_validity, before.uid_validity);
    assert_eq!(store.messages(work).unwrap().len(), 2);
    check(&store);
}

#[test]
fn torn_log_tail_is_cut() {
    let mut world = World::new();
    let mut store = world.open();
    store.create_mailbox("Kept").unwrap();
    world.flush();
    drop(store);
    append_junk(&world.path("mailboxes.log"), b"\x20\x00\x00\x00garbage-that-is-not-a-record");
    let mut store = world.open();
    assert!(store.recovery().log_truncated_bytes > 0);
    assert!(store.mailbox_id("Kept").is_some());
    store.create_mailbox("After").unwrap();
    world.flush();
    drop(store);
    let store = world.open();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    assert!(store.mailbox_id("After").is_some());
}

#[test]
fn damaged_log_header_salvages_mailboxes() {
    let mut world = World::new();
    let mut store = world.open();
    let work = store.create_mailbox("Work").unwrap();
    append_many(&mut store, work, 0, 3);
    world.flush();
    // The first mutation after the creations are durable seals the index headers.
    store.subscribe("Work").unwrap();
    world.flush();
    drop(store);
    flip_byte(&world.path("mailboxes.log"), 20);
    let store = world.open();
    assert_eq!(store.recovery().mailboxes_salvaged, 2, "INBOX and Work");
    let salvaged = store.mailbox_id(&format!("Recovered/{:08}", work.0)).unwrap();
    assert_eq!(salvaged, work);
    assert_eq!(store.messages(work).unwrap().len(), 3);
    assert!(store.mailbox_id("INBOX").is_some());
    assert!(world.path("mailboxes.log.bad").exists());
    assert!(store.recovery().log_replaced);
    check(&store);
}

#[test]
fn unsealed_strays_are_not_salvaged() {
    let mut world = World::new();
    let mut store = world.open();
    let work = store.create_mailbox("Work").unwrap();
    world.flush();
    drop(store);
    // Work's creation was flushed but never sealed (no mutation after the flush): as far as
    // the store can tell, its log record might never have been durable.
    flip_byte(&world.path("mailboxes.log"), 20);
    let mut store = world.open();
    assert_eq!(store.recovery().mailboxes_salvaged, 0);
    assert_eq!(store.mailboxes().len(), 1);
    let fresh = store.create_mailbox("New").unwrap();
    assert!(fresh.0 > work.0, "the stray's id is not given again");
}

#[test]
fn stray_index_files_are_removed() {
    let mut world = World::new();
    let store = world.open();
    drop(store);
    std::fs::write(world.path("mbox/00000077.idx"), b"stray").unwrap();
    std::fs::write(world.path("mbox/00000000.idx.tmp"), b"half").unwrap();
    let mut store = world.open();
    assert!(!world.path("mbox/00000000.idx.tmp").exists(), "temporary files go at once");
    assert!(world.path("mbox/00000077.idx").exists(), "strays wait for the next flush");
    world.flush();
    store.create_mailbox("Next").unwrap();
    assert!(!world.path("mbox/00000077.idx").exists());
    assert_eq!(store.mailbox_id("Next").unwrap().0, 78, "the stray's id is not given again");
    check(&store);
}

#[test]
fn checkpoints_bound_the_scan_on_open() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let big = vec![b'x'; 4 << 20];
    for _ in 0..5 {
        store.append(inbox, &big, b"", Flags::default(), None).unwrap();
    }
    world.flush();
    // The next mutation sees the durable spool end and writes it into the index headers.
    store.append(inbox, b"small", b"", Flags::default(), None).unwrap();
    world.flush();
    // The big appends' index records were written unsynced; the header write above made the
    // round sync them, so only now may a header claim the checkpoint past them.
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), ..Flags::default() };
    store.store_flags(inbox, &[Uid::new(6).unwrap()], FlagsOp::Add, seen, None).unwrap();
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(store.recovery().spool_records_scanned, 1, "{:?}", store.recovery());
    assert_eq!(store.messages(inbox).unwrap().len(), 6);
}

#[test]
fn keyword_bits_whose_definition_was_lost_are_never_reused() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 2);
    let urgent = store.keyword_bits(inbox, &["urgent"]).unwrap();
    let flags = Flags { system: SystemFlags(SystemFlags::FLAGGED), keywords: urgent };
    store.store_flags(inbox, &uids[..1], FlagsOp::Add, flags, None).unwrap();
    world.flush();
    drop(store);
    // The keyword's log record (24 + 6 bytes, padded to 32) is lost; the index record that
    // uses its bit is not: what a crash may leave when both were in flight.
    truncate_by(&world.path("mailboxes.log"), 32);
    let mut store = world.open();
    assert_eq!(store.recovery().keywords_voided, 1);
    let first = store.message(inbox, uids[0]).unwrap().unwrap();
    assert_eq!(first.flags.keywords, Keywords(0), "the lost keyword is gone");
    assert_eq!(first.flags.system, SystemFlags(SystemFlags::FLAGGED));
    let health = store.keyword_bits(inbox, &["health"]).unwrap();
    assert_eq!(health, Keywords(0b10), "the void bit is not given again");
    assert_eq!(store.keywords(inbox).unwrap().len(), 2);
    let fresh = store.keyword_bits(inbox, &["urgent"]).unwrap();
    assert_eq!(fresh, Keywords(0b100), "a name never matches a void bit");
    check(&store);
    drop(store);
    let store = world.open();
    assert_eq!(store.recovery().keywords_voided, 0);
    let first = store.message(inbox, uids[0]).unwrap().unwrap();
    assert_eq!(first.flags.keywords, Keywords(0), "still masked after a reopen");
}
