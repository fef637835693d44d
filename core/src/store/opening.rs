//! Opening a user's store in bounded steps, so that recovery never holds the shard's thread
//! (and every other session on it) for longer than one step (issue 7).
//!
//! The store is not `Send`, so it cannot be opened on another thread and moved in; instead
//! the open is resumable, like the IMAP commands (`protocols/src/imap/command/slice.rs`):
//!
//! ```text
//!  UserStore::opening(disk, dir) ─► Opening ── step(budget) ─┬─► Pending(Opening) ─┐
//!                                      ▲                    │                    │ the caller
//!                                      └────────────────────┼────────────────────┘ lets others run
//!                                                           └─► Open { store, work }
//! ```
//!
//! `UserStore::open` is the same loop with an unlimited budget, so the two cannot drift apart.
//!
//! *The unit of work* ([`Budget`]) is what checking one small spool record costs (about a
//! microsecond or two): reading and checksumming up to 4 KiB of any file ([`UNIT_BYTES`]),
//! one write (an index record or header, a log record, a cut), reading and decoding 16 index
//! records ([`UNIT_RECORDS`]), handling 64 index entries in memory ([`UNIT_ENTRIES`]), or
//! a phase's look-ups for one mailbox.
//! `limits::OPEN_STEP_UNITS` is the budget a shard gives one step.
//!
//! A step starts a piece of work only while it has budget left, so it passes its budget by
//! less than one piece. Opening a file (an index, a segment) is a piece of four units that a
//! step starts only if it fits (or if the step has done nothing yet). Other pieces are one
//! unit or less (a large spool record is checksummed a budget's worth of bytes per step, and
//! the search for the next good record after a damaged one goes on across steps too),
//! except these, done whole: replaying `mailboxes.log` and sorting stray index files (the
//! first step; bounded by `limits::MAILBOX_LOG_BYTES_MAX` and kept small by log compaction),
//! the repair of a segment header (`limits::NONCE_RECOVERY_RECORDS_MAX` records), and the
//! last step (touching the log, creating a missing INBOX): damage and a few writes, not the
//! store's size.
//!
//! The phases, in order (`core/FORMAT.md`, "Recovery on open", gives the rules):
//! log replay and stray index files; loading each index (16 records per unit); checking
//! the bounds of entries before each checkpoint; the spool scan; voiding stray keyword bits;
//! dropping entries no record backs; creating missing indexes; catch-up (which rebuilds a
//! missing index from a full scan); restoring the flags of damaged-header indexes; header
//! rewrites; marking the scanned entries verified; touching the scanned segments (so the next
//! flush makes what recovery validated durable); teaching the Message-ID map (THREADID,
//! `threads.rs`) the scanned records past its coverage, a unit each; and the last step.
//!
//! Between steps nothing else touches the store's files: the registry keeps one opening per
//! user, and the data-dir lock keeps other processes out. Flush rounds of other users may run
//! between steps and make part of recovery's writes durable: every prefix of them is a state
//! a crash in the middle of a one-piece open could leave too, so each step boundary is
//! crash-safe (`core/tests/store_opening.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::catalog::Catalog;
use super::checkpoint::{Checkpoints, Deferred};
use super::codec::SpoolPos;
use super::index::{Entry, Index};
use super::log::{LogOpen, MailboxLog};
use super::open::{self, Cursor};
use super::open_repair;
use super::scan::{ScanResult, Scanner};
use super::spool::{SPOOL_DIR, Spool};
use super::threads::{self, Threads};
use super::{RecoveryReport, UserStore, names};
use crate::disk::Disk;
use crate::error::{OpenError, StorageError};
use crate::types::MailboxId;

/// Bytes read and checksummed per unit of work.
pub(crate) const UNIT_BYTES: u64 = 4096;
/// Index entries handled in memory per unit of work (a look-up, a mask, a bit set).
pub(crate) const UNIT_ENTRIES: u64 = 64;
/// Index records read and decoded per unit of work.
const UNIT_RECORDS: u64 = super::index::RECORDS_PER_UNIT;
const _: () = assert!(UNIT_ENTRIES.is_multiple_of(UNIT_RECORDS));
const _: () = assert!(UNIT_RECORDS * super::index::RECORD_BYTES as u64 <= UNIT_BYTES);

/// The work one step may do, in units (see the module docs), and what it did.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    spent: u64,
    /// Entries handled that do not yet make a whole unit.
    entries: u64,
    /// A piece did not fit in what was left: the step ends.
    ended: bool,
}

impl Budget {
    /// A budget of `limit` units (at least one).
    pub(crate) fn new(limit: u64) -> Budget {
        Budget { limit: limit.max(1), spent: 0, entries: 0, ended: false }
    }

