//! Streaming, bounded framing of client input into whole commands, before any parsing.
//!
//! IMAP commands are lines ending in CRLF, except that a line may end in a literal header
//! (`{n}`, `{n+}` or `~{n}`) announcing `n` raw bytes, after which the command goes on with
//! another line. The framer finds where one command ends without understanding it, checks every
//! size against [`FrameLimits`] *before* buffering the bytes, and hands out [`Frame`]s: a
//! command's bytes with its final CRLF removed and its literals inline, ready for
//! `parser::parse_command`.
//!
//! ```text
//!   feed(bytes) ──► next() ─┬─ NeedInput          read more from the socket, feed, call again
//!                           ├─ SendContinuation   write "+ Ready\r\n" (a synchronizing
//!                           │                     literal was accepted), call again
//!                           ├─ Frame(frame)       parse it; call again after handling it
//!                           └─ Rejected(error)    answer (see below), call again; if
//!                                                 error.is_fatal(): BYE and close
//! ```
//!
//! Refusals and how the framer resynchronizes:
//! - A synchronizing literal that is too big (or a command over its limits at that point) is
//!   refused *without reading it*: the client has not received `+`, so RFC 9051 §7.5 says it
//!   will not send the bytes, and the framer resumes at the next line. For `APPEND` the session
//!   answers `NO [TOOBIG]` ([`FrameError::is_append_too_big`]), otherwise `BAD`. In an
//!   `APPEND`, each literal is held to the message limit (`APPENDLIMIT`, RFC 7889) and all of
//!   them together to [`FrameLimits::append_command_bytes_max`] (MULTIAPPEND, CATENATE).
//! - A non-synchronizing literal (`{n+}`, RFC 7888) that is too big has already been sent by
//!   the client: RFC 7888 §4 lets the server either read and discard it or close the
//!   connection. The framer discards it (reading without keeping, so memory stays bounded),
//!   and the rest of that command, and reports the refusal at once; the connection lives on.
//! - A line over the line limit is reported as soon as the limit is passed and discarded up to
//!   its end; if it ended in a literal header, that literal is discarded too.
//! - A literal length that cannot be read (more than 20 digits, overflow) on a
//!   non-synchronizing literal leaves no way to find the next command: that error is fatal.
//!   So is a refused non-synchronizing literal over `DISCARD_LITERAL_BYTES_MAX` (1 GiB): not
//!   worth reading just to throw away.
//!
//! Memory: the framer holds at most the current command (bounded by the limits) plus whatever
//! the caller fed past it. Call [`Framer::feed`] only after [`Framer::next`] returned
//! [`Framed::NeedInput`], with at most one socket read of bytes, and the buffer stays bounded.

use std::mem;

use thiserror::Error;

#[cfg(doc)]
use crate::imap::limits::DISCARD_LITERAL_BYTES_MAX;
use crate::imap::limits::{FrameLimits, LITERAL_LENGTH_DIGITS_MAX};
use crate::imap::types::Tag;

/// One whole command (or continuation line): its bytes without the final CRLF, literals inline
/// (`{n}\r\n` followed by the `n` bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    /// Only the length: a frame may hold a password (LOGIN, AUTHENTICATE) or a message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame(<{} bytes>)", self.bytes.len())
    }
}

impl Frame {
    /// Wraps bytes as a frame; for tests and for callers that frame by other means.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Frame {
        Frame { bytes }
    }

    /// The command's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The command's bytes, owned.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// What [`Framer::next`] has for the caller.
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum Framed {
    /// Nothing complete yet: feed more bytes.
    NeedInput,
    /// A synchronizing literal was accepted: write a continuation request (`+ Ready\r\n`) now,
    /// then call [`Framer::next`] again.
    SendContinuation,
    /// A complete command.
    Frame(Frame),
    /// A command was refused by a limit; answer it and call [`Framer::next`] again (or close,
    /// if [`FrameError::is_fatal`]).
    Rejected(FrameError),
}

