//! `skua arbitron` (Cyrus's `arbitron`): the readers of each user's shared mailboxes
//! (`skua_core::store::admin::arbitron`).

use std::process::ExitCode;

use clap::Args;
use skua_core::store::admin::ArbitronReport;
use skua_shard::admin_proto::{AdminRequest, Op};

use super::examine::per_user;
use super::{Target, ToolCommon};

/// `skua arbitron`.
#[derive(Args, Debug)]
pub struct ArbitronArgs {
    /// The users whose shared mailboxes to report (default: every user with a store).
    #[arg(value_name = "USER")]
    users: Vec<String>,
    /// Every user with a store.
    #[arg(long, conflicts_with = "users")]
    all: bool,
    /// Only readers active in the last N days. skua records no time of a reader's marks, so
    /// this filters nothing: every reader is listed, and the tool says so.
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    #[command(flatten)]
    tool: ToolCommon,
}

/// Runs `skua arbitron`.
///
/// # Errors
/// See [`Target::of`]; an unknown user; a server that does not answer.
pub fn run(args: &ArbitronArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let mut request = AdminRequest::new(Op::Arbitron);
    request.users.clone_from(&args.users);
    request.all = args.all;
    request.days = args.days;
    let public = target.file.imap.public_owner.clone();
    let reports: Vec<ArbitronReport> = per_user(&target, &request, |store, user| {
        let is_public = public.as_deref().is_some_and(|p| p.eq_ignore_ascii_case(user));
        Ok(store.arbitron(user, is_public)?)
    })?;
    if let Some(days) = args.days
        && reports.iter().all(|r| !r.read_times)
    {
        eprintln!(
            "skua: no reader's time of reading is recorded, so --days {days} cannot filter: \
             every reader with a \\Seen mark is listed"
        );
    }
    if args.tool.json {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    for mailbox in reports.iter().flat_map(|r| &r.mailboxes) {
        let readers: Vec<String> = mailbox
            .readers
            .iter()
            .map(|r| format!("{} ({} seen)", r.reader, r.seen_messages))
            .collect();
        println!(
            "{} {:?}: acl {}; {} readers: {}",
            mailbox.owner,
            mailbox.mailbox,
            mailbox.acl_identifiers.join(" "),
            mailbox.readers.len(),
            readers.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
