//! IMAP connections: feed the socket to an [`ImapSession`] and carry out its [`Step`]s.
//!
//! ```text
//!  accept ─ greeting ─┬─ NeedInput ── read (deadline; stop → BYE) ── feed ─┐
//!                     ├─ Write ────── wait for durability ─ write vectored ─┤
//!                     ├─ Idle ─────── read | user's change event | stop ────┤
//!                     ├─ Authenticate ─ check password off-thread:          │
//!                     │     home shard here → open store, auth_done ────────┤
//!                     │     elsewhere → hand the socket + session over ─ end│
//!                     └─ Close / error ─ close                              │
//!                     ◄──────────────────── next(store) ◄───────────────────┘
//! ```
//!
//! Each `next` runs under a panic guard: a panic ends this connection with
//! `* BYE [SERVERBUG]`, poisons the user's store (its memory may be inconsistent) and leaves
//! every other session on the shard running.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use futures_lite::future;
use glommio::net::TcpStream;
use skua_protocols::imap::session::{AuthOutcome, ImapSession, OutChunk, Step};

use crate::auth::{self, Verdict};
use crate::conn::{Connection, ReadOutcome};
use crate::guard::guarded;
use crate::handoff::{self, DetachedSocket};

use crate::registry::UserHandle;
use crate::reply::{Ending, auth_outcome_of_registry, imap_bye};
use crate::shard::{Shard, ShardMessage, home_of};

/// An authenticated connection on its way to the user's home shard.
pub(crate) struct HandOff {
    socket: DetachedSocket,
    session: ImapSession,
    user: String,
}

/// Serves a freshly accepted connection.
pub(crate) async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    let _pass = shard.connections.enter();
    let Ok(mut connection) = Connection::new(stream, shard.config().timeout_after_login) else {
        return;
    };
    if shard.is_full() {
        tracing::warn!(shard = shard.id.0, peer = %connection.peer(), "IMAP connection refused: shard full");
        let _ = connection
            .write_all(imap_bye(Ending::TooManyConnections))
            .await;
        connection.close().await;
        return;
    }
    let config = if plaintext_allowed(&shard, connection.peer()) {
        shard.imap_plaintext.clone()
    } else {
        shard.imap_strict.clone()
    };
    let session = ImapSession::new(config);
    if connection.write_all(&session.greeting()).await.is_err() {
        return;
    }
    drive(&shard, connection, session, None).await;
}

/// Continues a connection handed over by another shard.
pub(crate) async fn arrive(shard: Rc<Shard>, handoff: HandOff) {
    let _pass = shard.connections.enter();
    let HandOff {
        socket,
        mut session,
        user,
    } = handoff;
    let stream = handoff::attach(socket);
    let Ok(mut connection) = Connection::new(stream, shard.config().timeout_after_login) else {
        return;
    };
    if shard.is_stopping() {
        session.auth_done(AuthOutcome::Unavailable);
        let _ = connection.write_all(imap_bye(Ending::Shutdown)).await;
        connection.close().await;
        return;
    }
    let handle = log_in_here(&shard, &mut session, &user);
    drive(&shard, connection, session, handle).await;
}

/// Plain-text passwords are accepted from loopback peers (also IPv4-mapped IPv6 ones) or
/// when the config allows them everywhere.
fn plaintext_allowed(shard: &Shard, peer: SocketAddr) -> bool {
    shard.config().plaintext_auth_always || peer.ip().to_canonical().is_loopback()
}

/// Opens the user's store on this (their home) shard and completes the login.
fn log_in_here(shard: &Shard, session: &mut ImapSession, user: &str) -> Option<Rc<UserHandle>> {
    match shard.registry.open(user) {
        Ok(handle) => {
            session.auth_done(AuthOutcome::Success);
            tracing::debug!(shard = shard.id.0, user, "logged in");
            Some(handle)
        }
        Err(error) => {
            tracing::error!(shard = shard.id.0, %error, "login refused: store unavailable");
            session.auth_done(auth_outcome_of_registry(&error));
            None
        }
    }
}

