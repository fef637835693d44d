//! SPECIAL-USE attributes, default folders and RENAME INBOX on the simulated disk.
//!
//! Invariants: an attribute replays, follows its mailbox's id through RENAME and log
//! compaction, and vanishes with DELETE; the default folders are made all together or not at
//! all, and only once (a deleted one does not come back); RENAME INBOX never loses a message
//! to a crash (issue 9: sessions with INBOX selected used to keep reading the renamed
//! mailbox; INBOX now keeps its id and its messages are copied out, then expunged once the
//! copies are durable, so a crash leaves a message in INBOX, in the target or in both).

use std::path::Path;
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, Fate, SimDisk};
use skua_core::disk::{Disk, DiskFile, Flush, OpenMode};
use skua_core::error::MailboxError;
use skua_core::store::{DefaultFolder, InboxStep, Renamed, SpecialUse, UserStore};
use skua_core::types::{Flags, MailboxId};

const DIR: &str = "u";

fn flush(disk: &SimDisk) {
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().unwrap();
        disk.flush_end(epoch);
    }
}

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(DIR)).unwrap()
}

fn log_len(disk: &SimDisk) -> u64 {
    disk.open(&Path::new(DIR).join("mailboxes.log"), OpenMode::Existing).unwrap().len().unwrap()
}

fn uses_of(store: &UserStore<SimDisk>, name: &str) -> Option<SpecialUse> {
    store.mailbox_id(name).map(|id| store.special_use(id))
}

fn defaults() -> Vec<DefaultFolder> {
    [
        ("Drafts", SpecialUse::DRAFTS),
        ("Sent", SpecialUse::SENT),
        ("Trash", SpecialUse::TRASH),
        ("Junk", SpecialUse::JUNK),
        ("Archive", SpecialUse::ARCHIVE),
    ]
    .into_iter()
    .map(|(name, uses)| DefaultFolder { name: name.to_owned(), uses })
    .collect()
}

#[test]
fn special_use_replays_follows_rename_and_compaction_and_vanishes_with_delete() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let sent = store.create_mailbox_with_use("Sent", SpecialUse::SENT).unwrap();
    let both = SpecialUse::ARCHIVE.union(SpecialUse::JUNK);
    store.create_mailbox_with_use("Old/Spam", both).unwrap();
    assert_eq!(uses_of(&store, "Old"), Some(SpecialUse::NONE), "a superior has none");
    assert!(matches!(store.rename_mailbox("Sent", "Sent Items").unwrap(), Renamed::Done));
    assert!(matches!(
        store.create_mailbox_with_use("Sent Items", SpecialUse::SENT),
        Err(MailboxError::AlreadyExists)
    ));
    store.provision(&[]).unwrap();
    flush(&disk);
    drop(store);
    let mut store = open(&disk);
    assert_eq!(store.mailbox_id("Sent Items"), Some(sent));
    assert_eq!(store.special_use(sent), SpecialUse::SENT);
    assert_eq!(uses_of(&store, "Old/Spam"), Some(both));
    assert!(store.is_provisioned());
    // Grow the log past its compaction threshold with subscription churn.
    let long = "x".repeat(200);
    let before = log_len(&disk);
    for _ in 0..800 {
        store.subscribe(&long).unwrap();
        store.unsubscribe(&long).unwrap();
    }
    let grown = log_len(&disk);
    assert!(grown > before + 256 * 1024);
    for _ in 0..4 {
        flush(&disk);
        store.subscribe("INBOX").unwrap();
    }
    assert!(log_len(&disk) < grown / 2, "the log was compacted");
    flush(&disk);
    drop(store);
    let mut store = open(&disk);
    assert_eq!(store.special_use(sent), SpecialUse::SENT, "kept by compaction");
    assert_eq!(uses_of(&store, "Old/Spam"), Some(both));
    assert!(store.is_provisioned(), "the mark is kept by compaction");
    store.delete_mailbox("Sent Items").unwrap();
    assert_eq!(store.special_use(sent), SpecialUse::NONE);
    store.create_mailbox("Sent Items").unwrap();
    assert_eq!(uses_of(&store, "Sent Items"), Some(SpecialUse::NONE), "not inherited by name");
}

