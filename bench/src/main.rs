//! skua-bench: a load generator for IMAP and LMTP servers.
//!
//! It speaks the protocols itself (no mail client crates), so it measures skua and any other
//! server the same way: per-operation latency histograms (p50 .. max), a progress line while it
//! runs, a table or JSON at the end. It only ever connects to loopback addresses, and every run
//! ends by itself (`--duration`, `--max-ops`). See `perf/bench-README.md`.

#![forbid(unsafe_code)]

mod cli;
mod client;
mod corpus;
mod cpu;
mod limits;
mod memory;
mod run;
mod scenario;
mod server_metrics;
mod stats;
mod target;
mod wire;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Common, Scenario};
use scenario::BenchError;
use stats::report::Report;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::Corpus(a) = &cli.scenario {
        return write_corpus(a);
    }
    match execute(cli.scenario) {
        Ok((report, json)) => {
            let text = if json { report.to_json() + "\n" } else { report.to_table() };
            // A closed pipe (`| head`) is not an error of the run: ignore write failures.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skua-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Resolves the target, builds the runtime and runs the scenario.
fn execute(scenario: Scenario) -> Result<(Report, bool), BenchError> {
    let common = common_of(&scenario).clone();
    common.validate()?;
    let port = match &scenario {
        Scenario::Lmtp(a) => a.port,
        Scenario::ImapMixed(a) | Scenario::ImapRead(a) => a.port,
        Scenario::Sort(a) | Scenario::Thread(a) => a.port,
        Scenario::Qresync(a) => a.imap.port,
        Scenario::Idle(a) => a.port,
        Scenario::Churn(a) => a.port,
        Scenario::SearchContext(a) => a.port,
        Scenario::Handshake(a) => a.port,
        Scenario::Corpus(_) => unreachable!("handled in main"),
    };
    let addr = target::resolve_loopback(&common.host, port)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let to = match &scenario {
        Scenario::Lmtp(_) if common.tls.tls => {
            return Err(cli::InvalidArgs(
                "lmtp: LMTP has no implicit-TLS port; use --starttls".into(),
            )
            .into());
        }
        Scenario::Lmtp(_) => common.lmtp_endpoint(addr)?,
        _ => common.imap_endpoint(addr)?,
    };
    // Raise the soft fd limit to the hard one: the idle scenario holds many sockets.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common.threads)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Setup(format!("cannot start the runtime: {e}")))?;
    let report = runtime.block_on(async move {
        match scenario {
            Scenario::Lmtp(a) => scenario::lmtp::run(a, to).await,
            Scenario::ImapMixed(a) => scenario::imap_mixed::run(a, to).await,
            Scenario::ImapRead(a) => scenario::imap_read::run(a, to).await,
            Scenario::Sort(a) => scenario::ordering::run_sort(a, to).await,
            Scenario::Thread(a) => scenario::ordering::run_thread(a, to).await,
            Scenario::Qresync(a) => scenario::qresync::run(a, to).await,
            Scenario::Idle(a) => scenario::idle::run(a, to).await,
            Scenario::Churn(a) => scenario::churn::run(a, to).await,
            Scenario::SearchContext(a) => scenario::search_context::run(a, to).await,
            Scenario::Handshake(a) => scenario::handshake::run(a, to).await,
            Scenario::Corpus(_) => unreachable!("handled in main"),
        }
    })?;
    Ok((report, common.json))
}

fn common_of(s: &Scenario) -> &Common {
    match s {
        Scenario::Lmtp(a) => &a.common,
        Scenario::ImapMixed(a) | Scenario::ImapRead(a) => &a.common,
        Scenario::Sort(a) | Scenario::Thread(a) => &a.common,
        Scenario::Qresync(a) => &a.imap.common,
        Scenario::Idle(a) => &a.common,
        Scenario::Churn(a) => &a.common,
        Scenario::SearchContext(a) => &a.common,
        Scenario::Handshake(a) => &a.common,
        Scenario::Corpus(_) => unreachable!("corpus has no common options"),
    }
}

fn write_corpus(a: &cli::CorpusArgs) -> ExitCode {
    if a.count > limits::MAX_CORPUS_MESSAGES
        || a.max_size > limits::MAX_MESSAGE_BYTES
        || a.max_size < 1024
    {
        eprintln!(
            "skua-bench: --count must be at most {} and --max-size 1024..={}",
            limits::MAX_CORPUS_MESSAGES,
            limits::MAX_MESSAGE_BYTES
        );
        return ExitCode::from(2);
    }
    match corpus::generate::write_corpus(&a.out, a.seed, a.count, a.max_size) {
        Ok(summary) => {
            eprintln!("wrote {} messages to {}: {summary}", a.count, a.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("skua-bench: writing the corpus to {}: {e}", a.out.display());
            ExitCode::from(2)
        }
    }
}
