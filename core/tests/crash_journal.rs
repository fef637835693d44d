//! The crash suite of `crash.rs` on the disk the server runs: the simulated disk under the
//! shard journal (`skua_core::disk::journal`, FORMAT.md "The shard journal"). Every write of
//! the store reaches its file unsynced and the journal; rounds sync the journal only, a
//! 256 KiB journal fills and restarts many times per workload, renames and removals sync
//! inside the action (a blocking checkpoint, a crash point of its own), and every crash is
//! followed by the journal's replay before the store opens. The same checks as `crash.rs`.
//!
//! Run with `cargo test -p skua-core --features sim --test crash_journal -- --nocapture`.
#![cfg(feature = "sim")]

/// The disk under test: the simulated disk under the shard journal, as the server runs.
type TestDisk = skua_core::disk::journal::Journaled<skua_core::disk::sim::SimDisk>;

/// Default number of random seeds.
const SEEDS_DEFAULT: u64 = 150;

include!("crash/suite.rs");
