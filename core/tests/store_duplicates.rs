//! Duplicate suppression (`duplicates.log`, core/FORMAT.md; issue 10 item 6): the same
//! Message-ID delivered to the same mailbox within the window is stored once, across
//! restarts and crashes.
//!
//! Invariants: a record made durable (a round completed after the next record written with a
//! normal write: every `DUPLICATES_SYNC_EVERY`th) survives any crash, so the same message
//! again is suppressed; the last few records of acknowledged deliveries may be lost, and then
//! one later copy is stored (a duplicate, never a loss); a crash never makes a
//! delivery vanish, because a record only suppresses while the message it names is in the
//! mailbox with the same Message-ID (a record whose append a crash lost suppresses nothing);
//! a message with no Message-ID is never suppressed; the log stays bounded (compaction drops
//! records past the window and replaces the log only once the compacted copy is durable).
#![cfg(feature = "sim")]

mod store_support;

use std::path::Path;
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, SimDisk};
use skua_core::store::{DUPLICATES_RECORDS_MAX, DUPLICATES_SYNC_EVERY, ThreadKeys, UserStore};
use skua_core::types::{Flags, InternalDate, MailboxId, Uid};
use store_support::flush;

const USER: &str = "users/aa/alice";
const DAY: u64 = 86_400;

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER)).expect("the store opens")
}

fn body(message_id: &str, n: u64) -> Vec<u8> {
    if message_id.is_empty() {
        format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
    } else {
        format!("Message-ID: <{message_id}>\r\nSubject: {n}\r\n\r\nbody {n}\r\n").into_bytes()
    }
}

/// What LMTP delivery does (protocols/src/lmtp/deliver.rs): an earlier copy's UID, or a new
/// append with its record. Returns the UID and whether it was suppressed.
fn deliver(
    store: &mut UserStore<SimDisk>,
    id: MailboxId,
    message_id: &str,
    now: i64,
    window: u64,
) -> (Uid, bool) {
    if let Some(uid) = store.duplicate_of(id, message_id, now, window) {
        return (uid, true);
    }
    let keys = ThreadKeys { message_id, in_reply_to: "", references: &[] };
    let date = InternalDate { unix_seconds: now, zone_minutes: 0 };
    let message = body(message_id, now.unsigned_abs());
    let (uid, _) = store
        .append_threaded(id, &message, b"", keys, Flags::default(), Some(date))
        .expect("append");
    store.duplicate_note(id, message_id, uid, now, window);
    (uid, false)
}

