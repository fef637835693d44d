//! What per-reader `\Seen` costs on a 100,000-message mailbox (simulated disk, in memory):
//! marking everything seen in one call (100,000 modseq rises), a reader's UNSEEN, reading a
//! set, the pathological alternating set, single marks on a fragmented and on a compact set,
//! and replaying `seen.log` after a restart.
//!
//! Ignored by default; run in release:
//! `cargo test -p skua-core --release --features sim --test store_seen_perf -- --ignored
//! --nocapture`. Prints times; it asserts no timing (machines are noisy), only the counts.
#![cfg(feature = "sim")]

use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use skua_core::disk::sim::SimDisk;
use skua_core::disk::{Disk, Flush};
use skua_core::store::{SeenError, UserStore};
use skua_core::types::{Flags, Keywords, SystemFlags, Uid};

const MESSAGES: u32 = 100_000;

fn flush(disk: &SimDisk) {
    if let Some(job) = disk.flush_begin() {
        let epoch = job.epoch();
        job.run().expect("flush runs");
        disk.flush_end(epoch);
    }
}

fn uid(n: u32) -> Uid {
    Uid::new(n).expect("non-zero")
}

#[test]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
fn seen_costs() {
    let disk = SimDisk::new();
    let mut store = UserStore::open(Rc::new(disk.clone()), Path::new("users/bob")).unwrap();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let flags = Flags { system: SystemFlags(0), keywords: Keywords(0) };
    for i in 0..MESSAGES {
        let message = format!("Subject: {i}\r\n\r\nx\r\n");
        store.append(inbox, message.as_bytes(), b"", flags, None).unwrap();
    }
    flush(&disk);
    store.load_seen().unwrap();
    let all: Vec<Uid> = (1..=MESSAGES).map(uid).collect();
    let t = Instant::now();
    let changed = store.set_reader_seen(inbox, "alice", &all, true).unwrap();
    println!("mark {MESSAGES} seen in one call: {:?}", t.elapsed());
    assert_eq!(changed.len(), MESSAGES as usize);
    let t = Instant::now();
    assert_eq!(store.reader_unseen(inbox, "alice").unwrap(), 0);
    println!("reader_unseen: {:?}", t.elapsed());
    let t = Instant::now();
    assert_eq!(store.reader_seen(inbox, "alice").unwrap().ranges().len(), 1);
    println!("reader_seen (one range): {:?}", t.elapsed());
    let odd: Vec<Uid> = (1..=8191).step_by(2).map(uid).collect();
    let t = Instant::now();
    store.set_reader_seen(inbox, "carol", &odd, true).unwrap();
    println!("alternating set, 4096 ranges in one call: {:?}", t.elapsed());
    let t = Instant::now();
    for k in 0..1000 {
        let refused = store.set_reader_seen(inbox, "carol", &[uid(8194 + 2 * k)], true);
        assert!(matches!(refused, Err(SeenError::TooManyRanges)));
    }
    println!("a mark refused on the full fragmented set: {:?} per call", t.elapsed() / 1000);
    let t = Instant::now();
    for k in (2..=8190).step_by(8).take(1000) {
        store.set_reader_seen(inbox, "carol", &[uid(k)], true).unwrap();
    }
    println!("a mark joining two ranges of it: {:?} per call", t.elapsed() / 1000);
    let before = store.seen_log_bytes().unwrap();
    let t = Instant::now();
    for k in 1..=1000 {
        store.set_reader_seen(inbox, "dave", &[uid(k)], true).unwrap();
    }
    let bytes = store.seen_log_bytes().unwrap() - before;
    println!(
        "a mark on a compact set: {:?} per call, {} log bytes each",
        t.elapsed() / 1000,
        bytes / 1000
    );
    flush(&disk);
    drop(store);
    let mut store = UserStore::open(Rc::new(disk.clone()), Path::new("users/bob")).unwrap();
    let t = Instant::now();
    store.load_seen().unwrap();
    println!("load_seen of a {} byte log: {:?}", store.seen_log_bytes().unwrap(), t.elapsed());
    assert_eq!(store.reader_unseen(inbox, "dave").unwrap(), MESSAGES - 1000);
}
