//! What a crash keeps of the writes that were never flushed.
//!
//! A crash happens at one instant: everything a completed flush covered is durable, and of the
//! operations issued since, the disk may have written any subset, in any order, and a write may
//! be torn at a sector boundary (the sectors before the tear hold new bytes, the rest old ones).
//! [`CrashMode`] names the families of outcomes the tests enumerate; [`choose`] draws one
//! outcome from a seed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::image::Op;
use super::rng::SimRng;
use super::{Pending, SimDisk, State, lock};

/// Which unflushed operations survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashMode {
    /// None: the disk is exactly its durable image.
    DropPending,
    /// All of them, whole: as if the last flush had completed just before the power went.
    KeepPending,
    /// The first k of them, in issue order, and maybe a sector prefix of the next write
    /// (ordered write-back, interrupted in the middle of a write).
    Prefix,
    /// Any subset of whole operations (a disk cache that reorders writes).
    Subset,
    /// Any subset, and each kept multi-sector write may be torn at a sector boundary.
    TornSubset,
}

impl CrashMode {
    /// Every mode, for tests that enumerate them.
    pub const ALL: [CrashMode; 5] = [
        CrashMode::DropPending,
        CrashMode::KeepPending,
        CrashMode::Prefix,
        CrashMode::Subset,
        CrashMode::TornSubset,
    ];
}

/// What a crash did to the pending operations, for test diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Pending operations at the instant of the crash.
    pub pending: usize,
    /// Operations that reached the disk whole.
    pub kept: usize,
    /// Writes that reached the disk torn (a proper prefix of their sectors).
    pub torn: usize,
    /// One line per pending operation, in issue order: what it was and what the crash did to
    /// it (`kept`, `lost`, or `torn at +N`). Filled by `SimDisk::crash_with_report`.
    pub ops: Vec<String>,
}

/// What a crash did to one pending operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Never reached the disk.
    Lost,
    /// Reached the disk whole.
    Kept,
    /// Only its first `n` bytes reached the disk. The crash modes tear at sector boundaries
    /// only, as disks do; [`SimDisk::crash_where`] takes any `n`: a test stays realistic by
    /// choosing `n` so that the write's offset plus `n` is a multiple of
    /// [`SECTOR_BYTES`](super::SECTOR_BYTES).
    Torn(usize),
}

/// Draws the fate of each pending operation in a crash; applying the kept and torn ones in
/// order to the durable image gives the disk after the crash.
pub fn choose(pending: &[Op], rng: &mut SimRng, mode: CrashMode) -> Vec<Fate> {
    let mut fates = vec![Fate::Lost; pending.len()];
    match mode {
        CrashMode::DropPending => {}
        CrashMode::KeepPending => fates.fill(Fate::Kept),
        CrashMode::Prefix => {
            let kept = rng.index(pending.len() + 1);
            fates[..kept].fill(Fate::Kept);
            if let Some(next) = pending.get(kept) {
                fates[kept] = tear(next, rng).unwrap_or(Fate::Lost);
            }
        }
        CrashMode::Subset | CrashMode::TornSubset => {
            // A keep probability per crash (1/4, 1/2 or 3/4) spreads outcomes from "almost
            // nothing" to "almost everything" across seeds.
            let keep_quarters = 1 + rng.below(3);
            for (op, fate) in pending.iter().zip(&mut fates) {
                if !rng.chance(keep_quarters, 4) {
                    continue;
                }
                let torn = mode == CrashMode::TornSubset && rng.chance(1, 2);
                *fate = if torn { tear(op, rng).unwrap_or(Fate::Kept) } else { Fate::Kept };
            }
        }
    }
    fates
}

/// A proper sector prefix of a write, or `None` for an op that cannot tear (not a write, or a
/// write inside one sector, which the disk writes atomically).
fn tear(op: &Op, rng: &mut SimRng) -> Option<Fate> {
    let points = op.tear_points();
    if points.is_empty() {
        return None;
    }
    Some(Fate::Torn(points[rng.index(points.len())]))
}

