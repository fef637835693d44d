//! Messages on the real disk: append and read back byte-identical, flags, expunge, copy, and
//! everything surviving a reopen.

mod store_support;

use skua_core::error::{AppendError, CopyError, KeywordError, ReadError};
use skua_core::limits::{KEYWORDS_PER_MAILBOX_MAX, MESSAGE_BYTES_MAX};
use skua_core::types::{Flags, FlagsOp, InternalDate, Keywords, ModSeq, SystemFlags, Uid};
use store_support::{World, append_many, check, message};

fn seen() -> Flags {
    Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) }
}

#[test]
fn append_reads_back_byte_identical() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let date = InternalDate { unix_seconds: 1_600_000_000, zone_minutes: -420 };
    let sizes = [1usize, 7, 8, 9, 4095, 4096, 1 << 20, 3 << 20];
    let mut uids = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let body = message(u32::try_from(i).unwrap(), size);
        let cache = vec![u8::try_from(i).unwrap(); i * 3];
        let (uid, modseq) = store.append(inbox, &body, &cache, seen(), Some(date)).unwrap();
        assert_eq!(uid.get(), u32::try_from(i).unwrap() + 1, "UIDs count from 1");
        assert!(modseq > ModSeq(1));
        uids.push(uid);
    }
    let check = |store: &skua_core::store::UserStore<_>| {
        let metas = store.messages(inbox).unwrap();
        assert_eq!(metas.len(), sizes.len());
        for (i, meta) in metas.iter().enumerate() {
            let body = message(u32::try_from(i).unwrap(), sizes[i]);
            assert_eq!(&*store.body(inbox, meta.uid).unwrap(), &body[..]);
            assert_eq!(store.cache(inbox, meta.uid).unwrap().len(), i * 3);
            assert_eq!(meta.size as usize, sizes[i]);
            assert_eq!(meta.internal_date, date);
            assert_eq!(meta.flags, seen());
        }
        check(store);
    };
    check(&store);
    world.flush();
    drop(store);
    let store = world.open();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    check(&store);
    let info = store.mailbox_info(inbox).unwrap();
    assert_eq!(info.messages as usize, sizes.len());
    assert_eq!(info.unseen, 0);
    assert_eq!(info.size, sizes.iter().map(|&s| s as u64).sum::<u64>());
    assert_eq!(info.uid_next.get() as usize, sizes.len() + 1);
}

#[test]
fn append_refuses_what_cannot_be_stored() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let huge = vec![0u8; MESSAGE_BYTES_MAX as usize + 1];
    assert!(matches!(
        store.append(inbox, &huge, b"", Flags::default(), None),
        Err(AppendError::TooLarge { .. })
    ));
    let gone = skua_core::types::MailboxId(999);
    assert!(matches!(
        store.append(gone, b"x", b"", Flags::default(), None),
        Err(AppendError::NoSuchMailbox)
    ));
    assert!(matches!(store.body(inbox, Uid::MIN), Err(ReadError::NoSuchMessage)));
    assert!(matches!(store.prefetch(inbox, Uid::MIN), Err(ReadError::NoSuchMessage)));
    let (uid, _) = store.append(inbox, b"hello", b"", Flags::default(), None).unwrap();
    store.prefetch(inbox, uid).unwrap();
    assert_eq!(&*store.body(inbox, uid).unwrap(), b"hello");
    assert!(matches!(store.messages(gone), Err(ReadError::NoSuchMailbox)));
    assert_eq!(store.mailbox_info(inbox).unwrap().messages, 1);
}

