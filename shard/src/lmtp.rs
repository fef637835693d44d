//! LMTP connections: run an [`LmtpSession`] on the protocol driver (`driver.rs`) and carry
//! out the steps only LMTP has.
//!
//! ```text
//!  accept ─ 220 ─ driver ─┬─ Own(ResolveRecipient) ─ UserDb::resolve_recipient ───────────┐
//!                         │                           (whole address, then without +detail)│
//!                         ├─ Own(Deliver) ─────────── one delivery per user's copy, each on│
//!                         │                           its home shard, concurrently; results│
//!                         │                           in RCPT order ─ delivery_done ───────┤
//!                         └─ End ─ finish                                                  │
//!                         ◄─────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The connection never moves: the message goes to the recipients' shards instead (an
//! `Arc<Delivery>`, so each shard reads the same bytes). Each recipient's `250` is given only
//! after its copy is durable on its shard.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::net::TcpStream;
use skua_core::deny::Service;
use skua_core::types::InternalDate;
use skua_protocols::imap::session::OutChunk;
use skua_protocols::lmtp::{
    Delivery, DeliveryFailure, LmtpConfig, LmtpSession, LmtpStep, ResolvedRecipient, address,
    delivery_code,
};

use skua_core::store::QuotaReservation;

use crate::admission::{Refusal, SourceSlot};
use crate::call;
use crate::config::ServerConfig;
use crate::conn::Connection;
use crate::deliver;
use crate::driver::{self, End, Feed, Link, Session, Step};
use crate::listen::Protocol;
use crate::metrics::DeliveryOutcome;
use crate::reply::{Ending, lmtp_closing};
use crate::reserve::{Held, NotReserved, Reserve};
use crate::shard::Shard;

/// Serves an accepted LMTP connection until it closes. It is turned away (`421 4.7.0`) when
/// the shard's LMTP budget or its source's budget is spent (see `admission.rs`).
pub(crate) async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let _pass = shard.connections.enter();
    let _lmtp_pass = shard.lmtp_connections.enter();
    let _open = shard.metrics().connection_opened(crate::metrics::Protocol::Lmtp);
    let Ok(mut connection) = Connection::new(stream, shard.config().timeout_lmtp) else {
        return;
    };
    let peer = connection.peer().ip();
    let admitted = if shard.admits(Protocol::Lmtp) {
        shard.shared.sources.admit(peer).ok_or((Refusal::SourceCap, Ending::TooManyFromSource))
    } else {
        Err((Refusal::LmtpShardFull, Ending::TooManyConnections))
    };
    let source = match admitted {
        Ok(source) => source,
        Err((refusal, ending)) => {
            shard.shared.refusals.note(peer, refusal, shard.id.0);
            let _ = connection.write_all(lmtp_closing(ending)).await;
            connection.close().await;
            return;
        }
    };
    tracing::info!(shard = shard.id.0, %peer, protocol = "lmtp", "connection opened");
    run(&shard, connection, Some(source), Some(peer)).await;
}

/// Serves an LMTP connection accepted on the unix-domain socket (`listen::bind_unix`). The
/// shard's LMTP budget applies; the per-source cap does not (such a peer has no IP address,
/// and only local processes allowed by the socket file's mode can connect).
pub(crate) async fn serve_local(shard: Rc<Shard>, stream: TcpStream) {
    let _pass = shard.connections.enter();
    let _lmtp_pass = shard.lmtp_connections.enter();
    let _open = shard.metrics().connection_opened(crate::metrics::Protocol::Lmtp);
    let Ok(mut connection) = Connection::new_local(stream, shard.config().timeout_lmtp) else {
        return;
    };
    if !shard.admits(Protocol::Lmtp) {
        let peer = connection.peer().ip();
        shard.shared.refusals.note(peer, Refusal::LmtpShardFull, shard.id.0);
        let _ = connection.write_all(lmtp_closing(Ending::TooManyConnections)).await;
        connection.close().await;
        return;
    }
    tracing::info!(shard = shard.id.0, peer = "unix", protocol = "lmtp", "connection opened");
    run(&shard, connection, None, None).await;
}

