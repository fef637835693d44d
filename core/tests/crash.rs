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
//! written, a mailbox rename all or nothing, each mailbox's ACL one it had (SETACL actions).
//! Then the recovered store must take one more append and flush and survive a clean restart.
//!
//! Three tests:
//! - `every_flush_point_of_the_scripted_workload`: crash between every pair of flushes, with
//!   every crash mode (the random modes several times). The workloads include MULTIAPPEND
//!   batches (`append_all`): an acknowledged batch must be whole.
//! - `every_flush_point_across_a_checkpoint`: the same for a workload of 18 MiB, which carries
//!   the store past its first index checkpoint (recovery then scans from it).
//! - `random_workloads_crash_anywhere`: a random workload and crash per seed, then a second
//!   random workload on the recovered store and a second crash; seeds
//!   `SKUA_CRASH_SEED_START..` (default 0), `SKUA_CRASH_SEEDS` of them (default 300); a
//!   failure prints `SEED=<n>`, and `SKUA_CRASH_SEED=<n>` replays that seed alone.
//!
//! Run with `cargo test -p skua-core --features sim --test crash -- --nocapture` to see counts.
#![cfg(feature = "sim")]

/// The disk under test: the bare simulated disk, as offline tools run the store.
type TestDisk = skua_core::disk::sim::SimDisk;

/// Default number of random seeds.
const SEEDS_DEFAULT: u64 = 300;

include!("crash/suite.rs");