#[test]
fn flags_and_modseqs() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 4);
    let before = store.mailbox_info(inbox).unwrap().highest_modseq;
    let work = store.keyword_bits(inbox, &["Work", "$Label1"]).unwrap();
    assert_eq!(work, Keywords(0b11));
    assert_eq!(store.keyword_bits(inbox, &["work"]).unwrap(), Keywords(0b01), "case-insensitive");
    let flagged = Flags { system: SystemFlags(SystemFlags::FLAGGED), keywords: work };
    let outcome = store.store_flags(inbox, &uids, FlagsOp::Add, flagged, None).unwrap();
    assert_eq!(outcome.changed.len(), 4);
    assert!(outcome.changed.iter().all(|&(_, m)| m > before));
    let again = store.store_flags(inbox, &uids, FlagsOp::Add, flagged, None).unwrap();
    assert!(again.changed.is_empty(), "no change, no new modseq");
    let removed = store
        .store_flags(
            inbox,
            &uids[..1],
            FlagsOp::Remove,
            Flags { keywords: Keywords(0b10), ..Flags::default() },
            None,
        )
        .unwrap();
    assert_eq!(removed.changed.len(), 1);
    let modseq_of_first = removed.changed[0].1;
    let conditional = store
        .store_flags(
            inbox,
            &uids[..2],
            FlagsOp::Replace,
            seen(),
            Some(ModSeq(modseq_of_first.0 - 1)),
        )
        .unwrap();
    assert_eq!(conditional.modified, vec![uids[0]], "changed since");
    assert_eq!(conditional.changed.len(), 1);
    let metas = store.messages(inbox).unwrap();
    assert_eq!(metas[0].flags.keywords, Keywords(0b01));
    assert_eq!(metas[1].flags, seen());
    assert_eq!(metas[2].flags, flagged);
    let highest = store.mailbox_info(inbox).unwrap().highest_modseq;
    assert!(metas.iter().all(|m| m.modseq <= highest));
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(store.messages(inbox).unwrap(), metas);
    assert_eq!(store.keywords(inbox).unwrap(), vec!["Work", "$Label1"]);
    assert_eq!(store.mailbox_info(inbox).unwrap().highest_modseq, highest);
}

#[test]
fn keyword_table_is_bounded() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    for i in 0..KEYWORDS_PER_MAILBOX_MAX {
        store.keyword_bits(inbox, &[&format!("k{i}")]).unwrap();
    }
    assert!(matches!(store.keyword_bits(inbox, &["one-more"]), Err(KeywordError::TooMany)));
    assert!(matches!(store.keyword_bits(inbox, &["\\Seen"]), Err(KeywordError::Invalid)));
    assert_eq!(store.keyword_bits(inbox, &["K0"]).unwrap(), Keywords(1));
}

#[test]
fn expunge_keeps_uids_and_modseqs_moving_forward() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 5);
    let before = store.mailbox_info(inbox).unwrap();
    let modseq = store.expunge(inbox, &[uids[4], uids[1], uids[1]]).unwrap();
    assert!(modseq > before.highest_modseq);
    let after = store.mailbox_info(inbox).unwrap();
    assert_eq!(after.messages, 3);
    assert_eq!(after.uid_next, before.uid_next, "UIDNEXT stays after expunging the last");
    assert_eq!(after.highest_modseq, modseq);
    assert_eq!(store.message(inbox, uids[1]).unwrap(), None);
    assert_eq!(store.expunge(inbox, &[uids[1]]).unwrap(), modseq, "nothing left to expunge");
    let (next, _) = store.append(inbox, b"new", b"", Flags::default(), None).unwrap();
    assert_eq!(next, before.uid_next, "a UID is never reused");
    world.flush();
    drop(store);
    let store = world.open();
    let live: Vec<Uid> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    assert_eq!(live, vec![uids[0], uids[2], uids[3], next]);
}

