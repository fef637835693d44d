//! `skua restore FILE --user USER [--at TIME] [--list] [--mailbox M] [--to-user OTHER]`:
//! writes one snapshot of a backup archive back into a store (`skua_protocols::restore`).
//!
//! The archive is read here, by the CLI, in both modes: offline the records of the chosen
//! snapshot (`skua_core::backup::replay`, every body inline) go straight to a `Restorer` on
//! the store; online they are sent as frames over the admin socket and the server runs the
//! same `Restorer` on the user's home shard. The report is the same either way.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use skua_core::backup::{ArchiveError, Record, Scan, SnapshotInfo, replay};
use skua_core::store::UserStore;
use skua_protocols::imap::parser::date::{civil_from_days, days_from_civil};
use skua_protocols::restore::Restorer;
use skua_shard::admin_proto::{AdminRequest, Op, RestoreReport};

use super::backup::{message_bar, now_unix_millis};
use super::{Mode, Target, ToolCommon, flush_now};

/// `skua restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The archive (`skua backup --to FILE`).
    file: PathBuf,
    /// Whose snapshots to use (required unless --list).
    #[arg(long)]
    user: Option<String>,
    /// The last snapshot taken at or before this time: unix seconds, or RFC 3339 such as
    /// 2026-12-07T10:00:00Z (default: the last snapshot).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// List the archive's snapshots (of --user, if given) and restore nothing.
    #[arg(long)]
    list: bool,
    /// Restore only this mailbox.
    #[arg(long, value_name = "MAILBOX")]
    mailbox: Option<String>,
    /// Restore into this user's store instead (must be in the passwd-file).
    #[arg(long, value_name = "USER")]
    to_user: Option<String>,
    #[command(flatten)]
    tool: ToolCommon,
}

/// After `skua restore --help`.
pub const RESTORE_AFTER_HELP: &str = "\
Mailboxes of the snapshot that the target lacks are made (with their special-use attributes
and ACL entries) and its subscriptions added; each message is appended to its mailbox unless
that mailbox already holds the same bytes (SHA-256), with its flags, keywords and internal
date, keeping its UID where the mailbox never had that UID or a larger one. Nothing is
removed or changed, so running a restore again changes nothing. UIDVALIDITY is the target's.
Works with the server running (through its admin socket) or stopped. A damaged archive is
read up to the damage: the snapshots before it can be restored.";

