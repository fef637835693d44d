//! Media corruption on the simulated disk: after the scripted crash workload, every file of
//! the store is fair game for a flipped bit or a zeroed sector (`SimDisk::corrupt`).
//!
//! Invariant under test (DESIGN.md: "every record carries a checksum"; STYLE.md: "a bad disk
//! is an operating error: return `Err`"): a damaged store never panics (opening, listing,
//! reading), and never serves bytes that were not written: a message it reads back is
//! byte-identical to the one appended under that UID in the mailbox of that UIDVALIDITY (the
//! name may differ: damage to `mailboxes.log` can cut a later RENAME, or make recovery salvage
//! a mailbox as `Recovered/<id>`). Losing mail to damage is allowed; silently serving wrong
//! mail is not. Opening may fail with a typed error.
//!
//! Two stores are damaged: the scripted workload's (small: every record lies past the index
//! checkpoint, so recovery checks them all) and one of 18 MiB of mail, past
//! `limits::CHECKPOINT_INTERVAL_BYTES`, whose oldest records recovery does not re-read.
//!
//! Seeds `0..SKUA_CORRUPT_SEEDS` (default 300 for the small store, a tenth for the large one);
//! a failure prints `SEED=<n>`, and `SKUA_CORRUPT_SEED=<n>` replays one.
#![cfg(feature = "sim")]

/// The disk under the crash harness's modules: the bare simulated disk.
type TestDisk = skua_core::disk::sim::SimDisk;

#[path = "crash/disk.rs"]
mod disk;
#[path = "crash/model.rs"]
#[allow(dead_code)]
mod model;
#[path = "crash/semantics.rs"]
mod semantics;
#[path = "crash/store.rs"]
#[allow(dead_code)]
mod store;
#[path = "crash/workload.rs"]
#[allow(dead_code)]
mod workload;

use std::panic::{AssertUnwindSafe, catch_unwind};

use skua_core::disk::sim::{CrashMode, SimDisk, SimRng};

use model::Snapshot;
use store::Store;
use workload::{Runner, script};

/// Default number of corruption seeds.
const SEEDS_DEFAULT: u64 = 300;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")))
}

/// The scripted workload, run to the end and flushed: the disk holds exactly its final state.
fn finished_store() -> (SimDisk, Snapshot, Runner) {
    let mut runner = Runner::start(SimDisk::new()).expect("the store opens");
    for action in script().iter().chain([&workload::Action::Flush]) {
        assert!(runner.act(action).expect("the workload runs"), "no freeze was asked for");
    }
    assert!(runner.live_errors.is_empty(), "{:?}", runner.live_errors);
    let clean = runner.disk.crash(0, CrashMode::DropPending);
    (clean, runner.acked.clone(), runner)
}

/// What the damaged stores did, over all seeds.
#[derive(Debug, Default)]
struct Tally {
    opened: u64,
    refused_to_open: u64,
    messages_served: u64,
    messages_refused: u64,
    messages_lost: u64,
}

/// One damaged store: the problems found (none when it behaved).
fn check_damaged(
    disk: &SimDisk,
    expected: &Snapshot,
    runner: &Runner,
    tally: &mut Tally,
) -> Vec<String> {
    // A typed error for a store it cannot repair is allowed (the operator restores or runs
    // reconstruct); only a panic or wrong data is a bug.
    let Ok(store) = Store::open(disk) else {
        tally.refused_to_open += 1;
        return Vec::new();
    };
    tally.opened += 1;
    let mut problems = Vec::new();
    let everything = store.read_everything();
    let total: usize = expected.values().map(|m| m.messages.len()).sum();
    tally.messages_lost += total.saturating_sub(everything.len()) as u64;
    for (name, uid_validity, uid, body) in everything {
        let Ok(body) = body else {
            tally.messages_refused += 1;
            continue;
        };
        tally.messages_served += 1;
        let original = expected
            .values()
            .find(|m| m.uid_validity == uid_validity)
            .and_then(|m| m.message(uid))
            .map(|m| &*m.body);
        match original {
            Some(original) if *original != body => {
                let size = body.len();
                problems
                    .push(format!("{name} UID {uid}: served {size} bytes unlike those appended"));
            }
            // Not in the final state (expunged, or its mailbox deleted) but real mail.
            None if !runner.written.contains(&body) => {
                problems.push(format!("{name} UID {uid}: served bytes never written"));
            }
            _ => {}
        }
    }
    problems
}

/// A store past the first checkpoint: 18 messages of 1 MiB, then 6 small ones, each
/// appended and flushed on its own.
fn large_store() -> (SimDisk, Snapshot, Runner) {
    let mut runner = Runner::start(SimDisk::new()).expect("the store opens");
    runner.act(&workload::Action::Flush).expect("the first flush runs");
    for size in std::iter::repeat_n(1 << 20, 18).chain(std::iter::repeat_n(300, 6)) {
        let append = workload::Action::Append {
            mailbox: model::INBOX.to_owned(),
            size,
            system: 0,
            keywords: Vec::new(),
        };
        runner.act(&append).expect("the append runs");
        runner.act(&workload::Action::Flush).expect("the flush runs");
    }
    assert!(runner.live_errors.is_empty(), "{:?}", runner.live_errors);
    let clean = runner.disk.crash(0, CrashMode::DropPending);
    (clean, runner.acked.clone(), runner)
}

fn seeds(default: u64) -> Vec<u64> {
    match env_u64("SKUA_CORRUPT_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("SKUA_CORRUPT_SEEDS").map_or(default, |n| n)).collect(),
    }
}

#[test]
fn damaged_small_stores_never_panic_nor_serve_wrong_bytes() {
    let (clean, expected, runner) = finished_store();
    damage_and_check("small store", &clean, &expected, &runner, &seeds(SEEDS_DEFAULT));
}

#[test]
fn damaged_checkpointed_stores_never_panic_nor_serve_wrong_bytes() {
    let (clean, expected, runner) = large_store();
    let seeds = seeds(SEEDS_DEFAULT / 10);
    let seeds: Vec<u64> = seeds.into_iter().map(|seed| seed + 1_000_000).collect();
    damage_and_check("checkpointed store", &clean, &expected, &runner, &seeds);
}

/// Damages a copy of `clean` once per seed, reopens, reads everything; fails on any problem.
fn damage_and_check(
    label: &str,
    clean: &SimDisk,
    expected: &Snapshot,
    runner: &Runner,
    seeds: &[u64],
) {
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    for &seed in seeds {
        let disk = clean.crash(0, CrashMode::DropPending);
        let damage = disk.corrupt(seed, 1 + SimRng::new(seed).index(3));
        let outcome =
            catch_unwind(AssertUnwindSafe(|| check_damaged(&disk, expected, runner, &mut tally)));
        let problems = outcome.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            vec![format!("store panicked: {message}")]
        });
        for problem in problems {
            failures.push(format!("SEED={seed} ({}): {problem}", damage.join("; ")));
        }
    }
    let (tried, problems) = (seeds.len(), failures.len());
    println!("corruption, {label}: {tried} seeds tried, {problems} problems; {tally:?}");
    for failure in &failures {
        println!("{failure}");
    }
    assert!(failures.is_empty(), "{} corruption-test failures (see above)", failures.len());
}
