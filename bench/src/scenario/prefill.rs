//! `--prefill M`: before an IMAP scenario measures anything, deliver M messages to each user
//! over LMTP, so read scenarios have mailboxes to read. Worker w of C fills users w, w+C, ...
//! one recipient per transaction. Bounded by count (users x M); it stops early on the first
//! refused delivery, since a server that refuses mail would make the measured phase meaningless.

use std::time::{Duration, Instant};

use super::{BenchError, run_nonce, worker_rng};
use crate::cli::Common;
use crate::client::lmtp::LmtpClient;
use crate::client::tls::Endpoint;
use crate::corpus::Source;
use crate::limits::MAX_PREFILL;
use crate::stats::{Live, Recorder, progress};

const OPS: &[&str] = &["prefill"];

/// Delivers `per_user` messages from `source` to every user; returns the number delivered.
pub async fn prefill(
    common: &Common,
    lmtp: Endpoint,
    per_user: u32,
    source: &Source,
) -> Result<u64, BenchError> {
    if per_user == 0 {
        return Ok(0);
    }
    if per_user > MAX_PREFILL {
        return Err(
            crate::cli::InvalidArgs(format!("--prefill must be at most {MAX_PREFILL}")).into()
        );
    }
    let live = Live::new(OPS);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let progress = tokio::spawn(progress::run(live.clone(), start, common.quiet, stop_rx));
    let workers = common.connections.min(common.users as usize);
    let nonce = run_nonce();
    let timeout = Duration::from_secs(common.timeout);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (common, source, rec, lmtp) =
                (common.clone(), source.clone(), Recorder::new(live.clone()), lmtp.clone());
            tokio::spawn(async move {
                fill(w, workers, &common, &lmtp, per_user, &source, nonce, timeout, rec).await
            })
        })
        .collect();
    let mut result = Ok(0);
    for t in tasks {
        let r = t
            .await
            .map_err(|e| BenchError::Setup(format!("prefill worker failed: {e}")))
            .and_then(|r| r);
        result = match (result, r) {
            (Ok(a), Ok(b)) => Ok(a + b),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    let _ = stop_tx.send(true);
    let _ = progress.await;
    if let Ok(n) = &result
        && !common.quiet
    {
        eprintln!("prefill: {n} messages delivered in {:.1}s", start.elapsed().as_secs_f64());
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn fill(
    w: usize,
    workers: usize,
    common: &Common,
    lmtp: &Endpoint,
    per_user: u32,
    source: &Source,
    nonce: u64,
    timeout: Duration,
    mut rec: Recorder,
) -> Result<u64, BenchError> {
    let setup = |e| BenchError::Setup(format!("prefill over LMTP {}: {e}", lmtp.addr));
    let mut rng = worker_rng(common.seed ^ 0x5eed, w);
    let mut client = LmtpClient::connect(lmtp, timeout).await.map_err(setup)?;
    let mut message = Vec::new();
    let mut done = 0u64;
    for user in (w..common.users as usize).step_by(workers) {
        let rcpt = [common.user(user as u32)];
        for _ in 0..per_user {
            done += 1;
            source.render((nonce, (w as u64) << 40 | done), &mut rng, &mut message);
            let t = Instant::now();
            let d = client
                .deliver("prefill@skua-bench.invalid", &rcpt, &message)
                .await
                .map_err(setup)?;
            if d.delivered != 1 {
                return Err(BenchError::Setup(format!(
                    "prefill: the server refused a delivery to {}",
                    rcpt[0]
                )));
            }
            rec.record(0, t.elapsed());
        }
    }
    let _ = client.quit().await;
    Ok(done)
}