    /// A budget that is never spent: the whole open in one step.
    pub(crate) fn unlimited() -> Budget {
        Budget::new(u64::MAX)
    }

    /// True while a new piece of work may start.
    pub(crate) fn left(&self) -> bool {
        self.spent < self.limit && !self.ended
    }

    /// Starts a piece of `units` that cannot be split (opening a file): true, and counted,
    /// when it fits in what is left or the step has done nothing yet (every step does some
    /// work); otherwise false, and the step ends here.
    pub(crate) fn start_piece(&mut self, units: u64) -> bool {
        if self.spent > 0 && self.room() < units {
            self.ended = true;
            return false;
        }
        self.spend(units);
        true
    }

    /// Units still to spend (at least one while [`Budget::left`]).
    pub(crate) fn room(&self) -> u64 {
        self.limit.saturating_sub(self.spent)
    }

    /// Entries that may still be handled in memory.
    pub(crate) fn room_entries(&self) -> u64 {
        self.room().saturating_mul(UNIT_ENTRIES).saturating_sub(self.entries).max(1)
    }

    /// Counts `units` of work done.
    pub(crate) fn spend(&mut self, units: u64) {
        self.spent = self.spent.saturating_add(units);
    }

    /// Bytes that may still be read and checksummed.
    pub(crate) fn room_bytes(&self) -> u64 {
        self.room().saturating_mul(UNIT_BYTES).max(1)
    }

    /// Index records that may still be read and decoded.
    pub(crate) fn room_records(&self) -> u64 {
        (self.room_entries() / (UNIT_ENTRIES / UNIT_RECORDS)).max(1)
    }

    /// Counts `count` index records read and decoded: a unit per [`UNIT_RECORDS`].
    pub(crate) fn spend_records(&mut self, count: u64) {
        self.spend_entries(count.saturating_mul(UNIT_ENTRIES / UNIT_RECORDS));
    }

    /// Counts `bytes` read and checksummed: a unit per [`UNIT_BYTES`], at least one.
    pub(crate) fn spend_bytes(&mut self, bytes: u64) {
        self.spend(bytes.div_ceil(UNIT_BYTES).max(1));
    }

    /// Counts `count` index entries handled in memory: a unit per [`UNIT_ENTRIES`].
    pub(crate) fn spend_entries(&mut self, count: u64) {
        self.entries = self.entries.saturating_add(count);
        self.spend(self.entries / UNIT_ENTRIES);
        self.entries %= UNIT_ENTRIES;
    }

    /// Units spent.
    pub(crate) fn spent(&self) -> u64 {
        self.spent
    }
}

/// Where an open is: the coarse phase, for logs and progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenStage {
    /// Not started: the next step replays `mailboxes.log`.
    Log,
    /// Loading the mailbox indexes and checking their entries' bounds.
    Indexes,
    /// Checking the spool written since the oldest checkpoint (all of it for a missing
    /// index).
    Scan,
    /// Bringing the indexes in line with the spool (rebuilding missing ones).
    Repair,
    /// Marking what recovery checked, and the last step.
    Finish,
}

/// How much work an open did: for a log line ("store open took N steps") and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenWork {
    /// Steps taken.
    pub steps: u64,
    /// Units of work done (see `store/opening.rs`: about one per small spool record checked,
    /// per 4 KiB read, per write, per 64 index entries handled).
    pub units: u64,
    /// Units the last step did.
    pub last_step_units: u64,
    /// Where the open is.
    pub stage: OpenStage,
    /// Spool bytes the scan has covered so far.
    pub scan_bytes: u64,
}

/// What [`Opening::step`] gives back.
#[must_use]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per step and matched at once; boxing the store would cost every \
              caller a deref for the store's whole life"
)]
pub enum OpenProgress<D: Disk> {
    /// Not open yet: call [`Opening::step`] again (after letting other work run).
    Pending(Opening<D>),
    /// The store is open (and recovered).
    Open {
        /// The store.
        store: UserStore<D>,
        /// The work the whole open did.
        work: OpenWork,
    },
}

/// A store being opened in steps (see the module docs and [`UserStore::opening`]).
pub struct Opening<D: Disk> {
    disk: Rc<D>,
    dir: PathBuf,
    work: OpenWork,
    /// What recovery has built so far; `None` before the first step.
    parts: Option<Box<Parts<D>>>,
    phase: Phase<D::File>,
}

