//! `imap-mixed`: sessions that LOGIN, SELECT, run `--ops-per-session` commands drawn by weight
//! from FETCH flags+headers, FETCH bodies, STORE flags, EXPUNGE and APPEND, then LOGOUT.
//! Every command's latency and rate is reported on its own row.
//!
//! Sequence numbers always come from the session's own view of the mailbox (EXISTS less the
//! EXPUNGEs it was told about), so concurrent sessions on one mailbox never address a message
//! the server has not told them about. An empty mailbox turns a FETCH or STORE into an APPEND.

use std::time::Instant;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::sessions::{self, Commands, Plan};
use super::{BenchError, run_nonce, step};
use crate::cli::ImapArgs;
use crate::client::ClientError;
use crate::client::imap::ImapClient;
use crate::run::Tick;
use crate::stats::Recorder;
use crate::stats::report::Report;

const FETCH_HEADERS: usize = 3;
const FETCH_BODY: usize = 4;
const STORE: usize = 5;
const EXPUNGE: usize = 6;
const APPEND: usize = 7;

/// The scenario: its state is the run's nonce, which makes APPENDed Message-IDs unique.
#[derive(Debug)]
pub struct Mixed {
    nonce: u64,
}

impl Commands for Mixed {
    const NAME: &'static str = "imap-mixed";
    const OPS: &'static [&'static str] = &[
        "connect",
        "login",
        "select",
        "fetch-headers",
        "fetch-body",
        "store",
        "expunge",
        "append",
        "logout",
    ];
    const MIXABLE: &'static [&'static str] =
        &["fetch-headers", "fetch-body", "store", "expunge", "append"];
    const DEFAULT_MIX: &'static str = "fetch-headers=30,fetch-body=20,store=20,expunge=5,append=25";
    const FIRST_MIXABLE: usize = FETCH_HEADERS;
    const LOGOUT: usize = 8;
    const READ_ONLY: bool = false;
    const WRITES: &'static [&'static str] = &["append", "store", "expunge"];

    async fn command(
        plan: &Plan<Self>,
        c: &mut ImapClient,
        op: usize,
        tick: Tick,
        rng: &mut ChaCha8Rng,
        id: u64,
        rec: &mut Recorder,
    ) -> Result<(), ClientError> {
        command(plan, c, op, tick, rng, id, rec).await
    }
}

/// Runs the scenario against the IMAP server at `addr`.
pub async fn run(args: ImapArgs, to: crate::client::tls::Endpoint) -> Result<Report, BenchError> {
    sessions::run(args, to, Mixed { nonce: run_nonce() }).await
}

async fn command(
    plan: &Plan<Mixed>,
    c: &mut ImapClient,
    mut op: usize,
    tick: Tick,
    rng: &mut ChaCha8Rng,
    id: u64,
    rec: &mut Recorder,
) -> Result<(), ClientError> {
    if c.exists == 0 && op != EXPUNGE {
        op = APPEND;
    }
    let n = c.exists.max(1);
    let start = tick.from(Instant::now());
    let outcome = match op {
        FETCH_HEADERS => {
            let first = rng.gen_range(1..=n);
            let last = (first + 9).min(n);
            let cmd = format!(
                "FETCH {first}:{last} (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE MESSAGE-ID)])"
            );
            step(rec, op, start, c.command(&cmd)).await?
        }
        FETCH_BODY => {
            step(rec, op, start, c.command(&format!("FETCH {} BODY.PEEK[]", rng.gen_range(1..=n))))
                .await?
        }
        STORE => {
            let flag = ["\\Seen", "\\Flagged", "\\Answered", "\\Deleted"][rng.gen_range(0..4)];
            let sign = if rng.gen_bool(0.7) { '+' } else { '-' };
            let cmd = format!("STORE {} {sign}FLAGS.SILENT ({flag})", rng.gen_range(1..=n));
            step(rec, op, start, c.command(&cmd)).await?
        }
        EXPUNGE => step(rec, op, start, c.command("EXPUNGE")).await?,
        _ => {
            let mut message = Vec::new();
            plan.source.render((plan.scenario.nonce, id), rng, &mut message);
            let flags = if rng.gen_bool(0.5) { "\\Seen" } else { "" };
            rec.bytes(APPEND, message.len());
            step(rec, APPEND, start, c.append(&plan.args.mailbox, flags, &message)).await?
        }
    };
    if op != APPEND {
        rec.bytes(op, outcome.response_bytes);
    }
    Ok(())
}
