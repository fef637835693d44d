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
    let (uid, modseq) =
        store.append(inbox, b"Subject: hi\r\n\r\nbody", b"cache", flags, None).unwrap();
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
    let stale =
        store.store_flags(inbox, &uids[..1], FlagsOp::Remove, keyword, Some(ModSeq(1))).unwrap();
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

/// Runs one flush round of the simulated disk (also for `admin/purge_tests.rs`).
pub(super) fn flush(disk: &SimDisk) {
    use crate::disk::{Disk, Flush};
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().unwrap();
        disk.flush_end(epoch);
    }
}

/// Fuzz finding 6 (`core/CRASH-FINDINGS.md` 17), in the case spool order cannot catch: an index
/// record before the checkpoint, in an older segment than the checkpoint's, rewritten with a
/// checksum that holds to a length past its segment's end. Recovery trusted it (the spool end
/// it checks is the last segment's), so an intact message could not be read. Now the entry is
/// cut (`open.rs`, `cut_past_segment_ends`) and the message comes back from the spool.
#[test]
fn an_index_entry_past_its_segment_end_is_cut_and_caught_up() {
    use crate::disk::{Disk, DiskFile, OpenMode};
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    // Two messages of 40 MiB: the second starts segment 2.
    let big = |byte: u8| vec![byte; 40 << 20];
    let (first, _) = store.append(inbox, &big(b'a'), b"", Flags::default(), None).unwrap();
    store.append(inbox, &big(b'b'), b"", Flags::default(), None).unwrap();
    flush(&disk);
    // Later mutations write the checkpoint (past both records) into the header.
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    for op in [FlagsOp::Add, FlagsOp::Remove, FlagsOp::Add] {
        store.store_flags(inbox, &[first], op, seen, None).unwrap();
        flush(&disk);
    }
    drop(store);
    let path = index::index_path(Path::new("u"), inbox);
    let file = disk.open(&path, OpenMode::Existing).unwrap();
    let mut header = [0u8; index::HEADER_BYTES];
    file.read_exact_at(&mut header, 0).unwrap();
    let header = index::IndexHeader::decode(&header, &path).unwrap().unwrap();
    let mut record = [0u8; index::RECORD_BYTES];
    let at = index::HEADER_BYTES as u64;
    file.read_exact_at(&mut record, at).unwrap();
    let mut entry = Entry::decode(&record).unwrap();
    assert_eq!((entry.spool.segment, header.checkpoint.segment()), (1, 2), "the setup");
    entry.spool.len += 4096;
    file.write_all_at(&entry.encode(), at).unwrap();
    flush(&disk);
    let store = open(&disk);
    assert_eq!(store.recovery().index_records_dropped, 2, "{:?}", store.recovery());
    assert_eq!(store.body(inbox, first).unwrap().len(), 40 << 20);
    store.check_invariants();
    drop(store);
    assert!(open(&disk).recovery().is_clean());
}

/// A small mixed workload with a flush after every few operations, crashed after each step in
/// every mode: the store always opens, its invariants hold, and every flushed append is there
/// with its bytes.
#[test]
fn crash_after_any_step_keeps_what_was_flushed() {
    use crate::disk::sim::CrashMode;
    for seed in 0..16u64 {
        let disk = Rc::new(SimDisk::new());
        let mut store = open(&disk);
        let inbox = store.mailbox_id("INBOX").unwrap();
        let mut acked: Vec<(MailboxId, Uid, Vec<u8>)> = Vec::new();
        let mut pending: Vec<(MailboxId, Uid, Vec<u8>)> = Vec::new();
        for step in 0..18u32 {
            let body = format!("message {seed}/{step}").repeat(1 + (step as usize * 97) % 40);
            match step % 6 {
                3 if step > 6 => {
                    let uids: Vec<Uid> =
                        store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
                    let seen =
                        Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
                    store.store_flags(inbox, &uids[..1], FlagsOp::Add, seen, None).unwrap();
                    store.expunge(inbox, &uids[1..2]).unwrap();
                    pending.retain(|(m, u, _)| !(*m == inbox && *u == uids[1]));
                    acked.retain(|(m, u, _)| !(*m == inbox && *u == uids[1]));
                }
                4 => {
                    let name = format!("box{step}");
                    store.create_mailbox(&name).unwrap();
                }
                5 => {
                    flush(&disk);
                    acked.append(&mut pending);
                }
                _ => {
                    let target = store.mailboxes().last().unwrap().id;
                    let target = if step % 2 == 0 { inbox } else { target };
                    let (uid, _) = store
                        .append(target, body.as_bytes(), b"c", Flags::default(), None)
                        .unwrap();
                    pending.push((target, uid, body.into_bytes()));
                }
            }
            for mode in CrashMode::ALL {
                let crashed = Rc::new(disk.crash(seed * 1000 + u64::from(step), mode));
                let recovered = UserStore::open(crashed.clone(), Path::new("u")).unwrap();
                recovered.check_invariants();
                let first_report = recovered.recovery().clone();
                for (mailbox, uid, bytes) in &acked {
                    let body = recovered.body(*mailbox, *uid);
                    assert_eq!(&*body.unwrap(), &bytes[..], "seed {seed} step {step} {mode:?}");
                }
                // Recovery itself must leave a store that reopens cleanly.
                flush(&crashed);
                drop(recovered);
                let again = UserStore::open(crashed, Path::new("u")).unwrap();
                again.check_invariants();
                assert!(
                    again.recovery().is_clean(),
                    "seed {seed} step {step} {mode:?}\nfirst {:?}\nsecond {:?}\n{:?}",
                    first_report,
                    again.recovery(),
                    again.mailboxes()
                );
            }
        }
    }
}