/// The live messages of `id` whose body names `message_id`.
fn copies(store: &UserStore<SimDisk>, id: MailboxId, message_id: &str) -> usize {
    let needle = format!("Message-ID: <{message_id}>");
    store
        .messages(id)
        .expect("messages")
        .iter()
        .filter(|m| {
            let body = store.body(id, m.uid).expect("body");
            body.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .count()
}

#[test]
fn the_same_message_id_is_stored_once_per_mailbox_within_the_window() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let other = store.create_mailbox("Lists").unwrap();
    let (first, suppressed) = deliver(&mut store, inbox, "a@x", 1_000, DAY);
    assert!(!suppressed);
    assert_eq!(deliver(&mut store, inbox, "a@x", 1_001, DAY), (first, true), "same transaction");
    assert!(!deliver(&mut store, other, "a@x", 1_002, DAY).1, "another mailbox");
    assert!(!deliver(&mut store, inbox, "b@x", 1_003, DAY).1, "another id");
    assert!(!deliver(&mut store, inbox, "", 1_004, DAY).1, "no Message-ID");
    assert!(!deliver(&mut store, inbox, "", 1_005, DAY).1, "no Message-ID, never suppressed");
    assert!(!deliver(&mut store, inbox, "c@x", 1_006, 0).1, "window 0");
    assert!(!deliver(&mut store, inbox, "c@x", 1_007, 0).1, "window 0: off");
    assert_eq!(store.duplicate_records(), Some(3), "window 0 and no id write nothing");
    flush(&disk);
    drop(store);

    let mut store = open(&disk);
    assert_eq!(deliver(&mut store, inbox, "a@x", 2_000, DAY), (first, true), "after a restart");
    assert_eq!(copies(&store, inbox, "a@x"), 1);
    let late = 1_000 + i64::try_from(DAY).unwrap();
    let (again, suppressed) = deliver(&mut store, inbox, "a@x", late, DAY);
    assert!(!suppressed, "a window later it is stored again");
    assert_eq!(copies(&store, inbox, "a@x"), 2);
    assert_eq!(deliver(&mut store, inbox, "a@x", late + 1, DAY), (again, true), "the new one");
    store.expunge(inbox, &[again]).unwrap();
    assert!(!deliver(&mut store, inbox, "a@x", late + 2, DAY).1, "expunged: stored again");
    assert_eq!(copies(&store, inbox, "a@x"), 2, "the first and the newest");
}

#[test]
fn a_record_whose_append_was_lost_suppresses_nothing() {
    // Delivered to the store under the record's (mailbox, UID) but the message there now is
    // another one: a crash lost the append, and the UID went to the next delivery.
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    flush(&disk);
    let (uid, _) = deliver(&mut store, inbox, "lost@x", 10, DAY);
    // A crash that keeps every pending write except the spool's: the log's record only.
    let mut found = false;
    for seed in 0..200 {
        let crashed = disk.crash(seed, CrashMode::Subset);
        let mut after = open(&crashed);
        if after.message(inbox, uid).unwrap().is_some() {
            continue;
        }
        found = true;
        let (retaken, _) = deliver(&mut after, inbox, "other@x", 20, DAY);
        let (_, suppressed) = deliver(&mut after, inbox, "lost@x", 30, DAY);
        assert!(!suppressed, "seed {seed}: UID {} holds another message", retaken.get());
        assert_eq!(copies(&after, inbox, "lost@x"), 1, "seed {seed}");
    }
    assert!(found, "some crash lost the append");
}

#[test]
fn no_crash_loses_a_synced_record_or_a_delivery() {
    // Thirteen Message-IDs (and messages without one), each delivered more than once: enough
    // records that several rounds each sync the log's earlier unsynced records.
    let id_of =
        |step: usize| if step % 7 == 3 { String::new() } else { format!("m{}@x", step % 13) };
    let mut crashes = 0;
    for workload in 0..2usize {
        let disk = SimDisk::new();
        let mut store = open(&disk);
        let inbox = store.mailbox_id("INBOX").unwrap();
        flush(&disk);
        // Message-IDs in the order their records were written, and how many of those records
        // a completed round made durable: up to the last one written with a normal write.
        let mut recorded: Vec<String> = Vec::new();
        let mut durable_records = 0;
        let mut acknowledged: Vec<String> = Vec::new();
        let mut pending: Vec<String> = Vec::new();
        let mut lost_unsynced = 0;
        for step in workload * 5..workload * 5 + 30 {
            let message_id = id_of(step);
            let now = 100 + i64::try_from(step).unwrap();
            let (_, suppressed) = deliver(&mut store, inbox, &message_id, now, DAY);
            if !suppressed && !message_id.is_empty() {
                recorded.push(message_id.clone());
            }
            pending.push(message_id);
            for mode in CrashMode::ALL {
                for seed in 0..2 {
                    let context = format!("workload {workload} step {step} {mode:?} seed {seed}");
                    let crashed = disk.crash(seed, mode);
                    let mut after = open(&crashed);
                    crashes += 1;
                    for id in acknowledged.iter().filter(|id| !id.is_empty()) {
                        assert!(copies(&after, inbox, id) >= 1, "{context}: {id} kept");
                    }
                    for id in acknowledged_unsynced(&acknowledged, &recorded[..durable_records]) {
                        if !deliver(&mut after, inbox, &id, now + 1, DAY).1 {
                            lost_unsynced += 1;
                        }
                    }
                    for id in &recorded[..durable_records] {
                        assert_eq!(copies(&after, inbox, id), 1, "{context}: {id} stored once");
                        let (_, suppressed) = deliver(&mut after, inbox, id, now + 1, DAY);
                        assert!(suppressed, "{context}: the synced record of {id} was lost");
                    }
                    // The MTA retries what was not acknowledged: it must end up stored (twice
                    // is allowed: a crash may keep the append and lose its record).
                    for id in pending.iter().filter(|id| !id.is_empty()) {
                        deliver(&mut after, inbox, id, now + 2, DAY);
                        assert!(copies(&after, inbox, id) >= 1, "{context}: {id} after retry");
                    }
                }
            }
            if step % 3 == 1 {
                flush(&disk);
                acknowledged.append(&mut pending);
                let every = DUPLICATES_SYNC_EVERY as usize;
                durable_records = recorded.len() / every * every;
            }
        }
        assert!(durable_records >= 8, "the workload synced some records");
        assert!(lost_unsynced > 0, "some crash lost an acknowledged record not yet synced");
    }
    assert_eq!(crashes, 2 * 30 * CrashMode::ALL.len() * 2);
}

/// The acknowledged Message-IDs whose records are not known durable.
fn acknowledged_unsynced(acknowledged: &[String], durable: &[String]) -> Vec<String> {
    acknowledged.iter().filter(|id| !id.is_empty() && !durable.contains(id)).cloned().collect()
}

#[test]
fn the_log_is_compacted_past_the_window_and_stays_bounded() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let window = 1_000;
    // Old deliveries (outside the window by the time compaction runs), then recent ones.
    let total = DUPLICATES_RECORDS_MAX / 4 * 3;
    for n in 0..total {
        let now = if n < total / 2 { 0 } else { 5_000 };
        deliver(&mut store, inbox, &format!("{n}@x"), now, window);
        if n % 512 == 0 {
            flush(&disk);
        }
    }
    flush(&disk);
    assert_eq!(store.duplicate_records(), Some(total));
    // This one writes the compacted copy (and its record to both files); the rename waits.
    deliver(&mut store, inbox, "trigger@x", 5_001, window);
    deliver(&mut store, inbox, "early@x", 5_001, window);
    assert_eq!(store.duplicate_records(), Some(total + 2), "not replaced before durable");
    // A crash now, whatever it keeps, leaves the old log: every acknowledged recent record
    // still suppresses (a copy renamed over the log in its own round could lose them).
    for mode in CrashMode::ALL {
        for seed in 0..4 {
            let crashed = disk.crash(seed, mode);
            let mut after = open(&crashed);
            for n in [total / 2, total - 1] {
                let id = format!("{n}@x");
                assert!(deliver(&mut after, inbox, &id, 5_002, window).1, "{mode:?} {seed} {id}");
            }
        }
    }
    flush(&disk);
    deliver(&mut store, inbox, "next@x", 5_002, window);
    let kept = total - total / 2 + 2; // the recent ones, the trigger and early@x
    assert_eq!(store.duplicate_records(), Some(kept + 1), "replaced: old records dropped");
    // The rename and the record after it are pending: crash in every way.
    for mode in CrashMode::ALL {
        for seed in 0..3 {
            let crashed = disk.crash(seed, mode);
            let mut after = open(&crashed);
            for n in [total / 2, total - 1] {
                let id = format!("{n}@x");
                assert!(deliver(&mut after, inbox, &id, 5_003, window).1, "{mode:?} {seed} {id}");
            }
            assert!(deliver(&mut after, inbox, "trigger@x", 5_003, window).1, "{mode:?} {seed}");
        }
    }
    flush(&disk);
    drop(store);
    let mut store = open(&disk);
    assert!(deliver(&mut store, inbox, "next@x", 5_004, window).1);
    assert!(!deliver(&mut store, inbox, "0@x", 5_004, window).1, "past the window");
    assert_eq!(store.duplicate_records(), Some(kept + 2));
}

