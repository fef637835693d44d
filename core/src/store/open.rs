//! Recovery on open, phase by phase (`core/FORMAT.md`, "Recovery on open"): each phase is a
//! function that does what its [`Budget`] allows and returns true once it is complete, so
//! that `store/opening.rs` can run the open in bounded steps. This file holds the phases up
//! to the spool scan and the keyword check; `open_repair.rs` the repairs that follow.
//!
//! The work is proportional to what was written since the last checkpoint, except that every
//! index is read into memory (and its entries before the checkpoint have their bounds
//! checked), and a missing index is rebuilt from the whole spool.

use std::collections::HashMap;
use std::path::Path;

use super::RecoveryReport;
use super::catalog::Catalog;
use super::checkpoint::Deferred;
use super::codec::SpoolPos;
use super::index::{self, Entry, Index, IndexLoad, LoadStart, Loaded, SalvageLoad};
use super::log::{LogRecord, MailboxLog};
use super::opening::{Budget, Parts};
use super::record::Head;
use super::scan::{ScanResult, Scanner};
use super::spool::SpoolRef;
use crate::disk::Disk;
use crate::error::StorageError;
use crate::limits::NONCE_RECOVERY_RECORDS_MAX;
use crate::types::MailboxId;

/// Where a resumable phase is: the mailbox it works on and the position inside it. Each
/// phase uses the fields it needs; a new phase starts from [`Cursor::default`].
pub(super) struct Cursor<F> {
    /// The mailbox worked on, as a position in the phase's list (`Parts::ids`, mostly).
    pub mailbox: usize,
    /// The position inside that mailbox (an index slot, or a position in
    /// `ScanResult::of_mailbox`); `None` until the mailbox is started.
    pub at: Option<usize>,
    /// A second position: a UID inside a tombstone; the pass of the flag restore.
    pub sub: usize,
    /// Whether the mailbox's index changed (its header is then rewritten).
    pub changed: bool,
    /// Stray keyword bits found so far; the highest modseq of the matched salvaged entries.
    pub bits: Option<u64>,
    /// The index being loaded.
    pub loading: Option<Loading<F>>,
    /// The salvaged entries of the index whose flags are being restored, by UID.
    pub old: HashMap<u32, Entry>,
}

impl<F> Default for Cursor<F> {
    fn default() -> Cursor<F> {
        Cursor {
            mailbox: 0,
            at: None,
            sub: 0,
            changed: false,
            bits: None,
            loading: None,
            old: HashMap::new(),
        }
    }
}

impl<F> Cursor<F> {
    /// Moves on to the next mailbox.
    pub(super) fn next_mailbox(&mut self) {
        *self = Cursor { mailbox: self.mailbox + 1, ..Cursor::default() };
    }
}

/// An index file being read.
pub(super) enum Loading<F> {
    /// Its header checked out: its records.
    Records(Box<IndexLoad<F>>),
    /// Its header is damaged: the records that check out on their own.
    Salvage(SalvageLoad<F>),
}

type Indexes<F> = std::collections::BTreeMap<MailboxId, Index<F>>;

/// Units an open of a file costs (the system calls to open it, take its length and read its
/// header: a few microseconds), so a store of many small mailboxes still takes steps of
/// about the same length.
pub(super) const FILE_OPEN_UNITS: u64 = 4;

/// Loads every mailbox's index, a piece at a time: a damaged header, a mailbox id or
/// UIDVALIDITY that does not match the log, or no file makes the index missing (rebuilt from
/// the spool); of a damaged header the records that check out are kept for their flags.
pub(super) fn load_step<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    dir: &Path,
    cursor: &mut Cursor<D::File>,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    while budget.left() {
        let Some(&id) = parts.ids.get(cursor.mailbox) else {
            return Ok(true);
        };
        match cursor.loading.as_mut() {
            None => {
                if !budget.start_piece(FILE_OPEN_UNITS) {
                    break;
                }
                cursor.loading = load_start(parts, disk, dir, id)?;
                if cursor.loading.is_none() {
                    cursor.next_mailbox();
                }
            }
            Some(Loading::Records(load)) if !load.is_done() => {
                budget.spend_records(load.step(budget.room_records())?);
            }
            Some(Loading::Salvage(load)) if !load.is_done() => {
                budget.spend_records(load.step(budget.room_records())?);
            }
            Some(_) => {
                match cursor.loading.take().expect("matched") {
                    Loading::Records(load) => {
                        let Loaded { index, cut_records, good_after_cut } = load.finish()?;
                        parts.report.index_records_dropped += cut_records;
                        if good_after_cut {
                            parts.cut.push(id);
                        }
                        parts.indexes.insert(id, index);
                    }
                    Loading::Salvage(load) => {
                        parts.salvaged.insert(id, load.into_entries());
                    }
                }
                budget.spend(1);
                cursor.next_mailbox();
            }
        }
    }
    Ok(parts.ids.len() == cursor.mailbox)
}