/// A refused command: what went wrong, and its tag when it could be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct FrameError {
    /// The command's tag, when its first bytes form a valid tag.
    pub tag: Option<Tag>,
    /// What limit or rule was broken.
    pub kind: FrameErrorKind,
    /// See [`FrameError::is_fatal`].
    fatal: bool,
}

impl FrameError {
    /// A refusal of `kind`, fatal or not under `limits`.
    fn new(tag: Option<Tag>, kind: FrameErrorKind, limits: &FrameLimits) -> FrameError {
        let fatal = match kind {
            FrameErrorKind::LiteralLengthInvalid { synchronizing } => !synchronizing,
            FrameErrorKind::LiteralTooBig { size, synchronizing, .. } => {
                !synchronizing && size > limits.discard_literal_bytes_max
            }
            _ => false,
        };
        FrameError { tag, kind, fatal }
    }

    /// True when the connection cannot (or should not) be resynchronized: answer `* BYE` and
    /// close. That is a non-synchronizing literal whose length is unreadable, or so large
    /// (over [`FrameLimits::discard_literal_bytes_max`], [`DISCARD_LITERAL_BYTES_MAX`] by
    /// default) that reading it to throw it away is not worth it.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// True for an `APPEND` message over the size limit: answer `NO [TOOBIG]` rather than `BAD`.
    #[must_use]
    pub fn is_append_too_big(&self) -> bool {
        matches!(self.kind, FrameErrorKind::LiteralTooBig { append: true, .. })
    }
}

/// The ways a command can break the framing rules.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameErrorKind {
    /// A line is longer than the line limit.
    #[error("line too long (limit {limit} bytes)")]
    LineTooLong {
        /// The limit in force.
        limit: usize,
    },
    /// A literal announces more bytes than allowed (in an `APPEND`: more than one message may
    /// have, or more than the command's literals may have together).
    #[error("literal too big ({size} bytes, limit {limit})")]
    LiteralTooBig {
        /// The announced size.
        size: u64,
        /// The limit in force.
        limit: u64,
        /// `{n}` (true) or `{n+}` (false).
        synchronizing: bool,
        /// The command is `APPEND` (the session answers `NO [TOOBIG]`).
        append: bool,
    },
    /// Lines and literals together exceed the command limit.
    #[error("command too big (limit {limit} bytes)")]
    CommandTooBig {
        /// The limit in force.
        limit: u64,
    },
    /// More literals than allowed in one command.
    #[error("too many literals (limit {limit})")]
    TooManyLiterals {
        /// The limit in force.
        limit: u32,
    },
    /// A line ended in LF without CR and `quirk_bare_lf` is off.
    #[error("line must end with CRLF")]
    BareLineFeed,
    /// A literal header whose length is not a number that fits 64 bits.
    #[error("invalid literal length")]
    LiteralLengthInvalid {
        /// Fatal when false: the client is already sending bytes we cannot count.
        synchronizing: bool,
    },
}

/// A literal header found at the end of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LiteralHeader {
    /// Announced byte count.
    pub size: u64,
    /// `{n}` or `~{n}` (true) versus `{n+}` / `~{n+}` (false).
    pub synchronizing: bool,
}

/// Looks for `[~] "{" number ["+"] "}"` at the very end of `line` (CR already removed).
/// `None`: no literal header; `Some(Err(sync))`: a header whose number is unreadable.
pub(crate) fn literal_header_at_end(line: &[u8]) -> Option<Result<LiteralHeader, bool>> {
    let body = line.strip_suffix(b"}")?;
    let (body, synchronizing) = match body.strip_suffix(b"+") {
        Some(rest) => (rest, false),
        None => (body, true),
    };
    let digits_len = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let open = body.len().checked_sub(digits_len + 1)?;
    if body[open] != b'{' || digits_len == 0 {
        return None;
    }
    if digits_len > LITERAL_LENGTH_DIGITS_MAX {
        return Some(Err(synchronizing));
    }
    let mut size: u64 = 0;
    for &digit in &body[open + 1..] {
        let next = size.checked_mul(10).and_then(|s| s.checked_add(u64::from(digit - b'0')));
        let Some(next) = next else {
            return Some(Err(synchronizing));
        };
        size = next;
    }
    Some(Ok(LiteralHeader { size, synchronizing }))
}

