//! `skua check` (Cyrus's chk_cyrus) and `skua reconstruct`.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use skua_core::store::UserStore;
use skua_core::store::admin::{self, CheckReport};
use skua_shard::admin_proto::{AdminRequest, Op};

use super::{Mode, Target, ToolCommon, ask_server, flush_now, progress_bar};

/// `skua check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The users to check.
    #[arg(value_name = "USER", required_unless_present = "all")]
    users: Vec<String>,
    /// Check every user with a store.
    #[arg(long, conflicts_with = "users")]
    all: bool,
    #[command(flatten)]
    tool: ToolCommon,
}

/// After `skua check --help`.
pub const CHECK_AFTER_HELP: &str = "\
Reads every index record and, for each live message, its whole spool record, each against its
checksum; then recounts each mailbox's counters and the quota totals. Changes nothing. With the
server stopped, a store whose files are damaged is not opened (opening repairs); a sound one is
opened for the recount, which after an unclean stop runs the crash recovery the server's next
start would run. With the server running, the check runs on the user's home shard through
DATA_DIR/admin.sock.
Exit status: 0 when nothing was found, 1 when something was found or the check could not run
(the message on stderr says which). `skua reconstruct USER` rebuilds damaged indexes.";

/// Runs `skua check`.
///
/// # Errors
/// No data dir, an unknown user, a server that does not answer, a disk error.
pub fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let reports: Vec<CheckReport> = match &target.mode {
        Mode::Offline { disk, .. } => {
            let users = Target::offline_users(disk, &args.users, args.all, false)?;
            let bar = progress_bar(users.len() as u64);
            let mut reports = Vec::with_capacity(users.len());
            for (user, dir) in users {
                bar.set_message(user.clone());
                let mut report = admin::check_files(&**disk, &dir, &user)
                    .with_context(|| format!("checking {user}"))?;
                if report.is_clean() {
                    let mut store = UserStore::open(disk.clone(), &dir)
                        .with_context(|| format!("opening the store of {user}"))?;
                    store.check_counters(&mut report)?;
                }
                reports.push(report);
                bar.inc(1);
            }
            bar.finish_and_clear();
            flush_now(disk)?;
            reports
        }
        Mode::Online { socket, pid } => {
            let request = AdminRequest {
                users: args.users.clone(),
                all: args.all,
                ..AdminRequest::new(Op::Check)
            };
            serde_json::from_value(ask_server(socket, *pid, &request)?)
                .context("reading the server's report")?
        }
    };
    let clean = reports.iter().all(CheckReport::is_clean);
    if args.tool.json {
        println!("{}", serde_json::to_string(&reports)?);
    } else {
        for report in &reports {
            if report.is_clean() {
                println!(
                    "{}: ok ({} indexes, {} index records, {} spool records verified)",
                    report.user, report.indexes, report.index_records, report.spool_records
                );
            }
            for finding in &report.findings {
                println!("{}: {}: {}", finding.user, finding.file, finding.what);
            }
        }
    }
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `skua reconstruct`.
#[derive(Args, Debug)]
pub struct ReconstructArgs {
    /// The users whose indexes to rebuild.
    #[arg(value_name = "USER", required_unless_present = "all")]
    users: Vec<String>,
    /// Every user with a store.
    #[arg(long, conflicts_with = "users")]
    all: bool,
    /// Report what is damaged (as `skua check` does) and change nothing.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    tool: ToolCommon,
}

/// Runs `skua reconstruct`: refuses a data dir a running server holds (it rewrites the
/// indexes the server has open), and holds the lock itself so that no server starts meanwhile.
///
/// # Errors
/// As [`check`]; a running server.
pub fn reconstruct(args: &ReconstructArgs) -> anyhow::Result<ExitCode> {
    if args.check {
        let check_args =
            CheckArgs { users: args.users.clone(), all: args.all, tool: args.tool.clone() };
        return check(&check_args);
    }
    let target = Target::of(&args.tool.common)?;
    let disk = match &target.mode {
        Mode::Offline { disk, .. } => disk.clone(),
        Mode::Online { socket, pid } => {
            let request = AdminRequest {
                users: args.users.clone(),
                all: args.all,
                ..AdminRequest::new(Op::Reconstruct)
            };
            let holder = pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
            let answer = ask_server(socket, *pid, &request);
            let why = answer.err().map(|e| format!("{e:#}")).unwrap_or_default();
            bail!(
                "data dir {} is in use by a running skua server ({holder}); reconstruct \
                 rewrites the indexes the server holds open: stop the server first ({why})",
                target.data_dir.display()
            );
        }
    };
    let users = Target::offline_users(&disk, &args.users, args.all, false)?;
    let bar = progress_bar(users.len() as u64);
    for (user, _) in users {
        bar.set_message(user.clone());
        // Its report is printed as each user is done: keep the bar off those lines.
        bar.suspend(|| crate::users::reconstruct_on(&disk, &user, args.tool.json))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}
