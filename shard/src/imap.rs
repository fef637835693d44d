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
//! A new connection is admitted against the shard's IMAP budget and its source's budget
//! (`admission.rs`); a login against the user's. A wait for input runs until the per-read
//! timeout or the nearest deadline: the login deadline (from accept, until logged in) and the
//! command deadline (from a command's first byte); see [`nearest_deadline`].
//!
//! Each `next` runs under a panic guard: a panic ends this connection with
//! `* BYE [SERVERBUG]`, poisons the user's store (its memory may be inconsistent) and leaves
//! every other session on the shard running.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use glommio::net::TcpStream;
use skua_core::types::Epoch;
use skua_protocols::imap::session::{AuthOutcome, AuthRequest, ImapSession, OutChunk, Step};

use crate::conn::{Connection, ReadOutcome};
use crate::event::Wait;
use crate::guard::guarded;
use crate::handoff::{self, DetachError, DetachedSocket};
use crate::limits::{SLOW_STEP_MS, TLS_HANDSHAKE_SECONDS_MAX};
use crate::listen::open_files_limit;
use crate::sasl;

use crate::admission::{Refusal, SourceSlot, UserSlot};
use crate::listen::Protocol;
use crate::registry::UserHandle;
use crate::reply::{Ending, auth_outcome_of_registry, auth_outcome_of_user_cap, imap_bye};
use crate::shard::{Shard, ShardMessage, home_of};

/// An authenticated connection on its way to the user's home shard.
pub(crate) struct HandOff {
    socket: DetachedSocket,
    session: ImapSession,
    user: String,
    /// The connection's place in its source's budget travels with it.
    source: SourceSlot,
    /// When the connection must have logged in (the login may still fail on arrival).
    login_deadline: Instant,
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
    /// The logged-in session's place in its user's budget.
    user_slot: Option<UserSlot>,
    /// The connection's place in its source's budget.
    source: SourceSlot,
    /// Accept time plus `login_deadline`: until logged in, no wait goes past it.
    login_deadline: Instant,
    /// When the unfinished command now arriving began, if one is (see [`nearest_deadline`]).
    command_started: Option<Instant>,
    /// The shard's slice turn, held from the wait before a paused command's next slice until
    /// the slice is done (see [`next_slice_turn`]).
    slice_turn: Option<glommio::sync::StaticPermit>,
    /// Slices the command in progress has run (0 when none is).
    slices_run: u32,
}

/// Serves a freshly accepted connection.
///
/// A plain function returning the task's future, so that the stream is not kept as an
/// argument inside the long-lived future: it moves into the (boxed, short-lived) greeting.
pub(crate) fn serve(
    shard: Rc<Shard>,
    stream: TcpStream,
    implicit_tls: bool,
) -> impl Future<Output = ()> {
    let pass = shard.connections.enter();
    let greeting = Box::pin(welcome(shard.clone(), stream, implicit_tls));
    async move {
        let _pass = pass;
        if let Some(client) = greeting.await {
            drive(&shard, client).await;
        }
    }
}

