//! `search-context`: K sessions each keep `UID SEARCH RETURN (UPDATE) UNSEEN` live (RFC 5267
//! §4.3, CONTEXT=SEARCH) and IDLE, while one LMTP connection delivers to their users and, after
//! every `--store-every`-th delivery, a writer session per user marks that user's newest
//! message `\Seen`. Each delivery adds an unseen message (an `ADDTO` for every watcher of the
//! user), each STORE takes one away (a `REMOVEFROM`).
//!
//! Figures: `deliver` (LMTP reply latency) and its rate, `store` latency, and the update lines
//! the watchers received (`update_lines`, `update_lines_per_change`). `--plain` runs the same
//! load with watchers that only IDLE (no kept search): the delivery rate beside the kept run is
//! what keeping the contexts costs the server.
//!
//! Watcher i logs in as user i mod --users; the writers are one extra session per user.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Semaphore, mpsc, watch};

use super::{
    BenchError, SessionOps, SessionSpec, message_source, open_session, run_nonce, step, worker_rng,
};
use crate::cli::{Common, SearchContextArgs};
use crate::client::imap::ImapClient;
use crate::client::lmtp::LmtpClient;
use crate::client::tls::Endpoint;
use crate::cpu::Probe;
use crate::run::Run;
use crate::stats::report::Report;
use crate::stats::{Live, Recorder, progress};

/// Operations measured.
pub const OPS: &[&str] = &["connect", "login", "select", "context", "idle", "deliver", "store"];
const SESSION: SessionOps = SessionOps { connect: 0, login: 1, select: 2 };
const CONTEXT: usize = 3;
const IDLE: usize = 4;
const DELIVER: usize = 5;
const STORE: usize = 6;

/// Runs the scenario: IMAP at `to`, LMTP at `--lmtp-port`.
pub async fn run(args: SearchContextArgs, to: Endpoint) -> Result<Report, BenchError> {
    let common = &args.common;
    let source = message_source(&args.message)?;
    let lmtp = crate::target::resolve_loopback(&common.host, args.lmtp_port)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let lmtp = common.lmtp_endpoint(lmtp)?;
    let live = Live::new(OPS);
    let (stop_progress, progress_rx) = watch::channel(false);
    let progress =
        tokio::spawn(progress::run(live.clone(), Instant::now(), common.quiet, progress_rx));
    let updates = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (watchers, held) = start_watchers(&args, &to, &live, &updates, stop_rx).await;

    let timeout = Duration::from_secs(common.timeout);
    let mut writers = Vec::new();
    let mut setup = Recorder::new(live.clone());
    for u in 0..common.users {
        let user = common.user(u);
        let spec = SessionSpec {
            to: &to,
            timeout,
            user: &user,
            password: &common.password,
            mailbox: "INBOX",
            read_only: false,
        };
        let writer = open_session(spec, Instant::now(), SESSION, &mut setup).await.ok();
        writers.push(writer);
    }

    // `--server-metrics` only: the CPU options are not read by this scenario.
    let probe = Probe::start(&Common { server_cpus: None, server_pid: None, ..common.clone() })?;
    let run = Run::new(&Common { connections: 1, ..common.clone() });
    let rec =
        deliver_loop(&args, &lmtp, &run, &source, &mut writers, Recorder::new(live.clone())).await;
    let elapsed = run.start.elapsed();
    let metrics = probe.metrics_after();
    // Let the last updates arrive before counting them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let mut stats = rec.into_stats();
    stats.merge(&setup.into_stats());
    let until = Instant::now() + run.timeout;
    for mut t in watchers {
        match tokio::time::timeout_at(until.into(), &mut t).await {
            Ok(Ok(rec)) => stats.merge(&rec.into_stats()),
            _ => t.abort(),
        }
    }
    for writer in writers.into_iter().flatten() {
        let mut writer = writer;
        let _ = writer.command("LOGOUT").await;
    }
    let _ = stop_progress.send(true);
    let _ = progress.await;

    let name = if args.plain { "search-context (plain)" } else { "search-context" };
    let mut report = Report::new(name, &stats, elapsed, run.open_loop(), common.connections);
    let lines = updates.load(Ordering::Relaxed);
    let changes = stats_count(&report, "deliver") + stats_count(&report, "store");
    report.extra("watchers", held);
    report.extra("kept_search", !args.plain);
    report.extra("update_lines", lines);
    if let Some(phase) = metrics {
        phase.add_to(&mut report, &[("change", changes)]);
    }
    if changes > 0 {
        report.extra(
            "update_lines_per_change",
            ((lines as f64 / changes as f64) * 100.0).round() / 100.0,
        );
    }
    report.notes.push(
        "connect/login/select/context/idle happened during setup; update lines count ESEARCH \
         lines with ADDTO or REMOVEFROM"
            .into(),
    );
    Ok(report)
}

/// How many `op` completed, from the report's table.
fn stats_count(report: &Report, op: &str) -> u64 {
    crate::cpu::count_of(report, &[op])
}

type Watcher = tokio::task::JoinHandle<Recorder>;

