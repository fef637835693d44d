//! Command-line interface: one subcommand per scenario, common options flattened into each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::client::tls::{Endpoint, Start, TlsClient, Trust};
use crate::cpu::CpuList;
use crate::limits;
use crate::server_metrics;

/// Load generator for IMAP and LMTP servers (loopback targets only).
#[derive(Debug, Parser)]
#[command(name = "skua-bench", version, about, long_about = None)]
pub struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Concurrent LMTP connections delivering messages to random users.
    Lmtp(LmtpArgs),
    /// IMAP sessions looping LOGIN, SELECT, FETCH, STORE, EXPUNGE, APPEND, LOGOUT by weights.
    ImapMixed(ImapArgs),
    /// Read-only IMAP sessions: FETCH ranges, SEARCH, STATUS, LIST, NOOP on filled mailboxes.
    ImapRead(ImapArgs),
    /// Read-only IMAP sessions timing SORT (ARRIVAL), (DATE), (SUBJECT) over whole mailboxes.
    Sort(ImapArgs),
    /// Read-only IMAP sessions timing THREAD REFERENCES / REFS / ORDEREDSUBJECT over whole
    /// mailboxes.
    Thread(ImapArgs),
    /// One session per user: STORE on --changes messages, then a QRESYNC SELECT (RFC 7162)
    /// and, for comparison, FETCH 1:* (UID FLAGS).
    Qresync(QresyncArgs),
    /// Hold K connections in IDLE; measure server memory per connection and delivery-to-EXISTS.
    Idle(IdleArgs),
    /// Connect, LOGIN, LOGOUT as fast as possible.
    Churn(ChurnArgs),
    /// K sessions keep `UID SEARCH RETURN (UPDATE) UNSEEN` live (CONTEXT=SEARCH) and IDLE while
    /// LMTP deliveries and STOREs run; counts their update lines (`--plain`: no kept search).
    SearchContext(SearchContextArgs),
    /// TLS handshakes per second: connect, handshake, greeting, close (full handshakes, or
    /// resumed ones with --tls-resume).
    Handshake(HandshakeArgs),
    /// Write a deterministic corpus of realistic messages to a directory.
    Corpus(CorpusArgs),
}

/// Options every load scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server host; must resolve to loopback (127.0.0.0/8 or ::1) only.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// User names: `%d` is replaced by a number in 0..users.
    #[arg(long, default_value = "user%d")]
    pub user_pattern: String,
    /// Number of users addressed.
    #[arg(long, default_value_t = 100)]
    pub users: u32,
    /// Password of every user.
    #[arg(long, default_value = "pw")]
    pub password: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Length of the measured phase, seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Stop after this many operations in total, even before --duration.
    #[arg(long)]
    pub max_ops: Option<u64>,
    /// Open-loop mode: start operations at this fixed total rate per second (latency measured
    /// from each operation's intended start). Default: closed loop, as fast as replies come.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Runtime worker threads of the bench itself.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seed of the bench's random choices (users, commands, corpus picks).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Longest wait for any one server response, seconds.
    #[arg(long, default_value_t = limits::DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
    /// CPUs the server is pinned to (`0`, `0,2`, `0-3`): their busy time in /proc/stat over
    /// the measured phase is reported, and per operation (`server_cpu_us_per_op`).
    #[arg(long, value_name = "LIST")]
    pub server_cpus: Option<CpuList>,
    /// The server's process: the CPU time of it and its descendants over the measured phase is
    /// reported (`server_tree_cpu_us_per_op`); `idle` also reads its memory, `handshake` its
    /// CPU per connection.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server's Prometheus endpoint (`http://127.0.0.1:PORT/metrics`, loopback only):
    /// scraped right before and after the measured phase for the fdatasync calls and flush
    /// rounds of the phase, per operation, and flush-round latency percentiles estimated from
    /// its histogram buckets. A failed scrape is reported, not fatal.
    #[arg(long, value_name = "URL")]
    pub server_metrics: Option<String>,
    /// TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS options (every scenario).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Implicit TLS on IMAP connections (the port is an IMAPS port). LMTP connections of the
    /// scenario (prefill, idle deliveries) stay plain: LMTP has no implicit-TLS port.
    #[arg(long, conflicts_with = "starttls")]
    pub tls: bool,
    /// STARTTLS on every IMAP and LMTP connection, right after the greeting (LMTP: after LHLO).
    #[arg(long)]
    pub starttls: bool,
    /// Verify the server's certificate against the certificates in this PEM file (a CA, or the
    /// server's self-signed certificate).
    #[arg(long, value_name = "FILE", conflicts_with = "tls_insecure")]
    pub tls_ca: Option<PathBuf>,
    /// Accept any server certificate (benchmarking only; handshake signatures are still checked).
    #[arg(long)]
    pub tls_insecure: bool,
    /// Name the certificate is checked for (SNI too, if a DNS name); default: --host.
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Cache TLS sessions and resume them (TLS 1.3 tickets) on later connections of the run.
    /// Off by default: every connection makes a full handshake.
    #[arg(long)]
    pub tls_resume: bool,
}

