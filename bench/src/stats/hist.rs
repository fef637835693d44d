//! Per-operation latency histograms.
//!
//! Each worker owns a [`Recorder`] (no sharing on the hot path: one histogram per operation,
//! merged at the end) and bumps shared atomic counters ([`Live`]) so the progress line can show
//! rates while the run goes on. Latencies are recorded in microseconds.
//!
//! A histogram of the bench's range costs about 180 KiB, so a recorder keeps its first
//! [`PENDING_SAMPLES`] latencies in a plain list and makes its histograms only when that
//! fills: the idle scenario's thousands of connections each record four latencies, and must
//! not each hold a megabyte of empty histograms.

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
        Arc::new(Self { names, counts: zeros(), errors: zeros() })
    }

    /// (successes, errors) of operation `op` so far.
    pub fn get(&self, op: usize) -> (u64, u64) {
        (self.counts[op].load(Ordering::Relaxed), self.errors[op].load(Ordering::Relaxed))
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
        Self { hist: new_histogram(), errors: 0, bytes: 0 }
    }
}

/// Latencies a recorder keeps as a list before it makes its histograms (16 bytes each).
pub const PENDING_SAMPLES: usize = 64;

/// A worker's own measurements: one histogram per operation, made on demand.
#[derive(Debug)]
pub struct Recorder {
    live: Arc<Live>,
    /// Histograms, errors and bytes per operation; empty until `pending` first fills.
    ops: Vec<OpStats>,
    /// (operation, µs) not yet in a histogram.
    pending: Vec<(usize, u64)>,
    /// Errors and bytes per operation while `ops` is empty.
    counters: Vec<(u64, u64)>,
}

impl Recorder {
    /// An empty recorder that also feeds `live`.
    pub fn new(live: Arc<Live>) -> Self {
        let counters = vec![(0, 0); live.names.len()];
        Self { live, ops: Vec::new(), pending: Vec::new(), counters }
    }

    /// Records one success of `op` that took `latency`.
    pub fn record(&mut self, op: usize, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        assert!(op < self.counters.len(), "operation {op} out of range");
        if self.ops.is_empty() && self.pending.len() < PENDING_SAMPLES {
            self.pending.push((op, us));
        } else {
            self.histograms()[op].hist.saturating_record(us);
        }
        self.live.counts[op].fetch_add(1, Ordering::Relaxed);
    }

    /// Records one failure of `op`.
    pub fn error(&mut self, op: usize) {
        self.counters[op].0 += 1;
        self.live.errors[op].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds payload bytes to `op`.
    pub fn bytes(&mut self, op: usize, n: usize) {
        self.counters[op].1 += n as u64;
    }

    /// The histograms, made now if they were not, with the pending samples moved in.
    fn histograms(&mut self) -> &mut [OpStats] {
        if self.ops.is_empty() {
            self.ops = self.live.names.iter().map(|_| OpStats::new()).collect();
        }
        for (op, us) in self.pending.drain(..) {
            self.ops[op].hist.saturating_record(us);
        }
        &mut self.ops
    }

    /// The recorder's measurements, for merging.
    pub fn into_stats(mut self) -> Stats {
        let counters = std::mem::take(&mut self.counters);
        let names = self.live.names;
        let ops = self.histograms();
        for (o, (errors, bytes)) in ops.iter_mut().zip(counters) {
            o.errors += errors;
            o.bytes += bytes;
        }
        Stats { names, ops: std::mem::take(&mut self.ops) }
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
        Self { names, ops: names.iter().map(|_| OpStats::new()).collect() }
    }

    /// Adds `other` (same operation list) into self.
    pub fn merge(&mut self, other: &Stats) {
        assert_eq!(self.names, other.names, "merging stats of different scenarios");
        for (mine, theirs) in self.ops.iter_mut().zip(&other.ops) {
            mine.hist.add(&theirs.hist).expect("histograms share bounds");
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
    fn histograms_are_made_only_when_the_pending_list_fills() {
        let live = Live::new(OPS);
        let mut r = Recorder::new(live.clone());
        for i in 0..PENDING_SAMPLES as u64 {
            r.record(1, Duration::from_micros(100 + i));
        }
        r.error(0);
        r.bytes(1, 7);
        assert!(r.ops.is_empty(), "no histogram while the list has room");
        r.record(1, Duration::from_micros(5000));
        assert_eq!(r.ops.len(), OPS.len());
        assert!(r.pending.is_empty());
        r.error(0);
        let s = r.into_stats();
        assert_eq!(s.ops[1].hist.len(), PENDING_SAMPLES as u64 + 1);
        assert_eq!((s.ops[0].errors, s.ops[1].bytes), (2, 7));
        assert_eq!(live.get(1), (PENDING_SAMPLES as u64 + 1, 0));
        let few = Recorder::new(live);
        assert!(few.into_stats().ops.iter().all(|o| o.hist.is_empty()));
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