/// Greets a new connection, or turns it away when the shard's IMAP budget or its source's
/// budget is spent (see `admission.rs`). On an IMAPS listener the TLS handshake comes first
/// (the refusal of an over-budget connection is then sent in plain text: it costs no
/// handshake, and a TLS client just sees the connection close).
async fn welcome(shard: Rc<Shard>, stream: TcpStream, implicit_tls: bool) -> Option<Box<Client>> {
    let accepted = Instant::now();
    let mut connection = Connection::new(stream, shard.config().timeout_after_login).ok()?;
    let peer = connection.peer().ip();
    let admitted = if shard.admits(Protocol::Imap) {
        shard.shared.sources.admit(peer).ok_or((Refusal::SourceCap, Ending::TooManyFromSource))
    } else {
        Err((Refusal::ImapShardFull, Ending::TooManyConnections))
    };
    let source = match admitted {
        Ok(source) => source,
        Err((refusal, ending)) => {
            shard.shared.refusals.note(peer, refusal, shard.id.0);
            let _ = connection.write_all(imap_bye(ending)).await;
            connection.close().await;
            return None;
        }
    };
    tracing::info!(
        shard = shard.id.0,
        peer = %connection.peer(),
        protocol = if implicit_tls { "imaps" } else { "imap" },
        "connection opened"
    );
    let config = if plaintext_allowed(&shard, connection.peer()) {
        shard.imap_plaintext.clone()
    } else {
        shard.imap_strict.clone()
    };
    let mut session = ImapSession::new(config);
    let (sha1, sha256) = shard.config().sasl.scram.offered(&shard.shared.users.get());
    session.set_scram(sha1, sha256);
    let login_deadline = accepted + shard.config().login_deadline;
    if implicit_tls {
        let tls = shard.config().tls.as_ref()?.imap();
        handshake(&shard, &mut connection, tls, login_deadline).await?;
        session.tls_started();
        let (binding, external) = sasl::tls_identity(shard.config().tls.as_deref(), &connection);
        session.set_tls_identity(binding, external);
    }
    connection.write_all(&session.greeting()).await.ok()?;
    Some(Box::new(Client {
        connection,
        session,
        user: None,
        user_slot: None,
        source,
        login_deadline,
        command_started: None,
        slice_turn: None,
        slices_run: 0,
    }))
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
    let HandOff { socket, mut session, user, source, login_deadline } = *handoff;
    let mut connection = handoff::attach(socket, shard.config().timeout_after_login).ok()?;
    if shard.is_stopping() {
        session.auth_done(AuthOutcome::Unavailable);
        let _ = connection.write_all(imap_bye(Ending::Shutdown)).await;
        connection.close().await;
        return None;
    }
    let peer = connection.peer().ip();
    let (handle, user_slot) = log_in_here(shard, &mut session, &user, peer).await;
    Some(Box::new(Client {
        connection,
        session,
        user: handle,
        user_slot,
        source,
        login_deadline,
        command_started: None,
        slice_turn: None,
        slices_run: 0,
    }))
}

/// Plain-text passwords are accepted from loopback peers (also IPv4-mapped IPv6 ones) or
/// when the config allows them everywhere.
fn plaintext_allowed(shard: &Shard, peer: SocketAddr) -> bool {
    shard.config().plaintext_auth_always || peer.ip().to_canonical().is_loopback()
}

