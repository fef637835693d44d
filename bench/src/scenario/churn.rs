//! `churn`: connect, LOGIN, LOGOUT, close, as fast as possible (or at `--rate` sessions per
//! second). Measures what a connection costs the server: accept, greeting, authentication
//! (and in skua, the hand-off to the user's shard) and teardown.

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use super::{BenchError, step, worker_rng};
use crate::cli::ChurnArgs;
use crate::client::imap::ImapClient;
use crate::client::tls::Endpoint;
use crate::cpu::{self, Probe};
use crate::run::{Run, pause_before_retry, run_workers};
use crate::stats::Recorder;
use crate::stats::report::Report;

/// Operations measured; `session` spans connect to the LOGOUT's tagged OK.
pub const OPS: &[&str] = &["session", "connect", "login", "logout"];
const SESSION: usize = 0;
const CONNECT: usize = 1;
const LOGIN: usize = 2;
const LOGOUT: usize = 3;

/// Runs the scenario against the IMAP server at `addr`.
pub async fn run(args: ChurnArgs, to: Endpoint) -> Result<Report, BenchError> {
    let probe = Probe::start(&args.common)?;
    let run = Run::new(&args.common);
    let open = run.open_loop();
    let common = Arc::new(args.common.clone());
    let out = run_workers(&args.common, OPS, run, move |w, run, rec| {
        worker(w, run, rec, to.clone(), common.clone())
    })
    .await;
    let mut report = Report::new("churn", &out.stats, out.elapsed, open, args.common.connections);
    report.notes = out.notes;
    let ops = cpu::count_of(&report, &["session"]);
    probe.finish(&mut report, ops, "session")?;
    Ok(report)
}

async fn worker(
    w: usize,
    run: Arc<Run>,
    mut rec: Recorder,
    to: Endpoint,
    common: Arc<crate::cli::Common>,
) -> Recorder {
    let mut rng = worker_rng(common.seed, w);
    let mut pacer = run.pacer(w);
    while let Some(tick) = pacer.tick(&run).await {
        let start = tick.from(Instant::now());
        let user = common.user(rng.gen_range(0..common.users));
        if session(&mut rec, &to, &run, start, &user, &common.password).await.is_err() {
            rec.error(SESSION);
            pause_before_retry(&run).await;
        }
    }
    rec
}

async fn session(
    rec: &mut Recorder,
    to: &Endpoint,
    run: &Run,
    start: Instant,
    user: &str,
    password: &str,
) -> Result<(), crate::client::ClientError> {
    let mut c = step(rec, CONNECT, start, ImapClient::connect(to, run.timeout)).await?;
    step(rec, LOGIN, Instant::now(), c.login(user, password)).await?;
    step(rec, LOGOUT, Instant::now(), c.command("LOGOUT")).await?;
    rec.record(SESSION, start.elapsed());
    Ok(())
}
