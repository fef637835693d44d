//! `skua backup USER --to FILE`: appends a snapshot of the user's store to an archive
//! (`skua_core::backup`, `core/FORMAT.md`, "Backup archives").
//!
//! The archive is written here, by the CLI, in both modes: offline the snapshot is read from
//! the store directly (`UserStore::backup_begin`), online the server streams it over the
//! admin socket (`skua_shard::admin_proto`, frames) and this process decodes it. Either way
//! the records go through the same [`Appender`], which writes a body only when the archive
//! does not hold its SHA-256 yet.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use skua_core::backup::{Appender, ArchiveError, Record, Scan, SnapshotEnd};
use skua_core::store::UserStore;
use skua_core::store::admin;
use skua_shard::admin_proto::{AdminRequest, Op};

use super::{Mode, Target, ToolCommon, flush_now};

/// `skua backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The user.
    user: String,
    /// The archive: made if missing, else the snapshot is appended to it.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    #[command(flatten)]
    tool: ToolCommon,
}

/// After `skua backup --help`.
pub const BACKUP_AFTER_HELP: &str = "\
Each run appends one snapshot: every mailbox (name, UIDVALIDITY, UIDNEXT, special-use, ACL,
keywords), the subscriptions, every message's UID, flags, keywords, internal date and size,
and the bodies whose SHA-256 the archive does not hold yet. Every body of the store is read
and hashed; only new ones are written. The server may be running (the snapshot is taken on
the user's home shard, and compaction of that store waits until it is read) or stopped.
Restore with `skua restore FILE --user USER`.";

/// What a backup added (the same online and offline: the archive is written here).
#[derive(Debug, serde::Serialize)]
struct BackupReport {
    user: String,
    archive: String,
    /// The snapshot's number in the archive, from 1.
    snapshot: u32,
    snapshot_unix_millis: i64,
    mailboxes: u32,
    messages: u32,
    /// Bodies written (new to the archive).
    bodies_added: u32,
    body_bytes_added: u64,
    /// Archive bytes this snapshot took.
    archive_bytes_added: u64,
    /// Archive size afterwards.
    archive_bytes: u64,
}

/// An archive opened for appending: locked, scanned, an interrupted tail cut off.
struct Opened {
    file: File,
    scan: Option<Scan>,
}

/// Opens (or makes) the archive at `path` for a new snapshot.
fn open_archive(path: &Path) -> anyhow::Result<Opened> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!("{} is being written by another skua backup", path.display())
    })?;
    if file.metadata()?.len() == 0 {
        return Ok(Opened { file, scan: None });
    }
    let scan =
        Scan::read(BufReader::new(&file)).with_context(|| format!("reading {}", path.display()))?;
    match &scan.damage {
        None => {}
        Some(ArchiveError::Truncated(what)) => {
            eprintln!(
                "skua: {} ends inside a {what} (an interrupted backup): cut back to byte {}",
                path.display(),
                scan.usable_bytes
            );
            file.set_len(scan.usable_bytes)?;
        }
        Some(damage) => bail!(
            "{} is damaged ({damage}); its {} snapshot(s) before the damage can be restored, \
             but nothing is appended to it: back up to a new file",
            path.display(),
            scan.snapshots.len()
        ),
    }
    Ok(Opened { file, scan: Some(scan) })
}

/// Unix milliseconds now.
pub(crate) fn now_unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A bar over a snapshot's messages on stderr, drawn only on a terminal.
pub(super) fn message_bar() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} messages  {msg}")
        .expect("a valid template");
    bar.set_style(style);
    bar
}

/// Runs `skua backup`.
///
/// # Errors
/// See [`Target::of`]; an unknown user; an archive that cannot be written or is damaged; a
/// server that does not answer.
pub fn run(args: &BackupArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let opened = open_archive(&args.to)?;
    let start_at = opened.scan.as_ref().map_or(0, |scan| scan.usable_bytes);
    let number = opened.scan.as_ref().map_or(0, |scan| scan.snapshots.len() as u32) + 1;
    let mut out = BufWriter::new(&opened.file);
    out.seek(SeekFrom::Start(start_at))?;
    let mut appender = Appender::new(out, opened.scan.as_ref(), now_unix_millis())?;
    let bar = message_bar();
    let mut start = None;
    let mut end: Option<SnapshotEnd> = None;
    let mut push = |record: &Record| -> anyhow::Result<()> {
        match record {
            Record::Start(s) => {
                bar.set_length(u64::from(s.messages));
                start = Some(s.clone());
            }
            Record::Body { .. } => bar.inc(1),
            _ => {}
        }
        end = end.or(appender.push(record)?);
        Ok(())
    };
    match &target.mode {
        Mode::Offline { disk, .. } => {
            let dir = admin::existing_store_dir(&**disk, &args.user)?;
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or(&args.user).to_owned();
            let store = UserStore::open(disk.clone(), &dir)
                .with_context(|| format!("opening the store of {name}"))?;
            let mut source = store.backup_begin(&name, now_unix_millis());
            while !source.is_done() {
                for record in source.next_records(&store, 1 << 20)? {
                    push(&record)?;
                }
            }
            drop(source);
            drop(store);
            flush_now(disk)?;
        }
        Mode::Online { socket, pid } => {
            let request =
                AdminRequest { users: vec![args.user.clone()], ..AdminRequest::new(Op::Backup) };
            let answer = super::stream::receive(socket, &request, &mut push);
            super::server_answer(answer, socket, *pid)?;
        }
    }
    bar.finish_and_clear();
    let (Some(start), Some(end)) = (start, end) else {
        bail!("the snapshot ended before its end record");
    };
    let written = appender.written();
    let out = appender.into_inner();
    out.into_inner().map_err(|e| e.into_error())?.sync_all().context("syncing the archive")?;
    let report = BackupReport {
        user: start.user,
        archive: args.to.display().to_string(),
        snapshot: number,
        snapshot_unix_millis: start.time_unix_millis,
        mailboxes: start.mailboxes,
        messages: end.messages,
        bodies_added: end.bodies,
        body_bytes_added: end.body_bytes,
        archive_bytes_added: written - start_at,
        archive_bytes: written,
    };
    if args.tool.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: snapshot {} of {} ({} mailboxes, {} messages): {} new bodies ({} bytes), \
             {} bytes added, archive now {} bytes",
            report.archive,
            report.snapshot,
            report.user,
            report.mailboxes,
            report.messages,
            report.bodies_added,
            report.body_bytes_added,
            report.archive_bytes_added,
            report.archive_bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}
