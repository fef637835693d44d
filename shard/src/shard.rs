//! One shard's context and life: set up, serve until shutdown, drain, final flush.
//!
//! ```text
//!  bind listeners ─ report Ready ─ wait for Go ─ connect mesh ─ spawn: commit loop,
//!  mesh dispatchers, accept loops, shutdown watcher
//!      ... serve ...
//!  shutdown flag ─► stop event: accept loops end, idle sessions get BYE / 421
//!  ─ wait for own connections (grace) ─ mark drained ─ wait until every shard drained
//!  (deliveries from other shards are still served meanwhile) ─ wait for those deliveries
//!  ─ final flush round ─ return
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::future;
use glommio::channels::shared_channel::ConnectedReceiver;
use skua_core::disk::os::OsDisk;
use skua_protocols::imap::session::ImapConfig;
use skua_protocols::lmtp::LmtpConfig;

use crate::admission::{RefusalLog, SourceTable, UserSessions};
use crate::auth::AuthBrake;
use crate::commit::GroupCommit;
use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::event::Event;
use crate::limits::SHUTDOWN_POLL_MS;
use crate::listen::{self, Listener, Protocol};
use crate::mesh::{MeshEnds, MeshSenders};
use crate::placement::ShardId;
use crate::registry::Registry;
use crate::server::{DrainCount, StartGate, StartupReport};
use crate::shutdown::ShutdownHandle;
use crate::tracker::Tracker;
use crate::users::Users;
use crate::{call, imap, lmtp, watch};

/// The disk a shard's stores live on: the real disk under the shard's journal, so a flush
/// round syncs one file (FORMAT.md, "The shard journal").
pub type ShardDisk = skua_core::disk::journal::Journaled<OsDisk>;

/// Opens shard `index`'s disk over `data_dir`, replaying its journal (a server's start has
/// replayed every journal already, when it took the data-dir lock).
///
/// # Errors
/// The OS error opening the data dir or replaying.
pub fn open_shard_disk(data_dir: &std::path::Path, index: usize) -> std::io::Result<ShardDisk> {
    use skua_core::disk::journal::{Journaled, shard_journal_path};
    let path = shard_journal_path(index);
    let limit = skua_core::limits::JOURNAL_BYTES_MAX;
    let (disk, replayed) = Journaled::open(OsDisk::new(data_dir)?, &path, limit)?;
    if replayed.batches > 0 {
        tracing::info!(shard = index, batches = replayed.batches, "journal replayed");
    }
    Ok(disk)
}

/// Everything that crosses between shards. Owned data only.
pub(crate) enum ShardMessage {
    /// An authenticated IMAP connection moving to its user's home shard.
    HandOff(Box<imap::HandOff>),
    /// Work on a user's store, for that user's home shard (`call.rs`).
    Call(Box<call::Envelope>),
    /// The answer to a [`ShardMessage::Call`].
    Answer(Box<call::Answer>),
    /// Whether the sending shard watches a user of the receiving one (`watch.rs`).
    Watch(Box<watch::WatchState>),
    /// A watched user's store changed.
    Changed(Box<watch::Changed>),
}

// Channels preallocate `MESH_CHANNEL_CAPACITY` slots per ordered pair of shards: keep a slot
// to a tag and a pointer (payloads are boxed).
const _: () = assert!(std::mem::size_of::<ShardMessage>() <= 16);

/// Process-wide, read-mostly state shared by every shard.
pub(crate) struct Shared {
    /// The configuration.
    pub config: ServerConfig,
    /// The users, from the passwd-file (reloaded when it changes).
    pub users: Users,
    /// Set by signals or the embedding program.
    pub shutdown: ShutdownHandle,
    /// Start-up handshake.
    pub start_gate: StartGate,
    /// Shards that finished their own connections.
    pub drained: DrainCount,
    /// Number of shards.
    pub count: usize,
    /// Live connections per source address, across shards (see `admission.rs`).
    pub sources: Arc<SourceTable>,
    /// One log line per source and reason per interval.
    pub refusals: RefusalLog,
    /// Failed logins per source and per user, across shards (see `auth.rs`).
    pub auth_brake: AuthBrake,
    /// Every shard's counters for the Prometheus endpoint (`metrics.rs`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Who is refused at login and RCPT (`deny.rs`).
    pub deny: Arc<crate::deny::DenyState>,
    storage_failed: Mutex<Option<usize>>,
}

