//! Spool compaction: space of expunged (past retention) and orphaned records comes back
//! (`core/FORMAT.md`, "Spool segments", "Spool compaction").
//!
//! A segment is rewritten *in place of itself*, not into a new segment: every record kept
//! (a live or retained message, every tombstone) stays at its offset, byte for byte, and each
//! run of records nothing needs becomes one gap record (`spool_gap.rs`) whose body is never
//! written, a hole on the file system. Keeping offsets keeps every spool position, so EMAILIDs
//! (stored, or a 1.0 record's own position), THREADIDs, index references, index spool order
//! and checkpoints all stay true, and no position is ever given twice. The switch is one
//! rename:
//!
//! ```text
//!  plan (walk headers) ─► copy kept records + write gaps into NNNNNNNN.seg.tmp
//!      ─► wait: that epoch durable ─► rename .tmp over NNNNNNNN.seg ─► wait: durable ─► done
//! ```
//!
//! A crash before the rename leaves the old segment (and a `.tmp` the next compaction
//! removes); after it, the new one; both hold every record an index or recovery needs. The
//! old file's inode lives on while a view maps it (a session sending a body from it). Only a
//! segment wholly below every index checkpoint and `threads.log`'s coverage is compacted, so
//! a recovery scan never starts inside one of its gaps, and everything the plan decided from
//! (expunges, deletes) is in an epoch the wait makes durable before the rename.
//!
//! Work is done in bounded steps ([`UserStore::compact_step`]), a unit being what the open's
//! units are (`opening.rs`): 4 KiB copied or a record header read.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::UserStore;
use super::codec::{SpoolPos, file_len, read_at, set_len, write_at};
use super::record::{self, Head, RECORD_HEADER_BYTES};
use super::spool::{SEGMENT_HEADER_BYTES, segment_name};
use super::spool_gap::{decode_gap, encode_gap};
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::types::Epoch;

/// Bytes copied per unit of work.
const UNIT_BYTES: u64 = 4096;

/// What decides which records go and which segments are worth a rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Expunged messages stay restorable this long after their expunge (seconds; 0: they go
    /// at the next compaction).
    pub retention_seconds: u64,
    /// A segment is rewritten once at least this many of its bytes became free since it was
    /// last looked at.
    pub free_bytes_min: u64,
    /// The time now, unix seconds (passed in: core reads no clock for policy).
    pub now_unix_seconds: i64,
}

/// What one [`UserStore::compact_step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactProgress {
    /// Nothing to do: no segment is worth a rewrite.
    Idle,
    /// Work was done and more remains: call again.
    Working,
    /// Waiting for a flush round: call again once `disk().epoch_durable() >= epoch`.
    Waiting(Epoch),
}

/// Counters of what compaction did in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Segments rewritten.
    pub segments_rewritten: u64,
    /// Bytes of records turned into gaps.
    pub bytes_freed: u64,
    /// Segments left alone because a record in them did not check out.
    pub segments_damaged: u64,
}

/// The compactor's state, kept by the store.
pub(super) struct SpoolCompaction<F> {
    job: Option<Job<F>>,
    /// For each segment looked at: its free bytes (by the indexes' count) then. It is looked
    /// at again once that count grew by `free_bytes_min`.
    seen: BTreeMap<u32, u64>,
    leftovers_removed: bool,
    stats: CompactionStats,
    /// Spool pins held ([`SpoolPin`]): while any is, no new rewrite is planned.
    pins: std::rc::Rc<std::cell::Cell<u32>>,
}

/// Holds spool compaction off a store while it lives: no segment rewrite is planned, so
/// every message record the store had when the pin was taken stays readable by its reference
/// (a rewrite already under way keeps every record an index entry named when it was planned,
/// and those include every message live now). A backup holds one between reading a store's
/// metadata and reading the last body it named. Dropping it gives it back.
pub struct SpoolPin(std::rc::Rc<std::cell::Cell<u32>>);

