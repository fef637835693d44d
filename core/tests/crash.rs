//! Crash-point simulation of the mail store on the simulated disk.
//!
//! Invariant under test (DESIGN.md, "Durability"): a crash at any instant loses nothing that
//! was acknowledged, and never leaves a store that cannot be opened. A workload runs on
//! `UserStore<SimDisk>`, acknowledging each action only after a flush round covering it;
//! the disk is then crashed (durable image plus some of the unflushed writes, see
//! `skua_core::disk::sim::CrashMode`), the store is reopened, and the recovered state is
//! checked: every acknowledged message present and byte-identical under its mailbox and UID,
//! acknowledged flag changes and expunges in effect, UIDs unique and increasing, UIDVALIDITY
//! kept, UIDNEXT and HIGHESTMODSEQ not lower than acknowledged, no message that was never
//! written, a mailbox rename all or nothing. Then the recovered store must take one more
//! append and flush and survive a clean restart.
//!
//! Two tests:
//! - `every_flush_point_of_the_scripted_workload`: crash between every pair of flushes, with
//!   every crash mode (the random modes several times).
//! - `random_workloads_crash_anywhere`: a random workload and crash per seed, seeds
//!   `0..SKUA_CRASH_SEEDS` (default 300); a failure prints `SEED=<n>`, and
//!   `SKUA_CRASH_SEED=<n>` replays that seed alone.
//!
//! Run with `cargo test -p skua-core --features sim --test crash -- --nocapture` to see counts.
#![cfg(feature = "sim")]

#[path = "crash/check.rs"]
mod check;
#[path = "crash/model.rs"]
mod model;
#[path = "crash/random.rs"]
mod random;
#[path = "crash/semantics.rs"]
mod semantics;
#[path = "crash/store.rs"]
mod store;
#[path = "crash/workload.rs"]
mod workload;

use skua_core::disk::sim::{CrashMode, SimDisk, SimRng};

use check::crash_and_check;
use random::RandomWorkload;
use workload::{Broken, Runner, script};

/// Seeds tried per random crash mode at each flush point of the scripted workload.
const VARIANTS_PER_RANDOM_MODE: u64 = 4;

/// Default number of random seeds.
const SEEDS_DEFAULT: u64 = 300;

/// Runs the scripted workload, frozen after `freeze` flushes (`None`: never).
fn run_script(freeze: Option<u64>) -> Result<Runner, Broken> {
    let disk = SimDisk::new();
    if let Some(flushes) = freeze {
        disk.freeze_after_flushes(flushes);
    }
    let mut runner = Runner::start(disk)?;
    for action in script() {
        if !runner.act(&action)? {
            break;
        }
    }
    Ok(runner)
}

/// Runs the random workload of `seed`, frozen after `freeze` flushes (`None`: never).
fn run_random(seed: u64, freeze: Option<u64>) -> Result<Runner, Broken> {
    let disk = SimDisk::new();
    if let Some(flushes) = freeze {
        disk.freeze_after_flushes(flushes);
    }
    let mut runner = Runner::start(disk)?;
    let mut workload = RandomWorkload::new(seed);
    while let Some(action) = workload.next(runner.live()) {
        if !runner.act(&action)? {
            break;
        }
    }
    Ok(runner)
}

fn variants(mode: CrashMode) -> u64 {
    match mode {
        CrashMode::DropPending | CrashMode::KeepPending => 1,
        CrashMode::Prefix | CrashMode::Subset | CrashMode::TornSubset => VARIANTS_PER_RANDOM_MODE,
    }
}

/// Reports live-store errors of a workload run (they are bugs even without a crash).
fn live_errors(label: &str, runner: &Runner, failures: &mut Vec<String>) {
    for error in &runner.live_errors.0 {
        failures.push(format!("{label}: {error}"));
    }
}

fn finish(failures: &[String]) {
    for failure in failures {
        println!("{failure}");
    }
    assert!(
        failures.is_empty(),
        "{} crash-test failures (see the lines above)",
        failures.len()
    );
}

#[test]
fn every_flush_point_of_the_scripted_workload() {
    let full = run_script(None).expect("the scripted workload runs");
    let mut failures = Vec::new();
    live_errors("script", &full, &mut failures);
    let mut cases = 0u64;
    for point in 0..=full.flushes {
        let runner = run_script(Some(point)).expect("the scripted workload runs");
        for mode in CrashMode::ALL {
            for variant in 0..variants(mode) {
                let seed = point * 1000 + variant;
                cases += 1;
                for violation in crash_and_check(&runner, seed, mode).0 {
                    failures.push(format!(
                        "CRASH_POINT={point} MODE={mode:?} SEED={seed}: {violation}"
                    ));
                }
            }
        }
    }
    println!(
        "scripted workload: {} flush points, {cases} crash cases ({} modes), {} failures",
        full.flushes + 1,
        CrashMode::ALL.len(),
        failures.len()
    );
    finish(&failures);
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
    )
}

/// One seed: a random workload, a random crash point in it, a random crash mode.
fn random_case(seed: u64, failures: &mut Vec<String>) -> Result<(), Broken> {
    let full = run_random(seed, None)?;
    live_errors(&format!("SEED={seed}"), &full, failures);
    let mut rng = SimRng::new(seed);
    let point = rng.below(full.flushes + 1);
    let mode = CrashMode::ALL[rng.index(CrashMode::ALL.len())];
    let runner = run_random(seed, Some(point))?;
    for violation in crash_and_check(&runner, rng.next_u64(), mode).0 {
        failures.push(format!(
            "SEED={seed} (crash point {point}, {mode:?}): {violation}"
        ));
    }
    Ok(())
}

#[test]
fn random_workloads_crash_anywhere() {
    let seeds: Vec<u64> = match env_u64("SKUA_CRASH_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("SKUA_CRASH_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect(),
    };
    let mut failures = Vec::new();
    for &seed in &seeds {
        if let Err(Broken(why)) = random_case(seed, &mut failures) {
            failures.push(format!("SEED={seed}: workload broke: {why}"));
        }
    }
    let failed: std::collections::BTreeSet<&str> = failures
        .iter()
        .filter_map(|f| f.split([' ', ':']).next())
        .collect();
    println!(
        "random workloads: {} seeds tried, {} failed",
        seeds.len(),
        failed.len()
    );
    finish(&failures);
}
