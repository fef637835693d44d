//! `imap-read`: read-only sessions on filled mailboxes (fill them with `--prefill M`): LOGIN,
//! EXAMINE, then commands drawn by weight from FETCH ranges, FETCH bodies, SEARCH, STATUS, LIST
//! and NOOP, then LOGOUT. Nothing is written: EXAMINE opens the mailbox read-only and bodies
//! are fetched with BODY.PEEK, so a run leaves the mailboxes as it found them and runs compare.
//!
//! Three more commands weigh nothing unless `--mix` names them; they measure how the cost of
//! one mailbox grows with its size (perf/growth.py): `examine-again` (EXAMINE of the open
//! mailbox: the server opens it anew), `fetch-tail` (the headers of the last 50 messages) and
//! `search-header` (SEARCH HEADER on a field every message has, matching almost none).

use std::time::Instant;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::sessions::{self, Commands, Plan};
use super::{BenchError, step};
use crate::cli::ImapArgs;
use crate::client::ClientError;
use crate::client::imap::{ImapClient, quote};
use crate::run::Tick;
use crate::stats::Recorder;
use crate::stats::report::Report;

const FETCH_RANGE: usize = 3;
const FETCH_BODY: usize = 4;
const SEARCH: usize = 5;
const STATUS: usize = 6;
const LIST: usize = 7;
const NOOP: usize = 8;
const EXAMINE_AGAIN: usize = 9;
const FETCH_TAIL: usize = 10;
const SEARCH_HEADER: usize = 11;
/// Messages whose headers `fetch-tail` asks for.
const TAIL: u32 = 50;
/// SEARCH criteria tried, cheap (flags, size) and expensive (header and body text).
const SEARCHES: &[&str] = &[
    "UNSEEN",
    "FLAGGED",
    "LARGER 10000",
    "FROM \"alice\"",
    "SUBJECT \"report\"",
    "BODY \"budget\"",
    "SINCE 1-Jan-2024",
];

/// The scenario (no state of its own).
#[derive(Debug)]
pub struct Read;

impl Commands for Read {
    const NAME: &'static str = "imap-read";
    const OPS: &'static [&'static str] = &[
        "connect",
        "login",
        "examine",
        "fetch-range",
        "fetch-body",
        "search",
        "status",
        "list",
        "noop",
        "examine-again",
        "fetch-tail",
        "search-header",
        "logout",
    ];
    const MIXABLE: &'static [&'static str] = &[
        "fetch-range",
        "fetch-body",
        "search",
        "status",
        "list",
        "noop",
        "examine-again",
        "fetch-tail",
        "search-header",
    ];
    const DEFAULT_MIX: &'static str =
        "fetch-range=30,fetch-body=25,search=15,status=10,list=10,noop=10";
    const FIRST_MIXABLE: usize = FETCH_RANGE;
    const LOGOUT: usize = 12;
    const READ_ONLY: bool = true;

    async fn command(
        plan: &Plan<Self>,
        c: &mut ImapClient,
        op: usize,
        tick: Tick,
        rng: &mut ChaCha8Rng,
        _id: u64,
        rec: &mut Recorder,
    ) -> Result<(), ClientError> {
        command(c, op, tick, rng, &plan.args.mailbox, rec).await
    }
}

/// Runs the scenario against the IMAP server at `addr`.
pub async fn run(args: ImapArgs, to: crate::client::tls::Endpoint) -> Result<Report, BenchError> {
    let mut report = sessions::run(args, to, Read).await?;
    if report.ops.iter().any(|o| o.name == "examine" && o.count > 0)
        && !report.ops.iter().any(|o| o.name.starts_with("fetch"))
    {
        report
            .notes
            .push("no FETCH ran: the mailboxes are empty (use --prefill M --lmtp-port P)".into());
    }
    Ok(report)
}

async fn command(
    c: &mut ImapClient,
    mut op: usize,
    tick: Tick,
    rng: &mut ChaCha8Rng,
    mailbox: &str,
    rec: &mut Recorder,
) -> Result<(), ClientError> {
    if c.exists == 0 && matches!(op, FETCH_RANGE | FETCH_BODY | FETCH_TAIL) {
        op = STATUS;
    }
    let n = c.exists.max(1);
    let cmd = match op {
        FETCH_RANGE => {
            let first = rng.gen_range(1..=n);
            format!(
                "FETCH {first}:{} (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)",
                (first + 19).min(n)
            )
        }
        FETCH_BODY => format!("FETCH {} BODY.PEEK[]", rng.gen_range(1..=n)),
        SEARCH => format!("SEARCH {}", SEARCHES[rng.gen_range(0..SEARCHES.len())]),
        STATUS => format!("STATUS {} (MESSAGES UIDNEXT UNSEEN)", quote(mailbox)),
        LIST => "LIST \"\" \"*\"".to_owned(),
        EXAMINE_AGAIN => format!("EXAMINE {}", quote(mailbox)),
        FETCH_TAIL => format!(
            "FETCH {}:{n} (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])",
            tail_start(n)
        ),
        SEARCH_HEADER => "SEARCH HEADER Message-ID \"no-such-id-skua-bench\"".to_owned(),
        NOOP => "NOOP".to_owned(),
        _ => unreachable!("op {op} is not a read command"),
    };
    let start = tick.from(Instant::now());
    let outcome = step(rec, op, start, c.command(&cmd)).await?;
    rec.bytes(op, outcome.response_bytes);
    Ok(())
}

/// The first of the last [`TAIL`] messages of a mailbox of `n` (at least 1).
fn tail_start(n: u32) -> u32 {
    n.saturating_sub(TAIL - 1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_tail_asks_for_the_last_fifty() {
        assert_eq!(tail_start(100_000), 99_951);
        assert_eq!(tail_start(50), 1);
        assert_eq!(tail_start(10), 1);
        assert_eq!(tail_start(0), 1);
    }

    #[test]
    fn growth_commands_weigh_nothing_by_default() {
        let weights = super::super::parse_mix(Read::DEFAULT_MIX, Read::MIXABLE).unwrap();
        for name in ["examine-again", "fetch-tail", "search-header"] {
            let i = Read::MIXABLE.iter().position(|m| *m == name).unwrap();
            assert_eq!(weights[i], 0, "{name}");
        }
        assert_eq!(Read::OPS[EXAMINE_AGAIN], "examine-again");
        assert_eq!(Read::OPS[SEARCH_HEADER], "search-header");
    }
}
