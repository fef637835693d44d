//! `lmtp`: N connections deliver messages to random users, K distinct recipients per
//! transaction. Each accepted recipient is one delivery; a delivery's latency runs from the
//! DATA command (or, open loop, the transaction's intended start) to the last per-recipient
//! reply of its transaction.

use std::sync::Arc;
use std::time::Instant;

use rand::seq::index::sample;

use super::{BenchError, message_source, run_nonce, worker_rng};
use crate::cli::LmtpArgs;
use crate::client::lmtp::LmtpClient;
use crate::client::tls::Endpoint;
use crate::corpus::Source;
use crate::cpu::{self, Probe};
use crate::run::{Run, pause_before_retry, run_workers};
use crate::stats::Recorder;
use crate::stats::report::Report;

/// Operations measured.
pub const OPS: &[&str] = &["deliver", "connect"];
const DELIVER: usize = 0;
const CONNECT: usize = 1;

struct Plan {
    to: Endpoint,
    args: LmtpArgs,
    source: Source,
    nonce: u64,
}

/// Runs the scenario against `addr`.
pub async fn run(args: LmtpArgs, to: Endpoint) -> Result<Report, BenchError> {
    args.common.validate()?;
    let users = args.common.users as usize;
    if args.recipients == 0 || args.recipients > crate::limits::MAX_RECIPIENTS.min(users) {
        return Err(crate::cli::InvalidArgs(format!(
            "--recipients must be 1..={} (and at most --users)",
            crate::limits::MAX_RECIPIENTS
        ))
        .into());
    }
    let source = message_source(&args.message)?;
    let plan = Arc::new(Plan { to, args: args.clone(), source, nonce: run_nonce() });
    let probe = Probe::start(&args.common)?;
    let run = Run::new(&args.common);
    let open = run.open_loop();
    let out =
        run_workers(&args.common, OPS, run, move |w, run, rec| worker(w, run, rec, plan.clone()))
            .await;
    let mut report = Report::new("lmtp", &out.stats, out.elapsed, open, args.common.connections);
    report.notes = out.notes;
    let ops = cpu::count_of(&report, &["deliver"]);
    probe.finish(&mut report, ops, "delivery")?;
    report.extra("recipients_per_transaction", args.recipients);
    report.extra("pipelining", if args.no_pipelining { "off" } else { "when offered" });
    report.extra(
        "message",
        args.message
            .corpus
            .as_ref()
            .map_or(format!("{} bytes", args.message.size), |d| d.display().to_string()),
    );
    Ok(report)
}

async fn worker(w: usize, run: Arc<Run>, mut rec: Recorder, plan: Arc<Plan>) -> Recorder {
    let common = &plan.args.common;
    let mut rng = worker_rng(common.seed, w);
    let mut pacer = run.pacer(w);
    let mut client: Option<LmtpClient> = None;
    let mut message = Vec::new();
    let mut seq = 0u64;
    while let Some(tick) = pacer.tick(&run).await {
        let c = match client.as_mut() {
            Some(c) => c,
            None => {
                let t = Instant::now();
                let connected = LmtpClient::connect(&plan.to, run.timeout).await;
                match connected
                    .map(|c| if plan.args.no_pipelining { c.without_pipelining() } else { c })
                {
                    Ok(c) => {
                        rec.record(CONNECT, t.elapsed());
                        client.insert(c)
                    }
                    Err(_) => {
                        rec.error(CONNECT);
                        pause_before_retry(&run).await;
                        continue;
                    }
                }
            }
        };
        let rcpts: Vec<String> = sample(&mut rng, common.users as usize, plan.args.recipients)
            .iter()
            .map(|u| common.user(u as u32))
            .collect();
        seq += 1;
        plan.source.render((plan.nonce, (w as u64) << 40 | seq), &mut rng, &mut message);
        match c.deliver(&plan.args.sender, &rcpts, &message).await {
            Ok(d) => {
                let latency = d.done - tick.from(d.data_sent);
                for _ in 0..d.delivered {
                    rec.record(DELIVER, latency);
                }
                for _ in 0..d.failed {
                    rec.error(DELIVER);
                }
                rec.bytes(DELIVER, message.len() * d.delivered);
            }
            Err(e) => {
                for _ in 0..rcpts.len() {
                    rec.error(DELIVER);
                }
                if !e.is_recoverable() {
                    client = None;
                }
            }
        }
    }
    if let Some(c) = client {
        let _ = tokio::time::timeout(run.timeout, c.quit()).await;
    }
    rec
}