/// Runs the session until it closes or moves to another shard.
async fn drive(
    shard: &Rc<Shard>,
    mut connection: Connection,
    mut session: ImapSession,
    mut user: Option<Rc<UserHandle>>,
) {
    let bye = loop {
        match run_step(shard, &mut connection, &mut session, &mut user).await {
            Ok(()) => {}
            Err(StepEnd::Close(bye)) => break bye,
            Err(StepEnd::HandOff(target_user)) => {
                // Only a session that is not logged in authenticates, so `user` is `None`.
                debug_assert!(user.is_none(), "a logged-in session does not move");
                hand_off(shard, connection, session, target_user).await;
                return;
            }
        }
    };
    if let Some(handle) = user {
        shard.registry.release(handle);
    }
    if let Some(bye) = bye {
        // The peer may be gone already; the socket is closed either way.
        let _ = connection.write_all(bye).await;
    }
    connection.close().await;
}

/// Why the step loop stops.
enum StepEnd {
    /// Close the socket, after writing this BYE if any.
    Close(Option<&'static [u8]>),
    /// Authenticated as this user, whose home is another shard.
    HandOff(String),
}

/// One `next` and what it asks for.
async fn run_step(
    shard: &Rc<Shard>,
    connection: &mut Connection,
    session: &mut ImapSession,
    user: &mut Option<Rc<UserHandle>>,
) -> Result<(), StepEnd> {
    if user.as_ref().is_some_and(|h| h.is_poisoned()) {
        return Err(StepEnd::Close(Some(imap_bye(Ending::StoreReset))));
    }
    let change_seen = user.as_ref().map(|h| h.changed.generation());
    let step = guarded_next(shard, session, user.as_deref())?;
    match step {
        Step::NeedInput => read_into(shard, connection, session, user.is_some()).await,
        Step::Write { chunks, durable } => {
            if let Some(ticket) = durable
                && shard.commit.wait_durable(ticket).await.is_err()
            {
                return Err(StepEnd::Close(Some(imap_bye(Ending::Storage))));
            }
            write_chunks(connection, &chunks).await
        }
        Step::Authenticate {
            user: name,
            password,
        } => authenticate(shard, connection.peer().ip(), session, user, name, password).await,
        Step::Idle => {
            let handle = user.clone();
            idle(
                shard,
                connection,
                session,
                handle.as_deref(),
                change_seen.unwrap_or(0),
            )
            .await
        }
        Step::Close => Err(StepEnd::Close(None)),
    }
}

/// `session.next` under the panic guard.
fn guarded_next(
    shard: &Shard,
    session: &mut ImapSession,
    user: Option<&UserHandle>,
) -> Result<Step, StepEnd> {
    let result = guarded(|| match user {
        Some(handle) => handle.with_store(|store| session.next(Some(store))),
        None => session.next::<skua_core::disk::os::OsDisk>(None),
    });
    result.map_err(|detail| {
        shard.note_panic("imap step", &detail);
        if let Some(handle) = user {
            shard.registry.poison(handle);
        }
        StepEnd::Close(Some(imap_bye(Ending::ServerBug)))
    })
}

async fn write_chunks(connection: &mut Connection, chunks: &[OutChunk]) -> Result<(), StepEnd> {
    let slices: Vec<&[u8]> = chunks.iter().map(OutChunk::as_bytes).collect();
    connection
        .write_vectored_all(&slices)
        .await
        .map_err(|_| StepEnd::Close(None))
}

/// Waits for input (or shutdown) and feeds it to the session.
async fn read_into(
    shard: &Shard,
    connection: &mut Connection,
    session: &mut ImapSession,
    logged_in: bool,
) -> Result<(), StepEnd> {
    let timeout = if logged_in {
        shard.config().timeout_after_login
    } else {
        shard.config().timeout_before_login
    };
    let stop = shard.stop.clone();
    let read = future::or(async { Some(connection.read(timeout).await) }, async {
        stop.wait_past(0).await;
        None
    })
    .await;
    feed(connection, session, read)
}

fn feed(
    connection: &Connection,
    session: &mut ImapSession,
    read: Option<std::io::Result<ReadOutcome>>,
) -> Result<(), StepEnd> {
    match read {
        None => Err(StepEnd::Close(Some(imap_bye(Ending::Shutdown)))),
        Some(Ok(ReadOutcome::Data(len))) => {
            session.feed(connection.input(len));
            Ok(())
        }
        Some(Ok(ReadOutcome::TimedOut)) => Err(StepEnd::Close(Some(imap_bye(Ending::IdleTimeout)))),
        Some(Ok(ReadOutcome::Closed) | Err(_)) => Err(StepEnd::Close(None)),
    }
}

/// IDLE: wake on input, on a change of the user's store, or on shutdown.
async fn idle(
    shard: &Shard,
    connection: &mut Connection,
    session: &mut ImapSession,
    user: Option<&UserHandle>,
    change_seen: u64,
) -> Result<(), StepEnd> {
    let timeout = shard.config().timeout_after_login;
    let stop = shard.stop.clone();
    let woken = future::or(
        async { Some(Some(connection.read(timeout).await)) },
        future::or(
            async {
                stop.wait_past(0).await;
                Some(None)
            },
            async {
                match user {
                    Some(handle) => handle.changed.wait_past(change_seen).await,
                    None => future::pending::<()>().await,
                }
                None
            },
        ),
    )
    .await;
    match woken {
        None => Ok(()), // the store changed: `next` reports it
        Some(read) => feed(connection, session, read),
    }
}

/// Checks the credentials; logs in here or asks for a hand-off.
async fn authenticate(
    shard: &Rc<Shard>,
    source: IpAddr,
    session: &mut ImapSession,
    user: &mut Option<Rc<UserHandle>>,
    name: String,
    password: String,
) -> Result<(), StepEnd> {
    match auth::check(shard, source, name, password).await {
        Verdict::Accepted(canonical) => {
            let home = home_of(&canonical, shard.shared.count);
            if home == shard.id {
                *user = log_in_here(shard, session, &canonical);
                Ok(())
            } else {
                Err(StepEnd::HandOff(canonical))
            }
        }
        Verdict::Rejected => {
            session.auth_done(AuthOutcome::Failure);
            Ok(())
        }
        Verdict::Unavailable => {
            session.auth_done(AuthOutcome::Unavailable);
            Ok(())
        }
    }
}

/// Moves the connection to `user`'s home shard. The session's login completes there.
async fn hand_off(shard: &Shard, connection: Connection, mut session: ImapSession, user: String) {
    let home = home_of(&user, shard.shared.count);
    let socket = match handoff::detach(connection) {
        Ok(socket) => socket,
        Err(error) => {
            // The connection is gone with the failed duplicate; nothing can be told to it.
            tracing::error!(%error, "hand-off failed: cannot duplicate the socket");
            return;
        }
    };
    let peer = socket.peer();
    tracing::debug!(%peer, source = shard.id.0, target = home.0, "handing connection over");
    let message = ShardMessage::HandOff(Box::new(HandOff {
        socket,
        session,
        user,
    }));
    if let Err(message) = shard.mesh.send(home, message).await {
        tracing::error!(%peer, target = home.0, "hand-off failed: target shard is gone");
        if let ShardMessage::HandOff(handoff) = message {
            let HandOff {
                socket,
                session: returned,
                ..
            } = *handoff;
            session = returned;
            session.auth_done(AuthOutcome::Unavailable);
            let stream = handoff::attach(socket);
            if let Ok(mut connection) = Connection::new(stream, shard.config().timeout_after_login)
            {
                let _ = connection.write_all(imap_bye(Ending::Shutdown)).await;
                connection.close().await;
            }
        }
    }
}