/// Everything recovery builds before the store exists.
pub(super) struct Parts<D: Disk> {
    pub log: MailboxLog<D::File>,
    pub threads: Threads<D::File>,
    pub catalog: Catalog,
    pub report: RecoveryReport,
    pub deferred: Deferred,
    pub spool: Spool<D>,
    /// Every mailbox of the log, in id order.
    pub ids: Vec<MailboxId>,
    pub indexes: BTreeMap<MailboxId, Index<D::File>>,
    /// Ids whose index must be rebuilt from the spool.
    pub missing: Vec<MailboxId>,
    /// Ids whose index was cut at a damaged record in its middle, or at an entry out of
    /// bounds: their scan starts no later than their last kept entry.
    pub cut: Vec<MailboxId>,
    /// For indexes with a damaged header: their records that check out on their own.
    pub salvaged: BTreeMap<MailboxId, Vec<Entry>>,
    /// Lengths of the segments the bounds check looked at.
    pub segment_lengths: BTreeMap<u32, u64>,
    pub scan_start: SpoolPos,
    pub scanned: ScanResult,
    /// Indexes whose header must be rewritten.
    pub changed: BTreeSet<MailboxId>,
}

/// The phase an open is in, with its cursor (see the module docs for the order).
enum Phase<F> {
    Begin,
    Load(Cursor<F>),
    Bounds(Cursor<F>),
    /// The scanner, and how many of its records have raised the mailbox id floor.
    Scan(Box<Scanner<F>>, usize),
    Keywords(Cursor<F>),
    Drop(Cursor<F>),
    Create(Cursor<F>),
    CatchUp(Cursor<F>),
    Restore(Cursor<F>),
    Headers,
    Verify(Cursor<F>),
    /// Dirtying the segments the scan covered: the next, by position in the spool's list
    /// (`None` before the first).
    Touch(Option<usize>),
    /// Teaching the Message-ID map what the scanned records past its coverage carry: the
    /// next scanned record.
    Threads(usize),
    Finish,
}

impl<D: Disk> Opening<D> {
    /// An open of the store in `dir` that has done nothing yet.
    pub(super) fn new(disk: Rc<D>, dir: &Path) -> Opening<D> {
        let work = OpenWork {
            steps: 0,
            units: 0,
            last_step_units: 0,
            stage: OpenStage::Log,
            scan_bytes: 0,
        };
        Opening { disk, dir: dir.to_path_buf(), work, parts: None, phase: Phase::Begin }
    }

    /// The work done so far, and where the open is.
    #[must_use]
    pub fn work(&self) -> OpenWork {
        self.work
    }

    /// Does at most about `budget` units of work (at least one; see the module docs for
    /// the unit and the pieces done whole), and gives back the open store once done.
    ///
    /// # Errors
    /// As [`UserStore::open`]. The opening is gone: a later attempt starts again.
    pub fn step(mut self, budget: u64) -> Result<OpenProgress<D>, OpenError> {
        let mut budget = Budget::new(budget);
        let done = self.advance(&mut budget)?;
        self.work.steps += 1;
        if !done {
            self.work.units += budget.spent();
            self.work.last_step_units = budget.spent();
            self.work.stage = self.phase.stage();
            return Ok(OpenProgress::Pending(self));
        }
        let parts = self.parts.take().expect("an open that finished began");
        let store = finish(self.disk, self.dir, *parts, &mut budget)?;
        self.work.units += budget.spent();
        self.work.last_step_units = budget.spent();
        self.work.stage = OpenStage::Finish;
        Ok(OpenProgress::Open { store, work: self.work })
    }