#[test]
fn default_folders_are_made_once_and_a_deleted_one_stays_deleted() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    // A folder the user made before keeps its id and gets the attribute.
    let sent = store.create_mailbox("Sent").unwrap();
    assert!(!store.is_provisioned());
    assert!(store.provision(&defaults()).unwrap());
    assert_eq!(store.mailbox_id("Sent"), Some(sent));
    for folder in defaults() {
        assert_eq!(uses_of(&store, &folder.name), Some(folder.uses), "{}", folder.name);
    }
    let subscribed = ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"];
    assert_eq!(store.subscriptions(), subscribed);
    store.delete_mailbox("Junk").unwrap();
    assert!(!store.provision(&defaults()).unwrap(), "only once");
    flush(&disk);
    drop(store);
    let mut store = open(&disk);
    assert!(!store.provision(&defaults()).unwrap(), "only once, across opens");
    assert_eq!(store.mailbox_id("Junk"), None);
}

#[test]
fn default_folders_are_all_or_nothing_after_a_crash() {
    let mut tears = 0;
    for fillers in 0..24 {
        let disk = SimDisk::new();
        let mut store = open(&disk);
        for filler in 0..fillers {
            store.create_mailbox(&format!("Filler{filler}")).unwrap();
        }
        flush(&disk);
        assert!(store.provision(&defaults()).unwrap());
        // Tear the log write at each sector boundary inside it, or drop it.
        let mut torn = false;
        let (crashed, _) = disk.crash_where(|op| {
            let boundary = (op.offset / 512 + 1) * 512;
            let is_log = op.path.ends_with("mailboxes.log");
            if is_log && op.kind == "write" && boundary < op.offset + op.len {
                torn = true;
                return Fate::Torn(usize::try_from(boundary - op.offset).unwrap());
            }
            Fate::Kept
        });
        tears += usize::from(torn);
        for (seed, crashed) in (0..8)
            .map(|seed| (seed, disk.crash(seed, CrashMode::TornSubset)))
            .chain([(99, crashed)])
        {
            let store = open(&crashed);
            let made = defaults().iter().filter(|f| store.mailbox_id(&f.name).is_some()).count();
            let subscribed = store.subscriptions().len();
            if store.is_provisioned() {
                assert_eq!((made, subscribed), (5, 6), "seed {seed}, fillers {fillers}");
            } else {
                assert_eq!((made, subscribed), (0, 0), "seed {seed}, fillers {fillers}");
            }
        }
    }
    assert!(tears > 0, "some filler count made the batch straddle a sector");
}

fn append(store: &mut UserStore<SimDisk>, mailbox: MailboxId, n: usize) {
    let body = format!("Subject: m{n}\r\n\r\n{}\r\n", "y".repeat(n));
    store.append(mailbox, body.as_bytes(), b"cache", Flags::default(), None).unwrap();
}

/// The sizes of the live messages of `name` (each test message has its own size).
fn sizes(store: &UserStore<SimDisk>, name: &str) -> Vec<u32> {
    let Some(id) = store.mailbox_id(name) else { return Vec::new() };
    store.messages(id).unwrap().iter().map(|m| m.size).collect()
}

#[test]
fn rename_inbox_never_loses_a_message_to_a_crash() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    for n in 0..9 {
        append(&mut store, inbox, n);
    }
    flush(&disk);
    let all = sizes(&store, "INBOX");
    let Renamed::Inbox(mut job) = store.rename_mailbox("INBOX", "Moved").unwrap() else {
        panic!("INBOX moves")
    };
    let mut crashes = 0;
    loop {
        // Crash here, with any subset of the pending writes kept, torn at sectors.
        for seed in 0..12 {
            let crashed = disk.crash(seed, CrashMode::TornSubset);
            let after = open(&crashed);
            let mut kept = sizes(&after, "INBOX");
            kept.extend(sizes(&after, "Moved"));
            for size in &all {
                assert!(kept.contains(size), "message of size {size} lost, seed {seed}");
            }
            assert_eq!(after.mailbox_id("INBOX"), Some(inbox));
            crashes += 1;
        }
        match store.rename_inbox_step(&mut job, 2).unwrap() {
            InboxStep::More => {}
            InboxStep::WaitDurable(epoch) => {
                assert!(sizes(&store, "INBOX").len() == all.len(), "nothing expunged yet");
                flush(&disk);
                assert!(disk.epoch_durable() >= epoch);
            }
            InboxStep::Done => break,
        }
    }
    assert!(crashes > 12 * 8, "crashed between every step");
    assert!(sizes(&store, "INBOX").is_empty());
    assert_eq!(sizes(&store, "Moved"), all);
    store.check_invariants();
}