/// The log's length on the live image.
fn log_len(disk: &Rc<SimDisk>) -> u64 {
    use crate::disk::{DiskFile, OpenMode};
    let file = disk.open(Path::new("u/mailboxes.log"), OpenMode::Existing).unwrap();
    file.len().unwrap()
}

#[test]
fn log_compaction_replaces_a_grown_log_and_survives_crashes() {
    use crate::disk::sim::CrashMode;
    let disk = Rc::new(SimDisk::new());
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.keyword_bits(inbox, &["$Junk", "Work"]).unwrap();
    let gone = store.create_mailbox("Gone").unwrap();
    store.delete_mailbox("Gone").unwrap();
    store.create_mailbox("Kept/Child").unwrap();
    store.subscribe("Kept/Child").unwrap();
    while log_len(&disk) < crate::limits::LOG_COMPACT_MIN_BYTES {
        store.subscribe("churn").unwrap();
        store.unsubscribe("churn").unwrap();
    }
    let grown = log_len(&disk);
    let expect = |store: &UserStore<SimDisk>| {
        let names: Vec<String> = store.mailboxes().into_iter().map(|m| m.name).collect();
        assert_eq!(names, vec!["INBOX", "Kept", "Kept/Child"]);
        // Unflushed (un)subscriptions of the steps may or may not survive a crash.
        let mut subscriptions = store.subscriptions();
        subscriptions.retain(|name| !name.starts_with("step"));
        assert_eq!(subscriptions, vec!["Kept/Child"]);
        assert_eq!(store.keywords(inbox).unwrap(), vec!["$Junk", "Work"]);
        store.check_invariants();
    };
    // Flush, start (a mutation sees the durable epoch), flush, finish (the next mutation).
    let mut crash_points = Vec::new();
    for step in 0..3 {
        flush(&disk);
        store.subscribe(&format!("step{step}")).unwrap();
        store.unsubscribe(&format!("step{step}")).unwrap();
        crash_points.push(disk.crash(u64::from(step as u8), CrashMode::TornSubset));
        crash_points.push(disk.crash(u64::from(step as u8), CrashMode::Subset));
        crash_points.push(disk.crash(u64::from(step as u8), CrashMode::KeepPending));
    }
    assert!(log_len(&disk) * 4 < grown, "{} -> {}", grown, log_len(&disk));
    expect(&store);
    assert_eq!(store.subscriptions(), vec!["Kept/Child"]);
    let fresh = store.create_mailbox("After").unwrap();
    assert!(fresh.0 > gone.0, "a compacted log still never reuses ids");
    for crashed in crash_points {
        let crashed = Rc::new(crashed);
        let reopened = UserStore::open(crashed, Path::new("u")).unwrap();
        expect(&reopened);
    }
    flush(&disk);
    drop(store);
    let store = open(&disk);
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    assert!(store.mailbox_id("After").is_some());
    assert!(!disk.exists(Path::new("u/mailboxes.log.tmp")));
}

/// Pins the byte layout of every record kind (`core/FORMAT.md`): a layout change must come
/// with a FORMAT.md change and a new golden here.
mod golden {
    use super::super::codec::SpoolPos;
    use super::super::index::{Entry, IndexHeader};
    use super::super::log::LogRecord;
    use super::super::record::{MessageHead, ThreadTrailer, encode_message, encode_tombstone};
    use super::super::spool::SpoolRef;
    use crate::types::{Flags, InternalDate, Keywords, MailboxId, SystemFlags, Uid, UidValidity};
    use std::num::NonZeroU32;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn log_record_layout() {
        let record = LogRecord::Create {
            id: MailboxId(3),
            uid_validity: UidValidity(NonZeroU32::new(0x0102_0304).unwrap()),
            name: "Box".into(),
        };
        assert_eq!(
            hex(&record.encode(7)),
            "1b00000009f5566e01000000030000000403020103000000426f780000000000"
        );
    }

