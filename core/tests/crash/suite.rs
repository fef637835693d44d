// The crash suite's body, included by `crash.rs` (the bare simulated disk) and
// `crash_journal.rs` (the simulated disk under the shard journal); each root names its
// `TestDisk` and `SEEDS_DEFAULT` before including it.

#[path = "check.rs"]
mod check;
#[path = "model.rs"]
mod model;
#[path = "random.rs"]
mod random;
#[path = "semantics.rs"]
mod semantics;
#[path = "store.rs"]
mod store;
#[path = "workload.rs"]
mod workload;
#[path = "disk.rs"]
mod disk;

use std::collections::{BTreeMap, BTreeSet};

use skua_core::disk::sim::{CrashMode, SimRng};

use disk::CrashDisk;

use check::crash_and_check;
use random::RandomWorkload;
use workload::{Action, Broken, Runner, checkpoint_script, script};

/// Seeds tried per random crash mode at each flush point of the scripted workload.
const VARIANTS_PER_RANDOM_MODE: u64 = 4;


/// Runs the scripted workload, frozen after `freeze` flushes (`None`: never).
fn run_script(actions: &[Action], freeze: Option<u64>) -> Result<Runner, Broken> {
    let disk = TestDisk::fresh();
    if let Some(flushes) = freeze {
        disk.freeze_after(flushes);
    }
    let mut runner = Runner::start(disk)?;
    for action in actions {
        if !runner.act(action)? {
            break;
        }
    }
    Ok(runner)
}

/// Runs the random workload of `seed`, frozen after `freeze` flushes (`None`: never), counting
/// the actions it ran by kind.
fn run_random(
    seed: u64,
    freeze: Option<u64>,
    kinds: &mut BTreeMap<&'static str, u64>,
) -> Result<Runner, Broken> {
    let disk = TestDisk::fresh();
    if let Some(flushes) = freeze {
        disk.freeze_after(flushes);
    }
    let mut runner = Runner::start(disk)?;
    let mut workload = RandomWorkload::new(seed);
    while let Some(action) = workload.next(runner.live()) {
        if !runner.act(&action)? {
            break;
        }
        *kinds.entry(action.kind()).or_default() += 1;
    }
    Ok(runner)
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
    assert!(failures.is_empty(), "{} crash-test failures (see the lines above)", failures.len());
}

/// What crashing a scripted workload at every flush point found.
struct Sweep {
    failures: Vec<String>,
    points: u64,
    cases: u64,
    failed: u64,
}

impl Sweep {
    fn print(&self, label: &str) {
        let (points, cases, failed, modes) =
            (self.points, self.cases, self.failed, CrashMode::ALL.len());
        println!(
            "{label}: {points} flush points, {cases} crash cases ({modes} modes), {failed} failed"
        );
    }
}

/// Crashes a scripted workload at every flush point with every mode (`variants` draws for the
/// random modes).
fn every_flush_point(actions: &[Action], variants: u64) -> Sweep {
    let full = run_script(actions, None).expect("the scripted workload runs");
    let mut failures = Vec::new();
    live_errors("script", &full, &mut failures);
    let (mut cases, mut failed) = (0u64, 0u64);
    for point in 0..=full.disk_flushes() {
        let runner = run_script(actions, Some(point)).expect("the scripted workload runs");
        for mode in CrashMode::ALL {
            let draws = if matches!(mode, CrashMode::DropPending | CrashMode::KeepPending) {
                1
            } else {
                variants
            };
            for variant in 0..draws {
                let seed = point * 1000 + variant;
                cases += 1;
                let violations = crash_and_check(&runner, seed, mode).0;
                failed += u64::from(!violations.is_empty());
                for violation in violations {
                    failures.push(format!(
                        "CRASH_POINT={point} MODE={mode:?} SEED={seed}: {violation}"
                    ));
                }
            }
        }
    }
    Sweep { failures, points: full.disk_flushes() + 1, cases, failed }
}

