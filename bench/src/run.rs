//! Running a scenario: the shared stop conditions, open- or closed-loop pacing, and the worker
//! harness that spawns one task per connection, shows progress and merges the histograms.
//!
//! Open loop (`--rate R`): connection w of C starts operations at `start + w/R + k*C/R`. A
//! late operation is sent at once, and its latency is measured from its intended start, so a
//! server stall shows in the percentiles instead of silently slowing the client down
//! ("coordinated omission").

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cli::Common;
use crate::stats::{Live, Recorder, Stats, progress};

/// Stop conditions shared by all workers of a run.
#[derive(Debug)]
pub struct Run {
    /// When the measured phase began.
    pub start: Instant,
    /// No operation starts at or after this instant.
    pub deadline: Instant,
    /// Longest wait for one response.
    pub timeout: Duration,
    max_ops: Option<u64>,
    issued: AtomicU64,
    rate: Option<f64>,
    connections: usize,
}

impl Run {
    /// A run starting now, bounded by the common options.
    pub fn new(c: &Common) -> Arc<Self> {
        let start = Instant::now();
        Arc::new(Self {
            start,
            deadline: start + Duration::from_secs(c.duration),
            timeout: Duration::from_secs(c.timeout),
            max_ops: c.max_ops,
            issued: AtomicU64::new(0),
            rate: c.rate,
            connections: c.connections,
        })
    }

    /// Takes one operation from the budget; false when the run is over.
    fn claim(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        match self.max_ops {
            Some(m) => self.issued.fetch_add(1, Ordering::Relaxed) < m,
            None => true,
        }
    }

    /// True in open-loop mode.
    pub fn open_loop(&self) -> bool {
        self.rate.is_some()
    }

    /// The pacer of worker `w`.
    pub fn pacer(&self, w: usize) -> Pacer {
        let interval = self.rate.map(|r| Duration::from_secs_f64(self.connections as f64 / r));
        let first =
            self.rate.map_or(self.start, |r| self.start + Duration::from_secs_f64(w as f64 / r));
        Pacer { interval, next: first }
    }
}

/// When an operation may start, and the instant its latency counts from.
#[derive(Debug)]
pub struct Pacer {
    interval: Option<Duration>,
    next: Instant,
}

/// A go-ahead for one operation.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    intended: Option<Instant>,
}

impl Tick {
    /// The instant latency is measured from: the intended start in open loop, else `actual`.
    pub fn from(&self, actual: Instant) -> Instant {
        self.intended.unwrap_or(actual)
    }
}

impl Pacer {
    /// Waits for the next operation's start; None when the run is over.
    pub async fn tick(&mut self, run: &Run) -> Option<Tick> {
        let Some(interval) = self.interval else {
            return run.claim().then_some(Tick { intended: None });
        };
        let intended = self.next;
        if intended >= run.deadline {
            return None;
        }
        self.next += interval;
        tokio::time::sleep_until(intended.into()).await;
        run.claim().then_some(Tick { intended: Some(intended) })
    }
}

/// What a finished run hands to the report.
#[derive(Debug)]
pub struct Outcome {
    /// Merged measurements.
    pub stats: Stats,
    /// Wall time from start until the last worker stopped.
    pub elapsed: Duration,
    /// Things that went wrong in the harness itself.
    pub notes: Vec<String>,
}

/// Runs `worker(index, run, recorder)` once per connection, with the progress line, and
/// merges what they recorded. Workers that outlive the deadline by more than the timeout plus
/// five seconds are aborted (and their measurements lost, which a note says).
pub async fn run_workers<F, Fut>(
    common: &Common,
    names: &'static [&'static str],
    run: Arc<Run>,
    worker: F,
) -> Outcome
where
    F: Fn(usize, Arc<Run>, Recorder) -> Fut,
    Fut: Future<Output = Recorder> + Send + 'static,
{
    let live = Live::new(names);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let progress = tokio::spawn(progress::run(live.clone(), run.start, common.quiet, stop_rx));
    let tasks: Vec<_> = (0..common.connections)
        .map(|w| tokio::spawn(worker(w, run.clone(), Recorder::new(live.clone()))))
        .collect();
    let hard_stop = run.deadline + run.timeout + Duration::from_secs(5);
    let mut stats = Stats::empty(names);
    let mut notes = Vec::new();
    let mut aborted = 0;
    for mut t in tasks {
        match tokio::time::timeout_at(hard_stop.into(), &mut t).await {
            Ok(Ok(rec)) => stats.merge(&rec.into_stats()),
            Ok(Err(e)) => notes.push(format!("a worker failed: {e}")),
            Err(_) => {
                t.abort();
                aborted += 1;
            }
        }
    }
    if aborted > 0 {
        notes.push(format!("{aborted} workers were still waiting on the server at the hard stop; their figures are left out"));
    }
    let elapsed = run.start.elapsed();
    let _ = stop_tx.send(true);
    let _ = progress.await;
    Outcome { stats, elapsed, notes }
}

/// Sleeps the reconnect pause unless the run ends first.
pub async fn pause_before_retry(run: &Run) {
    let until = (Instant::now() + crate::limits::RECONNECT_PAUSE).min(run.deadline);
    tokio::time::sleep_until(until.into()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn common(extra: &[&str]) -> Common {
        let args = ["skua-bench", "churn", "--quiet", "--duration", "1"].iter().chain(extra);
        match crate::cli::Cli::parse_from(args).scenario {
            crate::cli::Scenario::Churn(c) => c.common,
            _ => unreachable!(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_ticks_are_evenly_spread_and_bounded() {
        let c = common(&["--rate", "100", "--connections", "4"]);
        let run = Run::new(&c);
        let mut p = run.pacer(1);
        let mut intended = Vec::new();
        while let Some(t) = p.tick(&run).await {
            intended.push(t.from(Instant::now()) - run.start);
        }
        // Worker 1 of 4 at 100/s: 10 ms, 50 ms, 90 ms, ... up to the 1 s deadline.
        assert_eq!(intended.len(), 25);
        assert_eq!(intended[0], Duration::from_millis(10));
        assert_eq!(intended[1], Duration::from_millis(50));
    }

    #[tokio::test]
    async fn closed_loop_respects_max_ops() {
        let c = common(&["--max-ops", "5"]);
        let run = Run::new(&c);
        let mut p = run.pacer(0);
        let mut n = 0;
        while p.tick(&run).await.is_some() {
            n += 1;
        }
        assert_eq!(n, 5);
        assert!(!run.claim(), "the budget stays spent");
    }

    #[tokio::test]
    async fn harness_merges_every_worker() {
        const OPS: &[&str] = &["op"];
        let c = common(&["--connections", "3", "--max-ops", "30"]);
        let run = Run::new(&c);
        let out = run_workers(&c, OPS, run, |_, run, mut rec| async move {
            let mut p = run.pacer(0);
            while p.tick(&run).await.is_some() {
                rec.record(0, Duration::from_micros(100));
                tokio::task::yield_now().await;
            }
            rec
        })
        .await;
        assert_eq!(out.stats.ops[0].hist.len(), 30);
        assert!(out.notes.is_empty());
    }
}
