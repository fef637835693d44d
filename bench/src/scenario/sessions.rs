//! What `imap-mixed` and `imap-read` share: options checked, `--prefill` delivered, then per
//! worker a loop of sessions: draw a user, open a session (connect, LOGIN, SELECT or EXAMINE,
//! each measured), run `--ops-per-session` commands drawn by weight, each paced by the run,
//! LOGOUT; again until the run ends. The scenarios differ only in which commands they draw and
//! how they send them ([`Commands`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use rand::distributions::{Distribution, WeightedIndex};
use rand_chacha::ChaCha8Rng;

use super::{
    BenchError, SessionOps, SessionSpec, message_source, open_session, parse_mix, prefill, sampler,
    step, worker_rng,
};
use crate::cli::ImapArgs;
use crate::client::ClientError;
use crate::client::imap::ImapClient;
use crate::client::tls::Endpoint;
use crate::corpus::Source;
use crate::cpu::{self, Probe};
use crate::run::{Run, Tick, pause_before_retry, run_workers};
use crate::stats::Recorder;
use crate::stats::report::Report;

/// The session steps' places in both scenarios' operation lists.
pub const SESSION: SessionOps = SessionOps { connect: 0, login: 1, select: 2 };

/// What a scenario plugs into the loop.
pub trait Commands: Sized + Send + Sync + 'static {
    /// The scenario's name in reports.
    const NAME: &'static str;
    /// The operations measured, in order; the first three are [`SESSION`]'s.
    const OPS: &'static [&'static str];
    /// The commands `--mix` weighs, in `OPS` order from `FIRST_MIXABLE`.
    const MIXABLE: &'static [&'static str];
    /// The weights used without `--mix`.
    const DEFAULT_MIX: &'static str;
    /// Index in `OPS` of the first of `MIXABLE`.
    const FIRST_MIXABLE: usize;
    /// Index in `OPS` of LOGOUT.
    const LOGOUT: usize;
    /// EXAMINE instead of SELECT.
    const READ_ONLY: bool;
    /// Operations that change the mailbox (a write command each): `--server-metrics` reports
    /// fdatasync calls and flush rounds per one of these too, when there are any.
    const WRITES: &'static [&'static str] = &[];

    /// Sends command `op` (an index in `OPS`) on `c`, recording it; `id` is unique per command
    /// in the run.
    fn command(
        plan: &Plan<Self>,
        c: &mut ImapClient,
        op: usize,
        tick: Tick,
        rng: &mut ChaCha8Rng,
        id: u64,
        rec: &mut Recorder,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;
}

/// Everything the workers of a run share.
#[derive(Debug)]
pub struct Plan<S> {
    /// The IMAP server.
    pub to: Endpoint,
    /// The options.
    pub args: ImapArgs,
    /// Messages for APPEND (and the prefill).
    pub source: Source,
    /// Weights of `S::MIXABLE`.
    pub mix: WeightedIndex<u32>,
    /// The scenario's own state.
    pub scenario: S,
}

/// Runs scenario `S` against the IMAP server at `addr`: prefill if asked, then the workers.
pub async fn run<S: Commands>(
    args: ImapArgs,
    to: Endpoint,
    scenario: S,
) -> Result<Report, BenchError> {
    let mix_spec = args.mix.clone().unwrap_or_else(|| S::DEFAULT_MIX.to_owned());
    let mix = sampler(&parse_mix(&mix_spec, S::MIXABLE)?);
    let source = message_source(&args.message)?;
    prefill_if_asked(&args, &source).await?;
    let plan = Arc::new(Plan { to, args, source, mix, scenario });
    let common = plan.args.common.clone();
    let probe = Probe::start(&common)?;
    let run = Run::new(&common);
    let open = run.open_loop();
    let out =
        run_workers(&common, S::OPS, run, move |w, run, rec| worker(w, run, rec, plan.clone()))
            .await;
    let mut report = Report::new(S::NAME, &out.stats, out.elapsed, open, common.connections);
    report.notes = out.notes;
    // Every IMAP command (LOGIN, SELECT/EXAMINE and LOGOUT included); a connect is not one.
    let commands = cpu::count_except(&report, &["connect"]);
    let mut units = vec![("IMAP command", commands)];
    if !S::WRITES.is_empty() {
        units.push(("write command", cpu::count_of(&report, S::WRITES)));
    }
    probe.finish_units(&mut report, &units)?;
    report.extra("mix", mix_spec);
    Ok(report)
}

/// Runs `--prefill` over `--lmtp-port`, if asked.
pub(crate) async fn prefill_if_asked(args: &ImapArgs, source: &Source) -> Result<(), BenchError> {
    if args.prefill == 0 {
        return Ok(());
    }
    let port = args
        .lmtp_port
        .ok_or_else(|| crate::cli::InvalidArgs("--prefill needs --lmtp-port".into()))?;
    let lmtp = crate::target::resolve_loopback(&args.common.host, port)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let lmtp = args.common.lmtp_endpoint(lmtp)?;
    prefill::prefill(&args.common, lmtp, args.prefill, source).await.map(|_| ())
}

/// Worker `w`: sessions until the run ends.
async fn worker<S: Commands>(
    w: usize,
    run: Arc<Run>,
    mut rec: Recorder,
    plan: Arc<Plan<S>>,
) -> Recorder {
    let common = &plan.args.common;
    let mut rng = worker_rng(common.seed, w);
    let mut pacer = run.pacer(w);
    let mut seq = 0u64;
    'sessions: while let Some(tick) = pacer.tick(&run).await {
        let user = common.user(rng.gen_range(0..common.users));
        let spec = SessionSpec {
            to: &plan.to,
            timeout: run.timeout,
            user: &user,
            password: &common.password,
            mailbox: &plan.args.mailbox,
            read_only: S::READ_ONLY,
        };
        let start = tick.from(Instant::now());
        let Ok(mut c) = open_session(spec, start, SESSION, &mut rec).await else {
            pause_before_retry(&run).await;
            continue;
        };
        for _ in 0..plan.args.ops_per_session {
            let Some(tick) = pacer.tick(&run).await else {
                logout::<S>(&mut c, &mut rec).await;
                break 'sessions;
            };
            seq += 1;
            let op = S::FIRST_MIXABLE + plan.mix.sample(&mut rng);
            let id = (w as u64) << 40 | seq;
            if let Err(e) = S::command(&plan, &mut c, op, tick, &mut rng, id, &mut rec).await
                && !e.is_recoverable()
            {
                continue 'sessions;
            }
        }
        logout::<S>(&mut c, &mut rec).await;
    }
    rec
}

async fn logout<S: Commands>(c: &mut ImapClient, rec: &mut Recorder) {
    let _ = step(rec, S::LOGOUT, Instant::now(), c.command("LOGOUT")).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ordering::{Sort, Thread};
    use crate::scenario::{imap_mixed::Mixed, imap_read::Read};

    fn check<S: Commands>() {
        assert_eq!(&S::OPS[..3], ["connect", "login", S::OPS[SESSION.select]]);
        assert_eq!(&S::OPS[S::FIRST_MIXABLE..S::FIRST_MIXABLE + S::MIXABLE.len()], S::MIXABLE);
        assert_eq!(S::OPS[S::LOGOUT], "logout");
        parse_mix(S::DEFAULT_MIX, S::MIXABLE).unwrap();
    }

    #[test]
    fn scenario_tables_agree() {
        check::<Mixed>();
        check::<Read>();
        check::<Sort>();
        check::<Thread>();
        assert_eq!(Mixed::OPS[SESSION.select], "select");
        assert_eq!(Read::OPS[SESSION.select], "examine");
    }
}
