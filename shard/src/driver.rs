//! The protocol driver: one read → step → write loop for every protocol (IMAP and LMTP today,
//! POP3 and ManageSieve next), with the deadlines, shutdown, STARTTLS, time-bounded slices and
//! the panic guard written once.
//!
//! ```text
//!  next (panic guard, slice clock) ─┬─ Read / Idle ── wait: input | stop | (Idle) change ─┐
//!                                   ├─ Write ──────── durability ticket ─ page-in ─ write ┤
//!                                   ├─ Yield ──────── the shard's other sessions go first ┤
//!                                   ├─ StartTls ───── handshake, then tls_started ────────┤
//!                                   ├─ Compress ───── DEFLATE from here on, both ways ────┤
//!                                   ├─ Own ────────── the protocol's own step (act) ──────┤
//!                                   └─ Close / End ── return to the protocol's serve      │
//!                                   ◄──────────────────────────────────────────────────────┘
//! ```
//!
//! A protocol plugs in by implementing [`Session`] over its sans-IO session (`protocols/`):
//! it maps the session's steps onto [`Step`], and carries out the steps only it has
//! ([`Step::Own`]: IMAP's login requests, LMTP's recipient look-ups and deliveries) in
//! [`Session::act`]. Everything that waits on the socket or the clock is here:
//!
//! - *Deadlines.* A wait for input runs until the per-read timeout or the nearest deadline:
//!   the login deadline (from accept, until logged in; IMAP only) and the command deadline
//!   (from a command's first byte until it is answered); see [`nearest_deadline`]. Past one,
//!   the protocol's goodbye for it is sent and the source is noted (`admission.rs`).
//! - *Shutdown.* Every wait for input also waits on the shard's stop event.
//! - *Writes.* Output waits for its durability ticket (group commit), its cold mapped spool
//!   pages are read in through the ring (`pagein.rs`, [`page_in_read`]), and it goes out
//!   vectored (`conn.rs`).
//! - *Slices.* Every step runs with an interrupt that ends it after [`SLICE_TIME`] (a long
//!   command's after [`LONG_SLICE_TIME`]); a paused command gives the shard to the other
//!   sessions before its next slice ([`next_slice_turn`]).
//! - *Panics.* A panic in a step ends this connection with the protocol's goodbye for a
//!   server bug ([`Session::panicked`] cleans up: IMAP poisons the user's store) and leaves
//!   every other connection of the shard running.
//!
//! An idle connection sits in [`WaitInput`], a small hand-written future; every other await
//! of the loop is boxed while it runs, so a connection's task stays a few hundred bytes.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use skua_core::disk::FileRange;
use skua_core::types::Epoch;
use skua_protocols::imap::session::OutChunk;

use crate::admission::Refusal;
use crate::conn::{Connection, ReadOutcome};
use crate::event::{Event, Wait};
use crate::guard::guarded;
use crate::limits::{PAGE_IN_READ_BYTES_MAX, SLOW_STEP_MS, TLS_HANDSHAKE_SECONDS_MAX};
use crate::metrics::Protocol;
use crate::pagein::{self, Bounds};
use crate::reply::Ending;
use crate::shard::Shard;

/// What the driver does next for a session. `#[must_use]`: a dropped step loses output or
/// leaves a paused command hanging.
#[must_use]
pub(crate) enum Step<Own> {
    /// Wait for input and feed it to the session.
    Read,
    /// Wait for input, or for the session's change event ([`Session::input`]) to move past the
    /// generation seen before this step (IMAP IDLE).
    Idle,
    /// Send these chunks in order, once `durable` (if any) is durable.
    Write {
        /// The output: response bytes and slices of mapped spools.
        chunks: Vec<OutChunk>,
        /// The group-commit epoch that must be durable before the chunks go out.
        durable: Option<Epoch>,
        /// True when the output answers a command (its clock stops); false for a request for
        /// more of the same command (IMAP `+`, LMTP `354`), which does not stop the clock.
        answers: bool,
    },
    /// A long command paused after a slice: let the shard's other sessions run first.
    Yield,
    /// Run the TLS handshake as the server, then [`Session::tls_started`].
    StartTls,
    /// Compress everything from here on both ways (RFC 4978 DEFLATE, over TLS if it runs);
    /// the session's answer to COMPRESS is already written.
    Compress,
    /// Close the connection.
    Close,
    /// A step only this protocol has: [`Session::act`] carries it out.
    Own(Own),
}