impl Shared {
    /// Loads the users and checks the data directory.
    ///
    /// # Errors
    /// [`ServeError::Users`], [`ServeError::DenyList`] or [`ServeError::DataDir`].
    pub(crate) fn load(
        config: ServerConfig,
        shutdown: ShutdownHandle,
        count: usize,
    ) -> Result<Shared, ServeError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| ServeError::DataDir { path: config.data_dir.clone(), source })?;
        let users = Users::load(&config.passwd_path).map_err(|error| ServeError::Users {
            path: config.passwd_path.clone(),
            detail: error.to_string(),
        })?;
        let deny = crate::deny::DenyState::load(config.data_dir.clone())
            .map_err(|error| ServeError::DenyList(error.to_string()))?;
        Ok(Shared {
            deny: Arc::new(deny),
            sources: SourceTable::new(config.connections_per_source_max),
            refusals: RefusalLog::new(config.refusal_log_interval),
            auth_brake: AuthBrake::new(config.auth_failure_delay),
            metrics: Arc::new(crate::metrics::Metrics::new(count)),
            config,
            users,
            shutdown,
            start_gate: StartGate::default(),
            drained: DrainCount::default(),
            count,
            storage_failed: Mutex::new(None),
        })
    }

    /// The first shard whose flush failed, if any.
    pub(crate) fn storage_failed_shard(&self) -> Option<usize> {
        *self.storage_failed.lock().expect("storage flag lock")
    }

    fn note_storage_failure(&self, shard: usize) {
        self.storage_failed.lock().expect("storage flag lock").get_or_insert(shard);
    }
}

/// One shard's state. Lives on the shard's thread only (`Rc`).
pub(crate) struct Shard {
    /// This shard.
    pub id: ShardId,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// IMAP settings for peers allowed to send plain-text passwords.
    pub imap_plaintext: Arc<ImapConfig>,
    /// IMAP settings for other peers.
    pub imap_strict: Arc<ImapConfig>,
    /// LMTP settings.
    pub lmtp_config: Arc<LmtpConfig>,
    /// Open user stores.
    pub registry: Registry,
    /// The group commit of this shard's disk.
    pub commit: Rc<GroupCommit<ShardDisk>>,
    /// Channels to the other shards.
    pub mesh: MeshSenders<ShardMessage>,
    /// Fires once, when shutdown starts.
    pub stop: Rc<Event>,
    /// Client connections served here (IMAP and LMTP).
    pub connections: Rc<Tracker>,
    /// Of those, the LMTP ones.
    pub lmtp_connections: Rc<Tracker>,
    /// Logged-in IMAP sessions per user (this shard is their home).
    pub user_sessions: Rc<UserSessions>,
    /// Work done here for other shards (cross-shard calls served).
    pub work: Rc<Tracker>,
    /// Cross-shard calls: those waiting on other shards, and how many are served here.
    pub calls: call::Calls,
    /// Other shards' users whose changes this shard's sessions watch (`watch.rs`).
    pub watches: watch::Watches,
    /// Bounds concurrent password checks to one less than the blocking threads, so a flush
    /// round never queues behind password hashes.
    pub auth_slots: glommio::sync::Semaphore,
    /// The one slice turn of the shard: a paused long command holds it while it waits for,
    /// and runs, its next slice (`imap.rs`, `next_slice_turn`).
    pub slice_turns: Rc<glommio::sync::Semaphore>,
    /// Session panics caught on this shard.
    pub panics: Cell<u64>,
}

impl Shard {
    /// True once shutdown started.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stop.generation() > 0
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// This shard's counters (`metrics.rs`).
    pub(crate) fn metrics(&self) -> &Arc<crate::metrics::ShardMetrics> {
        self.shared.metrics.shard(self.id.index())
    }