/// What messages to send.
#[derive(Debug, Clone, Args)]
pub struct MessageArgs {
    /// Size of each synthetic message, bytes (ignored with --corpus).
    #[arg(long, default_value_t = 4096)]
    pub size: usize,
    /// Send messages from this corpus directory (see `skua-bench corpus`).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
}

/// `lmtp` options.
#[derive(Debug, Clone, Args)]
pub struct LmtpArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// LMTP port.
    #[arg(long, visible_alias = "lmtp-port", default_value_t = 24)]
    pub port: u16,
    /// Recipients per transaction (distinct users); each counts as one delivery.
    #[arg(long, default_value_t = 1)]
    pub recipients: usize,
    /// Envelope sender.
    #[arg(long, default_value = "bench@skua-bench.invalid")]
    pub sender: String,
    /// Send MAIL, each RCPT and DATA one at a time even if the server offers PIPELINING.
    #[arg(long)]
    pub no_pipelining: bool,
    /// Messages.
    #[command(flatten)]
    pub message: MessageArgs,
}

/// `imap-mixed`, `imap-read`, `sort` and `thread` options.
#[derive(Debug, Clone, Args)]
pub struct ImapArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// IMAP port.
    #[arg(long, visible_alias = "imap-port", default_value_t = 143)]
    pub port: u16,
    /// LMTP port, for --prefill.
    #[arg(long)]
    pub lmtp_port: Option<u16>,
    /// Before measuring, deliver this many messages to each user over LMTP.
    #[arg(long, default_value_t = 0)]
    pub prefill: u32,
    /// Command weights, `name=weight,...` (see the README for names and defaults).
    #[arg(long)]
    pub mix: Option<String>,
    /// Commands per session between SELECT and LOGOUT.
    #[arg(long, default_value_t = 20)]
    pub ops_per_session: u32,
    /// Mailbox to work in.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Messages (for APPEND and --prefill).
    #[command(flatten)]
    pub message: MessageArgs,
}

/// `qresync` options.
#[derive(Debug, Clone, Args)]
pub struct QresyncArgs {
    /// IMAP options (--ops-per-session counts rounds; --mix does not apply).
    #[command(flatten)]
    pub imap: ImapArgs,
    /// Messages each round's STORE changes (at most the mailbox's).
    #[arg(long, default_value_t = 1000)]
    pub changes: u32,
}

/// `idle` options.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    /// Common options (--connections is the number of idling connections).
    #[command(flatten)]
    pub common: Common,
    /// IMAP port.
    #[arg(long, visible_alias = "imap-port", default_value_t = 143)]
    pub port: u16,
    /// LMTP port for the deliveries whose EXISTS the idlers wait for.
    #[arg(long, default_value_t = 24)]
    pub lmtp_port: u16,
    /// Seconds to wait after all connections idle before reading memory.
    #[arg(long, default_value_t = 2)]
    pub settle: u64,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 64)]
    pub setup_concurrency: usize,
    /// Messages.
    #[command(flatten)]
    pub message: MessageArgs,
}

/// `search-context` options.
#[derive(Debug, Clone, Args)]
pub struct SearchContextArgs {
    /// Common options (--connections is the number of watching sessions).
    #[command(flatten)]
    pub common: Common,
    /// IMAP port.
    #[arg(long, visible_alias = "imap-port", default_value_t = 143)]
    pub port: u16,
    /// LMTP port for the deliveries.
    #[arg(long, default_value_t = 24)]
    pub lmtp_port: u16,
    /// After every N-th delivery, mark that user's newest message \Seen (0: never).
    #[arg(long, default_value_t = 2)]
    pub store_every: u32,
    /// Watchers only IDLE, keeping no search: the baseline for the same load.
    #[arg(long)]
    pub plain: bool,
    /// Messages.
    #[command(flatten)]
    pub message: MessageArgs,
}

/// `churn` options.
#[derive(Debug, Clone, Args)]
pub struct ChurnArgs {
    /// Common options.
    #[command(flatten)]
    pub common: Common,
    /// IMAP port.
    #[arg(long, visible_alias = "imap-port", default_value_t = 143)]
    pub port: u16,
}

/// `handshake` options.
#[derive(Debug, Clone, Args)]
pub struct HandshakeArgs {
    /// Common options (--tls or --starttls required).
    #[command(flatten)]
    pub common: Common,
    /// IMAPS port (with --tls) or IMAP port (with --starttls).
    #[arg(long, visible_alias = "imap-port", default_value_t = 993)]
    pub port: u16,
}

/// `corpus` options.
#[derive(Debug, Clone, Args)]
pub struct CorpusArgs {
    /// Directory to write `NNNNNN.eml` files into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of messages.
    #[arg(long, default_value_t = 1000)]
    pub count: u32,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Largest message, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_size: usize,
}

/// An option out of its allowed range.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidArgs(pub String);

