//! Opening a store in bounded steps (`UserStore::opening`, `Opening::step`).
//!
//! Bug (issue 7, "opening a user's store, recovery included, does not hold up other sessions
//! on the core"): `UserStore::open` ran recovery to completion in one call on the shard's
//! thread, so a user whose index was lost stalled every other session of the core while the
//! index was rebuilt from the whole spool. The open is now resumable; these tests pin:
//!
//! - `stepped_open_matches_one_piece_open`: on random stores crashed at random points (the
//!   crash simulation's workloads), some with an index removed or bytes damaged at rest,
//!   opening with small budgets gives exactly the store `UserStore::open` gives: mailboxes,
//!   UIDs, flags, modseqs, bodies, the recovery report, and the index files it wrote (or the
//!   same error). Seeds `0..SKUA_OPENING_SEEDS` (default 300); a failure prints `SEED=<n>`.
//! - `a_crash_in_the_middle_of_a_stepped_open_loses_nothing`: a crash after any step of a
//!   stepped open (with flush rounds between steps, as other users' group commits would run)
//!   followed by a fresh open loses nothing acknowledged; so does an open abandoned after any
//!   step without a crash (its writes all kept) and started again.
//! - `no_step_passes_its_budget`: rebuilding a deleted index and salvaging a damaged one over
//!   thousands of records (a few of them large, checked across steps, and one damaged, which
//!   starts a search for the next good record), no step does more than its budget and one unit, counted by the store and, independently, by a disk that
//!   counts the bytes read and the writes.
//! - `a_deleted_index_is_rebuilt_in_many_steps`: the regression test: with a budget of one
//!   unit, the rebuild takes at least a step per spool record (it took one call before).
#![cfg(feature = "sim")]

/// The disk under the crash harness's modules: the bare simulated disk.
type TestDisk = skua_core::disk::sim::SimDisk;

#[path = "crash/disk.rs"]
mod disk;
#[path = "crash/model.rs"]
#[allow(dead_code)]
mod model;
#[path = "crash/random.rs"]
#[allow(dead_code)]
mod random;
#[path = "crash/semantics.rs"]
#[allow(dead_code)]
mod semantics;
#[path = "crash/store.rs"]
#[allow(dead_code)]
mod store;
mod store_support;
#[path = "crash/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::cell::Cell;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use skua_core::disk::sim::{CrashMode, Damage, SimDisk, SimFile, SimFlush, SimRng};
use skua_core::disk::{Bytes, Disk, DiskFile, OpenMode};
use skua_core::store::{
    MailboxInfo, MessageMeta, OpenProgress, OpenWork, RecoveryReport, UserStore,
};
use skua_core::types::{Flags, FlagsOp, Keywords, MailboxId, SystemFlags, Uid};

use random::RandomWorkload;
use store::Store;
use store_support::{flush, message, settle};
use workload::Runner;

/// The user directory the crash workloads use (`crash/store.rs`).
const USER_DIR: &str = "users/crash-test";

/// Default number of random seeds.
const SEEDS_DEFAULT: u64 = 300;

/// Everything a client could see of a store, and what recovery reported.
#[derive(Debug, PartialEq)]
struct State {
    mailboxes: Vec<MailboxState>,
    subscriptions: Vec<String>,
    report: RecoveryReport,
    /// Every index file's bytes, by name.
    index_files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, PartialEq)]
struct MailboxState {
    info: MailboxInfo,
    keywords: Vec<String>,
    expunged: Vec<Uid>,
    /// Each live message, its body and its cache blob (or the error reading them).
    messages: Vec<(MessageMeta, Read, Read)>,
}

/// Bytes read from the store, or the error reading them.
type Read = Result<Vec<u8>, String>;

