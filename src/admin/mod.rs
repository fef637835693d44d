//! The operators' tools (issue 11): `skua check`, `reconstruct`, `quota`, `mbpath`,
//! `mbexamine`, `df`, `ipurge`, `unexpunge`, `version --build`, `backup`, `restore`.
//!
//! Each tool works in one of two modes, chosen by the data-dir lock (`skua_core::lock`):
//!
//! ```text
//!  data dir missing ─────────────► error, exit 1
//!  lock free ── take it ─────────► offline: open the stores on an OsDisk, call the operation
//!  lock held by a server ────────► online: ask over <data_dir>/admin.sock; the server runs
//!                                  the same operation on the user's home shard
//! ```
//!
//! The operations themselves are in `skua_core::store::admin`, the socket's protocol in
//! `skua_shard::admin_proto`; this module only picks the mode, shows progress (a bar on a
//! terminal's stderr) and prints the report: `--json` prints it as JSON on stdout, otherwise
//! as text. A wrong data dir, an unknown user or a server that does not answer is an error
//! (exit 1, message on stderr).

mod arbitron;
mod backup;
mod build_info;
mod client;
mod deny;
mod examine;
mod info;
mod mboxlist;
mod purge;
mod restore;
pub(crate) mod stream;
mod verify;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, bail};
use clap::Args;
use skua_core::disk::os::OsDisk;
use skua_core::lock::{DataDirLock, LockError};
use skua_core::store::admin;

use crate::Common;
use crate::config::FileConfig;

pub use arbitron::{ArbitronArgs, run as arbitron};
pub(crate) use backup::now_unix_millis;
pub use backup::{BACKUP_AFTER_HELP, BackupArgs, run as backup};
pub use build_info::{VersionArgs, run as build_version};
pub use deny::{DENY_AFTER_HELP, DenyArgs, run as deny};
pub use examine::{DfArgs, MbExamineArgs, MbPathArgs, QuotaArgs, df, mbexamine, mbpath, quota};
pub use info::{InfoArgs, run as info};
pub use mboxlist::{MboxlistCommand, run as mboxlist};
pub use purge::{
    IPURGE_AFTER_HELP, IpurgeArgs, UNEXPUNGE_AFTER_HELP, UnexpungeArgs, ipurge, unexpunge,
};
pub use restore::{RESTORE_AFTER_HELP, RestoreArgs, run as restore};
pub use verify::{CHECK_AFTER_HELP, CheckArgs, ReconstructArgs, check, reconstruct};

/// Options every admin tool takes.
#[derive(Args, Debug, Clone)]
pub struct ToolCommon {
    #[command(flatten)]
    pub common: Common,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Where a tool does its work.
pub enum Mode {
    /// No server runs: the lock is ours while the tool runs.
    Offline {
        /// Held until the tool ends, so no server starts meanwhile.
        _lock: DataDirLock,
        /// The data dir as the disk root.
        disk: Rc<OsDisk>,
    },
    /// A server holds the data dir: ask it.
    Online {
        /// Its admin socket.
        socket: PathBuf,
        /// Its pid, when the lock says.
        pid: Option<u32>,
    },
}

/// The config, the data dir and the mode for a tool.
pub struct Target {
    /// The config file as loaded (defaults when none).
    pub file: FileConfig,
    /// The data dir.
    pub data_dir: PathBuf,
    /// See [`Mode`].
    pub mode: Mode,
}

impl Target {
    /// Loads the config, checks the data dir exists, and picks the mode.
    ///
    /// # Errors
    /// The config cannot be read, the data dir does not exist, or the lock cannot be taken.
    pub fn of(common: &Common) -> anyhow::Result<Target> {
        let (file, data_dir) = data_dir_of(common)?;
        let mode = match DataDirLock::acquire(&data_dir) {
            Ok(lock) => {
                let disk = OsDisk::new(&data_dir)
                    .with_context(|| format!("opening {}", data_dir.display()))?;
                Mode::Offline { _lock: lock, disk: Rc::new(disk) }
            }
            Err(LockError::Held { pid, .. }) => Mode::Online {
                socket: data_dir.join(skua_shard::admin_proto::ADMIN_SOCKET_FILE),
                pid,
            },
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("locking the data dir {}", data_dir.display())));
            }
        };
        Ok(Target { file, data_dir, mode })
    }

    /// The users a tool works on, offline: every user with a store for `all` (or when none
    /// are named and `empty_means_all`), else the names given, each of which must have one.
    ///
    /// # Errors
    /// A user without a store, or the disk failed.
    pub fn offline_users(
        disk: &OsDisk,
        users: &[String],
        all: bool,
        empty_means_all: bool,
    ) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let names = if all || (users.is_empty() && empty_means_all) {
            admin::store_users(disk)?
        } else if users.is_empty() {
            bail!("no users given (name users, or give --all)");
        } else {
            users.to_vec()
        };
        names
            .into_iter()
            .map(|user| {
                let dir = admin::existing_store_dir(disk, &user)?;
                let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or(&user).to_owned();
                Ok((name, dir))
            })
            .collect()
    }
}