    /// Runs phases until the budget is spent; true when only the last step is left.
    fn advance(&mut self, budget: &mut Budget) -> Result<bool, OpenError> {
        let disk = &*self.disk;
        if self.parts.is_none() {
            self.parts = Some(Box::new(begin(disk, &self.dir, budget)?));
            self.phase = Phase::Load(Cursor::default());
        }
        let parts = self.parts.as_mut().expect("begun");
        let dir = &self.dir;
        while budget.left() && !matches!(self.phase, Phase::Finish) {
            // Each arm does what its budget allows and names the phase to go on with.
            self.phase = match std::mem::replace(&mut self.phase, Phase::Finish) {
                Phase::Begin => unreachable!("the first step begins"),
                Phase::Load(mut c) => match open::load_step(parts, disk, dir, &mut c, budget)? {
                    true => Phase::Bounds(Cursor::default()),
                    false => Phase::Load(c),
                },
                Phase::Bounds(mut c) => match open::bounds_step(parts, disk, &mut c, budget)? {
                    true => {
                        open::settle_scan_start(parts, budget);
                        let segments = parts.spool.segments();
                        Phase::Scan(Box::new(Scanner::new(segments, parts.scan_start)), 0)
                    }
                    false => Phase::Bounds(c),
                },
                Phase::Scan(mut scanner, mut floored) => {
                    open::scan_step(parts, disk, &mut scanner, &mut floored, budget)?;
                    self.work.scan_bytes = scanner.covered_bytes();
                    if scanner.is_done() {
                        open::scan_done(parts, scanner.into_result());
                        Phase::Keywords(Cursor::default())
                    } else {
                        Phase::Scan(scanner, floored)
                    }
                }
                Phase::Keywords(mut c) => match open::keywords_step(parts, disk, &mut c, budget)? {
                    true => Phase::Drop(Cursor::default()),
                    false => Phase::Keywords(c),
                },
                Phase::Drop(mut c) => match open_repair::drop_step(parts, &mut c, budget)? {
                    true => Phase::Create(Cursor::default()),
                    false => Phase::Drop(c),
                },
                Phase::Create(mut c) => {
                    match open_repair::create_step(parts, disk, dir, &mut c, budget)? {
                        true => Phase::CatchUp(Cursor::default()),
                        false => Phase::Create(c),
                    }
                }
                Phase::CatchUp(mut c) => match open_repair::catch_up_step(parts, &mut c, budget)? {
                    true => Phase::Restore(Cursor::default()),
                    false => Phase::CatchUp(c),
                },
                Phase::Restore(mut c) => match open_repair::restore_step(parts, &mut c, budget)? {
                    true => Phase::Headers,
                    false => Phase::Restore(c),
                },
                Phase::Headers => match open_repair::headers_step(parts, disk, budget)? {
                    true => Phase::Verify(Cursor::default()),
                    false => Phase::Headers,
                },
                Phase::Verify(mut c) => match open_repair::verify_step(parts, &mut c, budget) {
                    true => Phase::Touch(None),
                    false => Phase::Verify(c),
                },
                Phase::Touch(mut next) => {
                    match open_repair::touch_step(parts, disk, &mut next, budget)? {
                        true => Phase::Threads(0),
                        false => Phase::Touch(next),
                    }
                }
                Phase::Threads(mut next) => {
                    let Parts { threads, scanned, spool, .. } = &mut **parts;
                    match threads::learn_step(threads, scanned, spool, disk, &mut next, budget)? {
                        true => Phase::Finish,
                        false => Phase::Threads(next),
                    }
                }
                Phase::Finish => Phase::Finish,
            };
        }
        // The last step starts only with budget left, like any other piece of work.
        Ok(matches!(self.phase, Phase::Finish) && budget.left())
    }
}

impl<F> Phase<F> {
    fn stage(&self) -> OpenStage {
        match self {
            Phase::Begin => OpenStage::Log,
            Phase::Load(_) | Phase::Bounds(_) => OpenStage::Indexes,
            Phase::Scan(..) => OpenStage::Scan,
            Phase::Keywords(_)
            | Phase::Drop(_)
            | Phase::Create(_)
            | Phase::CatchUp(_)
            | Phase::Restore(_)
            | Phase::Headers => OpenStage::Repair,
            Phase::Verify(_) | Phase::Touch(_) | Phase::Threads(_) | Phase::Finish => {
                OpenStage::Finish
            }
        }
    }
}

/// The first step: the directories, the log replayed, stray index files sorted, the spool
/// listed. Done whole (see the module docs).
fn begin<D: Disk>(disk: &D, dir: &Path, budget: &mut Budget) -> Result<Parts<D>, OpenError> {
    for sub in [SPOOL_DIR, super::index::INDEX_DIR] {
        let path = dir.join(sub);
        disk.create_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
    }
    let mut catalog = Catalog::default();
    let LogOpen { mut log, truncated_bytes, header_damaged } =
        MailboxLog::open(disk, dir, |unit| catalog.apply_unit(unit))?;
    budget.spend_bytes(log.end);
    let mut report = RecoveryReport {
        log_truncated_bytes: truncated_bytes,
        log_replaced: header_damaged,
        ..RecoveryReport::default()
    };
    let mut deferred = Deferred::default();
    open::sort_strays(disk, dir, &mut log, &mut catalog, &mut deferred, &mut report)?;
    let spool = Spool::list(disk, dir)?;
    let threads = Threads::open(disk, dir)?;
    budget.spend_bytes(threads.log_bytes());
    let ids: Vec<MailboxId> = catalog.mailboxes.keys().copied().collect();
    budget.spend_entries(ids.len() as u64 + spool.segments().len() as u64);
    Ok(Parts {
        log,
        threads,
        catalog,
        report,
        deferred,
        spool,
        ids,
        indexes: BTreeMap::new(),
        missing: Vec::new(),
        cut: Vec::new(),
        salvaged: BTreeMap::new(),
        segment_lengths: BTreeMap::new(),
        scan_start: SpoolPos::default(),
        scanned: ScanResult::default(),
        changed: BTreeSet::new(),
    })
}

