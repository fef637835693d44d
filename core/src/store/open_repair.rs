//! Recovery on open, the repairs after the spool scan (`core/FORMAT.md`, "Recovery on open",
//! steps 5 to 8), each a resumable phase as in `open.rs`: drop index entries no spool record
//! backs, create missing indexes, catch up from the scanned records (which rebuilds a missing
//! index), restore the flags of indexes whose header was damaged, rewrite the headers of what
//! changed, and mark the entries the scan checked as verified.

use super::codec::SpoolPos;
use super::index::{self, Entry, Index, IndexHeader};
use super::open::Cursor;
use super::opening::{Budget, Parts};
use super::record::Head;
use super::scan::ScanResult;
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::types::MailboxId;

/// Drops index entries that no good spool record backs: at or past the scan start, those no
/// scanned record matches; anywhere, those in a removed segment. An entry whose record lies in
/// a skipped damaged span is expunged; at the first other such entry the index is cut
/// (entries are in spool order).
pub(super) fn drop_step<D: Disk>(
    parts: &mut Parts<D>,
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
        let scanned = &parts.scanned;
        let slot = *cursor.at.get_or_insert_with(|| {
            // A unit per mailbox: its look-ups.
            budget.spend(1);
            first_unchecked(index, parts.scan_start, scanned)
        });
        let Some(&entry) = index.entries().get(slot) else {
            if cursor.changed {
                parts.changed.insert(id);
            }
            cursor.next_mailbox();
            continue;
        };
        budget.spend_entries(1);
        let removed = scanned.removed_segments.contains(&entry.spool.segment);
        if !removed && backed(scanned, id, &entry) {
            cursor.at = Some(slot + 1);
            continue;
        }
        // An expunged message whose record spool compaction replaced with a gap: the entry
        // stays as the expunge's history (QRESYNC), its record is gone on purpose.
        if !removed && entry.expunged && scanned.in_gap(entry.spool) {
            cursor.at = Some(slot + 1);
            continue;
        }
        // Expunged in place only where the index stays in spool order (a stale entry left
        // by an earlier crash may not be).
        let in_order = slot == 0 || index.entries()[slot - 1].spool.end() <= entry.spool.pos();
        let damaged = in_order && !removed && scanned.is_damaged(entry.spool);
        if !damaged || overtaken(scanned, id, &entry, budget) {
            parts.report.index_records_dropped += (index.entries().len() - slot) as u64;
            // The dropped UIDs and modseqs may have been seen by a session before the crash:
            // UIDNEXT and HIGHESTMODSEQ stay past them.
            index.truncate(slot)?;
            budget.spend(1);
            parts.changed.insert(id);
            cursor.next_mailbox();
            continue;
        }
        // Its record is damaged in durable spool with good records after it: only this
        // message is lost. It is expunged (clients see it vanish) rather than the index cut,
        // which would drop the acknowledged flags of every later message.
        if !entry.expunged {
            let modseq = index.next_modseq();
            index.rewrite(slot, Entry { expunged: true, modseq, ..entry })?;
            budget.spend(1);
            parts.report.index_records_dropped += 1;
            cursor.changed = true;
        }
        cursor.at = Some(slot + 1);
    }
    Ok(parts.ids.len() == cursor.mailbox)
}

/// The first entry [`drop_step`] checks: the first at or past the scan start, or the first
/// in a removed segment if that comes earlier. (Entries are in spool order, so the entries
/// of a segment are a run.)
fn first_unchecked<F: DiskFile>(
    index: &Index<F>,
    scan_start: SpoolPos,
    scanned: &ScanResult,
) -> usize {
    let entries = index.entries();
    let first = entries.partition_point(|e| e.spool.pos() < scan_start);
    let removed = scanned.removed_segments.iter().filter_map(|&segment| {
        let at = entries.partition_point(|e| e.spool.segment < segment);
        entries.get(at).filter(|e| e.spool.segment == segment).map(|_| at)
    });
    removed.fold(first, usize::min)
}

