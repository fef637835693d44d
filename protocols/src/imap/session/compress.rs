//! COMPRESS (RFC 4978): the session's part. The compression itself is the runtime's transport
//! (in skua, `shard/src/conn_deflate.rs`); the session decides whether the command may run,
//! answers it, and asks for compression with [`Step::Compress`] once the answer is out.
//!
//! - Only in the authenticated and selected states (RFC 4978 §5, `command-auth`); before
//!   login it is refused like every command that needs a login.
//! - `DEFLATE` is the only algorithm (another is a syntax error: BAD, from the parser).
//! - Already compressing: `NO [COMPRESSIONACTIVE]` (RFC 4978 §3; the answer is compressed
//!   like everything else after the first OK).
//! - The client must not send anything after COMPRESS until it has seen the answer
//!   (RFC 4978 §3): bytes behind the command could be meant either way, so a COMPRESS with
//!   input pipelined behind it is refused with BAD and the input runs uncompressed, as sent.
//! - Otherwise the tagged `OK DEFLATE active` is written uncompressed and everything after it
//!   is compressed both ways: "the server MUST compress starting immediately after the CRLF
//!   which ends the tagged OK response" (RFC 4978 §3).

use super::{ImapSession, Phase};
use crate::imap::reply::{Code, Completion};

use super::api::Step;

impl ImapSession {
    /// `COMPRESS DEFLATE` in the authenticated (or selected) state.
    pub(super) fn compress(&mut self) -> Completion {
        if self.compressed {
            // A NO ends a run of BADs like any other answer.
            self.bad_commands = 0;
            return Completion::no("DEFLATE is already active").with(Code::CompressionActive);
        }
        if !self.input.is_idle() {
            return Completion::bad(
                "COMPRESS must be the last command sent until its answer arrives",
            );
        }
        self.phase = Phase::Compress;
        Completion::ok("DEFLATE active")
    }

    /// The OK of COMPRESS is written: from here on the transport compresses.
    pub(super) fn compress_started(&mut self) -> Step {
        debug_assert!(matches!(self.phase, Phase::Compress));
        debug_assert!(self.input.is_idle(), "nothing read since the COMPRESS line");
        self.phase = Phase::Authenticated;
        self.compressed = true;
        Step::Compress
    }

    /// True once COMPRESS runs on this connection.
    #[must_use]
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }
}