/// The session on an admitted connection, until it closes. `peer`: the client's address for
/// the trace header, `None` on the unix socket.
async fn run(
    shard: &Rc<Shard>,
    connection: Connection,
    source: Option<SourceSlot>,
    peer: Option<IpAddr>,
) {
    let session =
        LmtpSession::new(shard.lmtp_config.clone()).with_connection(peer, &session_id(shard.id.0));
    let greeting = session.greeting();
    let mut link =
        Link::new(connection, Lmtp { session, _source: source, held: Held::new(shard.clone()) });
    let bye = match link.connection.write_all(&greeting).await {
        Ok(()) => match driver::drive(shard, &mut link).await {
            End::Close(bye) => bye,
            End::HandOff(_) => unreachable!("an LMTP connection never moves"),
        },
        Err(_) => None,
    };
    let mut lmtp = driver::finish(shard, link, bye).await;
    lmtp.held.give_back();
}

/// One LMTP client's state on the shard: the sans-IO session and its place in its source's
/// budget (given back when the connection has closed; none on the unix socket).
struct Lmtp {
    session: LmtpSession,
    _source: Option<SourceSlot>,
    /// Quota reservations made at `RCPT` (`reserve.rs`), used or given back.
    held: Held,
}

/// The steps only LMTP has.
enum LmtpOwn {
    /// Look a recipient up.
    Resolve(String),
    /// Deliver a message to its recipients.
    Deliver(Arc<Delivery>),
}

/// The LMTP settings of every session of this server, from `[lmtp]` and the host name.
pub(crate) fn session_config(config: &ServerConfig) -> LmtpConfig {
    let mut lmtp = LmtpConfig::new(&config.hostname);
    lmtp.starttls = config.tls.is_some();
    lmtp.max_message_bytes = config.lmtp.max_message_bytes;
    lmtp.detail_separator = config.lmtp.detail_separator;
    lmtp.received_header = config.lmtp.received_header;
    lmtp.delivered_to_header = config.lmtp.delivered_to_header;
    lmtp.bare_line_endings = config.lmtp.bare_line_endings;
    lmtp.overquota_temporary = config.lmtp.overquota_temporary;
    lmtp
}

/// Sessions opened by this process, for [`session_id`].
static SESSIONS: AtomicU64 = AtomicU64::new(0);

/// An id for a new session's `Received:` fields (`id` clause, an RFC 5322 atom): the start
/// time, the shard and a process-wide counter, in hex, so no two sessions of this process
/// (nor, barring a clock set back, of any earlier one) share it.
fn session_id(shard: u32) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
    format!("{now:x}-{shard:x}-{n:x}")
}

impl Feed for LmtpSession {
    fn feed(&mut self, bytes: &[u8]) {
        LmtpSession::feed(self, bytes);
    }
}

impl Session for Lmtp {
    const NAME: &'static str = "lmtp";
    type Own = LmtpOwn;
    type Input = LmtpSession;

    fn next(&mut self, _shard: &Shard) -> Result<Step<LmtpOwn>, End> {
        let step = self.session.next();
        // What an ended transaction (RSET, a new MAIL, a delivery) reserved goes back now.
        self.held.settle(self.session.transaction());
        Ok(match step {
            LmtpStep::NeedInput => Step::Read,
            LmtpStep::Write(bytes) => {
                // `354` asks for the message: the DATA command goes on, its clock with it.
                let answers = !bytes.starts_with(b"354");
                Step::Write { chunks: vec![OutChunk::Owned(bytes)], durable: None, answers }
            }
            LmtpStep::ResolveRecipient { address } => Step::Own(LmtpOwn::Resolve(address)),
            LmtpStep::Deliver(delivery) => Step::Own(LmtpOwn::Deliver(delivery)),
            LmtpStep::StartTls => Step::StartTls,
            LmtpStep::Close => Step::Close,
        })
    }

