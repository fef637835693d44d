//! The grant index (`store/grants.rs`): `granted` records of `mailboxes.log` across restarts,
//! compaction and crashes, and its bound (`core/FORMAT.md`, "mailboxes.log", grant records).
//!
//! Crash invariant: a noted grant acknowledged by a flush survives every crash; one not yet
//! flushed is there whole or not at all.
#![cfg(feature = "sim")]

use std::path::Path;
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, SimDisk};
use skua_core::disk::{Disk, DiskFile, OpenMode};
use skua_core::limits::GRANTS_RECEIVED_MAX;
use skua_core::store::{Noted, UserStore};

mod store_support;

fn flush(disk: &SimDisk) {
    store_support::flush(disk);
}

const DIR: &str = "users/7f/alice";

fn open(disk: &SimDisk) -> UserStore<SimDisk> {
    UserStore::open(Rc::new(disk.clone()), Path::new(DIR)).expect("opens")
}

fn log_len(disk: &SimDisk) -> u64 {
    let path = Path::new(DIR).join("mailboxes.log");
    disk.open(&path, OpenMode::Existing).unwrap().len().unwrap()
}

#[test]
fn grants_are_noted_once_and_survive_restart_and_compaction() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    assert!(store.granted_by().is_empty());
    assert_eq!(store.note_grant("Bob").unwrap(), Noted::New);
    let before = log_len(&disk);
    assert_eq!(store.note_grant("bob").unwrap(), Noted::Known, "names ignore case");
    assert_eq!(log_len(&disk), before, "a known grant writes nothing");
    assert_eq!(store.note_grant("carol").unwrap(), Noted::New);
    for bad in ["", "-bob", "anyone", "authenticated", "a b"] {
        assert_eq!(store.note_grant(bad).unwrap(), Noted::Refused, "{bad:?}");
    }
    flush(&disk);
    drop(store);
    let mut store = open(&disk);
    assert_eq!(store.granted_by(), ["bob", "carol"]);
    // Churn far past the compaction threshold: the log is compacted (more than once) on the
    // way, and each compacted copy rewrites the grants.
    let long = "x".repeat(900);
    let mut written = 0;
    for _ in 0..1000 {
        let before = log_len(&disk);
        store.subscribe(&long).unwrap();
        store.unsubscribe(&long).unwrap();
        written += log_len(&disk).saturating_sub(before);
        flush(&disk);
    }
    assert!(log_len(&disk) < written / 2, "compacted: {} of {written}", log_len(&disk));
    flush(&disk);
    drop(store);
    assert_eq!(open(&disk).granted_by(), ["bob", "carol"], "kept by compaction");
}

#[test]
fn the_index_is_bounded() {
    let disk = SimDisk::new();
    let mut store = open(&disk);
    for i in 0..GRANTS_RECEIVED_MAX {
        assert_eq!(store.note_grant(&format!("user{i}")).unwrap(), Noted::New);
    }
    let before = log_len(&disk);
    assert_eq!(store.note_grant("one-too-many").unwrap(), Noted::Refused);
    assert_eq!(log_len(&disk), before);
    flush(&disk);
    drop(store);
    assert_eq!(open(&disk).granted_by().len(), GRANTS_RECEIVED_MAX);
}

#[test]
fn every_crash_keeps_the_flushed_grants_and_a_prefix_of_the_rest() {
    let owners = ["bob", "carol", "dave", "erin"];
    let mut checked = 0;
    for acked in 0..=owners.len() {
        let disk = SimDisk::new();
        let mut store = open(&disk);
        flush(&disk);
        for (i, owner) in owners.iter().enumerate() {
            if i == acked {
                flush(&disk);
            }
            assert_eq!(store.note_grant(owner).unwrap(), Noted::New);
        }
        if acked == owners.len() {
            flush(&disk);
        }
        for mode in CrashMode::ALL {
            for seed in 0..4 {
                let got = open(&disk.crash(seed, mode)).granted_by();
                assert!(got.len() >= acked, "acked {acked} {mode:?} {seed}: {got:?}");
                assert_eq!(got[..], owners[..got.len()], "acked {acked} {mode:?} {seed}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "{checked}");
}
