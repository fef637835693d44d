//! IMAP connections: greet (or turn away), run the [`ImapSession`] on the protocol driver
//! (`driver.rs`), and carry out the one step only IMAP has: a login, which checks the
//! credentials off the shard's thread and then either opens the user's store here or hands
//! the connection to the user's home shard.
//!
//! ```text
//!  accept ─ (IMAPS: handshake) ─ greeting ─ driver ─┬─ Own(Authenticate) ── sasl::answer ─┐
//!                                                    │    home here → open store, auth_done│
//!                                                    │    elsewhere → End::HandOff ─ move  │
//!                                                    └─ End::Close ─ finish, release store │
//!                                                    ◄──────────────────────────────────────┘
//! ```
//!
//! A new connection is admitted against the shard's IMAP budget and its source's budget
//! (`admission.rs`); a login against the user's. A panic in a step ends the connection with
//! `* BYE [SERVERBUG]` and poisons the user's store (its memory may be inconsistent).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;
use skua_core::deny::Service;
use skua_protocols::imap::session::{
    AuthOutcome, AuthRequest, ElsewhereFailure, ImapSession, OutChunk, Step,
};

use crate::conn::Connection;
use crate::driver::{self, End, Feed, Link, Session};
use crate::guard::guarded;
use crate::handoff::{self, DetachError, DetachedSocket};
use crate::listen::open_files_limit;
use crate::sasl;

use crate::admission::{Refusal, SourceSlot, UserSlot};
use crate::listen::Protocol;
use crate::metrics::{OpenConnection, Protocol as MetricProtocol};
use crate::registry::UserHandle;
use crate::reply::{Ending, auth_outcome_of_registry, auth_outcome_of_user_cap, imap_bye};
use crate::shard::{Shard, ShardMessage, home_of};
use crate::shared_run::{Remote, RunAnswer, RunSession};
use crate::watch::{WatchGuard, Watches};

/// An authenticated connection on its way to the user's home shard.
pub(crate) struct HandOff {
    socket: DetachedSocket,
    session: ImapSession,
    user: String,
    /// The connection's place in its source's budget travels with it.
    source: SourceSlot,
    /// When the connection must have logged in (the login may still fail on arrival).
    login_deadline: Instant,
    /// The connection's place in the open-connections gauge, moved to the new shard's.
    open: OpenConnection,
}

/// One client's IMAP state on the shard: the sans-IO session, and once logged in the user's
/// store and budget place. It lives in a boxed [`Link`]: work that needs a large future
/// (password check, hand-off, writes waiting for durability) is boxed while it runs instead
/// of sizing every connection's task for it.
pub(crate) struct Imap {
    session: ImapSession,
    user: Option<Rc<UserHandle>>,
    /// The logged-in session's place in its user's budget.
    user_slot: Option<UserSlot>,
    /// The connection's place in its source's budget.
    source: SourceSlot,
    /// Accept time plus `login_deadline`: until logged in, no wait goes past it.
    login_deadline: Instant,
    /// A step the session took on another user's store, for the driver to carry out next.
    remote: Option<Remote>,
    /// The watch of the selected mailbox's owner when that is another user, and the watch
    /// event's generation the session last ran on that store at.
    watch: Option<(WatchGuard, u64)>,
    /// The connection in the shard's open-connections gauge.
    open: OpenConnection,
    /// The deny list's generation this session last checked its user against (`deny.rs`);
    /// 0: not yet, so a session's first command after its login checks once.
    deny_seen: u64,
}

/// The steps only IMAP has.
pub(crate) enum ImapOwn {
    /// A login request.
    Auth(AuthRequest),
    /// Run the session on this user's store (as the client spelled the user).
    Elsewhere(String),
}

impl Imap {
    fn new(
        session: ImapSession,
        source: SourceSlot,
        login_deadline: Instant,
        open: OpenConnection,
    ) -> Imap {
        Imap {
            session,
            user: None,
            user_slot: None,
            source,
            login_deadline,
            remote: None,
            watch: None,
            open,
            deny_seen: 0,
        }
    }

    /// True when the deny list changed since this session last looked and now refuses its
    /// user IMAP (`skua deny`): the session is ended. One atomic load when nothing changed.
    fn denied_since(&mut self, shard: &Shard) -> bool {
        let Some(handle) = self.user.as_ref() else { return false };
        let generation = shard.shared.deny.generation();
        if generation == self.deny_seen {
            return false;
        }
        self.deny_seen = generation;
        let denied = shard.shared.deny.refusal(&handle.name, Service::Imap).is_some();
        if denied {
            tracing::warn!(
                shard = shard.id.0,
                user = handle.name.as_str(),
                "session ended: user denied"
            );
        }
        denied
    }

