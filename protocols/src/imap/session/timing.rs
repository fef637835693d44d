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

/// `name` or its `UID` variant.
const fn uid_or(uid: bool, plain: &str, with_uid: &str) -> usize {
    if uid { at(with_uid) } else { at(plain) }
}

/// The [`COMMAND_NAMES`] index of a parsed command. Exhaustive: a new command must be named.
#[must_use]
pub fn command_index(body: &CommandBody) -> usize {
    match body {
        CommandBody::Capability => at("CAPABILITY"),
        CommandBody::Noop => at("NOOP"),
        CommandBody::Logout => at("LOGOUT"),
        CommandBody::StartTls => at("STARTTLS"),
        CommandBody::Login { .. } => at("LOGIN"),
        CommandBody::Authenticate { .. } => at("AUTHENTICATE"),
        CommandBody::Enable(_) => at("ENABLE"),
        CommandBody::Select { .. } => at("SELECT"),
        CommandBody::Examine { .. } => at("EXAMINE"),
        CommandBody::Create(_) => at("CREATE"),
        CommandBody::CreateSpecialUse { .. } => at("CREATE-SPECIAL-USE"),
        CommandBody::Delete(_) => at("DELETE"),
        CommandBody::Rename(..) => at("RENAME"),
        CommandBody::Subscribe(_) => at("SUBSCRIBE"),
        CommandBody::Unsubscribe(_) => at("UNSUBSCRIBE"),
        CommandBody::List { .. } => at("LIST"),
        CommandBody::GetQuota(_) => at("GETQUOTA"),
        CommandBody::GetQuotaRoot(_) => at("GETQUOTAROOT"),
        CommandBody::SetQuota { .. } => at("SETQUOTA"),
        CommandBody::GetMetadata { .. } => at("GETMETADATA"),
        CommandBody::SetMetadata { .. } => at("SETMETADATA"),
        CommandBody::GetAcl(_) => at("GETACL"),
        CommandBody::SetAcl { .. } => at("SETACL"),
        CommandBody::DeleteAcl { .. } => at("DELETEACL"),
        CommandBody::ListRights { .. } => at("LISTRIGHTS"),
        CommandBody::MyRights(_) => at("MYRIGHTS"),
        CommandBody::Lsub { .. } => at("LSUB"),
        CommandBody::Status { .. } => at("STATUS"),
        CommandBody::Append { .. } => at("APPEND"),
        CommandBody::Idle => at("IDLE"),
        CommandBody::Close => at("CLOSE"),
        CommandBody::Unselect => at("UNSELECT"),
        CommandBody::CancelUpdate(_) => at("CANCELUPDATE"),
        CommandBody::Unauthenticate => at("UNAUTHENTICATE"),
        CommandBody::Compress => at("COMPRESS"),
        CommandBody::Notify(_) => at("NOTIFY"),
        CommandBody::Expunge { uids } => uid_or(uids.is_some(), "EXPUNGE", "UID EXPUNGE"),
        CommandBody::Search { uid, .. } => uid_or(*uid, "SEARCH", "UID SEARCH"),
        CommandBody::Fetch { uid, .. } => uid_or(*uid, "FETCH", "UID FETCH"),
        CommandBody::Store { uid, .. } => uid_or(*uid, "STORE", "UID STORE"),
        CommandBody::Copy { uid, .. } => uid_or(*uid, "COPY", "UID COPY"),
        CommandBody::Move { uid, .. } => uid_or(*uid, "MOVE", "UID MOVE"),
        CommandBody::Namespace => at("NAMESPACE"),
        CommandBody::ResetKey { .. } => at("RESETKEY"),
        CommandBody::GenUrlAuth(_) => at("GENURLAUTH"),
        CommandBody::UrlFetch(_) => at("URLFETCH"),
        CommandBody::Id => at("ID"),
        CommandBody::Sort { uid, .. } => uid_or(*uid, "SORT", "UID SORT"),
        CommandBody::Thread { uid, .. } => uid_or(*uid, "THREAD", "UID THREAD"),
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
    /// each `Step::Write` and measure to when that write is done.
    pub fn take_answered(&mut self) -> Vec<(usize, Instant)> {
        std::mem::take(&mut self.clock.answered)
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
            .iter()
            .map(|&(index, at)| {
                assert_eq!(at, now, "timed from the step that parsed it");
                COMMAND_NAMES[index]
            })
            .collect();
        assert_eq!(names, ["CAPABILITY", "NOOP", "other"], "an untagged BAD answers nothing");
        assert!(session.take_answered().is_empty(), "taken once");
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
