//! The server's memory: the process given and every process descended from it at the moment
//! of reading, so a server that forks a process per connection (Dovecot, Cyrus) is measured as
//! fairly as one that holds every connection in one process (skua).
//!
//! Each process is read from `/proc/PID/smaps_rollup` (Linux 4.14+): RSS counts every resident
//! page the process maps, PSS divides shared pages among the processes sharing them. Summed
//! over a tree, RSS counts shared libraries and shared memory once per process, so it
//! overstates a multi-process server; PSS sums to the tree's true share and is the figure to
//! compare. Where smaps_rollup is missing, `VmRSS` of `/proc/PID/status` gives RSS only.
//!
//! The tree comes from the parent pid (field 4) of every `/proc/*/stat`, read once per
//! measurement; a process that exits between the listing and its reading is left out.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::limits::MAX_TREE_PROCESSES;

/// Resident memory of a process tree, KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Resident set size, summed over the tree.
    pub rss_kib: u64,
    /// Proportional set size, summed over the tree, when the kernel reports it for all of it.
    pub pss_kib: Option<u64>,
    /// Processes measured (the root and its descendants).
    pub processes: u32,
}

/// Reads the memory of process `pid` and all its descendants.
///
/// # Errors
/// When the root process itself cannot be read (gone, or no such pid).
pub fn read(pid: u32) -> std::io::Result<Memory> {
    let tree = descendants(pid, &parents()?);
    let mut total = read_one(pid)?;
    for &child in &tree {
        if let Ok(m) = read_one(child) {
            total.rss_kib += m.rss_kib;
            total.pss_kib = total.pss_kib.zip(m.pss_kib).map(|(a, b)| a + b);
            total.processes += 1;
        }
    }
    Ok(total)
}

/// One process's memory (`processes` = 1).
fn read_one(pid: u32) -> std::io::Result<Memory> {
    match std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        Ok(text) => {
            parse_rollup(&text).ok_or_else(|| std::io::Error::other("no Rss line in smaps_rollup"))
        }
        Err(_) => {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let rss = field_kib(&status, "VmRSS:")
                .ok_or_else(|| std::io::Error::other("no VmRSS in status"))?;
            Ok(Memory { rss_kib: rss, pss_kib: None, processes: 1 })
        }
    }
}

/// Clock ticks per second of the times in `/proc/PID/stat` (`USER_HZ`: 100 on every Linux
/// architecture the bench runs on; the kernel's ABI keeps it fixed whatever `HZ` is).
pub const USER_HZ: u64 = 100;

/// CPU time, in clock ticks ([`USER_HZ`]), used so far by process `pid` and its descendants:
/// user and system time of every live process of the tree, plus the time of children they
/// have already reaped (`cutime`, `cstime`), so work done by a process that has since exited
/// is counted once, in its parent.
///
/// # Errors
/// When the root process itself cannot be read.
pub fn cpu_ticks(pid: u32) -> std::io::Result<u64> {
    let tree = descendants(pid, &parents()?);
    let root = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let mut total =
        ticks_of_stat(&root).ok_or_else(|| std::io::Error::other("unreadable /proc/PID/stat"))?;
    for child in tree {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
            total += ticks_of_stat(&stat).unwrap_or(0);
        }
    }
    Ok(total)
}

/// utime + stime + cutime + cstime (fields 14-17) of a `/proc/PID/stat` line.
pub fn ticks_of_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the command name start at field 3 (state): 14..=17 are at 11..=14 here.
    let fields: Vec<&str> = rest.split_whitespace().skip(11).take(4).collect();
    if fields.len() < 4 {
        return None;
    }
    fields.iter().try_fold(0u64, |sum, f| Some(sum + f.parse::<i64>().ok()?.max(0) as u64))
}