/// Why the driver stopped.
pub(crate) enum End {
    /// Close the connection, after writing this goodbye if any.
    Close(Option<&'static [u8]>),
    /// The session logged in as this user, whose home is another shard: the connection moves
    /// there (the protocol's serve function does the hand-off).
    HandOff(String),
}

/// Something a [`WaitInput`] can feed bytes to: the protocol's sans-IO session.
pub(crate) trait Feed {
    /// Takes bytes the client sent.
    fn feed(&mut self, bytes: &[u8]);
}

/// The events besides input that end a session's wait for input.
#[derive(Clone, Copy, Default)]
pub(crate) struct Wakers<'a> {
    /// What an [`Step::Idle`] wait also wakes on: the watched store changed.
    pub(crate) changes: Option<&'a Event>,
    /// What every wait wakes on: the session's store was reset (`UserHandle::reset`), so the
    /// session's next step ends it even if the client says nothing.
    pub(crate) reset: Option<&'a Event>,
}

/// A protocol session as the driver runs it.
pub(crate) trait Session {
    /// The protocol's name in logs: `imap`, `lmtp`.
    const NAME: &'static str;
    /// The steps only this protocol has.
    type Own;
    /// What takes the client's bytes.
    type Input: Feed;

    /// The session's next step (called under the panic guard), or the end of the connection.
    fn next(&mut self, shard: &Shard) -> Result<Step<Self::Own>, End>;
    /// Carries out one of the protocol's own steps.
    fn act(
        &mut self,
        shard: &Rc<Shard>,
        connection: &mut Connection,
        own: Self::Own,
    ) -> impl Future<Output = Result<(), End>>;
    /// What takes input, and the events a wait for it also wakes on.
    fn input(&mut self) -> (&mut Self::Input, Wakers<'_>);
    /// True while part of a command has arrived (the command deadline runs).
    fn has_partial_command(&self) -> bool;
    /// True while a command is paused between slices.
    fn in_progress(&self) -> bool;
    /// Sets the interrupt every slice of work asks whether its time is up.
    fn set_interrupt(&mut self, interrupt: fn() -> bool);
    /// How long one read may wait for the client.
    fn read_timeout(&self, shard: &Shard) -> Duration;
    /// When the login must be done, while not logged in (protocols with logins only).
    fn login_deadline(&self) -> Option<Instant>;
    /// The goodbye sent before closing for `ending` (IMAP `* BYE`, LMTP `421`).
    fn goodbye(ending: Ending) -> &'static [u8];
    /// A step panicked; `detail` is logged already. Drops what the panic may have left
    /// inconsistent.
    fn panicked(&mut self, shard: &Shard);
    /// The TLS config STARTTLS runs with; `None` when the shard has no certificates (the
    /// session then never asks for STARTTLS).
    fn tls_config(shard: &Shard) -> Option<Arc<rustls::ServerConfig>>;
    /// The TLS handshake is done: the session goes on over TLS.
    fn tls_started(&mut self, shard: &Shard, connection: &Connection);
    /// The logged-in user, for the close line.
    fn user(&self) -> Option<&str>;
    /// A [`Step::Write`] went out whole (command latency metrics: `metrics.rs`).
    fn written(&mut self, _shard: &Shard) {}
}

/// A connection and the session the driver runs on it. Boxed by its owner: the connection's
/// task then holds a pointer to it, and an idle connection costs little more than its session
/// (see `perf/results/2026-11-26-imap-gains.md`).
pub(crate) struct Link<S> {
    /// The socket, plain or TLS.
    pub(crate) connection: Connection,
    /// The protocol's session and its shard-side state.
    pub(crate) session: S,
    /// When the unfinished command now arriving began, if one is (see [`nearest_deadline`]).
    command_started: Option<Instant>,
    /// The shard's slice turn, held from the wait before a paused command's next slice until
    /// the slice is done (see [`next_slice_turn`]).
    slice_turn: Option<glommio::sync::StaticPermit>,
    /// Slices the command in progress has run (0 when none is).
    slices_run: u32,
}

impl<S: Session> Link<S> {
    /// A session on a connection, with no command under way.
    pub(crate) fn new(connection: Connection, session: S) -> Link<S> {
        Link { connection, session, command_started: None, slice_turn: None, slices_run: 0 }
    }
}

/// Runs the session until the connection is to close or move; see the module's diagram.
pub(crate) async fn drive<S: Session>(shard: &Rc<Shard>, link: &mut Link<S>) -> End {
    loop {
        // No slice holds the shard for long, a long command's least (see [`slice_time_spent`]).
        let long = link.slices_run >= FREE_SLICES;
        let budget = if long { LONG_SLICE_TIME } else { SLICE_TIME };
        SLICE_DEADLINE.with(|deadline| deadline.set(Instant::now() + budget));
        link.session.set_interrupt(slice_time_spent);
        let change_seen = link.session.input().1.changes.map_or(0, Event::generation);
        let step = next_step(shard, &mut link.session);
        // A slice of a paused command ran (or none did): its turn goes to the next one.
        link.slice_turn = None;
        link.slices_run = if link.session.in_progress() { link.slices_run + 1 } else { 0 };
        let ended = match step {
            Err(end) => Err(end),
            Ok(Step::Read) => wait_input(shard, link, None).await,
            Ok(Step::Idle) => wait_input(shard, link, Some(change_seen)).await,
            Ok(Step::Write { chunks, durable, answers }) => {
                if answers {
                    // A command was answered: what arrives next is timed afresh.
                    link.command_started = None;
                }
                let written = Box::pin(write_step::<S>(shard, link, chunks, durable)).await;
                if written.is_ok() {
                    link.session.written(shard);
                }
                if written.is_ok() && link.session.in_progress() {
                    // A paused command: the others on this core go first.
                    next_slice_turn(shard, link).await;
                }
                written
            }
            Ok(Step::Yield) => {
                next_slice_turn(shard, link).await;
                Ok(())
            }
            Ok(Step::StartTls) => Box::pin(start_tls(shard, link)).await,
            Ok(Step::Compress) => {
                link.connection.start_deflate();
                Ok(())
            }
            Ok(Step::Close) => Err(End::Close(None)),
            Ok(Step::Own(own)) => {
                Box::pin(link.session.act(shard, &mut link.connection, own)).await
            }
        };
        if let Err(end) = ended {
            return end;
        }
    }
}

/// Ends a connection the driver stopped with [`End::Close`]: says the goodbye if there is
/// one, logs the close line, closes. Gives the session back for what its protocol releases
/// after (a user's store, budgets: they go when the session is dropped).
pub(crate) async fn finish<S: Session>(
    shard: &Shard,
    link: Link<S>,
    goodbye: Option<&'static [u8]>,
) -> S {
    let Link { mut connection, session, .. } = link;
    if let Some(goodbye) = goodbye {
        // The peer may be gone already; the socket is closed either way.
        let _ = connection.write_all(goodbye).await;
    }
    connection.log_closed(shard.id.0, S::NAME, session.user());
    connection.close().await;
    session
}

/// One `next` under the panic guard, timed (see [`note_slow`]).
fn next_step<S: Session>(shard: &Shard, session: &mut S) -> Result<Step<S::Own>, End> {
    let started = Instant::now();
    let step = guarded(|| session.next(shard));
    note_slow::<S>(shard, started);
    step.unwrap_or_else(|detail| {
        shard.note_panic(S::NAME, &detail);
        session.panicked(shard);
        Err(End::Close(Some(S::goodbye(Ending::ServerBug))))
    })
}

/// Logs work on the shard's thread that took [`SLOW_STEP_MS`] or more: every other connection
/// of the shard waited that long. Cheap enough to stay on (two clock reads per step).
fn note_slow<S: Session>(shard: &Shard, started: Instant) {
    let took = started.elapsed();
    if took >= Duration::from_millis(SLOW_STEP_MS) {
        shard.metrics().stall();
        tracing::warn!(
            shard = shard.id.0,
            protocol = S::NAME,
            took_ms = took.as_millis(),
            "a step held the shard's thread"
        );
    }
}

/// Waits until the write's durability ticket is reached, pages its spool slices in, then
/// writes it vectored.
async fn write_step<S: Session>(
    shard: &Shard,
    link: &mut Link<S>,
    chunks: Vec<OutChunk>,
    durable: Option<Epoch>,
) -> Result<(), End> {
    if let Some(ticket) = durable {
        let started = Instant::now();
        if shard.commit.wait_durable(ticket).await.is_err() {
            return Err(End::Close(Some(S::goodbye(Ending::Storage))));
        }
        let waited = started.elapsed();
        if waited >= Duration::from_millis(SLOW_STEP_MS) {
            tracing::debug!(
                shard = shard.id.0,
                protocol = S::NAME,
                waited_ms = waited.as_millis(),
                "a reply waited for its flush round"
            );
        }
    }
    page_in(shard, &chunks).await;
    // In memory now: plain literals' spool bytes get their NUL check (`OutChunk::Spool`).
    let chunks: Vec<OutChunk> = chunks.into_iter().map(OutChunk::without_nul).collect();
    let bytes = chunks.iter().map(|chunk| chunk.as_bytes().len()).sum();
    write_chunks(&mut link.connection, &chunks).await.map_err(|_| End::Close(None))?;
    shard.metrics().bytes_out(Protocol::of_session(S::NAME), bytes);
    Ok(())
}

/// Writes chunks, vectored.
pub(crate) async fn write_chunks(
    connection: &mut Connection,
    chunks: &[OutChunk],
) -> std::io::Result<()> {
    let slices: Vec<&[u8]> = chunks.iter().map(OutChunk::as_bytes).collect();
    connection.write_vectored_all(&slices).await
}

/// Waits for input, feeding it to the session, or for shutdown, or (in IDLE, with the
/// generation seen before the step) for the session's change event.
async fn wait_input<S: Session>(
    shard: &Shard,
    link: &mut Link<S>,
    idle_change_seen: Option<u64>,
) -> Result<(), End> {
    let now = Instant::now();
    let per_read = link.session.read_timeout(shard);
    // The read waits until the per-read timeout or the nearest deadline, whichever is first;
    // `ending` says which deadline, if one is what the wait runs into.
    let peer = link.connection.peer().ip();
    let (timeout, ending) = match nearest_deadline(shard, link, now) {
        None => (per_read, None),
        Some((at, refusal, ending)) => match at.checked_duration_since(now) {
            Some(left) if !left.is_zero() && left < per_read => (left, Some((refusal, ending))),
            Some(left) if !left.is_zero() => (per_read, None),
            _ => {
                shard.shared.refusals.note(peer, refusal, shard.id.0);
                return Err(End::Close(Some(S::goodbye(ending))));
            }
        },
    };
    let Link { connection, session, .. } = link;
    if connection.set_read_timeout(timeout).is_err() {
        return Err(End::Close(None));
    }
    let (input, wakers) = session.input();
    let changed = match (idle_change_seen, wakers.changes) {
        (Some(seen), Some(event)) => Some(event.wait_past(seen)),
        _ => None,
    };
    // A reset before this wait was seen by the step just run, which ended the session.
    let reset = wakers.reset.map(|event| event.wait_past(event.generation()));
    let woken =
        WaitInput { connection, input, stop: shard.stop.wait_past(0), changed, reset }.await;
    match woken {
        Woken::Changed => Ok(()), // `next` reports what changed (or that the store is gone)
        Woken::Stop => Err(End::Close(Some(S::goodbye(Ending::Shutdown)))),
        Woken::Read(Ok(ReadOutcome::Data(bytes))) => {
            shard.metrics().bytes_in(Protocol::of_session(S::NAME), bytes);
            Ok(())
        }
        Woken::Read(Ok(ReadOutcome::TimedOut)) => {
            if let Some((refusal, _)) = ending {
                shard.shared.refusals.note(peer, refusal, shard.id.0);
            }
            let ending = ending.map_or(Ending::IdleTimeout, |(_, ending)| ending);
            Err(End::Close(Some(S::goodbye(ending))))
        }
        Woken::Read(Ok(ReadOutcome::Closed) | Err(_)) => Err(End::Close(None)),
    }
}

/// The nearest deadline a wait for input must respect besides the per-read timeout, with
/// what it is: the login deadline until the session logged in, and the command deadline while
/// part of a command has arrived ([`Session::has_partial_command`]). A command's clock starts
/// at the first wait that finds part of it buffered (just after its first bytes were read)
/// and stops when the session answers a command; requests for more of the same command
/// (IMAP `+`, LMTP `354`) do not stop it, or a client could stretch one command for ever.
fn nearest_deadline<S: Session>(
    shard: &Shard,
    link: &mut Link<S>,
    now: Instant,
) -> Option<(Instant, Refusal, Ending)> {
    if link.session.has_partial_command() {
        link.command_started.get_or_insert(now);
    } else {
        link.command_started = None;
    }
    let command_deadline = shard.config().command_deadline;
    let command = link.command_started.map(|started| {
        (started + command_deadline, Refusal::CommandDeadline, Ending::CommandDeadline)
    });
    let login =
        link.session.login_deadline().map(|at| (at, Refusal::LoginDeadline, Ending::LoginDeadline));
    [command, login].into_iter().flatten().min_by_key(|(at, ..)| *at)
}

/// What ended a [`WaitInput`].
enum Woken {
    /// Input arrived (already fed to the session), or the read ended.
    Read(std::io::Result<ReadOutcome>),
    /// Shutdown started.
    Stop,
    /// The session's change event moved (IDLE only).
    Changed,
}

/// The wait a connection spends most of its life in: the socket, the shard's stop event and,
/// in IDLE, the change event, polled in that order (input first, so a client's `DONE` is
/// never lost to a notification). A handful of words, where nested `or` combinators would
/// take hundreds of bytes in every connection's task.
struct WaitInput<'a, I> {
    connection: &'a mut Connection,
    input: &'a mut I,
    stop: Wait<'a>,
    changed: Option<Wait<'a>>,
    reset: Option<Wait<'a>>,
}

