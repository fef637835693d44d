//! The server's memory, read from `/proc/PID/smaps_rollup` (Linux 4.14+): RSS counts every
//! resident page the process maps, PSS divides shared pages among the processes sharing them,
//! so PSS is the fairer "cost" of one process. Falls back to `VmRSS` of `/proc/PID/status`
//! (RSS only) where smaps_rollup is missing.

use serde::Serialize;

/// Resident memory of a process, KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Resident set size.
    pub rss_kib: u64,
    /// Proportional set size, when the kernel reports it.
    pub pss_kib: Option<u64>,
}

/// Reads the memory of process `pid`.
pub fn read(pid: u32) -> std::io::Result<Memory> {
    match std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        Ok(text) => {
            parse_rollup(&text).ok_or_else(|| std::io::Error::other("no Rss line in smaps_rollup"))
        }
        Err(_) => {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let rss = field_kib(&status, "VmRSS:")
                .ok_or_else(|| std::io::Error::other("no VmRSS in status"))?;
            Ok(Memory {
                rss_kib: rss,
                pss_kib: None,
            })
        }
    }
}

/// Parses the `Rss:` and `Pss:` lines of smaps_rollup.
pub fn parse_rollup(text: &str) -> Option<Memory> {
    Some(Memory {
        rss_kib: field_kib(text, "Rss:")?,
        pss_kib: field_kib(text, "Pss:"),
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
            Some(Memory {
                rss_kib: 12345,
                pss_kib: Some(9876)
            })
        );
        assert_eq!(parse_rollup("nothing"), None);
        assert_eq!(
            field_kib("Name:\tx\nVmRSS:\t  4242 kB\n", "VmRSS:"),
            Some(4242)
        );
    }

    #[test]
    fn reads_our_own_process() {
        let m = read(std::process::id()).unwrap();
        assert!(m.rss_kib > 100);
    }
}