fn state<D: Disk>(store: &UserStore<D>, disk: &D) -> State {
    let mailboxes = store
        .mailboxes()
        .into_iter()
        .map(|info| {
            let id = info.id;
            let messages = store.messages(id).expect("listed").into_iter().map(|meta| {
                let body = store.body(id, meta.uid).map(|b| b.to_vec()).map_err(|e| e.to_string());
                let cache =
                    store.cache(id, meta.uid).map(|b| b.to_vec()).map_err(|e| e.to_string());
                (meta, body, cache)
            });
            MailboxState {
                keywords: store.keywords(id).expect("listed"),
                expunged: store.expunged_since(id, skua_core::types::ModSeq(0)).expect("listed"),
                messages: messages.collect(),
                info,
            }
        })
        .collect();
    State {
        mailboxes,
        subscriptions: store.subscriptions(),
        report: store.recovery().clone(),
        index_files: index_files(disk),
    }
}

/// The bytes of every index file of the store.
fn index_files<D: Disk>(disk: &D) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(USER_DIR).join("mbox");
    let names = disk.list_dir(&dir).expect("the index directory");
    names
        .into_iter()
        .map(|name| {
            let file = disk.open(&dir.join(&name), OpenMode::Existing).expect("listed");
            let mut bytes = vec![0u8; usize::try_from(file.len().expect("len")).expect("small")];
            file.read_exact_at(&mut bytes, 0).expect("read");
            (name, bytes)
        })
        .collect()
}

/// Opens the store in steps of `budget` units; the store, with the work of every step.
fn open_stepped<D: Disk>(
    disk: Rc<D>,
    dir: &Path,
    budget: u64,
    mut between: impl FnMut(&OpenWork),
) -> Result<(UserStore<D>, OpenWork), String> {
    let mut opening = UserStore::opening(disk, dir);
    loop {
        match opening.step(budget).map_err(|e| format!("{e:?}"))? {
            OpenProgress::Pending(more) => {
                between(&more.work());
                opening = more;
            }
            OpenProgress::Open { store, work } => {
                between(&work);
                return Ok((store, work));
            }
        }
    }
}

