//! `skua`: the command line. Argument parsing and wiring only; the work is in the crates.

mod admin;
mod config;
mod deliver;
mod import;
mod man;
mod notify;
mod users;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use skua_core::lock::DataDirLock;
use skua_shard::tls::{self, SelfSigned, TlsConfigs};

use crate::config::FileConfig;

/// skua: a thread-per-core, durable IMAP and LMTP mail server.
#[derive(Parser, Debug)]
#[command(name = "skua", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(Args, Debug, Clone)]
struct Common {
    /// The TOML config file (default: built-in settings).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data directory (default: ./skua-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the server.
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
    /// Manage users in the passwd-file.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Deliver one message from stdin through the running server's LMTP (mailbox_command).
    #[command(after_help = deliver::AFTER_HELP)]
    Deliver(deliver::DeliverArgs),
    /// Rebuild users' mailbox indexes from the spool segments (server running or stopped).
    Reconstruct(admin::ReconstructArgs),
    /// Verify users' stores: every checksum, index against spool, counters (chk_cyrus).
    #[command(after_help = admin::CHECK_AFTER_HELP)]
    Check(admin::CheckArgs),
    /// Show users' quota usage and limits; `--fix` recounts.
    Quota(admin::QuotaArgs),
    /// Print the directory of a user's store.
    Mbpath(admin::MbPathArgs),
    /// Show a mailbox's header fields and every index record.
    Mbexamine(admin::MbExamineArgs),
    /// Show the disk space each user's store takes, and the total.
    Df(admin::DfArgs),
    /// Expunge users' messages older than N days and/or larger than a size (Cyrus's ipurge).
    #[command(after_help = admin::IPURGE_AFTER_HELP)]
    Ipurge(admin::IpurgeArgs),
    /// List or restore a mailbox's expunged messages still on disk (Cyrus's unexpunge).
    #[command(after_help = admin::UNEXPUNGE_AFTER_HELP)]
    Unexpunge(admin::UnexpungeArgs),
    /// Print the version; `--build` also says how this binary was built.
    Version(admin::VersionArgs),
    /// Refuse users IMAP logins (and LMTP delivery), or lift that, or list it (cyr_deny).
    #[command(after_help = admin::DENY_AFTER_HELP)]
    Deny(admin::DenyArgs),
    /// Dump every mailbox as JSON lines, or make the mailboxes of a dump (ctl_mboxlist).
    Mboxlist {
        #[command(subcommand)]
        command: admin::MboxlistCommand,
    },
    /// Show the readers of each shared mailbox (arbitron).
    Arbitron(admin::ArbitronArgs),
    /// Print the settings `skua serve` would run with that differ from the defaults.
    Info(admin::InfoArgs),
    /// Write a man page for skua and for each subcommand (skua.1, skua-serve.1, ...).
    Man(man::ManArgs),
    /// Append a snapshot of a user's store to a backup archive (only new bodies are written).
    #[command(after_help = admin::BACKUP_AFTER_HELP)]
    Backup(admin::BackupArgs),
    /// Restore a snapshot of a backup archive into a user's store, or list the snapshots.
    #[command(after_help = admin::RESTORE_AFTER_HELP)]
    Restore(admin::RestoreArgs),
    /// Import mail from a Maildir++ tree or an mbox file into a user's store (server stopped).
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    /// IMAP listen address (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    imap_listen: Vec<SocketAddr>,
    /// Implicit-TLS IMAP listen address (repeatable; default 127.0.0.1:1993).
    #[arg(long, value_name = "ADDR:PORT")]
    imaps_listen: Vec<SocketAddr>,
    /// Serve no implicit-TLS IMAP listener (STARTTLS stays available).
    #[arg(long, conflicts_with = "imaps_listen")]
    no_imaps: bool,
    /// LMTP listen address (repeatable).
    #[arg(long, value_name = "ADDR:PORT")]
    lmtp_listen: Vec<SocketAddr>,
    /// Number of shards (default: one per online core).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// How log lines are written to stderr: `text` (colours only when stderr is a terminal)
    /// or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// See `ServeArgs::log_format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

/// After `skua serve --help`: what the log is and how to filter it.
const SERVE_AFTER_HELP: &str = "\
Logging: one line per connection opened and closed, per login and per LMTP recipient, at the
default level (info), on stderr. SKUA_LOG sets the filter with tracing's syntax, e.g.
SKUA_LOG=debug, or SKUA_LOG=info,skua_shard=debug; the default is \"info,rustls=error\".";

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user; the password is read from stdin.
    Add {
        /// User name (a login name or a full address).
        name: String,
        /// What to store: SHA512-CRYPT (default), BLF-CRYPT, ARGON2ID, ARGON2I, PLAIN,
        /// SCRAM-SHA-256 or SCRAM-SHA-1. A SCRAM scheme stores SCRAM keys (Dovecot's form),
        /// which SCRAM logins need and PLAIN/LOGIN also accept.
        #[arg(long, value_name = "NAME")]
        scheme: Option<skua_core::users::Scheme>,
        #[command(flatten)]
        common: Common,
    },
    /// Set a user's password, read from stdin.
    Passwd {
        /// User name.
        name: String,
        /// What to store (as for `user add`).
        #[arg(long, value_name = "NAME")]
        scheme: Option<skua_core::users::Scheme>,
        #[command(flatten)]
        common: Common,
    },
    /// Delete a user from the passwd-file; asks (on a terminal) whether to remove their mail
    /// too, which `--purge` does without asking. Removing mail needs the server stopped.
    Del {
        /// User name.
        name: String,
        /// Also remove the user's mail directory, without asking.
        #[arg(long)]
        purge: bool,
        #[command(flatten)]
        common: Common,
    },
    /// List users.
    List {
        #[command(flatten)]
        common: Common,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let result = match cli.command {
        Command::Deliver(args) => return deliver::run(&args),
        Command::Serve(args) => serve(args),
        Command::User { command } => users::run(command),
        Command::Reconstruct(args) => return tool(admin::reconstruct(&args)),
        Command::Check(args) => return tool(admin::check(&args)),
        Command::Quota(args) => return tool(admin::quota(&args)),
        Command::Mbpath(args) => return tool(admin::mbpath(&args)),
        Command::Mbexamine(args) => return tool(admin::mbexamine(&args)),
        Command::Df(args) => return tool(admin::df(&args)),
        Command::Ipurge(args) => return tool(admin::ipurge(&args)),
        Command::Unexpunge(args) => return tool(admin::unexpunge(&args)),
        Command::Version(args) => return tool(admin::build_version(&args)),
        Command::Info(args) => return tool(admin::info(&args)),
        Command::Deny(args) => return tool(admin::deny(&args)),
        Command::Mboxlist { command } => return tool(admin::mboxlist(&command)),
        Command::Arbitron(args) => return tool(admin::arbitron(&args)),
        Command::Man(args) => man::run(&args, <Cli as clap::CommandFactory>::command()),
        Command::Import { command } => import::run(command),
        Command::Backup(args) => return tool(admin::backup(&args)),
        Command::Restore(args) => return tool(admin::restore(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("skua: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused (or `--help`): `skua deliver` exits with EX_USAGE (64), as
/// an MTA expects of a delivery agent; everything else as clap does (2).
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let deliver = std::env::args().nth(1).is_some_and(|word| word == "deliver");
    let shown = matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if !deliver || shown {
        error.exit();
    }
    let _ = error.print();
    ExitCode::from(deliver::USAGE_EXIT)
}

/// The log filter when `SKUA_LOG` is not set: rustls reports each peer's bad alert as a
/// warning, which the connection's own close line already says.
const LOG_FILTER_DEFAULT: &str = "info,rustls=error";

/// Sets up logging to stderr through a writer thread; keep the guard until the end of
/// `main`: dropping it writes out the lines still queued.
///
/// The shards only format a line and queue it; the thread writes. When the queue is full
/// ([`LOG_LINES_QUEUED_MAX`]) a logging shard waits rather than lose the line: an operator's
/// record of connections and deliveries must be complete.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKUA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(LOG_FILTER_DEFAULT));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_QUEUED_MAX)
        .lossy(false)
        .thread_name("skua-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(ansi).init(),
    }
    guard
}

/// See [`init_logging`]: log lines waiting for the writer thread.
const LOG_LINES_QUEUED_MAX: usize = 64 * 1024;

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let _log = init_logging(args.log_format);
    let file = FileConfig::load(args.common.config.as_deref())?;
    let data_dir = file.data_dir(args.common.data_dir.as_deref());
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    // Held until `serve` returns: a second server on the same data dir would append over
    // records this one acknowledged (issue 7, defect 1).
    let _lock = DataDirLock::acquire(&data_dir)?;
    let mut config = server_config(&file, &args, data_dir)?;
    // Not in `server_config`: it makes DATA_DIR/sasl-secret on first start.
    file.apply_auth(&mut config)?;
    skua_core::store::set_duplicate_window_seconds(file.lmtp.duplicate_window_seconds()?);
    users::ensure_demo_user(
        &config.passwd_path,
        &config.imap_listen,
        &config.imap_tls_listen,
        &config.lmtp_listen,
    )?;
    let tls = load_tls(&file, &config.data_dir)?;
    config.tls = Some(tls.clone());
    // systemd's Type=notify (dist/systemd/skua.service); nothing is sent outside systemd.
    let notifier = Arc::new(notify::Notifier::from_env()?);
    if notifier.is_active() {
        tracing::info!("NOTIFY_SOCKET set: readiness, reloads and stopping go to the manager");
    }
    // Kept until `serve` returns: SIGHUP re-reads the certificate files meanwhile (between
    // RELOADING=1 and READY=1), SIGTERM/SIGINT say STOPPING=1.
    let _signals = notify::ServiceSignals::install(tls, notifier.clone())
        .context("installing the SIGHUP/SIGTERM handlers")?;
    let shutdown = skua_shard::ShutdownHandle::new();
    let _stop = skua_shard::shutdown::install_signal_handlers(&shutdown)?;
    let result = skua_shard::run_with_ready(config, shutdown, || notifier.ready());
    notifier.stopping();
    result.context("server failed")
}

/// The configuration `skua serve` runs with, from its flags, the config file and the
/// defaults; TLS and `[auth]` are left to `load_tls` and `apply_auth` (they may make a
/// certificate and the SCRAM secret: `skua info`, which shows this, must make nothing).
///
/// # Errors
/// A setting of the file is invalid.
fn server_config(
    file: &FileConfig,
    args: &ServeArgs,
    data_dir: PathBuf,
) -> anyhow::Result<skua_shard::ServerConfig> {
    let passwd_file = file.passwd_file(&data_dir);
    let imap_listen =
        pick(args.imap_listen.clone(), file.imap.listen.clone(), config::IMAP_LISTEN_DEFAULT);
    let lmtp_listen =
        pick(args.lmtp_listen.clone(), file.lmtp.tcp_listen(), config::LMTP_LISTEN_DEFAULT);
    let lmtp_unix_listen = file.lmtp.unix_listen()?;
    let imap_tls_listen = if args.no_imaps {
        Vec::new()
    } else {
        let flag = args.imaps_listen.clone();
        pick(flag, file.imap.tls_listen.clone(), config::IMAPS_LISTEN_DEFAULT)
    };
    let shards = match args.shards.or(file.shards) {
        None | Some(0) => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        Some(n) => n,
    };
    let plaintext_always = match file.imap.plaintext_auth.as_deref() {
        None | Some("loopback") => false,
        Some("always") => true,
        Some(other) => anyhow::bail!("imap.plaintext_auth: unknown value {other:?}"),
    };
    let defaults = skua_shard::ServerConfig::default();
    let mut config = skua_shard::ServerConfig {
        data_dir,
        passwd_path: passwd_file,
        imap_listen,
        lmtp_listen,
        lmtp_unix_listen,
        imap_tls_listen,
        tls: None,
        require_tls: file.imap.require_tls.unwrap_or(false),
        admin_contact: file.imap.admin_contact.clone(),
        public_owner: file.imap.public_owner.clone(),
        shards,
        io_memory_bytes: file.io_memory_bytes.unwrap_or(config::IO_MEMORY_BYTES_DEFAULT),
        hostname: file.hostname.clone().unwrap_or_else(|| "localhost".to_owned()),
        lmtp_recipient_by_local_part: file.lmtp.recipient_by_local_part.unwrap_or(true),
        plaintext_auth_always: plaintext_always,
        pin_to_cores: file.pin_cores.unwrap_or(defaults.pin_to_cores),
        connections_per_shard_max: match file.connections_per_shard {
            Some(0) => anyhow::bail!("connections_per_shard must be at least 1"),
            Some(n) => n,
            None => defaults.connections_per_shard_max,
        },
        ..defaults
    };
    file.apply_limits(&mut config)?;
    file.apply_folders(&mut config)?;
    file.apply_quota(&mut config)?;
    file.apply_compaction(&mut config)?;
    file.apply_metrics(&mut config)?;
    Ok(config)
}

/// Loads the `[tls]` certificates, or the self-signed one in the data dir (made on the first
/// start), and prints the self-signed one's fingerprint for clients to pin.
fn load_tls(file: &FileConfig, data_dir: &Path) -> anyhow::Result<Arc<TlsConfigs>> {
    let mut self_signed: Option<SelfSigned> = None;
    let (settings, _) = file.tls_settings(|| {
        let made = tls::selfsigned::ensure(data_dir)?;
        let paths = made.paths.clone();
        self_signed = Some(made);
        Ok(paths)
    })?;
    let configs = TlsConfigs::load(settings).context("loading the TLS certificates")?;
    tracing::info!(
        client_ca = ?configs.settings().client_ca,
        "TLS certificates loaded (SIGHUP reloads them)"
    );
    tls::log_certificates(&configs.current());
    if let Some(made) = self_signed {
        let state = if made.created { "made now" } else { "made earlier" };
        println!(
            "skua: TLS certificate {} (self-signed for localhost, 127.0.0.1, ::1; {state})",
            made.paths.cert.display()
        );
        println!("  SHA-256 fingerprint {}", made.fingerprint);
    }
    Ok(Arc::new(configs))
}

/// An admin tool's outcome as the exit status (its own, or 1 with the error on stderr).
fn tool(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("skua: {error:#}");
        ExitCode::FAILURE
    })
}

/// Flags win over the file, the file over the default.
fn pick(flag: Vec<SocketAddr>, file: Option<Vec<SocketAddr>>, default: &str) -> Vec<SocketAddr> {
    if !flag.is_empty() {
        return flag;
    }
    file.unwrap_or_else(|| vec![default.parse().expect("default listen address is valid")])
}
