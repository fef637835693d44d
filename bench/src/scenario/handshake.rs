//! `handshake`: connect, TLS handshake, read the IMAP greeting, close (TLS close_notify and
//! FIN), as fast as possible or at `--rate`. Measures what TLS session setup costs the server.
//!
//! Each connection is recorded as `full` or `resumed` by what the handshake actually was
//! (rustls's `handshake_kind`), not by what was asked: with `--tls-resume` the client keeps one
//! session cache for the run and offers a TLS 1.3 ticket when it has one, and a server that
//! does not resume shows up as `full` connections. A failed connection counts as an error of
//! `full`. With `--starttls` the figure includes the STARTTLS round trip.
//!
//! With `--server-pid`, the CPU time the server's process tree used during the run is read
//! before and after (see `memory::cpu_ticks`) and reported per connection: a figure that does
//! not depend on how fast the client (which does the other half of every handshake on the
//! same machine) keeps up.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::HandshakeKind;

use super::BenchError;
use crate::cli::{HandshakeArgs, InvalidArgs};
use crate::client::imap::ImapClient;
use crate::client::tls::Endpoint;
use crate::cpu::Probe;
use crate::run::{Run, pause_before_retry, run_workers};
use crate::stats::Recorder;
use crate::stats::report::Report;

/// Operations measured: one per connection, by the kind of handshake it made.
pub const OPS: &[&str] = &["full", "resumed"];
const FULL: usize = 0;
const RESUMED: usize = 1;

/// Runs the scenario against the IMAP server at `to`, which must use TLS.
pub async fn run(args: HandshakeArgs, to: Endpoint) -> Result<Report, BenchError> {
    let Some(tls) = to.tls.clone() else {
        return Err(InvalidArgs("handshake needs --tls (IMAPS port) or --starttls".into()).into());
    };
    let cpu = |pid: u32| {
        crate::memory::cpu_ticks(pid)
            .map_err(|e| BenchError::Setup(format!("reading CPU time of --server-pid {pid}: {e}")))
    };
    let cpu_before = args.common.server_pid.map(cpu).transpose()?;
    let probe = Probe::start(&args.common)?;
    let run = Run::new(&args.common);
    let open = run.open_loop();
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    let out = run_workers(&args.common, OPS, run, move |w, run, rec| {
        worker(w, run, rec, to.clone(), shared.clone())
    })
    .await;
    let mut report =
        Report::new("handshake", &out.stats, out.elapsed, open, args.common.connections);
    report.notes = out.notes;
    // Every connection attempted, made or failed: the server did work for each.
    let connections: u64 = out.stats.ops.iter().map(|o| o.hist.len() + o.errors).sum();
    probe.finish(&mut report, connections, "connection")?;
    if let (Some(pid), Some(before)) = (args.common.server_pid, cpu_before) {
        let used = cpu(pid)?.saturating_sub(before);
        let ms = used as f64 * 1000.0 / crate::memory::USER_HZ as f64;
        report.extra("server_cpu_ms", ms);
        if connections > 0 {
            let per = ms / connections as f64;
            report.extra("server_cpu_ms_per_connection", (per * 1000.0).round() / 1000.0);
        }
    }
    report.extra("tls_resume", tls.resume);
    report.extra("starttls", to_starttls(&tls));
    if let Some(n) = seen.negotiated.get() {
        report.extra("negotiated", n.clone());
    }
    if let Some(e) = seen.first_error.get() {
        report.notes.push(format!("first failed connection: {e}"));
    }
    Ok(report)
}

/// What the workers note once for the report.
#[derive(Debug, Default)]
struct Seen {
    /// Protocol version and cipher suite of the first connection.
    negotiated: OnceLock<String>,
    /// Why the first failed connection failed (a refused certificate, most often).
    first_error: OnceLock<String>,
}

fn to_starttls(tls: &crate::client::tls::TlsClient) -> bool {
    tls.start == crate::client::tls::Start::StartTls
}

async fn worker(
    w: usize,
    run: Arc<Run>,
    mut rec: Recorder,
    to: Endpoint,
    seen: Arc<Seen>,
) -> Recorder {
    let mut pacer = run.pacer(w);
    while let Some(tick) = pacer.tick(&run).await {
        let start = tick.from(Instant::now());
        match ImapClient::connect(&to, run.timeout).await {
            Ok(c) => {
                let elapsed = start.elapsed();
                let op = match c.stream().handshake_kind() {
                    Some(HandshakeKind::Resumed) => RESUMED,
                    _ => FULL,
                };
                rec.record(op, elapsed);
                if seen.negotiated.get().is_none()
                    && let Some(s) = c.stream().tls_summary()
                {
                    let _ = seen.negotiated.set(s);
                }
                c.close().await;
            }
            Err(e) => {
                let _ = seen.first_error.set(e.to_string());
                rec.error(FULL);
                pause_before_retry(&run).await;
            }
        }
    }
    rec
}
