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

/// Every record a snapshot of `store` gives, read in batches of at most `bytes_max`.
fn snapshot_records(store: &UserStore<SimDisk>, bytes_max: usize) -> Vec<crate::backup::Record> {
    let mut source = store.backup_begin("alice", 1_000);
    let mut records = Vec::new();
    while !source.is_done() {
        let batch = source.next_records(store, bytes_max).unwrap();
        assert!(!batch.is_empty(), "a batch until the end");
        records.extend(batch);
    }
    assert!(source.next_records(store, bytes_max).unwrap().is_empty(), "nothing after the end");
    records
}

#[test]
fn a_snapshot_holds_the_stores_mailboxes_flags_and_bytes_and_reads_back_from_an_archive() {
    use crate::backup::{Appender, Record, Scan, sha256};
    let disk = Rc::new(SimDisk::new());
    let mut store = store_with_mail(&disk);
    let work = store.create_mailbox("Work").unwrap();
    store.subscribe("Work").unwrap();
    let flagged = store.keyword_bits(work, &["project"]).unwrap();
    let flags = Flags { system: SystemFlags(SystemFlags::FLAGGED), keywords: flagged };
    let date = crate::types::InternalDate { unix_seconds: 1_600_000_000, zone_minutes: 60 };
    store.append(work, b"Subject: w\r\n\r\nwork", b"", flags, Some(date)).unwrap();
    // The same bytes twice: the archive keeps one body.
    store.append(work, b"Subject: 0\r\n\r\nbody number 0", b"", Flags::default(), None).unwrap();
    let records = snapshot_records(&store, 1);
    let Record::Start(start) = &records[0] else { panic!("{:?}", records[0]) };
    assert_eq!((start.mailboxes, start.messages, start.time_unix_millis), (2, 5, 1_000));
    let Record::Mailbox(work_state) = &records[2] else { panic!("{:?}", records[2]) };
    assert_eq!(work_state.name, "Work");
    assert_eq!(work_state.keywords, ["project"]);
    assert_eq!(records[3], Record::Subscriptions(vec!["Work".to_owned()]));
    let Record::Messages(messages) = &records[4] else { panic!("{:?}", records[4]) };
    assert_eq!(messages[3].system, SystemFlags::FLAGGED);
    assert_eq!(messages[3].keywords, 1);
    assert_eq!((messages[3].date_unix_seconds, messages[3].zone_minutes), (1_600_000_000, 60));
    let bodies: Vec<&Vec<u8>> = records
        .iter()
        .filter_map(|r| match r {
            Record::Body { digest, bytes } => {
                assert_eq!(*digest, sha256(bytes));
                Some(bytes)
            }
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 5);
    assert_eq!(
        bodies[0].as_slice(),
        &store
            .body(store.mailbox_id("INBOX").unwrap(), crate::types::Uid::new(1).unwrap())
            .unwrap()[..]
    );
    let mut appender = Appender::new(Vec::new(), None, 1).unwrap();
    for record in &records {
        appender.push(record).unwrap();
    }
    let file = appender.into_inner();
    let scan = Scan::read(std::io::Cursor::new(&file)).unwrap();
    assert!(scan.damage.is_none(), "{:?}", scan.damage);
    assert_eq!(scan.snapshots[0].bodies_added, 4, "the repeated body once");
}

#[test]
fn a_snapshot_reads_the_bytes_of_its_metadata_step_after_an_expunge_and_a_delete() {
    let disk = Rc::new(SimDisk::new());
    let mut store = store_with_mail(&disk);
    let other = store.create_mailbox("Other").unwrap();
    store.append(other, b"Subject: o\r\n\r\nother", b"", Flags::default(), None).unwrap();
    let inbox = store.mailbox_id("INBOX").unwrap();
    let mut source = store.backup_begin("alice", 1);
    let uids: Vec<_> = store.messages(inbox).unwrap().iter().map(|m| m.uid).collect();
    store.expunge(inbox, &uids).unwrap();
    store.delete_mailbox("Other").unwrap();
    let mut bodies = 0;
    while !source.is_done() {
        for record in source.next_records(&store, 1 << 20).unwrap() {
            bodies += usize::from(matches!(record, crate::backup::Record::Body { .. }));
        }
    }
    assert_eq!(bodies, 4, "three expunged and one of a deleted mailbox, as they were");
}