#[test]
fn copy_makes_independent_copies() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let archive = store.create_mailbox("Archive").unwrap();
    store.keyword_bits(archive, &["Other"]).unwrap();
    let uids = append_many(&mut store, inbox, 0, 3);
    let label = store.keyword_bits(inbox, &["Label"]).unwrap();
    let flags = Flags { system: SystemFlags(SystemFlags::ANSWERED), keywords: label };
    store.store_flags(inbox, &uids[1..2], FlagsOp::Replace, flags, None).unwrap();
    let pairs = store.copy(inbox, &[uids[2], uids[1], uids[0]], archive).unwrap();
    assert_eq!(pairs.iter().map(|p| p.0).collect::<Vec<_>>(), uids, "source order");
    assert_eq!(pairs[0].1, Uid::MIN);
    let copied = store.message(archive, pairs[1].1).unwrap().unwrap();
    assert_eq!(copied.flags.system, SystemFlags(SystemFlags::ANSWERED));
    assert_eq!(copied.flags.keywords, Keywords(0b10), "translated by name");
    assert_eq!(store.keywords(archive).unwrap(), vec!["Other", "Label"]);
    for (source, target) in &pairs {
        assert_eq!(&*store.body(inbox, *source).unwrap(), &*store.body(archive, *target).unwrap());
        assert_eq!(
            &*store.cache(inbox, *source).unwrap(),
            &*store.cache(archive, *target).unwrap()
        );
    }
    store.expunge(inbox, &uids).unwrap();
    assert_eq!(store.messages(archive).unwrap().len(), 3, "copies outlive the originals");
    let gone = skua_core::types::MailboxId(999);
    assert!(matches!(store.copy(inbox, &uids, gone), Err(CopyError::NoSuchTarget)));
    assert!(matches!(store.copy(gone, &uids, inbox), Err(CopyError::NoSuchMailbox)));
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(store.messages(archive).unwrap().len(), 3);
    assert_eq!(store.messages(inbox).unwrap().len(), 0);
}

#[test]
fn change_counter_moves_on_every_mutation() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let start = store.change_counter();
    store.append(inbox, b"x", b"", Flags::default(), None).unwrap();
    let after_append = store.change_counter();
    assert!(after_append > start);
    store.store_flags(inbox, &[Uid::MIN], FlagsOp::Add, seen(), None).unwrap();
    assert!(store.change_counter() > after_append);
    let unchanged = store.change_counter();
    let _ = store.messages(inbox).unwrap();
    assert_eq!(store.change_counter(), unchanged, "reads change nothing");
}

/// A rough throughput probe, not a benchmark with a baseline: run with
/// `cargo test -p skua-core --release --test store_messages -- --ignored --nocapture`.
#[test]
#[ignore = "timing probe; run by hand in release mode"]
fn append_and_read_throughput() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let body = message(1, 4096);
    let count = 100_000u32;
    let start = std::time::Instant::now();
    for i in 0..count {
        store.append(inbox, &body, b"cache", Flags::default(), None).unwrap();
        if i % 4096 == 4095 {
            world.flush();
        }
    }
    world.flush();
    let appended = start.elapsed();
    let start = std::time::Instant::now();
    let mut bytes = 0usize;
    for meta in store.messages(inbox).unwrap() {
        bytes += store.body(inbox, meta.uid).unwrap().len();
    }
    let read = start.elapsed();
    assert_eq!(bytes, body.len() * count as usize);
    println!(
        "{count} appends of 4 KiB (flush every 4096): {:.1} us each; body reads: {:.2} us each",
        appended.as_secs_f64() * 1e6 / f64::from(count),
        read.as_secs_f64() * 1e6 / f64::from(count)
    );
    let start = std::time::Instant::now();
    drop(store);
    let store = world.open();
    println!("reopen of {count} messages: {:?}", start.elapsed());
    assert_eq!(store.mailbox_info(inbox).unwrap().messages, count);
}

#[test]
fn expunge_history_and_live_iteration() {
    let mut world = World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let uids = append_many(&mut store, inbox, 0, 5);
    let before = store.mailbox_info(inbox).unwrap().highest_modseq;
    let first = store.expunge(inbox, &[uids[1]]).unwrap();
    let second = store.expunge(inbox, &[uids[3], uids[4]]).unwrap();
    assert_eq!(store.expunged_since(inbox, before).unwrap(), vec![uids[1], uids[3], uids[4]]);
    assert_eq!(store.expunged_since(inbox, first).unwrap(), vec![uids[3], uids[4]]);
    assert!(store.expunged_since(inbox, second).unwrap().is_empty());
    let live: Vec<Uid> = store.live_messages(inbox).unwrap().map(|m| m.uid).collect();
    assert_eq!(live, vec![uids[0], uids[2]]);
    assert_eq!(
        store.live_messages(inbox).unwrap().collect::<Vec<_>>(),
        store.messages(inbox).unwrap()
    );
    world.flush();
    drop(store);
    let store = world.open();
    assert_eq!(store.expunged_since(inbox, first).unwrap(), vec![uids[3], uids[4]]);
}
