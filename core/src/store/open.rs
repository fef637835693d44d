//! Opening a user's store: replay the mailbox log, load the indexes, check the spool written
//! since the oldest checkpoint, and repair what a crash left (`core/FORMAT.md`, "Recovery on
//! open"). The work is proportional to what was written since the last checkpoint, not to
//! the size of the store, except that every index is read into memory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;

use super::catalog::Catalog;
use super::checkpoint::{Checkpoints, Deferred};
use super::codec::SpoolPos;
use super::index::{self, Entry, Index, IndexHeader, Loaded};
use super::log::{LogOpen, LogRecord, MailboxLog};
use super::record::Head;
use super::scan::{ScanResult, Scanned, scan};
use super::spool::{SPOOL_DIR, Spool, SpoolRef};
use super::{RecoveryReport, UserStore, names};
use crate::disk::Disk;
use crate::error::{OpenError, StorageError};
use crate::limits::NONCE_RECOVERY_RECORDS_MAX;
use crate::types::MailboxId;

pub(super) fn open<D: Disk>(disk: Rc<D>, dir: &Path) -> Result<UserStore<D>, OpenError> {
    let d = &*disk;
    for sub in [SPOOL_DIR, index::INDEX_DIR] {
        let path = dir.join(sub);
        d.create_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
    }
    let mut catalog = Catalog::default();
    let LogOpen { mut log, truncated_bytes, header_damaged } =
        MailboxLog::open(d, dir, |unit| catalog.apply_unit(unit))?;
    let mut report = RecoveryReport {
        log_truncated_bytes: truncated_bytes,
        log_replaced: header_damaged,
        ..RecoveryReport::default()
    };
    let mut deferred = Deferred::default();
    sort_strays(d, dir, &mut log, &mut catalog, &mut deferred, &mut report)?;
    let mut spool = Spool::list(d, dir)?;
    let LoadedIndexes { mut indexes, missing, mut cut, salvaged } =
        load_indexes(d, dir, &catalog, &mut report)?;
    cut.extend(cut_past_segment_ends(d, &spool, &mut indexes, &mut report)?);
    let scan_start = if missing.is_empty() {
        indexes
            .iter()
            .map(|(id, i)| index_scan_start(i, cut.contains(id)))
            .min()
            .map(|start| record_boundary(&indexes, start))
            .unwrap_or_default()
    } else {
        SpoolPos::default()
    };
    let hints = |segment: u32| segment_references(&indexes, segment);
    let scanned = scan(d, &mut spool, scan_start, &hints)?;
    raise_id_floor(&mut catalog, &scanned);
    report.keywords_voided =
        void_stray_keywords(&mut log, &mut catalog, &mut indexes, &scanned, d)?;
    report.spool_records_scanned = scanned.records.len() as u64;
    report.spool_truncated_bytes = scanned.truncated_bytes;
    report.spool_headers_repaired = scanned.headers_repaired;
    report.spool_damaged_bytes = scanned.damaged_bytes;
    let rebuild = Rebuild { missing, salvaged };
    repair(d, dir, &catalog, &mut indexes, rebuild, scan_start, &scanned, &mut report)?;
    spool.activate(d)?;
    // Every entry at or past the scan start matched a record whose checksum the scan checked
    // (but for the expunged entries of damaged records): reads need not check it again. Pair
    // assertion: each lies inside the spool.
    let end = spool.end_pos();
    for index in indexes.values() {
        let first = index.entries().partition_point(|e| e.spool.pos() < scan_start);
        for (slot, entry) in index.entries().iter().enumerate().skip(first) {
            assert!(entry.spool.end() <= end, "no index entry past the spool end");
            // A damaged record's entry (expunged by `drop_unbacked`) was not checked.
            if !scanned.is_damaged(entry.spool) {
                index.mark_verified(slot);
            }
        }
    }
    // What recovery validated may sit in the page cache only (left by a crashed process):
    // dirty it so the next flush round makes it durable before any checkpoint passes it.
    log.touch()?;
    spool.touch_from(d, scan_start.segment())?;
    let now = d.epoch_open();
    let mut checkpoints = Checkpoints::new(scan_start);
    checkpoints.note_write(now, spool.end_pos());
    let unsealed = indexes.iter().filter(|(_, i)| !i.header().sealed);
    deferred.unsealed.extend(unsealed.map(|(&id, _)| (now, id)));
    let mut store = UserStore {
        disk: disk.clone(),
        dir: dir.to_path_buf(),
        log,
        catalog,
        indexes,
        spool,
        checkpoints,
        deferred,
        change_counter: 0,
        recovery: report,
        pending_cut: None,
        damaged_logged: std::cell::RefCell::default(),
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

/// Records of a mailbox whose creation did not survive must never be taken for records of a
/// new mailbox, so ids named by scanned records are not given again. (Records before the scan
/// start belong to mailboxes whose creation was durable: a checkpoint only passes durable
/// epochs.)
fn raise_id_floor(catalog: &mut Catalog, scanned: &ScanResult) {
    for record in &scanned.records {
        let mailbox = match record.head {
            Head::Message(head) => head.mailbox,
            Head::Tombstone { mailbox, .. } => mailbox,
        };
        catalog.raise_floor((Some(mailbox), None));
    }
}

/// Keyword bits that records carry but the log does not define come from keyword definitions
/// a crash lost (the changes that used them were never acknowledged). Each such bit is made
/// void for good, in the log, before anything else is written: a later keyword can then never
/// take the bit and so never appear on a message that had the lost one. (The log is replayed
/// as a prefix, so no later record survives without the void record.) Returns how many bits
/// were voided; every index is then masked to the bits that name keywords.
fn void_stray_keywords<D: Disk>(
    log: &mut MailboxLog<D::File>,
    catalog: &mut Catalog,
    indexes: &mut Indexes<D::File>,
    scanned: &ScanResult,
    disk: &D,
) -> Result<u64, StorageError> {
    let mut voided = 0;
    for (&id, entry) in &catalog.mailboxes.clone() {
        let valid = entry.valid_keywords();
        let mut stray = indexes.get(&id).map_or(0, |i| i.stray_keywords(valid | entry.void));
        for record in &scanned.records {
            if let Head::Message(head) = record.head
                && head.mailbox == id
            {
                stray |= head.flags.keywords.0 & !(valid | entry.void);
            }
        }
        voided += void_bits(log, catalog, id, stray, disk)?;
    }
    for (id, index) in indexes.iter_mut() {
        index.mask_keywords(catalog.mailboxes[id].valid_keywords());
    }
    Ok(voided)
}

/// Makes every bit of `stray` void in mailbox `id` (with the undefined bits below them, since
/// bits are defined in order). Returns how many bits were voided.
pub(super) fn void_bits<D: Disk>(
    log: &mut MailboxLog<D::File>,
    catalog: &mut Catalog,
    id: MailboxId,
    stray: u64,
    disk: &D,
) -> Result<u64, StorageError> {
    if stray == 0 {
        return Ok(0);
    }
    let highest = 63 - stray.leading_zeros();
    let first = u32::try_from(catalog.mailboxes[&id].keywords.len()).expect("at most 64");
    let records: Vec<LogRecord> =
        (first..=highest).map(|bit| LogRecord::VoidKeyword { id, bit }).collect();
    log.append_all(&records, disk.epoch_open())?;
    for record in &records {
        assert!(catalog.apply(record), "a void record we wrote replays");
    }
    Ok(records.len() as u64)
}

/// Brings every index in line with the scanned spool: drops entries no record backs, rebuilds
/// missing indexes, catches up, and rewrites the headers of what changed.
#[allow(clippy::too_many_arguments)]
fn repair<D: Disk>(
    disk: &D,
    dir: &Path,
    catalog: &Catalog,
    indexes: &mut Indexes<D::File>,
    Rebuild { missing, salvaged }: Rebuild,
    scan_start: SpoolPos,
    scanned: &ScanResult,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    let mut changed = std::collections::BTreeSet::new();
    for (id, index) in indexes.iter_mut() {
        if drop_unbacked(index, *id, scan_start, scanned, report)? {
            changed.insert(*id);
        }
    }
    for id in missing {
        let header = IndexHeader {
            mailbox: id,
            uid_validity: catalog.mailboxes[&id].uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            checkpoint: SpoolPos::default(),
            messages: 0,
            sealed: false,
        };
        indexes.insert(id, Index::create(disk, index::index_path(dir, id), header)?);
        report.indexes_rebuilt += 1;
        changed.insert(id);
    }
    for (id, index) in indexes.iter_mut() {
        let valid = catalog.mailboxes[id].valid_keywords();
        if catch_up(index, *id, valid, scanned, report)? || index.header_stale() {
            changed.insert(*id);
        }
    }
    for (id, entries) in &salvaged {
        let index = indexes.get_mut(id).expect("a salvaged index was rebuilt");
        restore_flags(index, entries, catalog.mailboxes[id].valid_keywords())?;
    }
    for id in changed {
        let index = indexes.get_mut(&id).expect("changed ids are loaded");
        let checkpoint = index.header().checkpoint;
        index.write_header(checkpoint)?;
    }
    Ok(())
}

/// The indexes [`repair`] rebuilds from the spool, and what the damaged ones still held.
struct Rebuild {
    missing: Vec<MailboxId>,
    salvaged: BTreeMap<MailboxId, Vec<Entry>>,
}

/// Gives a rebuilt index the flags (and expunges) of the old records that still check out
/// and point at exactly the record the rebuild found (UID and spool reference), as
/// `reconstruct` does: an index whose header was damaged keeps its acknowledged flags. Each
/// change takes a new modseq above every old record's.
fn restore_flags<F: crate::disk::DiskFile>(
    index: &mut Index<F>,
    salvaged: &[Entry],
    valid_keywords: u64,
) -> Result<(), StorageError> {
    let old: HashMap<u32, &Entry> = salvaged.iter().map(|e| (e.uid.get(), e)).collect();
    let matched = |entry: &Entry| old.get(&entry.uid.get()).filter(|o| o.spool == entry.spool);
    let highest = index.entries().iter().filter_map(matched).map(|o| o.modseq).max();
    index.raise_highest_modseq(highest.unwrap_or(0));
    for slot in 0..index.entries().len() {
        let entry = index.entries()[slot];
        let Some(old) = matched(&entry) else {
            continue;
        };
        let mut flags = old.flags;
        flags.keywords.0 &= valid_keywords;
        let expunged = entry.expunged || old.expunged;
        if flags == entry.flags && expunged == entry.expunged {
            continue;
        }
        let modseq = index.next_modseq();
        index.rewrite(slot, Entry { flags, expunged, modseq, ..entry })?;
    }
    Ok(())
}

/// Index files of mailboxes the log does not know. A sealed one (its creation was durable)
/// of a mailbox the log never deleted means the log was damaged: it is salvaged as
/// `Recovered/<id>` with its id and UIDVALIDITY, so its mail stays reachable. The others (a
/// creation that did not survive, a deletion whose file removal did not) are removed once the
/// next flush round has made the log durable; `*.tmp` files are removed now. Ids and
/// UIDVALIDITYs of all of them are never given again.
pub(super) fn sort_strays<D: Disk>(
    disk: &D,
    dir: &Path,
    log: &mut MailboxLog<D::File>,
    catalog: &mut Catalog,
    deferred: &mut Deferred,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    let index_dir = dir.join(index::INDEX_DIR);
    let names = disk.list_dir(&index_dir).map_err(|e| StorageError::io(&index_dir, e))?;
    // Names are zero-padded ids, so this is id order, which is also UIDVALIDITY order.
    for name in names {
        let path = index_dir.join(&name);
        let Some(id) = index::parse_index_name(&name) else {
            if name.ends_with(".tmp") {
                disk.remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
            }
            continue;
        };
        if catalog.mailboxes.contains_key(&id) {
            continue;
        }
        let header = Index::<D::File>::read_header(disk, &path)?.filter(|h| h.mailbox == id);
        if let Some(header) = header.filter(|h| h.sealed && !catalog.deleted.contains(&id)) {
            let record = super::log::LogRecord::Create {
                id,
                uid_validity: header.uid_validity,
                name: format!("Recovered/{:08}", id.0),
            };
            if catalog.apply(&record) {
                log.append_all(std::slice::from_ref(&record), disk.epoch_open())?;
                report.mailboxes_salvaged += 1;
                continue;
            }
        }
        catalog.raise_floor((Some(id), header.map(|h| h.uid_validity)));
        deferred.doomed.push((disk.epoch_open(), path));
    }
    Ok(())
}

type Indexes<F> = BTreeMap<MailboxId, Index<F>>;

/// Where the spool scan must start for `index`: its checkpoint, or, if loading cut it at a
/// damaged record with good records after it, the end of its last kept entry, if lower: the
/// cut entries' records are then scanned and caught up again (flags as at append). A torn
/// tail, all a crash leaves, costs no longer scan.
fn index_scan_start<F: crate::disk::DiskFile>(index: &Index<F>, cut: bool) -> SpoolPos {
    let checkpoint = index.header().checkpoint;
    if !cut {
        return checkpoint;
    }
    let kept_end = index.entries().last().map_or(SpoolPos::default(), |e| e.spool.end());
    checkpoint.min(kept_end)
}

/// Recovery trusts the entries before an index's checkpoint without reading their records, but
/// not their bounds, which cost no read: an entry in a segment that is not there or past its
/// segment's end comes from a damaged or misdirected record that checks out. The index is cut there, and the spool is
/// scanned again from its last kept entry (the caller marks it cut), so the messages after it
/// come back from the spool. Returns the ids of the indexes cut.
fn cut_past_segment_ends<D: Disk>(
    disk: &D,
    spool: &Spool<D>,
    indexes: &mut Indexes<D::File>,
    report: &mut RecoveryReport,
) -> Result<Vec<MailboxId>, StorageError> {
    let mut lengths: BTreeMap<u32, u64> = BTreeMap::new();
    let mut segment_len = |segment: u32| -> Result<Option<u64>, StorageError> {
        if spool.segments().binary_search(&segment).is_err() {
            return Ok(None);
        }
        if let Some(&len) = lengths.get(&segment) {
            return Ok(Some(len));
        }
        let path = spool.path(segment);
        let file = disk.open(&path, crate::disk::OpenMode::Existing);
        let file = file.map_err(|e| StorageError::io(&path, e))?;
        let len = super::codec::file_len(&file, &path)?;
        lengths.insert(segment, len);
        Ok(Some(len))
    };
    let mut cut = Vec::new();
    for (&id, index) in indexes.iter_mut() {
        let checkpoint = index.header().checkpoint;
        let mut bad = None;
        for (slot, entry) in index.entries().iter().enumerate() {
            if entry.spool.pos() >= checkpoint {
                break;
            }
            let fits = segment_len(entry.spool.segment)?
                .is_some_and(|len| u64::from(entry.spool.end().offset()) <= len);
            if !fits {
                bad = Some(slot);
                break;
            }
        }
        if let Some(slot) = bad {
            report.index_records_dropped += (index.entries().len() - slot) as u64;
            index.truncate(slot)?;
            cut.push(id);
        }
    }
    Ok(cut)
}

/// A checkpoint is a record boundary, but one read from a damaged header whose checksum holds
/// may lie inside a record: a scan started there would take the rest of the record for damage
/// (or, at the end, for a torn tail). When `start` lies inside an entry of any index, the scan
/// starts at that entry instead, which it then checks like every entry it covers.
fn record_boundary<F: crate::disk::DiskFile>(indexes: &Indexes<F>, start: SpoolPos) -> SpoolPos {
    let inside = indexes.values().find_map(|index| {
        let after = index.entries().partition_point(|e| e.spool.pos() < start);
        let entry = index.entries()[..after].last()?;
        (entry.spool.end() > start).then_some(entry.spool.pos())
    });
    inside.unwrap_or(start)
}

/// What [`load_indexes`] found.
struct LoadedIndexes<F> {
    indexes: Indexes<F>,
    /// Ids whose index must be rebuilt from the spool.
    missing: Vec<MailboxId>,
    /// Ids whose index was cut at a damaged record in its middle.
    cut: Vec<MailboxId>,
    /// For indexes with a damaged header: their records that check out on their own.
    salvaged: BTreeMap<MailboxId, Vec<Entry>>,
}

/// Loads every mailbox's index (see [`LoadedIndexes`]).
fn load_indexes<D: Disk>(
    disk: &D,
    dir: &Path,
    catalog: &Catalog,
    report: &mut RecoveryReport,
) -> Result<LoadedIndexes<D::File>, StorageError> {
    let mut indexes = BTreeMap::new();
    let mut missing = Vec::new();
    let mut cut = Vec::new();
    let mut salvaged = BTreeMap::new();
    for (&id, entry) in &catalog.mailboxes {
        match Index::load(disk, index::index_path(dir, id))? {
            Loaded::Found { index, cut_records, good_after_cut }
                if index.header().mailbox == id
                    && index.header().uid_validity == entry.uid_validity =>
            {
                report.index_records_dropped += cut_records;
                if good_after_cut {
                    cut.push(id);
                }
                indexes.insert(id, index);
            }
            Loaded::DamagedHeader => {
                // Rebuilt from a full scan like a missing index; the records that still check
                // out on their own give back their flags (`restore_flags`).
                let entries = Index::<D::File>::salvage(disk, &index::index_path(dir, id))?;
                salvaged.insert(id, entries);
                report.index_headers_repaired += 1;
                missing.push(id);
            }
            Loaded::Found { .. } | Loaded::Missing => missing.push(id),
        }
    }
    Ok(LoadedIndexes { indexes, missing, cut, salvaged })
}

/// The first few references the indexes hold into `segment`, by offset: where to look for
/// intact records when the segment's header is damaged.
fn segment_references<F: crate::disk::DiskFile>(
    indexes: &Indexes<F>,
    segment: u32,
) -> Vec<SpoolRef> {
    let mut references: Vec<SpoolRef> = indexes
        .values()
        .flat_map(|index| {
            let entries = index.entries();
            let first = entries.partition_point(|e| e.spool.segment < segment);
            entries[first..]
                .iter()
                .take_while(|e| e.spool.segment == segment)
                .take(NONCE_RECOVERY_RECORDS_MAX)
                .map(|e| e.spool)
        })
        .collect();
    references.sort_unstable_by_key(|r| r.offset);
    references.truncate(NONCE_RECOVERY_RECORDS_MAX);
    references
}

/// Drops index entries that no good spool record backs: at or past the scan start, those no
/// scanned record matches; anywhere, those in a removed segment. An entry whose record lies in
/// a skipped damaged span is expunged; at the first other such entry the index is cut
/// (entries are in spool order). Returns true when something changed.
fn drop_unbacked<F: crate::disk::DiskFile>(
    index: &mut Index<F>,
    id: MailboxId,
    scan_start: SpoolPos,
    scanned: &ScanResult,
    report: &mut RecoveryReport,
) -> Result<bool, StorageError> {
    let removed =
        index.entries().iter().position(|e| scanned.removed_segments.contains(&e.spool.segment));
    let first = index.entries().partition_point(|e| e.spool.pos() < scan_start);
    let first = removed.map_or(first, |r| r.min(first));
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
    // A scanned record of this mailbox before the entry in the spool with a UID not below its
    // own means the entry is a leftover of a crash, not damage: its record was lost, recovery
    // cut the entry, a crash lost that cut too, and the spool was written again over where the
    // record was (then the entry may even lie inside a span skipped as damaged). Kept as
    // expunged, it would sit before the message that overtook it: it must go.
    let overtaken =
        |entry: &Entry| {
            scanned.records.iter().take_while(|r| r.spool.pos() < entry.spool.pos()).any(
                |r| matches!(r.head, Head::Message(h) if h.mailbox == id && h.uid >= entry.uid),
            )
        };
    let mut changed = false;
    let mut slot = first;
    while slot < index.entries().len() {
        let entry = index.entries()[slot];
        let removed = scanned.removed_segments.contains(&entry.spool.segment);
        if !removed && backed(&entry) {
            slot += 1;
            continue;
        }
        // Expunged in place only where the index stays in spool order (a stale entry left
        // by an earlier crash may not be).
        let in_order = slot == 0 || index.entries()[slot - 1].spool.end() <= entry.spool.pos();
        if removed || !in_order || !scanned.is_damaged(entry.spool) || overtaken(&entry) {
            break;
        }
        // Its record is damaged in durable spool with good records after it: only this
        // message is lost. It is expunged (clients see it vanish) rather than the index cut,
        // which would drop the acknowledged flags of every later message.
        if !entry.expunged {
            let modseq = index.next_modseq();
            index.rewrite(slot, Entry { expunged: true, modseq, ..entry })?;
            report.index_records_dropped += 1;
            changed = true;
        }
        slot += 1;
    }
    let bad = slot;
    if bad == index.entries().len() {
        return Ok(changed);
    }
    report.index_records_dropped += (index.entries().len() - bad) as u64;
    // The dropped UIDs and modseqs may have been seen by a session before the crash: keep
    // UIDNEXT and HIGHESTMODSEQ past them.
    index.truncate(bad)?;
    Ok(true)
}

/// Applies scanned records the index lacks: messages with a UID above the index's last, after
/// it in the spool, are appended (so a record lost from the index comes back from the spool, even when UIDNEXT
/// already passed it), tombstones mark their UIDs expunged. Returns true when something
/// changed.
fn catch_up<F: crate::disk::DiskFile>(
    index: &mut Index<F>,
    id: MailboxId,
    valid_keywords: u64,
    scanned: &ScanResult,
    report: &mut RecoveryReport,
) -> Result<bool, StorageError> {
    let mut changed = false;
    for record in &scanned.records {
        match record.head {
            // Spool order follows UID order: a record before the index's last entry in the
            // spool (a record rewritten, with a checksum that holds, as one of this mailbox)
            // is not appended, whatever its UID.
            Head::Message(head)
                if head.mailbox == id
                    && index.entries().last().is_none_or(|last| {
                        last.uid < head.uid && last.spool.end() <= record.spool.pos()
                    }) =>
            {
                if index.is_full() {
                    continue;
                }
                let mut flags = head.flags;
                flags.keywords.0 &= valid_keywords;
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
                    let Some(slot) = index.find(uid) else {
                        // Its message was lost in a crash (a later record survived, so the
                        // tombstone is scanned again on the next open): never give the UID
                        // again, or this tombstone would expunge the new message.
                        if uid.get() >= index.uid_next() {
                            index.raise_uid_next_past(uid);
                            changed = true;
                        }
                        continue;
                    };
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
