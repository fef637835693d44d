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

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use glommio::net::TcpStream;
use skua_core::types::Epoch;
use skua_core::users::Secret;
use skua_protocols::imap::session::{AuthOutcome, ImapSession, OutChunk, Step};

use crate::auth::{self, Verdict};
use crate::conn::{Connection, ReadOutcome};
use crate::event::Wait;
use crate::guard::guarded;
use crate::handoff::{self, DetachError, DetachedSocket};
use crate::limits::SLOW_STEP_MS;
use crate::listen::open_files_limit;

use crate::registry::UserHandle;
use crate::reply::{Ending, auth_outcome_of_registry, imap_bye};
use crate::shard::{Shard, ShardMessage, home_of};

/// An authenticated connection on its way to the user's home shard.
pub(crate) struct HandOff {
    socket: DetachedSocket,
    session: ImapSession,
    user: String,
}

/// One client's state. It lives on the heap so that the connection's task holds a pointer to
/// it: the task's future is then a few hundred bytes, and an idle connection costs little more
/// than its session (see `perf/results/2026-11-26-imap-gains.md`). Work that needs a large
/// future (password check, hand-off, writes waiting for durability) is boxed while it runs
/// instead of sizing every connection's task for it.
struct Client {
    connection: Connection,
    session: ImapSession,
    user: Option<Rc<UserHandle>>,
}

/// Serves a freshly accepted connection.
///
/// A plain function returning the task's future, so that the stream is not kept as an
/// argument inside the long-lived future: it moves into the (boxed, short-lived) greeting.
pub(crate) fn serve(shard: Rc<Shard>, stream: TcpStream) -> impl Future<Output = ()> {
    let pass = shard.connections.enter();
    let greeting = Box::pin(welcome(shard.clone(), stream));
    async move {
        let _pass = pass;
        if let Some(client) = greeting.await {
            drive(&shard, client).await;
        }
    }
}

/// Greets a new connection (or turns it away when the shard is full).
async fn welcome(shard: Rc<Shard>, stream: TcpStream) -> Option<Box<Client>> {
    let mut connection = Connection::new(stream, shard.config().timeout_after_login).ok()?;
    if shard.is_full() {
        note_refused(&shard);
        let _ = connection.write_all(imap_bye(Ending::TooManyConnections)).await;
        connection.close().await;
        return None;
    }
    let config = if plaintext_allowed(&shard, connection.peer()) {
        shard.imap_plaintext.clone()
    } else {
        shard.imap_strict.clone()
    };
    let session = ImapSession::new(config);
    connection.write_all(&session.greeting()).await.ok()?;
    Some(Box::new(Client { connection, session, user: None }))
}

thread_local! {
    /// Connections this shard turned away since it last said so, and when it last did.
    static REFUSED: Cell<(u64, Option<Instant>)> = const { Cell::new((0, None)) };
}

/// Logs refused connections at most once a second per shard, with their count: under an
/// overload (or at the open-files limit) a line per connection would flood the log.
fn note_refused(shard: &Shard) {
    REFUSED.with(|refused| {
        let (count, last) = refused.get();
        let now = Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
            refused.set((count + 1, last));
            return;
        }
        tracing::warn!(
            shard = shard.id.0,
            refused = count + 1,
            connections = shard.connections.live(),
            open_files_limit = %open_files_limit(),
            "IMAP connections refused: shard full (connection cap or open-files budget)"
        );
        refused.set((0, Some(now)));
    });
}

/// Continues a connection handed over by another shard.
pub(crate) async fn arrive(shard: Rc<Shard>, handoff: Box<HandOff>) {
    let _pass = shard.connections.enter();
    if let Some(client) = Box::pin(settle(&shard, handoff)).await {
        drive(&shard, client).await;
    }
}

