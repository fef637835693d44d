//! The session's side of the framer: framed commands, continuation requests and refusals,
//! turned into what the state machine acts on.

use crate::imap::framing::{Framed, Framer};
use crate::imap::limits::FrameLimits;
use crate::imap::reply::{Code, Completion};
use crate::imap::types::Tag;

/// What the input holds next.
pub(crate) enum Frame {
    /// Nothing complete yet.
    NeedMore,
    /// A synchronizing literal was accepted: send `+ Ready for literal`.
    Continue,
    /// A whole command line, literals inline, CRLF removed.
    Line(crate::imap::framing::Frame),
    /// A command refused by a limit: answer with `completion`; `fatal` means BYE and close.
    Invalid {
        /// The command's tag, when readable.
        tag: Option<Tag>,
        /// The reply (BAD, or NO [TOOBIG] for an oversized APPEND).
        completion: Completion,
        /// The stream cannot be resynchronized.
        fatal: bool,
    },
}

/// Buffered client input.
pub(crate) struct Input {
    framer: Framer,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Input({} bytes buffered)", self.framer.buffered_bytes())
    }
}

impl Input {
    /// An empty input with these limits.
    pub(crate) fn new(limits: FrameLimits) -> Input {
        Input { framer: Framer::new(limits) }
    }

    /// Bytes from the client.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        self.framer.feed(bytes);
    }

    /// Replaces the framer's limits (before login / after login).
    pub(crate) fn set_limits(&mut self, limits: FrameLimits) {
        self.framer.set_limits(limits);
    }

    /// True when no command is partly received (nor a refused one partly skipped).
    pub(crate) fn is_idle(&self) -> bool {
        self.framer.is_idle()
    }

    /// Throws away every buffered byte not yet framed (after STARTTLS); returns them.
    pub(crate) fn take_unframed(&mut self) -> Vec<u8> {
        self.framer.take_unframed()
    }

    /// The next thing to act on.
    pub(crate) fn next_frame(&mut self) -> Frame {
        match self.framer.next() {
            Framed::NeedInput => Frame::NeedMore,
            Framed::SendContinuation => Frame::Continue,
            Framed::Frame(frame) => Frame::Line(frame),
            Framed::Rejected(error) => {
                let completion = if error.is_append_too_big() {
                    Completion::no(format!("Message too big: {error}")).with(Code::TooBig)
                } else {
                    Completion::bad(format!("Command refused: {error}"))
                };
                Frame::Invalid { tag: error.tag.clone(), completion, fatal: error.is_fatal() }
            }
        }
    }
}
