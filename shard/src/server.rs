//! Starting and stopping the shards: one thread per shard, each running one pinned glommio
//! executor, with a start-up handshake so that a shard that cannot start (ring set-up refused,
//! address in use) stops the whole server with a clear error instead of leaving it half up.
//!
//! ```text
//!  main thread                        shard thread i
//!  ───────────                        ──────────────
//!  spawn N threads ─────────────────► make executor (io_uring rings, io_memory)
//!                                     bind listeners (SO_REUSEPORT)
//!  wait for N reports  ◄───────────── report Ready / Failed(error)
//!  all ready? publish Go, else Abort ► Go: connect the mesh, serve until shutdown
//!  join N threads      ◄───────────── final flush, return
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};

use crate::config::{ServerConfig, allowed_cpus};
use crate::error::ServeError;
use crate::limits::BLOCKING_THREADS_MAX;
use crate::listen::{Protocol, proc_limit};
use crate::mesh::{self, MeshEnds};
use crate::shard::{self, ShardMessage, Shared};
use crate::shutdown::{ShutdownHandle, install_signal_handlers};

/// What a shard thread tells the main thread after its set-up.
pub(crate) enum StartupReport {
    /// Executor made and listeners bound.
    Ready,
    /// Set-up failed; the server will not start.
    Failed(ServeError),
}

/// The main thread's decision, once every shard reported.
#[derive(Default)]
pub(crate) struct StartGate {
    decision: Mutex<Option<bool>>,
    decided: Condvar,
}

impl StartGate {
    fn decide(&self, go: bool) {
        *self.decision.lock().expect("start gate lock") = Some(go);
        self.decided.notify_all();
    }

    /// Blocks until the main thread decided; true means serve. Called once per shard before
    /// it serves anything, so blocking its (otherwise idle) reactor thread here is harmless.
    pub(crate) fn wait(&self) -> bool {
        let mut decision = self.decision.lock().expect("start gate lock");
        loop {
            if let Some(go) = *decision {
                return go;
            }
            decision = self.decided.wait(decision).expect("start gate lock");
        }
    }
}

/// Serves until SIGTERM or SIGINT, then shuts down gracefully and returns.
///
/// # Errors
/// See [`ServeError`]: bad config, a listener that cannot bind, an executor that cannot
/// start (with advice about `LimitMEMLOCK`), a failed flush.
pub fn run(config: ServerConfig) -> Result<(), ServeError> {
    let handle = ShutdownHandle::new();
    let _signals = install_signal_handlers(&handle)?;
    run_with_shutdown(config, handle)
}

/// Serves until `shutdown` is triggered (no signal handlers are installed).
///
/// # Errors
/// As [`run`].
pub fn run_with_shutdown(config: ServerConfig, shutdown: ShutdownHandle) -> Result<(), ServeError> {
    run_with_ready(config, shutdown, || {})
}

