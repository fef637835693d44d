//! Every bound the runtime enforces, in one place, with the reason for its value.
//!
//! Per-protocol limits (line length, literal size, recipients) belong to `skua-protocols`;
//! these are the runtime's own: queues between shards, buffers per connection, counts.

/// Shards in one process. Far above any core count we run on; it bounds the channel mesh
/// (`SHARDS_MAX^2` channels) and lets a shard index fit everywhere.
pub const SHARDS_MAX: usize = 256;

/// Capacity of each directed cross-shard channel. A full channel makes the sender wait (back
/// pressure), so this only needs to cover a burst of deliveries and hand-offs.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// Bytes read from a socket per `read` call.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Bytes received but not yet consumed by a session that a connection may hold. A session
/// consumes everything it is fed (it buffers its own bounded partial command), so this only
/// bounds one read plus what arrived during a hand-off.
pub const INPUT_PENDING_BYTES_MAX: usize = 256 * 1024;

/// iovecs per vectored write (Linux `UIO_MAXIOV` is 1024).
pub const WRITE_IOVECS_MAX: usize = 64;

/// Back-off after an accept error such as EMFILE, so a full fd table logs once per second
/// instead of spinning on the error.
pub const ACCEPT_ERROR_BACKOFF_MS: u64 = 1000;

/// Password checks a shard runs at once off the reactor; more wait. Keeps one blocking
/// thread free for flush rounds.
pub const AUTH_CHECKS_CONCURRENT_MAX: u64 = 8;

/// How often a shard looks at the process-wide shutdown flag.
pub const SHUTDOWN_POLL_MS: u64 = 50;

/// Blocking threads per shard, at most.
pub const BLOCKING_THREADS_MAX: usize = 64;

const _: () = assert!(WRITE_IOVECS_MAX <= 1024, "UIO_MAXIOV");
const _: () = assert!(READ_CHUNK_BYTES < INPUT_PENDING_BYTES_MAX);

/// A failed login is answered after this long: it slows password guessing on one connection
/// without holding a thread (the wait is a timer).
pub const AUTH_FAILURE_DELAY_MS: u64 = 1000;