impl Drop for SpoolPin {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl<F> Default for SpoolCompaction<F> {
    fn default() -> Self {
        SpoolCompaction {
            job: None,
            seen: BTreeMap::new(),
            leftovers_removed: false,
            stats: CompactionStats::default(),
            pins: std::rc::Rc::default(),
        }
    }
}

/// One segment's rewrite.
struct Job<F> {
    segment: u32,
    /// The segment's length (the new file has the same).
    len: u64,
    nonce: u64,
    /// Free bytes (by the indexes) when planned.
    free: u64,
    /// Message records to keep: offset → checksum.
    keep: HashMap<u32, u32>,
    /// Records walked so far, in order: (offset, length, kept).
    spans: Vec<(u64, u64, bool)>,
    /// Bytes of records (not gaps already) that go.
    freeing: u64,
    /// The next offset to walk, then the next span to copy.
    at: u64,
    next: usize,
    phase: Phase,
    tmp: PathBuf,
    file: Option<F>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Walk,
    Copy,
    Gaps,
    Synced(Epoch),
    Renamed(Epoch),
}

impl<D: Disk> UserStore<D> {
    /// Does at most about `budget` units of spool compaction (see the module docs): call it
    /// when the shard has time, again while it says [`CompactProgress::Working`], after the
    /// epoch it names is durable when it says [`CompactProgress::Waiting`].
    ///
    /// # Errors
    /// The disk failed; the segment being rewritten is left as it was (its `.tmp` is removed
    /// by a later compaction).
    pub fn compact_step(
        &mut self,
        policy: &CompactionPolicy,
        budget: u64,
    ) -> Result<CompactProgress, StorageError> {
        let mut budget = budget.max(1);
        if !self.spool_compaction.leftovers_removed {
            self.remove_compaction_leftovers()?;
            budget = budget.saturating_sub(4);
        }
        if self.spool_compaction.job.is_none() {
            if self.spool_compaction.pins.get() > 0 {
                return Ok(CompactProgress::Idle);
            }
            let Some(job) = self.plan_compaction(policy) else {
                return Ok(CompactProgress::Idle);
            };
            self.spool_compaction.job = Some(job);
            budget = budget.saturating_sub(1);
        }
        let mut job = self.spool_compaction.job.take().expect("planned above");
        let progress = self.advance_job(&mut job, budget);
        match progress {
            Ok(Some(progress)) => {
                self.spool_compaction.job = Some(job);
                Ok(progress)
            }
            Ok(None) => Ok(CompactProgress::Working),
            Err(error) => {
                self.spool_compaction.seen.insert(job.segment, job.free);
                if job.file.is_some() {
                    let _ = self.disk.remove_file(&job.tmp);
                }
                Err(error)
            }
        }
    }

    /// A [`SpoolPin`] on this store.
    #[must_use]
    pub fn pin_spool(&self) -> SpoolPin {
        let pins = &self.spool_compaction.pins;
        pins.set(pins.get() + 1);
        SpoolPin(pins.clone())
    }

    /// What compaction did in this process.
    #[must_use]
    pub fn compaction_stats(&self) -> CompactionStats {
        self.spool_compaction.stats
    }

