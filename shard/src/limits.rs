//! Every bound the runtime enforces, in one place, with the reason for its value.
//!
//! Per-protocol limits (line length, literal size, recipients) belong to `skua-protocols`;
//! these are the runtime's own: queues between shards, buffers per connection, counts.

/// Shards in one process. Far above any core count we run on; it bounds the channel mesh
/// (`SHARDS_MAX^2` channels) and lets a shard index fit everywhere.
pub const SHARDS_MAX: usize = 256;

/// Capacity of each directed cross-shard channel. A full channel makes the sender wait (back
/// pressure), so this only needs to cover a burst of deliveries and hand-offs. glommio
/// preallocates every slot: with 16-byte messages, 64 shards cost 64 * 63 * 256 * 16 B = 16 MiB.
pub const MESH_CHANNEL_CAPACITY: usize = 256;

/// Cross-shard calls (`call.rs`) one shard may have waiting on other shards at once. Each
/// waiting call is an LMTP recipient or a session's command, whose connection holds it; past
/// this the call fails at once with a temporary error. Four channels' worth of slots: enough for
/// every LMTP connection of a busy shard to have a transaction in flight to each peer.
pub const CALLS_OUT_MAX: usize = 4 * MESH_CHANNEL_CAPACITY;

/// Cross-shard calls one shard serves at once (its own and its peers'). Each holds a user's
/// store for a moment and waits for a flush round; past this, a call is answered with a
/// temporary error instead of queueing without bound.
pub const CALLS_SERVED_MAX: usize = 4 * MESH_CHANNEL_CAPACITY;

/// Bytes one `recv` may take: the size of the one scratch buffer per shard thread that every
/// read receives into (a waiting read owns no buffer). Large enough for a burst of pipelined
/// commands or a good piece of a literal per system call.
pub const READ_SCRATCH_BYTES: usize = 16 * 1024;

/// A synchronous session step (or write) that holds the shard's thread this long or more is
/// logged: every other connection on the shard waited as long. A step is normally tens of
/// microseconds; 10 ms is far outside that and well below what a client notices.
pub const SLOW_STEP_MS: u64 = 10;

/// A store open (with its recovery check) that takes this long or more is logged. It runs on
/// the shard's thread, so every other connection of the shard waited as long; a warm open
/// takes well under a millisecond, a recovery after a crash can take seconds.
pub const SLOW_STORE_OPEN_MS: u64 = 100;

/// iovecs per vectored write (Linux `UIO_MAXIOV` is 1024).
pub const WRITE_IOVECS_MAX: usize = 64;

/// Connections the kernel queues per listener (per shard) before the shard accepts them: what
/// glommio's own `bind` uses. The kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Back-off after an accept error such as EMFILE, so a full fd table logs once per second
/// instead of spinning on the error.
pub const ACCEPT_ERROR_BACKOFF_MS: u64 = 1000;

/// Open files kept free of client connections, process-wide: listeners, io_uring rings and
/// eventfds, the passwd-file, and above all the directories a flush round opens to fsync and
/// the files of stores being opened. Running out there turns into failed logins and, worse, a
/// failed flush; a refused connection costs far less.
pub const FD_RESERVE: usize = 512;

/// How often a shard looks at the process-wide shutdown flag.
pub const SHUTDOWN_POLL_MS: u64 = 50;

/// Blocking threads per shard, at most.
pub const BLOCKING_THREADS_MAX: usize = 64;

const _: () = assert!(WRITE_IOVECS_MAX <= 1024, "UIO_MAXIOV");

/// The default delay before answering the first recent failed login of a source (or against
/// a user); each further failure doubles it, up to [`AUTH_FAILURE_DELAY_DOUBLINGS_MAX`]
/// doublings. `ServerConfig::auth_failure_delay` sets it (tests shorten it). The wait is a
/// timer: it holds no thread.
pub const AUTH_FAILURE_DELAY_MS: u64 = 1000;

/// Doublings of the failure delay at most: 16 s with the default delay (a client's command
/// timeout is usually 30 s or more, so it still gets its `NO`).
pub const AUTH_FAILURE_DELAY_DOUBLINGS_MAX: u32 = 4;

/// A password check waits for its source's turn at most this many maximal failure delays
/// (64 s by default); a login that would wait longer is answered `NO [UNAVAILABLE]` at once,
/// without a check, so a source with hundreds of parallel guesses holds no queue.
pub const AUTH_QUEUE_DELAYS_MAX: u32 = 4;

/// Password checks one source may run at once while it has no recent failure (a NAT of many
/// honest users); once it has one, its checks run one at a time, spaced by the failure delay.
pub const AUTH_CHECKS_PER_SOURCE_MAX: u32 = 4;

/// How often a login waiting for one of its source's [`AUTH_CHECKS_PER_SOURCE_MAX`] check
/// slots (a source without failures) looks again. A check takes about a millisecond (PLAIN,
/// SHA512-CRYPT) to a few hundred (ARGON2ID), so a burst of honest logins behind one address
/// waits a few polls, not a failure delay: with failure-delay spacing the 40th of 40
/// simultaneous logins from 127.0.0.1 waited 15 s.
pub const AUTH_SLOT_POLL_US: u64 = 500;

/// Failures older than this no longer count for their source or user.
pub const AUTH_FAILURE_WINDOW_SECONDS: u64 = 600;

/// Sources the login brake remembers, process-wide (~100 bytes each).
pub const AUTH_FAILURE_SOURCES_MAX: usize = 65_536;

/// Target users (as sent, lowercased) the login brake remembers, process-wide, and pairs of
/// source and user (each ~200 bytes with its name).
pub const AUTH_FAILURE_USERS_MAX: usize = 65_536;

