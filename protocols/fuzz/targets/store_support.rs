//! What the store targets (`store_spool`, `store_index`, `store_log`) share: a small store
//! built once on the simulated disk, the edit an input makes to one of its files, and the
//! checks run on the edited store.
//!
//! An input is `[control, offset_low, offset_high, payload...]`. `control & 3` picks the edit
//! of the chosen file: 0 replaces its bytes with the payload, 1 writes the payload at the
//! offset, 2 cuts the file at the offset and appends the payload, 3 XORs the payload into the
//! file from the offset. `(control >> 2) & 31` picks the file among those of the target's kind.
//! `control & 0x80` reseals the file after the edit: every checksum the harness can recompute
//! (headers, index records, spool and log records, per `core/FORMAT.md`) is made right again,
//! so the input reaches the checks behind the checksums (lengths, ids, flags, order), which a
//! random edit almost never does otherwise.
//!
//! Expectations for every edited store:
//! * nothing panics (open, recovery, every read, a write after recovery, reconstruct);
//! * an opened store keeps its invariants (`check_invariants`), and every message it lists is
//!   either read back at its RFC822.SIZE or refused with a typed error;
//! * recovery settles: after the open and one flush round, a write (append, flag change,
//!   expunge) then a flush, a reopen sees exactly what the first store showed, and needs no
//!   further repair;
//! * after a successful `reconstruct`, the store opens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

use skua_core::disk::sim::{CrashMode, SimDisk};
use skua_core::disk::{Disk, DiskFile, Flush, OpenMode};
use skua_core::store::{UserStore, reconstruct};
use skua_core::types::{Flags, FlagsOp, InternalDate, Keywords, SystemFlags, Uid};

/// The user's directory on the simulated disk.
pub const USER_DIR: &str = "users/fuzz";

/// A file kind the store targets edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `spool/NNNNNNNN.seg`
    Spool,
    /// `mbox/NNNNNNNN.idx`
    Index,
    /// `mailboxes.log`
    Log,
}

fn flush(disk: &SimDisk) {
    if let Some(round) = disk.flush_begin() {
        let epoch = round.epoch();
        round.run().expect("the simulated disk flushes");
        disk.flush_end(epoch);
    }
}

fn uids(values: &[u32]) -> Vec<Uid> {
    values.iter().map(|&v| Uid::new(v).expect("non-zero")).collect()
}

fn message(number: u32) -> Vec<u8> {
    format!(
        "From: a@example.org\r\nSubject: message {number}\r\nContent-Type: text/plain\r\n\r\n\
         body {number}\r\n{}\r\n",
        "x".repeat(usize::try_from(number).expect("small") * 40)
    )
    .into_bytes()
}

/// Builds the store every case starts from: three mailboxes (one renamed), keywords, flags,
/// an expunge (a spool tombstone), a copy, a subscription, all flushed.
fn build() -> SimDisk {
    let disk = SimDisk::new();
    let dir = Path::new(USER_DIR);
    let mut store = UserStore::open(Rc::new(disk.clone()), dir).expect("a new store opens");
    let inbox = store.mailbox_id("INBOX").expect("INBOX");
    let work = store.create_mailbox("Work").expect("create");
    store.create_mailbox("Old").expect("create");
    let keywords = store.keyword_bits(inbox, &["$Junk", "project"]).expect("keywords");
    let date = InternalDate { unix_seconds: 1_700_000_000, zone_minutes: 60 };
    for number in 1..=5 {
        let flags = Flags {
            system: SystemFlags(if number % 2 == 0 { SystemFlags::SEEN } else { 0 }),
            keywords: if number == 3 { keywords } else { Keywords::default() },
        };
        store.append(inbox, &message(number), b"cache", flags, Some(date)).expect("append");
    }
    for number in 6..=7 {
        store.append(work, &message(number), b"", Flags::default(), None).expect("append");
    }
    flush(&disk);
    let flagged = Flags { system: SystemFlags(SystemFlags::FLAGGED), keywords: Keywords(0) };
    store.store_flags(inbox, &uids(&[1, 4]), FlagsOp::Add, flagged, None).expect("store");
    store.expunge(inbox, &uids(&[2])).expect("expunge");
    store.copy(inbox, &uids(&[3]), work).expect("copy");
    let renamed = store.rename_mailbox("Old", "Archive/Old").expect("rename");
    assert!(matches!(renamed, skua_core::store::Renamed::Done));
    store.subscribe("Work").expect("subscribe");
    flush(&disk);
    drop(store);
    disk
}