/// Opens the index of `id` and reads its header: what is left to read of it, or `None`
/// when it is missing (noted in `parts.missing`).
fn load_start<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    dir: &Path,
    id: MailboxId,
) -> Result<Option<Loading<D::File>>, StorageError> {
    let path = index::index_path(dir, id);
    let uid_validity = parts.catalog.mailboxes[&id].uid_validity;
    match Index::load_start(disk, path.clone())? {
        LoadStart::Header(load)
            if load.header().mailbox == id && load.header().uid_validity == uid_validity =>
        {
            Ok(Some(Loading::Records(load)))
        }
        LoadStart::DamagedHeader => {
            // Rebuilt from a full scan like a missing index; the records that still check
            // out on their own give back their flags (`restore_step`).
            parts.report.index_headers_repaired += 1;
            parts.missing.push(id);
            Ok(Some(Loading::Salvage(Index::<D::File>::salvage_start(disk, &path)?)))
        }
        // Another mailbox's index (its records are not read: the file is rewritten).
        LoadStart::Header(_) | LoadStart::Missing => {
            parts.missing.push(id);
            Ok(None)
        }
    }
}

/// Recovery trusts the entries before an index's checkpoint without reading their records,
/// but not their bounds, which cost no read: an entry in a segment that is not there or past
/// its segment's end comes from a damaged or misdirected record that checks out. The index is
/// cut there and marked cut, so the spool is scanned again from its last kept entry and the
/// messages after it come back from the spool.
pub(super) fn bounds_step<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    cursor: &mut Cursor<D::File>,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    while budget.left() {
        let Some(&id) = parts.ids.get(cursor.mailbox) else {
            return Ok(true);
        };
        let Some(index) = parts.indexes.get_mut(&id) else {
            cursor.next_mailbox();
            continue;
        };
        let slot = cursor.at.unwrap_or(0);
        let checkpoint = index.header().checkpoint;
        let entry = index.entries().get(slot).filter(|e| e.spool.pos() < checkpoint).copied();
        let Some(entry) = entry else {
            cursor.next_mailbox();
            continue;
        };
        let segment = entry.spool.segment;
        let len = match parts.segment_lengths.get(&segment) {
            Some(&len) => Some(len),
            None if parts.spool.segments().binary_search(&segment).is_err() => None,
            None => {
                if !budget.start_piece(FILE_OPEN_UNITS) {
                    break;
                }
                let path = parts.spool.path(segment);
                let file = disk.open(&path, crate::disk::OpenMode::Existing);
                let file = file.map_err(|e| StorageError::io(&path, e))?;
                let len = super::codec::file_len(&file, &path)?;
                parts.segment_lengths.insert(segment, len);
                Some(len)
            }
        };
        budget.spend_entries(1);
        if len.is_some_and(|len| u64::from(entry.spool.end().offset()) <= len) {
            cursor.at = Some(slot + 1);
            continue;
        }
        parts.report.index_records_dropped += (index.entries().len() - slot) as u64;
        index.truncate(slot)?;
        budget.spend(1);
        parts.cut.push(id);
        cursor.next_mailbox();
    }
    Ok(parts.ids.len() == cursor.mailbox)
}

/// Sets where the spool scan starts: the smallest checkpoint of all indexes (lower for an
/// index cut in its middle), at a record boundary; the spool's start if an index is missing.
pub(super) fn settle_scan_start<D: Disk>(parts: &mut Parts<D>, budget: &mut Budget) {
    budget.spend_entries(parts.indexes.len() as u64 * (1 + parts.cut.len() as u64));
    parts.scan_start = if parts.missing.is_empty() {
        parts
            .indexes
            .iter()
            .map(|(id, i)| index_scan_start(i, parts.cut.contains(id)))
            .min()
            .map(|start| record_boundary(&parts.indexes, start))
            .unwrap_or_default()
    } else {
        SpoolPos::default()
    };
    // Message records past `threads.log`'s coverage teach the map on open (`store/threads.rs`).
    if let Some(covered) = parts.threads.covered() {
        parts.scan_start = parts.scan_start.min(covered);
    }
}

