//! Per-operation latency histograms.
//!
//! Each worker owns a [`Recorder`] (no sharing on the hot path: one histogram per operation,
//! merged at the end) and bumps shared atomic counters ([`Live`]) so the progress line can show
//! rates while the run goes on. Latencies are recorded in microseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::limits::MAX_LATENCY_US;

/// A new empty histogram with the bench's bounds: 1 µs ..= 1 h at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// Counters shared by all workers of a run, read by the progress line.
#[derive(Debug)]
pub struct Live {
    /// The operation names, in index order.
    pub names: &'static [&'static str],
    counts: Vec<AtomicU64>,
    errors: Vec<AtomicU64>,
}

impl Live {
    /// Zeroed counters for `names`.
    pub fn new(names: &'static [&'static str]) -> Arc<Self> {
        let zeros = || names.iter().map(|_| AtomicU64::new(0)).collect();
        Arc::new(Self {
            names,
            counts: zeros(),
            errors: zeros(),
        })
    }

    /// (successes, errors) of operation `op` so far.
    pub fn get(&self, op: usize) -> (u64, u64) {
        (
            self.counts[op].load(Ordering::Relaxed),
            self.errors[op].load(Ordering::Relaxed),
        )
    }
}

/// One operation's measurements.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency of each success, in µs.
    pub hist: Histogram<u64>,
    /// Failed attempts (error replies, I/O errors, timeouts).
    pub errors: u64,
    /// Payload bytes moved (message data sent or fetched).
    pub bytes: u64,
}

impl OpStats {
    fn new() -> Self {
        Self {
            hist: new_histogram(),
            errors: 0,
            bytes: 0,
        }
    }
}

/// A worker's own histograms, one per operation.
#[derive(Debug)]
pub struct Recorder {
    live: Arc<Live>,
    ops: Vec<OpStats>,
}

impl Recorder {
    /// An empty recorder that also feeds `live`.
    pub fn new(live: Arc<Live>) -> Self {
        let ops = live.names.iter().map(|_| OpStats::new()).collect();
        Self { live, ops }
    }

    /// Records one success of `op` that took `latency`.
    pub fn record(&mut self, op: usize, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.ops[op].hist.saturating_record(us);
        self.live.counts[op].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one failure of `op`.
    pub fn error(&mut self, op: usize) {
        self.ops[op].errors += 1;
        self.live.errors[op].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds payload bytes to `op`.
    pub fn bytes(&mut self, op: usize, n: usize) {
        self.ops[op].bytes += n as u64;
    }

    /// The recorder's measurements, for merging.
    pub fn into_stats(self) -> Stats {
        Stats {
            names: self.live.names,
            ops: self.ops,
        }
    }
}

/// Merged measurements of a run.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Operation names, in index order.
    pub names: &'static [&'static str],
    /// Measurements per operation, same order.
    pub ops: Vec<OpStats>,
}

impl Stats {
    /// Empty stats for `names`.
    pub fn empty(names: &'static [&'static str]) -> Self {
        Self {
            names,
            ops: names.iter().map(|_| OpStats::new()).collect(),
        }
    }

    /// Adds `other` (same operation list) into self.
    pub fn merge(&mut self, other: &Stats) {
        assert_eq!(
            self.names, other.names,
            "merging stats of different scenarios"
        );
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.hist
                .add(&theirs.hist)
                .expect("histograms share bounds");
            mine.errors += theirs.errors;
            mine.bytes += theirs.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPS: &[&str] = &["a", "b"];

    #[test]
    fn records_merge_and_feed_live_counters() {
        let live = Live::new(OPS);
        let mut r1 = Recorder::new(live.clone());
        let mut r2 = Recorder::new(live.clone());
        for ms in 1..=100 {
            r1.record(0, Duration::from_millis(ms));
        }
        r2.record(0, Duration::from_secs(2));
        r2.error(1);
        r2.bytes(0, 4096);
        assert_eq!(live.get(0), (101, 0));
        assert_eq!(live.get(1), (0, 1));
        let mut all = r1.into_stats();
        all.merge(&r2.into_stats());
        let a = &all.ops[0];
        assert_eq!(a.hist.len(), 101);
        assert_eq!(a.bytes, 4096);
        let p50 = a.hist.value_at_quantile(0.5);
        assert!((50_000..=51_100).contains(&p50), "{p50}");
        assert!(a.hist.max() >= 2_000_000 && a.hist.max() < 2_002_000);
        assert_eq!(all.ops[1].errors, 1);
    }

    #[test]
    fn sub_microsecond_and_huge_latencies_are_clamped() {
        let mut r = Recorder::new(Live::new(OPS));
        r.record(0, Duration::from_nanos(10));
        r.record(0, Duration::from_secs(100_000));
        let s = r.into_stats();
        assert_eq!(s.ops[0].hist.min(), 1);
        assert!(s.ops[0].hist.max() >= MAX_LATENCY_US);
    }
}