/// As [`run_with_shutdown`], calling `on_ready` (on this thread) once every shard has made its
/// executor, bound every listener and been let go to serve: from then on the kernel accepts
/// connections on every configured address. Not called when start-up fails. `skua serve`
/// tells systemd `READY=1` here.
///
/// # Errors
/// As [`run`].
pub fn run_with_ready(
    config: ServerConfig,
    shutdown: ShutdownHandle,
    on_ready: impl FnOnce(),
) -> Result<(), ServeError> {
    validate(&config)?;
    let addresses = [
        (Protocol::Imap, &config.imap_listen),
        (Protocol::Imap, &config.imap_tls_listen),
        (Protocol::Lmtp, &config.lmtp_listen),
        (Protocol::Socketmap, &config.socketmap_listen),
        (Protocol::Metrics, &config.metrics_listen),
    ];
    for (protocol, list) in addresses {
        for &address in list {
            crate::listen::probe_unclaimed(protocol, address)?;
        }
    }
    skua_core::disk::os::observe_syncs(crate::metrics::observe_fdatasync);
    let count = config.shard_count();
    let shared = Arc::new(Shared::load(config, shutdown, count)?);
    tracing::info!(
        shards = count,
        imap = ?shared.config.imap_listen,
        imaps = ?shared.config.imap_tls_listen,
        lmtp = ?shared.config.lmtp_listen,
        socketmap = ?shared.config.socketmap_listen,
        data_dir = %shared.config.data_dir.display(),
        "starting"
    );
    let (report_sender, reports) = mpsc::channel();
    let cpus = allowed_cpus();
    let mut threads = Vec::with_capacity(count);
    for (index, ends) in mesh::build::<ShardMessage>(count).into_iter().enumerate() {
        let placement = if shared.config.pin_to_cores {
            Placement::Fixed(cpus[index % cpus.len()])
        } else {
            Placement::Unbound
        };
        let spawned = spawn_shard(index, placement, ends, shared.clone(), report_sender.clone());
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(error) => {
                shared.start_gate.decide(false);
                join_all(threads);
                return Err(error);
            }
        }
    }
    drop(report_sender);
    let first_error = collect_reports(&reports, count);
    shared.start_gate.decide(first_error.is_none());
    if first_error.is_none() {
        on_ready();
    }
    let results = join_all(threads);
    if let Some(error) = first_error {
        return Err(error);
    }
    results.into_iter().collect::<Result<Vec<()>, ServeError>>()?;
    if let Some(shard) = shared.storage_failed_shard() {
        return Err(ServeError::Storage { shard });
    }
    tracing::info!("stopped");
    Ok(())
}

fn validate(config: &ServerConfig) -> Result<(), ServeError> {
    if config.imap_listen.is_empty() && config.lmtp_listen.is_empty() {
        return Err(ServeError::Config("no IMAP or LMTP listen address".to_owned()));
    }
    if !config.imap_tls_listen.is_empty() && config.tls.is_none() {
        return Err(ServeError::Config("an IMAPS listen address needs a TLS certificate".into()));
    }
    if config.require_tls && config.tls.is_none() {
        return Err(ServeError::Config("require_tls needs a TLS certificate".to_owned()));
    }
    if config.blocking_threads < 2 || config.blocking_threads > BLOCKING_THREADS_MAX {
        return Err(ServeError::Config(format!(
            "blocking_threads must be in 2..={BLOCKING_THREADS_MAX} (one is kept for flushes)"
        )));
    }
    Ok(())
}

/// Waits for every shard's report; the first failure, if any.
fn collect_reports(
    reports: &mpsc::Receiver<(usize, StartupReport)>,
    count: usize,
) -> Option<ServeError> {
    let mut first_error = None;
    for _ in 0..count {
        match reports.recv() {
            Ok((_, StartupReport::Ready)) => {}
            Ok((shard, StartupReport::Failed(error))) => {
                tracing::error!(shard, %error, "shard failed to start");
                first_error.get_or_insert(error);
            }
            Err(mpsc::RecvError) => {
                first_error.get_or_insert(ServeError::Shard {
                    shard: 0,
                    detail: "a shard thread ended before reporting".to_owned(),
                });
                break;
            }
        }
    }
    first_error
}

