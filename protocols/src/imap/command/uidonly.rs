//! UIDONLY (RFC 9586): once enabled, message sequence numbers are gone from the session.
//!
//! - FETCH, STORE, SEARCH, COPY and MOVE by number, a UID SEARCH with a sequence-number key
//!   and a QRESYNC SELECT with `seq-match-data` answer `BAD [UIDREQUIRED]` ([`refuse`]);
//! - FETCH data goes out as `* uid UIDFETCH (...)`, without a `UID` item (the number is the
//!   UID), for FETCH and STORE answers and for unsolicited flag changes alike;
//! - expunges go out as `* VANISHED uids`, as with QRESYNC;
//! - SELECT leaves out `[UNSEEN n]`, a sequence number.
//!
//! EXISTS stays: it is a count, not a number of a message.

use crate::imap::reply::{Code, Completion};
use crate::imap::session::Conn;
use crate::imap::types::{CommandBody, SearchKey};

/// `ENABLE UIDONLY`: the selected view (and every later one) speaks in UIDs only.
pub(crate) fn enable(conn: &mut Conn) {
    conn.enabled.uidonly = true;
    if let Some(view) = conn.selected.as_mut() {
        view.uid_only = true;
        view.vanished = true;
    }
}

/// The `BAD [UIDREQUIRED]` a command using sequence numbers gets once UIDONLY is on.
#[must_use]
pub(crate) fn refuse(conn: &Conn, body: &CommandBody) -> Option<Completion> {
    if !conn.enabled.uidonly {
        return None;
    }
    let numbers = match body {
        CommandBody::Fetch { uid, .. }
        | CommandBody::Store { uid, .. }
        | CommandBody::Copy { uid, .. }
        | CommandBody::Move { uid, .. } => !uid,
        CommandBody::Search { uid, keys, .. }
        | CommandBody::Sort { uid, keys, .. }
        | CommandBody::Thread { uid, keys, .. } => !uid || keys.iter().any(names_numbers),
        CommandBody::Select { qresync: Some(params), .. }
        | CommandBody::Examine { qresync: Some(params), .. } => params.seq_match.is_some(),
        _ => false,
    };
    numbers.then(|| {
        Completion::bad("Message sequence numbers are not allowed after ENABLE UIDONLY")
            .with(Code::UidRequired)
    })
}

/// True when a search key (or one inside it) is a set of message sequence numbers (`$`, the
/// saved UIDs, is not).
fn names_numbers(key: &SearchKey) -> bool {
    match key {
        SearchKey::SequenceSet(set) => !set.is_saved(),
        SearchKey::Not(key) => names_numbers(key),
        SearchKey::Or(a, b) => names_numbers(a) || names_numbers(b),
        SearchKey::And(keys) => keys.iter().any(names_numbers),
        _ => false,
    }
}