impl Common {
    /// Checks ranges and the user pattern.
    pub fn validate(&self) -> Result<(), InvalidArgs> {
        let bad = |m: String| Err(InvalidArgs(m));
        if !(1..=limits::MAX_CONNECTIONS).contains(&self.connections) {
            return bad(format!("--connections must be 1..={}", limits::MAX_CONNECTIONS));
        }
        if !(1..=limits::MAX_DURATION_SECS).contains(&self.duration) {
            return bad(format!("--duration must be 1..={} seconds", limits::MAX_DURATION_SECS));
        }
        if !(1..=limits::MAX_USERS).contains(&self.users) {
            return bad(format!("--users must be 1..={}", limits::MAX_USERS));
        }
        if self.user_pattern.matches("%d").count() != 1 && self.users > 1 {
            return bad("--user-pattern must contain %d exactly once when --users > 1".into());
        }
        if let Some(r) = self.rate
            && !(r.is_finite() && r > 0.0 && r <= 10_000_000.0)
        {
            return bad("--rate must be a positive number of operations per second".into());
        }
        if !(1..=256).contains(&self.threads) {
            return bad("--threads must be 1..=256".into());
        }
        if !(1..=3600).contains(&self.timeout) {
            return bad("--timeout must be 1..=3600 seconds".into());
        }
        self.metrics_endpoint()?;
        Ok(())
    }

    /// The parsed `--server-metrics` URL, if given.
    pub fn metrics_endpoint(&self) -> Result<Option<server_metrics::Endpoint>, InvalidArgs> {
        self.server_metrics
            .as_deref()
            .map(server_metrics::parse_url)
            .transpose()
            .map_err(InvalidArgs)
    }

    /// The TLS settings of connections that use TLS, built once per run (one session cache).
    fn tls_client(&self) -> Result<Option<Arc<TlsClient>>, InvalidArgs> {
        let t = &self.tls;
        let start = match (t.tls, t.starttls) {
            (false, false) => {
                if t.tls_ca.is_some() || t.tls_insecure || t.tls_resume {
                    return Err(InvalidArgs(
                        "--tls-ca, --tls-insecure and --tls-resume need --tls or --starttls".into(),
                    ));
                }
                return Ok(None);
            }
            (true, _) => Start::Implicit,
            (false, true) => Start::StartTls,
        };
        let trust = match (&t.tls_ca, t.tls_insecure) {
            (Some(path), false) => Trust::CaFile(path),
            (None, true) => Trust::Insecure,
            _ => {
                return Err(InvalidArgs(
                    "TLS needs --tls-ca FILE (verify) or --tls-insecure (accept any certificate)"
                        .into(),
                ));
            }
        };
        let name = t.tls_server_name.as_deref().unwrap_or(&self.host);
        TlsClient::new(start, trust, name, t.tls_resume)
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| InvalidArgs(e.to_string()))
    }

    /// Where IMAP connections go: `addr`, with TLS as the options ask.
    pub fn imap_endpoint(&self, addr: SocketAddr) -> Result<Endpoint, InvalidArgs> {
        Ok(Endpoint { addr, tls: self.tls_client()? })
    }

    /// Where LMTP connections go: `addr`, with STARTTLS if asked (implicit TLS does not apply).
    pub fn lmtp_endpoint(&self, addr: SocketAddr) -> Result<Endpoint, InvalidArgs> {
        let tls = if self.tls.starttls { self.tls_client()? } else { None };
        Ok(Endpoint { addr, tls })
    }

    /// The name of user `i`.
    pub fn user(&self, i: u32) -> String {
        self.user_pattern.replacen("%d", &i.to_string(), 1)
    }
}

impl MessageArgs {
    /// Checks the size.
    pub fn validate(&self) -> Result<(), InvalidArgs> {
        if self.size > limits::MAX_MESSAGE_BYTES {
            return Err(InvalidArgs(format!(
                "--size must be at most {}",
                limits::MAX_MESSAGE_BYTES
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("skua-bench").chain(args.iter().copied()))
    }

    #[test]
    fn parses_the_documented_lmtp_command() {
        let cli = parse(&[
            "lmtp",
            "--port",
            "2424",
            "--users",
            "100",
            "--user-pattern",
            "user%d",
            "--password",
            "pw",
            "--connections",
            "8",
            "--duration",
            "10",
            "--size",
            "4096",
        ])
        .unwrap();
        let Scenario::Lmtp(a) = cli.scenario else { panic!("lmtp") };
        assert_eq!(
            (a.port, a.common.connections, a.common.duration, a.message.size),
            (2424, 8, 10, 4096)
        );
        assert_eq!(a.common.user(42), "user42");
        a.common.validate().unwrap();
        let Scenario::Lmtp(b) = parse(&["lmtp", "--lmtp-port", "99"]).unwrap().scenario else {
            panic!()
        };
        assert_eq!(b.port, 99);
    }

    #[test]
    fn validation() {
        let Scenario::Churn(mut c) = parse(&["churn"]).unwrap().scenario else { panic!() };
        c.common.validate().unwrap();
        c.common.user_pattern = "fixed".into();
        assert!(c.common.validate().is_err());
        c.common.users = 1;
        c.common.validate().unwrap();
        c.common.duration = 0;
        assert!(c.common.validate().is_err());
        c.common.duration = 5;
        c.common.rate = Some(f64::NAN);
        assert!(c.common.validate().is_err());
    }
}