fn spawn_shard(
    index: usize,
    placement: Placement,
    ends: MeshEnds<ShardMessage>,
    shared: Arc<Shared>,
    reports: mpsc::Sender<(usize, StartupReport)>,
) -> Result<thread::JoinHandle<Result<(), ServeError>>, ServeError> {
    thread::Builder::new()
        .name(format!("skua-shard-{index}"))
        .spawn(move || {
            let builder = LocalExecutorBuilder::new(placement)
                .name(&format!("skua-shard-{index}"))
                .io_memory(shared.config.io_memory_bytes)
                .blocking_thread_pool_placement(PoolPlacement::Unbound(
                    shared.config.blocking_threads,
                ));
            let builder = if shared.config.detect_stalls {
                builder.detect_stalls(Some(Box::new(glommio::DefaultStallDetectionHandler {})))
            } else {
                builder
            };
            let executor = match builder.make() {
                Ok(executor) => executor,
                Err(error) => {
                    let error = executor_error(index, &error);
                    // The main thread may already be gone; then nobody needs the report.
                    let _ = reports.send((index, StartupReport::Failed(error)));
                    return Ok(());
                }
            };
            let running = shared.clone();
            crate::guard::guarded(|| executor.run(shard::main(index, ends, running, reports)))
                .unwrap_or_else(|detail| {
                    // A panic outside every session guard is a bug in the runtime itself: stop
                    // the whole server rather than leave the other shards waiting for this one.
                    tracing::error!(shard = index, detail, "shard panicked; shutting down");
                    shared.shutdown.shutdown();
                    shared.drained.mark();
                    Err(ServeError::Shard { shard: index, detail: format!("panicked: {detail}") })
                })
        })
        .map_err(|error| ServeError::Shard { shard: index, detail: error.to_string() })
}

fn join_all(
    threads: Vec<thread::JoinHandle<Result<(), ServeError>>>,
) -> Vec<Result<(), ServeError>> {
    threads
        .into_iter()
        .enumerate()
        .map(|(shard, thread)| {
            thread.join().unwrap_or_else(|panic| {
                let detail = crate::guard::panic_message(&*panic);
                Err(ServeError::Shard { shard, detail: format!("panicked: {detail}") })
            })
        })
        .collect()
}

/// Explains an executor set-up failure; io_uring's locked-memory needs come first.
fn executor_error(shard: usize, error: &glommio::GlommioError<()>) -> ServeError {
    let memlock = proc_limit("Max locked memory").unwrap_or_else(|| "unknown".to_owned());
    let locked_memory = match error {
        glommio::GlommioError::ReactorError(glommio::ReactorErrorKind::MemLockLimit(..)) => true,
        glommio::GlommioError::IoError(io)
        | glommio::GlommioError::EnhancedIoError { source: io, .. } => {
            matches!(io.raw_os_error(), Some(libc::ENOMEM | libc::EPERM))
        }
        _ => false,
    };
    let detail = if locked_memory {
        format!(
            "io_uring needs locked memory: raise LimitMEMLOCK (current: {memlock}) or lower \
             io_memory_bytes ({error})"
        )
    } else {
        error.to_string()
    };
    ServeError::Executor { shard, detail }
}

/// Counts shards that finished draining their own connections; shared by all shards.
#[derive(Default)]
pub(crate) struct DrainCount(AtomicUsize);

impl DrainCount {
    /// This shard has no connections left.
    pub(crate) fn mark(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// Shards drained so far.
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_memory_failures_tell_the_operator_what_to_raise() {
        let enomem =
            glommio::GlommioError::IoError(std::io::Error::from_raw_os_error(libc::ENOMEM));
        let text = executor_error(1, &enomem).to_string();
        assert!(text.contains("shard 1"), "{text}");
        assert!(
            text.contains("io_uring needs locked memory: raise LimitMEMLOCK (current: "),
            "{text}"
        );
        let limit = glommio::GlommioError::ReactorError(glommio::ReactorErrorKind::MemLockLimit(
            65536, 524_288,
        ));
        assert!(executor_error(0, &limit).to_string().contains("LimitMEMLOCK"));
        let other = glommio::GlommioError::IoError(std::io::Error::from_raw_os_error(libc::EINVAL));
        assert!(!executor_error(0, &other).to_string().contains("LimitMEMLOCK"));
    }

    #[test]
    fn configs_without_listeners_or_flush_thread_are_refused() {
        let none =
            ServerConfig { imap_listen: vec![], lmtp_listen: vec![], ..ServerConfig::default() };
        assert!(matches!(validate(&none), Err(ServeError::Config(_))));
        let one_thread = ServerConfig { blocking_threads: 1, ..ServerConfig::default() };
        assert!(matches!(validate(&one_thread), Err(ServeError::Config(_))));
        assert!(validate(&ServerConfig::default()).is_ok());
    }
}
