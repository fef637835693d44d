//! The disk under the crash tests: the simulated disk bare (as offline tools use the store)
//! or under the shard journal (as the server does, `skua_core::disk::journal`). Each test
//! binary names its choice `TestDisk` at its root.

#![allow(dead_code, reason = "each test binary uses part of it")]

use std::path::Path;

use skua_core::disk::Disk;
use skua_core::disk::journal::Journaled;
use skua_core::disk::sim::{CrashMode, CrashReport, SimDisk};

/// The journal's path and size in the journaled tests: small, so workloads fill it and it
/// restarts many times.
const JOURNAL: &str = "journal/00.wal";
const JOURNAL_BYTES: u64 = 64 * 1024;

/// What the crash harness needs of its disk beyond [`Disk`].
pub trait CrashDisk: Disk + Clone {
    /// A new, empty disk.
    fn fresh() -> Self;
    /// The simulated disk at the bottom.
    fn sim(&self) -> &SimDisk;
    /// The disk a restart finds on `sim` (after the journal's replay, if any).
    fn recovered(sim: SimDisk) -> Self;

    /// A crash of the simulated disk, then a restart.
    fn crashed(&self, seed: u64, mode: CrashMode) -> Self {
        Self::recovered(self.sim().crash(seed, mode))
    }
    /// [`CrashDisk::crashed`] with the report of what the crash kept.
    fn crashed_with_report(&self, seed: u64, mode: CrashMode) -> (Self, CrashReport) {
        let (sim, report) = self.sim().crash_with_report(seed, mode);
        (Self::recovered(sim), report)
    }
    /// Freezes the disk after `flushes` more flush runs.
    fn freeze_after(&self, flushes: u64) {
        self.sim().freeze_after_flushes(self.sim().flushes_done() + flushes);
    }
}

impl CrashDisk for SimDisk {
    fn fresh() -> Self {
        SimDisk::new()
    }
    fn sim(&self) -> &SimDisk {
        self
    }
    fn recovered(sim: SimDisk) -> Self {
        sim
    }
}

impl CrashDisk for Journaled<SimDisk> {
    fn fresh() -> Self {
        Self::recovered(SimDisk::new())
    }
    fn sim(&self) -> &SimDisk {
        self.inner()
    }
    fn recovered(sim: SimDisk) -> Self {
        Journaled::open(sim, Path::new(JOURNAL), JOURNAL_BYTES).expect("the journal replays").0
    }
}