fn seeds() -> u64 {
    std::env::var("SKUA_OPENING_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(SEEDS_DEFAULT)
}

/// Runs `case` for every seed, catching panics; fails with every `SEED=` that failed.
fn for_seeds(label: &str, case: impl Fn(u64) -> Vec<String>) {
    let mut failures = Vec::new();
    for seed in 0..seeds() {
        let found = catch_unwind(AssertUnwindSafe(|| case(seed)))
            .unwrap_or_else(|_| vec!["panicked (see above)".to_owned()]);
        failures.extend(found.into_iter().map(|f| format!("{label} SEED={seed}: {f}")));
    }
    for failure in &failures {
        println!("{failure}");
    }
    assert!(failures.is_empty(), "{} failures (see the lines above)", failures.len());
}

/// A random workload of `seed` crashed at a random flush point with a random mode: the
/// workload (what it acknowledged) and the disk the crash left.
fn crashed_store(seed: u64, rng: &mut SimRng) -> (Runner, SimDisk) {
    let disk = SimDisk::new();
    disk.freeze_after_flushes(1 + rng.below(14));
    let mut runner = Runner::start(disk).expect("the workload starts");
    let mut workload = RandomWorkload::new(seed);
    while let Some(action) = workload.next(runner.live()) {
        if !runner.act(&action).expect("the workload runs") {
            break;
        }
    }
    let mode = CrashMode::ALL[rng.index(CrashMode::ALL.len())];
    let crashed = runner.disk.crash(rng.next_u64(), mode);
    (runner, crashed)
}

/// Damage of the kinds recovery repairs: bytes damaged at rest, an index file removed. What
/// was done, to explain a failure.
fn damage(disk: &SimDisk, rng: &mut SimRng) -> Vec<String> {
    let mut done = Vec::new();
    if rng.chance(1, 3) {
        done = disk.corrupt(rng.next_u64(), 1 + rng.index(3));
    }
    if rng.chance(1, 3) {
        let dir = Path::new(USER_DIR).join("mbox");
        let names = disk.list_dir(&dir).unwrap_or_default();
        if !names.is_empty() {
            let name = &names[rng.index(names.len())];
            disk.remove_file(&dir.join(name)).expect("listed");
            done.push(format!("removed {name}"));
        }
    }
    done
}

#[test]
fn stepped_open_matches_one_piece_open() {
    for_seeds("stepped open", |seed| {
        let mut rng = SimRng::new(seed ^ 0x0be7_5eed);
        let (_, crashed) = crashed_store(seed, &mut rng);
        let damaged = damage(&crashed, &mut rng);
        let (one, stepped) =
            (crashed.crash(0, CrashMode::KeepPending), crashed.crash(0, CrashMode::KeepPending));
        let whole = UserStore::open(Rc::new(one.clone()), Path::new(USER_DIR))
            .map(|store| state(&store, &one))
            .map_err(|e| format!("{e:?}"));
        let budget = 1 + rng.below(5);
        let mut steps = 0;
        let in_steps = open_stepped(Rc::new(stepped.clone()), Path::new(USER_DIR), budget, |_| {
            steps += 1;
        })
        .map(|(store, _)| state(&store, &stepped));
        let mut failures = Vec::new();
        if whole != in_steps {
            failures.push(format!(
                "budget {budget}, damage {damaged:?}: one piece {whole:#?}\nin {steps} steps {in_steps:#?}"
            ));
        }
        failures
    });
}

#[test]
fn a_crash_in_the_middle_of_a_stepped_open_loses_nothing() {
    for_seeds("crash in a stepped open", |seed| {
        let mut rng = SimRng::new(seed ^ 0xc2a5_0fe2);
        let (runner, crashed) = crashed_store(seed, &mut rng);
        let budget = 1 + rng.below(5);
        let copy = Rc::new(crashed.crash(0, CrashMode::KeepPending));
        let (_, work) =
            open_stepped(copy, Path::new(USER_DIR), budget, |_| {}).expect("a crashed store opens");
        // Crash after a step inside the open, with flush rounds (other users' group commits)
        // making part of recovery's writes durable between steps.
        let stop = rng.below(work.steps);
        let mut opening = UserStore::opening(Rc::new(crashed.clone()), Path::new(USER_DIR));
        for _ in 0..stop {
            opening = match opening.step(budget).expect("steps of an open that succeeds") {
                OpenProgress::Pending(more) => more,
                OpenProgress::Open { .. } => unreachable!("stopped before the last step"),
            };
            if rng.chance(1, 2) {
                flush(&crashed);
            }
        }
        drop(opening);
        // A crash, or (KeepPending) an open abandoned without one and started again.
        let mode = if rng.chance(1, 4) { CrashMode::KeepPending } else { CrashMode::TornSubset };
        let after = crashed.crash(rng.next_u64(), mode);
        let mut violations = model::Violations::default();
        match Store::open(&after).and_then(|store| store.snapshot()) {
            Ok(snapshot) => {
                model::check_invariants(&snapshot, &runner.written, &mut violations);
                model::check_recovered(
                    &snapshot,
                    &runner.acked,
                    &runner.in_flight,
                    &mut violations,
                );
            }
            Err(error) => violations.0.push(format!("reopen failed: {error}")),
        }
        let at = format!("budget {budget}, {mode:?} after step {stop} of {}", work.steps);
        violations.0.into_iter().map(|v| format!("{at}: {v}")).collect()
    });
}

/// Messages per mailbox of the large store.
const LARGE: [(&str, u32); 3] = [("INBOX", 2500), ("Archive", 800), ("Sent", 300)];

/// A store of thousands of messages, flags changed and some expunged, all durable; the
/// messages' count.
fn large_store() -> (SimDisk, u64) {
    let disk = SimDisk::new();
    let mut store = UserStore::open(Rc::new(disk.clone()), Path::new(USER_DIR)).expect("open");
    let mut serial = 0u32;
    for (name, count) in LARGE {
        if store.mailbox_id(name).is_none() {
            store.create_mailbox(name).expect("create");
        }
        let id = store.mailbox_id(name).expect("created");
        let mut uids = Vec::new();
        for _ in 0..count {
            serial += 1;
            // Records of at most 4 KiB (a unit each), and now and then one of 300 KB, which
            // is checked across several steps.
            let len = if serial.is_multiple_of(500) {
                300_000
            } else {
                100 + (serial as usize * 389) % 3900
            };
            let body = message(serial, len);
            let cache = format!("cache {serial}").into_bytes();
            let flags = Flags { system: SystemFlags(0), keywords: Keywords(0) };
            uids.push(store.append(id, &body, &cache, flags, None).expect("append").0);
        }
        let seen = Flags { system: SystemFlags(SystemFlags::SEEN), keywords: Keywords(0) };
        let every_third: Vec<Uid> = uids.iter().copied().step_by(3).collect();
        store.store_flags(id, &every_third, FlagsOp::Add, seen, None).expect("store");
        let every_tenth: Vec<Uid> = uids.iter().copied().step_by(10).collect();
        store.expunge(id, &every_tenth).expect("expunge");
        flush(&disk);
    }
    settle(&mut store, &disk);
    (disk, u64::from(serial))
}

/// The index file of a mailbox of the large store.
fn index_path(disk: &SimDisk, name: &str) -> PathBuf {
    let store =
        UserStore::open(Rc::new(disk.crash(0, CrashMode::KeepPending)), Path::new(USER_DIR))
            .expect("open");
    let id: MailboxId = store.mailbox_id(name).expect("a mailbox of the large store");
    Path::new(USER_DIR).join(format!("mbox/{:08}.idx", id.0))
}

#[test]
fn no_step_passes_its_budget() {
    let (disk, _) = large_store();
    let inbox = index_path(&disk, "INBOX");
    let archive = index_path(&disk, "Archive");
    // The Archive index's header is damaged (rebuilt, flags salvaged from its records), the
    // INBOX index is gone (rebuilt from the whole spool), and a spool record is damaged (the
    // scan searches for the next good record).
    disk.damage(&archive, Damage::Flip { offset: 30, mask: 0x10 }).expect("damage");
    let segment = Path::new(USER_DIR).join("spool/00000001.seg");
    disk.damage(&segment, Damage::Flip { offset: 2_000_003, mask: 0x40 }).expect("damage");
    disk.remove_file(&inbox).expect("remove");
    let whole_disk = disk.crash(0, CrashMode::KeepPending);
    let whole = UserStore::open(Rc::new(whole_disk.clone()), Path::new(USER_DIR)).expect("open");
    assert_eq!(whole.recovery().indexes_rebuilt, 2);
    assert_eq!(whole.recovery().index_headers_repaired, 1);
    assert!(whole.recovery().spool_damaged_bytes > 0, "a damaged record was skipped");
    let whole = state(&whole, &whole_disk);
    for budget in [1, 2, 7, 64] {
        let counting = Rc::new(Counting::new(disk.crash(0, CrashMode::KeepPending)));
        let log_units = counting.file_len(&Path::new(USER_DIR).join("mailboxes.log")) / 4096 + 1;
        let mut last = (0, 0);
        let mut step = 0;
        let check = |work: &OpenWork| {
            step += 1;
            let (read, writes) = (counting.read.get(), counting.writes.get());
            let (step_read, step_writes) = (read - last.0, writes - last.1);
            last = (read, writes);
            let units = work.last_step_units;
            // A step that did nothing yet opens a file (four units) whatever its budget.
            let budget_kept = budget.max(4);
            let allowed = if step == 1 { budget_kept + 1 + log_units } else { budget_kept + 1 };
            assert!(units <= allowed, "budget {budget}, step {step}: {units} units");
            assert!(
                step_read <= (units + 1) * 4096,
                "budget {budget}, step {step}: {step_read} bytes read for {units} units"
            );
            assert!(
                step_writes <= units + 1,
                "budget {budget}, step {step}: {step_writes} writes for {units} units"
            );
        };
        let (store, work) =
            open_stepped(counting.clone(), Path::new(USER_DIR), budget, check).expect("open");
        assert_eq!(state(&store, &*counting), whole, "budget {budget}: the same store");
        // A step ends when its budget is spent, or when a file open (four units) no longer
        // fits in what is left.
        let least = budget.saturating_sub(3).max(1);
        assert!(
            work.units >= work.steps.saturating_sub(1) * least,
            "budget {budget}: steps end only when their budget is spent ({work:?})"
        );
        println!("budget {budget}: {work:?}, {} bytes read", counting.read.get());
    }
}

#[test]
fn a_deleted_index_is_rebuilt_in_many_steps() {
    let (disk, messages) = large_store();
    disk.remove_file(&index_path(&disk, "INBOX")).expect("remove");
    let (store, work) =
        open_stepped(Rc::new(disk.clone()), Path::new(USER_DIR), 1, |_| {}).expect("open");
    assert_eq!(store.recovery().indexes_rebuilt, 1);
    let records = store.recovery().spool_records_scanned;
    assert!(records >= messages, "the whole spool was scanned");
    assert!(
        work.steps >= records,
        "{} steps for {records} spool records: a step per record at least",
        work.steps
    );
}

/// A simulated disk that counts the bytes read and the writes (writes, unsynced writes and
/// length changes), to check what the store counts as work against what it did.
struct Counting {
    inner: SimDisk,
    read: Rc<Cell<u64>>,
    writes: Rc<Cell<u64>>,
}

impl Counting {
    fn new(inner: SimDisk) -> Counting {
        Counting { inner, read: Rc::default(), writes: Rc::default() }
    }

    fn file_len(&self, path: &Path) -> u64 {
        self.inner.open(path, OpenMode::Existing).and_then(|f| f.len()).expect("a file")
    }
}

#[derive(Clone)]
struct CountingFile {
    inner: SimFile,
    read: Rc<Cell<u64>>,
    writes: Rc<Cell<u64>>,
}

impl Disk for Counting {
    type File = CountingFile;
    type Flush = SimFlush;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<CountingFile> {
        let inner = self.inner.open(path, mode)?;
        Ok(CountingFile { inner, read: self.read.clone(), writes: self.writes.clone() })
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn rename(&self, source: &Path, target: &Path) -> io::Result<()> {
        self.inner.rename(source, target)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn epoch_open(&self) -> skua_core::types::Epoch {
        self.inner.epoch_open()
    }
    fn epoch_durable(&self) -> skua_core::types::Epoch {
        self.inner.epoch_durable()
    }
    fn flush_begin(&self) -> Option<SimFlush> {
        self.inner.flush_begin()
    }
    fn flush_end(&self, epoch: skua_core::types::Epoch) {
        self.inner.flush_end(epoch);
    }
}

impl DiskFile for CountingFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.read.set(self.read.get() + buf.len() as u64);
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.writes.set(self.writes.get() + 1);
        self.inner.write_all_at(buf, offset)
    }
    fn write_all_at_unsynced(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.writes.set(self.writes.get() + 1);
        self.inner.write_all_at_unsynced(buf, offset)
    }
    fn mark_dirty(&self) -> io::Result<()> {
        self.inner.mark_dirty()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.writes.set(self.writes.get() + 1);
        self.inner.set_len(len)
    }
    fn view(&self, offset: u64, len: u64) -> io::Result<Bytes> {
        self.read.set(self.read.get() + len);
        self.inner.view(offset, len)
    }
}