impl<I: Feed> Future for WaitInput<'_, I> {
    type Output = Woken;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Woken> {
        let this = self.get_mut();
        let input = &mut *this.input;
        if let Poll::Ready(read) =
            this.connection.poll_read_with(cx, &mut |bytes| input.feed(bytes))
        {
            return Poll::Ready(Woken::Read(read));
        }
        if Pin::new(&mut this.stop).poll(cx).is_ready() {
            return Poll::Ready(Woken::Stop);
        }
        for wait in [&mut this.changed, &mut this.reset].into_iter().flatten() {
            if Pin::new(wait).poll(cx).is_ready() {
                return Poll::Ready(Woken::Changed);
            }
        }
        Poll::Pending
    }
}

/// Runs the TLS handshake STARTTLS asked for (its answer is written); the session goes on over
/// TLS, or the connection closes (nothing more can be said to a client whose handshake failed).
async fn start_tls<S: Session>(shard: &Shard, link: &mut Link<S>) -> Result<(), End> {
    // Only a shard with certificates offers STARTTLS.
    let Some(tls) = S::tls_config(shard) else {
        return Err(End::Close(None));
    };
    let deadline = link.session.login_deadline();
    match handshake::<S>(shard, &mut link.connection, tls, deadline).await {
        Some(()) => {
            link.session.tls_started(shard, &link.connection);
            Ok(())
        }
        None => Err(End::Close(None)),
    }
}