/// Bytes kept from the end of a discarded line: enough for `~{` + 20 digits + `+}` + CR.
const TAIL_BYTES: usize = 32;

/// Frames at or above this size leave the buffer by swapping it out instead of being copied.
const FRAME_SWAP_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
enum State {
    /// Reading a line of the current command.
    Line,
    /// Buffering a literal that ends at this index of `buf`.
    Literal { end: usize },
    /// Discarding the rest of a refused command's line; the last bytes seen are kept.
    DiscardLine { tail: [u8; TAIL_BYTES], tail_len: usize },
    /// Discarding a refused non-synchronizing literal.
    DiscardLiteral { remaining: u64 },
}

/// Per-command bookkeeping, reset when a command ends.
#[derive(Clone, Copy, Debug, Default)]
struct CommandState {
    /// Lines and ordinary literals so far.
    bytes: u64,
    literals: u32,
    /// `Some(is_append)` once the first line has been looked at.
    append: Option<bool>,
    /// The literals of an `APPEND` so far (its messages and CATENATE parts).
    append_bytes: u64,
}

/// The streaming framer. See the module documentation for the calling protocol.
#[derive(Debug)]
pub struct Framer {
    limits: FrameLimits,
    buf: Vec<u8>,
    /// Start of the current command; bytes before it are consumed.
    start: usize,
    /// Start of the current line.
    line_start: usize,
    /// Where the search for LF resumes.
    scan: usize,
    state: State,
    command: CommandState,
}

enum Step {
    Continue,
    Emit(Framed),
    NeedInput,
}

impl Framer {
    /// A framer with the given limits.
    #[must_use]
    pub fn new(limits: FrameLimits) -> Framer {
        Framer {
            limits,
            buf: Vec::new(),
            start: 0,
            line_start: 0,
            scan: 0,
            state: State::Line,
            command: CommandState::default(),
        }
    }

    /// Replaces the limits for the commands that follow (a session tightens them before login
    /// and restores them after). The command being framed keeps the limits it was checked
    /// against so far; the new ones apply from its next check.
    pub fn set_limits(&mut self, limits: FrameLimits) {
        self.limits = limits;
    }

    /// The limits in force.
    #[must_use]
    pub fn limits(&self) -> &FrameLimits {
        &self.limits
    }