/// The last step: dirty what recovery validated, build the store, create INBOX if missing.
/// Costs a unit, and the writes of a new INBOX.
fn finish<D: Disk>(
    disk: Rc<D>,
    dir: PathBuf,
    parts: Parts<D>,
    budget: &mut Budget,
) -> Result<UserStore<D>, OpenError> {
    let Parts {
        log, mut threads, catalog, report, mut deferred, spool, indexes, scan_start, ..
    } = parts;
    threads.start_at(spool.end_pos())?;
    // What recovery validated may sit in the page cache only (left by a crashed process):
    // dirty it so the next flush round makes it durable before any checkpoint passes it (the
    // segments were, by `touch_step`).
    log.touch()?;
    threads.touch()?;
    budget.spend(2);
    let now = disk.epoch_open();
    let mut checkpoints = Checkpoints::new(scan_start);
    checkpoints.note_write(now, spool.end_pos());
    let unsealed = indexes.iter().filter(|(_, i)| !i.header().sealed);
    deferred.unsealed.extend(unsealed.map(|(&id, _)| (now, id)));
    let quota = super::quota::Quota::counted(indexes.values().map(super::index::Index::counts));
    let mut store = UserStore {
        quota,
        disk,
        dir,
        log,
        catalog,
        indexes,
        spool,
        checkpoints,
        deferred,
        change_counter: 0,
        changes: super::changes::Changes::default(),
        recovery: report,
        pending_cut: None,
        threads,
        damaged_logged: std::cell::RefCell::default(),
        url_keys: super::urlauth::UrlKeys::Unread,
        metadata: None,
        seen: None,
        duplicates: super::duplicates::Duplicates::Unread,
        spool_compaction: super::spool_compact::SpoolCompaction::default(),
        reader: None,
        metas_handed_out: std::cell::Cell::new(0),
    };
    if store.catalog.id(names::INBOX).is_none() {
        budget.spend(3);
        store.create_mailbox(names::INBOX).map_err(|error| match error {
            crate::error::MailboxError::Storage(storage) => OpenError::Storage(storage),
            other => unreachable!("creating a missing INBOX: {other}"),
        })?;
    }
    if !store.recovery.is_clean() {
        tracing::warn!(dir = %store.dir.display(), report = ?store.recovery, "store recovered");
    }
    #[cfg(any(test, debug_assertions))]
    store.check_invariants();
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_counts_units_bytes_records_and_entries() {
        let mut budget = Budget::new(3);
        assert!(budget.left());
        assert_eq!(budget.room_bytes(), 3 * UNIT_BYTES);
        budget.spend_bytes(1);
        assert_eq!(budget.spent(), 1, "a record of a few bytes is a unit");
        budget.spend_bytes(UNIT_BYTES + 1);
        assert_eq!(budget.spent(), 3, "a unit per 4 KiB, rounded up");
        assert!(!budget.left());
        assert_eq!(budget.room_entries(), 1, "room for one piece while none is left");

        let mut budget = Budget::new(2);
        budget.spend_entries(UNIT_ENTRIES - 1);
        assert_eq!(budget.spent(), 0, "entries short of a unit are not a unit yet");
        assert_eq!(budget.room_entries(), UNIT_ENTRIES + 1);
        budget.spend_entries(1);
        assert_eq!(budget.spent(), 1);
        assert_eq!(budget.room_records(), UNIT_RECORDS);
        budget.spend_records(UNIT_RECORDS);
        assert_eq!(budget.spent(), 2);
        assert!(!budget.left());

        assert_eq!(Budget::new(0).room(), 1, "every step does some work");
        let mut small = Budget::new(2);
        assert!(small.start_piece(4), "a step that did nothing does a piece larger than it");
        assert_eq!(small.spent(), 4);
        let mut partly = Budget::new(5);
        partly.spend(2);
        assert!(!partly.start_piece(4), "a piece that does not fit waits for the next step");
        assert!(!partly.left(), "and the step ends");
        assert_eq!(partly.spent(), 2);
        let mut unlimited = Budget::unlimited();
        unlimited.spend(u64::MAX - 1);
        unlimited.spend_entries(u64::MAX);
        unlimited.spend_records(u64::MAX);
        assert_eq!(unlimited.spent(), u64::MAX, "saturates, never wraps");
        assert!(!unlimited.left());
    }
}
