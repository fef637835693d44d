//! Opening a user's store: replay the mailbox log, load the indexes, check the spool written
//! since the oldest checkpoint, and repair what a crash left (`core/FORMAT.md`, "Recovery on
//! open"). The work is proportional to what was written since the last checkpoint, not to
//! the size of the store, except that every index is read into memory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use super::catalog::Catalog;
use super::checkpoint::Checkpoints;
use super::codec::SpoolPos;
use super::index::{self, Entry, Index, IndexHeader, Loaded};
use super::log::{LogOpen, MailboxLog};
use super::record::Head;
use super::scan::{ScanResult, Scanned, scan};
use super::spool::{SPOOL_DIR, Spool};
use super::{RecoveryReport, UserStore, names};
use crate::disk::Disk;
use crate::error::{OpenError, StorageError};
use crate::types::{Keywords, MailboxId};

pub(super) fn open<D: Disk>(disk: Rc<D>, dir: &Path) -> Result<UserStore<D>, OpenError> {
    let d = &*disk;
    for sub in [SPOOL_DIR, index::INDEX_DIR] {
        let path = dir.join(sub);
        d.create_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
    }
    let mut catalog = Catalog::default();
    let LogOpen { mut log, truncated_bytes, header_damaged } =
        MailboxLog::open(d, dir, |r| catalog.apply(r))?;
    let mut report = RecoveryReport { log_truncated_bytes: truncated_bytes, ..RecoveryReport::default() };
    if header_damaged {
        report.mailboxes_salvaged = salvage_mailboxes(d, dir, &mut log, &mut catalog)?;
    }
    let mut spool = Spool::list(d, dir)?;
    let (mut indexes, missing) = load_indexes(d, dir, &catalog, &mut report)?;
    remove_strays(d, dir, &catalog)?;
    let scan_start = if missing.is_empty() {
        indexes.values().map(|i| i.header().checkpoint).min().unwrap_or_default()
    } else {
        SpoolPos::default()
    };
    let scanned = scan(d, &mut spool, scan_start)?;
    report.spool_records_scanned = scanned.records.len() as u64;
    report.spool_truncated_bytes = scanned.truncated_bytes;
    let mut changed = std::collections::BTreeSet::new();
    for (id, index) in &mut indexes {
        if drop_unbacked(index, *id, scan_start, &scanned, &mut report)? {
            changed.insert(*id);
        }
    }
    for id in missing {
        let entry = &catalog.mailboxes[&id];
        let header = IndexHeader {
            mailbox: id,
            uid_validity: entry.uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            checkpoint: SpoolPos::default(),
            messages: 0,
        };
        indexes.insert(id, Index::create(d, index::index_path(dir, id), header)?);
        report.indexes_rebuilt += 1;
        changed.insert(id);
    }
    for (id, index) in &mut indexes {
        let keywords = catalog.mailboxes[id].keywords.len();
        if catch_up(index, *id, keywords, &scanned, &mut report)? || index.header_stale() {
            changed.insert(*id);
        }
    }
    for id in changed {
        let index = indexes.get_mut(&id).expect("changed ids are loaded");
        let checkpoint = index.header().checkpoint;
        index.write_header(checkpoint)?;
    }
    spool.activate(d)?;
    // What recovery validated may sit in the page cache only (left by a crashed process):
    // dirty it so the next flush round makes it durable before any checkpoint passes it.
    log.touch()?;
    spool.touch_from(d, scan_start.segment())?;
    let mut checkpoints = Checkpoints::new(scan_start);
    checkpoints.note_write(d.epoch_open(), spool.end_pos());
    let mut store = UserStore {
        disk: disk.clone(),
        dir: dir.to_path_buf(),
        log,
        catalog,
        indexes,
        spool,
        checkpoints,
        change_counter: 0,
        recovery: report,
    };
    if store.catalog.id(names::INBOX).is_none() {
        store.create_mailbox(names::INBOX).map_err(|error| match error {
            crate::error::MailboxError::Storage(storage) => OpenError::Storage(storage),
            other => unreachable!("creating a missing INBOX: {other}"),
        })?;
    }
    if !store.recovery.is_clean() {
        tracing::warn!(dir = %dir.display(), report = ?store.recovery, "store recovered");
    }
    #[cfg(any(test, debug_assertions))]
    store.check_invariants();
    Ok(store)
}

/// After the log's header was found damaged (the log is new and empty): names every mailbox
/// whose index file is intact `Recovered/<id>`, keeping its id and UIDVALIDITY, so its mail
/// stays reachable. Returns how many were salvaged.
pub(super) fn salvage_mailboxes<D: Disk>(
    disk: &D,
    dir: &Path,
    log: &mut MailboxLog<D::File>,
    catalog: &mut Catalog,
) -> Result<u64, StorageError> {
    let index_dir = dir.join(index::INDEX_DIR);
    let names = disk.list_dir(&index_dir).map_err(|e| StorageError::io(&index_dir, e))?;
    let mut salvaged = 0;
    // Names are zero-padded ids, so this is id order, which is also UIDVALIDITY order.
    for id in names.iter().filter_map(|name| index::parse_index_name(name)) {
        let Loaded::Found { index, .. } = Index::load(disk, index::index_path(dir, id))? else {
            continue;
        };
        let record = super::log::LogRecord::Create {
            id,
            uid_validity: index.header().uid_validity,
            name: format!("Recovered/{:08}", id.0),
        };
        if index.header().mailbox == id && catalog.apply(&record) {
            log.append_all(std::slice::from_ref(&record))?;
            salvaged += 1;
        }
    }
    Ok(salvaged)
}