    /// Bytes held: the current partial command plus unread input. For back-pressure metrics.
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True when no partial command is held (nothing fed, or everything consumed).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.buf.len() == self.start && matches!(self.state, State::Line)
    }

    /// Appends bytes received from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the buffered bytes that were not framed yet (for example after STARTTLS, where
    /// bytes pipelined behind the command must be discarded, or to hand them to another
    /// consumer). Resets the framer to the start of a command.
    pub fn take_unframed(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start);
        self.buf.clear();
        self.start = 0;
        self.line_start = 0;
        self.scan = 0;
        self.state = State::Line;
        self.command = CommandState::default();
        rest
    }

    /// Advances over the buffered input and reports what the caller must do next.
    // Not an `Iterator`: `NeedInput` is not the end, more input may follow.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Framed {
        loop {
            let step = match self.state {
                State::Line => self.step_line(),
                State::Literal { end } => self.step_literal(end),
                State::DiscardLine { tail, tail_len } => self.step_discard_line(tail, tail_len),
                State::DiscardLiteral { remaining } => self.step_discard_literal(remaining),
            };
            match step {
                Step::Continue => {}
                Step::Emit(framed) => return framed,
                Step::NeedInput => {
                    self.release_if_drained();
                    return Framed::NeedInput;
                }
            }
        }
    }

    /// Gives the buffer's memory back once every byte was consumed: a connection waiting for
    /// its next command (most connections, most of the time) then holds no input buffer.
    fn release_if_drained(&mut self) {
        if self.start != self.buf.len() || self.buf.capacity() == 0 {
            return;
        }
        debug_assert!(!matches!(self.state, State::Literal { .. }), "a literal is pending");
        debug_assert!(self.line_start == self.start && self.scan == self.start);
        self.buf = Vec::new();
        self.start = 0;
        self.line_start = 0;
        self.scan = 0;
    }

    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.drain(..self.start);
        self.line_start -= self.start;
        self.scan -= self.start;
        if let State::Literal { end } = &mut self.state {
            *end -= self.start;
        }
        self.start = 0;
    }

    fn step_line(&mut self) -> Step {
        let Some(offset) = self.buf[self.scan..].iter().position(|&b| b == b'\n') else {
            self.scan = self.buf.len();
            // One byte of slack for a CR whose LF has not arrived yet.
            if self.buf.len() - self.line_start > self.limits.line_bytes_max + 1 {
                let limit = self.limits.line_bytes_max;
                return self.refuse_partial_line(FrameErrorKind::LineTooLong { limit });
            }
            return Step::NeedInput;
        };
        let lf = self.scan + offset;
        let has_cr = lf > self.line_start && self.buf[lf - 1] == b'\r';
        let line_end = if has_cr { lf - 1 } else { lf };
        if !has_cr && !self.limits.quirk_bare_lf {
            return self.refuse_whole_line(line_end, lf, FrameErrorKind::BareLineFeed);
        }
        let line_len = line_end - self.line_start;
        if line_len > self.limits.line_bytes_max {
            let limit = self.limits.line_bytes_max;
            return self.refuse_whole_line(line_end, lf, FrameErrorKind::LineTooLong { limit });
        }
        self.command.bytes += (line_len + 2) as u64;
        if self.command.bytes > self.limits.command_bytes_max {
            let limit = self.limits.command_bytes_max;
            return self.refuse_whole_line(line_end, lf, FrameErrorKind::CommandTooBig { limit });
        }
        match literal_header_at_end(&self.buf[self.line_start..line_end]) {
            None => Step::Emit(Framed::Frame(self.finish_frame(line_end, lf + 1))),
            Some(Err(synchronizing)) => {
                let kind = FrameErrorKind::LiteralLengthInvalid { synchronizing };
                self.refuse_whole_line(line_end, lf, kind)
            }
            Some(Ok(header)) => self.start_literal(header, line_end, lf),
        }
    }

    /// A literal header ended the line at `line_end` (LF at `lf`): check it against the limits
    /// and start buffering it.
    fn start_literal(&mut self, header: LiteralHeader, line_end: usize, lf: usize) -> Step {
        if self.command.append.is_none() {
            self.command.append = Some(is_append_line(&self.buf[self.start..line_end]));
        }
        let append = self.command.append == Some(true);
        self.command.literals += 1;
        if self.command.literals > self.limits.literals_per_command_max {
            let limit = self.limits.literals_per_command_max;
            return self.refuse_whole_line(line_end, lf, FrameErrorKind::TooManyLiterals { limit });
        }
        // In an APPEND every literal may be a message (MULTIAPPEND, RFC 3502) or a CATENATE
        // part (RFC 4469): each is held to the message limit, and all of them together to the
        // APPEND command limit, instead of the small limits of other commands.
        let limit = if append {
            self.limits.append_literal_bytes_max
        } else {
            self.limits.literal_bytes_max
        };
        if header.size > limit {
            let synchronizing = header.synchronizing;
            let kind =
                FrameErrorKind::LiteralTooBig { size: header.size, limit, synchronizing, append };
            return self.refuse_whole_line(line_end, lf, kind);
        }
        if append {
            self.command.append_bytes += header.size;
            if self.command.append_bytes > self.limits.append_command_bytes_max {
                let kind = FrameErrorKind::LiteralTooBig {
                    size: header.size,
                    limit: self.limits.append_command_bytes_max,
                    synchronizing: header.synchronizing,
                    append,
                };
                return self.refuse_whole_line(line_end, lf, kind);
            }
        } else {
            self.command.bytes += header.size;
            if self.command.bytes > self.limits.command_bytes_max {
                let limit = self.limits.command_bytes_max;
                let kind = FrameErrorKind::CommandTooBig { limit };
                return self.refuse_whole_line(line_end, lf, kind);
            }
        }
        // The size is below a limit that is a `u64` of in-memory bytes, so it fits `usize` on
        // any platform that could buffer it; refuse rather than truncate otherwise.
        let Ok(size) = usize::try_from(header.size) else {
            let kind = FrameErrorKind::LiteralTooBig {
                size: header.size,
                limit,
                synchronizing: header.synchronizing,
                append,
            };
            return self.refuse_whole_line(line_end, lf, kind);
        };
        self.line_start = lf + 1;
        self.scan = lf + 1;
        self.state = State::Literal { end: lf + 1 + size };
        if header.synchronizing { Step::Emit(Framed::SendContinuation) } else { Step::Continue }
    }

    fn step_literal(&mut self, end: usize) -> Step {
        if self.buf.len() < end {
            return Step::NeedInput;
        }
        self.line_start = end;
        self.scan = end;
        self.state = State::Line;
        Step::Continue
    }

    /// Cuts the finished command `buf[start..line_end]` out and moves past its CRLF at `next`.
    fn finish_frame(&mut self, line_end: usize, next: usize) -> Frame {
        let bytes = if self.start == 0 && line_end >= FRAME_SWAP_BYTES {
            // A big command (an APPEND message): move the buffer out and keep only what follows,
            // rather than copying megabytes.
            let rest = self.buf.split_off(next);
            let mut bytes = mem::replace(&mut self.buf, rest);
            bytes.truncate(line_end);
            self.start = 0;
            bytes
        } else {
            let bytes = self.buf[self.start..line_end].to_vec();
            self.start = next;
            bytes
        };
        self.reset_command();
        Frame { bytes }
    }

    fn reset_command(&mut self) {
        self.line_start = self.start;
        self.scan = self.start;
        self.state = State::Line;
        self.command = CommandState::default();
    }

    /// The tag of the current command, if its first bytes form one.
    fn current_tag(&self) -> Option<Tag> {
        let first = &self.buf[self.start..];
        let end = first.iter().position(|&b| b == b' ' || b == b'\r' || b == b'\n')?;
        Tag::new(&first[..end])
    }

    /// Refuses the current command at a complete line (ending at `line_end`, LF at `lf`), then
    /// skips whatever the client will still send for it.
    fn refuse_whole_line(&mut self, line_end: usize, lf: usize, kind: FrameErrorKind) -> Step {
        let header = literal_header_at_end(&self.buf[self.line_start..line_end]);
        let kind = fatal_header(header, &self.limits).unwrap_or(kind);
        let error = FrameError::new(self.current_tag(), kind, &self.limits);
        self.start = lf + 1;
        self.reset_command();
        self.after_refused_line(header);
        Step::Emit(Framed::Rejected(error))
    }

    /// Refuses the current command in the middle of a line that is too long; the rest of the
    /// line is discarded as it arrives.
    fn refuse_partial_line(&mut self, kind: FrameErrorKind) -> Step {
        let error = FrameError::new(self.current_tag(), kind, &self.limits);
        let (tail, tail_len) = tail_of(&[], 0, &self.buf[self.line_start..]);
        self.start = self.buf.len();
        self.reset_command();
        self.state = State::DiscardLine { tail, tail_len };
        Step::Emit(Framed::Rejected(error))
    }

    /// A refused line ended in `header`: a non-synchronizing literal follows whether we like it
    /// or not, so skip it and the rest of its command; otherwise the next line is a new command.
    fn after_refused_line(&mut self, header: Option<Result<LiteralHeader, bool>>) {
        if let Some(Ok(LiteralHeader { size, synchronizing: false })) = header {
            self.state = State::DiscardLiteral { remaining: size };
        }
    }

    fn step_discard_line(&mut self, tail: [u8; TAIL_BYTES], tail_len: usize) -> Step {
        let Some(offset) = self.buf[self.scan..].iter().position(|&b| b == b'\n') else {
            let (tail, tail_len) = tail_of(&tail, tail_len, &self.buf[self.scan..]);
            self.start = self.buf.len();
            self.reset_command();
            self.state = State::DiscardLine { tail, tail_len };
            return Step::NeedInput;
        };
        let lf = self.scan + offset;
        let (tail, tail_len) = tail_of(&tail, tail_len, &self.buf[self.scan..lf]);
        let last = &tail[..tail_len];
        let last = last.strip_suffix(b"\r").unwrap_or(last);
        let header = literal_header_at_end(last);
        self.start = lf + 1;
        self.reset_command();
        if let Some(kind) = fatal_header(header, &self.limits) {
            return Step::Emit(Framed::Rejected(FrameError::new(None, kind, &self.limits)));
        }
        self.after_refused_line(header);
        Step::Continue
    }

    fn step_discard_literal(&mut self, remaining: u64) -> Step {
        let available = self.buf.len() - self.scan;
        let skip = usize::try_from(remaining).map_or(available, |r| r.min(available));
        self.start = self.scan + skip;
        let remaining = remaining - skip as u64;
        self.reset_command();
        if remaining == 0 {
            self.state = State::DiscardLine { tail: [0; TAIL_BYTES], tail_len: 0 };
            Step::Continue
        } else {
            self.state = State::DiscardLiteral { remaining };
            Step::NeedInput
        }
    }
}

