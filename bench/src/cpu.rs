//! The server's CPU cost over the measured phase, two ways:
//!
//! - `--server-cpus LIST`: busy time of those CPUs, from the `cpuN` lines of `/proc/stat`, read
//!   when the measured phase starts and when it ends. With the server pinned to those CPUs and
//!   nothing else on them, this is all the work done for it: user and kernel time (the loopback
//!   network stack included), of every process and thread, including those that started and
//!   exited during the run (a forking server's per-login processes). Busy = user + nice +
//!   system + irq + softirq; idle and iowait are not busy, and neither is steal (time the
//!   hypervisor ran something else), which is reported apart. Anything else running on those
//!   CPUs counts too: the figure is only as clean as the machine.
//! - `--server-pid PID`: CPU time of that process and its descendants (`memory::cpu_ticks`:
//!   user + system, with the children they reaped): blind to other processes on the same CPUs,
//!   but it misses kernel work not charged to the server's processes (softirq) and processes
//!   that exited without being reaped by the tree.
//!
//! Each is divided by the scenario's operations (its [`Probe::finish`] caller says which rows
//! count) into microseconds per operation.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::cli::Common;
use crate::memory;
use crate::scenario::BenchError;
use crate::server_metrics;
use crate::stats::report::Report;

/// Most CPUs a list may name: far above any machine the bench runs on, and it bounds parsing.
const MAX_CPU: usize = 4096;

/// A set of CPU numbers, written `0`, `0,2` or `0-3,6` (as `taskset -c` takes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(BTreeSet<usize>);

impl FromStr for CpuList {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for part in text.split(',').map(str::trim) {
            let (first, last) = part.split_once('-').unwrap_or((part, part));
            let number =
                |s: &str| {
                    s.trim().parse::<usize>().ok().filter(|&n| n < MAX_CPU).ok_or_else(|| {
                        format!("{part:?} is not a CPU number or range below {MAX_CPU}")
                    })
                };
            let (first, last) = (number(first)?, number(last)?);
            if first > last {
                return Err(format!("{part:?}: the range runs backwards"));
            }
            set.extend(first..=last);
        }
        Ok(Self(set))
    }
}

impl fmt::Display for CpuList {
    /// The list in its shortest form (`0-3,6`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut cpus = self.0.iter().copied().peekable();
        while let Some(first) = cpus.next() {
            let mut last = first;
            while cpus.peek() == Some(&(last + 1)) {
                last = cpus.next().unwrap_or(last);
            }
            parts.push(if first == last { first.to_string() } else { format!("{first}-{last}") });
        }
        f.write_str(&parts.join(","))
    }
}

/// Time of a set of CPUs since boot, in clock ticks (`USER_HZ`), by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticks {
    /// user + nice + system + irq + softirq.
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    /// steal: the hypervisor ran another guest.
    pub steal: u64,
}

impl Ticks {
    /// `self - earlier`, kind by kind (saturating: counters never run backwards, but a
    /// hot-unplugged CPU's could reset).
    fn since(self, earlier: Ticks) -> Ticks {
        Ticks {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// Sums the `cpuN` lines of `/proc/stat` text for the CPUs of `cpus`.
///
/// # Errors
/// When a CPU of the list has no line (offline, or no such CPU), or a line is malformed.
pub fn parse_proc_stat(text: &str, cpus: &CpuList) -> Result<Ticks, String> {
    let mut total = Ticks::default();
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(n) = fields.next().and_then(|name| name.strip_prefix("cpu")) else { continue };
        let Ok(n) = n.parse::<usize>() else { continue }; // `cpu`: the sum of all CPUs
        if !cpus.0.contains(&n) {
            continue;
        }
        let values: Vec<u64> = fields.map(str::parse).collect::<Result<_, _>>().map_err(|_| {
            format!("/proc/stat: line of cpu{n} has a field that is not a number: {line:?}")
        })?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
        // already inside user and nice, so it is not added again.
        let [user, nice, system, idle, iowait, irq, softirq, steal] = values
            .get(..8)
            .and_then(|v| <[u64; 8]>::try_from(v).ok())
            .ok_or_else(|| format!("/proc/stat: line of cpu{n} has fewer than 8 fields"))?;
        total.busy += user + nice + system + irq + softirq;
        total.idle += idle + iowait;
        total.steal += steal;
        found.insert(n);
    }
    let missing: Vec<String> = cpus.0.difference(&found).map(ToString::to_string).collect();
    if !missing.is_empty() {
        return Err(format!("/proc/stat has no line for CPU {} (offline?)", missing.join(",")));
    }
    Ok(total)
}

fn read_cpus(cpus: &CpuList) -> Result<Ticks, BenchError> {
    let text = std::fs::read_to_string("/proc/stat")
        .map_err(|e| BenchError::Setup(format!("reading /proc/stat for --server-cpus: {e}")))?;
    parse_proc_stat(&text, cpus).map_err(BenchError::Setup)
}

fn read_tree(pid: u32) -> Result<u64, BenchError> {
    memory::cpu_ticks(pid)
        .map_err(|e| BenchError::Setup(format!("reading CPU time of --server-pid {pid}: {e}")))
}

/// The readings taken when the measured phase started.
#[derive(Debug)]
pub struct Probe {
    cpus: Option<(CpuList, Ticks)>,
    tree: Option<(u32, u64)>,
    metrics: Option<server_metrics::Before>,
}

/// What the measured phase cost, from two readings.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// The CPUs' busy time, ms, with the fraction of their capacity it was, and steal, ms.
    pub cpus: Option<(String, f64, f64, f64)>,
    /// The process tree's CPU time, ms.
    pub tree_ms: Option<f64>,
}

fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 1000.0 / memory::USER_HZ as f64
}

