//! `idle`: open K connections, LOGIN, SELECT, IDLE, and hold them. Two figures come out:
//!
//! - the server's memory per held connection: RSS and PSS of `--server-pid` and all its
//!   descendants (summed; see `memory.rs`) before any connection and after all of them idle
//!   (plus `--settle` seconds), divided by K;
//! - notification latency: for `--duration` seconds, one LMTP connection delivers to users that
//!   have idlers, one delivery at a time (or at `--rate`), and every idler of that user records
//!   the time from the DATA command to the `* n EXISTS` it sees (`notify`); `deliver` is the
//!   LMTP reply latency of the same deliveries, for comparison.
//!
//! Connection i logs in as user i mod --users.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};

use super::{
    BenchError, SessionOps, SessionSpec, message_source, open_session, run_nonce, step, worker_rng,
};
use crate::cli::{Common, IdleArgs};
use crate::client::imap::ImapClient;
use crate::client::lmtp::LmtpClient;
use crate::client::tls::Endpoint;
use crate::corpus::Source;
use crate::cpu::{self, Probe};
use crate::memory::{self, Memory};
use crate::run::Run;
use crate::stats::report::Report;
use crate::stats::{Live, Recorder, Stats, progress};

/// Operations measured.
pub const OPS: &[&str] = &["connect", "login", "select", "idle", "deliver", "notify"];
const SESSION: SessionOps = SessionOps { connect: 0, login: 1, select: 2 };
const IDLE: usize = 3;
const DELIVER: usize = 4;
const NOTIFY: usize = 5;

/// An idler saw `* n EXISTS`: (connection index, when).
type Event = (usize, Instant);

/// Runs the scenario: IMAP at `addr`, LMTP at `--lmtp-port`.
pub async fn run(args: IdleArgs, to: Endpoint) -> Result<Report, BenchError> {
    let common = &args.common;
    let source = message_source(&args.message)?;
    let lmtp = crate::target::resolve_loopback(&common.host, args.lmtp_port)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let lmtp = common.lmtp_endpoint(lmtp)?;
    let live = Live::new(OPS);
    let (stop_progress, progress_rx) = watch::channel(false);
    let progress =
        tokio::spawn(progress::run(live.clone(), Instant::now(), common.quiet, progress_rx));
    let before = read_memory(common.server_pid)?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (idlers, established) = start_idlers(&args, &to, &live, events_tx, stop_rx).await;
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let after = read_memory(common.server_pid)?;

    // One delivering driver: the pacer spreads --rate over one "connection".
    let probe = Probe::start(common)?;
    let run = Run::new(&Common { connections: 1, ..common.clone() });
    let rec = deliver_loop(
        &args,
        &lmtp,
        &run,
        &source,
        &established,
        &mut events,
        Recorder::new(live.clone()),
    )
    .await;
    let elapsed = run.start.elapsed();
    let usage = probe.usage()?;
    let metrics = probe.metrics_after();
    let _ = stop_tx.send(true);
    let mut stats = rec.into_stats();
    let mut notes = Vec::new();
    collect(idlers, &run, &mut stats, &mut notes).await;
    let _ = stop_progress.send(true);
    let _ = progress.await;

    let held = established.iter().filter(|&&e| e).count();
    let mut report = Report::new("idle", &stats, elapsed, run.open_loop(), common.connections);
    report.notes = notes;
    report.extra("idle_connections", held);
    if common.server_cpus.is_some() || common.server_pid.is_some() {
        let ops = cpu::count_of(&report, &["deliver"]);
        usage.add_to(&mut report, ops, "delivery");
    }
    if let Some(phase) = metrics {
        let ops = cpu::count_of(&report, &["deliver"]);
        phase.add_to(&mut report, &[("delivery", ops)]);
    }
    if let (Some(b), Some(a)) = (before, after) {
        memory_figures(&mut report, b, a, held);
    }
    report.notes.push("connect/login/select/idle happened during setup; their per-sec column is over the measured phase".into());
    if held < common.connections {
        report.notes.push(format!(
            "{} of {} connections could not be set up",
            common.connections - held,
            common.connections
        ));
    }
    Ok(report)
}

fn read_memory(pid: Option<u32>) -> Result<Option<Memory>, BenchError> {
    pid.map(|p| {
        memory::read(p)
            .map_err(|e| BenchError::Setup(format!("reading memory of --server-pid {p}: {e}")))
    })
    .transpose()
}

fn memory_figures(report: &mut Report, before: Memory, after: Memory, held: usize) {
    let per = |a: u64, b: u64| {
        if held == 0 { 0.0 } else { (a as f64 - b as f64) / held as f64 }
    };
    report.extra("memory_before", serde_json::to_value(before).expect("serializes"));
    report.extra("memory_after", serde_json::to_value(after).expect("serializes"));
    report.extra(
        "rss_per_connection_kib",
        (per(after.rss_kib, before.rss_kib) * 100.0).round() / 100.0,
    );
    if let (Some(pa), Some(pb)) = (after.pss_kib, before.pss_kib) {
        report.extra("pss_per_connection_kib", (per(pa, pb) * 100.0).round() / 100.0);
    }
}

type Idler = tokio::task::JoinHandle<Recorder>;

