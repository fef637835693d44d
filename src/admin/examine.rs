//! `skua quota`, `skua mbpath`, `skua mbexamine` and `skua df`: reports read from a store.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use skua_core::store::UserStore;
use skua_core::store::admin::{self, ExamineReport, QuotaReport, UsageReport};
use skua_shard::admin_proto::{AdminRequest, Op};

use super::{Mode, Target, ToolCommon, ask_server, flush_now, progress_bar};

/// `skua quota`.
#[derive(Args, Debug)]
pub struct QuotaArgs {
    /// The users (default: every user with a store).
    #[arg(value_name = "USER")]
    users: Vec<String>,
    /// Recount usage from every index record and correct the counters. With the server
    /// stopped the counters are recounted as each store opens; a running server whose
    /// counters differ from the recount refuses (restart it).
    #[arg(long)]
    fix: bool,
    #[command(flatten)]
    tool: ToolCommon,
}

/// `skua mbpath`.
#[derive(Args, Debug)]
pub struct MbPathArgs {
    /// The user.
    user: String,
    #[command(flatten)]
    tool: ToolCommon,
}

/// `skua mbexamine`.
#[derive(Args, Debug)]
pub struct MbExamineArgs {
    /// The user.
    user: String,
    /// The mailbox (INBOX in any case).
    mailbox: String,
    #[command(flatten)]
    tool: ToolCommon,
}

/// `skua df`.
#[derive(Args, Debug)]
pub struct DfArgs {
    /// The users (default: every user with a store).
    #[arg(value_name = "USER")]
    users: Vec<String>,
    #[command(flatten)]
    tool: ToolCommon,
}

/// The server settings the tools need from the config file (quota and compaction), as
/// `skua serve` would apply them.
fn settings(target: &Target) -> anyhow::Result<skua_shard::ServerConfig> {
    let mut config = skua_shard::ServerConfig::default();
    target.file.apply_quota(&mut config)?;
    target.file.apply_compaction(&mut config)?;
    Ok(config)
}

/// Unix seconds now.
fn now_unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs `op` on each user's store offline (opened, then dropped), or asks the server.
pub(super) fn per_user<T: serde::de::DeserializeOwned>(
    target: &Target,
    request: &AdminRequest,
    mut op: impl FnMut(&mut UserStore<skua_core::disk::os::OsDisk>, &str) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    match &target.mode {
        Mode::Offline { disk, .. } => {
            let users = Target::offline_users(disk, &request.users, request.all, true)?;
            let bar = progress_bar(users.len() as u64);
            let mut reports = Vec::with_capacity(users.len());
            for (user, dir) in users {
                bar.set_message(user.clone());
                let mut store = UserStore::open(disk.clone(), &dir)
                    .with_context(|| format!("opening the store of {user}"))?;
                reports.push(op(&mut store, &user)?);
                bar.inc(1);
            }
            bar.finish_and_clear();
            flush_now(disk)?;
            Ok(reports)
        }
        Mode::Online { socket, pid } => {
            let value = ask_server(socket, *pid, request)?;
            if request.op == Op::Examine {
                return Ok(vec![serde_json::from_value(value)?]);
            }
            Ok(serde_json::from_value(value)?)
        }
    }
}

fn request(op: Op, users: &[String]) -> AdminRequest {
    let mut request = AdminRequest::new(op);
    request.users = users.to_vec();
    request
}

fn limit(value: Option<u64>) -> String {
    value.map_or_else(|| "unlimited".to_owned(), |v| v.to_string())
}