/// True when a scanned record matches the entry: same place, length and checksum, and the
/// entry's mailbox, UID and size.
fn backed(scanned: &ScanResult, id: MailboxId, entry: &Entry) -> bool {
    scanned.at(entry.spool.pos()).is_some_and(|r| {
        r.spool == entry.spool
            && matches!(r.head, Head::Message(h)
                if h.mailbox == id && h.uid == entry.uid && h.message_len == entry.size)
    })
}

/// A scanned record of this mailbox before the entry in the spool with a UID not below its
/// own means the entry is a leftover of a crash, not damage: its record was lost, recovery
/// cut the entry, a crash lost that cut too, and the spool was written again over where the
/// record was (then the entry may even lie inside a span skipped as damaged). Kept as
/// expunged, it would sit before the message that overtook it: it must go.
fn overtaken(scanned: &ScanResult, id: MailboxId, entry: &Entry, budget: &mut Budget) -> bool {
    let own = scanned.of_mailbox(id);
    let before = own.partition_point(|&r| scanned.records[r].spool.pos() < entry.spool.pos());
    budget.spend_entries(before as u64);
    own[..before]
        .iter()
        .any(|&r| matches!(scanned.records[r].head, Head::Message(h) if h.uid >= entry.uid))
}

/// Creates an empty index for each missing mailbox (catch-up then fills it from the spool).
pub(super) fn create_step<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    dir: &std::path::Path,
    cursor: &mut Cursor<D::File>,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    while budget.left() {
        let Some(&id) = parts.missing.get(cursor.mailbox) else {
            return Ok(true);
        };
        // An open, a header write and a length.
        if !budget.start_piece(super::open::FILE_OPEN_UNITS) {
            break;
        }
        let header = IndexHeader {
            mailbox: id,
            uid_validity: parts.catalog.mailboxes[&id].uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            checkpoint: SpoolPos::default(),
            messages: 0,
            sealed: false,
            first_recent_uid: 1,
        };
        let index = Index::create(disk, index::index_path(dir, id), header)?;
        parts.indexes.insert(id, index);
        parts.report.indexes_rebuilt += 1;
        parts.changed.insert(id);
        cursor.next_mailbox();
    }
    Ok(parts.missing.len() == cursor.mailbox)
}

/// Applies scanned records the index lacks: messages with a UID above the index's last, after
/// it in the spool, are appended (so a record lost from the index comes back from the spool,
/// even when UIDNEXT already passed it), tombstones mark their UIDs expunged. A missing index
/// is rebuilt this way from a full scan.
pub(super) fn catch_up_step<D: Disk>(
    parts: &mut Parts<D>,
    cursor: &mut Cursor<D::File>,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    while budget.left() {
        let Some(&id) = parts.ids.get(cursor.mailbox) else {
            return Ok(true);
        };
        let index = parts.indexes.get_mut(&id).expect("every mailbox has an index by now");
        let at = *cursor.at.get_or_insert_with(|| {
            budget.spend(1);
            index.reserve(parts.scanned.of_mailbox(id).len());
            0
        });
        let Some(&position) = parts.scanned.of_mailbox(id).get(at) else {
            if cursor.changed || index.header_stale() {
                parts.changed.insert(id);
            }
            cursor.next_mailbox();
            continue;
        };
        let record = &parts.scanned.records[position];
        let done = match record.head {
            // Spool order follows UID order: a record before the index's last entry in the
            // spool (a record rewritten, with a checksum that holds, as one of this mailbox)
            // is not appended, whatever its UID.
            Head::Message(head) => {
                let after = index.entries().last().is_none_or(|last| {
                    last.uid < head.uid && last.spool.end() <= record.spool.pos()
                });
                budget.spend_entries(1);
                if after && !index.is_full() {
                    let mut flags = head.flags;
                    flags.keywords.0 &= parts.catalog.mailboxes[&id].valid_keywords();
                    let modseq = index.next_modseq();
                    let date = head.date;
                    let size = head.message_len;
                    let spool = record.spool;
                    let entry = Entry {
                        uid: head.uid,
                        flags,
                        expunged: false,
                        modseq,
                        date,
                        size,
                        spool,
                        save_date: 0,
                    };
                    index.append(entry)?;
                    budget.spend(1);
                    parts.report.index_records_added += 1;
                    cursor.changed = true;
                }
                true
            }
            Head::Tombstone { modseq, .. } => {
                if cursor.sub == 0 && modseq > index.highest_modseq() {
                    index.raise_highest_modseq(modseq);
                    cursor.changed = true;
                }
                tombstone_step(index, &record.uids, cursor, &mut parts.report, budget)?
            }
        };
        if done {
            cursor.at = Some(at + 1);
            cursor.sub = 0;
        }
    }
    Ok(parts.ids.len() == cursor.mailbox)
}