/// Bytes of a user name the brake keys on: longer names are cut (no passwd-file name is that
/// long, and the key only has to tell guessed names apart).
pub const AUTH_FAILURE_NAME_BYTES_MAX: usize = 128;

// The delay is `base << doublings` in a u32 multiplier; parallel checks need at least one.
const _: () = assert!(AUTH_FAILURE_DELAY_DOUBLINGS_MAX < 16);
const _: () = assert!(AUTH_CHECKS_PER_SOURCE_MAX >= 1 && AUTH_QUEUE_DELAYS_MAX >= 1);
const _: () = assert!(AUTH_FAILURE_NAME_BYTES_MAX >= 64, "room for any passwd-file name");

/// A password check slower than the figure measured when the passwd-file was loaded raises
/// the failed-login padding (`users.rs`), up to this many times the measured figure.
pub const TIMING_PAD_RAISE_MAX: u64 = 4;

/// Sources (with a reason) the refusal log tracks at once; past it, quiet ones are forgotten
/// and the rest are tallied together.
pub const REFUSAL_LOG_SOURCES_MAX: usize = 4096;

/// Most flush rounds running at once per shard. Each holds one thread of the shard's blocking
/// pool while its syncs run. Measured on the 2-core VM (perf/results/2026-11-26-lmtp-gains.md):
/// two rounds in flight gave no more deliveries/s than one and a slightly higher p99 (each
/// round then carries fewer writes, so there are more syncs for the same work), so one it is;
/// a device with a deep flush queue may gain from two.
pub const ROUNDS_IN_FLIGHT_MAX: usize = 1;

/// How long a write of cold message bodies waits for their reads through the ring and their
/// read-ahead (`pagein.rs`) before it sends anyway. Far above a disk read (0.1-10 ms); reached
/// only by a failing or saturated disk.
pub const PAGE_IN_WAIT_MAX_MS: u64 = 2000;

/// How often a write waiting for read-ahead (the fallback when a ring read could not be made)
/// looks again (`mincore`, one system call per chunk). Short next to a disk read, long next to
/// the call.
pub const PAGE_IN_POLL_US: u64 = 500;

/// The largest single read of a cold body through the ring (`driver.rs`): its buffer, dropped
/// once read. The kernel's default read-ahead window: a longer range is read in pieces this
/// size, one after another (the kernel reads ahead of them).
pub const PAGE_IN_READ_BYTES_MAX: usize = 128 * 1024;

/// Cold file ranges a write reads through the ring at once: the reads run in parallel on the
/// disk, and a write holds at most this many descriptors and read buffers (512 KiB).
pub const PAGE_IN_READS_IN_FLIGHT_MAX: usize = 4;

const _: () = assert!(PAGE_IN_POLL_US < PAGE_IN_WAIT_MAX_MS * 1000);
const _: () = assert!(PAGE_IN_READS_IN_FLIGHT_MAX >= 1 && PAGE_IN_READ_BYTES_MAX >= 4096);

/// Encrypted records a TLS connection may hold waiting for its socket; the writer sends them
/// before it encrypts more (`conn_tls.rs`). rustls refuses more plaintext past it.
pub const TLS_SENDABLE_BYTES_MAX: usize = 64 * 1024;

/// The longest a TLS handshake may take (it also ends at the login deadline): a peer that
/// stalls in it holds a connection no longer.
pub const TLS_HANDSHAKE_SECONDS_MAX: u64 = 30;

/// Admin socket connections served at once (`admin.rs`): operators' tools, one request each;
/// past this a connection is answered `busy` and closed.
pub const ADMIN_CONNECTIONS_MAX: usize = 8;

/// Bytes of one admin request line (`admin_proto.rs`): a request names users and a mailbox,
/// so 64 KiB holds thousands of names.
pub const ADMIN_REQUEST_BYTES_MAX: usize = 64 * 1024;

/// Longest wait for an admin client's request line, and for each reply write.
pub const ADMIN_IO_TIMEOUT_MS: u64 = 10_000;

/// Longest an admin request may take from its line to its answer (a check of every user of
/// a large server reads every live message); past it the client gets `timeout` (work under
/// way on a home shard finishes, its answer is dropped).
pub const ADMIN_REQUEST_DEADLINE_MS: u64 = 3_600_000;
const _: () = assert!(ADMIN_IO_TIMEOUT_MS < ADMIN_REQUEST_DEADLINE_MS);

/// Longest a tool that rewrites a store on a running server (`maintenance.rs`) waits for the
/// store's sessions to let go after they were told to reconnect (a session in the middle of
/// sending a large response lets go when that write ends).
pub const MAINTENANCE_CLOSE_MS: u64 = 10_000;
const _: () = assert!(MAINTENANCE_CLOSE_MS < ADMIN_REQUEST_DEADLINE_MS);
/// Bytes of one data frame on the admin socket (`{"data":N}` then N bytes, `admin_proto.rs`),
/// and about the bytes of records a backup produces per step on the home shard: what a
/// stream holds in shard memory at once, besides one record being assembled (a message is
/// at most `skua_core::limits::MESSAGE_BYTES_MAX`).
pub const ADMIN_DATA_BYTES_MAX: usize = 1 << 20;

/// Longest frame line (`{"data":N}` or `{"end":{...}}`) a stream's reader accepts.
pub const ADMIN_FRAME_LINE_BYTES_MAX: usize = 256;
const _: () = assert!(ADMIN_FRAME_LINE_BYTES_MAX < ADMIN_DATA_BYTES_MAX);
const _: () = assert!(ADMIN_CONNECTIONS_MAX >= 1);
