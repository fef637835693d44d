//! `skua ipurge` (Cyrus's ipurge: expunge by age or size) and `skua unexpunge` (list and
//! restore expunged messages still in the spool). The request is read into the core
//! operations by `skua_shard::admin_purge` in both modes, so the reports are the same.

use std::num::NonZeroU32;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Args};
use skua_core::store::admin::{ExpungedReport, PurgeReport, RestoreReport};
use skua_core::types::InternalDate;
use skua_shard::admin_proto::{AdminRequest, Op};

use super::examine::{now_unix_seconds, per_user, settings};
use super::{Target, ToolCommon};

/// `skua ipurge`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).multiple(true).args(["days", "size"])))]
pub struct IpurgeArgs {
    /// The users whose mailboxes to purge.
    #[arg(value_name = "USER", required_unless_present = "all")]
    users: Vec<String>,
    /// Purge every user with a store.
    #[arg(long, conflicts_with = "users")]
    all: bool,
    /// Expunge messages whose internal date (arrival) is more than N days old.
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    /// Expunge messages larger than BYTES (a K, M or G suffix counts 1024s).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    size: Option<u64>,
    /// Only this mailbox (default: every mailbox of the user).
    #[arg(long, value_name = "MAILBOX")]
    mailbox: Option<String>,
    /// Report what would be expunged; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    tool: ToolCommon,
}

/// After `skua ipurge --help`.
pub const IPURGE_AFTER_HELP: &str = "\
With both --days and --size, a message goes only when it is both old and large. Expunged
messages are expunged as an IMAP EXPUNGE does: sessions see them go, quota usage drops, and
they stay restorable with `skua unexpunge` for [compaction] retention (default 7 days).";

/// `skua unexpunge`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").required(true).args(["list", "restore", "all_expunged"])))]
pub struct UnexpungeArgs {
    /// The user.
    user: String,
    /// The mailbox (INBOX in any case).
    mailbox: String,
    /// List the expunged messages that can still be restored.
    #[arg(long)]
    list: bool,
    /// Restore these expunged messages (UIDs before the expunge; comma-separated or
    /// repeated). All or none: a UID that cannot be restored is an error and nothing is.
    #[arg(long, value_name = "UID", value_delimiter = ',')]
    restore: Vec<NonZeroU32>,
    /// Restore every expunged message that can still be restored.
    #[arg(long)]
    all_expunged: bool,
    #[command(flatten)]
    tool: ToolCommon,
}

/// After `skua unexpunge --help`.
pub const UNEXPUNGE_AFTER_HELP: &str = "\
An expunged message stays restorable for [compaction] retention after its expunge (default 7
days), then until the compaction of its spool segment takes it. A restored message gets a new
UID (UIDs are never reused) and keeps its flags but \\Deleted, its internal date, EMAILID and
THREADID. A message restored once is not restored again.";

/// `10`, `10K`, `10M`, `1G` (powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1u64 << 10),
        Some((at, 'm' | 'M')) => (&text[..at], 1 << 20),
        Some((at, 'g' | 'G')) => (&text[..at], 1 << 30),
        _ => (text, 1),
    };
    let number: u64 = digits.parse().map_err(|_| format!("{text:?} is not a byte count"))?;
    number.checked_mul(unit).ok_or_else(|| format!("{text:?} is too large"))
}

/// Runs `skua ipurge`.
///
/// # Errors
/// See [`Target::of`]; an unknown user or mailbox; a disk error.
pub fn ipurge(args: &IpurgeArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let policy = settings(&target)?.compaction.policy(now_unix_seconds());
    let request = AdminRequest {
        users: args.users.clone(),
        all: args.all,
        mailbox: args.mailbox.clone(),
        older_than_days: args.days,
        larger_than_bytes: args.size,
        dry_run: args.dry_run,
        ..AdminRequest::new(Op::Ipurge)
    };
    let reports: Vec<PurgeReport> = per_user(&target, &request, |store, user| {
        let value = skua_shard::admin_purge::operate(store, user, &request, &policy)?;
        Ok(serde_json::from_value(value)?)
    })?;
    if args.tool.json {
        println!("{}", serde_json::to_string(&reports)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run { "would expunge" } else { "expunged" };
    for r in &reports {
        println!("{}: {verb} {} messages, {} bytes", r.user, r.messages, r.bytes);
        for m in r.mailboxes.iter().filter(|m| m.messages > 0) {
            println!("  {}: {} messages, {} bytes", m.mailbox, m.messages, m.bytes);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `skua unexpunge`.
///
/// # Errors
/// See [`Target::of`]; an unknown user or mailbox; a UID that cannot be restored.
pub fn unexpunge(args: &UnexpungeArgs) -> anyhow::Result<ExitCode> {
    let target = Target::of(&args.tool.common)?;
    let policy = settings(&target)?.compaction.policy(now_unix_seconds());
    let request = AdminRequest {
        users: vec![args.user.clone()],
        mailbox: Some(args.mailbox.clone()),
        restore: args.restore.iter().map(|uid| uid.get()).collect(),
        restore_all: args.all_expunged,
        ..AdminRequest::new(Op::Unexpunge)
    };
    let mut values: Vec<serde_json::Value> = per_user(&target, &request, |store, user| {
        Ok(skua_shard::admin_purge::operate(store, user, &request, &policy)?)
    })?;
    let value = values.pop().context("no report")?;
    if args.tool.json {
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.list {
        print_list(&serde_json::from_value(value)?);
    } else {
        let r: RestoreReport = serde_json::from_value(value)?;
        println!("{} {}: restored {} messages, {} bytes", r.user, r.mailbox, r.messages, r.bytes);
        for m in &r.restored {
            println!("  UID {} -> UID {} ({} bytes)", m.old_uid, m.new_uid, m.size);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(r: &ExpungedReport) {
    let retention = if r.retention_seconds > 0 && r.retention_seconds.is_multiple_of(86_400) {
        format!("{} days", r.retention_seconds / 86_400)
    } else {
        format!("{} s", r.retention_seconds)
    };
    println!(
        "{} {}: {} expunged messages still on disk (each kept {retention} after its expunge)",
        r.user,
        r.mailbox,
        r.messages.len(),
    );
    if r.messages.is_empty() {
        return;
    }
    println!(
        "  {:>8} {:>10}  {:<26} {:<26} subject",
        "uid", "size", "internal date (UTC)", "expunged (UTC)"
    );
    for m in &r.messages {
        let expunged = m.expunged_at.map_or_else(|| "unknown".to_owned(), utc);
        let restored = m.restored_as.map(|uid| format!(" (restored as UID {uid})"));
        println!(
            "  {:>8} {:>10}  {:<26} {:<26} {}{}",
            m.uid,
            m.size,
            utc(m.internal_date),
            expunged,
            m.subject.as_deref().unwrap_or(""),
            restored.unwrap_or_default()
        );
    }
}

/// Unix seconds as `25-Nov-2026 21:11:49 +0000`.
fn utc(unix_seconds: i64) -> String {
    let mut out = Vec::new();
    let date = InternalDate { unix_seconds, zone_minutes: 0 };
    skua_protocols::imap::encode::internal_date(&mut out, date);
    String::from_utf8_lossy(&out).trim_matches('"').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_suffixes() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("10K"), Ok(10 << 10));
        assert_eq!(parse_bytes("10m"), Ok(10 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("M").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("1.5M").is_err());
        assert!(parse_bytes("17179869184G").is_err(), "2^64 overflows");
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(utc(0), "01-Jan-1970 00:00:00 +0000");
    }
}