impl Probe {
    /// Reads what `--server-cpus` and `--server-pid` ask for, and scrapes `--server-metrics`
    /// (nothing when none is given).
    ///
    /// # Errors
    /// When a CPU reading fails (no such CPU or process): the run would have no figure. A
    /// failed scrape is not an error: the report says so.
    pub fn start(common: &Common) -> Result<Self, BenchError> {
        // The scrape first, the CPU readings last (and the other way round in `finish`): the
        // server's CPU figures leave out the work of serving the scrapes.
        let metrics = common.metrics_endpoint()?.map(server_metrics::Before::take);
        let cpus = match &common.server_cpus {
            Some(list) => Some((list.clone(), read_cpus(list)?)),
            None => None,
        };
        let tree = match common.server_pid {
            Some(pid) => Some((pid, read_tree(pid)?)),
            None => None,
        };
        Ok(Self { cpus, tree, metrics })
    }

    /// Reads again and returns the difference.
    ///
    /// # Errors
    /// When a reading fails (the server process is gone).
    pub fn usage(&self) -> Result<Usage, BenchError> {
        let cpus = match &self.cpus {
            Some((list, before)) => {
                let d = read_cpus(list)?.since(*before);
                let capacity = d.busy + d.idle + d.steal;
                let share = if capacity == 0 { 0.0 } else { d.busy as f64 / capacity as f64 };
                Some((list.to_string(), ticks_ms(d.busy), share, ticks_ms(d.steal)))
            }
            None => None,
        };
        let tree_ms = match self.tree {
            Some((pid, before)) => Some(ticks_ms(read_tree(pid)?.saturating_sub(before))),
            None => None,
        };
        Ok(Usage { cpus, tree_ms })
    }

    /// Reads again and adds the figures to `report`, per operation over `ops` operations
    /// (`unit` names one: "delivery", "IMAP command", ...).
    ///
    /// # Errors
    /// As [`Probe::usage`].
    pub fn finish(&self, report: &mut Report, ops: u64, unit: &str) -> Result<(), BenchError> {
        self.finish_units(report, &[(unit, ops)])
    }

    /// As [`Probe::finish`] with more than one unit: CPU per operation of the first, server
    /// metrics per operation of each (imap-mixed: per IMAP command and per write command).
    ///
    /// # Errors
    /// As [`Probe::usage`].
    pub fn finish_units(
        &self,
        report: &mut Report,
        units: &[(&str, u64)],
    ) -> Result<(), BenchError> {
        let usage =
            if self.cpus.is_none() && self.tree.is_none() { None } else { Some(self.usage()?) };
        self.finish_metrics(report, units);
        if let Some(usage) = usage {
            let (unit, ops) = units.first().copied().unwrap_or(("operation", 0));
            usage.add_to(report, ops, unit);
        }
        Ok(())
    }

    /// Scrapes `--server-metrics` again, if given, and adds its figures per operation of each
    /// unit (or why there are none).
    pub fn finish_metrics(&self, report: &mut Report, units: &[(&str, u64)]) {
        if let Some(phase) = self.metrics_after() {
            phase.add_to(report, units);
        }
    }

    /// Scrapes `--server-metrics` again, if given, for figures added to the report later.
    pub fn metrics_after(&self) -> Option<server_metrics::Phase> {
        self.metrics.as_ref().map(server_metrics::Before::after)
    }
}

