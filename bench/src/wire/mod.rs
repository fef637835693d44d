//! Sans-IO readers for what servers send: IMAP responses (lines with embedded literals) and
//! LMTP/SMTP replies (multi-line, one code). Bytes go in with `feed`, whole responses come out of
//! `next`; nothing here touches a socket, so every split of the input can be tested.

pub mod imap;
pub mod lmtp;

/// Why the input cannot be framed. Each is a server bug (or an attack), never a bench state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A line grew past [`crate::limits::MAX_LINE_BYTES`] without ending.
    #[error("response line longer than {0} bytes")]
    LineTooLong(usize),
    /// A literal announced more than [`crate::limits::MAX_LITERAL_BYTES`].
    #[error("literal of {0} bytes is over the limit")]
    LiteralTooLarge(u64),
    /// A response with its literals grew past [`crate::limits::MAX_RESPONSE_BYTES`].
    #[error("response longer than {0} bytes")]
    ResponseTooLong(usize),
    /// An LMTP reply line was not `DDD[ -]text`.
    #[error("malformed reply line: {0:?}")]
    BadReply(String),
    /// An LMTP reply had more lines than [`crate::limits::MAX_REPLY_LINES`].
    #[error("reply has more than {0} lines")]
    TooManyLines(usize),
}

/// Finds the first LF at or after `from`, returning its index.
fn find_lf(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..].iter().position(|&b| b == b'\n').map(|i| from + i)
}

/// A line's content without its terminator: drops the LF at `lf` and a CR just before it.
fn line_end(buf: &[u8], start: usize, lf: usize) -> usize {
    if lf > start && buf[lf - 1] == b'\r' { lf - 1 } else { lf }
}
