//! Every bound the bench enforces, in one place, with the reason for each.
//!
//! The bench talks to servers under test, which may be buggy: nothing they send may make it
//! allocate without bound or wait forever, and no run may go on by itself past its limits.

use std::time::Duration;

/// Longest run accepted (`--duration`): one hour. Load runs here are bounded in time; a longer
/// soak is a series of runs.
pub const MAX_DURATION_SECS: u64 = 3600;

/// Most connections one run opens at once (`--connections`). The idle scenario is the one that
/// wants many; this is far above what a 2-core machine measures usefully, far below fd limits
/// of a tuned host.
pub const MAX_CONNECTIONS: usize = 100_000;

/// Most users addressed (`--users`).
pub const MAX_USERS: u32 = 10_000_000;

/// Most recipients in one LMTP transaction (`--recipients`): RFC 5321 §4.5.3.1.8 requires
/// servers to accept at least 100.
pub const MAX_RECIPIENTS: usize = 1000;

/// Largest message the bench sends or the corpus generator writes: 64 MiB.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Longest response line (not counting literals) the readers buffer before giving up: 4 MiB.
/// A FETCH of many small items stays far below; the longest lines are the `sort` and `thread`
/// scenarios' answers, one line naming every message (about 0.7-0.9 MB for 100,000); a server
/// gone mad does not get our memory.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Largest IMAP literal accepted in a response: 256 MiB.
pub const MAX_LITERAL_BYTES: usize = 256 << 20;

/// Largest whole IMAP response (line plus all its literals): 512 MiB.
pub const MAX_RESPONSE_BYTES: usize = 512 << 20;

/// Most lines in one LMTP reply (LHLO lists extensions, one a line).
pub const MAX_REPLY_LINES: usize = 256;

/// Default wait for any one response from the server (`--timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most messages per user a `--prefill` delivers.
pub const MAX_PREFILL: u32 = 1_000_000;

/// Most messages the `corpus` subcommand writes.
pub const MAX_CORPUS_MESSAGES: u32 = 1_000_000;

/// Pause before reconnecting after a failed connection, so a dead server is not hammered.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Latency histograms cover 1 µs ..= this many µs (one hour) at 3 significant digits.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Most processes the memory reading sums under `--server-pid` (the server and its
/// descendants). A forking server holds one process per connection plus a few helpers; this
/// covers the largest connection count with room, and bounds the walk of a racy /proc snapshot.
pub const MAX_TREE_PROCESSES: usize = MAX_CONNECTIONS + 1000;