    #[test]
    fn spool_record_layout() {
        let head = MessageHead {
            mailbox: MailboxId(2),
            uid: Uid::new(5).unwrap(),
            date: InternalDate { unix_seconds: 0x1122_3344, zone_minutes: -60 },
            flags: Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0b101) },
            message_len: 3,
            cache_len: 1,
            email_id_stored: false,
            thread_keys: None,
        };
        assert_eq!(
            hex(&encode_message(9, &head, b"abc", b"z", None, None)),
            "0100000073d96b80040000000200000005000000c4ff010044332211000000000300000001000000\
             05000000000000006162637a00000000"
        );
        // Spool 1.2: the EMAILID, then the THREADID trailer (thread id, key id, reserved, one
        // key hash); byte 1 has bits 0 and 1, byte 2 the key count.
        let threaded = MessageHead { email_id_stored: true, thread_keys: Some(1), ..head };
        let trailer = ThreadTrailer { thread_id: 0x40, key_id: 0xa1b2_c3d4, keys: vec![0x77] };
        assert_eq!(
            hex(&encode_message(9, &threaded, b"abc", b"z", Some(0x1_0000_0040), Some(&trailer))),
            "01030100e9030ec7240000000200000005000000c4ff010044332211000000000300000001000000\
             05000000000000006162637a40000000010000004000000000000000d4c3b2a10000000077000000\
             0000000000000000"
        );
        assert_eq!(
            hex(&encode_tombstone(9, MailboxId(2), 6, &[Uid::new(5).unwrap()])),
            "02000000f34d04930400000002000000010000000000000006000000000000000000000000000000\
             00000000000000000500000000000000"
        );
    }

    #[test]
    fn index_layout() {
        let header = IndexHeader {
            mailbox: MailboxId(2),
            uid_validity: UidValidity(NonZeroU32::new(77).unwrap()),
            uid_next: 6,
            highest_modseq: 9,
            checkpoint: SpoolPos::new(1, 64),
            messages: 1,
            sealed: true,
            first_recent_uid: 5,
        };
        let expected_header = "89534b490d0a1a0a010002008000000040000000020000004d000000060000000900000000000000\
             40000000010000000100000001000000050000000000000000000000000000000000000000000000\
             00000000000000000000000000000000000000000000000000000000000000000000000000000000\
             00000000bd055f64";
        assert_eq!(hex(&header.encode()), expected_header);
        // A format_minor 0 header (before first_recent_uid; offset 56 reserved) reads with
        // nothing recent: first_recent_uid = uid_next.
        let minor_0 = "89534b490d0a1a0a010000008000000040000000020000004d000000060000000900000000000000\
             40000000010000000100000001000000000000000000000000000000000000000000000000000000\
             00000000000000000000000000000000000000000000000000000000000000000000000000000000\
             00000000a0d08432";
        let bytes: Vec<u8> = (0..minor_0.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&minor_0[i..i + 2], 16).unwrap())
            .collect();
        let bytes: [u8; 128] = bytes.try_into().unwrap();
        let decoded = IndexHeader::decode(&bytes, std::path::Path::new("x")).unwrap().unwrap();
        assert_eq!(decoded, IndexHeader { first_recent_uid: 6, ..header });
        let entry = Entry {
            uid: Uid::new(5).unwrap(),
            flags: Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0b101) },
            expunged: false,
            modseq: 8,
            date: InternalDate { unix_seconds: 0x1122_3344, zone_minutes: -60 },
            size: 3,
            spool: SpoolRef { segment: 1, offset: 64, len: 56, crc: 0xaabb_ccdd },
            save_date: 0x6655_4433,
        };
        assert_eq!(
            hex(&entry.encode()),
            "0500000001000000080000000000000005000000000000004433221100000000c4ff000003000000\
             010000004000000038000000ddccbbaa33445566fd674375"
        );
        // A record written before format 1.2 (offset 56 zero) reads with an unknown save date.
        let minor_1 = "0500000001000000080000000000000005000000000000004433221100000000c4ff000003000000\
             010000004000000038000000ddccbbaa0000000015d506aa";
        let bytes: Vec<u8> = (0..minor_1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&minor_1[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(Entry::decode(&bytes), Some(Entry { save_date: 0, ..entry }));
    }
}
