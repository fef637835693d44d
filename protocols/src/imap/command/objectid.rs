//! OBJECTID (RFC 8474) and SAVEDATE (RFC 8514): how the store's numbers are shown.
//!
//! - MAILBOXID is `M<id>-<uidvalidity>` (lowercase hex): the store's mailbox id, which a
//!   RENAME keeps and which is never given to another mailbox (`core/FORMAT.md`,
//!   `mailboxes.log`), with the mailbox's UIDVALIDITY, which RENAME keeps too and which
//!   differs for a store created anew under the same user name.
//! - EMAILID is `E` and the 16 lowercase hex digits of the store's EMAILID (`UserStore::email_id`:
//!   kept by COPY and MOVE, stored in the spool record).
//! - THREADID is `T` and the 16 lowercase hex digits of the store's thread id
//!   (`UserStore::thread_id`: the EMAILID of the thread's first message, decided when the
//!   message is stored from its Message-ID, References and In-Reply-To, per user across
//!   mailboxes, kept by COPY and MOVE and never changed; `core/src/store/threads.rs`). A
//!   message stored before threads existed is a thread of its own.
//! - SAVEDATE is the index record's save date in UTC, NIL when the store does not know it (a
//!   record rebuilt from the spool); the SAVED* search keys then use the internal date, as
//!   RFC 8514 §4.3 asks of storage without save dates.

use skua_core::store::{MailboxInfo, MessageMeta};
use skua_core::types::InternalDate;

use super::search_eval::local_day;
use crate::imap::encode;

/// The MAILBOXID of a mailbox (without parentheses).
pub(crate) fn mailbox_id(info: &MailboxInfo) -> String {
    format!("M{:x}-{:x}", info.id.0, info.uid_validity.get())
}

/// Writes `EMAILID (E...)`.
pub(crate) fn write_email_id(out: &mut Vec<u8>, email_id: u64) {
    out.extend_from_slice(format!("EMAILID (E{email_id:016x})").as_bytes());
}

/// The store's EMAILID named by an `objectid` from a client; `None` for one this server never
/// gives (such a key matches no message).
pub(crate) fn parse_email_id(objectid: &str) -> Option<u64> {
    let hex = objectid.strip_prefix('E')?;
    let lower = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex.len() != 16 || !lower {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|&id| id != 0)
}

/// Writes `THREADID (T...)`.
pub(crate) fn write_thread_id(out: &mut Vec<u8>, thread_id: u64) {
    out.extend_from_slice(format!("THREADID (T{thread_id:016x})").as_bytes());
}

/// The store's THREADID named by an `objectid` from a client; `None` for one this server
/// never gives (such a key matches no message).
pub(crate) fn parse_thread_id(objectid: &str) -> Option<u64> {
    parse_email_id(&format!("E{}", objectid.strip_prefix('T')?))
}

/// Writes `SAVEDATE "date-time"` in UTC, or `SAVEDATE NIL` when the save date is unknown.
pub(crate) fn write_save_date(out: &mut Vec<u8>, meta: &MessageMeta) {
    out.extend_from_slice(b"SAVEDATE ");
    match meta.save_date {
        Some(unix_seconds) => {
            encode::internal_date(out, InternalDate { unix_seconds, zone_minutes: 0 });
        }
        None => out.extend_from_slice(b"NIL"),
    }
}

/// The day (since the epoch) the SAVED* keys compare: the save date's (UTC), or the internal
/// date's when the save date is unknown (RFC 8514 §4.3).
pub(crate) fn saved_day(meta: &MessageMeta) -> i64 {
    match meta.save_date {
        Some(unix_seconds) => unix_seconds.div_euclid(86_400),
        None => local_day(meta.internal_date),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skua_core::types::{Flags, ModSeq, Uid};

    fn meta(save_date: Option<i64>) -> MessageMeta {
        MessageMeta {
            uid: Uid::new(1).unwrap(),
            modseq: ModSeq(1),
            flags: Flags::default(),
            // 1970-01-02 23:00 at +0200 is 1970-01-02 21:00 UTC.
            internal_date: InternalDate { unix_seconds: 86_400 + 75_600, zone_minutes: 120 },
            size: 1,
            save_date,
        }
    }

    #[test]
    fn email_ids_round_trip_and_foreign_ids_name_nothing() {
        let mut out = Vec::new();
        write_email_id(&mut out, 0x1_0000_0040);
        assert_eq!(out, b"EMAILID (E0000000100000040)");
        assert_eq!(parse_email_id("E0000000100000040"), Some(0x1_0000_0040));
        for foreign in ["E00000001000000400", "e0000000100000040", "E000000010000004A", "M1", ""] {
            assert_eq!(parse_email_id(foreign), None, "{foreign}");
        }
        assert_eq!(parse_email_id("E0000000000000000"), None, "no message has id 0");
    }

    #[test]
    fn thread_ids_round_trip_and_foreign_ids_name_nothing() {
        let mut out = Vec::new();
        write_thread_id(&mut out, 0x1_0000_0040);
        assert_eq!(out, b"THREADID (T0000000100000040)");
        assert_eq!(parse_thread_id("T0000000100000040"), Some(0x1_0000_0040));
        for foreign in ["E0000000100000040", "t0000000100000040", "T1", "TT0000000100000040", ""] {
            assert_eq!(parse_thread_id(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn save_dates_are_utc_and_fall_back_to_the_internal_date_for_searches() {
        let mut out = Vec::new();
        write_save_date(&mut out, &meta(Some(1_700_000_000)));
        assert_eq!(out, b"SAVEDATE \"14-Nov-2023 22:13:20 +0000\"");
        out.clear();
        write_save_date(&mut out, &meta(None));
        assert_eq!(out, b"SAVEDATE NIL");
        assert_eq!(saved_day(&meta(Some(1_700_000_000))), 19_675);
        assert_eq!(saved_day(&meta(None)), 1, "the internal date's own day");
    }
}