    /// A step of the session as the driver's step.
    fn driver_step(step: Step) -> driver::Step<ImapOwn> {
        match step {
            Step::NeedInput => driver::Step::Read,
            Step::Idle => driver::Step::Idle,
            Step::Write { chunks, durable } => {
                let answers = !is_continuation_request(&chunks);
                driver::Step::Write { chunks, durable, answers }
            }
            Step::Yield => driver::Step::Yield,
            Step::Authenticate(request) => driver::Step::Own(ImapOwn::Auth(request)),
            Step::StartTls => driver::Step::StartTls,
            Step::Compress => driver::Step::Compress,
            Step::Close => driver::Step::Close,
            Step::Elsewhere { owner: Some(owner) } => driver::Step::Own(ImapOwn::Elsewhere(owner)),
            // Only a session running on another user's store goes back to its own, and it
            // runs there only inside `run_elsewhere`: here, the next `next` is at home.
            Step::Elsewhere { owner: None } => driver::Step::Yield,
        }
    }

    /// Runs the session on `owner`'s store, on `owner`'s home shard (`shared_run.rs`).
    async fn run_elsewhere(&mut self, shard: &Rc<Shard>, owner: &str) -> Result<(), End> {
        let public = shard.config().public_owner.as_deref();
        let canonical = match public {
            Some(public) if public.eq_ignore_ascii_case(owner) => Some(public.to_owned()),
            _ => shard.shared.users.get().lookup(owner).map(|entry| entry.name.clone()),
        };
        let Some(owner) = canonical else {
            self.session.elsewhere_failed(ElsewhereFailure::NoSuchUser);
            return Ok(());
        };
        let placeholder = ImapSession::new(shard.imap_strict.clone());
        let session = Box::new(std::mem::replace(&mut self.session, placeholder));
        let answer = crate::call::call(shard, RunSession { owner, session }).await;
        let RunAnswer { session, step } = match answer {
            Ok(answer) => answer,
            Err(_) => return Err(End::Close(Some(imap_bye(Ending::Shutdown)))),
        };
        let Some(session) = session else {
            return Err(End::Close(Some(imap_bye(Ending::ServerBug))));
        };
        self.session = *session;
        match step {
            Remote::Failed(failure) => self.session.elsewhere_failed(failure),
            Remote::End(ending) => return Err(End::Close(Some(imap_bye(ending)))),
            step => self.remote = Some(step),
        }
        self.follow_selection(shard);
        Ok(())
    }

    /// Watches the selected mailbox's owner when that is another user, so IDLE hears its
    /// changes; the watch starts before the session's next command can run there.
    fn follow_selection(&mut self, shard: &Rc<Shard>) {
        match self.session.selected_owner() {
            None => self.watch = None,
            Some(owner) => {
                let watching = self.watch.as_ref().is_some_and(|(watch, _)| watch.owner_is(owner));
                if !watching {
                    let watch = Watches::watch(shard, owner);
                    let seen = watch.event.generation();
                    self.watch = Some((watch, seen));
                }
            }
        }
    }
    /// UNAUTHENTICATE ran (RFC 8437): the user's store and place in the user's budget go, and
    /// the connection has a new login deadline for whoever logs in next (who may live on
    /// another shard: the next login hands the connection over as a first one does).
    fn logged_out(&mut self, shard: &Shard) {
        if let Some(handle) = self.user.take() {
            tracing::info!(
                shard = shard.id.0,
                user = handle.name.as_str(),
                "logged out, connection kept"
            );
            shard.registry.release(handle);
        }
        self.watch = None;
        self.user_slot = None;
        self.login_deadline = Instant::now() + shard.config().login_deadline;
    }
}

impl Feed for ImapSession {
    fn feed(&mut self, bytes: &[u8]) {
        ImapSession::feed(self, bytes);
    }
}

impl Session for Imap {
    const NAME: &'static str = "imap";
    type Own = ImapOwn;
    type Input = ImapSession;