    /// True while this shard can take the connection of `protocol` it just counted (in
    /// [`Shard::connections`], and for LMTP in [`Shard::lmtp_connections`]): within the
    /// protocol's share of the shard's connections and of the process's open files.
    pub(crate) fn admits(&self, protocol: Protocol) -> bool {
        let budget = Budget::of(self.config());
        let lmtp = self.lmtp_connections.live();
        let imap = self.connections.live() - lmtp;
        let within = match protocol {
            Protocol::Imap => imap <= budget.imap,
            Protocol::Lmtp | Protocol::Socketmap => lmtp <= budget.lmtp,
            // Bounded by its own count (`admin.rs`), outside the client budgets.
            Protocol::Admin => true,
            Protocol::Metrics => true, // its own bound (`metrics_http.rs`)
        };
        let usage = crate::listen::FdUse { imap, lmtp };
        let lmtp_reserve = budget.lmtp * self.shared.count;
        within && crate::listen::fds_to_spare(self.id.index(), protocol, usage, lmtp_reserve)
    }

    /// Counts a caught panic and logs it.
    pub(crate) fn note_panic(&self, what: &str, detail: &str) {
        self.panics.set(self.panics.get() + 1);
        self.metrics().panic();
        tracing::error!(
            shard = self.id.0,
            panics = self.panics.get(),
            what,
            detail,
            "session panicked: connection closed with BYE [SERVERBUG], shard carries on"
        );
    }
}

/// The shard's connections, split between the protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// IMAP connections per shard.
    pub imap: usize,
    /// LMTP connections per shard.
    pub lmtp: usize,
}

impl Budget {
    /// LMTP's share is its configured budget, but never more than half of the shard's total
    /// (a small total must still leave IMAP most of it); IMAP gets the rest.
    pub(crate) fn of(config: &ServerConfig) -> Budget {
        let total = config.connections_per_shard_max;
        let lmtp = config.lmtp_connections_per_shard_max.min(total / 2);
        Budget { imap: total - lmtp, lmtp }
    }
}

/// The home shard of a user: placement hashes the ASCII-lowercased name, because user names
/// compare case-insensitively (`UserDb::lookup`) and the store directory is lowercased.
pub(crate) fn home_of(user: &str, shard_count: usize) -> ShardId {
    crate::placement::shard_for(&user.to_ascii_lowercase(), shard_count)
}

/// The shard's thread body (inside its executor).
pub(crate) async fn main(
    index: usize,
    ends: MeshEnds<ShardMessage>,
    shared: Arc<Shared>,
    reports: mpsc::Sender<(usize, StartupReport)>,
) -> Result<(), ServeError> {
    let setup = bind_all(&shared.config).and_then(|mut listeners| {
        // A unix socket has no SO_REUSEPORT group: shard 0 alone accepts on it (listen.rs).
        if index == 0 {
            for unix in &shared.config.lmtp_unix_listen {
                listeners.push(listen::bind_unix(Protocol::Lmtp, unix)?);
            }
            for unix in &shared.config.socketmap_unix_listen {
                listeners.push(listen::bind_unix(Protocol::Socketmap, unix)?);
            }
            // The admin socket (`admin.rs`): the data-dir lock is held by now. Without it the
            // server still serves mail (a data dir path too long for a socket address, say);
            // the tools then say the server does not answer.
            let path = shared.config.data_dir.join(crate::admin_proto::ADMIN_SOCKET_FILE);
            match listen::bind_unix(Protocol::Admin, &listen::UnixListen { path, mode: 0o600 }) {
                Ok(listener) => listeners.push(listener),
                Err(error) => tracing::error!(%error, "no admin socket: skua's tools cannot reach this server"),
            }
            // One shard serves the Prometheus endpoint: it reads every shard's counters.
            for &address in &shared.config.metrics_listen {
                listeners.push(listen::bind(Protocol::Metrics, address)?);
            }
        }
        let disk = open_shard_disk(&shared.config.data_dir, index).map_err(|source| ServeError::DataDir {
            path: shared.config.data_dir.clone(),
            source,
        })?;
        Ok((listeners, disk))
    });
    let (listeners, disk) = match setup {
        Ok(ready) => ready,
        Err(error) => {
            // The main thread may be gone already; then nobody needs the report.
            let _ = reports.send((index, StartupReport::Failed(error)));
            return Ok(());
        }
    };
    let _ = reports.send((index, StartupReport::Ready));
    drop(reports);
    if !shared.start_gate.wait() {
        return Ok(());
    }
    let (senders, receivers) = ends.connect().await;
    let shard = Rc::new(new_shard(index, shared, senders, Rc::new(disk)));
    glommio::spawn_local(shard.commit.clone().run(shard.config().flush_interval)).detach();
    for (peer, receiver) in receivers {
        glommio::spawn_local(dispatch(shard.clone(), peer, receiver)).detach();
    }
    glommio::spawn_local(watch_shutdown(shard.clone())).detach();
    glommio::spawn_local(close_idle_stores(shard.clone())).detach();
    glommio::spawn_local(watch::fan_out(shard.clone())).detach();
    glommio::spawn_local(crate::compaction::run(shard.clone(), glommio::timer::sleep)).detach();
    if index == 0 {
        glommio::spawn_local(reload_users(shard.clone())).detach();
    }
    tracing::info!(shard = index, "serving");
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|listener| glommio::spawn_local(accept(shard.clone(), listener)))
        .collect();
    for task in accepting {
        task.await;
    }
    drain(&shard).await;
    Ok(())
}