impl Usage {
    /// The figures as report extras: `server_cpus`, `server_cpu_busy_ms`,
    /// `server_cpu_busy_share`, `server_cpu_steal_ms`, `server_cpu_us_per_op` (the CPUs), and
    /// `server_tree_cpu_ms`, `server_tree_cpu_us_per_op` (the process tree); `cpu_ops` and
    /// `cpu_op_unit` say what an operation is.
    pub fn add_to(&self, report: &mut Report, ops: u64, unit: &str) {
        let per_op = |ms: f64| (ops > 0).then(|| round(ms * 1000.0 / ops as f64, 2));
        report.extra("cpu_ops", ops);
        report.extra("cpu_op_unit", unit);
        if let Some((list, busy_ms, share, steal_ms)) = &self.cpus {
            report.extra("server_cpus", list.clone());
            report.extra("server_cpu_busy_ms", round(*busy_ms, 1));
            report.extra("server_cpu_busy_share", round(*share, 4));
            report.extra("server_cpu_steal_ms", round(*steal_ms, 1));
            if let Some(us) = per_op(*busy_ms) {
                report.extra("server_cpu_us_per_op", us);
            }
        }
        if let Some(ms) = self.tree_ms {
            report.extra("server_tree_cpu_ms", round(ms, 1));
            if let Some(us) = per_op(ms) {
                report.extra("server_tree_cpu_us_per_op", us);
            }
        }
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Successful operations of `report` in the rows named (CPU per operation divides by these).
pub fn count_of(report: &Report, names: &[&str]) -> u64 {
    report.ops.iter().filter(|o| names.contains(&o.name.as_str())).map(|o| o.count).sum()
}

/// Successful operations of `report` in every row but those named.
pub fn count_except(report: &Report, names: &[&str]) -> u64 {
    report.ops.iter().filter(|o| !names.contains(&o.name.as_str())).map(|o| o.count).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  500 10 300 9000 40 5 15 7 0 0
cpu0 100 0 100 4000 20 1 9 3 50 0
cpu1 400 10 200 5000 20 4 6 4 0 0
intr 12345 0 0
ctxt 999
";

    #[test]
    fn cpu_lists_parse_as_taskset_writes_them() {
        let list: CpuList = "0-3,6, 8".parse().unwrap();
        assert_eq!(list.0.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 3, 6, 8]);
        assert_eq!(list.to_string(), "0-3,6,8");
        assert_eq!("1".parse::<CpuList>().unwrap().to_string(), "1");
        for bad in ["", "a", "3-1", "0,", "-1", "99999"] {
            assert!(bad.parse::<CpuList>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn busy_time_sums_the_listed_cpus_only() {
        let zero = parse_proc_stat(STAT, &"0".parse().unwrap()).unwrap();
        // busy = user 100 + nice 0 + system 100 + irq 1 + softirq 9; guest (50) is in user.
        assert_eq!(zero, Ticks { busy: 210, idle: 4020, steal: 3 });
        let both = parse_proc_stat(STAT, &"0-1".parse().unwrap()).unwrap();
        assert_eq!(both, Ticks { busy: 210 + 620, idle: 4020 + 5020, steal: 7 });
        let err = parse_proc_stat(STAT, &"0,5".parse().unwrap()).unwrap_err();
        assert!(err.contains("CPU 5"), "{err}");
        assert!(parse_proc_stat("cpu0 1 2 3\n", &"0".parse().unwrap()).is_err());
        assert!(parse_proc_stat("cpu0 1 2 x 4 5 6 7 8\n", &"0".parse().unwrap()).is_err());
    }

    #[test]
    fn usage_is_divided_per_operation() {
        let before = Ticks { busy: 1000, idle: 500, steal: 0 };
        let after = Ticks { busy: 1750, idle: 700, steal: 50 };
        let d = after.since(before);
        assert_eq!(d, Ticks { busy: 750, idle: 200, steal: 50 });
        let usage = Usage {
            cpus: Some(("0".into(), ticks_ms(d.busy), 0.75, ticks_ms(50))),
            tree_ms: Some(5000.0),
        };
        let mut report = Report::new(
            "lmtp",
            &crate::stats::Stats::empty(&["deliver"]),
            std::time::Duration::from_secs(10),
            false,
            8,
        );
        usage.add_to(&mut report, 2500, "delivery");
        let get = |k: &str| report.extra[k].as_f64().unwrap();
        assert_eq!(get("server_cpu_busy_ms"), 7500.0);
        assert_eq!(get("server_cpu_us_per_op"), 3000.0); // 7.5 s / 2500
        assert_eq!(get("server_tree_cpu_us_per_op"), 2000.0);
        assert_eq!(get("server_cpu_busy_share"), 0.75);
        assert_eq!(report.extra["server_cpus"], "0");
        let mut none = report.clone();
        none.extra.clear();
        usage.add_to(&mut none, 0, "delivery");
        assert!(!none.extra.contains_key("server_cpu_us_per_op"), "no operation, no ratio");
    }

    #[test]
    fn a_live_reading_sees_this_process_work() {
        let common = match <crate::cli::Cli as clap::Parser>::parse_from([
            "skua-bench",
            "churn",
            "--server-cpus",
            "0",
            "--server-pid",
            &std::process::id().to_string(),
        ])
        .scenario
        {
            crate::cli::Scenario::Churn(c) => c.common,
            _ => unreachable!(),
        };
        let probe = Probe::start(&common).unwrap();
        let usage = probe.usage().unwrap();
        let (list, busy, share, _) = usage.cpus.unwrap();
        assert_eq!(list, "0");
        assert!(busy >= 0.0 && (0.0..=1.0).contains(&share));
        assert!(usage.tree_ms.is_some());
    }
}