    fn next(&mut self, shard: &Shard) -> Result<driver::Step<ImapOwn>, End> {
        // Commands parsed in this step count their latency from here (`metrics.rs`).
        self.session.set_step_time(Instant::now());
        if let Some(remote) = self.remote.take() {
            return Ok(match remote {
                Remote::Write(bytes) => {
                    let chunks: Vec<OutChunk> = bytes.into_iter().map(OutChunk::Owned).collect();
                    let answers = !is_continuation_request(&chunks);
                    driver::Step::Write { chunks, durable: None, answers }
                }
                Remote::Step(step) => Imap::driver_step(step.into_step()),
                Remote::Failed(_) | Remote::End(_) => unreachable!("handled in run_elsewhere"),
            });
        }
        if self.session.is_idling()
            && let Some((watch, seen)) = self.watch.as_mut()
            && watch.event.generation() != *seen
        {
            // The selected mailbox's owner changed something: IDLE reports it from there.
            *seen = watch.event.generation();
            return Ok(driver::Step::Own(ImapOwn::Elsewhere(watch.owner().to_owned())));
        }
        if self.user.as_ref().is_some_and(|handle| handle.is_poisoned()) {
            return Err(End::Close(Some(imap_bye(Ending::StoreReset))));
        }
        if self.denied_since(shard) {
            return Err(End::Close(Some(imap_bye(Ending::Denied))));
        }
        let session = &mut self.session;
        let step = match self.user.as_deref() {
            Some(handle) => handle.with_store(|store| session.next(Some(store))),
            None => session.next::<crate::shard::ShardDisk>(None),
        };
        if self.session.take_unauthenticated() {
            self.logged_out(shard);
        }
        Ok(Imap::driver_step(step))
    }

    async fn act(
        &mut self,
        shard: &Rc<Shard>,
        connection: &mut Connection,
        own: ImapOwn,
    ) -> Result<(), End> {
        let request = match own {
            ImapOwn::Auth(request) => request,
            ImapOwn::Elsewhere(owner) => return self.run_elsewhere(shard, &owner).await,
        };
        let answered = sasl::answer(shard, connection, &mut self.session, request).await;
        let Some(user) = answered else { return Ok(()) };
        if home_of(&user, shard.shared.count) != shard.id {
            // Only a session that is not logged in authenticates.
            debug_assert!(self.user.is_none(), "a logged-in session does not move");
            return Err(End::HandOff(user));
        }
        let source = connection.peer().ip();
        let (handle, slot) = log_in_here(shard, &mut self.session, &user, source).await;
        self.user = handle;
        self.user_slot = slot;
        Ok(())
    }

    fn input(&mut self) -> (&mut ImapSession, driver::Wakers<'_>) {
        // With another user's mailbox selected, IDLE waits for that user's changes.
        let changes = match &self.watch {
            Some((watch, _)) => Some(&*watch.event),
            None => self.user.as_ref().map(|handle| &handle.changed),
        };
        let reset = self.user.as_ref().map(|handle| &handle.reset);
        (&mut self.session, driver::Wakers { changes, reset })
    }

    fn has_partial_command(&self) -> bool {
        self.session.has_partial_command()
    }

    fn in_progress(&self) -> bool {
        self.session.in_progress()
    }

    fn set_interrupt(&mut self, interrupt: fn() -> bool) {
        self.session.set_interrupt(Some(interrupt));
    }

    fn read_timeout(&self, shard: &Shard) -> Duration {
        if self.user.is_some() {
            shard.config().timeout_after_login
        } else {
            shard.config().timeout_before_login
        }
    }

    fn login_deadline(&self) -> Option<Instant> {
        self.user.is_none().then_some(self.login_deadline)
    }

    fn goodbye(ending: Ending) -> &'static [u8] {
        imap_bye(ending)
    }

    fn panicked(&mut self, shard: &Shard) {
        if let Some(handle) = &self.user {
            shard.registry.poison(handle);
        }
    }

    fn tls_config(shard: &Shard) -> Option<Arc<rustls::ServerConfig>> {
        shard.config().tls.as_ref().map(|tls| tls.imap())
    }

    fn tls_started(&mut self, shard: &Shard, connection: &Connection) {
        self.session.tls_started();
        let (binding, external) = sasl::tls_identity(shard.config().tls.as_deref(), connection);
        self.session.set_tls_identity(binding, external);
    }

    fn user(&self) -> Option<&str> {
        self.user.as_ref().map(|handle| handle.name.as_str())
    }

    fn written(&mut self, shard: &Shard) {
        // Every tagged reply the session wrote so far was in this write (or an earlier one):
        // each step's output goes out before the next step.
        let now = Instant::now();
        for (command, parsed) in self.session.take_answered() {
            shard.metrics().command(command, now.saturating_duration_since(parsed));
        }
    }
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
        if let Some(link) = greeting.await {
            run(&shard, link).await;
        }
    }
}

