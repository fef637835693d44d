//! Regression tests for issue 7, defect 9 ("A flipped bit locks a user out"): a bit flip in the
//! format-version field of a spool segment, index or mailbox-log header read as "newer
//! format", because the version was checked before the header's checksum: login answered
//! `NO [UNAVAILABLE]`, LMTP 451 for ever, and `reconstruct` refused too.
//!
//! Invariant: a header whose checksum fails is a damaged header and goes down the repair path
//! (the segment's nonce is taken back from its records, the index header rebuilt from the log
//! with its records kept, the log header rewritten with its nonce); only an intact header of a
//! newer major is refused. After any flip in any version field (major and minor) of any
//! header, the store opens with every message, flag and mailbox name, takes a delivery, and
//! `reconstruct` works.
#![cfg(feature = "sim")]

mod store_support;

use std::path::Path;
use std::rc::Rc;
use store_support::flush;

use skua_core::disk::sim::{CrashMode, Damage, SimDisk};
use skua_core::error::{OpenError, StorageError};
use skua_core::store::UserStore;
use skua_core::types::{Flags, FlagsOp, SystemFlags};

const USER: &str = "users/aa/alice";
const SEEN: Flags =
    Flags { system: SystemFlags(SystemFlags::SEEN), keywords: skua_core::types::Keywords(0) };

fn open(disk: &SimDisk) -> Result<UserStore<SimDisk>, OpenError> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER))
}

/// A store with two messages in INBOX (the first `\Seen`) and one in `Archive`, all durable;
/// returns the disk as a clean restart finds it.
fn populated() -> SimDisk {
    let disk = SimDisk::new();
    let mut store = open(&disk).unwrap();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let archive = store.create_mailbox("Archive").unwrap();
    let (a, _) =
        store.append(inbox, b"Subject: a\r\n\r\nA\r\n", b"ca", Flags::default(), None).unwrap();
    store.append(inbox, b"Subject: b\r\n\r\nB\r\n", b"cb", Flags::default(), None).unwrap();
    store.append(archive, b"Subject: c\r\n\r\nC\r\n", b"cc", Flags::default(), None).unwrap();
    flush(&disk);
    store.store_flags(inbox, &[a], FlagsOp::Add, SEEN, None).unwrap();
    flush(&disk);
    drop(store);
    disk.crash(0, CrashMode::DropPending)
}

/// What a user must find: (mailbox, body, seen).
const EXPECTED: [(&str, &[u8], bool); 3] = [
    ("INBOX", b"Subject: a\r\n\r\nA\r\n", true),
    ("INBOX", b"Subject: b\r\n\r\nB\r\n", false),
    ("Archive", b"Subject: c\r\n\r\nC\r\n", false),
];

fn contents(store: &UserStore<SimDisk>) -> Vec<(String, Vec<u8>, bool)> {
    let mut found = Vec::new();
    for info in store.mailboxes() {
        for meta in store.messages(info.id).unwrap() {
            let body = store.body(info.id, meta.uid).unwrap().to_vec();
            found.push((info.name.clone(), body, meta.flags.system.contains(SystemFlags::SEEN)));
        }
    }
    found.sort();
    found
}

fn expected() -> Vec<(String, Vec<u8>, bool)> {
    let mut expected: Vec<_> =
        EXPECTED.iter().map(|(m, b, s)| ((*m).to_owned(), b.to_vec(), *s)).collect();
    expected.sort();
    expected
}

/// The header files of the store: log, first segment, INBOX's index, Archive's index.
fn header_files() -> [String; 4] {
    [
        format!("{USER}/mailboxes.log"),
        format!("{USER}/spool/00000001.seg"),
        format!("{USER}/mbox/00000000.idx"),
        format!("{USER}/mbox/00000001.idx"),
    ]
}