/// A TLS handshake as the server, within `deadline` if any and [`TLS_HANDSHAKE_SECONDS_MAX`];
/// `None` when it failed (logged).
pub(crate) async fn handshake<S: Session>(
    shard: &Shard,
    connection: &mut Connection,
    tls: Arc<rustls::ServerConfig>,
    deadline: Option<Instant>,
) -> Option<()> {
    let most = Instant::now() + Duration::from_secs(TLS_HANDSHAKE_SECONDS_MAX);
    let deadline = deadline.map_or(most, |deadline| deadline.min(most));
    match connection.start_tls(tls, deadline).await {
        Ok(()) => Some(()),
        Err(error) => {
            let peer = connection.peer();
            let protocol = S::NAME;
            tracing::info!(shard = shard.id.0, %peer, protocol, %error, "TLS handshake failed");
            None
        }
    }
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
async fn next_slice_turn<S>(shard: &Shard, link: &mut Link<S>) {
    if link.slices_run < FREE_SLICES {
        yield_to_reactor().await;
        return;
    }
    // `Err` only once the semaphore is closed (never here): run without the turn then.
    let turn = shard.slice_turns.acquire_static_permit(1).await.ok();
    yield_to_reactor().await;
    // Sessions whose input the same reactor turn brought were queued before this task woke:
    // one more pass through the run queue lets them go first.
    futures_lite::future::yield_now().await;
    link.slice_turn = turn;
}

/// See [`next_slice_turn`]: slices of one command that run without waiting for the turn,
/// at most [`SLICE_TIME`] each.
const FREE_SLICES: u32 = 8;

/// The interrupt every slice runs with ([`Session::set_interrupt`]): true once the slice has
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

/// Waits `duration` on the runtime's timer.
pub(crate) async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// Runs `work` on the shard's blocking pool (a thread off the reactor) and gives its result;
/// a panic in `work` is an `Err` with its message.
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    glommio::executor().spawn_blocking(move || crate::guard::guarded(work)).await
}

