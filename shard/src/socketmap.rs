//! The socketmap service (`[socketmap] listen`): Postfix asks it at `RCPT` time whether a
//! recipient exists and whether it has room, so mail skua would refuse is refused before
//! Postfix accepts it (and never becomes a bounce). The role Cyrus's smmapd plays.
//!
//! ```text
//!  Postfix (smtpd)            any shard                       the user's home shard
//!  "user alice+x@d" ─────────► resolve_recipient (lmtp.rs,
//!                              the same code RCPT runs) ─► OK alice / NOTFOUND
//!  "quota alice@d" ──────────► resolve_recipient ─ QuotaRoom{alice} ─► store: usage,
//!                                                                        reservations, limits
//!            OK 552 5.2.2 … / NOTFOUND ◄── Full / Fits ◄───────────────
//! ```
//!
//! The protocol is `skua_protocols::socketmap` (sans-IO); this file reads, writes and answers
//! look-ups. The quota answer comes from the user's home shard through the cross-shard call
//! (`call.rs`): no shard reads another's store. A store that cannot be asked (busy, shard
//! stopping, disk error) is a `TEMP` answer: Postfix then defers the recipient (`451 4.3.0`)
//! instead of guessing.
//!
//! Connections count against the shard's LMTP budget (they come from the MTA, like LMTP's),
//! and TCP ones against their source's. A unix socket is served by shard 0 (`listen.rs`).

use std::rc::Rc;

use futures_lite::future;
use glommio::net::TcpStream;
use skua_protocols::socketmap::{Lookup, MapName, Reply, SocketmapSession, SocketmapStep};

use crate::admission::Refusal;
use crate::call::{self, CallError};
use crate::conn::{Connection, ReadOutcome};
use crate::listen::Protocol;
use crate::shard::Shard;

/// Serves one accepted socketmap connection until the client closes it, it stays idle for
/// `timeout_lmtp`, its framing breaks, or the shard stops. `local`: accepted on a unix socket.
pub(crate) async fn serve(shard: Rc<Shard>, stream: TcpStream, local: bool) {
    let _pass = shard.connections.enter();
    let _mta_pass = shard.lmtp_connections.enter();
    let _open = shard.metrics().connection_opened(crate::metrics::Protocol::Socketmap);
    let timeout = shard.config().timeout_lmtp;
    let made = if local {
        Connection::new_local(stream, timeout)
    } else {
        Connection::new(stream, timeout)
    };
    let Ok(connection) = made else {
        return;
    };
    let peer = connection.peer().ip();
    if !shard.admits(Protocol::Socketmap) {
        shard.shared.refusals.note(peer, Refusal::LmtpShardFull, shard.id.0);
        connection.close().await;
        return;
    }
    let _source = if local {
        None
    } else {
        let Some(slot) = shard.shared.sources.admit(peer) else {
            shard.shared.refusals.note(peer, Refusal::SourceCap, shard.id.0);
            connection.close().await;
            return;
        };
        Some(slot)
    };
    tracing::debug!(shard = shard.id.0, peer = %connection.peer(), "socketmap connection opened");
    run(&shard, connection).await;
}

/// The request/reply loop on an admitted connection.
async fn run(shard: &Rc<Shard>, mut connection: Connection) {
    let mut session = SocketmapSession::new();
    let timeout = shard.config().timeout_lmtp;
    loop {
        match session.next() {
            SocketmapStep::NeedInput => {
                let read = future::or(async { Some(connection.read(timeout).await) }, async {
                    shard.stop.wait_past(0).await;
                    None
                })
                .await;
                match read {
                    Some(Ok(ReadOutcome::Data(len))) => {
                        shard.metrics().bytes_in(crate::metrics::Protocol::Socketmap, len);
                        session.feed(connection.input(len));
                    }
                    // Stopping, closed, idle too long or failed: Postfix reconnects when it
                    // next needs a look-up.
                    None | Some(Ok(ReadOutcome::Closed | ReadOutcome::TimedOut) | Err(_)) => {
                        break;
                    }
                }
            }
            SocketmapStep::Lookup(lookup) => {
                let reply = answer(shard, &lookup).await;
                tracing::debug!(
                    shard = shard.id.0,
                    map = lookup.map.name(),
                    key = lookup.key.as_str(),
                    reply = ?reply,
                    "socketmap lookup"
                );
                session.answer(&reply);
            }
            SocketmapStep::Write(bytes) => {
                if connection.write_all(&bytes).await.is_err() {
                    break;
                }
                shard.metrics().bytes_out(crate::metrics::Protocol::Socketmap, bytes.len());
            }
            SocketmapStep::Close => break,
        }
    }
    connection.close().await;
}

