//! `imap-mixed`: sessions that LOGIN, SELECT, run `--ops-per-session` commands drawn by weight
//! from FETCH flags+headers, FETCH bodies, STORE flags, EXPUNGE and APPEND, then LOGOUT.
//! Every command's latency and rate is reported on its own row.
//!
//! Sequence numbers always come from the session's own view of the mailbox (EXISTS less the
//! EXPUNGEs it was told about), so concurrent sessions on one mailbox never address a message
//! the server has not told them about. An empty mailbox turns a FETCH or STORE into an APPEND.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use rand::distributions::{Distribution, WeightedIndex};
use rand_chacha::ChaCha8Rng;

use super::{
    BenchError, SessionOps, SessionSpec, message_source, open_session, parse_mix, prefill,
    run_nonce, sampler, step, worker_rng,
};
use crate::cli::ImapArgs;
use crate::client::ClientError;
use crate::client::imap::ImapClient;
use crate::corpus::Source;
use crate::run::{Run, Tick, pause_before_retry, run_workers};
use crate::stats::Recorder;
use crate::stats::report::Report;

/// Operations measured.
pub const OPS: &[&str] = &[
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
const SESSION: SessionOps = SessionOps {
    connect: 0,
    login: 1,
    select: 2,
};
const FETCH_HEADERS: usize = 3;
const FETCH_BODY: usize = 4;
const STORE: usize = 5;
const EXPUNGE: usize = 6;
const APPEND: usize = 7;
const LOGOUT: usize = 8;
/// The commands `--mix` weighs, in OPS order from FETCH_HEADERS.
const MIXABLE: &[&str] = &["fetch-headers", "fetch-body", "store", "expunge", "append"];
/// Default weights.
pub const DEFAULT_MIX: &str = "fetch-headers=30,fetch-body=20,store=20,expunge=5,append=25";

struct Plan {
    addr: SocketAddr,
    args: ImapArgs,
    source: Source,
    mix: WeightedIndex<u32>,
    nonce: u64,
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
        source,
        mix,
        nonce: run_nonce(),
    });
    let run = Run::new(&args.common);
    let open = run.open_loop();
    let out = run_workers(&args.common, OPS, run, move |w, run, rec| {
        worker(w, run, rec, plan.clone())
    })
    .await;
    let mut report = Report::new(
        "imap-mixed",
        &out.stats,
        out.elapsed,
        open,
        args.common.connections,
    );
    report.notes = out.notes;
    report.extra("mix", args.mix.unwrap_or_else(|| DEFAULT_MIX.to_owned()));
    Ok(report)
}

/// Runs `--prefill` over `--lmtp-port`, if asked.
pub async fn prefill_if_asked(args: &ImapArgs, source: &Source) -> Result<(), BenchError> {
    if args.prefill == 0 {
        return Ok(());
    }
    let port = args
        .lmtp_port
        .ok_or_else(|| crate::cli::InvalidArgs("--prefill needs --lmtp-port".into()))?;
    let lmtp = crate::target::resolve_loopback(&args.common.host, port)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    prefill::prefill(&args.common, lmtp, args.prefill, source)
        .await
        .map(|_| ())
}

async fn worker(w: usize, run: Arc<Run>, mut rec: Recorder, plan: Arc<Plan>) -> Recorder {
    let common = &plan.args.common;
    let mut rng = worker_rng(common.seed, w);
    let mut pacer = run.pacer(w);
    let mut seq = 0u64;
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
                read_only: false,
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
                logout(&mut c, &mut rec).await;
                break 'sessions;
            };
            seq += 1;
            let op = FETCH_HEADERS + plan.mix.sample(&mut rng);
            if let Err(e) = command(
                &mut c,
                op,
                tick,
                &mut rng,
                &plan,
                (w as u64) << 40 | seq,
                &mut rec,
            )
            .await
                && !e.is_recoverable()
            {
                continue 'sessions;
            }
        }
        logout(&mut c, &mut rec).await;
    }
    rec
}

async fn logout(c: &mut ImapClient, rec: &mut Recorder) {
    let _ = step(rec, LOGOUT, Instant::now(), c.command("LOGOUT")).await;
}

async fn command(
    c: &mut ImapClient,
    mut op: usize,
    tick: Tick,
    rng: &mut ChaCha8Rng,
    plan: &Plan,
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
            step(
                rec,
                op,
                start,
                c.command(&format!("FETCH {} BODY.PEEK[]", rng.gen_range(1..=n))),
            )
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
            plan.source.render((plan.nonce, id), rng, &mut message);
            let flags = if rng.gen_bool(0.5) { "\\Seen" } else { "" };
            rec.bytes(APPEND, message.len());
            step(
                rec,
                APPEND,
                start,
                c.append(&plan.args.mailbox, flags, &message),
            )
            .await?
        }
    };
    if op != APPEND {
        rec.bytes(op, outcome.response_bytes);
    }
    Ok(())
}