/// Runs `work` on this shard in the background; nobody waits for it (the runtime's spawn, so
/// files outside the runtime need not name the executor).
pub(crate) fn spawn_detached(work: impl Future<Output = ()> + 'static) {
    glommio::spawn_local(work).detach();
}

/// Brings every spool slice of `chunks` into memory (`pagein.rs`): cold ones are read through
/// the shard's io_uring ([`page_in_read`]), the rest read ahead, on the runtime's timer.
pub(crate) async fn page_in(shard: &Shard, chunks: &[OutChunk]) {
    let sleep = glommio::timer::sleep;
    let done = pagein::page_in(shard.id, chunks, sleep, page_in_read, Bounds::SERVER).await;
    shard.metrics().pagein_ring_reads(done.ring_reads);
}

/// Reads `range` through the ring (open, read, close: no descriptor outlives the read), so its
/// pages are in the page cache when the send copies them from the map; the bytes read are
/// dropped. A file under the name that is not the range's inode (renamed over since the view
/// was made) is not read.
async fn page_in_read(range: FileRange) -> std::io::Result<()> {
    let file = glommio::io::BufferedFile::open(&range.file.path).await?;
    let read = page_in_read_open(&file, &range).await;
    let closed = file.close().await;
    read?;
    Ok(closed?)
}