/// Starts K idlers, at most `--setup-concurrency` connecting at once, and waits until each is
/// idling or failed. Returns their tasks and which ones idle.
async fn start_idlers(
    args: &IdleArgs,
    to: &Endpoint,
    live: &Arc<Live>,
    events: mpsc::UnboundedSender<Event>,
    stop: watch::Receiver<bool>,
) -> (Vec<Idler>, Vec<bool>) {
    let k = args.common.connections;
    let gate = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let (ready_tx, mut ready) = mpsc::channel(k);
    let timeout = Duration::from_secs(args.common.timeout);
    let tasks = (0..k)
        .map(|i| {
            let user = args.common.user((i % args.common.users as usize) as u32);
            let password = args.common.password.clone();
            let (gate, ready_tx, events, stop, to) =
                (gate.clone(), ready_tx.clone(), events.clone(), stop.clone(), to.clone());
            let rec = Recorder::new(live.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await;
                let held = setup(&to, timeout, &user, &password, rec).await;
                let ok = held.0.is_some();
                let _ = ready_tx.send((i, ok)).await;
                drop(ready_tx);
                drop(_permit);
                hold(i, held, events, stop).await
            })
        })
        .collect();
    drop(ready_tx);
    // Every idler reports once, after its setup (each step bounded by the timeout).
    let mut established = vec![false; k];
    for _ in 0..k {
        let Some((i, ok)) = ready.recv().await else {
            break;
        };
        established[i] = ok;
    }
    (tasks, established)
}

async fn setup(
    to: &Endpoint,
    timeout: Duration,
    user: &str,
    pw: &str,
    mut rec: Recorder,
) -> (Option<(ImapClient, String)>, Recorder) {
    let spec = SessionSpec { to, timeout, user, password: pw, mailbox: "INBOX", read_only: false };
    let Ok(mut c) = open_session(spec, Instant::now(), SESSION, &mut rec).await else {
        return (None, rec);
    };
    match step(&mut rec, IDLE, Instant::now(), c.idle()).await {
        Ok(tag) => (Some((c, tag)), rec),
        Err(_) => (None, rec),
    }
}

/// Reads while idling, reporting every EXISTS, until told to stop; then DONE and LOGOUT.
async fn hold(
    i: usize,
    (held, mut rec): (Option<(ImapClient, String)>, Recorder),
    events: mpsc::UnboundedSender<Event>,
    mut stop: watch::Receiver<bool>,
) -> Recorder {
    let Some((mut c, tag)) = held else { return rec };
    let forever = Duration::from_secs(crate::limits::MAX_DURATION_SECS * 2);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = c.read_response(forever) => match r {
                Ok(r) if r.numbered(b"EXISTS").is_some() => { let _ = events.send((i, Instant::now())); }
                Ok(_) => {}
                Err(_) => {
                    rec.error(IDLE);
                    return rec;
                }
            },
        }
    }
    let _ = c.done(&tag).await;
    let _ = c.command("LOGOUT").await;
    rec
}

/// Delivers one message at a time to a watched user and waits for every idler of that user to
/// see it (or for the timeout, counted as a `notify` error per idler that did not).
async fn deliver_loop(
    args: &IdleArgs,
    lmtp: &Endpoint,
    run: &Run,
    source: &Source,
    watched: &[bool],
    events: &mut mpsc::UnboundedReceiver<Event>,
    mut rec: Recorder,
) -> Recorder {
    let users = args.common.users as usize;
    let candidates: Vec<usize> = (0..users.min(watched.len()))
        .filter(|&u| (u..watched.len()).step_by(users).any(|i| watched[i]))
        .collect();
    if candidates.is_empty() {
        return rec;
    }
    let mut rng = worker_rng(args.common.seed, 0);
    let nonce = run_nonce();
    let mut pacer = run.pacer(0);
    let mut client: Option<LmtpClient> = None;
    let mut message = Vec::new();
    let mut seq = 0;
    while let Some(tick) = pacer.tick(run).await {
        if client.is_none() {
            client = LmtpClient::connect(lmtp, run.timeout).await.ok();
        }
        let Some(c) = client.as_mut() else {
            rec.error(DELIVER);
            crate::run::pause_before_retry(run).await;
            continue;
        };
        let u = candidates[rng.gen_range(0..candidates.len())];
        while events.try_recv().is_ok() {}
        seq += 1;
        source.render((nonce, seq), &mut rng, &mut message);
        let d = match c
            .deliver("idle@skua-bench.invalid", &[args.common.user(u as u32)], &message)
            .await
        {
            Ok(d) if d.delivered == 1 => d,
            Ok(_) | Err(_) => {
                rec.error(DELIVER);
                client = None;
                continue;
            }
        };
        let from = tick.from(d.data_sent);
        rec.record(DELIVER, d.done - from);
        let mut waiting: Vec<usize> =
            (u..watched.len()).step_by(users).filter(|&i| watched[i]).collect();
        let until = Instant::now() + run.timeout;
        while !waiting.is_empty() {
            match tokio::time::timeout_at(until.into(), events.recv()).await {
                Ok(Some((i, at))) => {
                    if let Some(p) = waiting.iter().position(|&w| w == i) {
                        waiting.swap_remove(p);
                        rec.record(NOTIFY, at.saturating_duration_since(from));
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        for _ in waiting {
            rec.error(NOTIFY);
        }
    }
    if let Some(c) = client {
        let _ = tokio::time::timeout(run.timeout, c.quit()).await;
    }
    rec
}

/// Joins the idlers (bounded by the timeout) and merges their measurements.
async fn collect(idlers: Vec<Idler>, run: &Run, stats: &mut Stats, notes: &mut Vec<String>) {
    let until = Instant::now() + run.timeout;
    let mut lost = 0;
    for mut t in idlers {
        match tokio::time::timeout_at(until.into(), &mut t).await {
            Ok(Ok(rec)) => stats.merge(&rec.into_stats()),
            _ => {
                t.abort();
                lost += 1;
            }
        }
    }
    if lost > 0 {
        notes.push(format!(
            "{lost} idlers did not finish DONE/LOGOUT in time; their setup figures are left out"
        ));
    }
}