/// A fresh copy of the starting store.
fn fresh() -> SimDisk {
    static TEMPLATE: OnceLock<SimDisk> = OnceLock::new();
    TEMPLATE.get_or_init(build).crash(0, CrashMode::DropPending)
}

/// The files of `kind` in the starting store, sorted.
fn files(disk: &SimDisk, kind: Kind) -> Vec<PathBuf> {
    let dir = Path::new(USER_DIR);
    let (sub, suffix) = match kind {
        Kind::Spool => ("spool", ".seg"),
        Kind::Index => ("mbox", ".idx"),
        Kind::Log => return vec![dir.join("mailboxes.log")],
    };
    let names = disk.list_dir(&dir.join(sub)).expect("the directory exists");
    names.iter().filter(|n| n.ends_with(suffix)).map(|n| dir.join(sub).join(n)).collect()
}

fn read_all(disk: &SimDisk, path: &Path) -> Vec<u8> {
    let file = disk.open(path, OpenMode::Existing).expect("the file exists");
    let mut bytes = vec![0; usize::try_from(file.len().expect("len")).expect("small")];
    file.read_exact_at(&mut bytes, 0).expect("read");
    bytes
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn get_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn put_crc(bytes: &mut [u8], at: usize, crc: u32) {
    bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// `crc32c` seeded with a file's nonce, as record checksums are (`core/FORMAT.md`).
fn nonce_crc(nonce: u64, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&nonce.to_le_bytes()), bytes)
}

/// Recomputes every checksum of `bytes` (a file of `kind`) that its structure lets us find.
fn reseal(kind: Kind, bytes: &mut [u8]) {
    let (header, crc_at) = match kind {
        Kind::Spool | Kind::Log => (64, 60),
        Kind::Index => (128, 124),
    };
    if bytes.len() < header {
        return;
    }
    let crc = crc32c::crc32c(&bytes[..crc_at]);
    put_crc(bytes, crc_at, crc);
    let mut at = header;
    match kind {
        Kind::Index => {
            while at + 64 <= bytes.len() {
                let crc = crc32c::crc32c(&bytes[at..at + 60]);
                put_crc(bytes, at + 60, crc);
                at += 64;
            }
        }
        Kind::Spool | Kind::Log => {
            let nonce = get_u64(bytes, if kind == Kind::Spool { 24 } else { 16 });
            let fixed = if kind == Kind::Spool { 48 } else { 24 };
            while at + fixed <= bytes.len() {
                let size = if kind == Kind::Spool {
                    u64::from(get_u32(bytes, at + 8)) + 48
                } else {
                    u64::from(get_u32(bytes, at))
                };
                let Some(end) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)) else {
                    break;
                };
                if size < fixed as u64 || end > bytes.len() {
                    break;
                }
                let crc = nonce_crc(nonce, &bytes[at + 8..end]);
                put_crc(bytes, at + 4, crc);
                at += usize::try_from(size.div_ceil(8) * 8).expect("small");
            }
        }
    }
}

/// True for the files that hit a finding not fixed yet (see `protocols/fuzz/README.md`,
/// "Findings"; each is pinned by an ignored test in `core/tests/fuzz_findings.rs`). Remove a
/// clause with the fix it waits for.
fn known_finding(kind: Kind, bytes: &[u8], original: &[u8]) -> bool {
    // No store finding is open (all nine were fixed in core; see the README). A new one gets
    // its clause here, with its pinned test in `core/tests/fuzz_findings.rs`.
    let _ = (kind, bytes, original);
    false
}