    /// Removes `*.seg.tmp` files a crash left in the middle of a rewrite.
    fn remove_compaction_leftovers(&mut self) -> Result<(), StorageError> {
        let dir = self.dir.join(super::spool::SPOOL_DIR);
        let names = self.disk.list_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
        for name in names.iter().filter(|n| n.ends_with(".seg.tmp")) {
            let path = dir.join(name);
            self.disk.remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
        self.spool_compaction.leftovers_removed = true;
        Ok(())
    }

    /// True when an index entry's record may go: expunged, and past retention (an expunge
    /// records its time in the entry's save date; 0, unknown, counts as long ago).
    pub(super) fn entry_dead(entry: &super::index::Entry, policy: &CompactionPolicy) -> bool {
        let retention = i64::try_from(policy.retention_seconds).unwrap_or(i64::MAX);
        entry.expunged
            && (entry.save_date == 0
                || i64::from(entry.save_date).saturating_add(retention) <= policy.now_unix_seconds)
    }

    /// The spool position below which a segment may be rewritten: the smallest index
    /// checkpoint, `threads.log`'s coverage, and the active segment's start (a recovery scan
    /// never starts below it).
    fn compaction_floor(&self) -> SpoolPos {
        let active = self.spool.end_pos().segment();
        let mut floor = SpoolPos::new(active, 0);
        for index in self.indexes.values() {
            floor = floor.min(index.header().checkpoint);
        }
        if let Some(covered) = self.threads.covered() {
            floor = floor.min(covered);
        }
        floor
    }

    /// Picks the segment with the most newly free bytes, if any has `free_bytes_min`: free
    /// bytes are the segment's length less its header and the records live or retained
    /// entries point at (so expunged records past retention, orphans, tombstones and gaps).
    fn plan_compaction(&mut self, policy: &CompactionPolicy) -> Option<Job<D::File>> {
        let active = self.spool.end_pos().segment();
        let floor = self.compaction_floor();
        let mut kept: BTreeMap<u32, u64> = BTreeMap::new();
        for index in self.indexes.values() {
            for entry in index.entries().iter().filter(|e| !Self::entry_dead(e, policy)) {
                *kept.entry(entry.spool.segment).or_default() += u64::from(entry.spool.len);
            }
        }
        let mut best: Option<(u64, u32, u64)> = None;
        for &segment in self.spool.segments() {
            // Wholly below every checkpoint: a scan never starts inside it.
            if SpoolPos::new(segment + 1, 0) > floor || segment >= active {
                continue;
            }
            let Ok(file) = self.spool.file(&self.disk, segment) else { continue };
            let Ok(len) = file_len(&file, &self.spool.path(segment)) else { continue };
            let used = SEGMENT_HEADER_BYTES + kept.get(&segment).copied().unwrap_or(0);
            let free = len.saturating_sub(used);
            let seen = self.spool_compaction.seen.get(&segment).copied().unwrap_or(0);
            let new = free.saturating_sub(seen);
            if new >= policy.free_bytes_min.max(1) && best.is_none_or(|(b, _, _)| new > b) {
                best = Some((new, segment, free));
            }
        }
        let (_, segment, free) = best?;
        let mut keep = HashMap::new();
        for index in self.indexes.values() {
            let live = index.entries().iter().filter(|e| !Self::entry_dead(e, policy));
            for entry in live.filter(|e| e.spool.segment == segment) {
                keep.insert(entry.spool.offset, entry.spool.crc);
            }
        }
        let file = self.spool.file(&self.disk, segment).ok()?;
        let len = file_len(&file, &self.spool.path(segment)).ok()?;
        let tmp =
            self.dir.join(super::spool::SPOOL_DIR).join(format!("{}.tmp", segment_name(segment)));
        Some(Job {
            segment,
            len,
            nonce: 0,
            free,
            keep,
            spans: Vec::new(),
            freeing: 0,
            at: SEGMENT_HEADER_BYTES,
            next: 0,
            phase: Phase::Walk,
            tmp,
            file: None,
        })
    }

    /// Advances `job` by about `budget` units: `Some(progress)` while it goes on, `None`
    /// once it is over (done or given up).
    fn advance_job(
        &mut self,
        job: &mut Job<D::File>,
        budget: u64,
    ) -> Result<Option<CompactProgress>, StorageError> {
        let mut spent = 0u64;
        while spent < budget {
            match job.phase {
                Phase::Walk => {
                    if !self.walk(job, &mut spent)? {
                        return Ok(None);
                    }
                }
                Phase::Copy => self.compact_copy(job, &mut spent)?,
                Phase::Gaps => {
                    self.write_gaps(job)?;
                    job.phase = Phase::Synced(self.disk.epoch_open());
                    spent += 1;
                }
                Phase::Synced(epoch) => {
                    if self.disk.epoch_durable() < epoch {
                        return Ok(Some(CompactProgress::Waiting(epoch)));
                    }
                    // Checkpoints only grow; should one not have (a bug), the rewrite is
                    // dropped rather than put where a recovery scan may start.
                    if SpoolPos::new(job.segment + 1, 0) > self.compaction_floor() {
                        tracing::warn!(segment = job.segment, "spool compaction abandoned");
                        self.disk
                            .remove_file(&job.tmp)
                            .map_err(|e| StorageError::io(&job.tmp, e))?;
                        self.spool_compaction.seen.insert(job.segment, job.free);
                        return Ok(None);
                    }
                    let target = self.spool.path(job.segment);
                    self.disk
                        .rename(&job.tmp, &target)
                        .map_err(|e| StorageError::io(&target, e))?;
                    // Reads open the new file from now on; views of the old one keep its map.
                    self.spool.forget_file(job.segment);
                    job.phase = Phase::Renamed(self.disk.epoch_open());
                    spent += 1;
                }
                Phase::Renamed(epoch) => {
                    if self.disk.epoch_durable() < epoch {
                        return Ok(Some(CompactProgress::Waiting(epoch)));
                    }
                    self.spool_compaction.stats.segments_rewritten += 1;
                    self.spool_compaction.stats.bytes_freed += job.freeing;
                    self.spool_compaction.seen.insert(job.segment, job.free);
                    return Ok(None);
                }
            }
        }
        Ok(Some(CompactProgress::Working))
    }

    /// Walks record headers from `job.at`; false when the job is over (nothing to free, or a
    /// record that does not check out: the segment is left alone).
    fn walk(&mut self, job: &mut Job<D::File>, spent: &mut u64) -> Result<bool, StorageError> {
        let path = self.spool.path(job.segment);
        let file = self.spool.file(&self.disk, job.segment)?;
        if job.at == SEGMENT_HEADER_BYTES && job.nonce == 0 {
            let header = super::spool::read_segment_header(&file, &path)?
                .filter(|h| h.number == job.segment && h.header_size == 64);
            let Some(header) = header else {
                return Ok(self.give_up(job));
            };
            job.nonce = header.nonce;
        }
        let mut steps = 0;
        while job.at < job.len && steps < 64 {
            steps += 1;
            let mut head = [0u8; RECORD_HEADER_BYTES];
            if job.len - job.at < RECORD_HEADER_BYTES as u64 {
                return Ok(self.give_up(job));
            }
            read_at(&file, &path, &mut head, job.at)?;
            if let Some(gap) = decode_gap(job.nonce, &head).filter(|&g| g <= job.len - job.at) {
                job.spans.push((job.at, gap, false));
                job.at += gap;
                continue;
            }
            let Some(header) = record::decode_header(&head) else {
                return Ok(self.give_up(job));
            };
            let len = header.record_len();
            if len > job.len - job.at {
                return Ok(self.give_up(job));
            }
            let offset = u32::try_from(job.at).expect("segments < 4 GiB");
            let kept = match header.head {
                Head::Tombstone { .. } => true,
                Head::Message(_) => job.keep.get(&offset) == Some(&header.crc),
            };
            job.spans.push((job.at, len, kept));
            if !kept {
                job.freeing += len;
            }
            job.at += len;
        }
        *spent += steps;
        if job.at < job.len {
            return Ok(true);
        }
        if job.freeing == 0 {
            self.spool_compaction.seen.insert(job.segment, job.free);
            return Ok(false);
        }
        let tmp = self.disk.open(&job.tmp, OpenMode::CreateIfMissing);
        let tmp = tmp.map_err(|e| StorageError::io(&job.tmp, e))?;
        set_len(&tmp, &job.tmp, 0)?;
        let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
        read_at(&file, &path, &mut header, 0)?;
        write_at(&tmp, &job.tmp, &header, 0)?;
        set_len(&tmp, &job.tmp, job.len)?;
        job.file = Some(tmp);
        job.phase = Phase::Copy;
        job.next = 0;
        Ok(true)
    }

    fn give_up(&mut self, job: &Job<D::File>) -> bool {
        tracing::warn!(segment = job.segment, offset = job.at, "spool compaction skips a segment");
        self.spool_compaction.stats.segments_damaged += 1;
        self.spool_compaction.seen.insert(job.segment, job.free);
        false
    }

    /// Copies kept records, verified, to the same offsets of the new file.
    fn compact_copy(
        &mut self,
        job: &mut Job<D::File>,
        spent: &mut u64,
    ) -> Result<(), StorageError> {
        let path = self.spool.path(job.segment);
        let file = self.spool.file(&self.disk, job.segment)?;
        let target = job.file.clone().expect("made after the walk");
        while let Some(&(at, len, kept)) = job.spans.get(job.next) {
            job.next += 1;
            if !kept {
                continue;
            }
            let bytes = file.view(at, len).map_err(|e| StorageError::io(&path, e))?;
            if record::check_whole(job.nonce, &bytes).is_none() {
                return Err(StorageError::Corrupt { what: "spool record", path, offset: at });
            }
            write_at(&target, &job.tmp, &bytes, at)?;
            *spent += len.div_ceil(UNIT_BYTES);
            return Ok(());
        }
        job.phase = Phase::Gaps;
        Ok(())
    }

    /// Writes one gap header at the start of each run of records that go.
    fn write_gaps(&mut self, job: &Job<D::File>) -> Result<(), StorageError> {
        let target = job.file.clone().expect("made after the walk");
        let mut run: Option<(u64, u64)> = None;
        let spans = job.spans.iter().copied().chain([(job.len, 0, true)]);
        for (at, len, kept) in spans {
            match (kept, run) {
                (false, None) => run = Some((at, len)),
                (false, Some((start, total))) => run = Some((start, total + len)),
                (true, Some((start, total))) => {
                    write_at(&target, &job.tmp, &encode_gap(job.nonce, total), start)?;
                    run = None;
                }
                (true, None) => {}
            }
        }
        Ok(())
    }
}
