//! The end-of-run report: a fixed-width table for people, JSON (`--json`) for scripts.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Stats;

/// Latency percentiles of one operation, in microseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest seen.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OpSummary {
    /// Operation name.
    pub name: String,
    /// Successes.
    pub count: u64,
    /// Failures.
    pub errors: u64,
    /// Successes per second over the run.
    pub per_sec: f64,
    /// Payload bytes per second (0 when the operation moves none).
    pub bytes_per_sec: f64,
    /// Latency percentiles in µs (absent when there were no successes).
    pub latency_us: Option<Latency>,
}

/// The whole report of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Wall time of the measured phase, seconds.
    pub elapsed_s: f64,
    /// `closed` or `open` (fixed arrival rate).
    pub mode: String,
    /// Connections used.
    pub connections: usize,
    /// One row per operation that happened.
    pub ops: Vec<OpSummary>,
    /// Scenario-specific figures (memory per connection, ...), as name -> value.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Things the reader should know (a server that refused commands, aborted workers).
    pub notes: Vec<String>,
}

impl Report {
    /// Builds the rows from merged stats; operations that never ran are left out.
    pub fn new(
        scenario: &str,
        stats: &Stats,
        elapsed: Duration,
        open_loop: bool,
        connections: usize,
    ) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ops = stats
            .names
            .iter()
            .zip(&stats.ops)
            .filter(|(_, op)| !op.hist.is_empty() || op.errors > 0)
            .map(|(name, op)| {
                let h = &op.hist;
                let latency_us = (!h.is_empty()).then(|| Latency {
                    p50: h.value_at_quantile(0.50),
                    p90: h.value_at_quantile(0.90),
                    p99: h.value_at_quantile(0.99),
                    p999: h.value_at_quantile(0.999),
                    max: h.max(),
                    mean: h.mean(),
                });
                OpSummary {
                    name: (*name).to_owned(),
                    count: h.len(),
                    errors: op.errors,
                    per_sec: h.len() as f64 / secs,
                    bytes_per_sec: op.bytes as f64 / secs,
                    latency_us,
                }
            })
            .collect();
        Self {
            scenario: scenario.to_owned(),
            elapsed_s: secs,
            mode: if open_loop { "open" } else { "closed" }.to_owned(),
            connections,
            ops,
            extra: serde_json::Map::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a scenario-specific figure.
    pub fn extra(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// The report as a table for a terminal.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "skua-bench {}: {:.1}s, {} connections, {}-loop",
            self.scenario, self.elapsed_s, self.connections, self.mode
        );
        let _ = writeln!(
            s,
            "{:<14} {:>10} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op", "count", "errors", "per sec", "MiB/s", "p50", "p90", "p99", "p99.9", "max"
        );
        for op in &self.ops {
            let lat = |f: fn(&Latency) -> u64| {
                op.latency_us.as_ref().map_or("-".to_owned(), |l| fmt_us(f(l)))
            };
            let _ = writeln!(
                s,
                "{:<14} {:>10} {:>7} {:>11.1} {:>9.2} {:>9} {:>9} {:>9} {:>9} {:>9}",
                op.name,
                op.count,
                op.errors,
                op.per_sec,
                op.bytes_per_sec / (1024.0 * 1024.0),
                lat(|l| l.p50),
                lat(|l| l.p90),
                lat(|l| l.p99),
                lat(|l| l.p999),
                lat(|l| l.max),
            );
        }
        for (k, v) in &self.extra {
            match v.as_str() {
                Some(text) => writeln!(s, "{k}: {text}"),
                None => writeln!(s, "{k}: {v}"),
            }
            .expect("writing to a String");
        }
        for note in &self.notes {
            let _ = writeln!(s, "note: {note}");
        }
        s
    }
}

/// A latency in µs, in the unit that keeps 3 significant digits readable: `850us`, `1.23ms`,
/// `12.3ms`, `1.50s`.
pub fn fmt_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}us"),
        1_000..10_000 => format!("{:.2}ms", us as f64 / 1e3),
        10_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Live, Recorder};

    const OPS: &[&str] = &["deliver", "connect", "unused"];

    fn sample() -> Report {
        let mut r = Recorder::new(Live::new(OPS));
        for i in 1..=1000u64 {
            r.record(0, Duration::from_micros(i * 10));
        }
        r.bytes(0, 2 * 1024 * 1024);
        r.error(1);
        let mut rep = Report::new("lmtp", &r.into_stats(), Duration::from_secs(2), false, 8);
        rep.extra("rss_per_conn_kib", 12.5);
        rep.notes.push("a note".into());
        rep
    }

    #[test]
    fn units() {
        assert_eq!(fmt_us(850), "850us");
        assert_eq!(fmt_us(1234), "1.23ms");
        assert_eq!(fmt_us(12_345), "12.3ms");
        assert_eq!(fmt_us(1_500_000), "1.50s");
    }

    #[test]
    fn rows_rates_and_percentiles() {
        let rep = sample();
        assert_eq!(rep.ops.len(), 2, "unused op left out");
        let d = &rep.ops[0];
        assert_eq!((d.count, d.errors), (1000, 0));
        assert!((d.per_sec - 500.0).abs() < 1e-9);
        assert!((d.bytes_per_sec - 1024.0 * 1024.0).abs() < 1e-6);
        let l = d.latency_us.as_ref().unwrap();
        assert!((4990..=5010).contains(&l.p50), "{l:?}");
        assert!((9890..=9910).contains(&l.p99), "{l:?}");
        assert!(l.max >= 10_000 && l.max < 10_010);
        assert!(rep.ops[1].latency_us.is_none());
    }

    #[test]
    fn table_layout() {
        let t = sample().to_table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "skua-bench lmtp: 2.0s, 8 connections, closed-loop");
        assert!(lines[1].starts_with("op ") && lines[1].ends_with("max"));
        assert!(
            lines[2].starts_with("deliver")
                && lines[2].contains("500.0")
                && lines[2].contains("5.00ms")
        );
        assert!(lines[3].starts_with("connect") && lines[3].trim_end().ends_with('-'));
        assert_eq!(lines[4], "rss_per_conn_kib: 12.5");
        assert_eq!(lines[5], "note: a note");
        assert_eq!(lines[1].len(), lines[2].len(), "columns line up");
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["scenario"], "lmtp");
        assert_eq!(v["mode"], "closed");
        assert_eq!(v["ops"][0]["name"], "deliver");
        assert_eq!(v["ops"][0]["count"], 1000);
        assert!(v["ops"][0]["latency_us"]["p999"].as_u64().unwrap() >= 9990);
        assert!(v["ops"][1]["latency_us"].is_null());
        assert_eq!(v["extra"]["rss_per_conn_kib"], 12.5);
    }
}