/// The same compaction on the real disk: the compacted copy is renamed over the open log (the
/// disk follows the rename and orphans the old file), and a restart reads the copy.
#[test]
fn compaction_on_the_real_disk_renames_over_the_open_log() {
    let mut world = store_support::World::new();
    let mut store = world.open();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let window = 1_000;
    let total = DUPLICATES_RECORDS_MAX / 4 * 3;
    let put = |store: &mut UserStore<_>, id: &str, now: i64| -> bool {
        if store.duplicate_of(inbox, id, now, window).is_some() {
            return true;
        }
        let keys = ThreadKeys { message_id: id, in_reply_to: "", references: &[] };
        let date = InternalDate { unix_seconds: now, zone_minutes: 0 };
        let (uid, _) = store
            .append_threaded(inbox, &body(id, 0), b"", keys, Flags::default(), Some(date))
            .expect("append");
        store.duplicate_note(inbox, id, uid, now, window);
        false
    };
    for n in 0..total {
        put(&mut store, &format!("{n}@x"), if n < total / 2 { 0 } else { 5_000 });
    }
    world.flush();
    assert!(!put(&mut store, "trigger@x", 5_001));
    world.flush();
    assert!(!put(&mut store, "next@x", 5_002));
    world.flush();
    let kept = total - total / 2 + 1;
    assert_eq!(store.duplicate_records(), Some(kept + 1), "replaced");
    assert!(!world.path("duplicates.log.new").exists(), "renamed into place");
    assert!(put(&mut store, &format!("{}@x", total - 1), 5_003), "kept a recent one");
    drop(store);
    let mut store = world.open();
    assert!(put(&mut store, "next@x", 5_004), "after a restart");
    assert!(put(&mut store, &format!("{}@x", total / 2), 5_004));
    assert!(!put(&mut store, "0@x", 5_004), "dropped: past the window");
    assert_eq!(store.duplicate_records(), Some(kept + 2));
}