/// Marks the UIDs a tombstone names expunged, from `cursor.sub` on, while the budget lasts;
/// true once all are.
fn tombstone_step<F: DiskFile>(
    index: &mut Index<F>,
    uids: &[crate::types::Uid],
    cursor: &mut Cursor<F>,
    report: &mut super::RecoveryReport,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    while let Some(&uid) = uids.get(cursor.sub) {
        if !budget.left() {
            return Ok(false);
        }
        cursor.sub += 1;
        budget.spend_entries(1);
        let Some(slot) = index.find(uid) else {
            // Its message was lost in a crash (a later record survived, so the tombstone is
            // scanned again on the next open): never give the UID again, or this tombstone
            // would expunge the new message.
            if uid.get() >= index.uid_next() {
                index.raise_uid_next_past(uid);
                cursor.changed = true;
            }
            continue;
        };
        let entry = index.entries()[slot];
        if entry.expunged {
            continue;
        }
        let modseq = index.next_modseq();
        index.rewrite(slot, Entry { expunged: true, modseq, ..entry })?;
        budget.spend(1);
        report.expunges_applied += 1;
        cursor.changed = true;
    }
    Ok(true)
}

/// Gives a rebuilt index the flags (and expunges) of the old records that still check out
/// and point at exactly the record the rebuild found (UID and spool reference), as
/// `reconstruct` does: an index whose header was damaged keeps its acknowledged flags. Each
/// change takes a new modseq above every old record's. Three passes per index: the old
/// records by UID, the highest modseq among the matched ones, the rewrites.
pub(super) fn restore_step<D: Disk>(
    parts: &mut Parts<D>,
    cursor: &mut Cursor<D::File>,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    // `cursor.mailbox` holds the id to go on from (the salvaged indexes are few and sparse).
    while budget.left() {
        let from = MailboxId(u32::try_from(cursor.mailbox).expect("ids are u32"));
        let Some((&id, salvaged)) = parts.salvaged.range(from..).next() else {
            return Ok(true);
        };
        cursor.mailbox = id.0 as usize;
        let index = parts.indexes.get_mut(&id).expect("a salvaged index was rebuilt");
        let valid_keywords = parts.catalog.mailboxes[&id].valid_keywords();
        let at = cursor.at.unwrap_or(0);
        let room = usize::try_from(budget.room_entries()).unwrap_or(usize::MAX);
        let entries = index.entries().len();
        match cursor.sub {
            0 if at < salvaged.len() => {
                if at == 0 {
                    // Reserved whole: a rehash while growing would touch every entry in one
                    // step.
                    cursor.old.reserve(salvaged.len());
                }
                let end = salvaged.len().min(at.saturating_add(room));
                cursor.old.extend(salvaged[at..end].iter().map(|e| (e.uid.get(), *e)));
                budget.spend_entries((end - at) as u64);
                cursor.at = Some(end);
            }
            1 if at < entries => {
                let end = entries.min(at.saturating_add(room));
                let old = &cursor.old;
                let highest = index.entries()[at..end]
                    .iter()
                    .filter_map(|e| old.get(&e.uid.get()).filter(|o| o.spool == e.spool))
                    .map(|o| o.modseq)
                    .max();
                cursor.bits = cursor.bits.max(highest);
                budget.spend_entries((end - at) as u64);
                cursor.at = Some(end);
            }
            2 if at < entries => {
                restore_one(index, &cursor.old, at, valid_keywords, budget)?;
                cursor.at = Some(at + 1);
            }
            0 | 1 => {
                if cursor.sub == 1 {
                    index.raise_highest_modseq(cursor.bits.unwrap_or(0));
                }
                budget.spend_entries(1);
                cursor.sub += 1;
                cursor.at = None;
            }
            _ => cursor.next_mailbox(),
        }
    }
    Ok(false)
}