/// The refusal to report instead when a refused line ends in a non-synchronizing literal that
/// cannot be skipped: its length is unreadable, or it is too big to be worth reading.
fn fatal_header(
    header: Option<Result<LiteralHeader, bool>>,
    limits: &FrameLimits,
) -> Option<FrameErrorKind> {
    let limit = limits.discard_literal_bytes_max;
    match header? {
        Err(false) => Some(FrameErrorKind::LiteralLengthInvalid { synchronizing: false }),
        Ok(LiteralHeader { size, synchronizing: false }) if size > limit => {
            Some(FrameErrorKind::LiteralTooBig { size, limit, synchronizing: false, append: false })
        }
        _ => None,
    }
}

/// The last [`TAIL_BYTES`] of `previous[..previous_len]` followed by `more`.
fn tail_of(previous: &[u8], previous_len: usize, more: &[u8]) -> ([u8; TAIL_BYTES], usize) {
    let mut tail = [0; TAIL_BYTES];
    if more.len() >= TAIL_BYTES {
        tail.copy_from_slice(&more[more.len() - TAIL_BYTES..]);
        return (tail, TAIL_BYTES);
    }
    let keep = (TAIL_BYTES - more.len()).min(previous_len);
    tail[..keep].copy_from_slice(&previous[previous_len - keep..previous_len]);
    tail[keep..keep + more.len()].copy_from_slice(more);
    (tail, keep + more.len())
}

/// True when the command line is `tag SP APPEND ...` (any case).
fn is_append_line(line: &[u8]) -> bool {
    let mut words = line.splitn(3, |&b| b == b' ');
    words.next();
    words.next().is_some_and(|word| word.eq_ignore_ascii_case(b"APPEND"))
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