fn check_after_flip(file: &str, offset: usize, bit: u8) -> Vec<String> {
    let label = format!("{file} byte {offset} bit {bit}");
    let mut out = Vec::new();
    let disk = populated();
    disk.damage(Path::new(file), Damage::Flip { offset, mask: 1 << bit }).unwrap();
    let for_reconstruct = disk.crash(0, CrashMode::KeepPending);
    // Login: the store opens, with everything in it.
    let mut store = match open(&disk) {
        Ok(store) => store,
        Err(error) => return vec![format!("{label}: open refused: {error}")],
    };
    if contents(&store) != expected() {
        out.push(format!("{label}: after open {:?} ({:?})", contents(&store), store.recovery()));
    }
    // Delivery: a new message goes in, and everything survives a restart.
    let inbox = store.mailbox_id("INBOX").unwrap();
    match store.append(inbox, b"Subject: d\r\n\r\nD\r\n", b"cd", Flags::default(), None) {
        Ok(_) => {}
        Err(error) => out.push(format!("{label}: delivery refused: {error}")),
    }
    flush(&disk);
    drop(store);
    let restarted = disk.crash(0, CrashMode::DropPending);
    match open(&restarted) {
        Ok(store) => {
            let mut want = expected();
            want.push(("INBOX".to_owned(), b"Subject: d\r\n\r\nD\r\n".to_vec(), false));
            want.sort();
            if contents(&store) != want {
                out.push(format!("{label}: after a restart {:?}", contents(&store)));
            }
            if !store.recovery().is_clean() {
                out.push(format!("{label}: the repair did not stick: {:?}", store.recovery()));
            }
        }
        Err(error) => out.push(format!("{label}: reopen refused: {error}")),
    }
    // `reconstruct` on the damaged store.
    match skua_core::store::reconstruct(Rc::new(for_reconstruct.clone()), Path::new(USER)) {
        Ok(_) => {
            flush(&for_reconstruct);
            match open(&for_reconstruct.crash(0, CrashMode::DropPending)) {
                Ok(store) => {
                    let names: Vec<(String, Vec<u8>)> =
                        contents(&store).into_iter().map(|(m, b, _)| (m, b)).collect();
                    let want: Vec<(String, Vec<u8>)> =
                        expected().into_iter().map(|(m, b, _)| (m, b)).collect();
                    if names != want {
                        out.push(format!("{label}: after reconstruct {names:?}"));
                    }
                }
                Err(error) => out.push(format!("{label}: open after reconstruct: {error}")),
            }
        }
        Err(error) => out.push(format!("{label}: reconstruct refused: {error}")),
    }
    out
}

#[test]
fn a_flipped_version_bit_in_any_header_locks_nobody_out() {
    let mut failures = Vec::new();
    for file in header_files() {
        // format_major (bytes 8..10) and format_minor (10..12).
        for offset in 8..12 {
            for bit in 0..8 {
                failures.extend(check_after_flip(&file, offset, bit));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The other side of the rule: an intact header of a newer major is refused, not "repaired".
#[test]
fn an_intact_header_of_a_newer_major_is_refused() {
    let disk = populated();
    let path = format!("{USER}/mbox/00000000.idx");
    let mut header = disk.durable_contents(Path::new(&path)).unwrap()[..128].to_vec();
    header[8] = 9;
    let crc = crc32c_of(&header[..124]);
    for (i, byte) in crc.to_le_bytes().iter().enumerate() {
        let (offset, mask) = (124 + i, header[124 + i] ^ byte);
        if mask != 0 {
            disk.damage(Path::new(&path), Damage::Flip { offset, mask }).unwrap();
        }
    }
    disk.damage(Path::new(&path), Damage::Flip { offset: 8, mask: 1 ^ 9 }).unwrap();
    match open(&disk) {
        Err(OpenError::Storage(StorageError::UnsupportedFormat { major: 9, .. })) => {}
        Err(other) => panic!("wrong error: {other:?}"),
        Ok(_) => panic!("a newer format must be refused"),
    }
}

/// CRC-32C (Castagnoli), bitwise: the tests need no dependency for one header.
fn crc32c_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