/// Completes the login on this (the user's home) shard: takes a place in the user's session
/// budget, then opens the user's store (in steps, see `registry.rs`). Either failing answers
/// the login with a tagged `NO` and leaves the session logged out.
async fn log_in_here(
    shard: &Shard,
    session: &mut ImapSession,
    user: &str,
    peer: IpAddr,
) -> (Option<Rc<UserHandle>>, Option<UserSlot>) {
    let max = shard.config().connections_per_user_max;
    let Some(slot) = shard.user_sessions.admit(&user.to_ascii_lowercase(), max) else {
        shard.shared.refusals.note(peer, Refusal::UserCap, shard.id.0);
        session.auth_done(auth_outcome_of_user_cap());
        return (None, None);
    };
    match shard.registry.open(user, yield_to_reactor).await {
        Ok(handle) => {
            session.auth_done(AuthOutcome::Success);
            tracing::debug!(shard = shard.id.0, user, "logged in");
            (Some(handle), Some(slot))
        }
        Err(error) => {
            tracing::error!(shard = shard.id.0, %error, "login refused: store unavailable");
            session.auth_done(auth_outcome_of_registry(&error));
            (None, None)
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
        // No slice holds the shard for long, a long command's least (see [`slice_time_spent`]).
        let long = client.slices_run >= FREE_SLICES;
        let budget = if long { LONG_SLICE_TIME } else { SLICE_TIME };
        SLICE_DEADLINE.with(|deadline| deadline.set(Instant::now() + budget));
        client.session.set_interrupt(Some(slice_time_spent));
        let step = next_step(shard, &mut client);
        // A slice of a paused command ran (or none did): its turn goes to the next one.
        client.slice_turn = None;
        client.slices_run = if client.session.in_progress() { client.slices_run + 1 } else { 0 };
        let ended = match step {
            Err(end) => Err(end),
            Ok((Step::NeedInput, _)) => wait_input(shard, &mut client, None).await,
            Ok((Step::Idle, change_seen)) => {
                wait_input(shard, &mut client, Some(change_seen)).await
            }
            Ok((Step::Write { chunks, durable }, _)) => {
                if !is_continuation_request(&chunks) {
                    // A command was answered: what arrives next is timed afresh.
                    client.command_started = None;
                }
                let written =
                    Box::pin(write_step(shard, &mut client.connection, chunks, durable)).await;
                if written.is_ok() && client.session.in_progress() {
                    // A paused command: the others on this core go first.
                    next_slice_turn(shard, &mut client).await;
                }
                written
            }
            Ok((Step::Yield, _)) => {
                next_slice_turn(shard, &mut client).await;
                Ok(())
            }
            Ok((Step::Authenticate(request), _)) => {
                Box::pin(authenticate(shard, &mut client, request)).await
            }
            Ok((Step::Close, _)) => Err(StepEnd::Close(None)),
            Ok((Step::StartTls, _)) => Box::pin(start_tls(shard, &mut client)).await,
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

/// Waits until a paused command may run its next slice: after every other session of the
/// shard had its turn (see [`yield_to_reactor`]), and holding the shard's one *slice turn*, so
/// that however many sessions have long commands running, at most one slice runs per turn of
/// the reactor. Interactive commands thus wait behind one slice at most, not behind one slice
/// of every long command on the shard. Paused commands take the turn in order (the semaphore
/// is first come, first served); the turn is given back as soon as the slice is done, before
/// its output is written, so a client that stops reading holds no one up.
///
/// The first [`FREE_SLICES`] slices of a command only yield: an ordinary FETCH or SEARCH of a
/// few hundred messages takes a few slices, and queueing each of them behind the long
/// commands of other sessions made such commands several times slower (imap-read SEARCH p99
/// 6.8 → 20 ms); past that, a command is a long one and takes turns.
async fn next_slice_turn(shard: &Shard, client: &mut Client) {
    if client.slices_run < FREE_SLICES {
        yield_to_reactor().await;
        return;
    }
    // `Err` only once the semaphore is closed (never here): run without the turn then.
    let turn = shard.slice_turns.acquire_static_permit(1).await.ok();
    yield_to_reactor().await;
    // Sessions whose input the same reactor turn brought were queued before this task woke:
    // one more pass through the run queue lets them go first.
    futures_lite::future::yield_now().await;
    client.slice_turn = turn;
}

/// See [`next_slice_turn`]: slices of one command that run without waiting for the turn,
/// at most [`SLICE_TIME`] each.
const FREE_SLICES: u32 = 8;

/// The interrupt every slice runs with (`ImapSession::set_interrupt`): true once the slice has
/// run its time, [`SLICE_TIME`] for an ordinary command and [`LONG_SLICE_TIME`] for a long one
/// (past [`FREE_SLICES`]), or when glommio has a completion waiting on its latency ring (an
/// accepted connection, its preemption timer). Idle sockets wait on readiness polls, which
/// glommio puts on its main ring, so another session's input cannot be seen before the
/// reactor's next turn: slices are kept short in time instead, and the sessions with input run
/// right after. The work-unit budget still bounds a slice where time cannot (tests, and the
/// output a slice may build).
fn slice_time_spent() -> bool {
    SLICE_DEADLINE.with(|deadline| Instant::now() >= deadline.get())
        || glommio::executor().need_preempt()
}

thread_local! {
    /// When the slice now running on this shard must stop (see [`slice_time_spent`]).
    static SLICE_DEADLINE: std::cell::Cell<Instant> = std::cell::Cell::new(Instant::now());
}

/// See [`slice_time_spent`]: how long a slice of an ordinary command may hold the shard.
const SLICE_TIME: Duration = Duration::from_micros(200);

/// See [`slice_time_spent`]: how long a slice of a long command may hold the shard (measured
/// with `perf/abuse_bench.py`: slices of a 1 GB SEARCH TEXT then take 50-100 µs, one 200 KB
/// message being the smallest step; 30 µs left other users' p99 where it was).
const LONG_SLICE_TIME: Duration = Duration::from_micros(50);

/// Lets every other task of the shard run, and the reactor collect what the sockets and the
/// disk finished, before this one goes on. A plain task yield is not enough: the executor runs
/// its queue until the queue is empty (or its 100 ms preemption timer fires) before it polls
/// the ring again, and a task that keeps yielding keeps the queue non-empty, so connections
/// waiting on their sockets would not be woken for up to 100 ms. A timer a few microseconds
/// away fires only from the reactor, so the task comes back after the reactor's next turn,
/// behind every connection that had input. (A zero-length timer would not do: glommio answers
/// an expired timer at once, without parking.)
pub(crate) async fn yield_to_reactor() {
    glommio::timer::sleep(YIELD_TIMER).await;
}

/// See [`yield_to_reactor`]: long enough to be unexpired when first polled, short next to a
/// slice of work (hundreds of microseconds).
const YIELD_TIMER: Duration = Duration::from_micros(20);

/// Ends a connection: gives the store back, says BYE if there is one to say, closes.
async fn finish(shard: &Shard, client: Box<Client>, bye: Option<&'static [u8]>) {
    let Client { mut connection, user, user_slot, source, .. } = *client;
    // The budgets are given back when the connection has closed, at the end of this function.
    let _budgets = (user_slot, source);
    if let Some(bye) = bye {
        // The peer may be gone already; the socket is closed either way.
        let _ = connection.write_all(bye).await;
    }
    connection.log_closed(shard.id.0, "imap", user.as_ref().map(|handle| handle.name.as_str()));
    if let Some(handle) = user {
        shard.registry.release(handle);
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
    crate::pagein::page_in(shard, &chunks, glommio::timer::sleep).await;
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
    let now = Instant::now();
    let per_read = if client.user.is_some() {
        shard.config().timeout_after_login
    } else {
        shard.config().timeout_before_login
    };
    // The read waits until the per-read timeout or the nearest deadline, whichever is first;
    // `ending` says which deadline, if one is what the wait runs into.
    let (timeout, ending) = match nearest_deadline(shard, client, now) {
        None => (per_read, None),
        Some((at, refusal, ending)) => match at.checked_duration_since(now) {
            Some(left) if !left.is_zero() && left < per_read => (left, Some((refusal, ending))),
            Some(left) if !left.is_zero() => (per_read, None),
            _ => {
                shard.shared.refusals.note(client.connection.peer().ip(), refusal, shard.id.0);
                return Err(StepEnd::Close(Some(imap_bye(ending))));
            }
        },
    };
    let peer = client.connection.peer().ip();
    let Client { connection, session, user, .. } = client;
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
            if let Some((refusal, _)) = ending {
                shard.shared.refusals.note(peer, refusal, shard.id.0);
            }
            let ending = ending.map_or(Ending::IdleTimeout, |(_, ending)| ending);
            Err(StepEnd::Close(Some(imap_bye(ending))))
        }
        Woken::Read(Ok(ReadOutcome::Closed) | Err(_)) => Err(StepEnd::Close(None)),
    }
}

/// The nearest deadline a wait for input must respect besides the per-read timeout, with
/// what it is: the login deadline until the session logged in, and the command deadline while
/// part of a command has arrived ([`ImapSession::has_partial_command`]). A command's clock
/// starts at the first wait that finds part of it buffered (just after its first bytes were
/// read) and stops when the session answers a command; continuation requests (`+`) do not
/// stop it, or a client could stretch one command for ever with synchronizing literals.
fn nearest_deadline(
    shard: &Shard,
    client: &mut Client,
    now: Instant,
) -> Option<(Instant, Refusal, Ending)> {
    if client.session.has_partial_command() {
        client.command_started.get_or_insert(now);
    } else {
        client.command_started = None;
    }
    let command_deadline = shard.config().command_deadline;
    let command = client.command_started.map(|started| {
        (started + command_deadline, Refusal::CommandDeadline, Ending::CommandDeadline)
    });
    let login = client.user.is_none().then_some((
        client.login_deadline,
        Refusal::LoginDeadline,
        Ending::LoginDeadline,
    ));
    [command, login].into_iter().flatten().min_by_key(|(at, ..)| *at)
}

/// True when a write is only a continuation request (`+ ...`), which asks for more of the
/// same command rather than answering it.
fn is_continuation_request(chunks: &[OutChunk]) -> bool {
    chunks.first().is_some_and(|chunk| chunk.as_bytes().starts_with(b"+"))
        && chunks.iter().map(|chunk| chunk.as_bytes().len()).sum::<usize>() < 1024
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

/// Runs the TLS handshake STARTTLS asked for; the session goes on over TLS, or the connection
/// closes (nothing more can be said to a client whose handshake failed).
async fn start_tls(shard: &Shard, client: &mut Client) -> Result<(), StepEnd> {
    // Only a shard with certificates offers STARTTLS (`ImapConfig::starttls`).
    let Some(tls) = shard.config().tls.as_ref().map(|tls| tls.imap()) else {
        return Err(StepEnd::Close(None));
    };
    let deadline = client.login_deadline;
    match handshake(shard, &mut client.connection, tls, deadline).await {
        Some(()) => {
            client.session.tls_started();
            let tls = shard.config().tls.as_deref();
            let (binding, external) = sasl::tls_identity(tls, &client.connection);
            client.session.set_tls_identity(binding, external);
            Ok(())
        }
        None => Err(StepEnd::Close(None)),
    }
}

/// A TLS handshake as the server, within `deadline` (and [`TLS_HANDSHAKE_SECONDS_MAX`]);
/// `None` when it failed (logged).
async fn handshake(
    shard: &Shard,
    connection: &mut Connection,
    tls: std::sync::Arc<rustls::ServerConfig>,
    deadline: Instant,
) -> Option<()> {
    let deadline = deadline.min(Instant::now() + Duration::from_secs(TLS_HANDSHAKE_SECONDS_MAX));
    match connection.start_tls(tls, deadline).await {
        Ok(()) => Some(()),
        Err(error) => {
            let peer = connection.peer();
            tracing::info!(shard = shard.id.0, %peer, %error, "TLS handshake failed");
            None
        }
    }
}

/// Answers one login request of the session (`sasl::answer`); once an exchange succeeded,
/// logs in here or asks for the hand-off to the user's home shard.
async fn authenticate(
    shard: &Rc<Shard>,
    client: &mut Client,
    request: AuthRequest,
) -> Result<(), StepEnd> {
    let answered = sasl::answer(shard, &client.connection, &mut client.session, request).await;
    let Some(user) = answered else { return Ok(()) };
    if home_of(&user, shard.shared.count) != shard.id {
        return Err(StepEnd::HandOff(user));
    }
    let source = client.connection.peer().ip();
    let (handle, slot) = log_in_here(shard, &mut client.session, &user, source).await;
    client.user = handle;
    client.user_slot = slot;
    Ok(())
}

/// Moves the connection to `user`'s home shard. The session's login completes there.
async fn hand_off(shard: &Shard, client: Box<Client>, user: String) {
    let Client { connection, mut session, source, login_deadline, .. } = *client;
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
    let handoff = HandOff { socket, session, user, source, login_deadline };
    let message = ShardMessage::HandOff(Box::new(handoff));
    if let Err(message) = shard.mesh.send(home, message).await {
        tracing::error!(%peer, target = home.0, "hand-off failed: target shard is gone");
        if let ShardMessage::HandOff(handoff) = message {
            let HandOff { socket, session: returned, .. } = *handoff;
            session = returned;
            session.auth_done(AuthOutcome::Unavailable);
            if let Ok(mut connection) = handoff::attach(socket, shard.config().timeout_after_login)
            {
                let _ = connection.write_all(imap_bye(Ending::Shutdown)).await;
                connection.close().await;
            }
        }
    }
}