/// The reply to one look-up.
async fn answer(shard: &Rc<Shard>, lookup: &Lookup) -> Reply {
    let Some(found) = crate::lmtp::resolve_recipient(shard, &lookup.key) else {
        return Reply::NotFound;
    };
    match lookup.map {
        MapName::User => Reply::Ok(found.user),
        // Denied mail (`skua deny --services lmtp`): refused at Postfix's RCPT as LMTP would.
        MapName::Quota
            if shard.shared.deny.refusal(&found.user, skua_core::deny::Service::Lmtp).is_some() =>
        {
            Reply::Ok("550 5.2.1 Mailbox disabled".to_owned())
        }
        MapName::Quota => match call::call(shard, QuotaRoom { user: found.user }).await {
            Ok(Room::Fits) => Reply::NotFound,
            Ok(Room::Full) => Reply::Ok(over_quota_action(shard.config().lmtp.overquota_temporary)),
            Ok(Room::Unavailable) => Reply::Temp("mailbox unavailable".to_owned()),
            Err(error) => Reply::Temp(error.to_string()),
        },
    }
}

/// What the `quota` map answers for a full mailbox: an access(5) action that rejects the
/// recipient with the code LMTP itself would give (`552 5.2.2`, or `452 4.2.2` with
/// `[lmtp] overquota_temporary`), so Postfix refuses at `RCPT` exactly what delivery would.
fn over_quota_action(temporary: bool) -> String {
    let code = if temporary { "452 4.2.2" } else { "552 5.2.2" };
    format!("{code} Mailbox over quota")
}

/// Whether a user's mailbox has room for one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Room {
    /// At least one more byte and one more message fit beside usage and reservations.
    Fits,
    /// A limit is reached: the next delivery would be refused.
    Full,
    /// The store could not be opened or read.
    Unavailable,
}

/// Asks the user's home shard whether its store has room.
pub(crate) struct QuotaRoom {
    pub user: String,
}

impl call::Request for QuotaRoom {
    type Answer = Room;
    const NAME: &'static str = "quota-room";

    fn user(&self) -> &str {
        &self.user
    }

    async fn serve(self, shard: Rc<Shard>) -> Room {
        let handle = match shard.registry.open(&self.user, crate::driver::yield_to_reactor).await {
            Ok(handle) if !handle.is_poisoned() => handle,
            Ok(handle) => {
                shard.registry.release(handle);
                return Room::Unavailable;
            }
            Err(_) => return Room::Unavailable,
        };
        let room = handle.with_store(|store| {
            let usage = store.quota_usage();
            let (reserved_bytes, reserved_messages) = store.quota_reserved();
            let Ok((limits, _)) = store.quota_limits() else {
                return Room::Unavailable;
            };
            room_for_one_more(
                limits,
                usage.storage_bytes + reserved_bytes,
                usage.messages + reserved_messages,
            )
        });
        shard.registry.release(handle);
        room
    }

    fn refused(self, _: CallError) -> Room {
        Room::Unavailable
    }
}

/// [`Room::Full`] when a message of one byte would not fit `limits` beside `bytes` and
/// `messages` already used or reserved: the smallest delivery the store would refuse (the
/// size of the real message is not known at `RCPT`; LMTP's `SIZE=` reservation and the
/// append's own check still apply to it).
fn room_for_one_more(limits: skua_core::store::QuotaLimits, bytes: u64, messages: u64) -> Room {
    let storage_full =
        limits.storage_kib.is_some_and(|kib| bytes.saturating_add(1) > kib.saturating_mul(1024));
    let messages_full = limits.messages.is_some_and(|limit| messages.saturating_add(1) > limit);
    if storage_full || messages_full { Room::Full } else { Room::Fits }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skua_core::store::QuotaLimits;

    #[test]
    fn a_mailbox_is_full_when_one_more_byte_or_message_would_not_fit() {
        let kib = |n| QuotaLimits { storage_kib: Some(n), ..QuotaLimits::UNLIMITED };
        assert_eq!(room_for_one_more(QuotaLimits::UNLIMITED, u64::MAX, u64::MAX), Room::Fits);
        assert_eq!(room_for_one_more(kib(1), 1023, 0), Room::Fits);
        assert_eq!(room_for_one_more(kib(1), 1024, 0), Room::Full);
        assert_eq!(room_for_one_more(kib(0), 0, 0), Room::Full);
        let two = QuotaLimits { messages: Some(2), ..QuotaLimits::UNLIMITED };
        assert_eq!(room_for_one_more(two, 0, 1), Room::Fits);
        assert_eq!(room_for_one_more(two, 0, 2), Room::Full);
    }

    #[test]
    fn the_over_quota_action_matches_what_lmtp_answers() {
        assert_eq!(over_quota_action(false), "552 5.2.2 Mailbox over quota");
        assert_eq!(over_quota_action(true), "452 4.2.2 Mailbox over quota");
    }
}