/// [`page_in_read`] on the opened file, in pieces of at most `PAGE_IN_READ_BYTES_MAX`.
async fn page_in_read_open(
    file: &glommio::io::BufferedFile,
    range: &FileRange,
) -> std::io::Result<()> {
    let stat = nix::sys::stat::fstat(file.as_raw_fd())?;
    if (stat.st_dev, stat.st_ino) != (range.file.device, range.file.inode) {
        return Err(std::io::Error::other("another file under the name now"));
    }
    let end = range.offset + range.len;
    let mut at = range.offset;
    while at < end {
        let want = usize::try_from(end - at).unwrap_or(usize::MAX).min(PAGE_IN_READ_BYTES_MAX);
        let read = file.read_at(at, want).await?;
        if read.is_empty() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        at += read.len() as u64;
    }
    Ok(())
}

/// See [`yield_to_reactor`]: long enough to be unexpired when first polled, short next to a
/// slice of work (hundreds of microseconds).
const YIELD_TIMER: Duration = Duration::from_micros(20);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use skua_core::disk::os::OsDisk;
    use skua_core::disk::{Disk, DiskFile, OpenMode};

    use super::page_in_read;

    /// The ring's read brings a cold file range into the page cache, and refuses a file that
    /// was renamed over since the view was made (the name is another inode now).
    #[test]
    fn ring_read_pages_in_and_checks_the_inode() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("temporary directory");
        std::fs::write(dir.path().join("seg"), vec![5u8; 1 << 20]).expect("write");
        let file = std::fs::File::open(dir.path().join("seg")).expect("open");
        file.sync_all().expect("sync");
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
        let disk = OsDisk::new(dir.path()).expect("disk");
        let seg = disk.open(Path::new("seg"), OpenMode::Existing).expect("seg");
        let view = seg.view(4096, 900_000).expect("view");
        if view.is_resident() {
            eprintln!("the page cache kept the file: residency not observable here");
            return;
        }
        let range = view.file_range().expect("a view of the real disk");
        crate::testutil::executor().run(async move {
            page_in_read(range.clone()).await.expect("read through the ring");
            assert!(view.is_resident(), "paged in by the ring's read");
            std::fs::write(dir.path().join("new"), b"other").expect("write");
            std::fs::rename(dir.path().join("new"), dir.path().join("seg")).expect("rename");
            let refused = page_in_read(range).await.expect_err("another file now");
            assert_eq!(refused.to_string(), "another file under the name now");
        });
    }
}
