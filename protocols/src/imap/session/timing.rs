//! Which commands were answered, and since when they ran: the session's part of the
//! runtime's command latency histogram (shard `metrics.rs`). The session reads no clock: the
//! runtime gives it the time of each step ([`ImapSession::set_step_time`]), a command takes the
//! time of the step that parsed it, and the runtime takes the list of commands whose tagged
//! reply is in a write ([`ImapSession::take_answered`]) and measures to the moment the write
//! is done. Pipelined commands parsed in one step share its time, so each one's latency
//! includes the ones before it, as the client sees it.
//!
//! Names come from a fixed list, [`COMMAND_NAMES`], so the label set is bounded; a line that
//! does not parse counts as `other` (its last entry).

use std::time::Instant;

use super::ImapSession;
use crate::imap::types::CommandBody;

/// Answered commands kept for the runtime at most; more (only with a runtime that never
/// asks) are not timed.
const ANSWERED_MAX: usize = 256;

/// The command names the latency histogram is labelled with: `UID` variants apart, `other`
/// last.
pub const COMMAND_NAMES: [&str; 58] = [
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "LOGIN",
    "AUTHENTICATE",
    "ENABLE",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "GETQUOTA",
    "GETQUOTAROOT",
    "SETQUOTA",
    "GETMETADATA",
    "SETMETADATA",
    "GETACL",
    "SETACL",
    "DELETEACL",
    "LISTRIGHTS",
    "MYRIGHTS",
    "LSUB",
    "STATUS",
    "APPEND",
    "IDLE",
    "CLOSE",
    "UNSELECT",
    "CANCELUPDATE",
    "UNAUTHENTICATE",
    "COMPRESS",
    "NOTIFY",
    "EXPUNGE",
    "UID EXPUNGE",
    "SEARCH",
    "UID SEARCH",
    "FETCH",
    "UID FETCH",
    "STORE",
    "UID STORE",
    "COPY",
    "UID COPY",
    "MOVE",
    "UID MOVE",
    "NAMESPACE",
    "RESETKEY",
    "GENURLAUTH",
    "URLFETCH",
    "ID",
    "SORT",
    "UID SORT",
    "THREAD",
    "UID THREAD",
    "CREATE-SPECIAL-USE",
    "other",
];

/// The index in [`COMMAND_NAMES`] of `name`.
const fn at(name: &str) -> usize {
    let names = COMMAND_NAMES;
    let mut index = 0;
    while index < names.len() {
        if str_eq(names[index], name) {
            return index;
        }
        index += 1;
    }
    panic!("a listed command name");
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut index = 0;
    while index < a.len() {
        if a[index] != b[index] {
            return false;
        }
        index += 1;
    }
    true
}

/// The index of `other` in [`COMMAND_NAMES`].
pub const COMMAND_OTHER: usize = COMMAND_NAMES.len() - 1;

/// The [`COMMAND_NAMES`] index of a parsed command, each found when compiling (`const`).
/// Exhaustive: a new command must be named.
#[must_use]
pub fn command_index(body: &CommandBody) -> usize {
    match body {
        CommandBody::Capability => const { at("CAPABILITY") },
        CommandBody::Noop => const { at("NOOP") },
        CommandBody::Logout => const { at("LOGOUT") },
        CommandBody::StartTls => const { at("STARTTLS") },
        CommandBody::Login { .. } => const { at("LOGIN") },
        CommandBody::Authenticate { .. } => const { at("AUTHENTICATE") },
        CommandBody::Enable(_) => const { at("ENABLE") },
        CommandBody::Select { .. } => const { at("SELECT") },
        CommandBody::Examine { .. } => const { at("EXAMINE") },
        CommandBody::Create(_) => const { at("CREATE") },
        CommandBody::CreateSpecialUse { .. } => const { at("CREATE-SPECIAL-USE") },
        CommandBody::Delete(_) => const { at("DELETE") },
        CommandBody::Rename(..) => const { at("RENAME") },
        CommandBody::Subscribe(_) => const { at("SUBSCRIBE") },
        CommandBody::Unsubscribe(_) => const { at("UNSUBSCRIBE") },
        CommandBody::List { .. } => const { at("LIST") },
        CommandBody::GetQuota(_) => const { at("GETQUOTA") },
        CommandBody::GetQuotaRoot(_) => const { at("GETQUOTAROOT") },
        CommandBody::SetQuota { .. } => const { at("SETQUOTA") },
        CommandBody::GetMetadata { .. } => const { at("GETMETADATA") },
        CommandBody::SetMetadata { .. } => const { at("SETMETADATA") },
        CommandBody::GetAcl(_) => const { at("GETACL") },
        CommandBody::SetAcl { .. } => const { at("SETACL") },
        CommandBody::DeleteAcl { .. } => const { at("DELETEACL") },
        CommandBody::ListRights { .. } => const { at("LISTRIGHTS") },
        CommandBody::MyRights(_) => const { at("MYRIGHTS") },
        CommandBody::Lsub { .. } => const { at("LSUB") },
        CommandBody::Status { .. } => const { at("STATUS") },
        CommandBody::Append { .. } => const { at("APPEND") },
        CommandBody::Idle => const { at("IDLE") },
        CommandBody::Close => const { at("CLOSE") },
        CommandBody::Unselect => const { at("UNSELECT") },
        CommandBody::CancelUpdate(_) => const { at("CANCELUPDATE") },
        CommandBody::Unauthenticate => const { at("UNAUTHENTICATE") },
        CommandBody::Compress => const { at("COMPRESS") },
        CommandBody::Notify(_) => const { at("NOTIFY") },
        CommandBody::Expunge { uids } => {
            if uids.is_some() {
                const { at("UID EXPUNGE") }
            } else {
                const { at("EXPUNGE") }
            }
        }
        CommandBody::Search { uid, .. } => {
            if *uid {
                const { at("UID SEARCH") }
            } else {
                const { at("SEARCH") }
            }
        }
        CommandBody::Fetch { uid, .. } => {
            if *uid {
                const { at("UID FETCH") }
            } else {
                const { at("FETCH") }
            }
        }
        CommandBody::Store { uid, .. } => {
            if *uid {
                const { at("UID STORE") }
            } else {
                const { at("STORE") }
            }
        }
        CommandBody::Copy { uid, .. } => {
            if *uid {
                const { at("UID COPY") }
            } else {
                const { at("COPY") }
            }
        }
        CommandBody::Move { uid, .. } => {
            if *uid {
                const { at("UID MOVE") }
            } else {
                const { at("MOVE") }
            }
        }
        CommandBody::Namespace => const { at("NAMESPACE") },
        CommandBody::ResetKey { .. } => const { at("RESETKEY") },
        CommandBody::GenUrlAuth(_) => const { at("GENURLAUTH") },
        CommandBody::UrlFetch(_) => const { at("URLFETCH") },
        CommandBody::Id => const { at("ID") },
        CommandBody::Sort { uid, .. } => {
            if *uid {
                const { at("UID SORT") }
            } else {
                const { at("SORT") }
            }
        }
        CommandBody::Thread { uid, .. } => {
            if *uid {
                const { at("UID THREAD") }
            } else {
                const { at("THREAD") }
            }
        }
    }
}