/// A pending operation as [`SimDisk::crash_where`] shows it to the caller's choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOp {
    /// Its place among the pending operations, in issue order.
    pub index: usize,
    /// The epoch it was made in.
    pub epoch: u64,
    /// `write`, `set_len`, `create`, `mkdir`, `remove` or `rename`.
    pub kind: &'static str,
    /// The file it changes (by its name when the op was made; `inode N` if it had none), or
    /// the entry it creates, removes or renames (the source, for a rename).
    pub path: PathBuf,
    /// Where a write starts, or the new length for `set_len`; zero otherwise.
    pub offset: u64,
    /// How many bytes a write carries; zero otherwise.
    pub len: u64,
    /// Written by `DiskFile::write_all_at_unsynced`: no flush round has synced its file since.
    pub unsynced: bool,
}

impl PendingOp {
    fn of(index: usize, pending: &Pending) -> PendingOp {
        let (kind, offset, len) = match &pending.op {
            Op::Write { offset, data, .. } => ("write", *offset, data.len() as u64),
            Op::SetLen { len, .. } => ("set_len", *len, 0),
            Op::Create { .. } => ("create", 0, 0),
            Op::Mkdir { .. } => ("mkdir", 0, 0),
            Op::Remove { .. } => ("remove", 0, 0),
            Op::Rename { .. } => ("rename", 0, 0),
        };
        PendingOp {
            index,
            epoch: pending.epoch,
            kind,
            path: pending.path.clone(),
            offset,
            len,
            unsynced: pending.unsynced,
        }
    }
}

impl SimDisk {
    /// The disk a restart would find after a crash now: the durable image plus what `mode`
    /// keeps of the pending operations, chosen from `seed`. This disk is left unchanged.
    #[must_use]
    pub fn crash(&self, seed: u64, mode: CrashMode) -> SimDisk {
        self.crash_with_report(seed, mode).0
    }

    /// [`SimDisk::crash`], also telling what happened to each pending operation.
    #[must_use]
    pub fn crash_with_report(&self, seed: u64, mode: CrashMode) -> (SimDisk, CrashReport) {
        let state = lock(&self.state);
        let pending: Vec<Op> = state.pending.iter().map(|p| p.op.clone()).collect();
        let fates = choose(&pending, &mut SimRng::new(seed), mode);
        crashed(&state, &fates)
    }

    /// A crash whose outcome the caller picks op by op: for regression tests that need one
    /// exact interleaving (say, "the index write landed, the log write did not"). A
    /// [`Fate::Torn`] for an op that is not a write, or past its length, keeps it whole.
    #[must_use]
    pub fn crash_where(&self, mut fate: impl FnMut(&PendingOp) -> Fate) -> (SimDisk, CrashReport) {
        let state = lock(&self.state);
        let fates: Vec<Fate> = state
            .pending
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let chosen = fate(&PendingOp::of(index, p));
                match (chosen, &p.op) {
                    (Fate::Torn(bytes), Op::Write { data, .. }) if bytes < data.len() => chosen,
                    (Fate::Torn(_), _) => Fate::Kept,
                    (other, _) => other,
                }
            })
            .collect();
        crashed(&state, &fates)
    }
}

/// The durable image with the pending ops applied according to their fates, as a new disk.
fn crashed(state: &State, fates: &[Fate]) -> (SimDisk, CrashReport) {
    let mut report = CrashReport { pending: fates.len(), ..CrashReport::default() };
    let mut image = state.durable.clone();
    for (pending, fate) in state.pending.iter().zip(fates) {
        let op = &pending.op;
        let survivor = match *fate {
            Fate::Lost => None,
            Fate::Kept => {
                report.kept += 1;
                Some(op.clone())
            }
            Fate::Torn(bytes) => {
                report.torn += 1;
                Some(op.truncated_write(bytes))
            }
        };
        // An op whose parent or source did not survive is skipped, as the disk would.
        let applied = survivor.as_ref().map(|survivor| image.apply(survivor));
        let outcome = match (applied, fate) {
            (None, _) => "lost".to_owned(),
            (Some(Err(error)), _) => format!("kept, but void: {error}"),
            (Some(Ok(())), Fate::Torn(bytes)) => format!("torn after {bytes} bytes"),
            (Some(Ok(())), _) => "kept".to_owned(),
        };
        report.ops.push(format!("{}: {outcome}", pending.label));
    }
    image.collect_garbage();
    let state = State::from_image(image, state.next_inode);
    (SimDisk { state: Arc::new(Mutex::new(state)) }, report)
}