/// Which limits apply to a user whose store holds no SETQUOTA'd set: the passwd-file's
/// `userdb_quota_rule` (read when the file is loaded) for the resources it names, `[quota]`
/// for the others (`skua_core::users::quota_rule`).
fn quota_source(shared: &Arc<Shared>) -> crate::registry::QuotaSource {
    let shared = shared.clone();
    Box::new(move |user| {
        let default = shared.config.quota_default;
        shared.users.get().lookup(user).map_or(default, |entry| entry.quota().over(default))
    })
}

fn new_shard(
    index: usize,
    shared: Arc<Shared>,
    mesh: MeshSenders<ShardMessage>,
    disk: Rc<ShardDisk>,
) -> Shard {
    let mut imap_plaintext = ImapConfig::new(&shared.config.hostname);
    imap_plaintext.plaintext_login_allowed = true;
    imap_plaintext.starttls = shared.config.tls.is_some();
    imap_plaintext.require_tls = shared.config.require_tls;
    imap_plaintext.tokens = shared.config.sasl.tokens.is_some();
    imap_plaintext.admin_contact = shared.config.admin_contact.clone();
    imap_plaintext.namespaces.public_owner = shared.config.public_owner.clone();
    imap_plaintext.admins = shared.config.imap_admins.clone();
    let mut imap_strict = imap_plaintext.clone();
    imap_strict.plaintext_login_allowed = shared.config.plaintext_auth_always;
    let lmtp_config = Arc::new(crate::lmtp::session_config(&shared.config));
    // `validate` guarantees at least two blocking threads.
    let auth_slots = u64::try_from(shared.config.blocking_threads - 1).expect("bounded");
    let quota = quota_source(&shared);
    let metrics = shared.metrics.shard(index).clone();
    let commit = GroupCommit::new(disk.clone());
    commit.set_metrics(metrics.clone());
    let calls = call::Calls::default();
    calls.set_metrics(metrics.clone());
    Shard {
        id: ShardId(u32::try_from(index).expect("shard count is bounded")),
        shared,
        imap_plaintext: Arc::new(imap_plaintext),
        imap_strict: Arc::new(imap_strict),
        lmtp_config,
        registry: Registry::new(disk).with_quota(quota).with_metrics(metrics),
        commit,
        mesh,
        stop: Rc::new(Event::new()),
        connections: Tracker::new(),
        lmtp_connections: Tracker::new(),
        user_sessions: Rc::new(UserSessions::default()),
        work: Tracker::new(),
        calls,
        watches: watch::Watches::default(),
        auth_slots: glommio::sync::Semaphore::new(auth_slots),
        slice_turns: Rc::new(glommio::sync::Semaphore::new(1)),
        panics: Cell::new(0),
    }
}