/// Takes over a handed-over connection and completes its login here.
async fn settle(shard: &Shard, handoff: Box<HandOff>) -> Option<Box<Client>> {
    let HandOff { socket, mut session, user } = *handoff;
    let stream = handoff::attach(socket);
    let mut connection = Connection::new(stream, shard.config().timeout_after_login).ok()?;
    if shard.is_stopping() {
        session.auth_done(AuthOutcome::Unavailable);
        let _ = connection.write_all(imap_bye(Ending::Shutdown)).await;
        connection.close().await;
        return None;
    }
    let handle = log_in_here(shard, &mut session, &user);
    Some(Box::new(Client { connection, session, user: handle }))
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
///
/// Waiting for input (with or without IDLE) is the one await that is not boxed: it is what
/// an idle connection sits in, so it is a small hand-written future ([`WaitInput`]). Every
/// other await (writes, password checks, the hand-off, the goodbye) is boxed while it runs.
async fn drive(shard: &Rc<Shard>, mut client: Box<Client>) {
    let bye = loop {
        let ended = match next_step(shard, &mut client) {
            Err(end) => Err(end),
            Ok((Step::NeedInput, _)) => wait_input(shard, &mut client, None).await,
            Ok((Step::Idle, change_seen)) => {
                wait_input(shard, &mut client, Some(change_seen)).await
            }
            Ok((Step::Write { chunks, durable }, _)) => {
                let written =
                    Box::pin(write_step(shard, &mut client.connection, chunks, durable)).await;
                if written.is_ok() && client.session.in_progress() {
                    // A paused command: the others on this core go first.
                    yield_to_reactor().await;
                }
                written
            }
            Ok((Step::Yield, _)) => {
                yield_to_reactor().await;
                Ok(())
            }
            Ok((Step::Authenticate { user, password }, _)) => {
                Box::pin(authenticate(shard, &mut client, user, password)).await
            }
            Ok((Step::Close, _)) => Err(StepEnd::Close(None)),
        };
        match ended {
            Ok(()) => {}
            Err(StepEnd::Close(bye)) => break bye,
            Err(StepEnd::HandOff(target_user)) => {
                // Only a session that is not logged in authenticates, so `user` is `None`.
                debug_assert!(client.user.is_none(), "a logged-in session does not move");
                Box::pin(hand_off(shard, client, target_user)).await;
                return;
            }
        }
    };
    Box::pin(finish(shard, client, bye)).await;
}

/// Lets every other task of the shard run, and the reactor collect what the sockets and the
/// disk finished, before this one goes on. A plain task yield is not enough: the executor runs
/// its queue until the queue is empty (or its 100 ms preemption timer fires) before it polls
/// the ring again, and a task that keeps yielding keeps the queue non-empty, so connections
/// waiting on their sockets would not be woken for up to 100 ms. A timer a few microseconds
/// away fires only from the reactor, so the task comes back after the reactor's next turn,
/// behind every connection that had input. (A zero-length timer would not do: glommio answers
/// an expired timer at once, without parking.)
async fn yield_to_reactor() {
    glommio::timer::sleep(YIELD_TIMER).await;
}

/// See [`yield_to_reactor`]: long enough to be unexpired when first polled, short next to a
/// slice of work (hundreds of microseconds).
const YIELD_TIMER: Duration = Duration::from_micros(20);

/// Ends a connection: gives the store back, says BYE if there is one to say, closes.
async fn finish(shard: &Shard, client: Box<Client>, bye: Option<&'static [u8]>) {
    let Client { mut connection, user, .. } = *client;
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

/// One `next` under the panic guard, with the user's change generation read before it (what
/// an IDLE wait must see move).
fn next_step(shard: &Shard, client: &mut Client) -> Result<(Step, u64), StepEnd> {
    if client.user.as_ref().is_some_and(|h| h.is_poisoned()) {
        return Err(StepEnd::Close(Some(imap_bye(Ending::StoreReset))));
    }
    let change_seen = client.user.as_ref().map_or(0, |h| h.changed.generation());
    let started = Instant::now();
    let step = guarded_next(shard, &mut client.session, client.user.as_deref());
    note_slow("IMAP step held the shard's thread", shard, started);
    Ok((step?, change_seen))
}

/// Logs work on the shard's thread that took [`SLOW_STEP_MS`] or more: every other connection
/// of the shard waited that long. Cheap enough to stay on (two clock reads per step).
fn note_slow(what: &'static str, shard: &Shard, started: Instant) {
    let took = started.elapsed();
    if took >= Duration::from_millis(SLOW_STEP_MS) {
        tracing::warn!(shard = shard.id.0, took_ms = took.as_millis(), "{what}");
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

/// Waits until the write's durability ticket is reached, then writes it vectored.
async fn write_step(
    shard: &Shard,
    connection: &mut Connection,
    chunks: Vec<OutChunk>,
    durable: Option<Epoch>,
) -> Result<(), StepEnd> {
    if let Some(ticket) = durable {
        let started = Instant::now();
        if shard.commit.wait_durable(ticket).await.is_err() {
            return Err(StepEnd::Close(Some(imap_bye(Ending::Storage))));
        }
        let waited = started.elapsed();
        if waited >= Duration::from_millis(SLOW_STEP_MS) {
            tracing::debug!(
                shard = shard.id.0,
                waited_ms = waited.as_millis(),
                "IMAP reply waited for its flush round"
            );
        }
    }
    write_chunks(connection, &chunks).await.map_err(|_| StepEnd::Close(None))
}

/// Writes a step's chunks, vectored.
async fn write_chunks(connection: &mut Connection, chunks: &[OutChunk]) -> std::io::Result<()> {
    let slices: Vec<&[u8]> = chunks.iter().map(OutChunk::as_bytes).collect();
    connection.write_vectored_all(&slices).await
}

/// Waits for input, feeding it to the session, or for shutdown, or (in IDLE, with the
/// generation seen before the step) for a change of the user's store.
async fn wait_input(
    shard: &Shard,
    client: &mut Client,
    idle_change_seen: Option<u64>,
) -> Result<(), StepEnd> {
    let timeout = if client.user.is_some() {
        shard.config().timeout_after_login
    } else {
        shard.config().timeout_before_login
    };
    let Client { connection, session, user } = client;
    if connection.set_read_timeout(timeout).is_err() {
        return Err(StepEnd::Close(None));
    }
    let changed = match (idle_change_seen, user.as_deref()) {
        (Some(seen), Some(handle)) => Some(handle.changed.wait_past(seen)),
        _ => None,
    };
    let woken = WaitInput { connection, session, stop: shard.stop.wait_past(0), changed }.await;
    match woken {
        Woken::Changed => Ok(()), // `next` reports what changed
        Woken::Stop => Err(StepEnd::Close(Some(imap_bye(Ending::Shutdown)))),
        Woken::Read(Ok(ReadOutcome::Data(_))) => Ok(()),
        Woken::Read(Ok(ReadOutcome::TimedOut)) => {
            Err(StepEnd::Close(Some(imap_bye(Ending::IdleTimeout))))
        }
        Woken::Read(Ok(ReadOutcome::Closed) | Err(_)) => Err(StepEnd::Close(None)),
    }
}

/// What ended a [`WaitInput`].
enum Woken {
    /// Input arrived (already fed to the session), or the read ended.
    Read(std::io::Result<ReadOutcome>),
    /// Shutdown started.
    Stop,
    /// The user's store changed (IDLE only).
    Changed,
}

/// The wait a connection spends most of its life in: the socket, the shard's stop event and,
/// in IDLE, the user's change event, polled in that order (input first, so a client's `DONE`
/// is never lost to a notification). A handful of words, where nested `or` combinators would
/// take hundreds of bytes in every connection's task.
struct WaitInput<'a> {
    connection: &'a mut Connection,
    session: &'a mut ImapSession,
    stop: Wait<'a>,
    changed: Option<Wait<'a>>,
}

impl Future for WaitInput<'_> {
    type Output = Woken;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Woken> {
        let this = self.get_mut();
        let session = &mut *this.session;
        if let Poll::Ready(read) =
            this.connection.poll_read_with(cx, &mut |bytes| session.feed(bytes))
        {
            return Poll::Ready(Woken::Read(read));
        }
        if Pin::new(&mut this.stop).poll(cx).is_ready() {
            return Poll::Ready(Woken::Stop);
        }
        if let Some(changed) = &mut this.changed
            && Pin::new(changed).poll(cx).is_ready()
        {
            return Poll::Ready(Woken::Changed);
        }
        Poll::Pending
    }
}

/// Checks the credentials; logs in here or asks for a hand-off.
async fn authenticate(
    shard: &Rc<Shard>,
    client: &mut Client,
    name: String,
    password: Secret<String>,
) -> Result<(), StepEnd> {
    let source = client.connection.peer().ip();
    match auth::check(shard, source, name, password).await {
        Verdict::Accepted(canonical) => {
            let home = home_of(&canonical, shard.shared.count);
            if home == shard.id {
                client.user = log_in_here(shard, &mut client.session, &canonical);
                Ok(())
            } else {
                Err(StepEnd::HandOff(canonical))
            }
        }
        Verdict::Rejected => {
            client.session.auth_done(AuthOutcome::Failure);
            Ok(())
        }
        Verdict::Unavailable => {
            client.session.auth_done(AuthOutcome::Unavailable);
            Ok(())
        }
    }
}

/// Moves the connection to `user`'s home shard. The session's login completes there.
async fn hand_off(shard: &Shard, client: Box<Client>, user: String) {
    let Client { connection, mut session, .. } = *client;
    let home = home_of(&user, shard.shared.count);
    let socket = match handoff::detach(connection) {
        Ok(socket) => socket,
        Err(failed) => {
            let DetachError { mut connection, error } = *failed;
            tracing::error!(
                %error,
                open_files_limit = %open_files_limit(),
                "hand-off failed: cannot duplicate the socket (raise LimitNOFILE if EMFILE)"
            );
            // The tagged `NO [UNAVAILABLE]`, then `BYE [LIMIT]`: the process is out of
            // descriptors, so this connection should not stay either.
            session.auth_done(AuthOutcome::Unavailable);
            let answer = guarded(|| session.next::<skua_core::disk::os::OsDisk>(None));
            if let Ok(Step::Write { chunks, .. }) = answer {
                let _ = write_chunks(&mut connection, &chunks).await;
            }
            let _ = connection.write_all(imap_bye(Ending::TooManyConnections)).await;
            connection.close().await;
            return;
        }
    };
    let peer = socket.peer();
    tracing::debug!(%peer, source = shard.id.0, target = home.0, "handing connection over");
    let message = ShardMessage::HandOff(Box::new(HandOff { socket, session, user }));
    if let Err(message) = shard.mesh.send(home, message).await {
        tracing::error!(%peer, target = home.0, "hand-off failed: target shard is gone");
        if let ShardMessage::HandOff(handoff) = message {
            let HandOff { socket, session: returned, .. } = *handoff;
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