    async fn act(
        &mut self,
        shard: &Rc<Shard>,
        connection: &mut Connection,
        own: LmtpOwn,
    ) -> Result<(), End> {
        match own {
            LmtpOwn::Resolve(address) => self.resolve(shard, connection, &address).await,
            LmtpOwn::Deliver(delivery) => {
                let transaction = self.session.transaction().unwrap_or(0);
                let reservations: Vec<Option<QuotaReservation>> = delivery
                    .copies
                    .iter()
                    .map(|copy| self.held.take(transaction, &copy.user))
                    .collect();
                let results = deliver_logged(shard, connection, delivery, reservations).await;
                self.session.delivery_done(results);
            }
        }
        Ok(())
    }

    fn input(&mut self) -> (&mut LmtpSession, crate::driver::Wakers<'_>) {
        (&mut self.session, crate::driver::Wakers::default())
    }

    fn has_partial_command(&self) -> bool {
        self.session.has_partial_command()
    }

    fn in_progress(&self) -> bool {
        false // no LMTP step pauses
    }

    fn set_interrupt(&mut self, _interrupt: fn() -> bool) {
        // Every LMTP step is bounded by the session's own output batch; none is sliced.
    }

    fn read_timeout(&self, shard: &Shard) -> Duration {
        shard.config().timeout_lmtp
    }

    fn login_deadline(&self) -> Option<Instant> {
        None
    }

    fn goodbye(ending: Ending) -> &'static [u8] {
        lmtp_closing(ending)
    }

    fn panicked(&mut self, _shard: &Shard) {
        // A session's own state is all a step can leave inconsistent; it goes with the
        // connection. Deliveries run on the recipients' shards, outside the guarded step.
    }

    fn tls_config(shard: &Shard) -> Option<Arc<rustls::ServerConfig>> {
        shard.config().tls.as_ref().map(|tls| tls.lmtp())
    }

    fn tls_started(&mut self, _shard: &Shard, _connection: &Connection) {
        self.session.tls_started();
    }

    fn user(&self) -> Option<&str> {
        None
    }
}

impl Lmtp {
    /// Answers a recipient look-up: the whole address first, then (with a `+detail`) the
    /// address without its detail. An unknown one is logged (it gets `550 5.1.1`).
    async fn resolve(&mut self, shard: &Rc<Shard>, connection: &Connection, address: &str) {
        let resolved = resolve_recipient(shard, address);
        if resolved.is_none() {
            shard.metrics().delivery(DeliveryOutcome::Refused);
            tracing::info!(
                shard = shard.id.0,
                peer = %connection.peer(),
                to = address,
                code = "550 5.1.1",
                "lmtp recipient refused: user unknown"
            );
        }
        if let Some(found) = &resolved
            && shard.shared.deny.refusal(&found.user, Service::Lmtp).is_some()
        {
            shard.metrics().delivery(DeliveryOutcome::Refused);
            tracing::info!(
                shard = shard.id.0,
                peer = %connection.peer(),
                to = address,
                code = "550 5.2.1",
                "lmtp recipient refused: user denied (skua deny)"
            );
            self.session.recipient_disabled();
            return;
        }
        // `SIZE=` declared: hold that much of the user's quota now (`reserve.rs`).
        if let (Some(found), Some(bytes), Some(transaction)) =
            (&resolved, self.session.declared_size(), self.session.transaction())
            && !self.held.holds(transaction, &found.user)
        {
            let user = found.user.clone();
            match call::call(shard, Reserve { user: user.clone(), bytes }).await {
                Ok(Ok(reservation)) => self.held.keep(transaction, user, reservation),
                Ok(Err(NotReserved::OverQuota)) => {
                    shard.metrics().delivery(DeliveryOutcome::OverQuota);
                    tracing::info!(
                        shard = shard.id.0,
                        peer = %connection.peer(),
                        to = address,
                        bytes,
                        "lmtp recipient refused: over quota"
                    );
                    self.session.recipient_over_quota();
                    return;
                }
                Ok(Err(NotReserved::Unavailable)) | Err(_) => {}
            }
        }
        self.session.recipient_resolved(resolved);
    }
}