type Indexes<F> = BTreeMap<MailboxId, Index<F>>;

/// Loads every mailbox's index; returns them and the ids whose index must be rebuilt.
fn load_indexes<D: Disk>(
    disk: &D,
    dir: &Path,
    catalog: &Catalog,
    report: &mut RecoveryReport,
) -> Result<(Indexes<D::File>, Vec<MailboxId>), StorageError> {
    let mut indexes = BTreeMap::new();
    let mut missing = Vec::new();
    for (&id, entry) in &catalog.mailboxes {
        match Index::load(disk, index::index_path(dir, id))? {
            Loaded::Found { index, cut_records }
                if index.header().mailbox == id && index.header().uid_validity == entry.uid_validity =>
            {
                report.index_records_dropped += cut_records;
                let mut index = index;
                index.mask_keywords(entry.keywords.len());
                indexes.insert(id, index);
            }
            Loaded::Found { .. } | Loaded::Missing => missing.push(id),
        }
    }
    Ok((indexes, missing))
}

/// Removes index files of mailboxes the log does not know (their deletion was logged but the
/// removal did not survive) and leftover temporary files.
fn remove_strays<D: Disk>(disk: &D, dir: &Path, catalog: &Catalog) -> Result<(), StorageError> {
    let index_dir = dir.join(index::INDEX_DIR);
    let names = disk.list_dir(&index_dir).map_err(|e| StorageError::io(&index_dir, e))?;
    for name in names {
        let stray = match index::parse_index_name(&name) {
            Some(id) => !catalog.mailboxes.contains_key(&id),
            None => name.ends_with(".tmp"),
        };
        if stray {
            let path = index_dir.join(&name);
            disk.remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Drops index entries at or past the scan start that no good spool record backs. Returns
/// true when something was dropped.
fn drop_unbacked<F: crate::disk::DiskFile>(
    index: &mut Index<F>,
    id: MailboxId,
    scan_start: SpoolPos,
    scanned: &ScanResult,
    report: &mut RecoveryReport,
) -> Result<bool, StorageError> {
    let first = index.entries().partition_point(|e| e.spool.pos() < scan_start);
    if first == index.entries().len() {
        return Ok(false);
    }
    let by_pos: HashMap<SpoolPos, &Scanned> =
        scanned.records.iter().map(|r| (r.spool.pos(), r)).collect();
    let backed = |entry: &Entry| {
        by_pos.get(&entry.spool.pos()).is_some_and(|r| {
            r.spool == entry.spool
                && matches!(r.head, Head::Message(h)
                    if h.mailbox == id && h.uid == entry.uid && h.message_len == entry.size)
        })
    };
    let bad = index.entries()[first..].iter().position(|e| !backed(e));
    let Some(bad) = bad.map(|b| first + b) else { return Ok(false) };
    report.index_records_dropped += (index.entries().len() - bad) as u64;
    index.truncate(bad)?;
    Ok(true)
}

/// Applies scanned records the index lacks: messages at or past UIDNEXT are appended,
/// tombstones mark their UIDs expunged. Returns true when something changed.
fn catch_up<F: crate::disk::DiskFile>(
    index: &mut Index<F>,
    id: MailboxId,
    keywords: usize,
    scanned: &ScanResult,
    report: &mut RecoveryReport,
) -> Result<bool, StorageError> {
    let mut changed = false;
    for record in &scanned.records {
        match record.head {
            Head::Message(head) if head.mailbox == id && head.uid.get() >= index.uid_next() => {
                if index.is_full() {
                    continue;
                }
                let mut flags = head.flags;
                flags.keywords = mask_keywords(flags.keywords, keywords);
                let modseq = index.next_modseq();
                let entry = Entry {
                    uid: head.uid,
                    flags,
                    expunged: false,
                    modseq,
                    date: head.date,
                    size: head.message_len,
                    spool: record.spool,
                };
                index.append(entry)?;
                report.index_records_added += 1;
                changed = true;
            }
            Head::Tombstone { mailbox, modseq, .. } if mailbox == id => {
                if modseq > index.highest_modseq() {
                    index.raise_highest_modseq(modseq);
                    changed = true;
                }
                for &uid in &record.uids {
                    let Some(slot) = index.find(uid) else { continue };
                    let entry = index.entries()[slot];
                    if entry.expunged {
                        continue;
                    }
                    let modseq = index.next_modseq();
                    index.rewrite(slot, Entry { expunged: true, modseq, ..entry })?;
                    report.expunges_applied += 1;
                    changed = true;
                }
            }
            Head::Message(_) | Head::Tombstone { .. } => {}
        }
    }
    Ok(changed)
}

/// Keyword bits limited to the `count` names the table has.
pub(super) fn mask_keywords(keywords: Keywords, count: usize) -> Keywords {
    if count >= 64 { keywords } else { Keywords(keywords.0 & ((1u64 << count) - 1)) }
}
