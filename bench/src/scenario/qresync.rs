//! `qresync`: what a client's resynchronization costs after another client changed a mailbox.
//! Each worker keeps one session on its own user (worker `w` uses user `w % --users`, so with
//! `--connections` at most `--users` nobody else changes its mailbox) and loops:
//!
//! 1. `store`: `STORE 1:k +FLAGS.SILENT (\Flagged)`, then `-FLAGS` on the next round: exactly
//!    k = min(`--changes`, messages) messages change, each getting a new mod-sequence;
//! 2. `resync`: `SELECT mailbox (QRESYNC (uidvalidity modseq))` with the HIGHESTMODSEQ the
//!    previous SELECT gave (RFC 7162 §3.2.5): the server answers with one FETCH per changed
//!    message, which is what a QRESYNC client (Thunderbird, mbsync) does on reconnecting;
//! 3. `full-flags`: `FETCH 1:* (UID FLAGS)`, what a client without CONDSTORE must do instead
//!    to learn the same thing, for comparison.
//!
//! Before its first round a session clears `\Flagged` on the k messages and selects again, so
//! every round changes exactly k messages whatever earlier runs left. The mailbox must be filled
//! first (`--prefill`).

use std::sync::Arc;
use std::time::Instant;

use super::{BenchError, SessionOps, SessionSpec, open_session, step};
use crate::cli::QresyncArgs;
use crate::client::ClientError;
use crate::client::imap::{ImapClient, quote};
use crate::client::tls::Endpoint;
use crate::cpu::{self, Probe};
use crate::run::{Run, pause_before_retry, run_workers};
use crate::stats::Recorder;
use crate::stats::report::Report;

/// Operations measured.
pub const OPS: &[&str] = &["connect", "login", "select", "store", "resync", "full-flags", "logout"];
const SESSION: SessionOps = SessionOps { connect: 0, login: 1, select: 2 };
const STORE: usize = 3;
const RESYNC: usize = 4;
const FULL: usize = 5;
const LOGOUT: usize = 6;

/// What a session knows of its mailbox between rounds.
struct Known {
    uid_validity: u64,
    modseq: u64,
    /// Messages each STORE changes.
    changes: u32,
    /// The next STORE adds `\Flagged` (else removes it).
    add: bool,
}

/// Runs the scenario against the IMAP server at `to`.
pub async fn run(args: QresyncArgs, to: Endpoint) -> Result<Report, BenchError> {
    if args.imap.mix.is_some() {
        return Err(crate::cli::InvalidArgs("qresync: --mix does not apply".into()).into());
    }
    if args.changes == 0 {
        return Err(crate::cli::InvalidArgs("qresync: --changes must be at least 1".into()).into());
    }
    let source = super::message_source(&args.imap.message)?;
    super::sessions::prefill_if_asked(&args.imap, &source).await?;
    let common = args.imap.common.clone();
    let probe = Probe::start(&common)?;
    let run = Run::new(&common);
    let open = run.open_loop();
    let args = Arc::new(args);
    let out = run_workers(&common, OPS, run, move |w, run, rec| {
        worker(w, run, rec, to.clone(), args.clone())
    })
    .await;
    let mut report = Report::new("qresync", &out.stats, out.elapsed, open, common.connections);
    report.notes = out.notes;
    let commands = cpu::count_of(&report, &["resync"]);
    probe.finish(&mut report, commands, "resync")?;
    Ok(report)
}

async fn worker(
    w: usize,
    run: Arc<Run>,
    mut rec: Recorder,
    to: Endpoint,
    args: Arc<QresyncArgs>,
) -> Recorder {
    let common = &args.imap.common;
    let user = common.user(u32::try_from(w).unwrap_or(u32::MAX) % common.users.max(1));
    let mut pacer = run.pacer(w);
    'sessions: while let Some(tick) = pacer.tick(&run).await {
        let spec = SessionSpec {
            to: &to,
            timeout: run.timeout,
            user: &user,
            password: &common.password,
            mailbox: &args.imap.mailbox,
            read_only: false,
        };
        let start = tick.from(Instant::now());
        let Ok((mut c, mut known)) = begin(spec, start, args.changes, &mut rec).await else {
            pause_before_retry(&run).await;
            continue;
        };
        for _ in 0..args.imap.ops_per_session {
            if pacer.tick(&run).await.is_none() {
                let _ = step(&mut rec, LOGOUT, Instant::now(), c.command("LOGOUT")).await;
                break 'sessions;
            }
            if round(&mut c, &mut known, &args.imap.mailbox, &mut rec).await.is_err() {
                continue 'sessions;
            }
        }
        let _ = step(&mut rec, LOGOUT, Instant::now(), c.command("LOGOUT")).await;
    }
    rec
}

/// Opens the session (measured), enables QRESYNC, clears `\Flagged` on the messages the
/// rounds change and selects again to learn the mailbox's state.
async fn begin(
    spec: SessionSpec<'_>,
    start: Instant,
    changes: u32,
    rec: &mut Recorder,
) -> Result<(ImapClient, Known), ClientError> {
    let mut c = open_session(spec, start, SESSION, rec).await?;
    let changes = changes.min(c.exists);
    if changes == 0 {
        return Err(ClientError::Unexpected("qresync: the mailbox is empty (--prefill)".into()));
    }
    c.command("ENABLE QRESYNC").await?;
    c.command(&format!("STORE 1:{changes} -FLAGS.SILENT (\\Flagged)")).await?;
    let selected = c.command(&format!("SELECT {}", quote(spec.mailbox))).await?;
    let (Some(uid_validity), Some(modseq)) = (selected.uid_validity, selected.highest_modseq)
    else {
        return Err(ClientError::Unexpected("SELECT gave no UIDVALIDITY or HIGHESTMODSEQ".into()));
    };
    Ok((c, Known { uid_validity, modseq, changes, add: true }))
}

/// One round: change `known.changes` messages, resynchronize with QRESYNC, then fetch every
/// flag as a client without it would.
async fn round(
    c: &mut ImapClient,
    known: &mut Known,
    mailbox: &str,
    rec: &mut Recorder,
) -> Result<(), ClientError> {
    let sign = if known.add { '+' } else { '-' };
    known.add = !known.add;
    let store = format!("STORE 1:{} {sign}FLAGS.SILENT (\\Flagged)", known.changes);
    step(rec, STORE, Instant::now(), c.command(&store)).await?;
    let select =
        format!("SELECT {} (QRESYNC ({} {}))", quote(mailbox), known.uid_validity, known.modseq);
    let resynced = step(rec, RESYNC, Instant::now(), c.command(&select)).await?;
    rec.bytes(RESYNC, resynced.response_bytes);
    if resynced.fetches < known.changes as usize {
        return Err(ClientError::Unexpected(format!(
            "QRESYNC SELECT reported {} changed messages of {}",
            resynced.fetches, known.changes
        )));
    }
    known.modseq = resynced
        .highest_modseq
        .ok_or_else(|| ClientError::Unexpected("QRESYNC SELECT gave no HIGHESTMODSEQ".into()))?;
    let full = step(rec, FULL, Instant::now(), c.command("FETCH 1:* (UID FLAGS)")).await?;
    rec.bytes(FULL, full.response_bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_table() {
        assert_eq!(OPS[SESSION.connect], "connect");
        assert_eq!(OPS[SESSION.login], "login");
        assert_eq!(OPS[SESSION.select], "select");
        assert_eq!(
            (OPS[STORE], OPS[RESYNC], OPS[FULL], OPS[LOGOUT]),
            ("store", "resync", "full-flags", "logout")
        );
    }
}