/// Greets a new connection, or turns it away when the shard's IMAP budget or its source's
/// budget is spent (see `admission.rs`). On an IMAPS listener the TLS handshake comes first
/// (the refusal of an over-budget connection is then sent in plain text: it costs no
/// handshake, and a TLS client just sees the connection close).
async fn welcome(
    shard: Rc<Shard>,
    stream: TcpStream,
    implicit_tls: bool,
) -> Option<Box<Link<Imap>>> {
    let accepted = Instant::now();
    let protocol = if implicit_tls { MetricProtocol::Imaps } else { MetricProtocol::Imap };
    let open = shard.metrics().connection_opened(protocol);
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
        let tls = Imap::tls_config(&shard)?;
        driver::handshake::<Imap>(&shard, &mut connection, tls, Some(login_deadline)).await?;
    }
    let greeting = session.greeting();
    let mut imap = Imap::new(session, source, login_deadline, open);
    if implicit_tls {
        imap.tls_started(&shard, &connection);
    }
    connection.write_all(&greeting).await.ok()?;
    Some(Box::new(Link::new(connection, imap)))
}

/// Continues a connection handed over by another shard.
pub(crate) async fn arrive(shard: Rc<Shard>, handoff: Box<HandOff>) {
    let _pass = shard.connections.enter();
    if let Some(link) = Box::pin(settle(&shard, handoff)).await {
        run(&shard, link).await;
    }
}

/// Takes over a handed-over connection and completes its login here.
async fn settle(shard: &Shard, handoff: Box<HandOff>) -> Option<Box<Link<Imap>>> {
    let HandOff { socket, mut session, user, source, login_deadline, open } = *handoff;
    let open = open.moved_to(shard.metrics());
    let mut connection = handoff::attach(socket, shard.config().timeout_after_login).ok()?;
    if shard.is_stopping() {
        session.auth_done(AuthOutcome::Unavailable);
        let _ = connection.write_all(imap_bye(Ending::Shutdown)).await;
        connection.close().await;
        return None;
    }
    let peer = connection.peer().ip();
    let (handle, user_slot) = log_in_here(shard, &mut session, &user, peer).await;
    let mut imap = Imap::new(session, source, login_deadline, open);
    imap.user = handle;
    imap.user_slot = user_slot;
    Some(Box::new(Link::new(connection, imap)))
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
    match shard.registry.open(user, driver::yield_to_reactor).await {
        Ok(handle) => {
            provision(shard, &handle, user);
            session.set_user(user);
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

/// A user's first login: makes the configured default folders (`[folders]`), once, in one
/// log batch (`UserStore::provision`: "first" is "no provisioned record in the log yet", so
/// a crash before the batch is durable makes the next login try again). A failure is logged
/// and the login goes on: the folders are a convenience, the mail is not at stake.
fn provision(shard: &Shard, handle: &UserHandle, user: &str) {
    let folders = &shard.config().default_folders;
    match handle.with_store(|store| store.provision(folders)) {
        Ok(true) => tracing::info!(shard = shard.id.0, user, "default folders made"),
        Ok(false) => {}
        Err(error) => tracing::warn!(shard = shard.id.0, user, %error, "no default folders"),
    }
}

/// Runs a connection on the driver, then closes it or moves it to the user's home shard.
async fn run(shard: &Rc<Shard>, mut link: Box<Link<Imap>>) {
    match driver::drive(shard, &mut link).await {
        End::Close(bye) => {
            let imap = Box::pin(driver::finish(shard, *link, bye)).await;
            if let Some(handle) = imap.user {
                shard.registry.release(handle);
            }
            // The budgets (user and source) are given back here, with the session.
        }
        End::HandOff(user) => Box::pin(hand_off(shard, link, user)).await,
    }
}

/// True when a write is only a continuation request (`+ ...`), which asks for more of the
/// same command rather than answering it.
fn is_continuation_request(chunks: &[OutChunk]) -> bool {
    chunks.first().is_some_and(|chunk| chunk.as_bytes().starts_with(b"+"))
        && chunks.iter().map(|chunk| chunk.as_bytes().len()).sum::<usize>() < 1024
}

/// Moves the connection to `user`'s home shard. The session's login completes there.
async fn hand_off(shard: &Shard, link: Box<Link<Imap>>, user: String) {
    let Link {
        connection, session: Imap { mut session, source, login_deadline, open, .. }, ..
    } = *link;
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
            let answer = guarded(|| session.next::<crate::shard::ShardDisk>(None));
            if let Ok(Step::Write { chunks, .. }) = answer {
                let _ = driver::write_chunks(&mut connection, &chunks).await;
            }
            let _ = connection.write_all(imap_bye(Ending::TooManyConnections)).await;
            connection.close().await;
            return;
        }
    };
    let peer = socket.peer();
    tracing::debug!(%peer, source = shard.id.0, target = home.0, "handing connection over");
    let handoff = HandOff { socket, session, user, source, login_deadline, open };
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