/// Parent pid of every process now in /proc.
fn parents() -> std::io::Result<HashMap<u32, u32>> {
    let mut map = HashMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between the listing and this read: skip it.
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && let Some(ppid) = parent_of_stat(&stat)
        {
            map.insert(pid, ppid);
        }
    }
    Ok(map)
}

/// The parent pid in a `/proc/PID/stat` line: `pid (comm) state ppid ...`. The command name
/// may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parent_of_stat(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every descendant of `root` in `parents` (child -> parent), breadth first, without `root`.
/// Iterative and bounded by [`MAX_TREE_PROCESSES`], so a cycle in a racy snapshot cannot loop.
pub fn descendants(root: u32, parents: &HashMap<u32, u32>) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&child, &parent) in parents {
        if child != parent {
            children.entry(parent).or_default().push(child);
        }
    }
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut next = 0;
    let mut frontier = root;
    loop {
        for &c in children.get(&frontier).map_or(&[][..], Vec::as_slice) {
            if found.len() < MAX_TREE_PROCESSES && seen.insert(c) {
                found.push(c);
            }
        }
        let Some(&p) = found.get(next) else { break };
        frontier = p;
        next += 1;
    }
    found
}

/// Parses the `Rss:` and `Pss:` lines of smaps_rollup.
pub fn parse_rollup(text: &str) -> Option<Memory> {
    Some(Memory {
        rss_kib: field_kib(text, "Rss:")?,
        pss_kib: field_kib(text, "Pss:"),
        processes: 1,
    })
}

fn field_kib(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLLUP: &str =
        "55d0c0a3f000-7ffd6b1f2000 ---p 00000000 00:00 0                          [rollup]
Rss:               12345 kB
Pss:                9876 kB
Pss_Anon:           5000 kB
Shared_Clean:       1000 kB
";

    #[test]
    fn parses_rollup_and_status() {
        assert_eq!(
            parse_rollup(ROLLUP),
            Some(Memory { rss_kib: 12345, pss_kib: Some(9876), processes: 1 })
        );
        assert_eq!(parse_rollup("nothing"), None);
        assert_eq!(field_kib("Name:\tx\nVmRSS:\t  4242 kB\n", "VmRSS:"), Some(4242));
    }

    #[test]
    fn parent_pid_survives_odd_command_names() {
        assert_eq!(parent_of_stat("42 (imap) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_of_stat("42 (a) b (c) R 9 1 1"), Some(9));
        assert_eq!(parent_of_stat("42 (x y) S"), None);
        assert_eq!(parent_of_stat("garbage"), None);
    }

    #[test]
    fn cpu_ticks_of_a_stat_line() {
        let stat = "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 700 50 3 2 20 0 1 0 5 0 0";
        assert_eq!(ticks_of_stat(stat), Some(755));
        assert_eq!(ticks_of_stat("42 (x) S 1 2 3"), None);
        assert!(cpu_ticks(std::process::id()).is_ok());
    }

    #[test]
    fn descendants_walk_the_whole_tree_and_ignore_cycles() {
        // 1 -> {2, 3}, 3 -> {4}, 4 -> {5}; 9 is unrelated; 6 <-> 7 is a (racy) cycle.
        let parents: HashMap<u32, u32> =
            [(2, 1), (3, 1), (4, 3), (5, 4), (9, 8), (6, 7), (7, 6), (1, 0)].into();
        let mut d = descendants(1, &parents);
        d.sort_unstable();
        assert_eq!(d, [2, 3, 4, 5]);
        assert!(descendants(5, &parents).is_empty());
        let mut cycle = descendants(6, &parents);
        cycle.sort_unstable();
        assert_eq!(cycle, [7]);
    }

    #[test]
    fn reads_our_own_tree_including_a_child() {
        let alone = read(std::process::id()).unwrap();
        assert!(alone.rss_kib > 100);
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let with_child = read(std::process::id()).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(with_child.processes > alone.processes);
        assert!(with_child.rss_kib > 0);
    }
}
