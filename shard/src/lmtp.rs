//! LMTP connections: feed the socket to an [`LmtpSession`] and carry out its steps.
//!
//! ```text
//!  accept ─ 220 ─┬─ NeedInput ──────── read (deadline; stop → 421) ─ feed ─┐
//!                ├─ Write ──────────── write ───────────────────────────────┤
//!                ├─ ResolveRecipient ─ UserDb::resolve_recipient ───────────┤
//!                ├─ Deliver ────────── one delivery per recipient, each on  │
//!                │                     its home shard, concurrently; results│
//!                │                     in RCPT order ─ delivery_done ───────┤
//!                └─ Close / error ──── close                                │
//!                ◄─────────────────────────── next() ◄──────────────────────┘
//! ```
//!
//! The connection never moves: the message goes to the recipients' shards instead (an
//! `Arc<[u8]>`, so each shard reads the same bytes). Each recipient's `250` is given only
//! after its copy is durable on its shard.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::future;
use glommio::net::TcpStream;
use skua_core::types::InternalDate;
use skua_protocols::lmtp::{
    DeliveryFailure, LmtpSession, LmtpStep, ResolvedRecipient, delivery_code,
};

use crate::admission::Refusal;
use crate::conn::{Connection, ReadOutcome};
use crate::deliver;
use crate::guard::guarded;
use crate::limits::TLS_HANDSHAKE_SECONDS_MAX;
use crate::listen::Protocol;
use crate::reply::{Ending, lmtp_closing};
use crate::shard::Shard;

/// Serves an accepted LMTP connection until it closes. It is turned away (`421 4.7.0`) when
/// the shard's LMTP budget or its source's budget is spent (see `admission.rs`).
pub(crate) async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let _pass = shard.connections.enter();
    let _lmtp_pass = shard.lmtp_connections.enter();
    let Ok(mut connection) = Connection::new(stream, shard.config().timeout_lmtp) else {
        return;
    };
    let peer = connection.peer().ip();
    let admitted = if shard.admits(Protocol::Lmtp) {
        shard.shared.sources.admit(peer).ok_or((Refusal::SourceCap, Ending::TooManyFromSource))
    } else {
        Err((Refusal::LmtpShardFull, Ending::TooManyConnections))
    };
    let _source = match admitted {
        Ok(source) => source,
        Err((refusal, ending)) => {
            shard.shared.refusals.note(peer, refusal, shard.id.0);
            let _ = connection.write_all(lmtp_closing(ending)).await;
            connection.close().await;
            return;
        }
    };
    tracing::info!(shard = shard.id.0, %peer, protocol = "lmtp", "connection opened");
    let mut session = LmtpSession::new(shard.lmtp_config.clone());
    let bye = match connection.write_all(&session.greeting()).await {
        Ok(()) => drive(&shard, &mut connection, &mut session).await,
        Err(_) => None,
    };
    if let Some(bye) = bye {
        // The peer may be gone already; the socket is closed either way.
        let _ = connection.write_all(bye).await;
    }
    connection.log_closed(shard.id.0, "lmtp", None);
    connection.close().await;
}