/// Starts K watchers (at most 64 connecting at once) and waits until each is idling or failed.
async fn start_watchers(
    args: &SearchContextArgs,
    to: &Endpoint,
    live: &Arc<Live>,
    updates: &Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
) -> (Vec<Watcher>, usize) {
    let k = args.common.connections;
    let gate = Arc::new(Semaphore::new(64));
    let (ready_tx, mut ready) = mpsc::channel(k.max(1));
    let timeout = Duration::from_secs(args.common.timeout);
    let tasks = (0..k)
        .map(|i| {
            let user = args.common.user((i % args.common.users as usize) as u32);
            let password = args.common.password.clone();
            let (gate, ready_tx, stop, to, updates) =
                (gate.clone(), ready_tx.clone(), stop.clone(), to.clone(), updates.clone());
            let rec = Recorder::new(live.clone());
            let plain = args.plain;
            tokio::spawn(async move {
                let permit = gate.acquire().await;
                let held = setup(&to, timeout, &user, &password, plain, rec).await;
                let _ = ready_tx.send(held.0.is_some()).await;
                drop(ready_tx);
                drop(permit);
                hold(held, updates, stop).await
            })
        })
        .collect();
    drop(ready_tx);
    let mut held = 0;
    for _ in 0..k {
        match ready.recv().await {
            Some(true) => held += 1,
            Some(false) => {}
            None => break,
        }
    }
    (tasks, held)
}

async fn setup(
    to: &Endpoint,
    timeout: Duration,
    user: &str,
    pw: &str,
    plain: bool,
    mut rec: Recorder,
) -> (Option<(ImapClient, String)>, Recorder) {
    let spec = SessionSpec { to, timeout, user, password: pw, mailbox: "INBOX", read_only: false };
    let Ok(mut c) = open_session(spec, Instant::now(), SESSION, &mut rec).await else {
        return (None, rec);
    };
    if !plain {
        let t = Instant::now();
        let kept = c.command("UID SEARCH RETURN (UPDATE COUNT) UNSEEN");
        if step(&mut rec, CONTEXT, t, kept).await.is_err() {
            return (None, rec);
        }
    }
    match step(&mut rec, IDLE, Instant::now(), c.idle()).await {
        Ok(tag) => (Some((c, tag)), rec),
        Err(_) => (None, rec),
    }
}

/// Reads while idling, counting update lines, until told to stop; then DONE and LOGOUT.
async fn hold(
    (held, mut rec): (Option<(ImapClient, String)>, Recorder),
    updates: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Recorder {
    let Some((mut c, tag)) = held else { return rec };
    let forever = Duration::from_secs(crate::limits::MAX_DURATION_SECS * 2);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = c.read_response(forever) => match r {
                Ok(r) if is_update(&r.bytes) => { updates.fetch_add(1, Ordering::Relaxed); }
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

/// `* ESEARCH ... ADDTO (...)` or `REMOVEFROM (...)`.
fn is_update(line: &[u8]) -> bool {
    line.starts_with(b"* ESEARCH ")
        && (contains(line, b" ADDTO (") || contains(line, b" REMOVEFROM ("))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Delivers to random users as fast as the pacer allows; after every `--store-every`-th
/// delivery, that user's writer marks its newest message seen (NOOP first, so `*` is it).
async fn deliver_loop(
    args: &SearchContextArgs,
    lmtp: &Endpoint,
    run: &Run,
    source: &crate::corpus::Source,
    writers: &mut [Option<ImapClient>],
    mut rec: Recorder,
) -> Recorder {
    let users = args.common.users.max(1);
    let mut rng = worker_rng(args.common.seed, 0);
    let nonce = run_nonce();
    let mut pacer = run.pacer(0);
    let mut client: Option<LmtpClient> = None;
    let mut message = Vec::new();
    let mut seq = 0u64;
    while let Some(tick) = pacer.tick(run).await {
        if client.is_none() {
            client = LmtpClient::connect(lmtp, run.timeout).await.ok();
        }
        let Some(c) = client.as_mut() else {
            rec.error(DELIVER);
            crate::run::pause_before_retry(run).await;
            continue;
        };
        let u = rng.gen_range(0..users);
        seq += 1;
        source.render((nonce, seq), &mut rng, &mut message);
        match c.deliver("context@skua-bench.invalid", &[args.common.user(u)], &message).await {
            Ok(d) if d.delivered == 1 => rec.record(DELIVER, d.done - tick.from(d.data_sent)),
            Ok(_) | Err(_) => {
                rec.error(DELIVER);
                client = None;
                continue;
            }
        }
        let store_now = args.store_every > 0 && seq.is_multiple_of(u64::from(args.store_every));
        if store_now && let Some(Some(w)) = writers.get_mut(u as usize) {
            let t = Instant::now();
            let stored = async {
                w.command("NOOP").await?;
                w.command("STORE * +FLAGS.SILENT (\\Seen)").await
            };
            if step(&mut rec, STORE, t, stored).await.is_err() {
                writers[u as usize] = None;
            }
        }
    }
    if let Some(c) = client {
        let _ = tokio::time::timeout(run.timeout, c.quit()).await;
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::is_update;

    #[test]
    fn update_lines_are_recognised() {
        assert!(is_update(b"* ESEARCH (TAG \"a\") UID ADDTO (0 5)\r\n"));
        assert!(is_update(b"* ESEARCH (TAG \"a\") UID REMOVEFROM (0 5)\r\n"));
        assert!(!is_update(b"* ESEARCH (TAG \"a\") UID COUNT 3\r\n"));
        assert!(!is_update(b"* 5 EXISTS\r\n"));
    }
}