/// Gives the entry in `slot` the flags and expunged state of the old record of its UID, if
/// that points at the same spool record.
fn restore_one<F: DiskFile>(
    index: &mut Index<F>,
    old: &std::collections::HashMap<u32, Entry>,
    slot: usize,
    valid_keywords: u64,
    budget: &mut Budget,
) -> Result<(), StorageError> {
    budget.spend_entries(1);
    let entry = index.entries()[slot];
    let Some(old) = old.get(&entry.uid.get()).filter(|o| o.spool == entry.spool) else {
        return Ok(());
    };
    let mut flags = old.flags;
    flags.keywords.0 &= valid_keywords;
    let expunged = entry.expunged || old.expunged;
    let save_date = if entry.save_date == 0 { old.save_date } else { entry.save_date };
    if flags == entry.flags && expunged == entry.expunged && save_date == entry.save_date {
        return Ok(());
    }
    let modseq = index.next_modseq();
    index.rewrite(slot, Entry { flags, expunged, modseq, save_date, ..entry })?;
    budget.spend(1);
    Ok(())
}

/// Rewrites the headers of the indexes recovery changed (checkpoint unchanged), then makes
/// the spool's last segment the active one.
pub(super) fn headers_step<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    while budget.left() {
        let Some(id) = parts.changed.pop_first() else {
            parts.spool.activate(disk)?;
            budget.spend(1);
            return Ok(true);
        };
        let index = parts.indexes.get_mut(&id).expect("changed ids are loaded");
        let checkpoint = index.header().checkpoint;
        index.write_header(checkpoint)?;
        budget.spend(1);
    }
    Ok(false)
}

/// Every entry at or past the scan start matched a record whose checksum the scan checked
/// (but for the expunged entries of damaged records): reads need not check it again. Pair
/// assertion: each lies inside the spool.
pub(super) fn verify_step<D: Disk>(
    parts: &mut Parts<D>,
    cursor: &mut Cursor<D::File>,
    budget: &mut Budget,
) -> bool {
    let end = parts.spool.end_pos();
    while budget.left() {
        let Some(&id) = parts.ids.get(cursor.mailbox) else {
            return true;
        };
        let index = &parts.indexes[&id];
        let scan_start = parts.scan_start;
        if cursor.at.is_none() {
            budget.spend(1);
        }
        let first = *cursor
            .at
            .get_or_insert_with(|| index.entries().partition_point(|e| e.spool.pos() < scan_start));
        let room = usize::try_from(budget.room_entries()).unwrap_or(usize::MAX);
        let last = index.entries().len().min(first.saturating_add(room));
        for slot in first..last {
            let entry = &index.entries()[slot];
            assert!(entry.spool.end() <= end, "no index entry past the spool end");
            // A damaged record's entry (expunged by `drop_step`) was not checked.
            if !parts.scanned.is_damaged(entry.spool) {
                index.mark_verified(slot);
            }
        }
        budget.spend_entries((last - first) as u64);
        if last == index.entries().len() {
            cursor.next_mailbox();
        } else {
            cursor.at = Some(last);
        }
    }
    parts.ids.len() == cursor.mailbox
}

/// Re-sets the length of every segment the scan covered, a unit each, which marks them dirty:
/// what recovery validated may sit in the page cache only (left by a crashed process), and
/// the next flush round must make it durable before any checkpoint passes it. `next` is a
/// position in the spool's list of segments (`None`: the first the scan covered).
pub(super) fn touch_step<D: Disk>(
    parts: &mut Parts<D>,
    disk: &D,
    next: &mut Option<usize>,
    budget: &mut Budget,
) -> Result<bool, StorageError> {
    let segments = parts.spool.segments();
    let scan_start = parts.scan_start.segment();
    let next = next.get_or_insert_with(|| segments.partition_point(|&s| s < scan_start));
    while budget.left() {
        let Some(&number) = segments.get(*next) else {
            return Ok(true);
        };
        let file = parts.spool.file(disk, number)?;
        let path = parts.spool.path(number);
        let len = super::codec::file_len(&file, &path)?;
        super::codec::set_len(&file, &path, len)?;
        budget.spend(1);
        *next += 1;
    }
    Ok(*next == segments.len())
}