fn bind_all(config: &ServerConfig) -> Result<Vec<Listener>, ServeError> {
    let imap = config.imap_listen.iter().map(|&a| listen::bind(Protocol::Imap, a));
    // `validate` refused IMAPS addresses without certificates.
    let imaps = config.imap_tls_listen.iter().map(|&a| {
        let mut listener = listen::bind(Protocol::Imap, a)?;
        listener.implicit_tls = true;
        Ok(listener)
    });
    let lmtp = config.lmtp_listen.iter().map(|&a| listen::bind(Protocol::Lmtp, a));
    let socketmap = config.socketmap_listen.iter().map(|&a| listen::bind(Protocol::Socketmap, a));
    imap.chain(imaps).chain(lmtp).chain(socketmap).collect()
}

async fn accept(shard: Rc<Shard>, listener: Listener) {
    let stop = shard.stop.clone();
    match listener.protocol {
        Protocol::Imap => {
            let implicit_tls = listener.implicit_tls;
            listen::accept_loop(listener, stop, 0, |stream| {
                imap::serve(shard.clone(), stream, implicit_tls)
            })
            .await;
        }
        Protocol::Lmtp if listener.is_local() => {
            let serve = |stream| lmtp::serve_local(shard.clone(), stream);
            listen::accept_loop(listener, stop, 0, serve).await;
        }
        Protocol::Lmtp => {
            listen::accept_loop(listener, stop, 0, |stream| lmtp::serve(shard.clone(), stream))
                .await;
        }
        Protocol::Socketmap => {
            let local = listener.is_local();
            let serve = |stream| crate::socketmap::serve(shard.clone(), stream, local);
            listen::accept_loop(listener, stop, 0, serve).await;
        }
        Protocol::Admin => {
            let serve = |stream: glommio::net::TcpStream| {
                let peer = crate::admin::peer_uid(&stream);
                let timeout = Duration::from_millis(crate::limits::ADMIN_IO_TIMEOUT_MS);
                let accepted = crate::conn::Connection::new_local(stream, timeout);
                crate::admin::serve(shard.clone(), accepted, peer, glommio::timer::sleep)
            };
            listen::accept_loop(listener, stop, 0, serve).await;
        }
        Protocol::Metrics => {
            let endpoint = crate::metrics_http::Endpoint::new(&shard);
            let timeout = crate::metrics_http::REQUEST_TIMEOUT;
            let serve = |stream| {
                let connection = crate::conn::Connection::new(stream, timeout);
                endpoint.clone().serve(shard.clone(), connection)
            };
            listen::accept_loop(listener, stop, 0, serve).await;
        }
    }
}

/// Receives from one peer shard until it goes away. Never waits on a send of its own.
async fn dispatch(shard: Rc<Shard>, peer: ShardId, receiver: ConnectedReceiver<ShardMessage>) {
    while let Some(message) = receiver.recv().await {
        match message {
            ShardMessage::HandOff(handoff) => {
                glommio::spawn_local(imap::arrive(shard.clone(), handoff)).detach();
            }
            ShardMessage::Call(envelope) => {
                glommio::spawn_local(call::serve_envelope(shard.clone(), *envelope)).detach();
            }
            ShardMessage::Answer(answer) => shard.calls.complete(*answer),
            ShardMessage::Watch(state) => shard.registry.watchers.apply(*state),
            ShardMessage::Changed(changed) => shard.watches.changed(&changed.user),
        }
    }
    tracing::debug!(shard = shard.id.0, peer = peer.0, "peer channel closed");
    shard.calls.target_gone(peer);
}

/// Turns the process-wide shutdown flag into this shard's stop event.
async fn watch_shutdown(shard: Rc<Shard>) {
    while !shard.shared.shutdown.is_shutdown() {
        glommio::timer::sleep(Duration::from_millis(SHUTDOWN_POLL_MS)).await;
    }
    tracing::info!(shard = shard.id.0, connections = shard.connections.live(), "shutting down");
    shard.stop.notify();
}

/// Closes user stores nobody used for a while, and keeps their number bounded.
async fn close_idle_stores(shard: Rc<Shard>) {
    let idle = shard.config().store_idle_close;
    let period = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    while !shard.is_stopping() {
        glommio::timer::sleep(period).await;
        let max = shard.config().open_stores_per_shard_max;
        let closed = shard.registry.sweep(std::time::Instant::now(), idle, max);
        if closed > 0 {
            tracing::debug!(
                shard = shard.id.0,
                closed,
                open = shard.registry.len(),
                "stores closed"
            );
        }
    }
}

