//! What a crash keeps of the writes that were never flushed.
//!
//! A crash happens at one instant: everything a completed flush covered is durable, and of the
//! operations issued since, the disk may have written any subset, in any order, and a write may
//! be torn at a sector boundary (the sectors before the tear hold new bytes, the rest old ones).
//! [`CrashMode`] names the families of outcomes the tests enumerate; [`choose`] draws one
//! outcome from a seed.

use super::image::Op;
use super::rng::SimRng;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Pending operations at the instant of the crash.
    pub pending: usize,
    /// Operations that reached the disk whole.
    pub kept: usize,
    /// Writes that reached the disk torn (a proper prefix of their sectors).
    pub torn: usize,
}

/// Draws the operations that survive a crash: the returned list, applied in order to the
/// durable image, gives the disk after the crash.
pub fn choose(pending: &[Op], rng: &mut SimRng, mode: CrashMode) -> (Vec<Op>, CrashReport) {
    let mut report = CrashReport {
        pending: pending.len(),
        ..CrashReport::default()
    };
    let mut survivors = Vec::new();
    match mode {
        CrashMode::DropPending => {}
        CrashMode::KeepPending => survivors.extend(pending.iter().cloned()),
        CrashMode::Prefix => {
            let kept = rng.index(pending.len() + 1);
            survivors.extend(pending[..kept].iter().cloned());
            if let Some(next) = pending.get(kept)
                && let Some(torn) = tear(next, rng)
            {
                survivors.push(torn);
                report.torn += 1;
            }
        }
        CrashMode::Subset | CrashMode::TornSubset => {
            // A keep probability per crash (1/4, 1/2 or 3/4) spreads outcomes from "almost
            // nothing" to "almost everything" across seeds.
            let keep_quarters = 1 + rng.below(3);
            for op in pending {
                if !rng.chance(keep_quarters, 4) {
                    continue;
                }
                let torn = if mode == CrashMode::TornSubset && rng.chance(1, 2) {
                    tear(op, rng)
                } else {
                    None
                };
                if let Some(torn) = torn {
                    survivors.push(torn);
                    report.torn += 1;
                } else {
                    survivors.push(op.clone());
                }
            }
        }
    }
    report.kept = survivors.len() - report.torn;
    (survivors, report)
}

/// A proper sector prefix of a write, or `None` for an op that cannot tear (not a write, or a
/// write inside one sector, which the disk writes atomically).
fn tear(op: &Op, rng: &mut SimRng) -> Option<Op> {
    let points = op.tear_points();
    if points.is_empty() {
        return None;
    }
    let kept = points[rng.index(points.len())];
    Some(op.truncated_write(kept))
}