/// Runs `skua quota`.
///
/// # Errors
/// See [`Target::of`]; an unknown user; a server that does not answer or refuses `--fix`.
pub fn quota(args: &QuotaArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let config = settings(&target)?;
    let passwd = target.file.passwd_file(&target.data_dir);
    let users_db =
        if passwd.is_file() { Some(skua_core::users::UserDb::load(&passwd)?) } else { None };
    let mut request = request(Op::Quota, &args.users);
    request.fix = args.fix;
    let reports: Vec<QuotaReport> = per_user(&target, &request, |store, user| {
        let given = users_db
            .as_ref()
            .and_then(|db| db.lookup(user))
            .map_or(config.quota_default, |entry| entry.quota().over(config.quota_default));
        store.set_default_quota(given);
        Ok(store.quota_report(user)?)
    })?;
    if args.tool.json {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &reports {
        println!(
            "{}: storage {} KiB of {} KiB, messages {} of {}, mailboxes {} of {} (limits {})",
            r.user,
            r.storage_bytes.div_ceil(1024),
            limit(r.limit_storage_kib),
            r.messages,
            limit(r.limit_messages),
            r.mailboxes,
            limit(r.limit_mailboxes),
            r.limits_from
        );
        if !r.counters_exact() {
            println!(
                "{}: counters differ from a recount: {} bytes, {} messages",
                r.user, r.recount_storage_bytes, r.recount_messages
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `skua mbpath`: where the user's store is (the same in both modes: nothing is read).
///
/// # Errors
/// No data dir, or the user has no store.
pub fn mbpath(args: &MbPathArgs) -> anyhow::Result<ExitCode> {
    let (_, data_dir) = super::data_dir_of(&args.tool.common)?;
    let disk = skua_core::disk::os::OsDisk::new(&data_dir)
        .with_context(|| format!("opening {}", data_dir.display()))?;
    let dir = data_dir.join(admin::existing_store_dir(&disk, &args.user)?);
    if args.tool.json {
        let value = serde_json::json!({ "user": args.user, "path": dir });
        println!("{value}");
    } else {
        println!("{}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `skua mbexamine`.
///
/// # Errors
/// See [`Target::of`]; an unknown user or mailbox.
pub fn mbexamine(args: &MbExamineArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let mut request = request(Op::Examine, std::slice::from_ref(&args.user));
    request.mailbox = Some(args.mailbox.clone());
    let mut reports: Vec<ExamineReport> =
        per_user(&target, &request, |store, user| Ok(store.examine(user, &args.mailbox)?))?;
    let report = reports.pop().context("no report")?;
    if args.tool.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let r = &report;
    println!("user {} mailbox {} (id {})", r.user, r.mailbox, r.id);
    println!(
        "  uidvalidity {}  uidnext {}  highestmodseq {}",
        r.uid_validity, r.uid_next, r.highest_modseq
    );
    println!(
        "  messages {}  unseen {}  deleted {}  size {} bytes",
        r.messages, r.unseen, r.deleted, r.size_bytes
    );
    println!(
        "  first recent uid {}  checkpoint {}:{}  sealed {}",
        r.first_recent_uid, r.checkpoint_segment, r.checkpoint_offset, r.sealed
    );
    println!("  keywords {}", r.keywords.join(" "));
    println!("  {:>8} {:>10} {:>8} {:>12} {:>20}  flags", "uid", "modseq", "size", "date", "spool");
    for m in &r.records {
        let state = if m.expunged { " (expunged)" } else { "" };
        println!(
            "  {:>8} {:>10} {:>8} {:>12} {:>9}:{:<10}  {}{state}",
            m.uid,
            m.modseq,
            m.size,
            m.internal_date,
            m.segment,
            m.offset,
            m.flags.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `skua df`.
///
/// # Errors
/// See [`Target::of`]; an unknown user.
pub fn df(args: &DfArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let policy = settings(&target)?.compaction.policy(now_unix_seconds());
    let reports: Vec<UsageReport> =
        per_user(&target, &request(Op::Df, &args.users), |store, user| {
            Ok(store.usage_report(user, &policy)?)
        })?;
    let mut total = UsageReport { user: "total".to_owned(), ..UsageReport::default() };
    for r in &reports {
        total.spool_bytes += r.spool_bytes;
        total.live_bytes += r.live_bytes;
        total.retained_bytes += r.retained_bytes;
        total.index_bytes += r.index_bytes;
        total.other_bytes += r.other_bytes;
        total.total_bytes += r.total_bytes;
        total.messages += r.messages;
        total.mailboxes += r.mailboxes;
    }
    if args.tool.json {
        let value = serde_json::json!({ "users": reports, "total": total });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:>14} {:>14} {:>14} {:>12} {:>12} {:>10}",
        "user", "total", "spool", "live", "retained", "index", "messages"
    );
    for r in reports.iter().chain(std::iter::once(&total)) {
        println!(
            "{:<24} {:>14} {:>14} {:>14} {:>12} {:>12} {:>10}",
            r.user,
            r.total_bytes,
            r.spool_bytes,
            r.live_bytes,
            r.retained_bytes,
            r.index_bytes,
            r.messages
        );
    }
    Ok(ExitCode::SUCCESS)
}
