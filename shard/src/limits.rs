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

/// Bytes one `recv` may take: the size of the one scratch buffer per shard thread that every
/// read receives into (a waiting read owns no buffer). Large enough for a burst of pipelined
/// commands or a good piece of a literal per system call.
pub const READ_SCRATCH_BYTES: usize = 16 * 1024;

/// A synchronous session step (or write) that holds the shard's thread this long or more is
/// logged: every other connection on the shard waited as long. A step is normally tens of
/// microseconds; 10 ms is far outside that and well below what a client notices.
pub const SLOW_STEP_MS: u64 = 10;

/// iovecs per vectored write (Linux `UIO_MAXIOV` is 1024).
pub const WRITE_IOVECS_MAX: usize = 64;

/// Back-off after an accept error such as EMFILE, so a full fd table logs once per second
/// instead of spinning on the error.
pub const ACCEPT_ERROR_BACKOFF_MS: u64 = 1000;

/// Open files kept free of client connections, process-wide: listeners, io_uring rings and
/// eventfds, the passwd-file, and above all the directories a flush round opens to fsync and
/// the files of stores being opened. Running out there turns into failed logins and, worse, a
/// failed flush; a refused connection costs far less.
pub const FD_RESERVE: usize = 512;

/// Descriptors an open user store holds, about (spool segment, index, mailbox log, and more
/// while several mailboxes are open): for the open-files budget, see [`FD_RESERVE`].
pub const STORE_FDS_ESTIMATE: usize = 3;

/// How often a shard looks at the process-wide shutdown flag.
pub const SHUTDOWN_POLL_MS: u64 = 50;

/// Blocking threads per shard, at most.
pub const BLOCKING_THREADS_MAX: usize = 64;

const _: () = assert!(WRITE_IOVECS_MAX <= 1024, "UIO_MAXIOV");

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

/// Most flush rounds running at once per shard. Each holds one thread of the shard's blocking
/// pool while its syncs run. Measured on the 2-core VM (perf/results/2026-11-26-lmtp-gains.md):
/// two rounds in flight gave no more deliveries/s than one and a slightly higher p99 (each
/// round then carries fewer writes, so there are more syncs for the same work), so one it is;
/// a device with a deep flush queue may gain from two.
pub const ROUNDS_IN_FLIGHT_MAX: usize = 1;
