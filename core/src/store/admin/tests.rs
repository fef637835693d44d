//! The admin operations on the simulated disk: a sound store checks clean, a byte flipped in
//! a spool record or an index record is found by the file pass without changing a byte, and
//! the examine and quota reports say what the store holds.

use std::path::Path;
use std::rc::Rc;

use super::*;
use crate::disk::sim::SimDisk;
use crate::disk::{DiskFile, OpenMode};
use crate::store::index;
use crate::types::{Flags, Keywords, SystemFlags};

const DIR: &str = "users/8e/alice";

fn store_with_mail(disk: &Rc<SimDisk>) -> UserStore<SimDisk> {
    let mut store = UserStore::open(disk.clone(), Path::new(DIR)).unwrap();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
    for i in 0..3 {
        let body = format!("Subject: {i}\r\n\r\nbody number {i}");
        store.append(inbox, body.as_bytes(), b"", seen, None).unwrap();
    }
    store
}

/// Every file of the store and its bytes.
fn files(disk: &SimDisk, dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for name in disk.list_dir(&dir).unwrap() {
            let path = dir.join(name);
            match disk.open(&path, OpenMode::Existing) {
                Ok(file) => {
                    let mut bytes = vec![0u8; usize::try_from(file.len().unwrap()).unwrap()];
                    file.read_exact_at(&mut bytes, 0).unwrap();
                    out.push((path, bytes));
                }
                Err(_) => pending.push(path),
            }
        }
    }
    out.sort();
    out
}

fn flip(disk: &SimDisk, path: &Path, offset: u64) {
    let file = disk.open(path, OpenMode::Existing).unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x04], offset).unwrap();
}

#[test]
fn a_sound_store_checks_clean_and_counts_what_it_verified() {
    let disk = Rc::new(SimDisk::new());
    let mut store = store_with_mail(&disk);
    let report = check(&mut store, "alice").unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.indexes, 1);
    assert_eq!(report.index_records, 3);
    assert_eq!(report.spool_records, 3);
    assert_eq!(report.mailboxes_recounted, 1);
}

#[test]
fn a_flipped_spool_byte_is_found_and_nothing_is_changed() {
    let disk = Rc::new(SimDisk::new());
    let store = store_with_mail(&disk);
    let segment = store.spool.path(store.spool.segments()[0]);
    drop(store);
    let all = files(&disk, Path::new(DIR));
    let (_, bytes) = all.iter().find(|(p, _)| *p == segment).unwrap();
    let at = bytes.windows(13).position(|w| w == b"body number 1").unwrap();
    flip(&disk, &segment, at as u64);
    let before = files(&disk, Path::new(DIR));
    let report = check_files(&*disk, Path::new(DIR), "alice").unwrap();
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].file, segment.display().to_string());
    assert!(report.findings[0].what.contains("UID 2) fails its checksum"), "{report:?}");
    assert_eq!(report.spool_records, 2, "the other two verified");
    assert_eq!(files(&disk, Path::new(DIR)), before, "the file pass only reads");
}

#[test]
fn a_flipped_index_byte_is_found() {
    let disk = Rc::new(SimDisk::new());
    let store = store_with_mail(&disk);
    let inbox = store.mailbox_id("INBOX").unwrap();
    let path = index::index_path(Path::new(DIR), inbox);
    drop(store);
    let offset = (index::HEADER_BYTES + 2 * index::RECORD_BYTES + 9) as u64;
    flip(&disk, &path, offset);
    let report = check_files(&*disk, Path::new(DIR), "alice").unwrap();
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].file, path.display().to_string());
    assert!(report.findings[0].what.starts_with("index record 2 (offset 256)"), "{report:?}");
    assert_eq!(report.index_records, 2);
    flip(&disk, &path, 5); // the header's magic
    let report = check_files(&*disk, Path::new(DIR), "alice").unwrap();
    assert!(report.findings.iter().any(|f| f.what == "index header fails its checksum"));
}

#[test]
fn examine_and_quota_report_the_store() {
    let disk = Rc::new(SimDisk::new());
    let mut store = store_with_mail(&disk);
    let examined = store.examine("alice", "inbox").unwrap();
    assert_eq!(examined.mailbox, "INBOX");
    assert_eq!(examined.records.iter().map(|r| r.uid).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(examined.records.iter().all(|r| r.flags == ["\\Seen"]));
    assert_eq!(examined.messages, 3);
    assert_eq!(examined.unseen, 0);
    assert!(matches!(store.examine("alice", "Nowhere"), Err(AdminError::NoSuchMailbox { .. })));
    let quota = store.quota_report("alice").unwrap();
    assert!(quota.counters_exact());
    assert_eq!(quota.messages, 3);
    assert_eq!(quota.storage_bytes, examined.size_bytes);
    assert_eq!(quota.limits_from, "given");
}

#[test]
fn quota_fix_sets_the_counters_to_a_recount() {
    let disk = Rc::new(SimDisk::new());
    let mut store = store_with_mail(&disk);
    assert!(!store.quota_fix(), "a fresh store's counters are exact");
    let inbox = store.mailbox_id("INBOX").unwrap();
    store.skew_quota_for_test(inbox);
    assert!(!store.quota_report("alice").unwrap().counters_exact());
    let mut findings = CheckReport { user: "alice".to_owned(), ..CheckReport::default() };
    store.check_counters(&mut findings).unwrap();
    assert_eq!(findings.findings.len(), 2, "the mailbox counters and the totals: {findings:?}");
    assert!(store.quota_fix(), "they differed");
    let quota = store.quota_report("alice").unwrap();
    assert!(quota.counters_exact(), "{quota:?}");
    assert_eq!((quota.messages, quota.storage_bytes), (3, quota.recount_storage_bytes));
    let mut findings = CheckReport { user: "alice".to_owned(), ..CheckReport::default() };
    store.check_counters(&mut findings).unwrap();
    assert!(findings.is_clean(), "{findings:?}");
    assert!(!store.quota_fix(), "nothing left to correct");
}

#[test]
fn store_users_lists_only_stores_in_their_own_bucket() {
    let disk = SimDisk::new();
    assert!(store_users(&disk).unwrap().is_empty(), "no users/ at all");
    for name in ["alice", "bob"] {
        let user = UserName::new(name).unwrap();
        disk.create_dir_all(&crate::paths::user_dir(&user)).unwrap();
    }
    disk.create_dir_all(Path::new("users/00/misplaced")).unwrap();
    assert_eq!(store_users(&disk).unwrap(), ["alice", "bob"]);
    assert!(existing_store_dir(&disk, "alice").is_ok());
    assert!(matches!(existing_store_dir(&disk, "carol"), Err(AdminError::NoSuchUser(_))));
    assert!(matches!(existing_store_dir(&disk, "../x"), Err(AdminError::NoSuchUser(_))));
}