/// Applies the input's edit to a fresh store; `None` for an input too short to say one.
fn edited(kind: Kind, data: &[u8], skip_known: bool) -> Option<SimDisk> {
    let (&[control, low, high], payload) = data.split_first_chunk::<3>()?;
    let disk = fresh();
    let candidates = files(&disk, kind);
    let path = &candidates[usize::from((control >> 2) & 31) % candidates.len()];
    let original = read_all(&disk, path);
    let mut bytes = original.clone();
    let offset = usize::from(u16::from_le_bytes([low, high])) % (bytes.len() + 1);
    match control & 3 {
        0 => bytes = payload.to_vec(),
        1 => {
            let end = offset + payload.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[offset..end].copy_from_slice(payload);
        }
        2 => {
            bytes.truncate(offset);
            bytes.extend_from_slice(payload);
        }
        _ => {
            let len = bytes.len();
            for (i, &mask) in payload.iter().enumerate().take(len) {
                bytes[(offset + i) % len] ^= mask;
            }
        }
    }
    if control & 0x80 != 0 {
        reseal(kind, &mut bytes);
    }
    if skip_known && known_finding(kind, &bytes, &original) {
        return None;
    }
    let file = disk.open(path, OpenMode::Existing).expect("the file exists");
    file.set_len(0).expect("truncate");
    file.write_all_at(&bytes, 0).expect("write");
    flush(&disk);
    Some(disk)
}

/// What a store shows: each mailbox by name with its id, UIDVALIDITY, UIDNEXT and messages
/// (UID, flags, size, and whether the body read back at that size).
type Snapshot = BTreeMap<String, (u32, u32, u32, Vec<(u32, Flags, u32, bool)>)>;

fn snapshot(store: &UserStore<SimDisk>) -> Snapshot {
    let mut shown = Snapshot::new();
    for info in store.mailboxes() {
        let mut messages = Vec::new();
        if let Ok(metas) = store.messages(info.id) {
            for meta in metas {
                let body = store.body(info.id, meta.uid);
                if let Ok(body) = &body {
                    assert_eq!(body.len(), meta.size as usize, "a body read at another size");
                }
                let _ = store.cache(info.id, meta.uid);
                messages.push((meta.uid.get(), meta.flags, meta.size, body.is_ok()));
            }
        }
        let entry = (info.id.0, info.uid_validity.get(), info.uid_next.get(), messages);
        shown.insert(info.name, entry);
    }
    shown
}

fn open(disk: &SimDisk) -> Result<UserStore<SimDisk>, String> {
    UserStore::open(Rc::new(disk.clone()), Path::new(USER_DIR)).map_err(|e| format!("{e:?}"))
}

/// A write after recovery: the store must take it or refuse it with a typed error.
fn write_after_recovery(store: &mut UserStore<SimDisk>) {
    let Some(inbox) = store.mailbox_id("INBOX") else {
        panic!("INBOX always exists after open");
    };
    let _ = store.append(inbox, &message(99), b"", Flags::default(), None);
    let live: Vec<Uid> =
        store.messages(inbox).map(|m| m.iter().map(|m| m.uid).collect()).unwrap_or_default();
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    let _ = store.store_flags(inbox, &live, FlagsOp::Add, seen, None);
    if let Some(first) = live.first() {
        let _ = store.expunge(inbox, &[*first]);
    }
}

/// Runs every check on the store of `kind` edited by `data`, skipping known findings.
pub fn check(kind: Kind, data: &[u8]) {
    if let Some(disk) = edited(kind, data, true) {
        check_disk(&disk);
    }
}

/// [`check`] without skipping known findings (for the tests that pin them).
#[allow(dead_code, reason = "used by core/tests/fuzz_findings.rs, not by the targets")]
pub fn check_unfiltered(kind: Kind, data: &[u8]) {
    if let Some(disk) = edited(kind, data, false) {
        check_disk(&disk);
    }
}

fn check_disk(disk: &SimDisk) {
    let damaged = disk.crash(0, CrashMode::DropPending);
    match open(disk) {
        Ok(mut store) => {
            #[cfg(debug_assertions)]
            store.check_invariants();
            let _ = snapshot(&store);
            flush(disk);
            write_after_recovery(&mut store);
            flush(disk);
            #[cfg(debug_assertions)]
            store.check_invariants();
            let before = snapshot(&store);
            drop(store);
            let again = open(disk).unwrap_or_else(|e| panic!("a recovered store reopens: {e}"));
            assert!(again.recovery().is_clean(), "a second repair: {:?}", again.recovery());
            assert_eq!(snapshot(&again), before, "a reopen shows another store");
        }
        Err(_) => {
            // A typed refusal is allowed (the operator restores or runs reconstruct).
        }
    }
    if reconstruct(Rc::new(damaged.clone()), Path::new(USER_DIR)).is_ok() {
        flush(&damaged);
        open(&damaged).unwrap_or_else(|e| panic!("a reconstructed store opens: {e}"));
    }
}