#[test]
fn every_flush_point_of_the_scripted_workload() {
    let sweep = every_flush_point(&script(), VARIANTS_PER_RANDOM_MODE);
    sweep.print("scripted workload");
    finish(&sweep.failures);
}

#[test]
fn every_flush_point_across_a_checkpoint() {
    // The workload must pass a checkpoint, or this test is the one above again.
    let full = run_script(&checkpoint_script(), None).expect("the workload runs");
    let reopened = store::Store::open(&full.disk.crashed(0, CrashMode::DropPending)).unwrap();
    let appended = checkpoint_script().iter().filter(|a| a.kind() == "append").count();
    let scanned = reopened.records_scanned_at_open();
    assert!(scanned < appended as u64, "recovery scanned {scanned} of {appended} records");
    let sweep = every_flush_point(&checkpoint_script(), 1);
    sweep.print("checkpoint workload");
    finish(&sweep.failures);
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")))
}

/// One seed: a random workload, a random crash point in it, a random crash mode; then the
/// recovered store runs a second random workload and crashes again.
fn random_case(
    seed: u64,
    failures: &mut Vec<String>,
    kinds: &mut BTreeMap<&'static str, u64>,
) -> Result<(), Broken> {
    let full = run_random(seed, None, kinds)?;
    live_errors(&format!("SEED={seed}"), &full, failures);
    let mut rng = SimRng::new(seed);
    let point = rng.below(full.disk_flushes() + 1);
    let mode = CrashMode::ALL[rng.index(CrashMode::ALL.len())];
    let runner = run_random(seed, Some(point), &mut BTreeMap::new())?;
    let crash_seed = rng.next_u64();
    let violations = crash_and_check(&runner, crash_seed, mode).0;
    let first = format!("SEED={seed} (crash point {point}, {mode:?})");
    if !violations.is_empty() {
        failures.extend(violations.into_iter().map(|v| format!("{first}: {v}")));
        return Ok(());
    }
    // The store goes on after the crash, and crashes again.
    let resumed = |freeze: Option<u64>, kinds: &mut BTreeMap<&'static str, u64>| {
        let disk = runner.disk.crashed(crash_seed, mode);
        if let Some(flushes) = freeze {
            disk.freeze_after(flushes);
        }
        let mut next = Runner::resume(disk, &runner)?;
        let mut workload = RandomWorkload::new(seed.rotate_left(32));
        while let Some(action) = workload.next(next.live()) {
            if !next.act(&action)? {
                break;
            }
            *kinds.entry(action.kind()).or_default() += 1;
        }
        Ok::<Runner, Broken>(next)
    };
    let full = resumed(None, kinds)?;
    live_errors(&format!("{first}, after recovery"), &full, failures);
    let point = rng.below(full.disk_flushes() + 1);
    let mode = CrashMode::ALL[rng.index(CrashMode::ALL.len())];
    let again = resumed(Some(point), &mut BTreeMap::new())?;
    for violation in crash_and_check(&again, rng.next_u64(), mode).0 {
        failures.push(format!("{first}, then crash point {point} ({mode:?}): {violation}"));
    }
    Ok(())
}

#[test]
fn random_workloads_crash_anywhere() {
    let start = env_u64("SKUA_CRASH_SEED_START").unwrap_or(0);
    let count = env_u64("SKUA_CRASH_SEEDS").unwrap_or(SEEDS_DEFAULT);
    let seeds: Vec<u64> = env_u64("SKUA_CRASH_SEED")
        .map_or_else(|| (start..start + count).collect(), |seed| vec![seed]);
    let mut failures = Vec::new();
    let mut kinds = BTreeMap::new();
    for &seed in &seeds {
        if let Err(Broken(why)) = random_case(seed, &mut failures, &mut kinds) {
            failures.push(format!("SEED={seed}: workload broke: {why}"));
        }
    }
    let failed: BTreeSet<&str> =
        failures.iter().filter_map(|f| f.split([' ', ':']).next()).collect();
    let (tried, failed) = (seeds.len(), failed.len());
    println!("random workloads: {tried} seeds tried, {failed} failed; actions run: {kinds:?}");
    finish(&failures);
}