/// Runs `skua restore`.
///
/// # Errors
/// The archive cannot be read; no snapshot matches; an unknown target user; the store or the
/// server failed.
pub fn run(args: &RestoreArgs) -> anyhow::Result<ExitCode> {
    let file =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let scan = Scan::read(BufReader::new(&file))
        .with_context(|| format!("reading {}", args.file.display()))?;
    if let Some(damage) = &scan.damage {
        eprintln!(
            "skua: {} is damaged or cut short after snapshot {} ({damage}); the snapshots \
             before it are usable",
            args.file.display(),
            scan.snapshots.len()
        );
    }
    if args.list {
        return list(args, &scan);
    }
    let Some(user) = &args.user else { bail!("give --user (whose snapshot to restore)") };
    let at = args.at.as_deref().map(parse_time).transpose()?;
    let Some(snapshot) = scan.pick(user, at) else {
        bail!(
            "{} holds no snapshot of {user}{}",
            args.file.display(),
            args.at.as_deref().map(|t| format!(" taken at or before {t}")).unwrap_or_default()
        );
    };
    let target = Target::of(&args.tool.common)?;
    let to_user = known_user(&target, args.to_user.as_deref().unwrap_or(user))?;
    let mut source = BufReader::new(file);
    let bar = message_bar();
    bar.set_length(u64::from(snapshot.messages));
    let mailbox = args.mailbox.as_deref();
    let report: RestoreReport = match &target.mode {
        Mode::Offline { disk, .. } => {
            let name = skua_core::paths::UserName::new(&to_user)
                .map_err(|e| anyhow::anyhow!("invalid user name {to_user:?}: {e}"))?;
            let mut store = UserStore::open(disk.clone(), &skua_core::paths::user_dir(&name))
                .with_context(|| format!("opening the store of {to_user}"))?;
            let mut restorer = Restorer::new();
            replay(&mut source, &scan, snapshot, mailbox, &mut |record: Record| {
                if matches!(record, Record::Body { .. }) {
                    bar.inc(1);
                }
                restorer.apply(&mut store, record).map_err(|e| anyhow::anyhow!(e))
            })?;
            drop(store);
            flush_now(disk)?;
            RestoreReport::of(&to_user, &restorer.counts())
        }
        Mode::Online { socket, pid } => {
            let request =
                AdminRequest { users: vec![to_user.clone()], ..AdminRequest::new(Op::Restore) };
            let answer = super::stream::send(socket, &request, now_unix_millis(), &mut |sink| {
                replay(&mut source, &scan, snapshot, mailbox, &mut |record: Record| {
                    if matches!(record, Record::Body { .. }) {
                        bar.inc(1);
                    }
                    sink(record)
                })
                .map(|_| ())
            });
            serde_json::from_value(super::server_answer(answer, socket, *pid)?)?
        }
    };
    bar.finish_and_clear();
    if args.tool.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "restored the snapshot of {} taken {} into {}: {} messages written ({} kept their \
             UID), {} already there; {} mailboxes made, {} subscriptions added",
            user,
            format_time(report.snapshot_unix_millis),
            report.user,
            report.messages_restored,
            report.uids_kept,
            report.messages_skipped,
            report.mailboxes_created,
            report.subscriptions_added
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `--list`: the snapshots (of `--user`, if given).
fn list(args: &RestoreArgs, scan: &Scan) -> anyhow::Result<ExitCode> {
    let shown: Vec<&SnapshotInfo> = scan
        .snapshots
        .iter()
        .filter(|s| args.user.as_deref().is_none_or(|u| s.user.eq_ignore_ascii_case(u)))
        .collect();
    if args.tool.json {
        let damage = scan.damage.as_ref().map(ArchiveError::to_string);
        let value = serde_json::json!({ "snapshots": shown, "damage": damage });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    for s in shown {
        println!(
            "{:>4}  {}  {}  {} mailboxes, {} messages, {} new bodies ({} bytes)",
            s.number,
            format_time(s.time_unix_millis),
            s.user,
            s.mailboxes,
            s.messages,
            s.bodies_added,
            s.body_bytes_added
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The name of `user` as the passwd-file has it; an error when it is not there.
fn known_user(target: &Target, user: &str) -> anyhow::Result<String> {
    let passwd = target.file.passwd_file(&target.data_dir);
    let known = skua_core::users::list_users(&passwd)
        .with_context(|| format!("reading {}", passwd.display()))?;
    match known.into_iter().find(|u| u.eq_ignore_ascii_case(user)) {
        Some(name) => Ok(name),
        None => bail!("no user {user} in {}", passwd.display()),
    }
}

/// `--at`: unix seconds (a fraction allowed), or RFC 3339 (`2026-12-07T10:00:00Z`, a
/// fraction and a `+hh:mm` offset allowed), as unix milliseconds.
fn parse_time(text: &str) -> anyhow::Result<i64> {
    let bad =
        || anyhow::anyhow!("--at {text:?}: give unix seconds or RFC 3339 (2026-12-07T10:00:00Z)");
    if let Ok(seconds) = text.parse::<f64>() {
        return Ok((seconds * 1000.0).floor() as i64);
    }
    let (date, time) = text.split_once(['T', 't', ' ']).ok_or_else(bad)?;
    let mut parts = date.splitn(3, '-').map(str::parse::<u32>);
    let (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0i64)
    } else {
        let at = time.rfind(['+', '-']).ok_or_else(bad)?;
        let (clock, zone) = time.split_at(at);
        let (hours, minutes) = zone[1..].split_once(':').ok_or_else(bad)?;
        let minutes = hours.parse::<i64>().map_err(|_| bad())? * 60
            + minutes.parse::<i64>().map_err(|_| bad())?;
        (clock, if zone.starts_with('-') { -minutes } else { minutes })
    };
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = whole.splitn(3, ':').map(str::parse::<u32>);
    let (Some(Ok(hour)), Some(Ok(minute)), Some(Ok(second))) = (hms.next(), hms.next(), hms.next())
    else {
        return Err(bad());
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let days = days_from_civil(i64::from(year), month, day).ok_or_else(bad)?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().map_err(|_| bad())?;
    let seconds =
        days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// Unix milliseconds as RFC 3339 UTC.
pub(super) fn format_time(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        millis.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_print_both_ways() {
        assert_eq!(parse_time("0").unwrap(), 0);
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2023-11-14T23:13:20.25+01:00").unwrap(), 1_700_000_000_250);
        assert_eq!(parse_time("2000-02-29T00:00:00Z").unwrap(), 951_782_400_000);
        assert_eq!(format_time(1_700_000_000_250), "2023-11-14T22:13:20.250Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for millis in [0, 86_399_999, 1_234_567_890_123, 4_102_444_800_000] {
            assert_eq!(parse_time(&format_time(millis)).unwrap(), millis);
        }
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2023-11-14",
            "2023-11-14T22:13:20.ééZ",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
