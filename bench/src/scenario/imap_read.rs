//! `imap-read`: read-only sessions on filled mailboxes (fill them with `--prefill M`): LOGIN,
//! EXAMINE, then commands drawn by weight from FETCH ranges, FETCH bodies, SEARCH, STATUS, LIST
//! and NOOP, then LOGOUT. Nothing is written: EXAMINE opens the mailbox read-only and bodies
//! are fetched with BODY.PEEK, so a run leaves the mailboxes as it found them and runs compare.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use rand::distributions::{Distribution, WeightedIndex};
use rand_chacha::ChaCha8Rng;

use super::imap_mixed::prefill_if_asked;
use super::{
    BenchError, SessionOps, SessionSpec, message_source, open_session, parse_mix, sampler, step,
    worker_rng,
};
use crate::cli::ImapArgs;
use crate::client::ClientError;
use crate::client::imap::{ImapClient, quote};
use crate::run::{Run, Tick, pause_before_retry, run_workers};
use crate::stats::Recorder;
use crate::stats::report::Report;

/// Operations measured.
pub const OPS: &[&str] = &[
    "connect",
    "login",
    "examine",
    "fetch-range",
    "fetch-body",
    "search",
    "status",
    "list",
    "noop",
    "logout",
];
const SESSION: SessionOps = SessionOps {
    connect: 0,
    login: 1,
    select: 2,
};
const FETCH_RANGE: usize = 3;
const FETCH_BODY: usize = 4;
const SEARCH: usize = 5;
const STATUS: usize = 6;
const LIST: usize = 7;
const LOGOUT: usize = 9;
/// The commands `--mix` weighs, in OPS order from FETCH_RANGE.
const MIXABLE: &[&str] = &[
    "fetch-range",
    "fetch-body",
    "search",
    "status",
    "list",
    "noop",
];
/// Default weights.
pub const DEFAULT_MIX: &str = "fetch-range=30,fetch-body=25,search=15,status=10,list=10,noop=10";
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

struct Plan {
    addr: SocketAddr,
    args: ImapArgs,
    mix: WeightedIndex<u32>,
}

/// Runs the scenario against the IMAP server at `addr`.
pub async fn run(args: ImapArgs, addr: SocketAddr) -> Result<Report, BenchError> {
    let mix = sampler(&parse_mix(
        args.mix.as_deref().unwrap_or(DEFAULT_MIX),
        MIXABLE,
    )?);
    let source = message_source(&args.message)?;
    prefill_if_asked(&args, &source).await?;
    let plan = Arc::new(Plan {
        addr,
        args: args.clone(),
        mix,
    });
    let run = Run::new(&args.common);
    let open = run.open_loop();
    let out = run_workers(&args.common, OPS, run, move |w, run, rec| {
        worker(w, run, rec, plan.clone())
    })
    .await;
    let mut report = Report::new(
        "imap-read",
        &out.stats,
        out.elapsed,
        open,
        args.common.connections,
    );
    report.notes = out.notes;
    report.extra("mix", args.mix.unwrap_or_else(|| DEFAULT_MIX.to_owned()));
    if report
        .ops
        .iter()
        .any(|o| o.name == "examine" && o.count > 0)
        && !report.ops.iter().any(|o| o.name.starts_with("fetch"))
    {
        report
            .notes
            .push("no FETCH ran: the mailboxes are empty (use --prefill M --lmtp-port P)".into());
    }
    Ok(report)
}

async fn worker(w: usize, run: Arc<Run>, mut rec: Recorder, plan: Arc<Plan>) -> Recorder {
    let common = &plan.args.common;
    let mut rng = worker_rng(common.seed, w);
    let mut pacer = run.pacer(w);
    'sessions: while let Some(tick) = pacer.tick(&run).await {
        let user = common.user(rng.gen_range(0..common.users));
        let start = tick.from(Instant::now());
        let opened = open_session(
            SessionSpec {
                addr: plan.addr,
                timeout: run.timeout,
                user: &user,
                password: &common.password,
                mailbox: &plan.args.mailbox,
                read_only: true,
            },
            start,
            SESSION,
            &mut rec,
        );
        let Ok(mut c) = opened.await else {
            pause_before_retry(&run).await;
            continue;
        };
        for _ in 0..plan.args.ops_per_session {
            let Some(tick) = pacer.tick(&run).await else {
                let _ = step(&mut rec, LOGOUT, Instant::now(), c.command("LOGOUT")).await;
                break 'sessions;
            };
            let op = FETCH_RANGE + plan.mix.sample(&mut rng);
            if let Err(e) = command(&mut c, op, tick, &mut rng, &plan.args.mailbox, &mut rec).await
                && !e.is_recoverable()
            {
                continue 'sessions;
            }
        }
        let _ = step(&mut rec, LOGOUT, Instant::now(), c.command("LOGOUT")).await;
    }
    rec
}

async fn command(
    c: &mut ImapClient,
    mut op: usize,
    tick: Tick,
    rng: &mut ChaCha8Rng,
    mailbox: &str,
    rec: &mut Recorder,
) -> Result<(), ClientError> {
    if c.exists == 0 && (op == FETCH_RANGE || op == FETCH_BODY) {
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
        _ => "NOOP".to_owned(),
    };
    let start = tick.from(Instant::now());
    let outcome = step(rec, op, start, c.command(&cmd)).await?;
    rec.bytes(op, outcome.response_bytes);
    Ok(())
}
