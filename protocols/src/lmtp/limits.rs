//! Bounds on what one LMTP client may make the server hold or do. Each default can be changed
//! through [`LmtpConfig`](super::LmtpConfig); each is enforced before memory is spent.

/// Default longest command line, CRLF included. RFC 5321 §4.5.3.1.4 sets 512 octets and lets
/// extensions raise it; `MAIL FROM:<256-octet path> SIZE=... BODY=8BITMIME` fits easily.
pub const COMMAND_LINE_BYTES_MAX: usize = 2048;

/// Default largest message (after dot-unstuffing, before the `Return-Path:` line we add).
/// Announced in `SIZE`. Larger messages are read to their end and refused per recipient.
pub const MESSAGE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Default most recipients in one transaction. RFC 5321 §4.5.3.1.8 asks servers to take at
/// least 100; more is refused with `452 4.5.3` and the client sends the rest in another
/// transaction.
pub const RECIPIENTS_MAX: usize = 100;

/// Longest address (a path without its angle brackets). RFC 5321 §4.5.3.1.3: 256 octets.
pub const ADDRESS_BYTES_MAX: usize = 256;

/// Consecutive failed commands after which the session says `421` and closes: a client that
/// only sends garbage is broken or probing and should not hold the connection.
pub const ERRORS_MAX: u32 = 20;

/// Reply bytes gathered from pipelined commands before they are handed to the shard.
pub const OUTPUT_BATCH_BYTES_MAX: usize = 16 * 1024;

const _: () = assert!(ADDRESS_BYTES_MAX + 64 < COMMAND_LINE_BYTES_MAX);
const _: () = assert!(COMMAND_LINE_BYTES_MAX >= 512);
const _: () = assert!(RECIPIENTS_MAX >= 100);