/// Runs the session; returns the reply to send before closing, if any.
async fn drive(
    shard: &Rc<Shard>,
    connection: &mut Connection,
    session: &mut LmtpSession,
) -> Option<&'static [u8]> {
    // When the command now arriving (line, or message data) began, if one is.
    let mut command_started: Option<Instant> = None;
    loop {
        let step = match guarded(|| session.next()) {
            Ok(step) => step,
            Err(detail) => {
                shard.note_panic("lmtp step", &detail);
                return Some(lmtp_closing(Ending::ServerBug));
            }
        };
        match step {
            LmtpStep::NeedInput => {
                if session.has_partial_command() {
                    command_started.get_or_insert_with(Instant::now);
                } else {
                    command_started = None;
                }
                match read(shard, connection, command_started).await {
                    Ok(len) => session.feed(connection.input(len)),
                    Err(bye) => return bye,
                }
            }
            LmtpStep::Write(bytes) => {
                if connection.write_all(&bytes).await.is_err() {
                    return None;
                }
            }
            LmtpStep::ResolveRecipient { address } => {
                let by_local_part = shard.config().lmtp_recipient_by_local_part;
                let resolved = shard
                    .shared
                    .users
                    .get()
                    .resolve_recipient(&address, by_local_part)
                    .map(|entry| ResolvedRecipient { user: entry.name().to_owned() });
                if resolved.is_none() {
                    tracing::info!(
                        shard = shard.id.0,
                        peer = %connection.peer(),
                        to = address.as_str(),
                        code = "550 5.1.1",
                        "lmtp recipient refused: user unknown"
                    );
                }
                session.recipient_resolved(resolved);
            }
            LmtpStep::Deliver { message, recipients, return_path } => {
                tracing::debug!(
                    from = return_path,
                    recipients = recipients.len(),
                    bytes = message.len(),
                    "delivering"
                );
                let started = Instant::now();
                let message_id = skua_protocols::mime::search::message_id_for_log(&message);
                let size = message.len();
                let results = deliver_all(shard, message, recipients.clone()).await;
                let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                for (user, result) in recipients.iter().zip(&results) {
                    let (code, _) = delivery_code(result);
                    let reason = match result {
                        Err(DeliveryFailure::Temporary(reason)) => reason.as_str(),
                        _ => "",
                    };
                    tracing::info!(
                        shard = shard.id.0,
                        peer = %connection.peer(),
                        from = return_path.as_str(),
                        to = user.as_str(),
                        message_id = message_id.as_deref().unwrap_or("-"),
                        size,
                        outcome = if result.is_ok() { "delivered" } else { "refused" },
                        code,
                        reason,
                        took_ms,
                        "lmtp delivery"
                    );
                }
                session.delivery_done(results);
            }
            LmtpStep::Close => return None,
            LmtpStep::StartTls => {
                // Only a shard with certificates offers STARTTLS (`LmtpConfig::starttls`).
                let tls = shard.config().tls.as_ref()?.lmtp();
                let deadline = Instant::now() + Duration::from_secs(TLS_HANDSHAKE_SECONDS_MAX);
                if let Err(error) = connection.start_tls(tls, deadline).await {
                    let peer = connection.peer();
                    tracing::info!(shard = shard.id.0, %peer, %error, "LMTP TLS handshake failed");
                    return None;
                }
                session.tls_started();
            }
        }
    }
}

/// Reads input: the byte count, or the reply to close with. A command that began at
/// `command_started` must be complete by `command_deadline` after it, however steadily its
/// bytes trickle in: the read waits no longer than that, and past it the connection gets
/// `421 4.4.2` and is closed.
async fn read(
    shard: &Shard,
    connection: &mut Connection,
    command_started: Option<Instant>,
) -> Result<usize, Option<&'static [u8]>> {
    let per_read = shard.config().timeout_lmtp;
    let deadline = command_started.map(|started| started + shard.config().command_deadline);
    let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    let (timeout, ending) = match left {
        Some(left) if left.is_zero() => {
            shard.shared.refusals.note(
                connection.peer().ip(),
                Refusal::CommandDeadline,
                shard.id.0,
            );
            return Err(Some(lmtp_closing(Ending::CommandDeadline)));
        }
        Some(left) if left < per_read => (left, Ending::CommandDeadline),
        _ => (per_read, Ending::IdleTimeout),
    };
    let stop = shard.stop.clone();
    let read = future::or(async { Some(connection.read(timeout).await) }, async {
        stop.wait_past(0).await;
        None
    })
    .await;
    match read {
        None => Err(Some(lmtp_closing(Ending::Shutdown))),
        Some(Ok(ReadOutcome::Data(len))) => Ok(len),
        Some(Ok(ReadOutcome::TimedOut)) => {
            if ending == Ending::CommandDeadline {
                let peer = connection.peer().ip();
                shard.shared.refusals.note(peer, Refusal::CommandDeadline, shard.id.0);
            }
            Err(Some(lmtp_closing(ending)))
        }
        Some(Ok(ReadOutcome::Closed) | Err(_)) => Err(None),
    }
}

/// Delivers to every recipient concurrently (each on its home shard); results in RCPT order.
async fn deliver_all(
    shard: &Rc<Shard>,
    message: Arc<[u8]>,
    recipients: Vec<String>,
) -> Vec<deliver::Outcome> {
    let date = delivery_date();
    let tasks: Vec<_> = recipients
        .into_iter()
        .map(|user| {
            let shard = shard.clone();
            let message = message.clone();
            glommio::spawn_local(async move { deliver::deliver(&shard, user, message, date).await })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await);
    }
    results
}

/// The internal date of a delivery: now, in UTC.
fn delivery_date() -> InternalDate {
    let unix_seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX));
    InternalDate { unix_seconds, zone_minutes: 0 }
}
