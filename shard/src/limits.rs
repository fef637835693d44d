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

/// Bytes a waiting read holds inside its future (no heap): most IMAP and LMTP commands fit, and
/// an idle connection costs no more than this for reading.
pub const READ_PROBE_BYTES: usize = 256;

/// Bytes read at once after the probe filled up (large literals, DATA), allocated per read.
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

/// iovecs per vectored write (Linux `UIO_MAXIOV` is 1024).
pub const WRITE_IOVECS_MAX: usize = 64;

/// Back-off after an accept error such as EMFILE, so a full fd table logs once per second
/// instead of spinning on the error.
pub const ACCEPT_ERROR_BACKOFF_MS: u64 = 1000;

/// How often a shard looks at the process-wide shutdown flag.
pub const SHUTDOWN_POLL_MS: u64 = 50;

/// Blocking threads per shard, at most.
pub const BLOCKING_THREADS_MAX: usize = 64;

const _: () = assert!(WRITE_IOVECS_MAX <= 1024, "UIO_MAXIOV");
const _: () = assert!(READ_PROBE_BYTES < READ_CHUNK_BYTES);

/// The first failed login from a source is answered after this long; each further recent
/// failure from the same source doubles it. The wait is a timer: it holds no thread.
pub const AUTH_FAILURE_DELAY_MS: u64 = 1000;

/// The longest answer delay for a failed login (a client's command timeout is usually 30 s
/// or more, so it still gets its `NO`).
pub const AUTH_FAILURE_DELAY_MAX_MS: u64 = 16_000;

/// Failures older than this no longer count for their source.
pub const AUTH_FAILURE_WINDOW_SECONDS: u64 = 600;

/// Sources whose failures a shard remembers (~64 bytes each).
pub const AUTH_FAILURE_SOURCES_MAX: usize = 65_536;

const _: () = assert!(AUTH_FAILURE_DELAY_MS <= AUTH_FAILURE_DELAY_MAX_MS);