/// The session's record of its commands' times (see the module docs).
#[derive(Debug, Default)]
pub(super) struct CommandClock {
    /// The time of the step now running, if the runtime gives one.
    now: Option<Instant>,
    /// The command now running (parsed, not yet answered): its name and parse step's time.
    current: Option<(usize, Instant)>,
    /// Commands answered since the runtime last took them.
    answered: Vec<(usize, Instant)>,
}

impl CommandClock {
    /// A command was parsed (`index` in [`COMMAND_NAMES`]).
    pub(super) fn started(&mut self, index: usize) {
        self.current = self.now.map(|now| (index, now));
    }

    /// The running command's tagged reply went into the output.
    pub(super) fn answered(&mut self) {
        if let Some(command) = self.current.take()
            && self.answered.len() < ANSWERED_MAX
        {
            self.answered.push(command);
        }
    }
}

impl ImapSession {
    /// The time of the step about to run (the runtime's clock, read once per `next`): the
    /// commands it parses count their latency from it. Without it, nothing is timed.
    pub fn set_step_time(&mut self, now: Instant) {
        self.clock.now = Some(now);
    }

    /// The commands whose tagged reply went into the output since the last call, each with
    /// its [`COMMAND_NAMES`] index and the time of the step that parsed it. Take them with
    /// each `Step::Write` and measure to when that write is done. (A drain: the list keeps
    /// its room, so a busy session allocates for it once.)
    pub fn take_answered(&mut self) -> std::vec::Drain<'_, (usize, Instant)> {
        self.clock.answered.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_other_is_last() {
        for (index, name) in COMMAND_NAMES.iter().enumerate() {
            assert_eq!(at(name), index, "{name} listed once");
        }
        assert_eq!(COMMAND_NAMES[COMMAND_OTHER], "other");
        assert_eq!(command_index(&CommandBody::Noop), at("NOOP"));
    }

    #[test]
    fn a_session_names_each_answered_command_with_its_parse_time() {
        use crate::imap::session::{ImapConfig, Step};
        use std::sync::Arc;
        let mut session = ImapSession::new(Arc::new(ImapConfig::new("mail.example.org")));
        let _ = session.greeting();
        let now = Instant::now();
        session.set_step_time(now);
        // Pipelined: two commands, a line that does not parse (tagged BAD), an untagged one.
        session.feed(b"a1 CAPABILITY\r\na2 NOOP\r\na3 FROB\r\n* NOOP\r\n");
        let step = session.next::<skua_core::disk::os::OsDisk>(None);
        assert!(matches!(step, Step::Write { .. }), "{step:?}");
        let names: Vec<&str> = session
            .take_answered()
            .map(|(index, at)| {
                assert_eq!(at, now, "timed from the step that parsed it");
                COMMAND_NAMES[index]
            })
            .collect();
        assert_eq!(names, ["CAPABILITY", "NOOP", "other"], "an untagged BAD answers nothing");
        assert_eq!(session.take_answered().count(), 0, "taken once");
    }

    #[test]
    fn only_a_command_parsed_with_a_time_is_answered_once() {
        let mut clock = CommandClock::default();
        clock.started(at("NOOP"));
        clock.answered();
        assert!(clock.answered.is_empty(), "no step time given: nothing timed");
        let now = Instant::now();
        clock.now = Some(now);
        clock.started(at("FETCH"));
        clock.answered();
        clock.answered();
        assert_eq!(clock.answered, vec![(at("FETCH"), now)], "one reply per command");
    }
}