/// The user `address` reaches, as `RCPT` resolves it: the whole address first, then (with a
/// `+detail`) the address without its detail. Also the socketmap's `user` and `quota` maps
/// (`socketmap.rs`), so Postfix's answer at its own `RCPT` is the one LMTP would give.
pub(crate) fn resolve_recipient(shard: &Shard, address: &str) -> Option<ResolvedRecipient> {
    let by_local_part = shard.config().lmtp_recipient_by_local_part;
    let users = shard.shared.users.get();
    let whole = users
        .resolve_recipient(address, by_local_part)
        .map(|entry| ResolvedRecipient::user(entry.name()));
    let without_detail = || {
        let separator = shard.lmtp_config.detail_separator?;
        let (base, detail) = address::split_detail(address, separator)?;
        let entry = users.resolve_recipient(&base, by_local_part)?;
        Some(ResolvedRecipient { user: entry.name().to_owned(), detail })
    };
    whole.or_else(without_detail)
}

/// Delivers a message to its recipients and logs one line per recipient, with the envelope
/// parameters (`BODY`, `SMTPUTF8`, `RET`, `ENVID`, `NOTIFY`, `ORCPT`); one result per copy.
async fn deliver_logged(
    shard: &Rc<Shard>,
    connection: &Connection,
    delivery: Arc<Delivery>,
    reservations: Vec<Option<QuotaReservation>>,
) -> Vec<deliver::Outcome> {
    let return_path = delivery.return_path.as_str();
    tracing::debug!(
        from = return_path,
        copies = delivery.copies.len(),
        bytes = delivery.message.len(),
        "delivering"
    );
    let started = Instant::now();
    let message_id = skua_protocols::mime::search::message_id_for_log(&delivery.message);
    let size = delivery.message.len();
    let results = deliver_all(shard, delivery.clone(), reservations).await;
    let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mail = &delivery.mail;
    let envid = mail.envid.as_deref().unwrap_or("");
    let ret = mail.ret.map(|ret| ret.to_string()).unwrap_or_default();
    for (copy, result) in delivery.copies.iter().zip(&results) {
        let (code, _) = delivery_code(result, shard.config().lmtp.overquota_temporary);
        let reason = match result {
            Err(DeliveryFailure::Temporary(reason)) => reason.as_str(),
            _ => "",
        };
        for target in &copy.targets {
            let notify = target.parameters.notify.map(|n| n.to_string()).unwrap_or_default();
            let orcpt = target.parameters.orcpt.as_ref().map(|o| o.to_string()).unwrap_or_default();
            tracing::info!(
                shard = shard.id.0,
                peer = %connection.peer(),
                from = return_path,
                to = copy.user.as_str(),
                rcpt = target.address.as_str(),
                detail = target.detail.as_deref().unwrap_or(""),
                message_id = message_id.as_deref().unwrap_or("-"),
                size,
                body = %mail.body,
                smtputf8 = mail.smtputf8,
                ret = ret.as_str(),
                envid,
                notify = notify.as_str(),
                orcpt = orcpt.as_str(),
                outcome = if result.is_ok() { "delivered" } else { "refused" },
                code,
                reason,
                took_ms,
                "lmtp delivery"
            );
        }
    }
    results
}

/// Delivers every copy concurrently (each on its user's home shard); results in copy order.
async fn deliver_all(
    shard: &Rc<Shard>,
    delivery: Arc<Delivery>,
    reservations: Vec<Option<QuotaReservation>>,
) -> Vec<deliver::Outcome> {
    let date = delivery_date();
    let tasks: Vec<_> = reservations
        .into_iter()
        .enumerate()
        .map(|(copy, reservation)| {
            let shard = shard.clone();
            let delivery = delivery.clone();
            glommio::spawn_local(async move {
                deliver::deliver(&shard, delivery, copy, date, reservation).await
            })
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