/// The config and the data dir, which must exist.
///
/// # Errors
/// The config cannot be read, or the data dir is not a directory.
pub fn data_dir_of(common: &Common) -> anyhow::Result<(FileConfig, PathBuf)> {
    let file = FileConfig::load(common.config.as_deref())?;
    let data_dir = file.data_dir(common.data_dir.as_deref());
    require_data_dir(&data_dir)?;
    Ok((file, data_dir))
}

/// An error unless `data_dir` is a directory.
///
/// # Errors
/// It is missing or not a directory.
pub fn require_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(data_dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("data dir {} is not a directory", data_dir.display()),
        Err(error) => bail!(
            "data dir {} cannot be used: {error} (give --data-dir, or data_dir in --config)",
            data_dir.display()
        ),
    }
}

/// A progress bar over `total` users on stderr, drawn only when stderr is a terminal.
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || total < 2 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} users  {msg}")
        .expect("a valid template");
    bar.set_style(style);
    bar
}

/// Runs one flush round in place (an offline tool has no group-commit driver), so whatever
/// opening a store wrote is durable before the tool says it is done.
pub(crate) fn flush_now(disk: &OsDisk) -> anyhow::Result<()> {
    use skua_core::disk::{Disk, Flush};
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().context("flushing")?;
        disk.flush_end(epoch);
    }
    Ok(())
}

/// Asks a running server and returns its report, showing its progress on a bar; `what` names
/// the tool in messages.
///
/// # Errors
/// The server does not answer, or answered an error.
fn ask_server(
    socket: &Path,
    pid: Option<u32>,
    request: &skua_shard::admin_proto::AdminRequest,
) -> anyhow::Result<serde_json::Value> {
    let mut bar: Option<indicatif::ProgressBar> = None;
    let answer = client::ask(socket, request, &mut |progress| {
        let bar = bar.get_or_insert_with(|| progress_bar(progress.total));
        bar.set_position(progress.done);
        bar.set_message(progress.user.clone());
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    server_answer(answer, socket, pid)
}

/// A server's answer as the tool's result: its report, or an error naming the server.
///
/// # Errors
/// The server refused, or did not answer.
pub(crate) fn server_answer(
    answer: anyhow::Result<Result<serde_json::Value, skua_shard::admin_proto::ErrorReply>>,
    socket: &Path,
    pid: Option<u32>,
) -> anyhow::Result<serde_json::Value> {
    let server =
        pid.map_or_else(|| "a skua server".to_owned(), |p| format!("the skua server (pid {p})"));
    match answer {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => bail!("{server}: {} ({})", error.message, error.kind),
        Err(error) => Err(error.context(format!(
            "the data dir is in use by {server}, which did not answer on its admin socket {}",
            socket.display()
        ))),
    }
}
