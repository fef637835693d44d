//! `sort` and `thread`: read-only sessions on filled mailboxes (fill them with `--prefill M`,
//! a corpus with real threads: `--corpus DIR` from `skua-bench corpus`) that run SORT or
//! THREAD over the whole mailbox, each measured on its own: `sort-arrival`, `sort-date`,
//! `sort-subject` (RFC 5256 `SORT (ARRIVAL|DATE|SUBJECT) UTF-8 ALL`) and `thread-references`,
//! `thread-refs`, `thread-orderedsubject` (`THREAD <algorithm> UTF-8 ALL`). Each answer is one
//! line naming every message, so the latency is the server's whole cost of ordering the
//! mailbox. Nothing is written (EXAMINE), so runs compare.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;

use super::sessions::{self, Commands, Plan};
use super::{BenchError, step};
use crate::cli::ImapArgs;
use crate::client::ClientError;
use crate::client::imap::ImapClient;
use crate::run::Tick;
use crate::stats::Recorder;
use crate::stats::report::Report;

/// The `sort` scenario.
#[derive(Debug)]
pub struct Sort;

/// The `thread` scenario.
#[derive(Debug)]
pub struct Thread;

/// The SORT commands, in `Sort::MIXABLE` order.
const SORTS: [&str; 3] =
    ["SORT (ARRIVAL) UTF-8 ALL", "SORT (DATE) UTF-8 ALL", "SORT (SUBJECT) UTF-8 ALL"];

/// The THREAD commands, in `Thread::MIXABLE` order.
const THREADS: [&str; 3] =
    ["THREAD REFERENCES UTF-8 ALL", "THREAD REFS UTF-8 ALL", "THREAD ORDEREDSUBJECT UTF-8 ALL"];

/// Index in `OPS` of the first ordering command (after connect, login, examine).
const FIRST: usize = 3;

impl Commands for Sort {
    const NAME: &'static str = "sort";
    const OPS: &'static [&'static str] =
        &["connect", "login", "examine", "sort-arrival", "sort-date", "sort-subject", "logout"];
    const MIXABLE: &'static [&'static str] = &["sort-arrival", "sort-date", "sort-subject"];
    const DEFAULT_MIX: &'static str = "sort-arrival=1,sort-date=1,sort-subject=1";
    const FIRST_MIXABLE: usize = FIRST;
    const LOGOUT: usize = 6;
    const READ_ONLY: bool = true;

    async fn command(
        _plan: &Plan<Self>,
        c: &mut ImapClient,
        op: usize,
        tick: Tick,
        _rng: &mut ChaCha8Rng,
        _id: u64,
        rec: &mut Recorder,
    ) -> Result<(), ClientError> {
        order(c, op, SORTS[op - FIRST], tick, rec).await
    }
}

impl Commands for Thread {
    const NAME: &'static str = "thread";
    const OPS: &'static [&'static str] = &[
        "connect",
        "login",
        "examine",
        "thread-references",
        "thread-refs",
        "thread-orderedsubject",
        "logout",
    ];
    const MIXABLE: &'static [&'static str] =
        &["thread-references", "thread-refs", "thread-orderedsubject"];
    const DEFAULT_MIX: &'static str = "thread-references=1";
    const FIRST_MIXABLE: usize = FIRST;
    const LOGOUT: usize = 6;
    const READ_ONLY: bool = true;

    async fn command(
        _plan: &Plan<Self>,
        c: &mut ImapClient,
        op: usize,
        tick: Tick,
        _rng: &mut ChaCha8Rng,
        _id: u64,
        rec: &mut Recorder,
    ) -> Result<(), ClientError> {
        order(c, op, THREADS[op - FIRST], tick, rec).await
    }
}

/// Sends one ordering command and records its latency and response size.
async fn order(
    c: &mut ImapClient,
    op: usize,
    command: &str,
    tick: Tick,
    rec: &mut Recorder,
) -> Result<(), ClientError> {
    let start = tick.from(Instant::now());
    let outcome = step(rec, op, start, c.command(command)).await?;
    rec.bytes(op, outcome.response_bytes);
    Ok(())
}

/// Runs `sort` against the IMAP server at `to`.
pub async fn run_sort(
    args: ImapArgs,
    to: crate::client::tls::Endpoint,
) -> Result<Report, BenchError> {
    let report = sessions::run(args, to, Sort).await?;
    Ok(noted(report))
}

/// Runs `thread` against the IMAP server at `to`.
pub async fn run_thread(
    args: ImapArgs,
    to: crate::client::tls::Endpoint,
) -> Result<Report, BenchError> {
    let report = sessions::run(args, to, Thread).await?;
    Ok(noted(report))
}

/// Warns when the mailboxes were empty: ordering nothing measures nothing.
fn noted(mut report: Report) -> Report {
    let ordered: u64 = report
        .ops
        .iter()
        .filter(|o| o.name.starts_with("sort-") || o.name.starts_with("thread-"))
        .map(|o| o.count)
        .sum();
    let ran = report.ops.iter().any(|o| o.name == "examine" && o.count > 0);
    if ran && ordered == 0 {
        report.notes.push("no ordering command ran".into());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_follow_the_operation_tables() {
        for (i, name) in Sort::MIXABLE.iter().enumerate() {
            let key = name.trim_start_matches("sort-").to_uppercase();
            assert!(SORTS[i].contains(&format!("({key})")), "{name}: {}", SORTS[i]);
        }
        for (i, name) in Thread::MIXABLE.iter().enumerate() {
            let algorithm = name.trim_start_matches("thread-").to_uppercase();
            assert!(THREADS[i].contains(&format!(" {algorithm} ")), "{name}: {}", THREADS[i]);
        }
    }
}
