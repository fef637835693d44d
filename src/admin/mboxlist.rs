//! `skua mboxlist dump|undump` (Cyrus's `ctl_mboxlist -d / -u`): every mailbox of every user
//! as JSON lines, and the mailboxes of such a dump made where they do not exist
//! (`skua_core::store::admin::mboxlist`).
//!
//! Undump goes user by user, in one request each when the server runs: the admin socket's
//! request line is bounded ([`ADMIN_REQUEST_BYTES_MAX`]), and a user whose lines do not fit
//! is refused before anything is sent (undump them with the server stopped).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use skua_core::paths::{UserName, user_dir};
use skua_core::store::UserStore;
use skua_core::store::admin::{MailboxLine, UndumpReport, grantees};
use skua_shard::admin_proto::{AdminRequest, Op};
use skua_shard::limits::ADMIN_REQUEST_BYTES_MAX;

use super::examine::per_user;
use super::{Mode, Target, ToolCommon, ask_server, flush_now};

/// `skua mboxlist`.
#[derive(Subcommand, Debug)]
pub enum MboxlistCommand {
    /// Print every mailbox of the users, one JSON object per line (name, id, uidvalidity,
    /// uidnext, highestmodseq, messages, ACL, special-use, subscribed).
    Dump(DumpArgs),
    /// Make the mailboxes a dump lists that do not exist (with their special-use, ACL and
    /// subscription); existing ones are left alone. No messages are copied.
    Undump(UndumpArgs),
}

/// `skua mboxlist dump`.
#[derive(Args, Debug)]
pub struct DumpArgs {
    /// The users (default: every user with a store).
    #[arg(value_name = "USER")]
    users: Vec<String>,
    /// Every user with a store.
    #[arg(long, conflicts_with = "users")]
    all: bool,
    #[command(flatten)]
    tool: ToolCommon,
}

/// `skua mboxlist undump`.
#[derive(Args, Debug)]
pub struct UndumpArgs {
    /// The dump (default or `-`: stdin).
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Say what would be made, and make nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    tool: ToolCommon,
}

/// Runs `skua mboxlist`.
///
/// # Errors
/// See [`Target::of`]; an unknown user; a dump line that does not parse or cannot be made;
/// a server that does not answer.
pub fn run(command: &MboxlistCommand) -> anyhow::Result<ExitCode> {
    match command {
        MboxlistCommand::Dump(args) => dump(args),
        MboxlistCommand::Undump(args) => undump(args),
    }
}

fn dump(args: &DumpArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let mut request = AdminRequest::new(Op::MboxlistDump);
    request.users.clone_from(&args.users);
    request.all = args.all;
    let users: Vec<Vec<MailboxLine>> =
        per_user(&target, &request, |store, user| Ok(store.mboxlist_dump(user)))?;
    let lines: Vec<MailboxLine> = users.into_iter().flatten().collect();
    if args.tool.json {
        println!("{}", serde_json::to_string(&lines)?);
    } else {
        for line in &lines {
            println!("{}", serde_json::to_string(line)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The dump's lines, by user (lowercased), each user's in the dump's order.
fn read_dump(file: Option<&PathBuf>) -> anyhow::Result<BTreeMap<String, Vec<MailboxLine>>> {
    let reader: Box<dyn BufRead> = match file {
        Some(path) if path.as_os_str() != "-" => Box::new(BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        _ => Box::new(BufReader::new(std::io::stdin())),
    };
    let mut users: BTreeMap<String, Vec<MailboxLine>> = BTreeMap::new();
    for (number, text) in reader.lines().enumerate() {
        let text = text.context("reading the dump")?;
        if text.trim().is_empty() {
            continue;
        }
        let line: MailboxLine = serde_json::from_str(&text)
            .with_context(|| format!("dump line {}: not a mailbox line", number + 1))?;
        users.entry(line.user.to_ascii_lowercase()).or_default().push(line);
    }
    Ok(users)
}

fn undump(args: &UndumpArgs) -> anyhow::Result<ExitCode> {
    let users = read_dump(args.file.as_ref())?;
    let target = Target::of(&args.tool.common)?;
    let mut reports = Vec::with_capacity(users.len());
    for (user, lines) in users {
        let report = match &target.mode {
            Mode::Offline { disk, .. } => {
                undump_offline(&target, disk, &user, &lines, args.dry_run)?
            }
            Mode::Online { socket, pid } => {
                let mut request = AdminRequest::new(Op::MboxlistUndump);
                request.users = vec![user.clone()];
                request.lines = lines;
                request.dry_run = args.dry_run;
                let bytes = serde_json::to_vec(&request)?.len();
                if bytes > ADMIN_REQUEST_BYTES_MAX {
                    bail!(
                        "the dump's lines of {user} take {bytes} bytes, more than a request to a \
                         running server may ({ADMIN_REQUEST_BYTES_MAX}); stop the server and \
                         undump again (users before {user} are done)"
                    );
                }
                serde_json::from_value(ask_server(socket, *pid, &request)?)?
            }
        };
        reports.push(report);
    }
    if args.tool.json {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &reports {
        let made: Vec<&str> = r.created.iter().map(|l| l.mailbox.as_str()).collect();
        let verb = if r.dry_run { "would create" } else { "created" };
        println!(
            "{}: {verb} {} ({}); {} existing left alone",
            r.user,
            made.len(),
            made.join(", "),
            r.existing.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One user's undump with the server stopped: the grant notes first (durable), then the
/// owner's mailboxes, as the server orders them (`skua_shard` `admin_mboxlist.rs`).
fn undump_offline(
    target: &Target,
    disk: &std::rc::Rc<skua_core::disk::os::OsDisk>,
    user: &str,
    lines: &[MailboxLine],
    dry_run: bool,
) -> anyhow::Result<UndumpReport> {
    let passwd = target.file.passwd_file(&target.data_dir);
    let db = if passwd.is_file() { Some(skua_core::users::UserDb::load(&passwd)?) } else { None };
    let in_passwd = db.as_ref().is_some_and(|db| db.lookup(user).is_some());
    if !skua_shard::deny::is_known(&target.data_dir, user, in_passwd) {
        bail!("user {user} is unknown (not in the passwd-file, no store)");
    }
    let name = UserName::new(user).map_err(|e| anyhow::anyhow!("user {user}: {e}"))?;
    if dry_run && !skua_shard::deny::is_known(&target.data_dir, user, false) {
        return Ok(skua_core::store::admin::undump_dry_without_store(user, lines)?);
    }
    if !dry_run {
        for (grantee, owners) in grantees(lines) {
            let Ok(grantee_name) = UserName::new(&grantee) else { continue };
            let grantee_in_passwd = db.as_ref().is_some_and(|db| db.lookup(&grantee).is_some());
            if grantee == name.as_str()
                || !skua_shard::deny::is_known(&target.data_dir, &grantee, grantee_in_passwd)
            {
                continue;
            }
            let mut store = UserStore::open(disk.clone(), &user_dir(&grantee_name))
                .with_context(|| format!("opening the store of {grantee}"))?;
            for owner in owners {
                store.note_grant(&owner)?;
            }
        }
        flush_now(disk)?;
    }
    let mut store = UserStore::open(disk.clone(), &user_dir(&name))
        .with_context(|| format!("opening the store of {user}"))?;
    let report = store.mboxlist_undump(user, lines, dry_run)?;
    flush_now(disk)?;
    Ok(report)
}