/// Reloads the passwd-file when it changes (shard 0 only; the result is shared): starts the
/// watcher thread (`users.rs`: inotify, the periodic check as a fallback, and the
/// acknowledgement `skua user` waits for) and stops it at shutdown. Should the thread not
/// start, checks the file every period from here instead (and still acknowledges).
async fn reload_users(shard: Rc<Shard>) {
    let interval = shard.config().users_reload_interval;
    let data_dir = shard.config().data_dir.clone();
    let (users, others) = (shard.shared.users.clone(), shard.config().sasl.watched_files());
    match crate::users::Watcher::start(users, others, data_dir.clone(), interval) {
        Ok(watcher) => {
            shard.stop.wait_past(0).await;
            // Joining waits for at most one load attempt, so not on the reactor; and not on
            // glommio's blocking pool either: this task is not awaited at shutdown, and a pool
            // job finishing after the executor is gone panics sending its answer.
            let joiner = std::thread::Builder::new()
                .name("skua-users-stop".to_owned())
                .spawn(move || watcher.stop());
            if let Err(error) = joiner {
                tracing::warn!(%error, "cannot stop the passwd-file watcher cleanly");
            }
            return;
        }
        Err(error) => {
            tracing::error!(%error, "cannot start the passwd-file watcher; polling instead");
        }
    }
    let mut look = true;
    while !shard.is_stopping() {
        let users = shard.shared.users.clone();
        let data_dir = data_dir.clone();
        let reloaded = glommio::executor()
            .spawn_blocking(move || {
                crate::guard::guarded(|| {
                    let outcome = users.reload(look);
                    if look || outcome != crate::users::Reload::Unchanged {
                        let ack = users.acknowledgement(std::process::id());
                        if let Err(error) = ack.write(&data_dir) {
                            tracing::error!(%error, "cannot write the passwd-file acknowledgement");
                        }
                    }
                    if outcome == crate::users::Reload::Loaded {
                        users.measure();
                    }
                    outcome
                })
            })
            .await;
        look = false;
        match reloaded {
            Ok(crate::users::Reload::Loaded) => {
                tracing::info!(users = shard.shared.users.get().len(), "passwd-file reloaded")
            }
            Ok(_) => {}
            Err(detail) => tracing::error!(detail, "passwd-file reload panicked"),
        }
        glommio::timer::sleep(interval).await;
    }
}

/// After the accept loops ended: let connections finish, wait for the other shards, flush.
async fn drain(shard: &Rc<Shard>) {
    let grace = shard.config().shutdown_grace;
    let finished = future::or(
        async {
            shard.connections.wait_idle().await;
            true
        },
        async {
            glommio::timer::sleep(grace).await;
            false
        },
    )
    .await;
    if !finished {
        tracing::warn!(
            shard = shard.id.0,
            connections = shard.connections.live(),
            "connections still open after the shutdown grace period; cutting them"
        );
    }
    shard.shared.drained.mark();
    while shard.shared.drained.count() < shard.shared.count {
        glommio::timer::sleep(Duration::from_millis(SHUTDOWN_POLL_MS)).await;
    }
    future::or(shard.work.wait_idle(), glommio::timer::sleep(grace)).await;
    if shard.calls.refused() > 0 {
        tracing::warn!(
            shard = shard.id.0,
            refused = shard.calls.refused(),
            "cross-shard calls refused over their bound since start"
        );
    }
    shard.commit.round().await;
    // A clean stop leaves the users' files synced and the journal empty, so the data dir
    // needs no replay (and can be copied without its journal).
    if !shard.commit.is_failed()
        && let Err(error) = shard.commit.disk().checkpoint_now()
    {
        tracing::error!(shard = shard.id.0, %error, "the journal's last checkpoint failed");
        shard.shared.note_storage_failure(shard.id.index());
    }
    if shard.commit.is_failed() {
        shard.shared.note_storage_failure(shard.id.index());
    }
    tracing::info!(
        shard = shard.id.0,
        flush_rounds = shard.commit.rounds(),
        open_stores = shard.registry.len(),
        panics = shard.panics.get(),
        login_failure_sources = shard.shared.auth_brake.sources(),
        "stopped"
    );
}