/// Scans a piece of the spool. Records of a mailbox whose creation did not survive must never
/// be taken for records of a new mailbox, so ids named by scanned records are not given
/// again. (Records before the scan start belong to mailboxes whose creation was durable: a
/// checkpoint only passes durable epochs.)
pub(super) fn scan_step<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    scanner: &mut Scanner<D::File>,
    floored: &mut usize,
    budget: &mut Budget,
) -> Result<(), StorageError> {
    let indexes = &parts.indexes;
    let hints = |segment: u32| segment_references(indexes, segment);
    scanner.step(disk, &mut parts.spool, &hints, budget)?;
    for record in scanner.result().records.iter_from(*floored) {
        let mailbox = match record.head {
            Head::Message(head) => head.mailbox,
            Head::Tombstone { mailbox, .. } => mailbox,
        };
        parts.catalog.raise_floor((Some(mailbox), None));
    }
    *floored = scanner.result().records.len();
    Ok(())
}

/// Takes in what the scan found.
pub(super) fn scan_done<D: Disk>(parts: &mut Parts<D>, scanned: ScanResult) {
    let report = &mut parts.report;
    report.spool_records_scanned = scanned.records.len() as u64;
    report.spool_truncated_bytes = scanned.truncated_bytes;
    report.spool_headers_repaired = scanned.headers_repaired;
    report.spool_damaged_bytes = scanned.damaged_bytes;
    parts.scanned = scanned;
}

/// Keyword bits that records carry but the log does not define come from keyword definitions
/// a crash lost (the changes that used them were never acknowledged). Each such bit is made
/// void for good, in the log, before anything else is written: a later keyword can then never
/// take the bit and so never appear on a message that had the lost one. (The log is replayed
/// as a prefix, so no later record survives without the void record.) Each index is then
/// masked to the bits that name keywords. Mailbox by mailbox: its index entries, its scanned
/// records, the void records, the mask.
pub(super) fn keywords_step<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    cursor: &mut Cursor<D::File>,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    while budget.left() {
        let Some(&id) = parts.ids.get(cursor.mailbox) else {
            return Ok(true);
        };
        let entry = &parts.catalog.mailboxes[&id];
        let defined = entry.valid_keywords() | entry.void;
        let index = parts.indexes.get_mut(&id);
        let entries = index.as_ref().map_or(0, |i| i.entries().len());
        let records = parts.scanned.of_mailbox(id);
        // Positions: entries first, then records, then (once voided) entries to mask.
        let at = cursor.at.unwrap_or(0);
        let room = usize::try_from(budget.room_entries()).unwrap_or(usize::MAX);
        if at < entries {
            let end = entries.min(at.saturating_add(room));
            let stray = index.expect("entries").stray_keywords(at..end, defined);
            cursor.bits = Some(cursor.bits.unwrap_or(0) | stray);
            cursor.at = Some(end);
            budget.spend_entries((end - at) as u64);
        } else if at < entries + records.len() {
            let end = (entries + records.len()).min(at.saturating_add(room));
            let mut stray = cursor.bits.unwrap_or(0);
            for &position in &records[at - entries..end - entries] {
                if let Head::Message(head) = parts.scanned.records[position].head {
                    stray |= head.flags.keywords.0 & !defined;
                }
            }
            cursor.bits = Some(stray);
            cursor.at = Some(end);
            budget.spend_entries((end - at) as u64);
        } else if !cursor.changed {
            let stray = cursor.bits.unwrap_or(0);
            let catalog = &mut parts.catalog;
            parts.report.keywords_voided += void_bits(&mut parts.log, catalog, id, stray, disk)?;
            cursor.changed = true;
            cursor.sub = 0;
            // A unit per mailbox (its look-ups), the void records' write included.
            budget.spend(1);
        } else if cursor.sub < entries {
            let valid = parts.catalog.mailboxes[&id].valid_keywords();
            let end = entries.min(cursor.sub.saturating_add(room));
            index.expect("entries").mask_keywords(cursor.sub..end, valid);
            budget.spend_entries((end - cursor.sub) as u64);
            cursor.sub = end;
        } else {
            cursor.next_mailbox();
        }
    }
    Ok(parts.ids.len() == cursor.mailbox)
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
