//! IDLE (RFC 2177, RFC 9051 §6.3.13): while idling, each `next()` reports what changed in the
//! store; `DONE` ends it with the tagged OK.

use skua_core::disk::Disk;
use skua_core::store::UserStore;

use super::input::Frame;
use super::out::Out;
use super::{ImapSession, Phase, Step, flush_or, write};
use crate::imap::command;
use crate::imap::parser;
use crate::imap::reply::Completion;

impl ImapSession {
    /// IDLE: `DONE` ends it; otherwise report what changed in the store.
    pub(super) fn next_idle<D: Disk>(
        &mut self,
        store: Option<&mut UserStore<D>>,
        mut out: Out,
    ) -> Step {
        let Phase::Idle(tag) = &self.phase else {
            return flush_or(out, Step::NeedInput);
        };
        let tag = tag.clone();
        if let Some(store) = store {
            // With NOTIFY set, IDLE carries its notifications too (RFC 5465 §3), first, so
            // that new messages get their MessageNew FETCH items; without NOTIFY a no-op.
            if self.conn.store_owner.is_none() {
                command::notify::report(&mut self.conn, store, &mut out);
            }
            if self.conn.notify.as_ref().is_some_and(|n| n.fetch.is_some()) {
                // That FETCH paused: it goes on after the others had a turn.
                return flush_or(out, Step::Yield);
            }
            if !self.conn.closing {
                command::sync(&mut self.conn, store, true, &mut out);
            }
            if self.conn.closing {
                self.phase = Phase::Logout;
                return write(out);
            }
        }
        let completion = match self.input.next_frame() {
            Frame::NeedMore => return flush_or(out, Step::Idle),
            Frame::Continue => {
                out.put(b"+ Ready for literal\r\n");
                return write(out);
            }
            Frame::Invalid { completion, fatal, .. } => {
                if fatal {
                    self.bye("Protocol error", &mut out);
                    return write(out);
                }
                completion
            }
            Frame::Line(line) if parser::parse_idle_done(line.as_bytes()).is_ok() => {
                Completion::ok("IDLE terminated")
            }
            Frame::Line(_) => Completion::bad("Expected DONE"),
        };
        self.phase = Phase::Authenticated;
        self.reply(Some(&tag), &completion, &mut out);
        write(out)
    }
}
