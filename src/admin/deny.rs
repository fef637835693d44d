//! `skua deny` (Cyrus's `cyr_deny`): shut users out of IMAP (and, when asked, LMTP delivery)
//! whatever their password, let them in again, list who is shut out.
//!
//! The list is `DATA_DIR/deny.list` (`skua_core::deny`, `core/FORMAT.md`). With the server
//! stopped the tool changes the file itself under the data-dir lock; with it running, it asks
//! the server (op `deny`, `deny-allow`, `deny-list`), which writes the file and puts the new
//! list in force on every shard before it answers (`skua_shard::deny`).

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use skua_core::deny::{self, DenyEntry};
use skua_shard::admin_proto::{AdminRequest, Op, parse_request};
use skua_shard::deny::{change_of, is_known};

use super::{Mode, Target, ToolCommon, ask_server};

/// After `skua deny --help`.
pub const DENY_AFTER_HELP: &str = "\
Services: imap (every IMAP login: LOGIN, AUTHENTICATE with any mechanism, master users
logging in as the user) and lmtp (delivery: RCPT answered 550 5.2.1, and the socketmap's
quota look-up answers the same, so Postfix refuses at its own RCPT). Default: imap only, as
denying lmtp bounces the user's mail. A user already logged in over IMAP is sent
`* BYE [CONTACTADMIN]` at their next command. The list survives restarts.";

/// `skua deny`.
#[derive(Args, Debug)]
pub struct DenyArgs {
    /// The users to deny (with `--allow`: to let in again).
    #[arg(value_name = "USER")]
    users: Vec<String>,
    /// Let the users in again.
    #[arg(long, conflicts_with_all = ["list", "services", "message"])]
    allow: bool,
    /// Print the deny list.
    #[arg(long, conflicts_with_all = ["services", "message"])]
    list: bool,
    /// What to refuse, comma-separated: imap, lmtp (default: imap). Replaces what an earlier
    /// `skua deny` of the user refused.
    #[arg(long, value_delimiter = ',', value_name = "SERVICE,...")]
    services: Vec<String>,
    /// What the user is told (printable ASCII, at most 200 bytes; default: "Access disabled;
    /// contact your administrator").
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
    #[command(flatten)]
    tool: ToolCommon,
}

/// The request the arguments make, checked as the server checks it.
fn request_of(args: &DenyArgs) -> anyhow::Result<AdminRequest> {
    let op = match (args.allow, args.list) {
        (true, _) => Op::DenyAllow,
        (_, true) => Op::DenyList,
        _ => Op::Deny,
    };
    let mut request = AdminRequest::new(op);
    request.users.clone_from(&args.users);
    request.services.clone_from(&args.services);
    request.message.clone_from(&args.message);
    // The same checks in both modes: the server's own parser.
    let line = serde_json::to_vec(&request)?;
    if let Err(error) = parse_request(&line) {
        bail!("{}", error.message);
    }
    Ok(request)
}

/// Runs `skua deny`.
///
/// # Errors
/// See [`Target::of`]; bad arguments; an unknown user; lifting a user who is not denied; a
/// deny list that does not parse; a server that does not answer.
pub fn run(args: &DenyArgs) -> anyhow::Result<ExitCode> {
    let request = request_of(args)?;
    let target = Target::of(&args.tool.common)?;
    let entries: Vec<DenyEntry> = match &target.mode {
        Mode::Offline { .. } => {
            let change = change_of(&request).map_err(|e| anyhow::anyhow!(e.message))?;
            let passwd = target.file.passwd_file(&target.data_dir);
            let users = if passwd.is_file() {
                Some(skua_core::users::UserDb::load(&passwd)?)
            } else {
                None
            };
            let known = |user: &str| {
                let in_passwd = users.as_ref().is_some_and(|db| db.lookup(user).is_some());
                is_known(&target.data_dir, user, in_passwd)
            };
            deny::change(&target.data_dir, &change, known)?.1
        }
        Mode::Online { socket, pid } => {
            serde_json::from_value(ask_server(socket, *pid, &request)?)?
        }
    };
    if args.tool.json {
        println!("{}", serde_json::to_string(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if request.op == Op::DenyList && entries.is_empty() {
        eprintln!("skua: nobody is denied");
    }
    for entry in &entries {
        let services: Vec<&str> = entry.services.iter().map(|s| s.name()).collect();
        let services = services.join(",");
        match request.op {
            Op::DenyAllow => println!("{}: allowed again (was denied {services})", entry.user),
            Op::DenyList => println!("{}\t{services}\t{}", entry.user, entry.message_or_default()),
            _ => println!("{}: denied {services}: {}", entry.user, entry.message_or_default()),
        }
    }
    Ok(ExitCode::SUCCESS)
}
